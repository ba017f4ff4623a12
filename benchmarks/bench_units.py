#!/usr/bin/env python
"""What the recalibration units cost, in training and in deployment, side by side in one run.

Suites (``--suites``, default all three):

* ``imagenet``: ResNet-50 plain / SE / CMPE-SE 1x1 / InI mix-5-d (``resnet50``, ``se_resnet50``,
  ``cmpe_se_resnet50_1x1``, ``ini_resnet50_mix_5_d``) and GluonCV's ``resnet50_v1b`` /
  ``se_resnet50_v1``, 224x224, 1000 classes: training step at batch 8, inference at batch 1
  and 8;
* ``wrn16_8`` and ``preresnet164``: CIFAR WRN-16-8 and pre-act ResNet-164 plain / SE /
  CMPE-SE 1x1 / InI mix-5-d, 32x32, 10 classes: training step at batch 32, inference at
  batch 1 and 32.

What is timed, per model:

* ``train``: one training step of the hybridized network (``static_alloc``, ``static_shape``,
  the units' default training operators of :mod:`cmpese.units.ops`): forward under
  ``autograd.record()``, softmax cross-entropy, backward, ``Trainer.step`` (Nesterov SGD),
  closed by ``mx.nd.waitall()``;
* ``gluon``: a predict-mode forward of the same hybridized network in the training process
  (what ``net(x)`` costs a user who does not deploy);
* ``mxnet`` and ``onnxruntime``: the exported model (:func:`cmpese.deploy.export.export_model`,
  the units' reference operators, folded as ``--fold`` does unless ``--no-fold``) in
  :class:`cmpese.deploy.Predictor` on each runtime
  (oneDNN subgraph backend; onnxruntime with every graph optimization and the units'
  rescale kept in its blocked layout, :mod:`cmpese.deploy.ort_layout`). The predictor's best
  runtime is the faster of the two per suite, as measured here;
* ``ort-ordinary``: the same onnxruntime session without the layout pass
  (``Predictor(layout=False)``), to show what it gives.

Every ratio is to the suite's plain model *in the same runtime and batch*, from the same
rounds (CMPE-SE-ResNet-50, the CMPE-SE paper's pre-activation network, to the pre-activation
ResNet-50). Fairness on a small shared machine: all models of a suite are built and make an
untimed first call, then the suite is timed in rounds, ``for r in rounds: for entry in
shuffled(entries)``, one warm-up round discarded, training rounds before inference rounds
(with oneDNN a predict call re-lays out the weights that the next training step lays back);
the median over rounds is reported, and the load average of the machine is printed (other
jobs on the same CPUs only ever add time).

The memory floor (``--no-floor`` leaves it out): whatever its operators, a unit must at
least squeeze its residual R (one pass over R in inference; the rescale can fuse into the
residual addition) and, in training, backpropagate through both (4 more passes: ds reads dY
and R, dR reads dY and writes). A pass over every unit residual of the suite's SE model is
timed in the same rounds as 1/3 of ``elemwise_add(a, b, out=c)`` on tensors of those shapes;
``(plain + floor) / plain`` is a lower bound no implementation of a unit can beat here.

    python benchmarks/bench_units.py --env OMP_NUM_THREADS=2            # docs/benchmarks.md
    python benchmarks/bench_units.py --quick                              # smoke run, ~2 min
    python benchmarks/bench_units.py --suites preresnet164 --rounds 3 --json out.json
    python benchmarks/bench_units.py --suites wrn16_8 --ops reference     # other unit operators
"""
import argparse
import gc
import json
import os
import sys
import tempfile
import time

import harness

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from a checkout without installing: find cmpese/
    sys.path.insert(1, _ROOT)

RUNTIMES = ('mxnet', 'onnxruntime', 'ort-ordinary')
# 'ort-ordinary': onnxruntime without cmpese.deploy.ort_layout (Predictor(layout=False)), a
# column to show what the layout pass gives; the predictor's best runtime is one of the first two
PREDICTOR_RUNTIMES = ('mxnet', 'onnxruntime')
CIFAR_UNITS = (('', 'plain'), ('se_', 'se'), ('cmpe_se_', 'cmpe'), ('ini_', 'ini'))


