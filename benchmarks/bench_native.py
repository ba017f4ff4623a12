#!/usr/bin/env python
"""The native rescale operators (cmpese/native) against the stock `train` profile operators.

At each shape (N, C, H, W) a hybridized block computes ``x = BN(conv1x1(a))`` -- so that x
comes out of oneDNN in its blocked layout, as a unit's input does in a network -- and then
one of

* ``scale``:          y = x * s
* ``scale_add``:      y = x * s + a                (a, the block input, is the identity)
* ``scale_add_relu``: y = relu(x * s + a)

written four ways: the native operator (``F.scale_add`` ...) on the 4-d tensors
(``native``) or on x and a reshaped to (N, C, H*W) (``flat``: the ``Reshape`` makes the one
plain copy of x that the backward reuses, instead of MXNet reordering x for the library in
the forward and again in the backward), and the stock operators of ``cmpese.units.ops`` --
the rescale ``dot`` (the `train` profile) or ``broadcast`` (the reference) -- followed by
``elemwise_add`` and ``Activation(relu)`` as the blocks write them. Also timed: the block
without any of it (``prefix``), and the plain backbone's own ``elemwise_add`` (+ relu) with
no unit. Each is a training step: forward, and backward of
``sum(y)`` into a, s and the layers' parameters. Times are medians over interleaved seeded
rounds (benchmarks/harness.py); the table gives each variant's extra ms over the prefix.

A second table times the native kernels alone on plain inputs (no convolution, so no
reorder), forward and forward + backward, in passes over the map: one pass is half of
``x.copy()`` (a read and a write), measured in the same rounds. The floors are 2 passes
forward for ``scale`` and 3 for the others; forward + backward adds the gradient of ones
autograd writes (1) and 3 / 4 / 5 passes (``scale`` / ``scale_add`` / ``scale_add_relu``).

Before timing, a small run with DNNL_VERBOSE=1 (a subprocess) counts the oneDNN reorders
of the feature map in one step of each variant: it shows where MXNet converts the blocked
x to plain NCHW (for the library operators, MXNet's CustomFComputeDispatcher does it for
every input, in the forward and again in the backward).

The default shapes are pre-act ResNet-164's bottleneck outputs of stages 1-3 at batch 32
and ResNet-50's stages 1-4 at batch 8.

    python benchmarks/bench_native.py --env OMP_NUM_THREADS=2
    python benchmarks/bench_native.py --shapes 32x64x32x32 --rounds 3 --conv dense
"""
import argparse
import os
import re
import subprocess
import sys
import time
import warnings

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SHAPES = ('32x64x32x32', '32x128x16x16', '32x256x8x8',                     # ResNet-164
          '8x256x56x56', '8x512x28x28', '8x1024x14x14', '8x2048x7x7')      # ResNet-50
OPS = ('scale', 'scale_add', 'scale_add_relu')
IMPLS = ('native', 'flat', 'dot', 'broadcast')
# what the plain backbone does where the unit's operator goes
PLAIN = {'scale': None, 'scale_add': 'add', 'scale_add_relu': 'add_relu'}
PROBE_SHAPE = '4x64x8x8'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--shapes', default=','.join(SHAPES), help='NxCxHxW, comma-separated')
    p.add_argument('--ops', default=','.join(OPS), help='operators (default %(default)s)')
    p.add_argument('--conv', choices=('depthwise', 'dense'), default='depthwise',
                   help="the 1x1 convolution making x: 'depthwise' (groups=C, cheap, so the "
                        "prefix does not drown the operators; default) or 'dense' (C->C)")
    p.add_argument('--rounds', type=int, default=5, help='timed rounds (one more is warm-up)')
    p.add_argument('--min-time', type=float, default=0.25,
                   help='seconds per variant and round (steps are repeated to fill it)')
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall')
    p.add_argument('--no-probe', action='store_true', help='skip the layout probe')
    p.add_argument('--probe', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--env', action='append', default=[], metavar='KEY=VALUE',
                   help='environment variable set before importing MXNet (repeatable)')
    return p.parse_args(argv)


def dims(text):
    return tuple(int(d) for d in text.lower().split('x'))


def variants(ops):
    out = ['prefix']
    for op in ops:
        if PLAIN[op] and PLAIN[op] not in out:
            out.append(PLAIN[op])
    return out + [(op, impl) for op in ops for impl in IMPLS]


def label(variant):
    return variant if isinstance(variant, str) else '%s/%s' % variant


