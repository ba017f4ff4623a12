"""Start a distributed (``dist_sync``) training on this machine: one scheduler, ``-s``
servers and ``-n`` workers talking over 127.0.0.1, each worker running the given command.

    python -m cmpese.training.launch -n 2 -- python train_cifar.py --model se_wrn16_8 \\
        --kvstore dist_sync

For several machines use MXNet's ``tools/launch.py`` (ssh, mpi, yarn) from the MXNet source
tree, or set the same ``DMLC_*`` variables by hand on each machine (docs/training.md).
Exits with the first non-zero worker status (or 0).
"""
import argparse
import os
import socket
import subprocess
import sys

__all__ = ['launch', 'free_port']


def free_port(host='127.0.0.1'):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launch(command, workers=2, servers=1, env=None, cwd=None, timeout=None, capture=False):
    """Run ``command`` (a list) as ``workers`` dist workers; returns their CompletedProcess-like
    ``(returncode, stdout, stderr)`` tuples in launch order."""
    base = dict(os.environ if env is None else env)
    base.update(DMLC_PS_ROOT_URI='127.0.0.1', DMLC_PS_ROOT_PORT=str(free_port()),
                DMLC_NUM_SERVER=str(servers), DMLC_NUM_WORKER=str(workers))
    daemon_cmd = [sys.executable, '-c', 'import mxnet']   # importing mxnet runs the role
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True) \
        if capture else {}
    procs = [subprocess.Popen(daemon_cmd, env=dict(base, DMLC_ROLE='scheduler'), cwd=cwd,
                              **quiet)]
    procs += [subprocess.Popen(daemon_cmd, env=dict(base, DMLC_ROLE='server'), cwd=cwd, **quiet)
              for _ in range(servers)]
    worker_procs = [subprocess.Popen(command, env=dict(base, DMLC_ROLE='worker'), cwd=cwd,
                                     **pipes) for _ in range(workers)]
    try:
        results = []
        for p in worker_procs:
            out, err = p.communicate(timeout=timeout)
            results.append((p.returncode, out, err))
        for p in procs:
            p.wait(timeout=60)
        return results
    finally:
        for p in worker_procs + procs:
            if p.poll() is None:
                p.kill()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--workers', type=int, default=2)
    parser.add_argument('-s', '--servers', type=int, default=1)
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='the worker command, after --')
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        parser.error('give the worker command after --, e.g. -- python train_cifar.py ...')
    codes = [code for code, _, _ in launch(command, args.workers, args.servers)]
    return next((c for c in codes if c), 0)


if __name__ == '__main__':
    sys.exit(main())
