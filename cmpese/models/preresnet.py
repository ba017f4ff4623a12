"""Pre-activation ResNets for CIFAR (He, Zhang, Ren and Sun, "Identity Mappings in Deep
Residual Networks", 2016b), with a recalibration unit in every residual block.

One block serves the whole pre-activation family: the basic block (two 3x3 convolutions;
pre-act ResNet-110 and, widened, WRN) and the bottleneck block (1x1 - 3x3 - 1x1 with 4x
expansion; pre-act ResNet-164). A block computes::

    a = ReLU(BN(x))
    identity = x                      (or a 1x1 projection of a when the shape changes)
    residual = conv(... ReLU(BN(conv(a))) ...)
    out = unit(residual, identity) + identity

as in the CMPE-SE paper's eq. 9, which is also where its authors' code puts SE and CMPE-SE.

Papers: He et al. 2016b, https://arxiv.org/abs/1603.05027; CMPE-SE (Hu, Wen, Luo and Dai),
https://arxiv.org/abs/1807.08920; Inner-Imaging, https://arxiv.org/abs/1908.09010;
WRN (Zagoruyko and Komodakis 2016), https://arxiv.org/abs/1605.07146.

Where the papers are silent we follow the CMPE-SE authors' MXNet code
(scut-aitcm/Competitive-Inner-Imaging-SENet, ``src/net``), which GluonCV's CIFAR nets share
(docs/units.md, "The authors' networks"):

* the input passes a BatchNorm without scale and shift (a learned input normalization);
* the WRN stem convolution is followed by a BatchNorm (``stem_bn=True``);
* pre-act ResNet convolutions are initialized N(0, 2 / (k * k * out)) (He et al.'s fan-out
  rule, ``conv_init='msra_out'``); WRN leaves them to the trainer's initializer.
"""
import mxnet as mx
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..units import resolve_unit
from .stages import ClassifierNet, FusionBarrier, check_depth, conv1x1, make_stages, residual_layers

__all__ = ['PreActBlock', 'PreActCIFARNet', 'get_preresnet', 'conv_initializer']


def conv_initializer(rule):
    """The convolution initializer of a family: None (the trainer's global one) or
    'msra_out', N(0, 2 / (k * k * out)) as the CMPE-SE authors' pre-act ResNet code sets it."""
    if rule is None:
        return None
    if rule != 'msra_out':
        raise ValueError("conv_init must be None or 'msra_out', got %r" % (rule,))
    return mx.init.MSRAPrelu(factor_type='out', slope=0.0)


class PreActBlock(HybridBlock):
    """Pre-activation residual block, basic or bottleneck, parameterized by a unit.

    Parameters
    ----------
    in_channels, channels : int
        Input and output channels (for a bottleneck, ``channels`` is 4x its inner width).
    stride : int
        Stride of the first 3x3 convolution (and of the projection shortcut).
    bottleneck : bool
        1x1 - 3x3 - 1x1 with inner width channels / 4, instead of 3x3 - 3x3.
    unit : UnitSpec or None
        The resolved recalibration unit (:func:`cmpese.units.resolve_unit`); None for a
        plain block. A bottleneck offers it the hint ``inner_channels``.
    drop_rate : float
        Dropout between the convolutions (WRN); 0 disables it.
    conv_init : None or 'msra_out'
        Initializer of the block's convolutions (:func:`conv_initializer`).
    """

    def __init__(self, in_channels, channels, stride=1, bottleneck=False, unit=None,
                 drop_rate=0.0, conv_init=None, where=None, **kwargs):
        super(PreActBlock, self).__init__(**kwargs)
        layers = residual_layers(channels, stride, bottleneck, where or 'PreActBlock')
        self._drop_rate = drop_rate
        self._num_layers = len(layers)
        init = conv_initializer(conv_init)
        with self.name_scope():
            width = in_channels
            for i, (kernel, out, s) in enumerate(layers):
                setattr(self, 'bn%d' % i, nn.BatchNorm(in_channels=width, prefix='bn%d_' % i))
                setattr(self, 'conv%d' % i,
                        nn.Conv2D(out, kernel_size=kernel, strides=s, padding=kernel // 2,
                                  use_bias=False, in_channels=width, weight_initializer=init,
                                  prefix='conv%d_' % i))
                width = out
            self.downsample = None
            if stride != 1 or in_channels != channels:
                self.downsample = conv1x1(channels, stride, in_channels, prefix='downsample_',
                                          weight_initializer=init)
            self.unit = unit.build(channels, hints={'inner_channels': layers[0][1]}
                                   if bottleneck else None, where=where) if unit else None

    def hybrid_forward(self, F, x):
        act = F.Activation(self.bn0(x), act_type='relu')
        identity = self.downsample(act) if self.downsample is not None else x
        out = self.conv0(act)
        for i in range(1, self._num_layers):
            out = F.Activation(getattr(self, 'bn%d' % i)(out), act_type='relu')
            if self._drop_rate:
                out = F.Dropout(out, p=self._drop_rate)
            out = getattr(self, 'conv%d' % i)(out)
        if self.unit is not None:
            out = self.unit(out, identity)
        return out + identity


