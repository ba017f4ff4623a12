"""Squeeze-and-Excitation unit (Hu, Shen and Sun, "Squeeze-and-Excitation Networks",
https://arxiv.org/abs/1709.01507).

Eq. 2-5 of the CMPE-SE paper: s = gate(W2 ReLU(W1 squeeze(U))), output s * U. The SENet
ablations (Sec. 6.2-6.3) are the ``squeeze`` ('avg' | 'max') and ``gate``
('sigmoid' | 'tanh' | 'relu') options.
"""
from .base import ExcitationUnit, SQUEEZES, check_choice, scale, squeeze


class SEUnit(ExcitationUnit):
    """SE unit for C channels with reduction ratio t; ignores the identity flow.

    Parameters
    ----------
    channels : int
        C, channels of the feature map it rescales.
    reduction : int, default 16
        t; the bottleneck has C/t neurons.
    squeeze : {'avg', 'max'}
        Global pooling used to squeeze (SENet Table 11).
    gate : {'sigmoid', 'tanh', 'relu'}
        Excitation non-linearity (SENet Table 12).
    use_bias : bool, default False
        Biases in the two FC layers (the CMPE-SE authors' code has none).
    """

    def __init__(self, channels, reduction=16, squeeze='avg', gate='sigmoid', use_bias=False,
                 **kwargs):
        super(SEUnit, self).__init__(channels, reduction, gate=gate, use_bias=use_bias, **kwargs)
        self._pool = check_choice(squeeze, SQUEEZES, 'squeeze')

    def hybrid_forward(self, F, residual, identity=None):
        z = squeeze(F, residual, self._pool)
        s = self.excite(F, F.relu(self.fc1(z)))
        return scale(F, residual, s)