def _cifar(backbone):
    models = [(prefix + backbone + ('_1x1' if role == 'cmpe' else '_mix_5_d' if role == 'ini'
                                    else ''), 'cmpese', role) for prefix, role in CIFAR_UNITS]
    return dict(size=32, classes=10, train_batch=32, infer_batches=(1, 32), models=models)


SUITES = {
    # CMPE-SE-ResNet-50 is the CMPE-SE paper's pre-activation network: its own plain
    # baseline is the pre-activation ResNet-50 (get_resnet_imagenet(50, version=2))
    'imagenet': dict(size=224, classes=1000, train_batch=8, infer_batches=(1, 8), models=[
        ('resnet50', 'cmpese', 'plain'), ('se_resnet50', 'cmpese', 'se'),
        ('resnet50_v2', 'builder', 'plain_v2'), ('cmpe_se_resnet50_1x1', 'cmpese', 'cmpe'),
        ('ini_resnet50_mix_5_d', 'cmpese', 'ini'),
        ('resnet50_v1b', 'gluoncv', 'peer_plain'), ('se_resnet50_v1', 'gluoncv', 'peer_se')],
        # the training graphs of all seven ResNet-50s at batch 8 would hold about 12 GB
        # (InI's alone 3 GB): three groups, each with the plain network, one after the other
        train_groups=(('plain', 'se', 'peer_plain', 'peer_se'), ('plain', 'plain_v2', 'cmpe'),
                      ('plain', 'ini'))),
    'wrn16_8': _cifar('wrn16_8'),
    'preresnet164': _cifar('preresnet164'),
}
# the goals: ratios to plain in the same runtime (deploy: the predictor's best one)
GOALS = {
    'imagenet': {'se': {'train': 1.15, 'deploy': 1.05}, 'cmpe': {'train': 1.20, 'deploy': 1.08},
                 'ini': {'train': 1.30, 'deploy': 1.15}},
    'preresnet164': {'se': {'train': 1.35, 'deploy': 1.15}},
}
FLOOR_PASSES = {'train': 5, 'infer': 1}      # extra passes over each unit residual
ADD_PASSES = 3                               # elemwise_add(a, b, out=c): 2 reads, 1 write


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--suites', default=','.join(SUITES),
                   help='comma-separated subset of %s' % ', '.join(SUITES))
    p.add_argument('--rounds', type=int, default=5, help='timed rounds (median reported; 5)')
    p.add_argument('--warmup', type=int, default=1, help='discarded rounds (1)')
    p.add_argument('--min-time', type=float, default=0.3,
                   help='an inference timing repeats its call to last about this long, in '
                        'seconds (0.3; the count is fixed from one call before the rounds)')
    p.add_argument('--runtimes', default=','.join(RUNTIMES),
                   help='predictor runtimes to time (default all: %(default)s)')
    p.add_argument('--ops', default=None,
                   help='unit operators for the Gluon train/predict timings (a profile of '
                        'cmpese.units.ops or squeeze=..,scale=..,mean=..); default: the '
                        "package's")
    p.add_argument('--no-fold', action='store_true',
                   help='export the predictor models without --fold (to measure what it gives)')
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                   help="wall: elapsed time (default); cpu: the process's CPU time, which "
                        'other jobs on a shared machine disturb less (with OMP_NUM_THREADS=1 '
                        'it is the work done; with more threads it includes their spinning)')
    p.add_argument('--no-train', action='store_true')
    p.add_argument('--no-infer', action='store_true')
    p.add_argument('--no-floor', action='store_true')
    p.add_argument('--quick', action='store_true',
                   help='smoke run: 1 round, no warm-up, the CIFAR suites only at batch 4 '
                        '(explicit flags still win)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', metavar='OUT.json', help='also write every sample to this file')
    p.add_argument('--env', action='append', default=[], metavar='KEY=VALUE',
                   help='environment variable set before importing MXNet (repeatable)')
    if '--quick' in (sys.argv[1:] if argv is None else argv):
        p.set_defaults(rounds=1, warmup=0, suites='wrn16_8,preresnet164')
    args = p.parse_args(argv)
    args.suites = [s.strip() for s in args.suites.split(',') if s.strip()]
    args.runtimes = [r.strip() for r in args.runtimes.split(',') if r.strip()]
    bad = [s for s in args.suites if s not in SUITES] + \
        [r for r in args.runtimes if r not in RUNTIMES]
    if bad or not args.suites:
        p.error('unknown suite or runtime %s; suites: %s; runtimes: %s'
                % (', '.join(bad) or '(none)', ', '.join(SUITES), ', '.join(RUNTIMES)))
    if args.rounds < 1 or args.warmup < 0 or not args.min_time >= 0:
        p.error('--rounds must be >= 1, --warmup and --min-time >= 0')
    for kv in args.env:
        if '=' not in kv:
            p.error('--env expects KEY=VALUE, got %r' % kv)
    return args