def make_net(channels, variant, conv):
    from mxnet.gluon import HybridBlock, nn
    from cmpese.units import ops

    class Block(HybridBlock):
        def __init__(self):
            super(Block, self).__init__()
            with self.name_scope():
                self.conv = nn.Conv2D(channels, 1, use_bias=False, in_channels=channels,
                                      groups=channels if conv == 'depthwise' else 1)
                self.bn = nn.BatchNorm(in_channels=channels)

        def hybrid_forward(self, F, a, s):
            x = self.bn(self.conv(a))
            if variant == 'prefix':
                return x
            if variant in ('add', 'add_relu'):
                y = F.elemwise_add(x, a)
                return F.Activation(y, act_type='relu') if variant == 'add_relu' else y
            op, impl = variant
            if impl in ('native', 'flat'):
                xf, af = x, a
                if impl == 'flat':
                    xf, af = F.reshape(x, shape=(0, 0, -1)), F.reshape(a, shape=(0, 0, -1))
                y = F.scale(xf, s) if op == 'scale' else getattr(F, op)(xf, s, af)
                return F.reshape_like(y, a) if impl == 'flat' else y
            with ops.using(scale=impl):
                y = ops.scale(F, x, s)
            if op == 'scale':
                return y
            y = F.elemwise_add(y, a)
            return F.Activation(y, act_type='relu') if op == 'scale_add_relu' else y
    return Block()


def build(variant, shape, conv):
    import mxnet as mx
    # the prefix and the plain variants do not read s
    warnings.filterwarnings('ignore', message='The 1-th input to HybridBlock is not used')
    mx.random.seed(0)
    net = make_net(shape[1], variant, conv)
    net.initialize(mx.init.Xavier(magnitude=2))
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def inputs(shape):
    import mxnet as mx
    a = mx.nd.random.normal(shape=shape)
    s = mx.nd.random.uniform(0.1, 1, shape=shape[:2])
    a.attach_grad()
    s.attach_grad()
    return a, s


def step(net, a, s):
    from mxnet import autograd
    with autograd.record():
        y = net(a, s)
    y.backward()


FLOOR = {'scale': (2, 2 + 1 + 3), 'scale_add': (3, 3 + 1 + 4),
         'scale_add_relu': (3, 3 + 1 + 5)}


def kernel_table(ops, shapes, rounds, min_time, clock):
    """The native kernels alone on plain inputs, in passes over the map (see the head)."""
    import mxnet as mx
    from mxnet import autograd
    print('\nnative kernels alone on plain NCHW inputs: ms, and passes over the map (one pass '
          '= x.copy() / 2)')
    print('%-13s %7s  %-15s %9s %7s %6s  %9s %7s %6s' % (
        'shape', 'pass', 'operator', 'fwd ms', 'passes', 'floor', 'f+b ms', 'passes', 'floor'))
    for text in shapes:
        shape = dims(text)
        x, s = inputs(shape)
        r = mx.nd.random.normal(shape=shape)
        r.attach_grad()

        def fwd(op):
            return mx.nd.scale(x, s) if op == 'scale' else getattr(mx.nd, op)(x, s, r)

        def both(op):
            with autograd.record():
                y = fwd(op)
            y.backward()
        calls = {'copy': x.copy}
        for op in ops:
            calls[op] = lambda op=op: fwd(op)
            calls[op + '+b'] = lambda op=op: both(op)
        for call in calls.values():
            call()
        mx.nd.waitall()
        reps = harness.reps_for(lambda: (both(ops[0]), mx.nd.waitall()), min_time / 4)

        def measure(key):
            return harness.time_call(calls[key], reps=reps, clock=clock, sync=mx.nd.waitall)
        samples = harness.interleaved_rounds(measure, list(calls), rounds, warmup=1,
                                             label='kernels ' + text)
        ms = {k: 1e3 * harness.median(v) for k, v in samples.items()}
        one = ms['copy'] / 2
        for i, op in enumerate(ops):
            print('%-13s %7s  %-15s %9.3f %7.1f %6d  %9.3f %7.1f %6d' % (
                text if i == 0 else '', '%.3f' % one if i == 0 else '', op, ms[op],
                ms[op] / one, FLOOR[op][0], ms[op + '+b'], ms[op + '+b'] / one, FLOOR[op][1]),
                flush=True)


def probe(ops, conv):
    """(In the DNNL_VERBOSE=1 subprocess.) One warm step per variant, then a marked one."""
    import mxnet as mx
    shape = dims(PROBE_SHAPE)
    a, s = inputs(shape)
    for variant in variants(ops):
        net = build(variant, shape, conv)
        step(net, a, s)
        mx.nd.waitall()
        print('@@ %s' % label(variant), flush=True)
        step(net, a, s)
        mx.nd.waitall()
        print('@@ end', flush=True)


