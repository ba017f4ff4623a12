"""Model complexity: parameter counts.

    python -m cmpese.tools.complexity cmpe_se_wrn28_10_1x1 se_preresnet164 [--classes 100]
"""
import argparse

import mxnet as mx
import numpy as np

__all__ = ['count_params']


def count_params(net, trainable_only=True, input_shape=(1, 3, 32, 32)):
    """Number of parameters of ``net``.

    Counts what the papers count: weights, biases and BN scales/shifts; BN running
    statistics (``grad_req='null'``) are left out unless ``trainable_only=False``.
    Parameters whose shapes are still deferred are inferred by one forward pass on zeros of
    ``input_shape``.
    """
    params = net.collect_params()
    if any(0 in p.shape for p in params.values() if p.shape is not None) or \
            any(p.shape is None for p in params.values()):
        if not all(p._data is not None or p._deferred_init for p in params.values()):
            net.initialize(mx.init.Xavier(), force_reinit=False)
        net(mx.nd.zeros(input_shape))
    return int(sum(np.prod(p.shape) for p in params.values()
                   if not trainable_only or p.grad_req != 'null'))


def main(argv=None):
    from ..model_zoo import get_model
    parser = argparse.ArgumentParser(description='Parameter counts of zoo models.')
    parser.add_argument('models', nargs='+')
    parser.add_argument('--classes', type=int, default=10)
    args = parser.parse_args(argv)
    for name in args.models:
        n = count_params(get_model(name, classes=args.classes))
        print('%-36s %12d  (%.2fM)' % (name, n, n / 1e6))


if __name__ == '__main__':
    main()
