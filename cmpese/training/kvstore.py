"""Creating the kvstore without hanging.

``mx.kv.create('dist_sync')`` blocks in C++ until the scheduler answers and every worker
and server has registered; with no scheduler it waits forever, silently. So for ``dist_*``
kinds :func:`create_kvstore` first checks the launcher's ``DMLC_*`` variables, then
connects to ``DMLC_PS_ROOT_URI:DMLC_PS_ROOT_PORT`` over TCP (retrying until the deadline:
the scheduler may start a moment after the worker), and finally creates the kvstore in a
daemon thread that it waits for with the same deadline. A missed deadline is a one-line
:class:`~cmpese.errors.UserError` (the process then ends with ``os._exit``: the C++ call
cannot be cancelled). Once a dist kvstore exists, a process that fails also ends with
``os._exit`` (see :data:`ACTIVE`), so that one worker's error never leaves it waiting at
exit for the others.
"""
import os
import socket
import threading
import time

from ..errors import UserError

__all__ = ['create_kvstore', 'dist_environment', 'wait_for_scheduler', 'DMLC_VARS',
           'DistError', 'ACTIVE']

# The dist kvstores this process created. While one exists, cmpese.errors.run ends a failing
# process with os._exit: a normal exit runs ps-lite's Finalize, a barrier with the other
# workers, which would wait for ever for workers that are still training (or dead).
ACTIVE = []

DMLC_VARS = ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_SERVER',
             'DMLC_NUM_WORKER')

LAUNCH_HINT = ('python -m cmpese.training.launch -n 2 -- python train_cifar.py ... --kvstore '
               '%s (one machine), or MXNet\'s tools/launch.py for several (docs/training.md)')


class DistError(UserError):
    """The distributed environment is missing, wrong, or the cluster did not form."""


def dist_environment(kind, env=None):
    """``(host, port, workers, servers)`` from the ``DMLC_*`` variables a launcher sets for
    a ``dist_*`` kvstore; a missing or malformed one is a :class:`DistError` saying how to
    launch."""
    env = os.environ if env is None else env
    missing = [v for v in DMLC_VARS if not env.get(v)]
    if missing:
        raise DistError('--kvstore %s runs as one of several processes started by a launcher, '
                        'but %s %s not set. Start it with: %s.'
                        % (kind, ', '.join(missing), 'is' if len(missing) == 1 else 'are',
                           LAUNCH_HINT % kind))
    if env['DMLC_ROLE'] != 'worker':
        raise DistError('DMLC_ROLE=%s: the training command runs as a worker (DMLC_ROLE=worker);'
                        ' the scheduler and servers run python -c "import mxnet"'
                        % env['DMLC_ROLE'])
    values = {}
    for var in ('DMLC_PS_ROOT_PORT', 'DMLC_NUM_SERVER', 'DMLC_NUM_WORKER'):
        try:
            values[var] = int(env[var])
        except ValueError:
            raise DistError('%s=%r is not an integer' % (var, env[var]))
        if values[var] < (0 if var == 'DMLC_PS_ROOT_PORT' else 1) or \
                (var == 'DMLC_PS_ROOT_PORT' and not 0 < values[var] < 65536):
            raise DistError('%s=%s is out of range' % (var, env[var]))
    return (env['DMLC_PS_ROOT_URI'], values['DMLC_PS_ROOT_PORT'], values['DMLC_NUM_WORKER'],
            values['DMLC_NUM_SERVER'])


def wait_for_scheduler(host, port, timeout, interval=0.5):
    """Connect to the scheduler over TCP until it answers or ``timeout`` seconds pass;
    returns the seconds waited or raises :class:`DistError`."""
    start = time.time()
    deadline = start + timeout
    last = None
    while True:
        left = deadline - time.time()
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(2.0, left))):
                return time.time() - start
        except OSError as err:
            last = err
        if time.time() + interval > deadline:
            break
        time.sleep(interval)
    raise DistError('no scheduler answered at %s:%d (DMLC_PS_ROOT_URI:DMLC_PS_ROOT_PORT) within '
                    '%g s (--dist-timeout; last error: %s). Start the scheduler and servers '
                    'first (python -m cmpese.training.launch does it), or fix the address.'
                    % (host, port, timeout, getattr(last, 'strerror', None) or last))


def create_kvstore(kind, timeout=60.0):
    """``mx.kv.create(kind)``; for ``dist_*`` kinds with the checks above, giving up after
    ``timeout`` seconds (``--dist-timeout``)."""
    import mxnet as mx
    if 'dist' not in kind:
        return mx.kv.create(kind)
    host, port, workers, servers = dist_environment(kind)
    start = time.time()
    wait_for_scheduler(host, port, timeout)
    box = {}

    def create():
        try:
            box['kv'] = mx.kv.create(kind)
        except BaseException as err:  # handed to the caller
            box['error'] = err
    thread = threading.Thread(target=create, name='kvstore-create', daemon=True)
    thread.start()
    thread.join(max(1.0, timeout - (time.time() - start)))
    if thread.is_alive():
        err = DistError('the scheduler at %s:%d answered, but the cluster of %d worker(s) and %d '
                        'server(s) (DMLC_NUM_WORKER, DMLC_NUM_SERVER) did not form within %g s '
                        '(--dist-timeout): start every worker and server, with the same '
                        'DMLC_* values.' % (host, port, workers, servers, timeout))
        err.hard_exit = True
        raise err
    if 'error' in box:
        raise box['error']
    ACTIVE.append(box['kv'])
    return box['kv']
