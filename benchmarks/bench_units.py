#!/usr/bin/env python
"""Cost of the recalibration units: training-step time and inference throughput.

For every model, on the same input batch, one run measures

* the training step of the hybridized network (``hybridize(static_alloc=True,
  static_shape=True)``): forward under ``autograd.record()``, softmax cross-entropy,
  backward, ``Trainer.step`` of SGD with Nesterov momentum 0.9, closed by ``mx.nd.waitall()``;
* the inference throughput (images/s) of the same hybridized network in predict mode.

Families (``--families``):

* ``wrn16_8``      WRN-16-8: plain, SE and the three CMPE-SE modes (double_fc, 2x1, 1x1);
* ``preresnet164`` pre-activation ResNet-164: the same five variants;
* ``wrn28_10``     our plain WRN-28-10 against GluonCV's ``cifar_wideresnet28_10``
                   (heavy, about 5 GFLOPs per image forward: run at ``--big-batch-size``);
* ``ini_wrn16_8``  WRN-16-8: plain, SE and Inner-Imaging simple-3, square-3 and mix-5-d;
* ``ini_preresnet164`` pre-activation ResNet-164: the same five variants.

Fairness on a small, noisy machine: every model of a family is built and hybridized and
makes one untimed first call (which builds its cached graphs), then the family is timed
round-robin, ``for r in rounds: for m in models: time --steps steps``, in a new seeded
random order each round, after ``--warmup`` discarded rounds; training rounds come first,
then inference rounds. The median over rounds is reported. Weights are initialised from a
fixed seed and every model sees the same input batch and labels. Families run one after
the other (``--interleave all`` mixes them, but needs more than 20 GB of memory).

Ratios are time / time of the family's baseline (plain model; GluonCV for WRN-28-10), for
inference the inverse ratio of throughputs, so 1.00 means "as fast" and larger is slower.

The memory floor (every family but wrn28_10; ``--no-floor`` leaves it out). Is a goal
reachable at all on this machine, by any implementation of a unit, even a perfectly fused
one? Every unit (SE, CMPE-SE, InI) at least squeezes the residual R (N, C, H, W) and
rescales it. Beyond what the plain block already moves, a perfectly fused kernel must still
move, per unit:

* forward, 1 pass over R: the squeeze reads R; the rescale can be fused into the residual
  addition that the plain block does anyway, so it adds nothing;
* backward, 4 passes: ds = sum_hw dY * R reads dY and R (2); dR = s * dY + dz / (H*W) can
  only be written once ds has gone back through the excitation, so it reads dY again and
  writes dR (2).

So a training step costs at least 5 extra passes over each unit's residual, an inference
batch at least 1. A pass is timed on this machine, in the same process and in the same
shuffled rounds as the models (drift hits it too), as one third of
``mx.nd.elemwise_add(a, b, out=c)`` on a tensor of the unit's shape: the operator the plain
network itself uses for its residual additions, which reads two tensors and writes one.
The unit shapes are the inputs of the SEUnits of ``se_<backbone>`` in one forward pass on
the family's batch; every unit has its own preallocated a, b, c, so that no pass finds its
data in a cache that the previous one warmed. Then

    floor per training step  = (5/3) * sum over units of t_add(shape)
    floor per inference batch = (1/3) * the same sum
    floor ratio = (plain median + floor median) / plain median

A goal below the floor ratio cannot be met on this machine by any unit, whatever its
operators; the floor row says "lower bound" and does not count among the goals.

    python benchmarks/bench_units.py                       # full run (~25 min on 2 cores)
    python benchmarks/bench_units.py --quick               # smoke run (~1 min)
    python benchmarks/bench_units.py --families wrn16_8 --rounds 3 --json out.json
    python benchmarks/bench_units.py --families preresnet164 --no-inference --no-floor

Experiments (nothing in cmpese/ is modified; the unit modules are patched in memory for
this process only and the output is marked as such). The package squeezes with a dot by a
row of 1/(H*W) and rescales by s spread over the map with a dot by a row of ones (cmpese/units/
base.py); these flags swap in the earlier versions:

    --squeeze-impl pooling      squeeze with a global average Pooling (the first version)
    --squeeze-impl adaptive|mean   contrib.AdaptiveAvgPooling2D(output_size=1) (the second
                                version) / mean(axis=(2,3))
    --scale-impl broadcast_mul  rescale with broadcast_mul (the first version)
    --scale-impl batch_dot      batch_dot of (N*C,1,1) by (N*C,1,H*W) (the second version)
    --mean-impl mean            average the pair-view / G-filter maps with mean(axis=1) (the
                                second version) instead of a 1x1 convolution by 1/eps
    --relu-impl activation      trace any remaining F.relu as Activation(act_type='relu')
    --env KEY=VALUE             set an environment variable before MXNet is imported
    --profile MODEL             mx.profiler per-operator table of one training step and one
                                inference batch of MODEL (op bulking off), then exit
"""
import argparse
import gc
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from a checkout without installing: find cmpese/
    sys.path.insert(1, _ROOT)

