#!/usr/bin/env python
"""Which operators the units should use (cmpese/units/ops.py), side by side, at every shape.

For each unit shape (N, C, H, W) a hybridized stack of ``--blocks`` blocks
``x = unit(conv1x1(relu(BN(x)))) + x``, the unit an SE unit (squeeze -> FC(C/16) -> ReLU ->
FC(C) -> sigmoid -> rescale) built with one (squeeze, rescale) pair of ``ops.IMPLS``, plus
the same stack without a unit. Training: forward + backward of ``sum(out)``; inference: a
forward in predict mode. The stacks are timed in interleaved seeded rounds
(benchmarks/harness.py). Printed: extra ms per unit over the unit-less stack (best round:
a shared 2-core machine only ever adds time). For each inner-imaged map (N, 1, rows, cols)
and eps, a G-filter stage ``average(BN(conv3x3(v)))`` with each channel-mean implementation.

The default shapes are the package's: CIFAR training batch 32 and 128 (WRN-16-8 stage 1,
ResNet-164 stages 1 and 3), ImageNet training batch 8 to 64 (ResNet-50 stages 1, 2 and 4) and
inference batch 1 and 8 / 32.

    python benchmarks/bench_ops.py --env OMP_NUM_THREADS=2        # the tables in docs/benchmarks.md
    python benchmarks/bench_ops.py --shapes 8x256x56x56 --modes train --rounds 3
"""
import argparse
import itertools
import os
import sys
import time

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# (mode, shape): CIFAR training 32 / 128, ImageNet training 8 / 32, inference 1 / 8 / 32
SHAPES = ('train:32x128x32x32', 'train:128x64x32x32', 'train:32x256x8x8',
          'train:8x256x56x56', 'train:32x512x28x28', 'train:64x2048x7x7',
          'infer:1x256x56x56', 'infer:8x256x56x56', 'infer:1x2048x7x7', 'infer:32x256x8x8',
          'infer:1x256x8x8')
MAPS = ('train:32x20x53x32', 'train:32x16x64x16', 'infer:1x16x64x16')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--shapes', default=','.join(SHAPES),
                   help='MODE:NxCxHxW, comma-separated, MODE train or infer (default %(default)s)')
    p.add_argument('--maps', default=','.join(MAPS),
                   help='MODE:NxROWSxCOLSxEPS inner-imaged maps (default %(default)s); empty to '
                        'skip')
    p.add_argument('--modes', default='train,infer', help='keep only these modes')
    p.add_argument('--blocks', type=int, default=4, help='blocks per stack (default 4)')
    p.add_argument('--memory-gb', type=float, default=4.0,
                   help='fewer blocks for training shapes whose stacks would need more (4)')
    p.add_argument('--steps', type=int, default=5, help='steps per timed round (default 5)')
    p.add_argument('--rounds', type=int, default=3, help='timed rounds (one more is warm-up)')
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                   help="cpu: the process's CPU time (less disturbed by other jobs)")
    p.add_argument('--env', action='append', default=[], metavar='KEY=VALUE',
                   help='environment variable set before importing MXNet (repeatable)')
    return p.parse_args(argv)


def dims(text):
    return tuple(int(d) for d in text.lower().split('x'))


