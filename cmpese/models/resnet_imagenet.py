"""ResNets for ImageNet (He, Zhang, Ren and Sun, "Deep Residual Learning for Image
Recognition", 2016a; pre-activation: "Identity Mappings in Deep Residual Networks", 2016b),
with a recalibration unit in every residual block: SE-ResNet-50/101 (Hu, Shen and Sun), the
CMPE-SE paper's pre-act ResNet-50 (its Table 4) and the InI paper's ResNet-50/101 (Table V).

Layout (224 x 224 input)::

    conv7x7/2 (64) - BN - ReLU - maxpool3x3/2
    4 stages of [3, 4, 6, 3] (ResNet-50) or [3, 4, 23, 3] (ResNet-101) bottleneck blocks,
        inner widths 64, 128, 256, 512, outputs 4x; stride 2 entering stages 2-4
    (version 2: BN - ReLU)  global average pooling - FC(classes)

``version=1`` (default) is the original post-activation block with the stride on the 3x3
convolution (GluonCV's ``resnet50_v1b``) and a 1x1 conv + BN projection where the shape
changes; ``version=2`` is the pre-activation block (GluonCV's ``resnet50_v2``), the
"pre-act ResNet-50" the CMPE-SE paper trains on ImageNet. The blocks are the CIFAR families'
own: :class:`~cmpese.models.resnet_cifar.PostActBlock` and
:class:`~cmpese.models.preresnet.PreActBlock` with ``bottleneck=True``. In both, the unit
rescales the residual before the addition and receives the identity *after* the projection
(docs/units.md)::

    out = unit(residual, identity) + identity          (v1: then ReLU)

(v2's projection is a bare 1x1 convolution of the pre-activated input, as in He et al.
2016b and GluonCV.) Depths 18 and 34 (basic blocks, widths 64-512) and 152 ([3, 8, 36, 3])
are built too. Any input size works (global pooling); the stem and four stages reduce it 32x.

Parameter counts (1000 classes; SE units t = 16 without biases) against InI Table V:

    ResNet-50      25,557,032  (25.60M printed)     v2: 25,549,480
    ResNet-101     44,549,160  (44.60M)             v2: 44,541,608
    SE-ResNet-50   28,071,976  (28.10M)             v2: 28,064,424
    SE-ResNet-101  49,292,328  (49.40M, -0.22%)     v2: 49,284,776

v1 equals GluonCV's resnet50_v1b / resnet101_v1b and v2 its resnet50_v2 / resnet101_v2
exactly (trainable parameters). Version 2 starts, like GluonCV's ResNetV2 (and the CMPE-SE
authors' CIFAR nets), with a BatchNorm without scale and shift on the input.

Papers: https://arxiv.org/abs/1512.03385 (v1), https://arxiv.org/abs/1603.05027 (v2),
SENet https://arxiv.org/abs/1709.01507, CMPE-SE https://arxiv.org/abs/1807.08920,
Inner-Imaging https://arxiv.org/abs/1908.09010.
"""
from mxnet.gluon import nn

from ..units import resolve_unit
from .stages import ClassifierNet, check_depth, make_stages
from .preresnet import PreActBlock
from .resnet_cifar import PostActBlock

__all__ = ['ResNetImageNet', 'get_resnet_imagenet', 'RESNET_IMAGENET_SPECS']

# depth -> (bottleneck, blocks per stage)
RESNET_IMAGENET_SPECS = {
    18: (False, [2, 2, 2, 2]),
    34: (False, [3, 4, 6, 3]),
    50: (True, [3, 4, 6, 3]),
    101: (True, [3, 4, 23, 3]),
    152: (True, [3, 8, 36, 3]),
}


class ResNetImageNet(ClassifierNet):
    """7x7 stem, four stages of residual blocks, (BN-ReLU,) pooling, FC.

    Parameters
    ----------
    stage_blocks : list of int
        Blocks per stage.
    bottleneck : bool
        Bottleneck blocks (outputs 256, 512, 1024, 2048) or basic blocks (64 ... 512).
    version : {1, 2}
        1: post-activation (:class:`PostActBlock`); 2: pre-activation (:class:`PreActBlock`).
    classes : int, default 1000
    unit : UnitSpec or None
        Passed to every block.
    """

    def __init__(self, stage_blocks, bottleneck=True, version=1, classes=1000, unit=None,
                 **kwargs):
        super(ResNetImageNet, self).__init__(**kwargs)
        if version not in (1, 2):
            raise ValueError('ResNet version must be 1 (post-activation) or 2 '
                             '(pre-activation), got %r' % (version,))
        widths = [64, 128, 256, 512]
        if bottleneck:
            widths = [4 * w for w in widths]
        block = PostActBlock if version == 1 else PreActBlock
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            if version == 2:
                self.features.add(nn.BatchNorm(scale=False, center=False, in_channels=3,
                                               prefix='inputbn_'))
            self.features.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3, use_bias=False,
                                        in_channels=3, prefix='stem_'),
                              nn.BatchNorm(in_channels=64, prefix='stembn_'),
                              nn.Activation('relu'),
                              nn.MaxPool2D(pool_size=3, strides=2, padding=1))
            stages, width = make_stages(block, widths, stage_blocks, 64, [1, 2, 2, 2],
                                        bottleneck=bottleneck, unit=unit)
            self.features.add(*stages)
            if version == 2:
                self.features.add(nn.BatchNorm(in_channels=width, prefix='lastbn_'),
                                  nn.Activation('relu'))
            self.add_head(width, classes)


def get_resnet_imagenet(depth, unit=None, version=1, classes=1000, reduction=16,
                        unit_kwargs=None, **kwargs):
    """ResNet-``depth`` for ImageNet with ``unit`` in every block.

    SE-ResNet-50 is ``get_resnet_imagenet(50, unit='se')`` (Hu, Shen and Sun, Table 1); the
    CMPE-SE paper's CMPE-SE-ResNet-50 is ``get_resnet_imagenet(50, 'cmpe_se_1x1', version=2)``.

    Parameters
    ----------
    depth : int
        18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks).
    unit : str, callable or None
        'se', 'cmpe_se_double_fc', 'cmpe_se_2x1', 'cmpe_se_1x1', 'ini_mix_5_d', ... or None.
    version : {1, 2}
        1: original post-activation ResNet (GluonCV v1b); 2: pre-activation ResNet.
    classes : int, default 1000
    reduction : int, default 16
        The units' reduction ratio t.
    """
    check_depth(depth, 'ImageNet ResNet',
                isinstance(depth, int) and depth in RESNET_IMAGENET_SPECS,
                'depths are %s' % ', '.join(map(str, sorted(RESNET_IMAGENET_SPECS))))
    bottleneck, blocks = RESNET_IMAGENET_SPECS[depth]
    # InI folds the 2C joint signals of these blocks into maps of 16 columns (n = 2C/16);
    # the overlay aggregation comes nearest InI Table V (docs/inner_imaging.md)
    spec = resolve_unit(unit, hints={'ini_map': ('cols', 16), 'aggregate': 'overlay'},
                        reduction=reduction, **(unit_kwargs or {}))
    return ResNetImageNet(blocks, bottleneck=bottleneck, version=version, classes=classes,
                          unit=spec, **kwargs)