# --------------------------------------------------------------------------- timed entries
class Entry(object):
    """One timed thing: ``call()`` runs it once (``reps`` times per timing); ``group`` is
    the set of rounds it was timed in (ratios are within a group); ``times``: seconds a call,
    one per timed round."""

    def __init__(self, model, kind, batch, call, reps=1, group=0):
        self.model, self.kind, self.batch, self.call, self.reps = model, kind, batch, call, reps
        self.group = group
        self.times = []

    clock = time.perf_counter          # --clock cpu: time.process_time


def run_rounds(entries, rounds, warmup, seed, label):
    """Time ``entries`` in interleaved seeded rounds (benchmarks/harness.py); returns the load
    average after every round."""
    import mxnet as mx
    loads = []
    samples = harness.interleaved_rounds(
        lambda e: harness.time_call(e.call, e.reps, clock=Entry.clock, sync=mx.nd.waitall),
        entries, rounds, warmup=warmup, seed=seed, label=label, stream=sys.stderr, loads=loads)
    for e in entries:
        e.times = samples[e]
    return loads


def build(name, source, classes, seed):
    import mxnet as mx
    mx.random.seed(seed)
    if source == 'gluoncv':
        import gluoncv
        net = gluoncv.model_zoo.get_model(name, classes=classes)
    elif source == 'builder':       # resnet50_v2: the pre-activation ResNet-50
        from cmpese.models import get_resnet_imagenet
        net = get_resnet_imagenet(int(name[len('resnet'):name.index('_')]), version=2,
                                  classes=classes)
    else:
        import cmpese
        net = cmpese.get_model(name, classes=classes)
    net.initialize(mx.init.Xavier(magnitude=2), ctx=mx.cpu())
    return net


def _ops(args):
    import contextlib
    from cmpese.units import ops
    return ops.using(args.ops) if args.ops else contextlib.nullcontext()


def train_entries(suite, spec, args, data, label, models, group):
    """Built and first-called training entries of ``models`` (and the nets, to free them
    afterwards)."""
    import mxnet as mx
    from mxnet import autograd, gluon
    batch = spec['train_batch']
    x, y = data[:batch], label[:batch]
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    entries, keep = [], []
    for name, source, role in models:
        net = build(name, source, spec['classes'], args.seed)
        trainer = gluon.Trainer(net.collect_params(), 'nag',
                                {'learning_rate': 0.01, 'momentum': 0.9, 'wd': 1e-4})

        def step(net=net, trainer=trainer):
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(batch)
        with _ops(args):
            net.hybridize(static_alloc=True, static_shape=True)
            step()
        mx.nd.waitall()
        entries.append(Entry(name, 'train', batch, step, group=group))
        keep.append((net, trainer))
    return entries, keep