def make_stack(channels, blocks, unit):
    from mxnet.gluon import HybridBlock, nn
    from cmpese.units import ops

    class Stack(HybridBlock):
        def __init__(self):
            super(Stack, self).__init__()
            with self.name_scope():
                self.layers = nn.HybridSequential()
                for _ in range(blocks):
                    self.layers.add(nn.BatchNorm(in_channels=channels),
                                    nn.Conv2D(channels, 1, use_bias=False, in_channels=channels))
                    if unit:
                        self.layers.add(
                            nn.Dense(channels // 16, in_units=channels, use_bias=False),
                            nn.Dense(channels, in_units=channels // 16, use_bias=False))

        def hybrid_forward(self, F, x):
            per = 4 if unit else 2
            for i in range(blocks):
                layers = self.layers[per * i:per * i + per]
                r = layers[1](F.Activation(layers[0](x), act_type='relu'))
                if unit:
                    fc1, fc2 = layers[2], layers[3]
                    s = F.sigmoid(fc2(F.relu(fc1(ops.squeeze(F, r)))))
                    r = ops.scale(F, r, s)
                x = r + x
            return x
    return Stack()


def make_gstage(eps):
    from mxnet.gluon import HybridBlock, nn
    from cmpese.units import ops

    class GStage(HybridBlock):
        def __init__(self):
            super(GStage, self).__init__()
            with self.name_scope():
                self.conv = nn.Conv2D(eps, 3, use_bias=False, in_channels=1)
                self.bn = nn.BatchNorm(in_channels=eps)

        def hybrid_forward(self, F, v):
            return ops.channel_mean(F, self.bn(self.conv(v)), eps)
    return GStage()


def step(net, x, mode):
    from mxnet import autograd
    if mode == 'train':
        with autograd.record():
            y = net(x).sum()
        y.backward()
    else:
        net(x)


def build(net, x, mode, choice):
    """Initialize, hybridize and trace ``net`` with the ops ``choice``."""
    import mxnet as mx
    from cmpese.units import ops
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2))
    with ops.using(**choice):
        net.hybridize(static_alloc=True, static_shape=True)
        step(net, x, mode)
    mx.nd.waitall()
    return net


CLOCK = [time.perf_counter]     # --clock cpu: time.process_time


def time_rounds(nets, x, mode, steps, rounds, label=''):
    """{label: best seconds per step} over interleaved seeded rounds (one more, discarded, as
    warm-up)."""
    import mxnet as mx

    def measure(key):
        return harness.time_call(lambda: step(nets[key], x, mode), reps=steps, clock=CLOCK[0],
                                 sync=mx.nd.waitall)
    samples = harness.interleaved_rounds(measure, list(nets), rounds, warmup=1, label=label)
    return {key: min(values) for key, values in samples.items()}


def main(argv=None):
    args = parse_args(argv)
    harness.apply_env(args.env)
    import mxnet as mx
    import numpy as np
    from cmpese.units import ops

    if args.clock == 'cpu':
        CLOCK[0] = time.process_time
    modes = set(args.modes.split(','))
    pairs = list(itertools.product(sorted(ops.IMPLS['squeeze']), sorted(ops.IMPLS['scale'])))
    print('%s\nbest of %d rounds x %d steps (%s time); profiles %s'
          % (harness.environment_line(), args.rounds, args.steps, args.clock, ops.PROFILES))
    print('extra ms per unit over the unit-less stack of %d blocks (squeeze / rescale)'
          % args.blocks)
    header = ['%s/%s' % p for p in pairs]
    print('%-22s %9s  %s' % ('mode:shape', 'no unit', ' '.join('%16s' % h for h in header)))
    for text in filter(None, args.shapes.split(',')):
        mode, shape = text.split(':')
        if mode not in modes:
            continue
        shape = dims(shape)
        x = mx.nd.random.normal(shape=shape)
        # a training stack holds about 16 tensors of the shape per block: keep all the
        # stacks of one shape under --memory-gb (32x256x56x56 at 4 blocks needed 17 GB)
        size = 4 * int(np.prod(shape))
        blocks = args.blocks if mode == 'infer' else max(1, min(args.blocks, int(
            args.memory_gb * 1e9 / ((len(pairs) + 1) * 16 * size))))
        nets = {'none': build(make_stack(shape[1], blocks, False), x, mode, {})}
        for sq, sc in pairs:
            nets[(sq, sc)] = build(make_stack(shape[1], blocks, True), x, mode,
                                   {'squeeze': sq, 'scale': sc})
        best = time_rounds(nets, x, mode, args.steps, args.rounds, label=text)
        base = best.pop('none')
        print('%-22s %8.2fms  %s%s' % (text, 1e3 * base, ' '.join(
            '%16.2f' % (1e3 * (best[p] - base) / blocks) for p in pairs),
            '  (%d blocks)' % blocks if blocks != args.blocks else ''), flush=True)
        del nets
    means = sorted(ops.IMPLS['mean'])
    for text in filter(None, args.maps.split(',')):
        mode, spec = text.split(':')
        if mode not in modes:
            continue
        n, rows, cols, eps = dims(spec)
        x = mx.nd.random.normal(shape=(n, 1, rows, cols))
        nets = {m: build(make_gstage(eps), x, mode, {'mean': m}) for m in means}
        best = time_rounds(nets, x, mode, args.steps, args.rounds, label=text)
        print('G-filter stage %s (batch %d, %dx%d map, eps %d): %s' % (
            mode, n, rows, cols, eps, ', '.join('mean=%s %.2f ms' % (m, 1e3 * best[m])
                                               for m in means)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
