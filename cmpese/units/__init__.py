"""Recalibration units and the one registry that resolves them.

Every unit is a ``HybridBlock`` called as ``unit(residual, identity)`` that returns the
recalibrated residual; units that do not look at the identity (SE) accept and ignore it.
A residual block is then ``out = unit(residual, identity) + identity``.

A family builder resolves its ``unit=`` argument once into a :class:`UnitSpec`
(:func:`resolve_unit`) and every block builds from it (``spec.build(channels)``); a new unit
is one file plus one :func:`register_unit` line below.

>>> from cmpese.units import get_unit, resolve_unit
>>> unit = get_unit('cmpe_se_1x1', channels=64, reduction=16)
>>> spec = resolve_unit('ini_mix_5_d', reduction=16); spec.reads_identity
True
"""
import re

from .base import ExcitationUnit, reduced_channels
from .competitive import DoubleFCUnit, PairViewUnit
from .inner_imaging import MAX_SLENDER, InnerImagingUnit
from .se import SEUnit
from .spatial import SpatialAttention, SpatialThenChannel
from .spec import (INNER_MAPS, UnitSpec, add_resolver, gate_children, list_units, lookup_unit,
                   register_unit, resolve_unit)

__all__ = ['get_unit', 'resolve_unit', 'lookup_unit', 'list_units', 'register_unit',
           'UnitSpec', 'SEUnit', 'DoubleFCUnit', 'PairViewUnit', 'InnerImagingUnit',
           'ExcitationUnit', 'reduced_channels', 'INI_GSETS', 'SpatialAttention',
           'SpatialThenChannel', 'gate_children', 'INNER_MAPS']

# Each line: the name, the constructor, whether it reads the identity, the backbone hints it
# takes, and its metadata: the paper (a key of cmpese.papers.PAPERS) and the layout of the
# inner-imaged map it scans (spec.INNER_MAPS; none for SE and the double FC). Every unit's
# gate is its child 'gate_' (ExcitationUnit), the spec's default gate_child.

# SE (Hu, Shen and Sun): the residual alone.
register_unit('se', SEUnit, reads_identity=False, paper='senet')
# CMPE-SE (Hu, Wen, Luo and Dai): the identity joins the excitation. Bottleneck blocks hint
# their inner width, from which the pair-view filter count eps is taken (the authors' code).
register_unit('cmpe_se_double_fc', DoubleFCUnit, reads_identity=True, paper='cmpe')
register_unit('cmpe_se_2x1', PairViewUnit, reads_identity=True, hints=('inner_channels',),
              paper='cmpe', inner_map='stacked', kernel='2x1')
register_unit('cmpe_se_1x1', PairViewUnit, reads_identity=True, hints=('inner_channels',),
              paper='cmpe', inner_map='stacked', kernel='1x1')

# Inner-Imaging: 'ini_' + a Table I set ('-' as '_'), '_d' adds the dilated G-filter,
# '_nojoint' models the residual alone (the '*' rows). Backbones hint the map shape
# ('ini_map'), the width rounding ('rounding'), the aggregation reading of eq. 10-11 that
# their printed parameter counts support ('aggregate', docs/inner_imaging.md) and, when
# they have no identity flow, joint=False; a joint unit reads the identity as long as joint
# stays True.
INI_GSETS = (['square_%d' % n for n in range(1, 6)] + ['mix_%d' % n for n in range(1, 6)]
             + ['horizon_%d' % n for n in range(1, MAX_SLENDER + 1)]
             + ['vertical_%d' % n for n in range(1, MAX_SLENDER + 1)])


def _joint(options):
    return options.get('joint', True)


_INI_HINTS = ('ini_map', 'rounding', 'aggregate')
for _gset in INI_GSETS:
    for _g in (_gset, _gset + '_d'):
        register_unit('ini_' + _g, InnerImagingUnit, reads_identity=_joint,
                      hints=_INI_HINTS + ('joint',), paper='ini', inner_map='folded', gset=_g,
                      joint=True)
        register_unit('ini_%s_nojoint' % _g, InnerImagingUnit, reads_identity=False,
                      hints=_INI_HINTS, paper='ini', inner_map='folded', gset=_g, joint=False)
for _g in ('simple_1', 'simple_3'):   # the unfolded 2 x C stack: joint by construction
    register_unit('ini_' + _g, InnerImagingUnit, reads_identity=True, hints=_INI_HINTS,
                  paper='ini', inner_map='stacked', gset=_g, joint=True)

_SPATIAL = re.compile(r'^(?P<base>.+)_spa(?P<tau>\d*)$')


def _spatial_variant(name):
    """'<unit>_spa' / '<unit>_spa<tau>': tau CBAM spatial maps before the channel unit (InI
    paper Sec. V-E), with the channel unit's identity use and hints; None otherwise."""
    m = _SPATIAL.match(str(name))
    if m is None or m.group('tau') in ('0', '1'):
        return None
    try:
        base = lookup_unit(m.group('base'))
    except ValueError:
        return None
    tau = int(m.group('tau') or 1)

    def build(channels, prefix=None, **options):
        inner = base.bind(**options).build(channels, prefix='channel_')
        return SpatialThenChannel(channels, inner, groups=tau, prefix=prefix)
    return base.derived(name, build)


add_resolver(_spatial_variant, 'any of them followed by _spa or _spa<tau> (e.g. '
                               'ini_mix_5_d_spa4)')


def get_unit(name, channels, reduction=16, identity_channels=None, **options):
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
        unit can encode an identity of another width; pair-view and InI stack the two flows
        and need them equal.
    **options
        Passed to the unit: ``squeeze``, ``gate``, ``use_bias``, ``filters``, ``ini_map``...
    """
    options.setdefault('prefix', None)
    return resolve_unit(name, reduction=reduction, **options).build(
        channels, identity_channels=identity_channels)
