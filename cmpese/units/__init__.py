"""Recalibration units and the one factory that makes them.

Every unit is a ``HybridBlock`` called as ``unit(residual, identity)`` that returns the
recalibrated residual; units that do not look at the identity (SE) accept and ignore it.
A residual block is then ``out = unit(residual, identity) + identity``.

>>> from cmpese.units import get_unit
>>> unit = get_unit('cmpe_se_1x1', channels=64, reduction=16)
"""
import difflib
import re

from .base import ExcitationUnit, reduced_channels
from .competitive import DoubleFCUnit, PairViewUnit
from .inner_imaging import MAX_SLENDER, InnerImagingUnit
from .se import SEUnit
from .spatial import SpatialAttention, SpatialThenChannel

__all__ = ['get_unit', 'make_unit', 'list_units', 'register_unit', 'unit_uses_identity',
           'SEUnit', 'DoubleFCUnit', 'PairViewUnit', 'InnerImagingUnit', 'ExcitationUnit',
           'reduced_channels', 'INI_GSETS', 'SpatialAttention', 'SpatialThenChannel']

# name -> (constructor, fixed keyword arguments, whether it reads the identity flow,
#          names of backbone hints it accepts)
_UNITS = {}


def register_unit(name, constructor, uses_identity, hints=(), **fixed):
    """Make ``get_unit(name, channels, ...)`` build ``constructor(channels, **fixed, ...)``.

    ``hints`` names keyword arguments a backbone may offer every unit (for example the
    inner-imaged map shape the InI paper sets per backbone); :func:`make_unit` passes a hint
    only to units that declare it, so backbones stay unit-agnostic.
    """
    if name in _UNITS:
        raise ValueError('unit %r is already registered' % name)
    _UNITS[name] = (constructor, fixed, uses_identity, tuple(hints))


register_unit('se', SEUnit, uses_identity=False)
register_unit('cmpe_se_double_fc', DoubleFCUnit, uses_identity=True)
register_unit('cmpe_se_2x1', PairViewUnit, uses_identity=True, kernel='2x1')
register_unit('cmpe_se_1x1', PairViewUnit, uses_identity=True, kernel='1x1')

# Inner-Imaging: 'ini_' + a Table I set ('-' as '_'), '_d' adds the dilated G-filter,
# '_nojoint' models the residual alone (the '*' rows). Backbones hint the map shape
# ('ini_map') and, when they have no identity flow, joint=False.
INI_GSETS = (['square_%d' % n for n in range(1, 6)] + ['mix_%d' % n for n in range(1, 6)]
             + ['horizon_%d' % n for n in range(1, MAX_SLENDER + 1)]
             + ['vertical_%d' % n for n in range(1, MAX_SLENDER + 1)])
for _gset in INI_GSETS:
    for _g in (_gset, _gset + '_d'):
        register_unit('ini_' + _g, InnerImagingUnit, uses_identity=True,
                      hints=('ini_map', 'joint'), gset=_g, joint=True)
        register_unit('ini_%s_nojoint' % _g, InnerImagingUnit, uses_identity=False,
                      hints=('ini_map',), gset=_g, joint=False)
for _g in ('simple_1', 'simple_3'):
    register_unit('ini_' + _g, InnerImagingUnit, uses_identity=True, hints=('ini_map',),
                  gset=_g, joint=True)


def list_units():
    """Names accepted by :func:`get_unit`."""
    return sorted(_UNITS)


_SPATIAL = re.compile(r'^(?P<base>.+)_spa(?P<tau>\d*)$')


def _spatial_variant(name):
    """'<unit>_spa' / '<unit>_spa<tau>': spatial attention (tau group-wise maps) before the
    channel unit (InI paper Sec. V-E), as a registry entry, or None."""
    m = _SPATIAL.match(str(name))
    if m is None or m.group('base') not in _UNITS or m.group('tau') in ('0', '1'):
        return None
    tau = int(m.group('tau') or 1)
    base = m.group('base')

    def build(channels, reduction=16, prefix=None, **kwargs):
        inner = get_unit(base, channels, reduction=reduction, prefix='channel_', **kwargs)
        return SpatialThenChannel(channels, inner, groups=tau, prefix=prefix)
    _, _, uses_identity, hints = _UNITS[base]
    return build, {}, uses_identity, hints


