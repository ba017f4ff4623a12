"""The original (post-activation) CIFAR ResNets of He et al. 2016a, ResNet-20/32/44/56/110,
with SE-ResNet (a unit on every residual flow) and Res-SE-Net (Varshaneya, Balasubramanian and
Gera: an SE unit on every bridge connection, right after its downsampling 1x1 convolution).

A block computes::

    residual = BN(conv3x3(ReLU(BN(conv3x3(x)))))
    identity = x, or on a bridge: bridge_unit(BN(conv1x1/2(x)))
    out = ReLU(unit(residual, identity) + identity)

Bridges are 1x1 convolutions with stride 2 followed by BN (He et al.'s option B, the
shortcut the Res-SE-Net paper describes and its baseline code uses).

The same post-activation block with ``bottleneck=True`` (1x1 - 3x3 - 1x1, 4x expansion, the
stride on the 3x3 convolution) is the ImageNet ResNet-50/101 block
(:mod:`cmpese.models.resnet_imagenet`); like :class:`~cmpese.models.preresnet.PreActBlock`, the
block is a list of (kernel, width, stride) layers, so basic and bottleneck are two lists.

Papers: He et al. 2016a, https://arxiv.org/abs/1512.03385; Res-SE-Net,
https://arxiv.org/abs/1902.06066; SENet, https://arxiv.org/abs/1709.01507.
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..units import resolve_unit
from .stages import (ClassifierNet, check_depth, conv1x1, conv3x3, make_stages,
                     residual_layers)

__all__ = ['PostActBlock', 'BasicBlock', 'ResNetCIFAR', 'get_resnet_cifar']


class PostActBlock(HybridBlock):
    """Post-activation residual block, basic or bottleneck, with an optional unit on the
    residual flow and another on the bridge connection.

    Parameters
    ----------
    in_channels, channels : int
        Input and output channels (for a bottleneck, ``channels`` is 4x its inner width).
    stride : int
        Stride of the 3x3 convolution (and of the bridge).
    bottleneck : bool
        1x1 - 3x3 - 1x1 with inner width channels / 4 (ImageNet ResNet-50/101, GluonCV's
        v1b layout), instead of 3x3 - 3x3.
    unit, bridge_unit : UnitSpec or None
        Resolved recalibration units (:func:`cmpese.units.resolve_unit`) on the residual flow
        and on the bridge (Res-SE-Net); None for none. A bottleneck offers the hint
        ``inner_channels``. The bridge unit is called on the bridge's output alone, so it
        must not read an identity flow (refused when the block is built).
    """

    def __init__(self, in_channels, channels, stride=1, bottleneck=False, unit=None,
                 bridge_unit=None, where=None, **kwargs):
        super(PostActBlock, self).__init__(**kwargs)
        layers = residual_layers(channels, stride, bottleneck, where or 'PostActBlock')
        self._num_layers = len(layers)
        with self.name_scope():
            self.body = nn.HybridSequential(prefix='')
            width = in_channels
            for i, (kernel, out, s) in enumerate(layers):
                if i:
                    self.body.add(nn.Activation('relu'))
                self.body.add(nn.Conv2D(out, kernel_size=kernel, strides=s, padding=kernel // 2,
                                        use_bias=False, in_channels=width, prefix='conv%d_' % i),
                              nn.BatchNorm(in_channels=out, prefix='bn%d_' % i))
                width = out
            self.bridge = None
            self.bridge_unit = None
            if stride != 1 or in_channels != channels:
                self.bridge = nn.HybridSequential(prefix='bridge_')
                with self.bridge.name_scope():
                    self.bridge.add(conv1x1(channels, stride, in_channels, prefix='conv_'),
                                    nn.BatchNorm(in_channels=channels, prefix='bn_'))
                if bridge_unit is not None and bridge_unit.reads_identity:
                    raise ValueError('%s bridge: unit %r models the identity flow of a residual '
                                     'block, and a bridge connection has none; use a unit of '
                                     'its input alone (\'se\', an InI unit with joint=False)'
                                     % (where or 'PostActBlock', bridge_unit.name))
                if bridge_unit is not None:
                    self.bridge_unit = bridge_unit.build(
                        channels, where=where + ' bridge' if where else None,
                        prefix='bridgeunit_')
            hints = {'inner_channels': layers[0][1]} if bottleneck else None
            self.unit = unit.build(channels, hints=hints, where=where) if unit else None

    def hybrid_forward(self, F, x):
        residual = self.body(x)
        identity = x
        if self.bridge is not None:
            identity = self.bridge(x)
            if self.bridge_unit is not None:
                identity = self.bridge_unit(identity)
        if self.unit is not None:
            residual = self.unit(residual, identity)
        return F.Activation(residual + identity, act_type='relu')


BasicBlock = PostActBlock  # the name the CIFAR ResNet (basic blocks) code and docs use


class ResNetCIFAR(ClassifierNet):
    """conv3x3(16)-BN-ReLU, stages of 16, 32, 64 channels, pooling, FC."""

    def __init__(self, stage_blocks, stage_channels=(16, 32, 64), classes=10, unit=None,
                 bridge_unit=None, **kwargs):
        super(ResNetCIFAR, self).__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(conv3x3(stage_channels[0], 1, 3, prefix='stem_'),
                              nn.BatchNorm(in_channels=stage_channels[0], prefix='stembn_'),
                              nn.Activation('relu'))
            stages, width = make_stages(BasicBlock, stage_channels, stage_blocks,
                                        stage_channels[0], [1, 2, 2], unit=unit,
                                        bridge_unit=bridge_unit)
            self.features.add(*stages)
            self.add_head(width, classes)


def get_resnet_cifar(depth, unit=None, bridge_unit=None, classes=10, reduction=16,
                     unit_kwargs=None, **kwargs):
    """Original CIFAR ResNet of depth 6n + 2 (20, 32, 44, 56, 110).

    ``unit`` recalibrates every residual flow (SE-ResNet with 'se'); ``bridge_unit``
    recalibrates every bridge connection after its downsampling (Res-SE-Net with 'se'). A
    bridge has no identity flow of its own: InI units there get the hint joint=False, and a
    unit that models the identity (CMPE-SE) is refused. ``reduction`` and ``unit_kwargs``
    apply to both.
    """
    check_depth(depth, 'CIFAR ResNet', isinstance(depth, int) and depth >= 8
                and (depth - 2) % 6 == 0, 'depths are 6n+2, e.g. 20, 32, 44, 56, 110')
    n = (depth - 2) // 6
    options = dict(unit_kwargs or {}, reduction=reduction)
    hints = {'ini_map': ('cols', 16)}
    return ResNetCIFAR([n] * 3, classes=classes,
                       unit=resolve_unit(unit, hints=hints, **options),
                       bridge_unit=resolve_unit(bridge_unit, hints=dict(hints, joint=False),
                                                **options), **kwargs)
