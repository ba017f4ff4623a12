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
rescale       ``native``      ``scale(x, s)`` of :mod:`cmpese.native` (``fused.cc``), one
                              pass each way. Memory traffic in passes over the map: 2
                              forward (read x, write y) and 3 backward (read g and x,
                              write dx; ds is summed while the plane is in cache), the
                              floor; ``dot`` makes 4 and 7 (the spread map written and
                              read, g * x written and read again). MXNet adds a copy of
                              an input held in oneDNN's blocked layout. CPU only
mean          ``mean``        ``mean(axis=1)``  -- reference
mean          ``conv``        a 1x1 ``Convolution`` by a constant weight of 1/C (stays in
                              oneDNN on the BN output's blocked layout)
============  ==============  ==========================================================

Profiles (``PROFILES``) name a choice of all three:

* ``'reference'``: the equations' operators. Graphs traced for export, deployment
  (``cmpese.tools.export``, ``cmpese.tools.deploy``) and counting (``cmpese.tools.flops``)
  use it, so that ONNX gets ``GlobalAveragePool`` / ``Mul`` / ``ReduceMean``, oneDNN's
  subgraph passes see plain operators, and the FLOP counter needs to know no trick. It
  never uses ``native``: an exported graph holds no library operator and loads where the
  library is absent.
* ``'train'``: what trains fastest on MXNet 1.9.1's CPU build at the shapes the package
  trains (docs/benchmarks.md, ``benchmarks/bench_ops.py``); the default for everything else
  (the trainers select no profile: they train with the default). Its rescale is
  ``native`` when :func:`cmpese.native.load` succeeds, else ``dot``.

When the ``train`` rescale is decided: once per process, the first time a graph is traced
with the default profile (or ``get_impl()``, ``PROFILES['train']`` or ``using('train')``
asks for it), by one call of :func:`cmpese.native.load`, which builds the library if it is
not cached, loads it, or says in one log line why not. A process that only traces the
reference operators (export, deploy, FLOP counts) never builds or loads the library.

Why this keeps GPUs correct by construction: a hybridized graph is traced before it knows
the context it runs on, so the choice cannot be made per context at trace time. Instead it
is made per MXNet build: :func:`cmpese.native.load` refuses a CUDA build of MXNet, so
``native`` enters the ``train`` profile only in a CPU-only MXNet, where every context a
trainer can be given is a CPU (``--gpus`` cannot run there); a CUDA build trains with
``dot`` on GPUs and CPUs alike. No trainer selects operators per context.

The native operator writes its input gradients with ``grad_req='write'`` semantics
(MXNet 1.9.1 does not pass the write requests to a library operator): a gradient it writes
straight into a variable attached with ``grad_req='add'`` replaces the accumulated one. The
units feed it computed tensors only (the residual and the gates), never a parameter.

The choice is read when a graph is traced: a hybridized block keeps the operators it was
traced with until ``hybridize()`` is called again. Select with :func:`using` (a context
manager), :func:`set_impl`, or the environment variable ``CMPESE_UNIT_OPS`` (``reference``,
``train``, or ``squeeze=pool,scale=native,mean=conv``), read, checked and resolved with the
default profile on first use. ``scale=native`` where the library cannot be
loaded is a :class:`cmpese.errors.ConfigError` naming the reason (one line through a command
line's ``cmpese.errors.run``).
"""
import contextlib
import os
import threading

from collections.abc import Mapping

from ..errors import ConfigError

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


def _scale_native(F, x, s):
    # cmpese.native's operator (fused.cc): s may be (N, C) or (N, C, 1, 1); it is in F once
    # cmpese.native.load() has succeeded, which _resolve() checks before this can be chosen
    return F.scale(x, s)


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
    'scale': {'broadcast': _scale_broadcast, 'dot': _scale_dot, 'native': _scale_native},
    'mean': {'mean': _mean_mean, 'conv': _mean_conv},
}
# 'native' where cmpese.native.load() succeeds, else 'dot': resolved on first use (_resolve)
_NATIVE_OR_DOT = 'native|dot'
_PROFILES = {
    'reference': {'squeeze': 'pool', 'scale': 'broadcast', 'mean': 'mean'},
    'train': {'squeeze': 'dot', 'scale': _NATIVE_OR_DOT, 'mean': 'conv'},
}
DEFAULT_PROFILE = 'train'


def _native_loads():
    """True when the native operators are in MXNet (cmpese.native.load(): once a process,
    one log line when it cannot)."""
    from .. import native
    return native.load()


def _resolve(choice, source):
    """``choice`` with the train profile's rescale decided, and ``native`` checked to be
    loadable (else a ConfigError naming ``source``, the text that asked for it)."""
    out = dict(choice)
    for step, name in out.items():
        if name == _NATIVE_OR_DOT:
            out[step] = 'native' if _native_loads() else 'dot'
        elif name == 'native' and not _native_loads():
            from .. import native
            raise ConfigError(
                '%s: the native rescale operator cannot be used here (%s). Choose scale=dot, '
                'or leave the rescale to the train profile, which falls back by itself'
                % (source, native.failure() or 'cmpese.native.load() failed'))
    return out


class _Profiles(Mapping):
    """``PROFILES[name]``: {step: implementation}; the ``train`` rescale is decided on the
    first read (:func:`cmpese.native.load`), never by merely listing the names."""

    def __getitem__(self, name):
        return _resolve(_PROFILES[name], 'profile %r' % name)

    def __iter__(self):
        return iter(_PROFILES)

    def __len__(self):
        return len(_PROFILES)

    def __contains__(self, name):
        return name in _PROFILES

    def __repr__(self):
        return repr({name: self[name] for name in _PROFILES})


PROFILES = _Profiles()


def _parse(text):
    """The spelling of 'reference' | 'train' | 'squeeze=pool,scale=dot,...' -> choices,
    unresolved (the train rescale not decided, ``native`` not checked)."""
    text = (text or '').strip()
    if text in _PROFILES:
        return dict(_PROFILES[text])
    choices = {}
    for part in filter(None, (p.strip() for p in text.split(','))):
        step, _, name = part.partition('=')
        step, name = step.strip(), name.strip()
        if step in _PROFILES and not name:
            choices.update(_PROFILES[step])
            continue
        if step not in IMPLS or name not in IMPLS[step]:
            raise ConfigError('unit operators %r: expected a profile (%s) or step=name pairs '
                              'with %s' % (text, ', '.join(sorted(_PROFILES)), '; '.join(
                                  '%s in %s' % (k, '|'.join(sorted(v)))
                                  for k, v in sorted(IMPLS.items()))))
        choices[step] = name
    return choices


def parse_impl(text):
    """'reference' | 'train' | 'squeeze=pool,scale=dot,mean=conv' (any subset) -> choices.
    A ConfigError (a ValueError) for a bad spelling, or ``native`` where it cannot load."""
    return _resolve(_parse(text), 'unit operators %r' % (text or '').strip())


_ENV = (os.environ.get('CMPESE_UNIT_OPS') or '').strip()
_default = []                    # [the default choice] once resolved


def _default_choice():
    """The package's choice with ``CMPESE_UNIT_OPS`` applied, read and checked on first use
    (not at import, so that a misspelling is the one-line error of the command that traces a
    unit, not a traceback of ``import cmpese``)."""
    if not _default:
        choice = dict(_PROFILES[DEFAULT_PROFILE])
        try:
            choice.update(_parse(_ENV))
        except ConfigError as err:
            raise ConfigError('CMPESE_UNIT_OPS=%s: %s' % (_ENV, err))
        _default.append(_resolve(choice, 'CMPESE_UNIT_OPS=%s' % _ENV))
    return _default[0]


class _State(threading.local):
    def __init__(self):
        super(_State, self).__init__()
        self.choice = None       # None: the default, resolved on first use


_state = _State()


def _choice():
    return _state.choice if _state.choice is not None else _default_choice()


def _updated(profile, choices):
    """The choice ``profile`` and ``choices`` make of the current one, resolved."""
    new = {}
    if profile is not None:
        new.update(_parse(profile) if isinstance(profile, str) else profile)
    new.update(choices)
    for step, name in new.items():
        if step not in IMPLS or (name not in IMPLS[step] and name != _NATIVE_OR_DOT):
            raise ConfigError('unknown unit operator %s=%r; choose from %s'
                              % (step, name, ', '.join(sorted(IMPLS.get(step, IMPLS)))))
    if set(new) != set(IMPLS):
        new = dict(_choice(), **new)
    asked = ([profile] if isinstance(profile, str) else []) + [
        '%s=%s' % kv for kv in sorted(choices.items())]
    return _resolve(new, 'unit operators %r' % ','.join(asked or sorted(new.values())))


def get_impl():
    """The current choice, {'squeeze': name, 'scale': name, 'mean': name}."""
    return dict(_choice())


def set_impl(profile=None, **choices):
    """Select a profile and/or single steps (``set_impl('reference')``,
    ``set_impl(scale='broadcast')``); returns the previous choice (for restoring)."""
    previous = get_impl()
    _state.choice = _updated(profile, choices)
    return previous


@contextlib.contextmanager
def using(profile=None, **choices):
    """``with ops.using('reference'): net.hybridize(); net(x)`` traces the reference ops."""
    previous = _state.choice         # None stays the default, resolved only when used
    _state.choice = _updated(profile, choices)
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
    return IMPLS['squeeze'][_choice()['squeeze']](F, x)


def scale(F, x, s):
    """Channel-wise rescaling, eq. 4: x (N, C, H, W) times s (N, C)."""
    return IMPLS['scale'][_choice()['scale']](F, x, s)


def channel_mean(F, x, channels):
    """Mean over the channel axis: (N, C, H, W) -> (N, 1, H, W), C = ``channels``."""
    return IMPLS['mean'][_choice()['mean']](F, x, channels)
