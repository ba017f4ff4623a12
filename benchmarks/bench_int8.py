#!/usr/bin/env python
"""int8 post-training quantization: accuracy on the digits test set and speed, float32 vs int8,
in both predictor runtimes (cmpese.deploy.Predictor).

For each model: train it on digits with train_cifar.py (the main job's settings; or take
``--run DIR`` of an earlier run), export it folded, then measure on the 359 test images

* top-1 accuracy of the float32 predictor and of its int8 version (``Predictor.quantize``,
  calibrated on ``--calibration`` training images: onnxruntime's static QDQ quantizer,
  MXNet's oneDNN quantization);
* inference time at batch 1 and 32, interleaved rounds, medians.

    python benchmarks/bench_int8.py --env OMP_NUM_THREADS=2      # docs/deploy.md
    python benchmarks/bench_int8.py --models cmpe_se_preresnet20_1x1 --epochs 5
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(1, ROOT)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', default='preresnet20,se_preresnet20,cmpe_se_preresnet20_1x1,'
                                       'ini_preresnet20_mix_5_d')
    p.add_argument('--epochs', type=int, help='train_cifar.py --epochs (default: its digits '
                                              'preset)')
    p.add_argument('--runs', help='directory holding earlier runs, one sub-directory per '
                                  'model (train_cifar.py --save-dir DIR/MODEL); trained there '
                                  'when missing (default: a temporary directory)')
    p.add_argument('--calibration', type=int, default=256, help='calibration images (256)')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--runtimes', default='onnxruntime,mxnet')
    p.add_argument('--env', action='append', default=[], metavar='KEY=VALUE')
    return p.parse_args(argv)


def train(model, save_dir, epochs):
    cmd = [sys.executable, os.path.join(ROOT, 'train_cifar.py'), '--model', model,
           '--dataset', 'digits', '--save-dir', save_dir, '--no-progress']
    if epochs:
        cmd += ['--epochs', str(epochs)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def trained_params(save_dir):
    for name in ('best.params',):
        path = os.path.join(save_dir, name)
        if os.path.isfile(path):
            return path
    found = sorted(f for f in os.listdir(save_dir) if f.endswith('.params'))
    if not found:
        raise SystemExit('no .params file in %s' % save_dir)
    return os.path.join(save_dir, found[-1])


def main(argv=None):
    args = parse_args(argv)
    harness.apply_env(args.env)
    import warnings
    warnings.filterwarnings('ignore')
    import numpy as np
    import cmpese
    from cmpese.data.datasets import load_train_test
    from cmpese.deploy import Predictor
    from cmpese.weights.params import load_params_checked

    (train_x, _), (test_x, test_y), info = load_train_test('digits')

    def prepare(images):      # NHWC uint8 -> normalized NCHW float32, as train_cifar.py does
        x = (images.astype(np.float32) - info.mean) / info.std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    test, calibration = prepare(test_x), prepare(train_x[:args.calibration])
    runtimes = [r for r in args.runtimes.split(',') if r]
    runs = args.runs or tempfile.mkdtemp(prefix='bench_int8-')
    entries = {}
    accuracy = {}
    for model in args.models.split(','):
        save_dir = os.path.join(runs, model)
        if not os.path.isdir(save_dir) or not any(f.endswith('.params')
                                                  for f in os.listdir(save_dir)):
            t0 = time.time()
            train(model, save_dir, args.epochs)
            print('trained %s on digits in %.0f s' % (model, time.time() - t0), file=sys.stderr)
        net = load_params_checked(cmpese.get_model(model, classes=10), trained_params(save_dir))
        prefix = os.path.join(save_dir, 'export', model)
        harness.export_pair(net, prefix, (1, 3, 32, 32), fold=True)
        for rt in runtimes:
            fp32 = Predictor(prefix, rt)
            int8 = fp32.quantize(calibration, out=prefix + ('-int8.onnx' if rt == 'onnxruntime'
                                                            else '-int8'))
            for precision, pred in (('float32', fp32), ('int8', int8)):
                accuracy[(model, rt, precision)] = pred.accuracy(test, test_y)
                for b in (1, 32):
                    xb = test[:b]
                    pred(xb)
                    entries[(model, rt, precision, b)] = (pred, xb)

    def measure(key):
        pred, xb = entries[key]
        return harness.time_call(lambda: pred(xb), reps=max(1, 32 // len(xb)))
    times = harness.interleaved_rounds(measure, list(entries), args.rounds, warmup=1, seed=0,
                                       label='int8')
    print(harness.environment_line())
    print('digits test set (%d images); int8 calibrated on %d training images; median of %d '
          'rounds' % (len(test), len(calibration), args.rounds))
    print('%-28s %-12s %9s %9s  %s' % ('model', 'runtime', 'fp32 acc', 'int8 acc',
                                        'time per batch, float32 / int8 (speed-up)'))
    for model in args.models.split(','):
        for rt in runtimes:
            t = {(p, b): 1e3 * harness.median(times[(model, rt, p, b)])
                 for p in ('float32', 'int8') for b in (1, 32)}
            print('%-28s %-12s %8.2f%% %8.2f%%  b1 %6.2f / %6.2f ms (%.2fx)  b32 %7.1f / %7.1f '
                  'ms (%.2fx)' % (model, rt, 100 * accuracy[(model, rt, 'float32')],
                                  100 * accuracy[(model, rt, 'int8')], t[('float32', 1)],
                                  t[('int8', 1)], t[('float32', 1)] / t[('int8', 1)],
                                  t[('float32', 32)], t[('int8', 32)],
                                  t[('float32', 32)] / t[('int8', 32)]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