def infer_entries(suite, spec, args, data, workdir):
    """Gluon (in process) and predictor entries for every model and inference batch."""
    import mxnet as mx
    from cmpese.deploy import Predictor
    entries, keep = [], []
    size = spec['size']
    for name, source, role in spec['models']:
        net = build(name, source, spec['classes'], args.seed)
        with _ops(args):
            net.hybridize(static_alloc=True, static_shape=True)
            for b in spec['infer_batches']:
                net(data[:b]).wait_to_read()
        prefix = os.path.join(workdir, name)
        harness.export_pair(net, prefix, (1, 3, size, size), fold=not args.no_fold,
                            onnx=bool({'onnxruntime', 'ort-ordinary'} & set(args.runtimes)))
        with _ops(args):           # export re-hybridizes: trace the timed graph again
            net.hybridize(static_alloc=True, static_shape=True)
            for b in spec['infer_batches']:
                net(data[:b]).wait_to_read()
        threads = int(os.environ['OMP_NUM_THREADS']) if os.environ.get(
            'OMP_NUM_THREADS', '').isdigit() else None   # onnxruntime: as many as MXNet
        predictors = {rt: Predictor(prefix, 'onnxruntime' if rt == 'ort-ordinary' else rt,
                                    threads=threads, layout=rt != 'ort-ordinary')
                      for rt in args.runtimes}
        for b in spec['infer_batches']:
            xb = data[:b]
            xn = xb.asnumpy()
            calls = {'gluon': lambda net=net, xb=xb: net(xb).wait_to_read()}
            for rt, pred in predictors.items():
                pred(xn)
                calls[rt] = lambda pred=pred, xn=xn: pred(xn)
            for kind, call in calls.items():
                t0 = time.perf_counter()
                call()
                reps = min(64, max(1, int(round(args.min_time / (time.perf_counter() - t0)))))
                entries.append(Entry(name, kind, b, call, reps))
        keep.append((net, predictors))
        print('  built %s (%s)' % (name, source), file=sys.stderr, flush=True)
    return entries, keep


def unit_shapes(spec, data, batch, seed):
    """Shapes of the residuals the units of the suite's SE model rescale (forward hooks)."""
    from cmpese.units import SEUnit
    name = [n for n, _, role in spec['models'] if role == 'se'][0]
    net = build(name, 'cmpese', spec['classes'], seed)
    shapes, handles = [], []
    net.apply(lambda b: handles.append(b.register_forward_pre_hook(
        lambda blk, inputs: shapes.append(tuple(inputs[0].shape))))
        if isinstance(b, SEUnit) else None)
    net(data[:batch]).wait_to_read()
    for h in handles:
        h.detach()
    return shapes


def floor_entries(spec, data, args):
    """The floor as entries: passes over the unit residuals at the train and infer batches."""
    import mxnet as mx
    out = []
    wanted = []
    if not args.no_train:
        wanted.append(('train', spec['train_batch']))
    if not args.no_infer:
        wanted.append(('infer', max(spec['infer_batches'])))
    for kind, batch in wanted:
        buffers = [(mx.nd.ones(s), mx.nd.ones(s), mx.nd.zeros(s))
                   for s in unit_shapes(spec, data, batch, args.seed)]

        def adds(buffers=buffers):
            for a, b, c in buffers:
                mx.nd.elemwise_add(a, b, out=c)
        out.append(Entry('floor', 'floor_' + kind, batch, adds))
    return out


# --------------------------------------------------------------------------- report
def med(entry):
    return harness.median(entry.times)


def baseline_of(spec, model):
    """The plain model a model's ratios are to: the pre-activation one for CMPE-SE on
    ImageNet (when the suite has it), the suite's plain model otherwise."""
    roles = {role: name for name, _, role in spec['models']}
    role = [r for n, _, r in spec['models'] if n == model][0]
    return roles['plain_v2'] if role == 'cmpe' and 'plain_v2' in roles else roles['plain']