FAMILIES = ('wrn16_8', 'preresnet164', 'wrn28_10', 'ini_wrn16_8', 'ini_preresnet164')
INI_SETS = ('simple_3', 'square_3', 'mix_5_d')
MODES = ('double_fc', '2x1', '1x1')
GOAL_SE = 1.05
GOAL_CMPE = 1.07
GOAL_OURS = 1.00
GOAL_INI = 1.10
# the memory floor: extra passes over a unit's residual that even a fused unit must make
FLOOR_TRAIN_PASSES = 5     # forward 1 (squeeze) + backward 4 (ds: read dY, R; dR: read dY, write)
FLOOR_INFER_PASSES = 1     # the squeeze; the rescale folds into the residual addition
ADD_PASSES = 3             # elemwise_add(a, b, out=c) reads two tensors and writes one
FLOOR_BACKBONES = {'wrn16_8': 'wrn16_8', 'preresnet164': 'preresnet164',
                   'ini_wrn16_8': 'wrn16_8', 'ini_preresnet164': 'preresnet164'}
FLOOR_LABEL = 'memory floor (any unit, %d passes)' % FLOOR_TRAIN_PASSES
ROLE_NAMES = {'se': 'SE', 'cmpe': 'CMPE-SE', 'ini': 'InI', 'ours': 'ours vs GluonCV'}

log = logging.getLogger('bench_units')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--families', default=','.join(FAMILIES),
                   help='comma-separated subset of %s (default: all)' % ', '.join(FAMILIES))
    p.add_argument('--batch-size', type=int, default=32,
                   help='batch for WRN-16-8 and ResNet-164, training and inference (32)')
    p.add_argument('--big-batch-size', type=int, default=8,
                   help='batch for the WRN-28-10 comparison, training and inference (8)')
    p.add_argument('--rounds', type=int, default=6,
                   help='round-robin rounds; the median over rounds is reported (6)')
    p.add_argument('--steps', type=int, default=1,
                   help='training steps timed per model per round (1)')
    p.add_argument('--infer-steps', type=int, default=2,
                   help='inference batches timed per model per round (2)')
    p.add_argument('--warmup', type=int, default=1,
                   help='untimed interleaved rounds before the timed ones, after the first '
                        'call of each model that builds its cached graphs (1)')
    p.add_argument('--interleave', choices=('family', 'all'), default='family',
                   help="round-robin within each family, one family after the other (default: "
                        "only one family is in memory; ratios are within a family), or over "
                        "all selected models at once (more than 20 GB of memory at the "
                        "default batch sizes)")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--lr', type=float, default=0.01)
    p.add_argument('--json', metavar='OUT.json', help='also save every figure to this file')
    p.add_argument('--quick', action='store_true',
                   help='smoke run: defaults become batch 8 (WRN-28-10: 2), 2 rounds, 1 step, '
                        '1 inference batch, no warm-up round (explicit flags still win)')
    p.add_argument('--no-inference', action='store_true', help='time training only')
    p.add_argument('--no-train', action='store_true', help='time inference only')
    p.add_argument('--no-floor', action='store_true',
                   help='leave out the memory floor (timed by default in every family but '
                        'wrn28_10: %d passes per training step and %d per inference batch '
                        'over each unit residual, one pass = 1/%d of an elemwise_add)'
                   % (FLOOR_TRAIN_PASSES, FLOOR_INFER_PASSES, ADD_PASSES))
    p.add_argument('--squeeze-impl', choices=('package',) + tuple(SQUEEZE_IMPLS),
                   default='package', help='EXPERIMENT: op used by the units to squeeze')
    p.add_argument('--scale-impl', choices=('package',) + tuple(SCALE_IMPLS),
                   default='package', help='EXPERIMENT: op used by the units to rescale')
    p.add_argument('--mean-impl', choices=('package',) + tuple(MEAN_IMPLS), default='package',
                   help='EXPERIMENT: op used by CMPE-SE pair-view and InI to average their '
                        'eps maps (the second version: mean)')
    p.add_argument('--relu-impl', choices=('package', 'activation'), default='package',
                   help="EXPERIMENT: 'activation' makes every F.relu traced into a hybridized "
                        "graph an Activation(act_type='relu') (oneDNN eltwise), as GluonCV uses")
    p.add_argument('--env', action='append', default=[], metavar='KEY=VALUE',
                   help='EXPERIMENT: environment variable set before importing MXNet '
                        '(repeatable), e.g. OMP_NUM_THREADS=2')
    p.add_argument('--profile', metavar='MODEL',
                   help='print mx.profiler per-operator totals of one training step and one '
                        'inference batch of MODEL (a cmpese name or cifar_wideresnet28_10) and '
                        'exit; disables op bulking')
    p.add_argument('-v', '--verbose', action='store_true')
    if '--quick' in (sys.argv[1:] if argv is None else argv):
        p.set_defaults(batch_size=8, big_batch_size=2, rounds=2, steps=1, infer_steps=1,
                       warmup=0)
    args = p.parse_args(argv)
    fams = [f.strip() for f in args.families.split(',') if f.strip()]
    bad = [f for f in fams if f not in FAMILIES]
    if bad or not fams:
        p.error('--families: unknown %s; choose from %s' % (', '.join(bad) or '(none)',
                                                             ', '.join(FAMILIES)))
    args.families = fams
    for name in ('batch_size', 'big_batch_size', 'rounds', 'steps', 'infer_steps'):
        if getattr(args, name) < 1:
            p.error('--%s must be >= 1' % name.replace('_', '-'))
    if args.warmup < 0:
        p.error('--warmup must be >= 0')
    if args.no_inference and args.no_train:
        p.error('--no-inference and --no-train leave nothing to measure')
    for kv in args.env:
        if '=' not in kv:
            p.error('--env expects KEY=VALUE, got %r' % kv)
    return args


