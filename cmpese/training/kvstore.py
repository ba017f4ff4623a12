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

Once created, the kvstore aggregates the gradients: in one process ``gluon.Trainer`` does it
(``device``/``local``); across processes :class:`DistSync` does (an explicit, fenced
all-reduce). :func:`average_aux` gives every device one set of BatchNorm statistics.
"""
import os
import socket
import threading
import time

import mxnet as mx

from ..errors import UserError

__all__ = ['create_kvstore', 'dist_environment', 'wait_for_scheduler', 'DMLC_VARS',
           'DistError', 'ACTIVE', 'DistSync', 'average_aux']

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


# ---------------------------------------------------------------- aggregation

def _plain(array):
    """A copy of ``array`` in MXNet's default layout, on the same device."""
    return mx.nd.array(array.asnumpy(), ctx=array.context, dtype=array.dtype)


class DistSync(object):
    """Gradient all-reduce over a ``dist_sync`` kvstore, with an initialization that is safe.

    ``gluon.Trainer`` with a dist kvstore broadcasts worker 0's initial weights (kvstore init,
    then pull) inside its first ``step``, unordered with the first gradient push-pull of the
    same keys; in MXNet 1.9.1 a pull can then reach the server before the init ("init N
    first", the server aborts) or return the first gradient sum instead of the weights (a
    worker trains from other weights). Here the keys are initialized, completed and fenced
    by barriers before training starts, and every step is an explicit push-pull of each
    gradient (summed over the devices of all workers) before ``trainer.update``.
    """

    def __init__(self, kv, net, ctx):
        self.kv, self.ctx = kv, ctx
        self.params = [p for _, p in sorted(net._collect_params_with_prefix().items())]

    def start(self):
        """Store worker 0's parameters on the servers and give them to every device of
        every worker (collective: all workers call it). Shapes must be known."""
        keys = list(range(len(self.params)))
        # Fresh plain copies: initializing keys from the parameter arrays themselves makes
        # the MXNet 1.9.1 server lose keys ("init N first") -- seen with arrays that a
        # oneDNN forward pass has used.
        self.kv.init(keys, [_plain(p.data(self.ctx[0])) for p in self.params])
        mx.nd.waitall()
        self.kv._barrier()
        for i, p in enumerate(self.params):
            self.kv.pull(i, out=p.list_data(), priority=-i)
        mx.nd.waitall()
        self.kv._barrier()

    def allreduce_grads(self):
        for i, p in enumerate(self.params):
            if p.grad_req != 'null':
                self.kv.pushpull(i, p.list_grad(), priority=-i)

    def average_aux(self):
        """Set the BN running statistics to their mean over all devices of all workers (as
        ``save_parameters`` averages over the devices of one process)."""
        total = len(self.ctx) * self.kv.num_workers
        for i, p in enumerate(self.params):
            if p.grad_req == 'null':
                sums = [mx.nd.zeros(p.shape, ctx=d.context) for d in p.list_data()]
                self.kv.push(i, [_plain(d) for d in p.list_data()], priority=-i)
                self.kv.pull(i, out=sums, priority=-i)
                for d, v in zip(p.list_data(), sums):
                    d[:] = v / total
        mx.nd.waitall()


def average_aux(net):
    """Set every copy of the BN running statistics (the parameters without a gradient) to
    their mean over the devices of this process, computed as ``save_parameters`` computes
    the value it writes; so the parameters in memory equal those a checkpoint restores."""
    for p in net.collect_params().values():
        if p.grad_req == 'null' and len(p.list_ctx()) > 1:
            data = p.list_data()
            mean = mx.nd.add_n(*(d.copyto(mx.cpu()) for d in data)) / len(data)
            for d in data:
                d[:] = mean.as_in_context(d.context)
