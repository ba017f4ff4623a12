"""Deep Pyramidal Residual Networks for CIFAR (Han, Kim and Kim, "Deep Pyramidal Residual
Networks", CVPR 2017, https://arxiv.org/abs/1610.02915), with a recalibration unit in every block: the InI paper's
PyramidNet-272 (alpha = 200, bottleneck; its Table IV, 26.0M parameters) and the CMPE-SE
paper's comparison rows (its Table 3: alpha = 270, depth 110 basic 28.3M, depth 164
bottleneck 27.0M).

Instead of doubling the width at each downsampling, a PyramidNet widens every block by
alpha / N (N blocks in all): block k (1-based) has width round(16 + k * alpha / N), rounded
half up, and a bottleneck block outputs 4x its width. Layout::

    conv3x3 (16) - BN
    3 stages of n blocks (n = (depth - 2) / 9 bottleneck, (depth - 2) / 6 basic),
        stride 2 entering stages 2 and 3
    BN - ReLU - global average pooling - FC(classes)

A block has no ReLU after its first BN nor after its last, and a parameter-free shortcut::

    residual  = BN(conv1x1(ReLU(BN(conv3x3/s(ReLU(BN(conv1x1(BN(x)))))))))   (bottleneck)
              = BN(conv3x3(ReLU(BN(conv3x3/s(BN(x))))))                       (basic)
    identity  = x, average-pooled 2x2 when s = 2, zero-padded to the residual's channels
    out       = unit(residual, identity) + identity

The unit sees the *padded* identity, so residual and identity always have the same C channels
and every CMPE-SE mode is defined (docs/units.md); the zero channels of the padding squeeze
to zeros. Padding uses ``zeros_like`` of the residual's extra channels, so the graph has no
shape arithmetic and any input size works (the pooling rounds odd sizes up, as the strided
3x3 convolution does).

Parameter counts (10 classes): PyramidNet-272, alpha 200: 26,210,842 (InI Table IV: 26.0M,
+0.81%; its convolutions and FC alone are 25,999,978); PyramidNet-164, alpha 270: 27,216,021
(CMPE Table 3: 27.0M, +0.80%); PyramidNet-110, alpha 270, basic: 28,485,477 (28.3M, +0.66%).

Units and odd widths: units need C divisible by t, and PyramidNet widths are not multiples
of 4 (alpha = 200, depth 272: widths 18, 20, 23, ..., 216, block outputs 72 ... 864). With
t = 16, 60 of the 90 blocks are refused (the error names the first, stage1 block1, 72
channels); t = 4 divides every bottleneck output. Likewise InI's fold into 16 columns gives
joint maps of 2C / 16 = width / 2 rows, odd or fractional for 60 blocks (stage1 block1: 9 x 16).
The InI paper does not say how its units round on PyramidNet, so the rule is an explicit
option, ``get_pyramidnet(..., rounding='floor')``, which the zoo's ``ini_pyramidnet272_a200_*``
entries use: InI units then take floor(C/t) G-filters and FC neurons, which is what the
authors' Python 2 code computes for ``channels / 16`` (their published CMPE-SE blocks build
``nn.Dense(channels / net_se_ratio)``), and zero-pad each flow's C signals to whole rows of 16,
so the joint map is 2 ceil(C/16) x 16 (stage1 block1: C = 72, 4 neurons, a 10 x 16 map with 8
zeros per flow), as the block's shortcut zero-pads its missing channels. SE and CMPE-SE units
keep refusing such widths (their width rule lives in :mod:`cmpese.units.base`).
"""
from fractions import Fraction

from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..units import resolve_unit
from .stages import ClassifierNet, check_depth, residual_layers

__all__ = ['PyramidBlock', 'PyramidNet', 'get_pyramidnet', 'pyramid_widths']

STEM_CHANNELS = 16