# --------------------------------------------------------------------------- experiments
# The operators the units used before (and one more candidate each), by name. The package's
# own are cmpese.units.base.squeeze / scale / channel_mean; benchmarks/bench_ops.py times
# all of them side by side on single unit shapes.
SQUEEZE_IMPLS = {
    'pooling': lambda F, x: F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type='avg'),
    'adaptive': lambda F, x: F.contrib.AdaptiveAvgPooling2D(x, output_size=1),
    'mean': lambda F, x: F.mean(x, axis=(2, 3), keepdims=True),
}
SCALE_IMPLS = {
    'broadcast_like': lambda F, x, s: x * F.broadcast_like(F.reshape(s, shape=(0, 0, 1, 1)), x),
    'broadcast_mul': lambda F, x, s: F.broadcast_mul(x, F.reshape(s, shape=(0, 0, 1, 1))),
    # (N*C, 1, 1) x (N*C, 1, H*W): ds is N*C one-element dot products
    'batch_dot': lambda F, x, s: F.reshape_like(
        F.batch_dot(F.reshape(s, shape=(-1, 1, 1)), F.reshape(x, shape=(-3, 1, -1))), x),
}
MEAN_IMPLS = {
    'mean': lambda F, x, channels: F.mean(x, axis=1, keepdims=True),
}


def patch_units(squeeze_impl, scale_impl, mean_impl='package'):
    """Swap the squeeze / scale / channel-mean helpers the units call (in memory, this
    process only)."""
    import cmpese.units.competitive as competitive
    import cmpese.units.inner_imaging as inner_imaging
    import cmpese.units.se as se
    from cmpese.units import base
    modules = (se, competitive, inner_imaging)

    if squeeze_impl != 'package':
        package_squeeze, impl = base.squeeze, SQUEEZE_IMPLS[squeeze_impl]

        def squeeze(F, x, pool_type='avg'):
            return impl(F, x) if pool_type == 'avg' else package_squeeze(F, x, pool_type)
        for module in modules:
            module.squeeze = squeeze
    if scale_impl != 'package':
        for module in modules:
            module.scale = SCALE_IMPLS[scale_impl]
    if mean_impl != 'package':
        for module in (competitive, inner_imaging):
            module.channel_mean = MEAN_IMPLS[mean_impl]


def patch_relu(relu_impl):
    """Hybridized graphs are traced with F = mx.symbol: make its ``relu`` an Activation."""
    if relu_impl == 'package':
        return
    import mxnet as mx

    def relu(data=None, name=None, attr=None, out=None, **kwargs):
        return mx.sym.Activation(data, act_type='relu', name=name, attr=attr, **kwargs)
    mx.sym.relu = mx.symbol.relu = relu


# --------------------------------------------------------------------------- models
def model_specs(args):
    """(family, label, source, name, batch, role) for every selected model."""
    specs = []
    for fam in args.families:
        if fam in ('wrn16_8', 'preresnet164'):
            specs.append((fam, fam, 'cmpese', fam, args.batch_size, 'plain'))
            specs.append((fam, 'se_' + fam, 'cmpese', 'se_' + fam, args.batch_size, 'se'))
            for mode in MODES:
                name = 'cmpe_se_%s_%s' % (fam, mode)
                specs.append((fam, name, 'cmpese', name, args.batch_size, 'cmpe'))
        elif fam.startswith('ini_'):
            backbone = fam[len('ini_'):]
            specs.append((fam, backbone, 'cmpese', backbone, args.batch_size, 'plain'))
            specs.append((fam, 'se_' + backbone, 'cmpese', 'se_' + backbone, args.batch_size,
                          'se'))
            for gset in INI_SETS:
                name = '%s_%s' % (fam, gset)        # e.g. ini_wrn16_8_simple_3
                specs.append((fam, name, 'cmpese', name, args.batch_size, 'ini'))
        else:
            specs.append((fam, 'gluoncv cifar_wideresnet28_10', 'gluoncv',
                          'cifar_wideresnet28_10', args.big_batch_size, 'plain'))
            specs.append((fam, 'wrn28_10 (ours)', 'cmpese', 'wrn28_10', args.big_batch_size,
                          'ours'))
    return specs


