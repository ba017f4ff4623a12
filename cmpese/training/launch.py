"""Start a distributed (``dist_sync``) training on this machine: one scheduler, ``-s``
servers and ``-n`` workers talking over 127.0.0.1, each worker running the given command.

    python -m cmpese.training.launch -n 2 -- python train_cifar.py --model se_wrn16_8 \\
        --kvstore dist_sync

The launcher watches every process. When a worker exits with an error or is killed, or the
scheduler or a server ends before the workers are done, it stops all the others (SIGTERM,
then SIGKILL after a grace period) and exits non-zero with one line naming the process that
died; without this, the surviving workers of a ``dist_sync`` run wait for the dead one
forever. Ctrl-C / SIGTERM stop everything the same way (exit 130 / 143).

For several machines use MXNet's ``tools/launch.py`` (ssh, mpi, yarn) from the MXNet source
tree, or set the same ``DMLC_*`` variables by hand on each machine (docs/training.md).
Exits with 0 when every worker succeeded, else with the first failure's status (a worker's
own exit code, or 128 + the signal number that killed it). A worker command that cannot be
started is a one-line :class:`LaunchError` (the scheduler and servers already started are
stopped). The command line's parser and
``main`` are :mod:`cmpese.cli.launch` (``python -m cmpese.training.launch`` runs it).
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from ..errors import UserError

__all__ = ['launch', 'free_port', 'LaunchResults', 'LaunchError', 'FINALIZE_GRACE']

# Seconds the workers may still run after the scheduler or a server ended normally (which
# they do once every worker has passed ps-lite's finalize barrier) before the launcher
# counts it as a death and stops them.
FINALIZE_GRACE = 60


class LaunchError(UserError):
    """The worker command could not be started (one line; the scheduler and servers that
    were already started are stopped)."""


def free_port(host='127.0.0.1'):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LaunchResults(list):
    """The workers' ``(returncode, stdout, stderr)`` in launch order; ``failure`` is None or
    a sentence naming the process that died first, ``code`` the launcher's exit status."""
    failure = None
    code = 0


def _describe(code):
    if code is None:
        return 'is still running'
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = 'signal %d' % -code
        return 'was killed by %s' % name
    return 'exited with status %d' % code


def _status(code):
    return 128 - code if code < 0 else code


class _Proc(object):
    def __init__(self, name, popen, log=None):
        self.name, self.popen, self.log = name, popen, log
        self.out, self.err = [], []
        self.readers = []

    def tail(self, lines=3):
        """The last lines of what the process wrote to stderr (for the failure message)."""
        if self.err:
            text = ''.join(self.err)
        elif self.log is not None:
            self.log.flush()
            self.log.seek(0)
            text = self.log.read().decode('utf8', 'replace')
        else:
            return ''
        kept = [l for l in text.strip().splitlines() if l.strip()]
        return ' | '.join(kept[-lines:])


def _reader(stream, sink):
    for chunk in iter(lambda: stream.readline(), ''):
        sink.append(chunk)
    stream.close()


def _stop(procs, grace):
    """SIGTERM to every running process, SIGKILL to those still running after ``grace``."""
    for p in procs:
        if p.popen.poll() is None:
            try:
                p.popen.send_signal(signal.SIGTERM)
            except OSError:
                pass
    deadline = time.time() + grace
    for p in procs:
        try:
            p.popen.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        if p.popen.poll() is None:
            p.popen.kill()
            p.popen.wait()


