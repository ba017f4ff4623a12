"""What a load did (:class:`LoadReport`) and why a file was refused (:class:`WeightsError`).

Every refusal is one line that starts with the file's path and says what does not fit and
what to do; the command line (:mod:`cmpese.cli.convert`) prints it through
:func:`cmpese.errors.run` and exits 2.
"""
import collections

from ..errors import UserError

__all__ = ['WeightsError', 'NotAWeightsFile', 'UnsupportedLayout', 'DepthMismatch',
           'ShapeMismatch', 'LayoutMismatch', 'LoadReport']


class WeightsError(UserError, ValueError):
    """A weights file that does not fit the model (one line: the path, what, what to do).
    Also a ``ValueError`` for callers that catch those."""

    def __init__(self, path, message):
        self.path = path
        text = ' '.join(str(message).split())       # always one line
        super(WeightsError, self).__init__('%s: %s' % (path, text) if path else text)


class NotAWeightsFile(WeightsError):
    """Not a safetensors / MXNet .params file, or a damaged one."""


class UnsupportedLayout(WeightsError):
    """A network cmpese does not build (another stem, stride placement, block, unit)."""


class DepthMismatch(WeightsError):
    """A ResNet of another depth (blocks per stage, basic vs bottleneck)."""


class ShapeMismatch(WeightsError):
    """A tensor whose shape differs from the target parameter it maps to."""


class LayoutMismatch(WeightsError):
    """The file maps, but not onto the same function: post- vs pre-activation without
    ``backbone_only``, SE biases the target cannot hold."""


Loaded = collections.namedtuple('Loaded', ['target', 'source', 'shape', 'part'])
New = collections.namedtuple('New', ['target', 'shape', 'reason'])
Skipped = collections.namedtuple('Skipped', ['source', 'shape', 'reason'])


def _values(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


class LoadReport(object):
    """Every tensor of one load, in three lists:

    ``loaded``: :class:`Loaded` (target parameter name, file key, shape, part: 'backbone',
    'unit' or 'classifier'); ``new``: :class:`New` (target parameter left as it was, or set
    as the reason says, and why); ``skipped``: :class:`Skipped` (file key not used, and why).
    ``notes`` are remarks on the whole load (casts, a changed layout). Names are the
    structural names of ``net.save_parameters`` for the target and the file's own keys.
    """

    def __init__(self, path, source, source_description, target_description,
                 backbone_only):
        self.path = path
        self.source = source
        self.source_description = source_description
        self.target_description = target_description
        self.backbone_only = backbone_only
        self.loaded = []
        self.new = []
        self.skipped = []
        self.notes = []

    # -- filled by the loader --------------------------------------------------------------
    def add_loaded(self, target, source, shape, part):
        self.loaded.append(Loaded(target, source, tuple(shape), part))

    def add_new(self, target, shape, reason):
        self.new.append(New(target, tuple(shape), reason))

    def add_skipped(self, source, shape, reason):
        self.skipped.append(Skipped(source, tuple(shape), reason))

    # -- reading ---------------------------------------------------------------------------
    @property
    def loaded_values(self):
        """Number of values copied from the file."""
        return sum(_values(e.shape) for e in self.loaded)

    def loaded_names(self):
        return [e.target for e in self.loaded]

    def new_names(self):
        return [e.target for e in self.new]

    def skipped_names(self):
        return [e.source for e in self.skipped]

    @staticmethod
    def _grouped(entries, key):
        groups = collections.OrderedDict()
        for e in entries:
            groups.setdefault(key(e), []).append(e)
        return groups

    def summary(self, verbose=False):
        """The report as text lines: the file and the target, then loaded / new / skipped
        grouped by part or reason (count, values, an example); ``verbose`` lists every
        tensor."""
        lines = ['file:    %s (%s: %s)' % (self.path, self.source, self.source_description),
                 'target:  %s%s' % (self.target_description,
                                    ', backbone only' if self.backbone_only else '')]
        lines.append('loaded:  %d tensors, %s values' % (len(self.loaded),
                                                         format(self.loaded_values, ',')))
        for part, group in self._grouped(self.loaded, lambda e: e.part).items():
            lines.append('  %-10s %4d tensors %12s values   e.g. %s <- %s'
                         % (part, len(group), format(sum(_values(e.shape) for e in group), ','),
                            group[0].target, group[0].source))
            if verbose:
                lines += ['      %s <- %s %s' % (e.target, e.source, e.shape) for e in group]
        for title, entries, name in (('new:     ', self.new, 'target'),
                                     ('skipped: ', self.skipped, 'source')):
            lines.append('%s%d tensors, %s values%s'
                         % (title, len(entries), format(sum(_values(e.shape) for e in entries),
                                                        ','),
                            '' if entries else ' (none)'))
            for reason, group in self._grouped(entries, lambda e: e.reason).items():
                lines.append('  %4d  %s   e.g. %s' % (len(group), reason, getattr(group[0], name)))
                if verbose:
                    lines += ['      %s %s' % (getattr(e, name), e.shape) for e in group]
        lines += ['note:    %s' % n for n in self.notes]
        return lines

    def __str__(self):
        return '\n'.join(self.summary())

    def to_dict(self):
        """Everything as plain data (for JSON)."""
        return dict(path=self.path, source=self.source,
                    source_description=self.source_description,
                    target_description=self.target_description,
                    backbone_only=self.backbone_only,
                    loaded=[e._asdict() for e in self.loaded],
                    new=[e._asdict() for e in self.new],
                    skipped=[e._asdict() for e in self.skipped],
                    notes=list(self.notes), loaded_values=self.loaded_values)
