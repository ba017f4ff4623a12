"""Competitive Squeeze-and-Excitation units (Hu, Wen, Luo and Dai, CMPE-SE,
https://arxiv.org/abs/1807.08920).

The identity flow joins the excitation of the residual flow:

* ``DoubleFCUnit`` (eq. 6-9): each flow is squeezed and encoded by its own FC(C/t) + ReLU,
  the two codes are concatenated and FC(C) + sigmoid gives the rescaling.
* ``PairViewUnit`` (eq. 10-14): the squeezed residual and identity signals are stacked into a
  2 x C map, scanned by eps filters of size 2x1 or 1x1 (C/t; in a bottleneck block
  floor(inner width / t), as the authors' code) (BN right after the conv), the
  eps outputs are averaged, and the resulting C (2x1) or 2C (1x1, flattened) signals go
  through FC(C/t) - ReLU - FC(C) - sigmoid.
"""
from mxnet.gluon import nn

from .base import ExcitationUnit, channel_mean, check_choice, reduced_channels, scale, squeeze


class DoubleFCUnit(ExcitationUnit):
    """CMPE-SE with double FC encoding (Fig. 2b, eq. 7).

    ``identity_channels`` may differ from ``channels``; the identity encoder is then
    W1_id in R^{C/t x C'} (our backbones pass the identity after its projection, so C' = C).
    """

    def __init__(self, channels, reduction=16, identity_channels=None, gate='sigmoid',
                 use_bias=False, **kwargs):
        hidden = reduced_channels(channels, reduction, 'DoubleFCUnit')
        super(DoubleFCUnit, self).__init__(channels, reduction, fc2_in=2 * hidden, gate=gate,
                                           use_bias=use_bias, **kwargs)
        with self.name_scope():
            self.fc1_id = nn.Dense(hidden, in_units=identity_channels or channels,
                                   use_bias=use_bias, prefix='fc1id_')

    def hybrid_forward(self, F, residual, identity):
        u = F.relu(self.fc1(squeeze(F, residual)))
        x = F.relu(self.fc1_id(squeeze(F, identity)))
        s = self.excite(F, F.concat(u, x, dim=1))
        return scale(F, residual, s)


class PairViewUnit(ExcitationUnit):
    """CMPE-SE with pair-view re-imaging (Fig. 3).

    Parameters
    ----------
    channels : int
        C; the identity must have C channels too (it is stacked under the residual).
    reduction : int, default 16
        t, for both the FC bottleneck (C/t) and the number of pair-view filters eps = C/t.
    kernel : {'2x1', '1x1'}
        '2x1' pairs residual channel c with identity channel c (eq. 11-12, FC input C);
        '1x1' re-images each of the 2C signals (eq. 13-14, FC input 2C).
    filters : int, optional
        eps, the number of pair-view filters; overrides the two options below.
    inner_channels : int, optional
        The inner width of a bottleneck block (a quarter of C), which bottleneck backbones
        pass as a hint.
    eps_from : {'inner', 'output'}, default 'inner'
        Where eps = (width)/t comes from when ``inner_channels`` is given. The paper writes
        eps = C/t without distinguishing blocks; the CMPE-SE authors' pre-act ResNet-164
        code (``Multi_Map``: ``channels / cmpe_se_ratio`` with ``channels`` the inner width)
        uses the inner width, which is our default (floor(inner / t), at least 1, as their
        Python 2 integer division gives); 'output' is the other reading (C/t in every
        block). docs/units.md.
    identity_channels : int, optional
        Must equal C: the squeezed identity is stacked under the squeezed residual.
    """

    def __init__(self, channels, reduction=16, kernel='1x1', filters=None, gate='sigmoid',
                 use_bias=False, inner_channels=None, eps_from='inner', identity_channels=None,
                 **kwargs):
        check_choice(kernel, ('2x1', '1x1'), 'pair-view kernel')
        check_choice(eps_from, ('inner', 'output'), 'eps_from')
        if identity_channels not in (None, channels):
            raise ValueError(
                'the pair-view unit stacks the squeezed residual (%d channels) over the squeezed '
                'identity (%d channels) and needs equal widths; pass the identity after its '
                'projection (as every cmpese backbone does) or use cmpe_se_double_fc.'
                % (channels, identity_channels))
        rows = 2 if kernel == '2x1' else 1
        in_units = channels * (2 // rows)
        super(PairViewUnit, self).__init__(channels, reduction, in_units=in_units, gate=gate,
                                           use_bias=use_bias, **kwargs)
        self.kernel = kernel
        if filters is None and inner_channels and eps_from == 'inner':
            # the authors' Python 2 ``channels / cmpe_se_ratio`` is a floor division; a width
            # below t (PyramidNet's narrow early blocks) keeps one filter
            filters = max(1, inner_channels // reduction)
        self.filters = filters or self.hidden
        with self.name_scope():
            self.conv = nn.Conv2D(self.filters, kernel_size=(rows, 1), in_channels=1,
                                  use_bias=False, prefix='pairview_')
            self.bn = nn.BatchNorm(in_channels=self.filters, prefix='pairviewbn_')

    def hybrid_forward(self, F, residual, identity):
        # eq. 10: (N, 1, 2, C), residual signals on the top row, identity on the bottom one
        v = F.concat(F.reshape(squeeze(F, residual), shape=(0, 1, 1, -1)),
                     F.reshape(squeeze(F, identity), shape=(0, 1, 1, -1)), dim=2)
        # eq. 11 / 13: eps filters, BN, average over the eps maps -> (N, 1, 1 or 2, C)
        v = channel_mean(F, self.bn(self.conv(v)), self.filters)
        s = self.excite(F, F.relu(self.fc1(v)))  # fc1 flattens: eq. 14's F_flatten
        return scale(F, residual, s)

    def __repr__(self):
        return 'PairViewUnit(channels=%d, t=%d, kernel=%s, eps=%d)' % (
            self.channels, self.reduction, self.kernel, self.filters)
