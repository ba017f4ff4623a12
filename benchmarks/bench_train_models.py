#!/usr/bin/env python
"""Training steps of several models, interleaved in one process (docs/imagenet.md, section 7).

Every model is built, initialized from the same seed, hybridized and given the optimizer of
the run's configuration (:func:`cmpese.training.schedule.make_trainer`); each makes one
untimed step (graph building). Then, for one warm-up round and ``--benchmark-rounds`` timed
rounds, in a new seeded random order each round, every model runs ``--benchmark-batches``
steps on the same synthetic batch: forward under ``autograd.record()``, softmax
cross-entropy, backward, ``trainer.step``, ``waitall``. On a shared machine the load then
hits all models alike. It prints each model's median and minimum step time and the ratio
of its median to the first model's.

    OMP_NUM_THREADS=2 python benchmarks/bench_train_models.py --batch-size 8 \\
        --model resnet50,se_resnet50,cmpe_se_resnet50_1x1,ini_resnet50_mix_5_d \\
        --benchmark-batches 2 --benchmark-rounds 5 --seed 0
    python train_imagenet.py --benchmark --model resnet50,se_resnet50 ...   # the same

The options are train_imagenet.py's (its parser, checks, preset of the first model and
linear learning-rate scaling: :mod:`cmpese.cli.train_imagenet`), with ``--benchmark``
implied; one process, so no dist kvstore.
"""
import logging
import os
import sys

if 'OMP_NUM_THREADS' not in os.environ:    # as train_imagenet.py: before mxnet is imported
    _cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None
    os.environ['OMP_NUM_THREADS'] = str(_cpus or os.cpu_count() or 1)

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:   # also when loaded by path
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/harness.py: rounds, medians, environment)
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

PROG = 'bench_train_models.py'
log = logging.getLogger('cmpese.train')


def compare_models(names, cfg, ctx, model_args, stream=None):
    """The models ``names`` trained interleaved (module docstring) with the configuration
    ``cfg`` (input_size, batch_size, seed, classes, benchmark_rounds, benchmark_batches,
    dtype and the optimizer's values) on the devices ``ctx``. Returns ``{name: [seconds a
    step, per round]}`` and writes each model's median, minimum and ratio to the first to
    ``stream`` (default stdout)."""
    from mxnet import autograd, gluon
    from cmpese.training.cli import build_model
    from cmpese.training.schedule import make_trainer
    stream = stream or sys.stdout
    size, batch = cfg['input_size'], cfg['batch_size']
    rng = np.random.RandomState(cfg['seed'])
    x = mx.nd.array(rng.normal(size=(batch, 3, size, size)), dtype='float32')
    y = mx.nd.array(np.arange(batch) % cfg['classes'], dtype='float32')
    xs = gluon.utils.split_and_load(x, ctx, even_split=False)
    ys = gluon.utils.split_and_load(y, ctx, even_split=False)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    models = []
    for name in names:
        net = build_model(name, cfg['classes'], model_args)
        mx.random.seed(cfg['seed'])
        net.initialize(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2),
                       ctx=ctx)
        net.hybridize(static_alloc=True, static_shape=True)
        trainer, _ = make_trainer(net, cfg, 1000, cfg['epochs'] or 100, 'device')
        models.append((name, net, trainer))

    def step(net, trainer):
        with autograd.record():
            losses = [loss_fn(net(xi), yi) for xi, yi in zip(xs, ys)]
        autograd.backward(losses)
        trainer.step(batch)
        mx.nd.waitall()

    for _, net, trainer in models:
        step(net, trainer)
    by_name = {name: (net, trainer) for name, net, trainer in models}

    def measure(name):
        net, trainer = by_name[name]
        return harness.time_call(lambda: step(net, trainer), reps=cfg['benchmark_batches'])
    times = harness.interleaved_rounds(measure, names, cfg['benchmark_rounds'], warmup=1,
                                       seed=cfg['seed'], label='train')
    base = harness.median(times[names[0]])
    stream.write('benchmark, training steps interleaved: %d rounds x %d steps a model after a '
                 'warm-up round; batch %d, %dx%d, %s, %s; %s\n' % (
                     cfg['benchmark_rounds'], cfg['benchmark_batches'], batch, size, size,
                     cfg['dtype'], ctx, harness.environment_line()))
    width = max(len(n) for n in names)
    for name in names:
        med = harness.median(times[name])
        stream.write('  %-*s  median %.4f s a step (min %.4f), %.1f images/s, %.3fx %s\n' % (
            width, name, med, min(times[name]), batch / med, med / base, names[0]))
    stream.flush()
    return times


def compare_settled(trainer, settled, stream=None):
    """Compare the ``--model`` names of a settled train_imagenet command line
    (:class:`cmpese.cli.train_imagenet.ImageNetTrainer`, :class:`cmpese.training.run.Settled`);
    returns the exit code."""
    from cmpese.errors import ConfigError
    from cmpese.training.cli import print_config
    from cmpese.training.report import setup_logging
    cfg = settled.cfg
    if 'dist' in cfg['kvstore']:
        raise ConfigError('--benchmark with several models runs in one process; drop '
                          '--kvstore %s' % cfg['kvstore'])
    setup_logging(None)
    print_config(cfg, sys.stderr)
    if cfg.get('lr_scaling'):
        log.info('%s', cfg['lr_scaling'])
    if cfg['dtype'] == 'bfloat16':
        from cmpese.training.run import enable_bfloat16
        enable_bfloat16()
    compare_models(trainer.names, cfg, settled.ctx, settled.model_args, stream=stream)
    return 0


def main(argv=None):
    from cmpese.cli.train_imagenet import ImageNetTrainer
    from cmpese.training.run import Settled
    argv = list(sys.argv[1:] if argv is None else argv)
    if '--benchmark' not in argv:
        argv.append('--benchmark')
    trainer = ImageNetTrainer(PROG)
    settled = trainer.settle(argv)
    if not isinstance(settled, Settled):
        return settled
    return compare_settled(trainer, settled)


if __name__ == '__main__':
    from cmpese.errors import run
    sys.exit(run(main, prog=PROG))
