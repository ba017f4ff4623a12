"""The operators behind the units' three cheap steps, in one place, selectable.

Every unit squeezes a feature map to channel signals (CMPE-SE eq. 2), rescales the residual by
the gates (eq. 4) and, for the pair-view and G-filter banks, averages eps maps over the
channel axis (CMPE-SE eq. 11 / 13, InI eq. 6-7). The units call :func:`squeeze`,
:func:`scale` and :func:`channel_mean`; which MXNet operators those emit is chosen here, and
only here. Each step has a *reference* implementation, the operator the equation names
(global average ``Pooling``, ``broadcast_mul``, ``mean``), and faster ones for training on
MXNet 1.9.1's CPU build; all give the same values and gradients up to float rounding
(``tests/test_ops.py``).

Implementations (``IMPLS``):

============  ==============  ==========================================================
step          name            operators
============  ==============  ==========================================================
squeeze       ``pool``        global average ``Pooling`` (oneDNN)  -- reference
squeeze       ``dot``         x as (N, C, H*W) ``dot`` a constant row of 1/(H*W): a BLAS
                              matrix-vector product, its backward one outer product
squeeze       ``adaptive``    ``contrib.AdaptiveAvgPooling2D(output_size=1)``
rescale       ``broadcast``   ``broadcast_mul(x, s)``  -- reference
rescale       ``dot``         s ``dot`` a row of ones (an outer product) spread over the
                              map, then ``elemwise_mul``: the gradient of s is one
                              matrix-vector product instead of MXNet's generic broadcast
                              reduction
mean          ``mean``        ``mean(axis=1)``  -- reference
mean          ``conv``        a 1x1 ``Convolution`` by a constant weight of 1/C (stays in
                              oneDNN on the BN output's blocked layout)
============  ==============  ==========================================================

Profiles (``PROFILES``) name a choice of all three:

* ``'reference'``: the equations' operators. Graphs traced for export, deployment
  (``cmpese.tools.export``, ``cmpese.tools.deploy``) and counting (``cmpese.tools.flops``)
  use it, so that ONNX gets ``GlobalAveragePool`` / ``Mul`` / ``ReduceMean``, oneDNN's
  subgraph passes see plain operators, and the FLOP counter needs to know no trick.
* ``'train'``: what trains fastest on MXNet 1.9.1's CPU build at the shapes the package
  trains (docs/benchmarks.md, ``benchmarks/bench_ops.py``); the default for everything else.

The choice is read when a graph is traced: a hybridized block keeps the operators it was
traced with until ``hybridize()`` is called again. Select with :func:`using` (a context
manager), :func:`set_impl`, or the environment variable ``CMPESE_UNIT_OPS`` read at import
(``reference``, ``train``, or ``squeeze=pool,scale=dot,mean=conv``).
"""
import contextlib
import os
import threading

__all__ = ['squeeze', 'scale', 'channel_mean', 'IMPLS', 'PROFILES', 'DEFAULT_PROFILE',
           'get_impl', 'set_impl', 'using', 'parse_impl']


# --------------------------------------------------------------------------- squeeze
def _squeeze_pool(F, x):
    return F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type='avg')


def _ones_row(F, rows):
    """A constant (1, H*W) row of ones shaped after ``rows`` (N, C, H*W); no gradient."""
    corner = F.slice_axis(F.slice_axis(rows, axis=0, begin=0, end=1), axis=1, begin=0, end=1)
    return F.BlockGrad(F.ones_like(F.reshape(corner, shape=(-3, 0))))


def _squeeze_dot(F, x):
    rows = F.reshape(x, shape=(0, 0, -1))                       # (N, C, H*W)
    ones = _ones_row(F, rows)                                   # (1, H*W)
    mean_row = F.broadcast_div(ones, F.sum(ones, axis=1, keepdims=True))
    return F.reshape(F.dot(rows, mean_row, transpose_b=True), shape=(0, 0, 1, 1))


def _squeeze_adaptive(F, x):
    return F.contrib.AdaptiveAvgPooling2D(x, output_size=1)


# --------------------------------------------------------------------------- rescale
def _scale_broadcast(F, x, s):
    return F.broadcast_mul(x, F.reshape(s, shape=(0, 0, 1, 1)))


def _scale_dot(F, x, s):
    rows = F.reshape(x, shape=(0, 0, -1))                       # (N, C, H*W)
    spread = F.dot(F.reshape(s, shape=(0, -1, 1)), _ones_row(F, rows))
    return F.reshape_like(rows * spread, x)


