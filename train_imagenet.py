#!/usr/bin/env python
"""Train a cmpese ImageNet model (ResNet-50/101: plain, SE, CMPE-SE, InI, spatial attention)
on RecordIO files made by MXNet's im2rec (``python train_imagenet.py --help``;
docs/imagenet.md).

    python train_imagenet.py --model se_resnet50 --rec-train train.rec --rec-val val.rec \\
        --gpus 0,1,2,3,4,5,6,7 --batch-size 256
    python train_imagenet.py --model se_resnet50 --benchmark --batch-size 8  # synthetic data

A shim: the command is :mod:`cmpese.cli.train_imagenet` (also the ``cmpese-train-imagenet``
console script). As in train_cifar.py, the ``OMP_NUM_THREADS`` default and the quiet
Ctrl-C / SIGTERM come first, before anything of cmpese (and so mxnet) is imported (see that
file for why). ``--benchmark`` with several comma-separated ``--model`` names is handed to
``benchmarks/bench_train_models.py`` beside this file, which compares the models.
"""
import os
import sys

PROG = 'train_imagenet.py'
HERE = os.path.dirname(os.path.abspath(__file__))


def _default_threads():
    if 'OMP_NUM_THREADS' not in os.environ:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None
        os.environ['OMP_NUM_THREADS'] = str(cpus or os.cpu_count() or 1)


def _quiet_interrupts():
    import signal

    def stop(signum, frame):
        sys.stderr.write('%s: interrupted (%s) while starting; nothing was written\n'
                         % (PROG, signal.Signals(signum).name))
        sys.stderr.flush()
        os._exit(128 + signum)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


if __name__ == '__main__':
    _quiet_interrupts()
_default_threads()
from cmpese.cli import train_imagenet as _cli  # noqa: E402  (after the thread default)

build_parser = _cli.build_parser


def _compare(trainer, settled):
    """Several --model names with --benchmark: benchmarks/bench_train_models.py."""
    sys.path.insert(0, os.path.join(HERE, 'benchmarks'))
    try:
        import bench_train_models
    finally:
        sys.path.pop(0)
    return bench_train_models.compare_settled(trainer, settled)


def main(argv=None, prog=PROG):
    """:func:`cmpese.cli.train_imagenet.main`, comparing models with the benchmark script."""
    return _cli.main(argv, prog=prog, compare=_compare)


if __name__ == '__main__':
    from cmpese.errors import run
    sys.exit(run(main, prog=PROG))
