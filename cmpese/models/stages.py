"""What every backbone family assembles its network from: convolution helpers, the
(kernel, width, stride) plan of a residual branch, stages of blocks, the classifier head,
and the oneDNN fusion barrier."""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock


def conv3x3(channels, stride, in_channels, prefix=None, weight_initializer=None):
    return nn.Conv2D(channels, kernel_size=3, strides=stride, padding=1, use_bias=False,
                     in_channels=in_channels, weight_initializer=weight_initializer,
                     prefix=prefix)


def conv1x1(channels, stride, in_channels, prefix=None, weight_initializer=None):
    return nn.Conv2D(channels, kernel_size=1, strides=stride, use_bias=False,
                     in_channels=in_channels, weight_initializer=weight_initializer,
                     prefix=prefix)


def residual_layers(channels, stride, bottleneck, where, inner=None):
    """The (kernel, width, stride) convolutions of a residual branch: 3x3 - 3x3, or the
    bottleneck 1x1 - 3x3 - 1x1 (stride on the 3x3) whose inner width is ``inner`` (default
    channels / 4, which must then be whole)."""
    if not bottleneck:
        width = inner or channels
        return [(3, width, stride), (3, channels, 1)]
    if inner is None:
        if channels % 4:
            raise ValueError('%s: a bottleneck block needs channels divisible by 4, got %d'
                             % (where, channels))
        inner = channels // 4
    return [(1, inner, 1), (3, inner, stride), (1, channels, 1)]


def make_stages(block, stage_channels, stage_blocks, in_channels, strides, **block_kwargs):
    """Stack ``block(in_channels, channels, stride, where=..., **block_kwargs)`` into stages.

    The first block of each stage takes the stage's stride and channel change; ``where``
    ('stage2 block1') lets a block name itself in error messages.
    Returns the list of stages and the output channel count.
    """
    stages = []
    for i, (channels, count, stride) in enumerate(zip(stage_channels, stage_blocks, strides)):
        stage = nn.HybridSequential(prefix='stage%d_' % (i + 1))
        with stage.name_scope():
            for j in range(count):
                stage.add(block(in_channels, channels, stride if j == 0 else 1,
                                where='stage%d block%d' % (i + 1, j + 1),
                                prefix='block%d_' % (j + 1), **block_kwargs))
                in_channels = channels
        stages.append(stage)
    return stages, in_channels


class ClassifierNet(HybridBlock):
    """``features`` (a HybridSequential ending in global average pooling) then ``output``."""

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))

    def add_head(self, in_channels, classes):
        """Global average pooling, flatten and the final FC layer."""
        self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
        self.output = nn.Dense(classes, in_units=in_channels, prefix='output_')


def check_depth(depth, family, valid, rule):
    if not valid:
        raise ValueError('%s cannot have depth %r: %s' % (family, depth, rule))


class FusionBarrier(HybridBlock):
    """``x * 1``: keeps MXNet 1.9.1's oneDNN graph pass from fusing across this point.

    That pass (used by ``mx.mod.Module`` / ``sym.bind`` and ``optimize_for('MKLDNN')`` on CPU)
    computes ``conv2(relu(BN(c))) + c`` wrongly when ``c`` is a convolution output that also
    feeds the BN: it is the first block of a pre-activation ResNet whose stem conv output is
    the identity (GluonCV's ``cifar_resnet20_v2`` shows the same error). A scalar multiply on
    that one tensor gives the pass nothing to fuse; docs/export.md has the reproduction.
    """

    def hybrid_forward(self, F, x):
        return x * 1.0
