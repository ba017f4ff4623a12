"""The command lines of cmpese: one module per command, each with ``build_parser()`` (a
:class:`cmpese.errors.ArgumentParser`) and ``main(argv)``, which returns the exit code and
raises :class:`cmpese.errors.UserError` for bad input, and ``console()``, the console entry
point declared in setup.py, which runs ``main`` through :func:`cmpese.errors.run` (one line
and exit 2 for bad input, ``--debug`` for the traceback, 130 / 143 on SIGINT / SIGTERM).

    module            command                                   console script
    train_cifar       python train_cifar.py                     cmpese-train-cifar
    train_imagenet    python train_imagenet.py                  cmpese-train-imagenet
    evaluate          python -m cmpese.evaluate                 cmpese-evaluate
    launch            python -m cmpese.training.launch          cmpese-launch
    study             python -m cmpese.study                    cmpese-study
    convert           python -m cmpese.tools.convert            cmpese-convert
    export            python -m cmpese.tools.export             cmpese-export
    deploy            python -m cmpese.tools.deploy             cmpese-deploy
    flops             python -m cmpese.tools.flops              cmpese-flops
    complexity        python -m cmpese.tools.complexity         cmpese-complexity
    visualize         python -m cmpese.visualize                cmpese-visualize
    reproduce         python -m cmpese.reproduce                cmpese-reproduce
    demo_imagenet     python -m cmpese.data.demo_imagenet       cmpese-demo-imagenet

Every command also runs as ``python -m cmpese.cli.<module>``. The old paths stay: the root
``train_cifar.py`` and ``train_imagenet.py`` are shims over these modules, and the
``python -m`` paths of the second column forward here (``cmpese/tools/*.py``,
``cmpese/evaluate.py``, ...). A new command is a new module here with the same three
functions, plus its line in setup.py.

OpenMP threads. Without ``OMP_NUM_THREADS``, MXNet 1.9.1 starts half as many OpenMP threads
as there are CPUs (one on a 2-core machine: training is 1.5x slower), and the variable is
read when the mxnet library loads: setting it after ``import mxnet`` changes nothing. The
root shims set it before they import anything of cmpese. A console script cannot: its
wrapper imports ``cmpese`` (and so mxnet) before calling ``console()``. So, for the
commands that compute, :func:`console` sets the default and starts the same command line
again with it (``os.execv``; once, only when ``OMP_NUM_THREADS`` is unset, about 2 s);
a value already set is kept.
"""
import functools
import os
import sys

__all__ = ['console', 'default_threads']


def default_threads(env=None):
    """Set ``OMP_NUM_THREADS`` to the CPUs this process may run on, unless it is set;
    returns whether it was set here."""
    env = os.environ if env is None else env
    if 'OMP_NUM_THREADS' in env:
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None
    env['OMP_NUM_THREADS'] = str(cpus or os.cpu_count() or 1)
    return True


def _restart_with_threads():
    """Start this command line again with the thread default, if it was missing and mxnet
    is already loaded (see the module docstring). Returns only when no restart is needed
    (or possible)."""
    if not default_threads() or 'mxnet' not in sys.modules:
        return
    argv = getattr(sys, 'orig_argv', None)          # Python >= 3.10: with -m / options
    if not argv:
        argv = [sys.executable] + sys.argv
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable] + list(argv[1:]))
    except OSError:      # pragma: no cover - keep going with MXNet's default threads
        pass


def console(main, prog, threads=True, argv=None):
    """Run ``main(argv, prog=prog)`` through :func:`cmpese.errors.run` as the command
    ``prog``; returns the exit code (the console scripts pass it to ``sys.exit``).
    ``threads``: the command computes, so it gets the OpenMP thread default."""
    from ..errors import run
    if threads:
        _restart_with_threads()
    return run(functools.partial(main, prog=prog), argv, prog=prog)