def summarise(suite, spec, entries):
    """{(model, kind, batch): {'ms', 'ratio', 'spread', 'samples'}} with ratios to plain
    timed in the same rounds (a model timed in several groups keeps its first)."""
    plain = [n for n, _, role in spec['models'] if role == 'plain'][0]
    by_group = {(e.model, e.kind, e.batch, e.group): e for e in entries}
    by_key = {}
    for e in entries:
        by_key.setdefault((e.model, e.kind, e.batch), e)
    table = {}
    for (model, kind, batch), e in by_key.items():
        if model == 'floor':
            continue
        base = by_group.get((baseline_of(spec, model), kind, batch, e.group))
        m = med(e)
        table[(model, kind, batch)] = {
            'ms': 1e3 * m, 'ratio': m / med(base) if base else float('nan'),
            'spread': 100 * (max(e.times) - min(e.times)) / m if len(e.times) > 1 else 0.0,
            'samples_ms': [1e3 * t for t in e.times]}
    for e in entries:
        if e.model != 'floor':
            continue
        kind = e.kind[len('floor_'):]
        base = by_key[(plain, 'train' if kind == 'train' else 'gluon', e.batch)]
        floor = med(e) * FLOOR_PASSES[kind] / ADD_PASSES
        table[('floor', kind, e.batch)] = {'ms': 1e3 * floor,
                                           'ratio': (med(base) + floor) / med(base)}
    return table


def best_runtime(spec, table, runtimes):
    """The predictor runtime with the lower total time of the suite's plain model."""
    plain = [n for n, _, role in spec['models'] if role == 'plain'][0]
    totals = {rt: sum(table[(plain, rt, b)]['ms'] for b in spec['infer_batches'])
              for rt in runtimes if rt in PREDICTOR_RUNTIMES and
              (plain, rt, spec['infer_batches'][0]) in table}
    return min(totals, key=totals.get) if totals else None


def format_suite(suite, spec, table, runtimes):
    kinds = [('train', spec['train_batch'])] + [(k, b) for b in spec['infer_batches']
                                                for k in ('gluon',) + tuple(runtimes)]
    kinds = [(k, b) for k, b in kinds if any((m, k, b) in table for m, _, _ in spec['models'])]
    head = ['%s b%d' % (k, b) for k, b in kinds]
    lines = ['%-36s | %s' % ('model (ms, ratio to plain)', ' | '.join('%18s' % h for h in head))]
    lines.append('-' * len(lines[0]))
    for name, source, role in spec['models']:
        label = name + (' (GluonCV)' if source == 'gluoncv' else '') + \
            (' (/ %s)' % baseline_of(spec, name) if role == 'cmpe' and
             baseline_of(spec, name) != spec['models'][0][0] else '')
        cells = []
        for k, b in kinds:
            c = table.get((name, k, b))
            cells.append('%18s' % ('-' if c is None else '%8.1f %6.3fx' % (c['ms'], c['ratio'])))
        lines.append('%-36s | %s' % (label, ' | '.join(cells)))
    floors = [(k, b, c) for (m, k, b), c in table.items() if m == 'floor']
    for kind, batch, c in floors:
        lines.append('memory floor, %s batch %d: +%.1f ms per %s, (plain + floor) / plain = '
                     '%.3fx (a lower bound for any unit)'
                     % ('training' if kind == 'train' else 'inference', batch, c['ms'],
                        'step' if kind == 'train' else 'batch', c['ratio']))
    return lines


def verdicts(suite, spec, table, best):
    """Goal lines: (text, passed)."""
    out = []
    models = {role: name for name, _, role in spec['models']}
    for role, goals in GOALS.get(suite, {}).items():
        name = models[role]
        if 'train' in goals and (name, 'train', spec['train_batch']) in table:
            r = table[(name, 'train', spec['train_batch'])]['ratio']
            out.append(('%s training batch %d: %.3fx %s (goal <= %.2f)'
                        % (name, spec['train_batch'], r, baseline_of(spec, name),
                           goals['train']), r <= goals['train']))
        for b in spec['infer_batches']:
            if best and (name, best, b) in table:
                r = table[(name, best, b)]['ratio']
                out.append(('%s deployed (%s) batch %d: %.3fx %s (goal <= %.2f)'
                            % (name, best, b, r, baseline_of(spec, name), goals['deploy']),
                            r <= goals['deploy']))
    if 'peer_se' in models:
        for ours, peer in (('se', 'peer_se'), ('plain', 'peer_plain')):
            for kind, b in [('train', spec['train_batch'])] + \
                    [(k, b) for b in spec['infer_batches'] for k in ('gluon', 'mxnet')]:
                a, p = table.get((models[ours], kind, b)), table.get((models[peer], kind, b))
                if a and p:
                    r = a['ms'] / p['ms']
                    out.append(('our %s / GluonCV %s, %s batch %d: %.3fx (goal <= 1.00)'
                                % (models[ours], models[peer], kind, b, r), r <= 1.0))
    return out