class PreActCIFARNet(ClassifierNet):
    """Input BN, 3x3 conv stem (+ BN for WRN), three stages of :class:`PreActBlock`,
    BN-ReLU, pooling, FC.

    Parameters
    ----------
    stage_channels : list of int
        Output channels of each stage.
    stage_blocks : list of int
        Blocks per stage.
    bottleneck : bool
        Bottleneck blocks (pre-act ResNet-164) or basic blocks (ResNet-110, WRN).
    stem_channels : int, default 16
    classes : int, default 10
    unit : UnitSpec or None
        Passed to every block.
    drop_rate, conv_init
        Passed to every block (``conv_init`` also initializes the stem).
    input_bn : bool, default True
        BatchNorm(scale=False, center=False) on the input, as the CMPE-SE authors' nets and
        GluonCV's CIFAR nets have.
    stem_bn : bool, default False
        BatchNorm (with scale and shift) after the stem convolution (the authors' WRN).
    """

    def __init__(self, stage_channels, stage_blocks, bottleneck=False, stem_channels=16,
                 classes=10, unit=None, drop_rate=0.0, conv_init=None, input_bn=True,
                 stem_bn=False, **kwargs):
        super(PreActCIFARNet, self).__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            if input_bn:
                self.features.add(nn.BatchNorm(scale=False, center=False, in_channels=3,
                                               prefix='inputbn_'))
            self.features.add(nn.Conv2D(stem_channels, 3, 1, 1, use_bias=False, in_channels=3,
                                        weight_initializer=conv_initializer(conv_init),
                                        prefix='stem_'))
            if stem_bn:
                self.features.add(nn.BatchNorm(in_channels=stem_channels, prefix='stembn_'))
            stages, width = make_stages(PreActBlock, stage_channels, stage_blocks,
                                        stem_channels, [1, 2, 2], bottleneck=bottleneck,
                                        unit=unit, drop_rate=drop_rate, conv_init=conv_init)
            if stages[0][0].downsample is None:  # the stem output is the first identity
                self.features.add(FusionBarrier(prefix='barrier_'))
            self.features.add(*stages)
            self.features.add(nn.BatchNorm(in_channels=width, prefix='lastbn_'),
                              nn.Activation('relu'))
            self.add_head(width, classes)


def get_preresnet(depth, unit=None, bottleneck=None, classes=10, reduction=16,
                  unit_kwargs=None, conv_init='msra_out', **kwargs):
    """Pre-activation ResNet for CIFAR of any valid depth.

    Basic blocks need depth = 6n + 2 (ResNet-110: n = 18); bottleneck blocks need
    depth = 9n + 2 (ResNet-164: n = 18). By default depth 164 and deeper 9n+2 depths use
    bottlenecks, as in He et al. 2016b; pass ``bottleneck`` to choose.
    Stage widths are 16, 32, 64 (x4 at the output of bottleneck blocks).

    Parameters
    ----------
    unit : str, callable, UnitSpec or None
        'se', 'cmpe_se_double_fc', 'cmpe_se_2x1', 'cmpe_se_1x1', 'ini_mix_5_d', ... or None.
    reduction : int, default 16
        The units' reduction ratio t.
    unit_kwargs : dict, optional
        More unit options (``eps_from='output'``, ``aggregate='overlay'``, ``gate``...).
    conv_init : 'msra_out' or None
        The CMPE-SE authors' convolution initializer (default) or the trainer's.
    **kwargs
        ``drop_rate``, ``input_bn``, ``stem_bn`` (:class:`PreActCIFARNet`).
    """
    if bottleneck is None:
        bottleneck = depth >= 164 and (depth - 2) % 9 == 0
    if bottleneck:
        check_depth(depth, 'pre-act ResNet (bottleneck)', isinstance(depth, int) and depth >= 11
                    and (depth - 2) % 9 == 0, 'bottleneck depths are 9n+2, e.g. 164')
        n, widths = (depth - 2) // 9, [64, 128, 256]
    else:
        check_depth(depth, 'pre-act ResNet (basic)', isinstance(depth, int) and depth >= 8
                    and (depth - 2) % 6 == 0, 'basic-block depths are 6n+2, e.g. 20, 56, 110')
        n, widths = (depth - 2) // 6, [16, 32, 64]
    # InI folds the 2C joint signals of these blocks into maps of 16 columns (n = 2C/16);
    # the InI paper's printed counts fit eq. 10-11's concatenation on basic blocks
    # (ResNet-110) and the overlay on bottlenecks (ResNet-164; docs/inner_imaging.md)
    spec = resolve_unit(unit, hints={'ini_map': ('cols', 16),
                                     'aggregate': 'overlay' if bottleneck else 'concat'},
                        reduction=reduction, **(unit_kwargs or {}))
    return PreActCIFARNet(widths, [n] * 3, bottleneck=bottleneck, classes=classes, unit=spec,
                          conv_init=conv_init, **kwargs)
