"""Pieces shared by every recalibration unit: the excitation MLP, checks; squeeze, rescale and
channel mean come from :mod:`cmpese.units.ops`."""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

# The squeeze (eq. 2), rescale (eq. 4) and eps-map average every unit uses; which MXNet
# operators they emit is chosen in ops.py (one place, selectable, docs/benchmarks.md).
from .ops import channel_mean, scale, squeeze  # noqa: F401  (re-exported for the units)

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


class ExcitationUnit(HybridBlock):
    """Base of the units whose last step is FC(C/t) - ReLU - FC(C) - gate.

    ``fc1`` encodes ``in_units`` signals into C/t neurons, ``fc2`` maps ``fc2_in`` signals to
    C gates. The gate is a child block (``self.gate``, registered as the unit's
    ``gate_child``): its output is the excitation, found in the hybridized or exported graph
    by :class:`cmpese.analysis.probe.GraphProbe` and read as an extra output of that graph
    (docs/visualize.md; no hooks: a hybridized network does not call them).
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