# --------------------------------------------------------------------------- channel mean
def _mean_mean(F, x, channels):
    return F.mean(x, axis=1, keepdims=True)


def _mean_conv(F, x, channels):
    corner = F.slice_axis(F.slice_axis(F.slice_axis(x, axis=0, begin=0, end=1),
                                       axis=2, begin=0, end=1), axis=3, begin=0, end=1)
    weight = F.BlockGrad(F.ones_like(corner) * (1.0 / channels))
    return F.Convolution(x, weight, kernel=(1, 1), num_filter=1, no_bias=True)


IMPLS = {
    'squeeze': {'pool': _squeeze_pool, 'dot': _squeeze_dot, 'adaptive': _squeeze_adaptive},
    'scale': {'broadcast': _scale_broadcast, 'dot': _scale_dot},
    'mean': {'mean': _mean_mean, 'conv': _mean_conv},
}
PROFILES = {
    'reference': {'squeeze': 'pool', 'scale': 'broadcast', 'mean': 'mean'},
    'train': {'squeeze': 'dot', 'scale': 'dot', 'mean': 'conv'},
}
DEFAULT_PROFILE = 'train'


def parse_impl(text):
    """'reference' | 'train' | 'squeeze=pool,scale=dot,mean=conv' (any subset) -> choices."""
    text = (text or '').strip()
    if text in PROFILES:
        return dict(PROFILES[text])
    choices = {}
    for part in filter(None, (p.strip() for p in text.split(','))):
        step, _, name = part.partition('=')
        step, name = step.strip(), name.strip()
        if step in PROFILES and not name:
            choices.update(PROFILES[step])
            continue
        if step not in IMPLS or name not in IMPLS[step]:
            raise ValueError('unit operators %r: expected a profile (%s) or step=name pairs '
                             'with %s' % (text, ', '.join(sorted(PROFILES)), '; '.join(
                                 '%s in %s' % (k, '|'.join(sorted(v)))
                                 for k, v in sorted(IMPLS.items()))))
        choices[step] = name
    return choices


class _State(threading.local):
    def __init__(self):
        super(_State, self).__init__()
        self.choice = dict(PROFILES[DEFAULT_PROFILE])
        self.choice.update(_ENV_CHOICE)


_ENV_CHOICE = parse_impl(os.environ.get('CMPESE_UNIT_OPS', ''))
_state = _State()


def get_impl():
    """The current choice, {'squeeze': name, 'scale': name, 'mean': name}."""
    return dict(_state.choice)


def set_impl(profile=None, **choices):
    """Select a profile and/or single steps (``set_impl('reference')``,
    ``set_impl(scale='broadcast')``); returns the previous choice (for restoring)."""
    previous = get_impl()
    new = dict(previous)
    if profile is not None:
        new.update(parse_impl(profile) if isinstance(profile, str) else profile)
    for step, name in choices.items():
        if step not in IMPLS or name not in IMPLS[step]:
            raise ValueError('unknown unit operator %s=%r; choose from %s'
                             % (step, name, ', '.join(sorted(IMPLS.get(step, IMPLS)))))
        new[step] = name
    _state.choice = new
    return previous


@contextlib.contextmanager
def using(profile=None, **choices):
    """``with ops.using('reference'): net.hybridize(); net(x)`` traces the reference ops."""
    previous = set_impl(profile, **choices)
    try:
        yield get_impl()
    finally:
        _state.choice = previous


# --------------------------------------------------------------------------- the steps
def squeeze(F, x, pool_type='avg'):
    """Global spatial pooling, CMPE-SE eq. 2: (N, C, H, W) -> (N, C, 1, 1). The max squeeze
    of the SENet ablation is always a global max ``Pooling``."""
    if pool_type != 'avg':
        return F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type=pool_type)
    return IMPLS['squeeze'][_state.choice['squeeze']](F, x)


def scale(F, x, s):
    """Channel-wise rescaling, eq. 4: x (N, C, H, W) times s (N, C)."""
    return IMPLS['scale'][_state.choice['scale']](F, x, s)


def channel_mean(F, x, channels):
    """Mean over the channel axis: (N, C, H, W) -> (N, 1, H, W), C = ``channels``."""
    return IMPLS['mean'][_state.choice['mean']](F, x, channels)