def launch(command, workers=2, servers=1, env=None, cwd=None, timeout=None, capture=False,
           grace=5.0, poll=0.2, stream=None):
    """Run ``command`` (a list) as ``workers`` dist workers with a scheduler and ``servers``
    servers on 127.0.0.1, and watch them all.

    Returns :class:`LaunchResults`: the workers' ``(returncode, stdout, stderr)`` (the
    outputs only with ``capture=True``, else they go to this process's). When a process
    dies (see the module docstring) or ``timeout`` seconds pass, the others are stopped and
    ``failure`` names the cause; ``stream`` (e.g. ``sys.stderr``) receives that line.
    """
    base = dict(os.environ if env is None else env)
    base.update(DMLC_PS_ROOT_URI='127.0.0.1', DMLC_PS_ROOT_PORT=str(free_port()),
                DMLC_NUM_SERVER=str(servers), DMLC_NUM_WORKER=str(workers))
    daemon_cmd = [sys.executable, '-c', 'import mxnet']   # importing mxnet runs the role
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True) \
        if capture else {}
    daemons, worker_procs = [], []
    results = LaunchResults()
    try:
        for i, role in enumerate(['scheduler'] + ['server'] * servers):
            log = tempfile.TemporaryFile()
            name = 'the scheduler' if role == 'scheduler' else 'server %d' % (i - 1)
            popen = subprocess.Popen(daemon_cmd, env=dict(base, DMLC_ROLE=role), cwd=cwd,
                                     stdout=log, stderr=subprocess.STDOUT)
            daemons.append(_Proc(name, popen, log))
        for i in range(workers):
            try:
                popen = subprocess.Popen(command, env=dict(base, DMLC_ROLE='worker'), cwd=cwd,
                                         **pipes)
            except OSError as err:      # no such program, not executable, ...
                raise LaunchError('cannot start the worker command %s: %s' % (
                    command[0], err.strerror or err)) from err
            p = _Proc('worker %d' % i, popen)
            if capture:
                for src, sink in ((popen.stdout, p.out), (popen.stderr, p.err)):
                    t = threading.Thread(target=_reader, args=(src, sink), daemon=True)
                    t.start()
                    p.readers.append(t)
            worker_procs.append(p)
        start = time.time()
        failure = None
        while failure is None:
            codes = [p.popen.poll() for p in worker_procs]
            for p, code in zip(worker_procs, codes):
                if code is not None and code != 0:
                    failure = (p, code)
                    break
            if failure is None and all(c == 0 for c in codes):
                break
            if failure is None:
                for p in daemons:
                    code = p.popen.poll()
                    # a daemon ends normally right after the workers finalize: only a
                    # non-zero status, or ending while workers still run FINALIZE_GRACE s
                    # later, is death (a worker's exit after ps-lite's finalize barrier
                    # was measured at 12 s on a loaded 2-core machine)
                    if code is not None and code != 0:
                        failure = (p, code)
                        break
                    if code == 0:
                        p.ended = getattr(p, 'ended', None) or time.time()
                        if time.time() - p.ended > FINALIZE_GRACE:
                            failure = (p, code)
                            break
            if failure is None and timeout is not None and time.time() - start > timeout:
                failure = (None, None)
                break
            if failure is None:
                time.sleep(poll)
        if failure is None:
            # every worker finished: the scheduler and servers end once they have finalized
            deadline = time.time() + 60
            for p in daemons:
                try:
                    p.popen.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    pass
        else:
            proc, code = failure
            others = [p for p in daemons + worker_procs if p is not proc and
                      p.popen.poll() is None]
            _stop(others, grace)
            if proc is None:
                results.failure = ('the run did not finish within %g s; stopped all %d '
                                   'processes' % (timeout, len(daemons) + len(worker_procs)))
                results.code = 124
            else:
                tail = proc.tail()
                results.failure = '%s (pid %d) %s; stopped the %d other process(es)%s' % (
                    proc.name, proc.popen.pid, _describe(code), len(others),
                    ('. Its last output: %s' % tail) if tail else '')
                results.code = _status(code) or 1
            if stream is not None:
                stream.write('launch: %s\n' % results.failure)
                stream.flush()
    finally:
        everything = daemons + worker_procs
        if any(p.popen.poll() is None for p in everything):
            _stop(everything, grace)
        for p in worker_procs:
            for t in p.readers:
                t.join(timeout=5)
        for p in daemons:
            p.log.close()
    for p in worker_procs:
        results.append((p.popen.returncode, ''.join(p.out) if capture else None,
                        ''.join(p.err) if capture else None))
    return results


if __name__ == '__main__':       # the command line: cmpese.cli.launch
    from cmpese.cli.launch import console
    sys.exit(console(prog='python -m cmpese.training.launch'))