def pyramid_widths(num_blocks, alpha, start=STEM_CHANNELS):
    """Widths of the ``num_blocks`` blocks: round(start + k * alpha / num_blocks), k = 1..N,
    rounded half up in exact arithmetic (no drift from adding alpha / N repeatedly)."""
    step = Fraction(alpha) / num_blocks
    return [int((start + k * step + Fraction(1, 2)) // 1) for k in range(1, num_blocks + 1)]


class PyramidBlock(HybridBlock):
    """PyramidNet residual block, basic or bottleneck, parameterized by a unit.

    Parameters
    ----------
    in_channels : int
        Input channels (the previous block's output).
    width : int
        The block's width; a bottleneck outputs 4 * width channels, a basic block width.
    stride : int
        Stride of the 3x3 convolution; 2 also average-pools the shortcut.
    bottleneck : bool
        BN-1x1-BN-ReLU-3x3-BN-ReLU-1x1-BN (4x output) instead of BN-3x3-BN-ReLU-3x3-BN.
    unit : UnitSpec or None
        The resolved recalibration unit (:func:`cmpese.units.resolve_unit`); None for a
        plain block. A bottleneck offers the hint ``inner_channels``.
    """

    def __init__(self, in_channels, width, stride=1, bottleneck=True, unit=None, where=None,
                 **kwargs):
        super(PyramidBlock, self).__init__(**kwargs)
        channels = 4 * width if bottleneck else width
        if channels < in_channels:
            raise ValueError('%s: a PyramidNet block cannot narrow %d channels to %d (the '
                             'zero-padded shortcut only widens)'
                             % (where or 'PyramidBlock', in_channels, channels))
        layers = residual_layers(channels, stride, bottleneck, where or 'PyramidBlock',
                                 inner=width)
        self.in_channels, self.channels, self.width = in_channels, channels, width
        self._pad = channels - in_channels
        with self.name_scope():
            self.body = nn.HybridSequential(prefix='')
            self.body.add(nn.BatchNorm(in_channels=in_channels, prefix='bnin_'))
            fan_in = in_channels
            for i, (kernel, out, s) in enumerate(layers):
                if i:
                    self.body.add(nn.Activation('relu'))
                self.body.add(nn.Conv2D(out, kernel_size=kernel, strides=s, padding=kernel // 2,
                                        use_bias=False, in_channels=fan_in,
                                        prefix='conv%d_' % i),
                              nn.BatchNorm(in_channels=out, prefix='bn%d_' % i))
                fan_in = out
            self.pool = None
            if stride != 1:
                self.pool = nn.AvgPool2D(pool_size=stride, strides=stride, ceil_mode=True,
                                         count_include_pad=False)
            self.unit = unit.build(channels, hints={'inner_channels': width}
                                   if bottleneck else None, where=where) if unit else None

    def hybrid_forward(self, F, x):
        residual = self.body(x)
        identity = self.pool(x) if self.pool is not None else x
        if self._pad:
            zeros = F.zeros_like(F.slice_axis(residual, axis=1, begin=self.in_channels,
                                              end=None))
            identity = F.concat(identity, zeros, dim=1)
        if self.unit is not None:
            residual = self.unit(residual, identity)
        return residual + identity


class PyramidNet(ClassifierNet):
    """conv3x3(16)-BN, three stages of :class:`PyramidBlock` of the given widths, BN-ReLU,
    pooling, FC.

    Parameters
    ----------
    stage_widths : list of list of int
        The widths of the blocks of each stage (:func:`pyramid_widths`, split in three).
    bottleneck : bool
    classes : int, default 10
    unit : UnitSpec or None
        Passed to every block.
    """

    def __init__(self, stage_widths, bottleneck=True, classes=10, unit=None, **kwargs):
        super(PyramidNet, self).__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(nn.Conv2D(STEM_CHANNELS, 3, 1, 1, use_bias=False, in_channels=3,
                                        prefix='stem_'),
                              nn.BatchNorm(in_channels=STEM_CHANNELS, prefix='stembn_'))
            in_channels = STEM_CHANNELS
            for i, widths in enumerate(stage_widths):
                stage = nn.HybridSequential(prefix='stage%d_' % (i + 1))
                with stage.name_scope():
                    for j, width in enumerate(widths):
                        block = PyramidBlock(in_channels, width, 2 if i and not j else 1,
                                             bottleneck=bottleneck, unit=unit,
                                             where='stage%d block%d' % (i + 1, j + 1),
                                             prefix='block%d_' % (j + 1))
                        stage.add(block)
                        in_channels = block.channels
                self.features.add(stage)
            self.features.add(nn.BatchNorm(in_channels=in_channels, prefix='lastbn_'),
                              nn.Activation('relu'))
            self.add_head(in_channels, classes)


def get_pyramidnet(depth, alpha, unit=None, classes=10, bottleneck=True, reduction=16,
                   unit_kwargs=None, rounding=None, **kwargs):
    """PyramidNet-``depth`` with widening factor ``alpha`` for CIFAR (Han, Kim and Kim 2017).

    ``get_pyramidnet(272, 200)`` is the InI paper's PyramidNet-272 (Table IV, 26.0M);
    ``get_pyramidnet(164, 270)`` and ``get_pyramidnet(110, 270, bottleneck=False)`` are the
    CMPE-SE paper's Table 3 rows.

    Parameters
    ----------
    depth : int
        9n + 2 with bottleneck blocks (272: n = 30), 6n + 2 with basic blocks (110: n = 18).
    alpha : number
        Total widening over the N = 3n blocks; the last block has width 16 + alpha.
    unit : str, callable or None
        'se', 'cmpe_se_double_fc', 'cmpe_se_2x1', 'cmpe_se_1x1', 'ini_mix_5_d', ... or None.
    bottleneck : bool, default True
    reduction : int, default 16
        The units' reduction ratio t; it must divide every block's output channels unless
        ``rounding`` says otherwise (see the module docstring).
    rounding : None or 'floor'
        None: every unit refuses widths t does not divide. 'floor': Inner-Imaging units use
        floor(C/t) G-filters and neurons and a zero-padded fold (module docstring); other
        units do not take the option.
    """
    if bottleneck:
        check_depth(depth, 'PyramidNet (bottleneck)', isinstance(depth, int) and depth >= 11
                    and (depth - 2) % 9 == 0, 'bottleneck depths are 9n+2, e.g. 164, 272')
        n = (depth - 2) // 9
    else:
        check_depth(depth, 'PyramidNet (basic)', isinstance(depth, int) and depth >= 8
                    and (depth - 2) % 6 == 0, 'basic-block depths are 6n+2, e.g. 110')
        n = (depth - 2) // 6
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, Fraction)) or alpha < 0:
        raise ValueError('PyramidNet alpha (the total widening) must be a number >= 0, got %r'
                         % (alpha,))
    widths = pyramid_widths(3 * n, alpha)
    # InI folds the 2C joint signals of these blocks into maps of 16 columns (n = 2C/16);
    # the overlay aggregation comes nearest InI Table IV (docs/inner_imaging.md)
    hints = {'ini_map': ('cols', 16), 'aggregate': 'overlay'}
    spec = resolve_unit(unit, reduction=reduction, **(unit_kwargs or {}))
    if rounding is not None:
        if rounding != 'floor':
            raise ValueError("PyramidNet rounding must be None or 'floor', got %r" % (rounding,))
        if spec is not None and not spec.accepts('rounding'):
            raise ValueError("rounding='floor' is an option of the Inner-Imaging units (ini_*); "
                             "%r needs the reduction ratio t=%d to divide every block's output "
                             "channels" % (spec.name, reduction))
        hints['rounding'] = rounding
    spec = spec.with_hints(**hints) if spec is not None else None
    return PyramidNet([widths[:n], widths[n:2 * n], widths[2 * n:]], bottleneck=bottleneck,
                      classes=classes, unit=spec, **kwargs)