def layout_report(ops, conv, env):
    """{variant label: (blocked -> plain, plain -> blocked)} reorders of the map in a step."""
    command = [sys.executable, os.path.abspath(__file__), '--probe', '--conv', conv,
               '--ops', ','.join(ops)]
    done = subprocess.run(command, env=dict(env, DNNL_VERBOSE='1', OMP_NUM_THREADS='1'),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600)
    if done.returncode != 0:
        return None, done.stdout.strip().splitlines()[-1:]
    map_dims = 'x'.join(str(d) for d in dims(PROBE_SHAPE))
    counts, current = {}, None
    for line in done.stdout.splitlines():
        if line.startswith('@@ '):
            current = None if line == '@@ end' else line[3:]
            if current:
                counts[current] = [0, 0]
            continue
        if current is None or not line.startswith('dnnl_verbose,exec,cpu,reorder'):
            continue
        if ',%s,' % map_dims not in line:
            continue        # the weights' reorders
        src, dst = re.findall(r'(?:src|dst)_f32::blocked:(\w+):', line)[:2]
        if src != 'abcd' and dst == 'abcd':
            counts[current][0] += 1
        elif src == 'abcd' and dst != 'abcd':
            counts[current][1] += 1
    return counts, None


def main(argv=None):
    args = parse_args(argv)
    harness.apply_env(args.env)
    ops = [o for o in args.ops.split(',') if o]
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        sys.exit('bench_native.py: error: --ops: unknown %s; choose from %s'
                 % (', '.join(unknown), ', '.join(OPS)))
    from cmpese import native
    if not native.load():
        sys.exit('bench_native.py: error: the native operators did not load (see the log line '
                 'above)')
    if args.probe:
        probe(ops, args.conv)
        return 0
    import mxnet as mx
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    print(harness.environment_line())
    print('INDICATIVE ONLY when the load average exceeds the CPU count: another job shares '
          'the cores, and\nthe medians carry its noise.')
    print('x = BN(%s conv1x1(a)); forward + backward; median of %d rounds (%s clock), extra '
          'ms over the\nprefix (the block without the operator); s is (N, C), the identity is a'
          % ('depthwise' if args.conv == 'depthwise' else 'dense', args.rounds, args.clock))

    if not args.no_probe:
        counts, error = layout_report(ops, args.conv, os.environ)
        if counts is None:
            print('layout probe failed: %s' % ' '.join(error))
        else:
            print('\noneDNN reorders of the %s map in one training step (DNNL_VERBOSE=1): '
                  'blocked->plain / plain->blocked' % PROBE_SHAPE)
            print('  ' + ', '.join('%s %d/%d' % (k, v[0], v[1]) for k, v in counts.items()))

    print('\n%-13s %7s %-15s %7s %7s %7s %7s  %7s %7s %7s  %6s  %7s %7s' % (
        'shape', 'prefix', 'operator', 'native', 'flat', 'dot', 'bcast', 'dot/nat',
        'dot/fl', 'bc/fl', 'plain', 'unit-fl', 'unit-dot'))
    all_loads = []
    for text in filter(None, args.shapes.split(',')):
        shape = dims(text)
        a, s = inputs(shape)
        keys = variants(ops)
        nets = {}
        for variant in keys:
            nets[label(variant)] = build(variant, shape, args.conv)
            step(nets[label(variant)], a, s)
        mx.nd.waitall()
        reps = harness.reps_for(lambda: (step(nets['prefix'], a, s), mx.nd.waitall()),
                                args.min_time)
        loads = []

        def measure(key):
            return harness.time_call(lambda: step(nets[key], a, s), reps=reps, clock=clock,
                                     sync=mx.nd.waitall)
        samples = harness.interleaved_rounds(measure, list(nets), args.rounds, warmup=1,
                                             label=text, loads=loads)
        all_loads.extend(loads)
        ms = {k: 1e3 * harness.median(v) for k, v in samples.items()}
        base = ms['prefix']
        for i, op in enumerate(ops):
            extra = {impl: ms['%s/%s' % (op, impl)] - base for impl in IMPLS}
            plain = ms[PLAIN[op]] - base if PLAIN[op] else 0.0
            print('%-13s %7s %-15s %7.2f %7.2f %7.2f %7.2f  %7s %7s %7s  %6.2f  %7.2f %7.2f' % (
                text if i == 0 else '', '%.2f' % base if i == 0 else '', op,
                extra['native'], extra['flat'], extra['dot'], extra['broadcast'],
                ratio(extra['dot'], extra['native']), ratio(extra['dot'], extra['flat']),
                ratio(extra['broadcast'], extra['flat']), plain, extra['flat'] - plain,
                extra['dot'] - plain), flush=True)
        print('%-13s load average %.1f-%.1f, %d steps per variant and round' % (
            '', min(loads), max(loads), reps), flush=True)
        del nets
    print('ms over the prefix. plain: the plain backbone\'s own operator there (elemwise_add, '
          '+ relu);\nunit-fl / unit-dot: what the unit adds over the plain block with the flat '
          'native / the `train` (dot)\noperators; x/y: ratio of the extra times.')
    kernel_table(ops, [s for s in args.shapes.split(',') if s], args.rounds, args.min_time,
                 clock)
    if all_loads:
        print('load average during the rounds: %.1f-%.1f on %d CPUs' % (
            min(all_loads), max(all_loads), os.cpu_count() or 0))
    return 0


def ratio(num, den):
    return '%.2fx' % (num / den) if den > 0 else '-'


if __name__ == '__main__':
    sys.exit(main())