def _lookup(name):
    spatial = None if name in _UNITS else _spatial_variant(name)
    if spatial is not None:
        return spatial
    if name not in _UNITS:
        close = difflib.get_close_matches(str(name), list(_UNITS), n=3, cutoff=0.4)
        hint = (' Did you mean %s?' % ' or '.join(repr(c) for c in close)) if close else ''
        raise ValueError(
            'unknown recalibration unit %r.%s Units are se, cmpe_se_double_fc, cmpe_se_2x1, '
            'cmpe_se_1x1 and ini_<Table I set>[_d][_nojoint] (e.g. ini_mix_5_d), each optionally '
            'followed by _spa or _spa<tau>; cmpese.units.list_units() lists all %d.'
            % (name, hint, len(_UNITS)))
    return _UNITS[name]


def unit_uses_identity(name):
    """Whether the named unit reads the identity flow (CMPE-SE) or ignores it (SE)."""
    return _lookup(name)[2]


def get_unit(name, channels, reduction=16, identity_channels=None, **kwargs):
    """Build the unit ``name`` for a residual flow of ``channels`` channels.

    Parameters
    ----------
    name : str
        One of :func:`list_units` ('se', 'cmpe_se_double_fc', 'cmpe_se_2x1', 'cmpe_se_1x1',
        'ini_<Table I set>[_d][_nojoint]'), optionally followed by '_spa' (one spatial
        attention map first) or '_spa<tau>' (tau group-wise maps), e.g. 'ini_mix_5_d_spa4'.
    channels : int
        C, channels of the residual flow it rescales.
    reduction : int, default 16
        The reduction ratio t (C/t neurons; C/t pair-view filters).
    identity_channels : int, optional
        Channels of the identity flow when they differ from ``channels``. Only the double FC
        unit can encode an identity of another width; pair-view stacks the two flows and
        needs them equal.
    **kwargs
        Passed to the unit: ``squeeze``, ``gate``, ``use_bias``, ``filters``, ``prefix``...
    """
    constructor, fixed, uses_identity, _ = _lookup(name)
    if identity_channels not in (None, channels) and uses_identity:
        if constructor is PairViewUnit:
            raise ValueError(
                'unit %r stacks the squeezed residual (%d channels) over the squeezed identity '
                '(%d channels) and needs equal widths; pass the identity after its projection '
                '(as every cmpese backbone does) or use cmpe_se_double_fc.'
                % (name, channels, identity_channels))
        kwargs['identity_channels'] = identity_channels
    args = dict(fixed)
    args.update(kwargs)
    return constructor(channels, reduction=reduction, **args)


def make_unit(spec, channels, identity_channels=None, reduction=16, where=None, hints=None,
              **kwargs):
    """Resolve a backbone's ``unit=`` argument into a block (or None for no unit).

    ``spec`` is None / 'none' (plain backbone), a unit name, or a callable
    ``spec(channels, identity_channels=..., reduction=..., **kwargs)`` returning a
    HybridBlock (a user's own unit). ``where`` names the layer in error messages. ``hints``
    are the backbone's suggestions (see :func:`register_unit`); explicit ``kwargs`` win.
    """
    if spec is None or spec == 'none':
        return None
    try:
        if callable(spec):
            return spec(channels, identity_channels=identity_channels, reduction=reduction,
                        **kwargs)
        for key in _lookup(spec)[3]:
            if hints and key in hints:
                kwargs.setdefault(key, hints[key])
        kwargs.setdefault('prefix', 'unit_')
        return get_unit(spec, channels, reduction=reduction,
                        identity_channels=identity_channels, **kwargs)
    except ValueError as err:
        if where is None:
            raise
        raise ValueError('%s: %s' % (where, err)) from None
