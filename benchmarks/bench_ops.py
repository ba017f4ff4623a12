"""Which MXNet operators the units should use: squeeze, rescale and eps-map average, side by side.

Two measurements, each in one process with interleaved rounds (the best round is reported,
since a 2-core shared machine only ever adds time):

* **squeeze / rescale** -- for each unit shape (N, C, H, W), a hybridized stack of 4 blocks
  ``x = unit(conv1x1(relu(BN(x)))) + x`` where the unit is squeeze -> FC(C/16) -> ReLU ->
  FC(C) -> sigmoid -> rescale (an SE unit), built once per (squeeze, rescale) pair, plus
  the same stack without a unit. A training step is forward + backward of ``sum(out)``.
  Printed: ms per step, and the extra ms per unit over the unit-less stack.
* **eps-map average** -- for each inner-imaged map (N, 1, rows, cols) and eps, a
  hybridized G-filter stage ``average(BN(conv3x3(v)))`` with eps filters, averaged over the
  eps maps by ``cmpese.units.base.channel_mean`` (a 1x1 convolution by 1/eps) or by
  ``mean(axis=1)`` (the second version); forward + backward.

The candidate operators are the package's (``cmpese.units.base``) and the earlier ones
that ``bench_units.py`` can patch in (its SQUEEZE_IMPLS / SCALE_IMPLS / MEAN_IMPLS).

    python benchmarks/bench_ops.py                    # the tables in docs/benchmarks.md
    python benchmarks/bench_ops.py --shapes 32x64x32x32 --rounds 3 --env OMP_NUM_THREADS=2
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

UNIT_SHAPES = ('32x64x32x32', '32x128x32x32', '32x256x8x8', '32x512x8x8')
# (N, rows, cols, eps): WRN-16-8 stage 3 with the WRN map rule and t = 16 (512 channels,
# joint: 1024 signals on 20 rows), and two ('cols', 16) maps of the other backbones
MAPS = ('32x20x53x32', '32x16x64x16', '32x64x16x32')
PAIRS = (('package', 'package'), ('adaptive', 'batch_dot'), ('package', 'batch_dot'),
         ('adaptive', 'package'), ('adaptive', 'broadcast_mul'), ('adaptive', 'broadcast_like'),
         ('mean', 'batch_dot'))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--shapes', default=','.join(UNIT_SHAPES),
                   help='unit shapes NxCxHxW, comma-separated (default %(default)s)')
    p.add_argument('--maps', default=','.join(MAPS),
                   help='inner-imaged maps NxROWSxCOLSxEPS, comma-separated (default '
                        '%(default)s); empty to skip')
    p.add_argument('--blocks', type=int, default=4, help='blocks per stack (default 4)')
    p.add_argument('--steps', type=int, default=10, help='steps per timed round')
    p.add_argument('--rounds', type=int, default=4, help='timed rounds (one more is warm-up)')
    p.add_argument('--env', action='append', default=[], metavar='KEY=VALUE',
                   help='environment variable set before importing MXNet (repeatable)')
    return p.parse_args(argv)


def dims(text):
    return tuple(int(d) for d in text.lower().split('x'))


def make_stack(channels, squeeze, scale, blocks):
    """The 4-block stack; ``squeeze`` None means no unit."""
    from mxnet.gluon import HybridBlock, nn

    class Stack(HybridBlock):
        def __init__(self):
            super(Stack, self).__init__()
            with self.name_scope():
                self.layers = nn.HybridSequential()
                for _ in range(blocks):
                    self.layers.add(nn.BatchNorm(in_channels=channels),
                                    nn.Conv2D(channels, 1, use_bias=False, in_channels=channels),
                                    nn.Dense(channels // 16, in_units=channels, use_bias=False),
                                    nn.Dense(channels, in_units=channels // 16, use_bias=False))

        def hybrid_forward(self, F, x):
            for i in range(blocks):
                bn, conv, fc1, fc2 = self.layers[4 * i:4 * i + 4]
                r = conv(F.Activation(bn(x), act_type='relu'))
                if squeeze is not None:
                    s = F.sigmoid(fc2(F.relu(fc1(squeeze(F, r)))))
                    r = scale(F, r, s)
                x = r + x
            return x
    return Stack()


def make_gstage(eps, average):
    from mxnet.gluon import HybridBlock, nn

    class GStage(HybridBlock):
        def __init__(self):
            super(GStage, self).__init__()
            with self.name_scope():
                self.conv = nn.Conv2D(eps, 3, use_bias=False, in_channels=1)
                self.bn = nn.BatchNorm(in_channels=eps)

        def hybrid_forward(self, F, v):
            return average(F, self.bn(self.conv(v)), eps)
    return GStage()


def time_rounds(nets, x, steps, rounds):
    """{label: best seconds per training step} over interleaved rounds (first discarded)."""
    import mxnet as mx
    from mxnet import autograd
    best = {}
    for r in range(rounds + 1):
        for label, net in nets.items():
            mx.nd.waitall()
            t0 = time.perf_counter()
            for _ in range(steps):
                with autograd.record():
                    y = net(x).sum()
                y.backward()
            mx.nd.waitall()
            dt = (time.perf_counter() - t0) / steps
            if r:
                best[label] = min(best.get(label, dt), dt)
    return best


def build(net):
    import mxnet as mx
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2))
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def main(argv=None):
    args = parse_args(argv)
    for kv in args.env:
        key, value = kv.split('=', 1)
        os.environ[key] = value
    import mxnet as mx
    from bench_units import MEAN_IMPLS, SCALE_IMPLS, SQUEEZE_IMPLS
    from cmpese.units import base

    squeezes = dict(SQUEEZE_IMPLS, package=base.squeeze)
    scales = dict(SCALE_IMPLS, package=base.scale)
    print('mxnet %s, %d CPUs, env %s; best of %d rounds x %d steps (training: forward + '
          'backward)' % (mx.__version__, os.cpu_count(),
                         ' '.join(args.env) or '-', args.rounds, args.steps))
    names = {'package': 'dot 1/HW', 'adaptive': 'AdaptiveAvgPooling2D', 'mean': 'mean(2,3)',
             'pooling': 'Pooling'}
    for text in filter(None, args.shapes.split(',')):
        shape = dims(text)
        nets = {'no unit': build(make_stack(shape[1], None, None, args.blocks))}
        for sq, sc in PAIRS:
            label = '%s / %s' % (names[sq], 'ones outer + mul' if sc == 'package' else sc)
            nets[label] = build(make_stack(shape[1], squeezes[sq], scales[sc], args.blocks))
        best = time_rounds(nets, mx.nd.random.normal(shape=shape), args.steps, args.rounds)
        print('\nunit shape %s, %d blocks' % (text, args.blocks))
        print('%-48s %10s %16s' % ('squeeze / rescale', 'ms/step', 'extra ms/unit'))
        for label, t in best.items():
            print('%-48s %10.2f %16.2f' % (label, 1e3 * t,
                                          1e3 * (t - best['no unit']) / args.blocks))
    averages = dict(MEAN_IMPLS, package=base.channel_mean)
    for text in filter(None, args.maps.split(',')):
        n, rows, cols, eps = dims(text)
        nets = {'%s' % ('1x1 conv by 1/eps' if k == 'package' else k):
                build(make_gstage(eps, fn)) for k, fn in averages.items()}
        best = time_rounds(nets, mx.nd.random.normal(shape=(n, 1, rows, cols)), args.steps,
                           args.rounds)
        print('\nG-filter stage on a %dx%d map, eps %d, batch %d: %s' % (
            rows, cols, eps, n, ', '.join('%s %.2f ms' % (k, 1e3 * t) for k, t in best.items())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
