"""Pieces shared by every recalibration unit: squeeze, the excitation MLP, checks."""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

SQUEEZES = ('avg', 'max')
GATES = ('sigmoid', 'tanh', 'relu')


def reduced_channels(channels, reduction, what='unit'):
    """C / t, the width of the excitation bottleneck; refuses a ratio that does not divide C."""
    if not isinstance(channels, int) or channels <= 0:
        raise ValueError('%s: channels must be a positive integer, got %r' % (what, channels))
    if not isinstance(reduction, int) or reduction <= 0:
        raise ValueError('%s: the reduction ratio t must be a positive integer, got %r'
                         % (what, reduction))
    if channels % reduction:
        divisors = [t for t in (1, 2, 4, 8, 16, 32) if channels % t == 0]
        raise ValueError(
            '%s: %d channels are not divisible by the reduction ratio t=%d, so C/t is not a '
            'whole number of neurons. Pass reduction=<t> with t dividing %d (for example %s).'
            % (what, channels, reduction, channels, ', '.join(map(str, divisors))))
    return channels // reduction


def check_choice(value, choices, what):
    if value not in choices:
        raise ValueError('%s must be one of %s, got %r' % (what, ', '.join(choices), value))
    return value


def squeeze(F, x, pool_type='avg'):
    """Global spatial pooling, eq. 2 of the CMPE-SE paper: (N, C, H, W) -> (N, C, 1, 1).

    The average is ``contrib.AdaptiveAvgPooling2D(output_size=1)``, the same mean as a global
    ``Pooling``: on MXNet 1.9.1's CPU build the oneDNN backward of global average ``Pooling``
    takes 50-440 ms per call for some widths (64 or 128 channels at 32x32 in oneDNN's
    blocked layout, 16 channels in any layout) where this operator takes 1-10 ms
    (docs/benchmarks.md). ONNX export maps it to GlobalAveragePool. The max squeeze of the
    SENet ablation stays a global max ``Pooling``.
    """
    if pool_type == 'avg':
        return F.contrib.AdaptiveAvgPooling2D(x, output_size=1)
    return F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type=pool_type)


def scale(F, x, s):
    """Channel-wise rescaling, eq. 4: x (N, C, H, W) times s (N, C), as a batched product.

    ``batch_dot`` of s as (N*C, 1, 1) by x as (N*C, 1, H*W) is exactly x_nc * s_nc (one
    product per element, nothing summed), but its backward computes ds = sum_hw(g * x) as
    N*C dot products. ``broadcast_mul``'s backward uses MXNet 1.9.1's generic broadcast
    reduction, which made the unit 5x slower to train on CPU (docs/benchmarks.md). The two
    reshapes only use the codes 0 and -1, which ONNX Reshape shares with MXNet, so the
    graph still converts with mx2onnx (MatMul, Reshape).
    """
    rows = F.reshape(F.reshape(x, shape=(0, 0, -1)), shape=(-1, 1, 0))    # (N*C, 1, H*W)
    return F.reshape_like(F.batch_dot(F.reshape(s, shape=(-1, 1, 1)), rows), x)


class ExcitationUnit(HybridBlock):
    """Base of the units whose last step is FC(C/t) - ReLU - FC(C) - gate.

    ``fc1`` encodes ``in_units`` signals into C/t neurons, ``fc2`` maps ``fc2_in`` signals to
    C gates. The gate is a child block (``self.gate``), so the excitation values can be
    inspected with ``unit.gate.register_forward_hook`` when running imperatively.
    """

    def __init__(self, channels, reduction=16, in_units=None, fc2_in=None, gate='sigmoid',
                 use_bias=False, **kwargs):
        super(ExcitationUnit, self).__init__(**kwargs)
        self.channels = channels
        self.reduction = reduction
        self.hidden = reduced_channels(channels, reduction, type(self).__name__)
        check_choice(gate, GATES, 'gate')
        with self.name_scope():
            self.fc1 = nn.Dense(self.hidden, in_units=in_units or channels, use_bias=use_bias,
                                prefix='fc1_')
            self.fc2 = nn.Dense(channels, in_units=fc2_in or self.hidden, use_bias=use_bias,
                                prefix='fc2_')
            self.gate = nn.Activation(gate, prefix='gate_')

    def excite(self, F, hidden):
        """FC(C) then the gate, from the already encoded (ReLU'd) signals."""
        return self.gate(self.fc2(hidden))

    def __repr__(self):
        return '%s(channels=%d, t=%d)' % (type(self).__name__, self.channels, self.reduction)