def main(argv=None):
    args = parse_args(argv)
    harness.apply_env(args.env)
    import warnings
    warnings.filterwarnings('ignore')
    import mxnet as mx
    import numpy as np
    import cmpese  # noqa: F401
    from cmpese.units import ops

    if args.clock == 'cpu':
        Entry.clock = time.process_time
    env = harness.environment()
    print('%s; unit ops (Gluon timings) %s'
          % (harness.environment_line(env), ops.parse_impl(args.ops) if args.ops else
             ops.get_impl()), flush=True)
    t_start = time.perf_counter()
    results, goal_lines = {}, []
    for suite in args.suites:
        spec = dict(SUITES[suite])
        if args.quick and suite != 'imagenet':
            spec.update(train_batch=4, infer_batches=(1, 4))
        rng = np.random.RandomState(args.seed)
        n = max((spec['train_batch'],) + tuple(spec['infer_batches']))
        data = mx.nd.array(rng.standard_normal((n, 3, spec['size'], spec['size'])))
        label = mx.nd.array(rng.randint(0, spec['classes'], n))
        print('\n## %s' % suite, file=sys.stderr, flush=True)
        entries, loads = [], []
        floor = [] if args.no_floor else floor_entries(spec, data, args)
        if not args.no_train:
            groups = spec.get('train_groups') or (tuple(r for _, _, r in spec['models']),)
            for g, roles in enumerate(groups):
                models = [m for m in spec['models'] if m[2] in roles]
                train, keep = train_entries(suite, spec, args, data, label, models, g)
                if g == 0:
                    train += [e for e in floor if e.kind == 'floor_train']
                loads += run_rounds(train, args.rounds, args.warmup, args.seed,
                                    '%s train%s' % (suite, ' group %d' % (g + 1)
                                                    if len(groups) > 1 else ''))
                for e in train:     # the closures hold the nets: free the training graphs
                    e.call = None
                entries += train
                del keep
                gc.collect()
        if not args.no_infer:
            with tempfile.TemporaryDirectory(prefix='bench_units-') as workdir:
                infer, keep = infer_entries(suite, spec, args, data, workdir)
                infer += [e for e in floor if e.kind == 'floor_infer']
                loads += run_rounds(infer, args.rounds, args.warmup, args.seed, suite + ' infer')
                for e in infer:
                    e.call = None
                entries += infer
                del keep
                gc.collect()
        table = summarise(suite, spec, entries)
        best = best_runtime(spec, table, args.runtimes)
        print('\n## %s: median of %d rounds (%s time); ratio to %s in the same runtime and '
              'batch; load average during the rounds %.1f-%.1f; predictor best runtime here: %s'
              % (suite, args.rounds, 'CPU' if args.clock == 'cpu' else 'wall-clock',
                 spec['models'][0][0], min(loads), max(loads), best))
        for line in format_suite(suite, spec, table, args.runtimes):
            print(line)
        lines = verdicts(suite, spec, table, best)
        for text, ok in lines:
            print('%s %s' % ('PASS' if ok else 'FAIL', text))
        goal_lines += lines
        results[suite] = {'best_runtime': best, 'load_average': loads,
                          'table': {'%s|%s|%d' % k: v for k, v in table.items()}}
        sys.stdout.flush()
    total = time.perf_counter() - t_start
    print('\ngoals: %d/%d pass; total wall time %.0f s'
          % (sum(ok for _, ok in goal_lines), len(goal_lines), total))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'args': vars(args), 'environment': env, 'results': results,
                       'goals': [{'text': t, 'pass': ok} for t, ok in goal_lines],
                       'wall_time_s': total}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
