"""Spatial attention before a channel unit (Inner-Imaging paper, Sec. V-E, eq. 50-51;
https://arxiv.org/abs/1908.09010).

The spatial attention map xi is CBAM's (Woo et al., the InI paper's reference [28],
https://arxiv.org/abs/1807.06521):
xi = sigmoid(BN(conv7x7([mean over channels; max over channels]))). With ``groups`` = tau > 1
the C channels are split into tau groups of C/tau, each with its own map computed from its own
channels ("spa x tau", eq. 51). The channel unit then rescales the spatially attended
features (eq. 50: U_new = s o F_spa(U, xi)).
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

__all__ = ['SpatialAttention', 'SpatialThenChannel']


class SpatialAttention(HybridBlock):
    """tau CBAM spatial maps over tau channel groups; returns xi o U (same shape as U)."""

    def __init__(self, channels, groups=1, kernel_size=7, **kwargs):
        super(SpatialAttention, self).__init__(**kwargs)
        if groups < 1 or channels % groups:
            raise ValueError('spatial attention: %d channels cannot be split into %d groups'
                             % (channels, groups))
        self.channels, self.groups = channels, groups
        with self.name_scope():
            # one 2-channel -> 1-map convolution per group, as a grouped convolution
            self.conv = nn.Conv2D(groups, kernel_size, padding=kernel_size // 2, groups=groups,
                                  in_channels=2 * groups, use_bias=False, prefix='conv_')
            self.bn = nn.BatchNorm(in_channels=groups, prefix='bn_')

    def hybrid_forward(self, F, x):
        # split / concat rather than a 5-D reshape, so that the graph also converts to ONNX
        groups = F.split(x, num_outputs=self.groups, axis=1) if self.groups > 1 else [x]
        desc = F.concat(*[t for g in groups for t in (F.mean(g, axis=1, keepdims=True),
                                                       F.max(g, axis=1, keepdims=True))], dim=1)
        xi = F.sigmoid(self.bn(self.conv(desc)))                     # (N, tau, H, W)
        maps = F.split(xi, num_outputs=self.groups, axis=1) if self.groups > 1 else [xi]
        return F.concat(*[F.broadcast_mul(g, m) for g, m in zip(groups, maps)], dim=1)

    def __repr__(self):
        return 'SpatialAttention(channels=%d, maps=%d)' % (self.channels, self.groups)


class SpatialThenChannel(HybridBlock):
    """``channel_unit(spatial(residual), identity)``: the '+spa' / 'spa x tau' variants."""

    def __init__(self, channels, channel_unit, groups=1, **kwargs):
        super(SpatialThenChannel, self).__init__(**kwargs)
        with self.name_scope():
            self.spatial = SpatialAttention(channels, groups, prefix='spatial_')
            self.channel = channel_unit

    def hybrid_forward(self, F, residual, identity=None):
        attended = self.spatial(residual)
        if identity is None:
            return self.channel(attended)
        return self.channel(attended, identity)
