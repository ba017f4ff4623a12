#!/usr/bin/env python
"""Every zoo model through the deploy path: export (reference operators, optionally --fold),
ONNX, and both predictor runtimes (onnxruntime; MXNet on oneDNN's subgraph backend), each
compared with the Gluon model on the same input. Prints one line per model and a summary;
exit status 1 if any model fails.

    python benchmarks/check_zoo_deploy.py                  # all names (~20 min on 2 cores)
    python benchmarks/check_zoo_deploy.py --fold --only preresnet,wrn16
"""
import argparse
import os
import sys
import tempfile
import time
import traceback

import harness

sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--fold', action='store_true', help='export with --fold')
    p.add_argument('--only', help='comma-separated substrings; models whose name has one')
    p.add_argument('--imagenet-size', type=int, default=64,
                   help='input size for the ImageNet nets (64: any size works, global pooling)')
    args = p.parse_args(argv)
    print(harness.environment_line(), flush=True)
    import warnings
    warnings.filterwarnings('ignore')
    import mxnet as mx
    import numpy as np
    import cmpese
    from cmpese.model_zoo import get_model_info, get_model_list
    from cmpese.deploy import Predictor

    names = get_model_list()
    if args.only:
        names = [n for n in names if any(k in n for k in args.only.split(','))]
    failures, worst = [], 0.0
    with tempfile.TemporaryDirectory(prefix='zoo-deploy-') as tmp:
        for name in names:
            t0 = time.time()
            try:
                info = get_model_info(name)
                size = args.imagenet_size if info.input_size > 32 else info.input_size
                mx.random.seed(0)
                net = cmpese.get_model(name)
                net.initialize(mx.init.Xavier(magnitude=2))
                x = np.random.RandomState(0).standard_normal((2, 3, size, size)).astype('f')
                # BN statistics of a training pass, so that activations have a sane scale
                with mx.autograd.record(train_mode=True):
                    net(mx.nd.array(x))
                reference = net(mx.nd.array(x)).asnumpy()
                prefix = os.path.join(tmp, name)
                harness.export_pair(net, prefix, (1, 3, size, size), fold=args.fold)
                errors = []
                for runtime in ('onnxruntime', 'mxnet'):
                    out = Predictor(prefix, runtime)(x)
                    errors.append(float(np.abs(out - reference).max() /
                                        (np.abs(reference).max() + 1e-12)))
                ok = max(errors) < 1e-3
                worst = max(worst, max(errors))
                print('%-4s %-34s onnxruntime %.1e  mxnet %.1e  (%.0f s)'
                      % ('ok' if ok else 'FAIL', name, errors[0], errors[1], time.time() - t0),
                      flush=True)
                if not ok:
                    failures.append(name)
            except Exception:   # report and go on with the next model
                failures.append(name)
                print('FAIL %-34s %s' % (name, traceback.format_exc().strip().splitlines()[-1]),
                      flush=True)
            for f in os.listdir(tmp):
                os.remove(os.path.join(tmp, f))
    print('%d models, %d failed%s; largest relative difference %.1e'
          % (len(names), len(failures), (': ' + ', '.join(failures)) if failures else '', worst))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