def build(source, name, seed):
    import mxnet as mx
    import cmpese
    mx.random.seed(seed)
    if source == 'gluoncv':
        import gluoncv
        net = gluoncv.model_zoo.get_model(name, classes=10)
    else:
        net = cmpese.get_model(name, classes=10)
    net.initialize(mx.init.Xavier(magnitude=2), ctx=mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def make_trainer(net, lr):
    """SGD with Nesterov momentum 0.9: 'sgd' with nesterov=True where MXNet has it (2.x),
    otherwise MXNet 1.x's equivalent optimizer 'nag'."""
    from mxnet import gluon
    opts = {'learning_rate': lr, 'momentum': 0.9, 'wd': 5e-4}
    try:
        return gluon.Trainer(net.collect_params(), 'sgd', dict(opts, nesterov=True)), \
            'sgd(nesterov=True)'
    except TypeError:
        return gluon.Trainer(net.collect_params(), 'nag', opts), 'nag (= SGD + Nesterov)'


class Bench(object):
    """One model with its trainer and its slice of the shared batch."""

    def __init__(self, spec, data, label, args):
        import mxnet as mx
        from mxnet import gluon
        self.family, self.label, self.source, self.name, self.batch, self.role = spec
        t0 = time.perf_counter()
        self.net = build(self.source, self.name, args.seed)
        self.trainer, self.optimizer = make_trainer(self.net, args.lr)
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        self.x = data[:self.batch].copy()
        self.y = label[:self.batch].copy()
        self.train_times, self.infer_times = [], []
        self.last_loss = float('nan')
        mx.nd.waitall()
        self.build_s = time.perf_counter() - t0

    def train_step(self):
        from mxnet import autograd
        import mxnet as mx
        with autograd.record():
            loss = self.loss_fn(self.net(self.x), self.y)
        loss.backward()
        self.trainer.step(self.batch)
        mx.nd.waitall()
        return loss

    def infer_step(self):
        import mxnet as mx
        out = self.net(self.x)
        mx.nd.waitall()
        return out

    def first_call(self, train, infer):
        """Untimed first training step / inference batch: builds the cached graphs."""
        t0 = time.perf_counter()
        if train:
            self.train_step()
        if infer:
            self.infer_step()
        self.warmup_s = time.perf_counter() - t0
        # after the first forward, so that deferred shapes (GluonCV) are known
        self.params = sum(int(math.prod(p.shape)) for p in self.net.collect_params().values())

    def time_train(self, steps):
        import mxnet as mx
        mx.nd.waitall()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = self.train_step()
        self.train_times.append((time.perf_counter() - t0) / steps)
        self.last_loss = float(loss.mean().asscalar())

    def time_infer(self, steps):
        import mxnet as mx
        mx.nd.waitall()
        t0 = time.perf_counter()
        for _ in range(steps):
            self.infer_step()
        self.infer_times.append((time.perf_counter() - t0) / steps)

    def release(self):
        del self.net, self.trainer


def unit_shapes(backbone, data, batch, seed):
    """Shapes of the residuals the units of ``backbone`` recalibrate, in network order.

    Builds ``se_<backbone>`` (not hybridized, Xavier init), runs one forward pass on the
    first ``batch`` images with a forward pre-hook on every SEUnit that records the shape
    of its first input (the residual), then frees the model. CMPE-SE and InI sit at the
    same places, so their residuals have the same shapes.
    """
    import mxnet as mx
    import cmpese
    from cmpese.units import SEUnit
    mx.random.seed(seed)
    net = cmpese.get_model('se_' + backbone, classes=10)
    net.initialize(mx.init.Xavier(magnitude=2), ctx=mx.cpu())
    shapes, handles = [], []

    def record(block, inputs):
        shapes.append(tuple(int(d) for d in inputs[0].shape))

    def hook(block):
        if isinstance(block, SEUnit):
            handles.append(block.register_forward_pre_hook(record))
    net.apply(hook)
    net(data[:batch]).wait_to_read()
    for h in handles:
        h.detach()
    del net
    gc.collect()
    if not shapes:
        raise RuntimeError('se_%s: no SEUnit was called in a forward pass; cannot size the '
                           'memory floor (pass --no-floor)' % backbone)
    return shapes


class FloorBench(object):
    """The memory floor of a family, timed in its rounds like a model (see the docstring).

    A timed call runs ``steps`` repetitions of ``elemwise_add(a, b, out=c)`` over every
    unit's shape, closed by ``mx.nd.waitall()``; the training time stored is
    FLOOR_TRAIN_PASSES / ADD_PASSES of the per-step add time, the inference time
    FLOOR_INFER_PASSES / ADD_PASSES of it.
    """

    source = 'floor'
    role = 'floor'
    optimizer = '-'
    params = 0

    def __init__(self, family, backbone, shapes, batch):
        import mxnet as mx
        import numpy as np
        self.family, self.backbone, self.batch = family, backbone, batch
        self.label = FLOOR_LABEL
        self.name = 'floor_' + backbone
        self.shapes = list(shapes)
        t0 = time.perf_counter()
        # one (a, b, c) per unit, as in the network: no pass reads what the last one cached
        self.buffers = [(mx.nd.ones(s), mx.nd.ones(s), mx.nd.zeros(s)) for s in self.shapes]
        self.elements = sum(int(math.prod(s)) for s in self.shapes)
        self.bytes_per_pass = self.elements * np.dtype('float32').itemsize
        self.train_times, self.infer_times = [], []
        self.last_loss = float('nan')
        mx.nd.waitall()
        self.build_s = time.perf_counter() - t0
        self.warmup_s = 0.0

    def add_all(self):
        import mxnet as mx
        for a, b, c in self.buffers:
            mx.nd.elemwise_add(a, b, out=c)

    def _time_adds(self, steps):
        """Seconds per repetition of the adds over all units."""
        import mxnet as mx
        mx.nd.waitall()
        t0 = time.perf_counter()
        for _ in range(steps):
            self.add_all()
        mx.nd.waitall()
        return (time.perf_counter() - t0) / steps

    def first_call(self, train, infer):
        self.warmup_s = self._time_adds(1)

    def time_train(self, steps):
        self.train_times.append(self._time_adds(steps) * FLOOR_TRAIN_PASSES / ADD_PASSES)

    def time_infer(self, steps):
        self.infer_times.append(self._time_adds(steps) * FLOOR_INFER_PASSES / ADD_PASSES)

    def release(self):
        del self.buffers


def spread(values):
    """(max - min) / median, in percent."""
    if len(values) < 2:
        return 0.0
    med = statistics.median(values)
    return 100.0 * (max(values) - min(values)) / med if med else float('nan')


def paired(times, base_times):
    """Median over rounds of the per-round ratio (drift common to a round cancels)."""
    return statistics.median(t / b for t, b in zip(times, base_times))


def _count(items):
    """[(item, how many times in a row)], runs of equal consecutive items."""
    runs = []
    for it in items:
        if runs and runs[-1][0] == it:
            runs[-1][1] += 1
        else:
            runs.append([it, 1])
    return runs


def rss_mb():
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except Exception:  # pragma: no cover - non-POSIX
        return float('nan')


# --------------------------------------------------------------------------- report
def goal_for(role):
    return {'se': GOAL_SE, 'cmpe': GOAL_CMPE, 'ours': GOAL_OURS, 'ini': GOAL_INI}.get(role)


def summarise(benches, args):
    rows = []
    by_family = {}
    for b in benches:
        by_family.setdefault(b.family, []).append(b)
    for fam, members in by_family.items():
        base = members[0]
        for b in members:
            if b.role == 'floor':
                rows.append(floor_row(b, base))
                continue
            row = {'family': fam, 'model': b.label, 'name': b.name, 'source': b.source,
                   'role': b.role, 'batch': b.batch, 'params': b.params,
                   'baseline': base.label, 'goal': goal_for(b.role),
                   'build_s': round(b.build_s, 2), 'warmup_s': round(b.warmup_s, 2),
                   'last_loss': b.last_loss}
            if b.train_times:
                med = statistics.median(b.train_times)
                bmed = statistics.median(base.train_times)
                row.update(train_ms=1e3 * med, train_ms_min=1e3 * min(b.train_times),
                           train_spread_pct=spread(b.train_times),
                           train_ratio=med / bmed,
                           train_paired_ratio=paired(b.train_times, base.train_times),
                           train_samples_ms=[1e3 * t for t in b.train_times])
            if b.infer_times:
                med = statistics.median(b.infer_times)
                bmed = statistics.median(base.infer_times)
                row.update(infer_img_s=b.batch / med, infer_ms=1e3 * med,
                           infer_spread_pct=spread(b.infer_times),
                           infer_ratio=med / bmed,
                           infer_paired_ratio=paired(b.infer_times, base.infer_times),
                           infer_samples_ms=[1e3 * t for t in b.infer_times])
            for kind in ('train', 'infer'):
                ratio = row.get(kind + '_ratio')
                if row['goal'] is not None and ratio is not None:
                    row[kind + '_pass'] = bool(ratio <= row['goal'])
            rows.append(row)
    return rows


def floor_row(b, base):
    """The row of a FloorBench: its own times, and the ratios of plain + floor to plain."""
    row = {'family': b.family, 'model': b.label, 'name': b.name, 'source': b.source,
           'role': b.role, 'batch': b.batch, 'params': 0, 'baseline': base.label,
           'goal': None, 'bound': 'lower', 'build_s': round(b.build_s, 2),
           'warmup_s': round(b.warmup_s, 2), 'last_loss': None,
           'units': len(b.shapes), 'unit_shapes': [list(s) for s in b.shapes],
           'bytes_per_pass': b.bytes_per_pass,
           'passes': {'train': FLOOR_TRAIN_PASSES, 'infer': FLOOR_INFER_PASSES},
           'pass_timed_as': '1/%d of mx.nd.elemwise_add(a, b, out=c) per unit shape'
                            % ADD_PASSES}
    for kind, times, base_times, passes in (
            ('train', b.train_times, base.train_times, FLOOR_TRAIN_PASSES),
            ('infer', b.infer_times, base.infer_times, FLOOR_INFER_PASSES)):
        if not times or not base_times:
            continue
        med, bmed = statistics.median(times), statistics.median(base_times)
        row.update({kind + '_ms': 1e3 * med,                  # the floor alone
                    kind + '_ms_min': 1e3 * min(times),
                    kind + '_spread_pct': spread(times),
                    kind + '_with_floor_ms': 1e3 * (bmed + med),  # plain + floor
                    kind + '_ratio': (bmed + med) / bmed,
                    kind + '_paired_ratio': statistics.median(
                        (p + t) / p for t, p in zip(times, base_times)),
                    kind + '_pass_gb_s': passes * b.bytes_per_pass / med / 1e9,
                    kind + '_samples_ms': [1e3 * t for t in times]})
        if kind == 'infer':  # what any unit model could reach at best
            row['infer_img_s_with_floor'] = b.batch / (bmed + med)
    return row


def verdict(row, kind):
    if row['role'] == 'floor':
        return 'lower bound' if kind + '_ratio' in row else '-'
    if row['goal'] is None:
        return 'baseline'
    if kind + '_pass' not in row:
        return '-'
    return '%s (<= %.2f)' % ('PASS' if row[kind + '_pass'] else 'FAIL', row['goal'])


def format_table(rows, args):
    head = ('model', 'batch', 'train ms/step', 'spread', 'ratio', 'train goal',
            'infer img/s', 'spread', 'ratio', 'infer goal')
    lines = []
    fams = []
    for r in rows:
        if r['family'] not in fams:
            fams.append(r['family'])
    titles = {'wrn16_8': 'WRN-16-8 (ratios to plain wrn16_8)',
              'preresnet164': 'Pre-act ResNet-164 (ratios to plain preresnet164)',
              'wrn28_10': 'WRN-28-10, ours vs GluonCV (ratio ours / GluonCV), batch %d'
                          % args.big_batch_size,
              'ini_wrn16_8': 'Inner-Imaging on WRN-16-8 (ratios to plain wrn16_8)',
              'ini_preresnet164': 'Inner-Imaging on pre-act ResNet-164 (ratios to plain '
                                  'preresnet164)'}
    table = []
    for fam in fams:
        table.append(('## ' + titles[fam],))
        for r in (r for r in rows if r['family'] == fam):
            if r['role'] == 'floor':  # extra ms over plain; best img/s of any unit model
                tr = ('+%.1f' % r['train_ms'], '%.0f%%' % r['train_spread_pct'],
                      '%.3fx' % r['train_ratio']) if 'train_ms' in r else ('-', '-', '-')
                inf = ('<=%.1f' % r['infer_img_s_with_floor'],
                       '%.0f%%' % r['infer_spread_pct'],
                       '%.3fx' % r['infer_ratio']) if 'infer_ms' in r else ('-', '-', '-')
                table.append((r['model'], str(r['batch'])) + tr + (verdict(r, 'train'),) +
                             inf + (verdict(r, 'infer'),))
                continue
            tr = ('%.1f' % r['train_ms'], '%.0f%%' % r['train_spread_pct'],
                  '%.3fx' % r['train_ratio']) if 'train_ms' in r else ('-', '-', '-')
            inf = ('%.1f' % r['infer_img_s'], '%.0f%%' % r['infer_spread_pct'],
                   '%.3fx' % r['infer_ratio']) if 'infer_img_s' in r else ('-', '-', '-')
            table.append((r['model'], str(r['batch'])) + tr + (verdict(r, 'train'),) + inf +
                         (verdict(r, 'infer'),))
    widths = [max(len(head[i]), max((len(t[i]) for t in table if len(t) > 1), default=0))
              for i in range(len(head))]

    def fmt(cells):  # names and verdicts left-aligned, numbers right-aligned
        return ' | '.join(c.ljust(w) if i in (0, 5, 9) else c.rjust(w)
                          for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    sep = '-+-'.join('-' * w for w in widths)
    lines.append(fmt(head))
    lines.append(sep)
    for t in table:
        if len(t) == 1:
            lines.append(t[0])
        else:
            lines.append(fmt(t))
    return '\n'.join(lines)


def floor_summary(rows):
    """{family: floor figures and the goals that lie below it}, from the rows."""
    out = {}
    for f in (r for r in rows if r['role'] == 'floor'):
        goals = []
        for r in rows:
            g = (ROLE_NAMES.get(r['role'], r['role']), r['goal'])
            if r['family'] == f['family'] and r['goal'] is not None and g not in goals:
                goals.append(g)
        entry = {'units': f['units'], 'batch': f['batch'],
                 'bytes_per_pass': f['bytes_per_pass'], 'baseline': f['baseline'],
                 'goals_below_floor': {}}
        for kind in ('train', 'infer'):
            if kind + '_ratio' not in f:
                continue
            for key in ('ms', 'with_floor_ms', 'ratio', 'paired_ratio', 'pass_gb_s'):
                entry['%s_%s' % (kind, key)] = f['%s_%s' % (kind, key)]
            entry['goals_below_floor'][kind] = [
                {'unit': name, 'goal': goal} for name, goal in goals
                if f[kind + '_ratio'] > goal]
        out[f['family']] = entry
    return out


def floor_lines(floors):
    """Per family: which goals lie below the floor, and the floor's own figures."""
    what = {'train': 'training', 'infer': 'inference'}
    lines = []
    for fam, e in floors.items():
        above = []
        for kind in ('train', 'infer'):
            if kind + '_ratio' not in e:
                continue
            ratio, below = e[kind + '_ratio'], e['goals_below_floor'][kind]
            if below:
                lines.append('%s: floor %.3fx (%s) > %s: no implementation of a unit can '
                             'meet %s on this machine'
                             % (fam, ratio, what[kind],
                                ', '.join('%s goal %.2fx' % (g['unit'], g['goal'])
                                          for g in below),
                                'it' if len(below) == 1 else 'them'))
            else:
                above.append('%.3fx (%s)' % (ratio, what[kind]))
        if above:
            lines.append('%s: floor %s: the goals are above the floor'
                         % (fam, ', '.join(above)))
    for fam, e in floors.items():
        parts = ['%s: floor of %d unit residuals, %.1f MB per pass at batch %d'
                 % (fam, e['units'], e['bytes_per_pass'] / 1e6, e['batch'])]
        for kind, n in (('train', FLOOR_TRAIN_PASSES), ('infer', FLOOR_INFER_PASSES)):
            if kind + '_ms' in e:
                parts.append('+%.1f ms per %s (%d pass%s; one pass at %.1f GB/s)'
                             % (e[kind + '_ms'],
                                'training step' if kind == 'train' else 'inference batch',
                                n, 'es' if n > 1 else '', e[kind + '_pass_gb_s']))
        lines.append('  ' + '; '.join(parts))
    return lines


def environment(args, user_env):
    import mxnet as mx
    env = {'python': platform.python_version(), 'mxnet': mx.__version__,
           'machine': platform.machine(), 'cpus': os.cpu_count(),
           'cpu': _cpu_name(), 'platform': platform.platform()}
    try:
        from importlib import metadata
        env['gluoncv'] = metadata.version('gluoncv')
    except Exception:
        env['gluoncv'] = '?'
    try:
        feats = mx.runtime.Features()
        env['mxnet_features'] = [f for f in ('MKLDNN', 'OPENMP', 'BLAS_OPEN', 'BLAS_MKL', 'CUDA')
                                 if feats.is_enabled(f)]
    except Exception:
        env['mxnet_features'] = []
    env['env'] = user_env
    return env


def tuning_env():
    """The threading / MXNet variables set by the user (snapshot before importing MXNet,
    which sets a couple of KMP_* variables itself)."""
    return {k: v for k, v in sorted(os.environ.items())
            if k.startswith(('MXNET_', 'OMP_', 'KMP_', 'OPENBLAS_', 'MKL_', 'GOMP_'))}


def _cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or '?'


# --------------------------------------------------------------------------- profile
def profile(args):
    """mx.profiler per-operator totals of one training step and one inference batch."""
    import mxnet as mx
    spec = ('profile', args.profile, 'gluoncv' if args.profile.startswith('cifar_') else
            'cmpese', args.profile, args.batch_size, 'plain')
    data, label = make_batch(args.batch_size, args.seed)
    b = Bench(spec, data, label, args)
    for kind, step in (('training step', b.train_step), ('inference batch', b.infer_step)):
        for _ in range(1 + args.warmup):
            step()
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               filename=os.path.join(tempfile.gettempdir(),
                                                     'bench_units_profile.json'))
        mx.profiler.set_state('run')
        t0 = time.perf_counter()
        step()
        dt = time.perf_counter() - t0
        mx.profiler.set_state('stop')
        table = mx.profiler.dumps(reset=True, format='table', sort_by='total', ascending=False)
        print('\none %s of %s, batch %d: %.1f ms (profiled, op bulking off)'
              % (kind, args.profile, args.batch_size, 1e3 * dt))
        print(table[table.find('operator'):].rstrip())


def make_batch(batch, seed):
    import mxnet as mx
    import numpy as np
    rng = np.random.RandomState(seed)
    data = rng.standard_normal((batch, 3, 32, 32)).astype('float32')
    label = rng.randint(0, 10, size=batch).astype('float32')
    return mx.nd.array(data), mx.nd.array(label)


# --------------------------------------------------------------------------- main
def run_rounds(benches, args, kind):
    """for r in rounds: for m in models: time m (``kind`` 'train' or 'infer').

    The first --warmup rounds are discarded. Each round visits the models in a new (seeded)
    random order, so that no model always follows the same neighbour or opens the round.
    Training and inference are timed in separate phases: with oneDNN, a predict-mode call
    reorders the convolution weights into a blocked layout that the next training step
    reorders back, a per-switch cost that alternating the two would add to every step.
    """
    rng = random.Random('%s-%s' % (args.seed, kind))
    for r in range(-args.warmup, args.rounds):
        t0 = time.perf_counter()
        order = list(benches)
        rng.shuffle(order)
        for b in order:
            if kind == 'train':
                b.time_train(args.steps)
            else:
                b.time_infer(args.infer_steps)
        if r < 0:
            for b in benches:  # warm-up round: forget its times
                del (b.train_times if kind == 'train' else b.infer_times)[:]
        log.info('%s: %s %d/%d done in %.0fs', 'training' if kind == 'train' else 'inference',
                 'warm-up round' if r < 0 else 'round',
                 r + 1 + (args.warmup if r < 0 else 0), args.warmup if r < 0 else args.rounds,
                 time.perf_counter() - t0)
        for b in benches:
            log.debug('  %-32s train %s  infer %s', b.label,
                      ' '.join('%.0f' % (1e3 * t) for t in b.train_times),
                      ' '.join('%.0f' % (1e3 * t) for t in b.infer_times))


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(asctime)s %(message)s', datefmt='%H:%M:%S')
    for kv in args.env:
        key, value = kv.split('=', 1)
        os.environ[key] = value
    if args.profile:
        os.environ.setdefault('MXNET_EXEC_BULK_EXEC_TRAIN', '0')
        os.environ.setdefault('MXNET_EXEC_BULK_EXEC_INFERENCE', '0')
    user_env = tuning_env()
    import warnings
    warnings.filterwarnings('ignore', module='gluoncv')
    import mxnet as mx  # noqa: F401  (after --env)
    import cmpese  # noqa: F401  (registers our names into gluoncv too)

    impls = (args.squeeze_impl, args.scale_impl, args.mean_impl, args.relu_impl)
    patched = impls != ('package',) * 4
    if patched:
        patch_units(args.squeeze_impl, args.scale_impl, args.mean_impl)
        patch_relu(args.relu_impl)
    if args.profile:
        profile(args)
        return 0

    t_start = time.perf_counter()
    env = environment(args, user_env)
    train, infer = not args.no_train, not args.no_inference
    data, label = make_batch(max(args.batch_size, args.big_batch_size), args.seed)
    log.info('mxnet %s (%s), gluoncv %s, %s, %d CPUs; env %s', env['mxnet'],
             ', '.join(env['mxnet_features']), env['gluoncv'], env['cpu'], env['cpus'],
             env['env'] or '{}')
    if patched:
        log.info('EXPERIMENT: patched in memory: squeeze=%s scale=%s mean=%s relu=%s', *impls)

    specs = model_specs(args)
    groups = [specs] if args.interleave == 'all' else \
        [[s for s in specs if s[0] == fam] for fam in args.families]
    benches = []
    shapes_of = {}  # backbone -> unit residual shapes (shared by e.g. wrn16_8, ini_wrn16_8)
    for group in groups:
        members = []
        floor_fams = [] if args.no_floor else \
            [f for f in dict.fromkeys(s[0] for s in group) if f in FLOOR_BACKBONES]
        for fam in floor_fams:  # before the family's models: the SE model is freed first
            backbone = FLOOR_BACKBONES[fam]
            if backbone not in shapes_of:
                t0 = time.perf_counter()
                shapes_of[backbone] = unit_shapes(backbone, data, args.batch_size, args.seed)
                log.info('floor %s: %d unit residuals of se_%s, shapes %s (%.1fs)', fam,
                         len(shapes_of[backbone]), backbone,
                         ', '.join('%dx %s' % (n, 'x'.join(map(str, s))) for s, n in
                                   _count(shapes_of[backbone])), time.perf_counter() - t0)
        for spec in group:
            b = Bench(spec, data, label, args)
            b.first_call(train, infer)
            log.info('built %-32s batch %2d  %6.2fM params  build %.1fs  first call %.1fs  '
                     'max RSS %.0f MB', b.label, b.batch, b.params / 1e6, b.build_s,
                     b.warmup_s, rss_mb())
            members.append(b)
        for fam in floor_fams:
            b = FloorBench(fam, FLOOR_BACKBONES[fam], shapes_of[FLOOR_BACKBONES[fam]],
                           args.batch_size)
            b.first_call(train, infer)
            log.info('built %-32s batch %2d  %d x 3 buffers, %.0f MB  build %.1fs  first '
                     'call %.2fs  max RSS %.0f MB', '%s of %s' % (b.label, fam), b.batch,
                     len(b.shapes), 3 * b.bytes_per_pass / 1e6, b.build_s, b.warmup_s,
                     rss_mb())
            members.append(b)
        if not benches:
            log.info('optimizer: %s, momentum 0.9, lr %g, wd 5e-4', members[0].optimizer,
                     args.lr)
        for kind, wanted in (('train', train), ('infer', infer)):
            if wanted:
                run_rounds(members, args, kind)
        log.info('done: %s; max RSS so far %.0f MB', ', '.join(b.label for b in members),
                 rss_mb())
        if args.interleave == 'family':
            for b in members:
                b.release()
            gc.collect()
        benches.extend(members)

    rows = summarise(benches, args)
    floors = floor_summary(rows)
    for r in rows:
        if train and r['role'] != 'floor' and not math.isfinite(r['last_loss']):
            log.warning('%s: loss became %s during the run (timings of non-finite values may '
                        'be unrepresentative; lower --lr)', r['model'], r['last_loss'])
    total = time.perf_counter() - t_start

    print()
    print('Recalibration unit cost: median of %d interleaved rounds (%s, shuffled order), '
          'training rounds then inference rounds; training: %d step(s) per round, %s; '
          'inference: %d batch(es) per round, predict mode; first call and %d warm-up '
          'round(s) excluded.'
          % (args.rounds, 'all models' if args.interleave == 'all' else 'within each family',
             args.steps, benches[0].optimizer, args.infer_steps, args.warmup))
    print('Batch %d for WRN-16-8 / ResNet-164; batch %d for WRN-28-10 (heavy). ratio = '
          'time / baseline time (inference: baseline img/s / img/s); spread = (max-min)/median '
          'over rounds.' % (args.batch_size, args.big_batch_size))
    print('mxnet %s [%s], gluoncv %s, %s x%d, python %s%s' % (
        env['mxnet'], ', '.join(env['mxnet_features']), env['gluoncv'], env['cpu'],
        env['cpus'], env['python'],
        (', env ' + ' '.join('%s=%s' % kv for kv in env['env'].items())) if env['env'] else ''))
    if patched:
        print('EXPERIMENT: patched in memory: squeeze=%s scale=%s mean=%s relu=%s (cmpese/ '
              'unchanged)' % impls)
    if floors:
        print('%s: what even a perfectly fused unit must add to plain, %d extra passes per '
              'training step and %d per inference batch over each unit residual, a pass '
              'timed as 1/%d of elemwise_add(a, b, out=c) of its shape in the same rounds; '
              'its ratio is (plain + floor) / plain, its train column the extra ms (+), its '
              'img/s column the best img/s any unit model could reach (<=).'
              % (FLOOR_LABEL, FLOOR_TRAIN_PASSES, FLOOR_INFER_PASSES, ADD_PASSES))
    print()
    print(format_table(rows, args))
    print()
    goals = [r for r in rows if r['goal'] is not None]
    for kind, what in (('train', 'training'), ('infer', 'inference')):
        judged = [r for r in goals if kind + '_pass' in r]
        if judged:
            failed = [r['model'] for r in judged if not r[kind + '_pass']]
            print('%s goals: %d/%d pass%s' % (what, len(judged) - len(failed), len(judged),
                                               ('; FAIL: ' + ', '.join(failed)) if failed
                                               else ''))
    for line in floor_lines(floors):
        print(line)
    print('total wall time %.0f s, max RSS %.0f MB' % (total, rss_mb()))

    if args.json:
        out = {'args': {k: v for k, v in vars(args).items()}, 'environment': env,
               'goals': {'se': GOAL_SE, 'cmpe_se': GOAL_CMPE, 'ours_vs_gluoncv': GOAL_OURS,
                         'ini': GOAL_INI},
               'results': rows, 'wall_time_s': total,
               'floor': {'method': 'per unit residual: %d passes per training step, %d per '
                                   'inference batch; a pass = 1/%d of the time of '
                                   'mx.nd.elemwise_add(a, b, out=c) of its shape; ratio = '
                                   '(plain median + floor median) / plain median'
                                   % (FLOOR_TRAIN_PASSES, FLOOR_INFER_PASSES, ADD_PASSES),
                         'families': floors},
               'command': ' '.join([os.path.basename(sys.executable)] + sys.argv)}
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)
        log.info('wrote %s', args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
