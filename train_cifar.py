#!/usr/bin/env python
"""Train a cmpese model on CIFAR-10/100, SVHN or the bundled digits set, as the papers did
(``python train_cifar.py --help``; docs/training.md).

    python train_cifar.py --model cmpe_se_wrn28_10_1x1 --mixup
    python train_cifar.py --model cmpe_se_preresnet20_1x1 --dataset digits --export

A shim: the command is :mod:`cmpese.cli.train_cifar` (also the ``cmpese-train-cifar``
console script). Two things happen here first, before anything of cmpese is imported,
because importing any part of the package loads mxnet:

* ``OMP_NUM_THREADS`` defaults to the CPUs this process may run on. MXNet 1.9.1 reads it
  when its library loads; without it, it starts half as many OpenMP threads (one on a
  2-core machine, 1.5x slower here). A value already set is kept.
* Ctrl-C / SIGTERM during those ~2 s of imports end with one line and 130 / 143 instead of
  a traceback from inside mxnet (nothing has been written yet); then
  :func:`cmpese.errors.run` takes over.
"""
import os
import sys

PROG = 'train_cifar.py'


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
from cmpese.cli.train_cifar import build_parser, main  # noqa: E402,F401  (after the threads)

if __name__ == '__main__':
    from cmpese.errors import run
    sys.exit(run(main, prog=PROG))
