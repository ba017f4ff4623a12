"""Start a distributed (``dist_sync``) training on this machine: one scheduler, ``-s``
servers and ``-n`` workers over 127.0.0.1, each worker running the given command, all
watched (:func:`cmpese.training.launch.launch`, whose docstring says what "watched" means).

    python -m cmpese.training.launch -n 2 -- python train_cifar.py --model se_wrn16_8 \\
        --kvstore dist_sync
    cmpese-launch -n 2 -- cmpese-train-cifar --model se_wrn16_8 --kvstore dist_sync

Exits with 0 when every worker succeeded, else with the first failure's status (a worker's
own exit code, or 128 + the signal number that killed it), 124 after ``--timeout``.
"""
import sys

from ..errors import ArgumentParser, UserError

__all__ = ['build_parser', 'main', 'console', 'PROG']

PROG = 'python -m cmpese.training.launch'


def build_parser(prog=PROG):
    parser = ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--workers', type=int, default=2)
    parser.add_argument('-s', '--servers', type=int, default=1)
    parser.add_argument('--timeout', type=float, default=None,
                        help='stop everything after this many seconds (default: none)')
    parser.add_argument('command', nargs='...', help='the worker command, after --')
    return parser


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
    results = launch(command, args.workers, args.servers, timeout=args.timeout,
                     stream=sys.stderr)
    return results.code


def console(prog='cmpese-launch'):
    """The ``cmpese-launch`` console script (no thread default: it only watches)."""
    from . import console as run_console
    return run_console(main, prog, threads=False)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.launch'))
