"""Start a distributed (``dist_sync``) training on this machine: one scheduler, ``-s``
servers and ``-n`` workers over 127.0.0.1, each worker running the given command, all
watched (:func:`cmpese.training.launch.launch`, whose docstring says what "watched" means).

    python -m cmpese.training.launch -n 2 -- python train_cifar.py --model se_wrn16_8 \\
        --kvstore dist_sync
    cmpese-launch -n 2 -- cmpese-train-cifar --model se_wrn16_8 --kvstore dist_sync

Exits with 0 when every worker succeeded, else with the first failure's status (a worker's
own exit code, or 128 + the signal number that killed it), 124 after ``--timeout``.

Refused in one line before anything starts: a worker command that does not exist or cannot
be run, and a cmpese trainer (or any command with ``--kvstore``) that does not train with
``--kvstore dist_*``: its workers would each train alone into one ``--save-dir``.

:func:`refuse_stray_role` (:mod:`cmpese.roles`, re-exported here), which ``import cmpese``
calls before mxnet is imported: a trainer started with ``DMLC_ROLE=server`` or ``scheduler`` would
otherwise become that node when mxnet loads (and wait, silent, for a cluster that never
forms). It imports nothing of mxnet, and only :mod:`cmpese.errors` of cmpese.
"""
import os
import shutil
import sys

from ..errors import ArgumentParser, UserError
from ..roles import TRAINERS, kvstore_of, refuse_stray_role, stray_role_message  # noqa: F401

__all__ = ['build_parser', 'main', 'console', 'PROG', 'check_command', 'kvstore_of',
           'refuse_stray_role', 'stray_role_message', 'TRAINERS']

PROG = 'python -m cmpese.training.launch'

def build_parser(prog=PROG):
    parser = ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--workers', type=int, default=2)
    parser.add_argument('-s', '--servers', type=int, default=1)
    parser.add_argument('--timeout', type=float, default=None,
                        help='stop everything after this many seconds (default: none)')
    parser.add_argument('command', nargs='...', help='the worker command, after --')
    return parser


def _tokens(command):
    """The words of ``command``, with each argument split at blanks (so that a command
    given to a shell, ``bash -c "python train_cifar.py ..."``, is read too)."""
    return [word for arg in command for word in str(arg).split()]


def _trainer(words):
    """The index of the first word naming a cmpese trainer, or None."""
    for i, word in enumerate(words):
        if os.path.basename(word) in TRAINERS:
            return i
    return None


def check_command(command, workers):
    """Raise :class:`UserError` when the worker ``command`` cannot be run, or would not
    train as one distributed run (see the module docstring)."""
    program = command[0]
    if os.sep in program:
        if not os.path.exists(program):
            raise UserError('the worker command %s does not exist; give the program to run '
                            'after --, e.g. -- python train_cifar.py ... --kvstore dist_sync'
                            % program)
        if os.path.isdir(program) or not os.access(program, os.X_OK):
            raise UserError('the worker command %s is not an executable program; run a script '
                            'with its interpreter: -- %s %s ...'
                            % (program, os.path.basename(sys.executable) or 'python', program))
    elif shutil.which(program) is None:
        raise UserError('the worker command %r was not found on PATH; give the program to run '
                        'after --, e.g. -- python train_cifar.py ... --kvstore dist_sync'
                        % program)
    words = _tokens(command)
    kind = kvstore_of(words)
    if kind is None and _trainer(words) is None:
        return                    # not a cmpese trainer: its own business
    if kind is None or not kind.startswith('dist'):
        raise UserError(
            'the worker command trains with --kvstore %s, so its %d copies would each train '
            'alone into one --save-dir, and the scheduler and servers would wait for them in '
            'vain; add --kvstore dist_sync to the command (each worker then trains its share of '
            'every batch)' % (kind or 'device (the default)', workers))


def main(argv=None, prog=PROG):
    from ..training.launch import launch
    args = build_parser(prog).parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        raise UserError('give the worker command after --, e.g. -- python train_cifar.py ... '
                        '--kvstore dist_sync')
    if args.workers < 1 or args.servers < 1:
        raise UserError('-n/--workers and -s/--servers must be >= 1, got %d and %d'
                        % (args.workers, args.servers))
    if args.timeout is not None and not 0 < args.timeout < float('inf'):
        raise UserError('--timeout must be a finite number of seconds > 0, got %s; leave it out '
                        'to wait as long as the run takes' % args.timeout)
    check_command(command, args.workers)
    results = launch(command, args.workers, args.servers, timeout=args.timeout,
                     stream=sys.stderr)
    return results.code


def console(prog='cmpese-launch'):
    """The ``cmpese-launch`` console script (no thread default: it only watches)."""
    from . import console as run_console
    return run_console(main, prog, threads=False)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.launch'))
