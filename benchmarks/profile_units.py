#!/usr/bin/env python
"""Where a training step's time goes, operator by operator: MXNet's profiler over training
steps of a unit's model against its plain backbone (docs/benchmarks.md, issue 22).

Each model is built, initialized, hybridized and given SGD; after untimed warm-up steps,
``--steps`` steps are profiled (forward under ``autograd.record``, softmax cross-entropy,
backward, ``trainer.step``, ``waitall``) with operator bulking off, so that every operator
is its own entry. Prints, per operator, the total milliseconds per step of each model and
the difference to the first, largest first.

    OMP_NUM_THREADS=2 python benchmarks/profile_units.py \\
        --models preresnet164,se_preresnet164,ini_preresnet164_mix_5_d --batch-size 32

The profiler adds its own overhead to every operator: the totals are larger than the step
times bench_units.py measures, and only their differences are meant to be read.
"""
import argparse
import collections
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, ROOT)


def profile_model(name, batch, size, classes, steps, warmup):
    """{operator: total ms per step} of ``steps`` training steps of ``name``."""
    import mxnet as mx
    from mxnet import autograd, gluon
    import cmpese
    net = cmpese.get_model(name, classes=classes)
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.01,
                                                           'momentum': 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = mx.random.seed(0)
    del rng
    x = mx.nd.random.normal(shape=(batch, 3, size, size))
    y = mx.nd.array([i % classes for i in range(batch)])

    def step():
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(batch)
        mx.nd.waitall()
    for _ in range(warmup):
        step()
    out = os.path.join(tempfile.mkdtemp(prefix='cmpese-profile-'), 'profile.json')
    mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=out)
    mx.profiler.set_state('run')
    for _ in range(steps):
        step()
    mx.profiler.set_state('stop')
    stats = json.loads(mx.profiler.dumps(reset=True, format='json'))
    totals = collections.Counter()
    for domain, ops in stats.get('Time', {}).items():
        if domain != 'operator':
            continue
        for op, s in ops.items():
            totals[op] += s['Total'] / steps
    return totals


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', default='preresnet164,se_preresnet164,ini_preresnet164_mix_5_d')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--input-size', type=int, default=32)
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--steps', type=int, default=2)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--top', type=int, default=25, help='operators shown')
    args = p.parse_args(argv)
    os.environ.setdefault('MXNET_EXEC_BULK_EXEC_TRAIN', '0')
    os.environ.setdefault('MXNET_EXEC_BULK_EXEC_INFERENCE', '0')
    import mxnet as mx
    from cmpese.units import ops
    names = [n for n in args.models.split(',') if n]
    per_model = collections.OrderedDict()
    for name in names:
        per_model[name] = profile_model(name, args.batch_size, args.input_size, args.classes,
                                        args.steps, args.warmup)
    base = per_model[names[0]]
    every = set().union(*per_model.values())
    order = sorted(every, key=lambda op: -max(abs(per_model[n][op] - base[op])
                                              for n in names[1:]) if len(names) > 1 else
                   -base[op])
    print('profile: %d steps a model after %d warm-up, batch %d, %dx%d; mxnet %s; '
          'OMP_NUM_THREADS=%s; unit operators %s; load average %.1f' % (
              args.steps, args.warmup, args.batch_size, args.input_size, args.input_size,
              mx.__version__, os.environ.get('OMP_NUM_THREADS', '-'), ops.get_impl(),
              os.getloadavg()[0]))
    print('operator (ms a step)'.ljust(34) + ''.join(n[:26].rjust(28) for n in names))
    print('total'.ljust(34) + ''.join(('%.0f' % sum(per_model[n].values())).rjust(28)
                                      for n in names))
    for op in order[:args.top]:
        cells = []
        for n in names:
            v = per_model[n][op]
            d = v - base[op]
            cells.append(('%.1f' % v + ('' if n == names[0] else ' (%+.1f)' % d)).rjust(28))
        print(op[:33].ljust(34) + ''.join(cells))


if __name__ == '__main__':
    main()
