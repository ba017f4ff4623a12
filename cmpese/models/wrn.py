"""Wide Residual Networks WRN-d-k (Zagoruyko and Komodakis, 2016) for CIFAR, with a
recalibration unit in every block.

WRN is the pre-activation basic-block ResNet widened by k: stages of 16k, 32k and 64k
channels, (d - 4) / 6 blocks each, dropout optional between the two 3x3 convolutions.
The CMPE-SE and Inner-Imaging papers use WRN-16-8, 22-10, 28-10 and 40-10.

Paper: https://arxiv.org/abs/1605.07146. As in the CMPE-SE authors' WRN code and GluonCV's
``cifar_wideresnet``, the input passes a BatchNorm without scale and shift, and the stem
convolution is followed by a BatchNorm; the convolutions take the trainer's initializer.
"""
from ..units import resolve_unit
from .preresnet import PreActCIFARNet
from .stages import check_depth

__all__ = ['get_wrn']


def get_wrn(depth, width, unit=None, classes=10, reduction=16, drop_rate=0.0,
            unit_kwargs=None, **kwargs):
    """WRN-``depth``-``width`` with ``unit`` in every block.

    Parameters
    ----------
    depth : int
        6n + 4 (16, 22, 28, 40, ...).
    width : int
        The widening factor k.
    unit : str, callable or None
        'se', 'cmpe_se_double_fc', 'cmpe_se_2x1', 'cmpe_se_1x1', 'ini_mix_5_d', ... or None
        (plain WRN).
    reduction : int, default 16
        The units' reduction ratio t.
    drop_rate : float, default 0
        Dropout between the convolutions of each block (WRN's "dropout 0.3" runs).
    unit_kwargs : dict, optional
        More unit options (``aggregate='overlay'``, ``gate``...).
    **kwargs
        ``input_bn``, ``stem_bn``, ``conv_init`` (:class:`PreActCIFARNet`).
    """
    check_depth(depth, 'WRN', isinstance(depth, int) and depth >= 10 and (depth - 4) % 6 == 0,
                'WRN depths are 6n+4, e.g. 16, 22, 28, 40')
    if not isinstance(width, int) or width < 1:
        raise ValueError('WRN width factor must be a positive integer, got %r' % (width,))
    n = (depth - 4) // 6
    # InI folds WRN-d-k channel signals into maps of C/k columns (n = 20, m = C/10 for k = 10);
    # the InI paper's WRN counts fit the overlay aggregation (docs/inner_imaging.md)
    spec = resolve_unit(unit, hints={'ini_map': ('groups', width), 'aggregate': 'overlay'},
                        reduction=reduction, **(unit_kwargs or {}))
    kwargs.setdefault('stem_bn', True)
    return PreActCIFARNet([16 * width, 32 * width, 64 * width], [n] * 3, bottleneck=False,
                          classes=classes, unit=spec, drop_rate=drop_rate, **kwargs)
