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


def _ones_row(F, rows):
    """A constant (1, H*W) row of ones shaped after ``rows`` (N, C, H*W); no gradient."""
    corner = F.slice_axis(F.slice_axis(rows, axis=0, begin=0, end=1), axis=1, begin=0, end=1)
    return F.BlockGrad(F.ones_like(F.reshape(corner, shape=(-3, 0))))


def squeeze(F, x, pool_type='avg'):
    """Global spatial pooling, eq. 2 of the CMPE-SE paper: (N, C, H, W) -> (N, C, 1, 1).

    The average is a matrix-vector product: x as (N, C, H*W) ``dot`` a constant column of
    1/(H*W), which is one BLAS pass over x, and whose backward is one outer product. It is the
    same mean as a global ``Pooling`` (up to float rounding), about twice as fast to train on
    MXNet 1.9.1's CPU build as ``contrib.AdaptiveAvgPooling2D`` and many times faster than the
    oneDNN backward of a global average ``Pooling`` (docs/benchmarks.md). ONNX export turns
    it into MatMul. The max squeeze of the SENet ablation stays a global max ``Pooling``.
    """
    if pool_type != 'avg':
        return F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type=pool_type)
    rows = F.reshape(x, shape=(0, 0, -1))                       # (N, C, H*W)
    ones = _ones_row(F, rows)                                   # (1, H*W)
    mean_row = F.broadcast_div(ones, F.sum(ones, axis=1, keepdims=True))
    return F.reshape(F.dot(rows, mean_row, transpose_b=True), shape=(0, 0, 1, 1))


def scale(F, x, s):
    """Channel-wise rescaling, eq. 4: x (N, C, H, W) times s (N, C).

    s is spread over the map by an outer product with a row of ones (one BLAS call), then
    multiplied element-wise. Autograd then gives the gradient of s as the transpose of that
    outer product, a matrix-vector product, instead of MXNet 1.9.1's generic broadcast
    reduction (``broadcast_mul``'s backward, which made the unit 5x slower to train on CPU)
    or N*C one-element GEMMs (``batch_dot``); docs/benchmarks.md has the measurements. Every
    reshape uses only the codes 0 and -1, which ONNX Reshape shares with MXNet.
    """
    rows = F.reshape(x, shape=(0, 0, -1))                       # (N, C, H*W)
    spread = F.dot(F.reshape(s, shape=(0, -1, 1)), _ones_row(F, rows))
    return F.reshape_like(rows * spread, x)


def channel_mean(F, x, channels):
    """Mean over the channel axis: (N, C, H, W) -> (N, 1, H, W), C = ``channels``.

    A 1x1 convolution by a constant (1, C, 1, 1) weight of 1/C (``ones_like`` of a corner of x
    behind ``BlockGrad``). The same numbers as ``mean(axis=1, keepdims=True)`` up to float
    rounding, but it runs in oneDNN on the BN output's blocked layout, forward and backward,
    where ``mean`` is MXNet 1.9.1's generic reduction: 3x faster to train for the
    pair-view and G-filter maps (docs/benchmarks.md). ONNX export gives a Conv.
    """
    corner = F.slice_axis(F.slice_axis(F.slice_axis(x, axis=0, begin=0, end=1),
                                       axis=2, begin=0, end=1), axis=3, begin=0, end=1)
    weight = F.BlockGrad(F.ones_like(corner) * (1.0 / channels))
    return F.Convolution(x, weight, kernel=(1, 1), num_filter=1, no_bias=True)


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
