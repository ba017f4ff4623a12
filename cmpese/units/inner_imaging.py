"""Inner-Imaging (InI) units (Hu, Wen et al., "Inner-Imaging Networks", Section III;
https://arxiv.org/abs/1908.09010).

The squeezed channel signals are folded into an inner-imaged map, scanned by G-filters of
one or several shapes (Table I), and the group signals so formed are encoded by
FC(C/t) - ReLU - FC(C) - sigmoid:

* map (eq. 4 / 19 / 24): the residual's C signals folded row-major into N x M (T, eq. 4);
  with joint modelling of a residual block, the residual and identity signals either stacked
  as a 2 x C map (eq. 19, the "simple" sets) or folded alternately, an identity row then a
  residual row (T_alt, eq. 24);
* G-filters (eq. 5-7, 9): for every shape (a x b) of the set, eps = C/t filters with one input
  channel, no padding, BN right after (Sec. V-B), averaged over the eps filters; a shape whose
  receptive field exceeds the map is dropped (Sec. V-B);
* aggregation (eq. 10-12): the per-shape results are placed side by side, zeros filling the
  rows a shorter result lacks, and flattened into C^g group signals ('concat', the equations'
  reading and the unit's own default). 'overlay' instead zero-fills every result to the
  largest one and averages them element-wise, C^g = max rows x max columns. Each backbone
  hints the reading its printed parameter counts support (pre-act ResNet basic blocks
  'concat'; bottlenecks, WRN, All-CNN, PyramidNet and the ImageNet ResNets 'overlay'; the
  evidence is in docs/inner_imaging.md); ``aggregate=`` given by the user wins.

Widths that t does not divide (PyramidNet, Sec. V-B gives no rule): by default the unit refuses
them, like every unit. ``rounding='floor'`` instead uses floor(C/t) (at least 1) FC neurons and
G-filters, which is what the authors' Python 2 MXNet code computes for ``channels / 16``, and
zero-pads each flow's signals to a whole number of map rows (n = 2 ceil(C/16), m = 16 for the
joint fold), as PyramidNet's shortcut zero-pads its missing channels.
"""
import math
import re

from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from .base import GATES, ExcitationUnit, channel_mean, check_choice, reduced_channels, scale, squeeze

__all__ = ['InnerImagingUnit', 'GFILTER_SETS', 'ROUNDINGS', 'parse_gset', 'fold_shape',
           'padded_fold', 'rounded_channels']

ROUNDINGS = ('exact', 'floor')

# Table I; each entry is (rows, cols, dilation)
_SQUARE = [(1, 1, 1), (2, 2, 1), (3, 3, 1), (4, 4, 1), (5, 5, 1)]
GFILTER_SETS = {
    'square_1': [(3, 3, 1)],
    'square_2': [(1, 1, 1), (3, 3, 1)],
    'square_3': [(1, 1, 1), (3, 3, 1), (5, 5, 1)],
    'square_4': [(1, 1, 1), (2, 2, 1), (3, 3, 1), (5, 5, 1)],
    'square_5': _SQUARE,
    'mix_1': [(3, 3, 1)],
    'mix_2': [(1, 5, 1), (3, 3, 1)],
    'mix_3': [(1, 5, 1), (3, 3, 1), (5, 1, 1)],
    'mix_4': [(1, 1, 1), (1, 5, 1), (3, 3, 1), (5, 1, 1)],
    'mix_5': [(1, 1, 1), (1, 5, 1), (3, 3, 1), (5, 1, 1), (5, 5, 1)],
    'simple_1': [(2, 1, 1)],
    'simple_3': [(1, 1, 1), (2, 1, 1), (2, 2, 1)],
}
# the "-d" G-filter (Sec. V-C): "5x5 receptive field, dilated rate = 2", i.e. a 3x3 kernel
# with dilation 2 (Table I writes it "(5 x 5, s=2)")
DILATED = (3, 3, 2)
MAX_SLENDER = 9       # horizon-n / vertical-n accepted for n = 1 .. 9


