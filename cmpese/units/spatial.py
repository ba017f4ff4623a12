"""Spatial attention before a channel unit (Inner-Imaging paper, Sec. V-E, eq. 50-51).

The spatial attention map xi is CBAM's (Woo et al., the InI paper's reference [28]):
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
        tau = self.groups
        grouped = F.reshape(x, shape=(0, -4, tau, -1, -2))              # (N, tau, C/tau, H, W)
        desc = F.stack(F.mean(grouped, axis=2), F.max(grouped, axis=2), axis=2)  # (N,tau,2,H,W)
        xi = F.sigmoid(self.bn(self.conv(F.reshape(desc, shape=(0, -3, -2)))))   # (N,tau,H,W)
        out = F.broadcast_mul(grouped, F.expand_dims(xi, axis=2))
        return F.reshape(out, shape=(0, -3, -2))

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