def parse_gset(name):
    """'mix_5_d' -> ([(1,1,1), ..., (5,5,2)], simple?)  (Table I names with '-' as '_')."""
    base, dilated = (name[:-2], True) if name.endswith('_d') else (name, False)
    m = re.match(r'^(horizon|vertical)_(\d+)$', base)
    if m:
        n = int(m.group(2))
        if not 1 <= n <= MAX_SLENDER:
            raise ValueError('%s-n needs 1 <= n <= %d, got %d' % (m.group(1), MAX_SLENDER, n))
        shapes = [((1, k, 1) if m.group(1) == 'horizon' else (k, 1, 1)) for k in range(1, n + 1)]
    elif base in GFILTER_SETS:
        shapes = list(GFILTER_SETS[base])
    else:
        raise ValueError('unknown G-filter set %r; Table I sets are %s, horizon_n, vertical_n, '
                         'each optionally followed by _d' % (name, ', '.join(sorted(GFILTER_SETS))))
    simple = base.startswith('simple')
    if dilated:
        if simple:
            raise ValueError('the dilated G-filter needs a folded map; simple sets scan the '
                             'unfolded 2 x C stack')
        shapes.append(DILATED)
    return shapes, simple


def fold_shape(total, channels, rule):
    """Rows and columns of an inner-imaged map holding ``total`` signals (C or 2C).

    ``rule`` is ('rows', n): n rows (All-CNN n = 8); ('cols', m): m columns (n = 2C/16,
    m = 16 for ResNets and PyramidNet); ('groups', k): C/k columns (WRN-d-k: n = 2k, m = C/k;
    the paper's "n = 20, m = C/10" for k = 10); or an explicit (n, m).
    """
    kind, value = rule
    if kind == 'rows':
        rows, cols = value, (total // value if total % value == 0 else None)
    elif kind == 'cols':
        rows, cols = (total // value if total % value == 0 else None), value
    elif kind == 'groups':
        cols = channels // value if channels % value == 0 else None
        rows = total // cols if cols and total % cols == 0 else None
    else:
        rows, cols = kind, value
    if not rows or not cols or rows * cols != total:
        raise ValueError('cannot fold %d channel signals into a map by the rule %r; pass '
                         'map_shape=(rows, cols) with rows x cols = %d' % (total, rule, total))
    return rows, cols


def rounded_channels(channels, reduction, rounding='exact', what='unit'):
    """eps = C/t G-filters and FC neurons: exact (t must divide C, the error otherwise names
    the option) or ``'floor'``: max(1, C // t)."""
    check_choice(rounding, ROUNDINGS, 'rounding')
    if rounding == 'floor' and isinstance(channels, int) and isinstance(reduction, int) \
            and channels > 0 and reduction > 0:
        return max(1, channels // reduction)
    try:
        return reduced_channels(channels, reduction, what)
    except ValueError as err:
        if isinstance(channels, int) and isinstance(reduction, int) and channels > 0 \
                and reduction > 0:
            raise ValueError("%s Or pass rounding='floor' for floor(C/t) = %d neurons and "
                             "G-filters and a zero-padded fold (docs/inner_imaging.md)."
                             % (err, max(1, channels // reduction))) from None
        raise


def padded_fold(channels, flows, rule):
    """(rows, cols, pad) of a fold that zero-pads each of the ``flows`` signal vectors (1: T;
    2: T_alt) of C signals by ``pad`` zeros to fill whole rows.

    ``rule`` ('cols', m): ceil(C/m) rows of m per flow (PyramidNet: n = 2 ceil(C/16), m = 16);
    ('rows', n): n / flows rows per flow of ceil(C / (n / flows)) columns. With C divisible,
    this is :func:`fold_shape` with pad = 0.
    """
    kind, value = rule
    if kind == 'cols' and value > 0:
        per_flow, cols = int(math.ceil(channels / float(value))), value
    elif kind == 'rows' and value > 0 and value % flows == 0:
        per_flow = value // flows
        cols = int(math.ceil(channels / float(per_flow)))
    else:
        raise ValueError('a zero-padded fold needs the rule (\'cols\', m) or (\'rows\', n) '
                         'with n divisible by %d, got %r' % (flows, rule))
    return per_flow * flows, cols, per_flow * cols - channels


class InnerImagingUnit(ExcitationUnit):
    """Inner-Imaging channel attention for C channels.

    Parameters
    ----------
    channels : int
        C.
    reduction : int, default 16
        t: FC bottleneck C/t and eps = C/t G-filters per shape.
    gset : str
        Table I G-filter set with '-' as '_': 'square_3', 'mix_5_d', 'simple_1', 'horizon_4'...
    joint : bool, default True
        Model the residual together with the identity (Sec. III-B); False models the input
        alone (the '*' rows of Tables II-III, and non-residual backbones).
    map_shape : (rows, cols), optional
        Explicit inner-imaged map; overrides ``ini_map``.
    ini_map : tuple, default ('cols', 16)
        The backbone's map rule, see :func:`fold_shape`.
    aggregate : {'concat', 'overlay'}, default 'concat'
        How the results of several G-filter shapes are combined (module docstring); the
        backbones hint the reading their printed counts support.
    rounding : {'exact', 'floor'}, default 'exact'
        'exact' refuses C not divisible by t (and a fold that does not fill the map);
        'floor' uses max(1, C // t) neurons and G-filters and, for the ('cols', m) and
        ('rows', n) map rules, zero-pads each flow to whole rows (module docstring).
    where : str, optional
        Layer name for error messages.
    identity_channels : int, optional
        Must equal C (joint maps hold both flows).
    """

    def __init__(self, channels, reduction=16, gset='mix_5_d', joint=True, map_shape=None,
                 ini_map=('cols', 16), aggregate='concat', gate='sigmoid', use_bias=False,
                 rounding='exact', where=None, identity_channels=None, **kwargs):
        what = '%s: InI %s' % (where, gset) if where else 'InI %s' % gset
        if identity_channels not in (None, channels):
            raise ValueError('%s: the joint inner-imaged map holds the residual and identity '
                             'signals side by side and needs equal widths, got %d and %d'
                             % (what, channels, identity_channels))
        eps = rounded_channels(channels, reduction, rounding, what)
        shapes, simple = parse_gset(gset)
        check_choice(aggregate, ('concat', 'overlay'), 'aggregate')
        check_choice(gate, GATES, 'gate')
        if simple and not joint:
            raise ValueError('%s: the simple sets scan the stacked residual and identity '
                             'signals and need joint=True' % what)
        rule = map_shape or ini_map
        pad = 0
        if simple:
            rows, cols = 2, channels
        elif rounding == 'floor' and map_shape is None and rule[0] in ('cols', 'rows'):
            rows, cols, pad = padded_fold(channels, 2 if joint else 1, rule)
        else:
            total = 2 * channels if joint else channels
            rows, cols = fold_shape(total, channels, rule)
            if joint and rows % 2:
                raise ValueError('%s: the alternating fold T_alt pairs identity and residual '
                                 'rows and needs an even row count, got a %dx%d map'
                                 % (what, rows, cols))
        kept = [(a, b, d) for a, b, d in shapes
                if (a - 1) * d + 1 <= rows and (b - 1) * d + 1 <= cols]
        if not kept:
            raise ValueError('%s: every G-filter of the set %s exceeds the %dx%d inner-imaged '
                             'map, so none is left; choose a set with smaller G-filters or '
                             'pass map_shape=(rows, cols)' % (what, gset, rows, cols))
        outs = [(rows - (a - 1) * d, cols - (b - 1) * d) for a, b, d in kept]
        out_rows = max(r for r, _ in outs)
        out_cols = sum(c for _, c in outs) if aggregate == 'concat' else max(c for _, c in outs)
        # ExcitationUnit's layers, built here because eps may be rounded (``rounding``): the
        # same names (fc1_, fc2_, gate_) and order as ExcitationUnit.__init__ gives them
        HybridBlock.__init__(self, **kwargs)
        self.channels, self.reduction, self.hidden = channels, reduction, eps
        with self.name_scope():
            self.fc1 = nn.Dense(eps, in_units=out_rows * out_cols, use_bias=use_bias,
                                prefix='fc1_')
            self.fc2 = nn.Dense(channels, in_units=eps, use_bias=use_bias, prefix='fc2_')
            self.gate = nn.Activation(gate, prefix='gate_')
        self.gset, self.joint, self.simple, self.aggregate = gset, joint, simple, aggregate
        self.rounding, self.pad = rounding, pad
        self.map_shape = (rows, cols)
        self.gfilters = kept
        self.dropped = [s for s in shapes if s not in kept]
        self.group_shape = (out_rows, out_cols)
        self._outs = outs
        with self.name_scope():
            self.convs = nn.HybridSequential(prefix='')
            self.bns = nn.HybridSequential(prefix='')
            for j, (a, b, d) in enumerate(kept):
                self.convs.add(nn.Conv2D(eps, kernel_size=(a, b), dilation=(d, d), in_channels=1,
                                         use_bias=False, prefix='gfilter%d_' % j))
                self.bns.add(nn.BatchNorm(in_channels=eps, prefix='gfilterbn%d_' % j))

    def inner_image(self, F, residual, identity=None):
        """The inner-imaged map (N, 1, rows, cols) of eq. 4, 19 or 24."""
        rows, cols = self.map_shape
        u = self._signals(F, residual)
        if not self.joint:
            return F.reshape(u, shape=(0, 1, rows, cols))                         # T, eq. 4
        x = self._signals(F, identity)
        if self.simple:                                                            # eq. 19
            return F.reshape(F.stack(u, x, axis=1), shape=(0, 1, 2, -1))
        # T_alt, eq. 24: identity row, residual row, identity row, ... each of `cols` signals
        pairs = F.stack(F.reshape(x, shape=(0, -1, cols)), F.reshape(u, shape=(0, -1, cols)),
                        axis=2)
        return F.reshape(pairs, shape=(0, 1, rows, cols))

    def _signals(self, F, flow):
        """Squeezed signals (N, C), zero-padded to (N, C + pad) when the fold is padded."""
        if not self.pad:
            return F.reshape(squeeze(F, flow), shape=(0, -1))
        v = F.pad(F.reshape(squeeze(F, flow), shape=(0, 1, 1, -1)), mode='constant',
                  constant_value=0, pad_width=(0, 0, 0, 0, 0, 0, 0, self.pad))
        return F.reshape(v, shape=(0, -1))

    def group_signals(self, F, v):
        """Eq. 5-12: G-filters, BN, average over eps, aggregation -> (N, rows', cols')."""
        out_rows, out_cols = self.group_shape
        maps = []
        for conv, bn, (r, c) in zip(self.convs, self.bns, self._outs):
            g = channel_mean(F, bn(conv(v)), self.hidden)                        # (N,1,r,c)
            pad_cols = 0 if self.aggregate == 'concat' else out_cols - c
            if out_rows - r or pad_cols:
                g = F.pad(g, mode='constant', constant_value=0,
                          pad_width=(0, 0, 0, 0, 0, out_rows - r, 0, pad_cols))
            maps.append(g)
        if len(maps) == 1:
            return maps[0]
        if self.aggregate == 'concat':
            return F.concat(*maps, dim=3)
        return F.add_n(*maps) / len(maps)

    def hybrid_forward(self, F, residual, identity=None):
        grouped = self.group_signals(F, self.inner_image(F, residual, identity))
        s = self.excite(F, F.relu(self.fc1(grouped)))      # fc1 flattens: eq. 8 / 12
        return scale(F, residual, s)

    def __repr__(self):
        return ('InnerImagingUnit(channels=%d, t=%d, eps=%d, gset=%s, joint=%s, map=%dx%d%s, '
                'G-filters=%s, C^g=%d)' % (
                    self.channels, self.reduction, self.hidden, self.gset, self.joint,
                    self.map_shape[0], self.map_shape[1],
                    ' (%d zeros per flow)' % self.pad if self.pad else '', self.gfilters,
                    self.group_shape[0] * self.group_shape[1]))
