"""The unit spec: a recalibration unit resolved once, built many times.

A family builder turns its ``unit=`` argument (a registered name, a callable, or ``None``)
into one :class:`UnitSpec` with :func:`resolve_unit`, binding the options once
(``reduction``, ``rounding``, ``aggregate`` ...) and the backbone's hints (the inner-imaged
map rule, whether there is an identity flow, a bottleneck's inner width). Every block then
calls ``spec.build(channels, where=...)``; no backbone looks at a unit's type or name. This
is the pattern of timm's ``get_attn`` / ``create_attn``: one lookup, then a constructor with
its arguments bound.

A registry entry declares

* ``constructor(channels, **options)`` returning a ``HybridBlock`` called as
  ``unit(residual, identity)`` (or ``unit(x)`` where there is no identity);
* ``options`` fixed by the name (``kernel='1x1'`` for ``cmpe_se_1x1``);
* ``reads_identity``: a bool, or a function of the final options (an InI unit stops reading
  the identity when its option ``joint`` is False);
* ``hints``: the option names a backbone may set. A hint never overrides an option the user
  gave, and a unit that does not declare a hint never receives it;
* its metadata, so that nothing above ``units/`` looks at a unit's name: ``paper`` (the key
  of :data:`cmpese.papers.PAPERS` that introduced it: 'senet', 'cmpe', 'ini'), ``inner_map``
  (the layout of the one-channel inner-imaged map it scans, None for units without one; see
  :meth:`UnitSpec.map_rows`) and ``gate_child`` (the name prefix of the child block whose
  output is the excitation, 'gate_' for every :class:`~cmpese.units.base.ExcitationUnit`).
"""
import difflib

__all__ = ['UnitSpec', 'resolve_unit', 'register_unit', 'list_units', 'lookup_unit',
           'add_resolver', 'gate_children', 'INNER_MAPS']

# name -> UnitSpec (with no user options bound)
_UNITS = {}
# (function name -> UnitSpec or None, description) for names that are not listed (e.g.
# '<unit>_spa<tau>')
_RESOLVERS = []

# Layouts of an inner-imaged map (UnitSpec.inner_map): 'stacked' = the residual signals on
# the top row, the identity's below (CMPE-SE pair-view, eq. 10; InI simple); 'folded' = the
# InI fold T_alt (eq. 24), rows alternating identity, residual, identity, ...
INNER_MAPS = ('stacked', 'folded')


class UnitSpec(object):
    """What to build for one unit, with every option bound; see the module docstring.

    Parameters
    ----------
    name : str
        Registry name (or the callable's name), for messages and ``repr``.
    constructor : callable
        ``constructor(channels, **options) -> HybridBlock``.
    options : dict
        Bound keyword arguments (the user's); they win over hints.
    reads_identity : bool or callable
        Whether the built unit uses its second input; a callable receives the final options.
    hints : tuple of str
        Option names a backbone may set through :meth:`with_hints`.
    backbone_options : dict
        Hints a backbone has set (kept apart from the user's options, which win).
    defaults : dict
        Options the registry entry fixes by name (``kernel='1x1'``, ``joint=True``); hints
        and the user's options win over them.
    paper : str or None
        Key of the paper that introduced the unit ('senet', 'cmpe', 'ini'); None for a user's
        unit.
    inner_map : str or None
        Layout of the inner-imaged map the unit scans (one of :data:`INNER_MAPS`), None when
        it has none (SE, double FC).
    gate_child : str
        Name prefix of the child block whose output is the excitation (N, C).
    """

    def __init__(self, name, constructor, options=None, reads_identity=False, hints=(),
                 backbone_options=None, defaults=None, paper=None, inner_map=None,
                 gate_child='gate_'):
        self.name = name
        self.constructor = constructor
        self.options = dict(options or {})
        self._reads_identity = reads_identity
        self.hints = tuple(hints)
        self.backbone_options = dict(backbone_options or {})
        self.defaults = dict(defaults or {})
        self.paper = paper
        self.inner_map = inner_map
        self.gate_child = gate_child

    def _copy(self, options, backbone_options):
        return UnitSpec(self.name, self.constructor, options, self._reads_identity, self.hints,
                        backbone_options, self.defaults, self.paper, self.inner_map,
                        self.gate_child)

    def derived(self, name, constructor):
        """A spec named ``name`` building with ``constructor`` that keeps this one's identity
        use, hints and metadata (the '_spa' variants)."""
        return UnitSpec(name, constructor, reads_identity=self._reads_identity,
                        hints=self.hints, paper=self.paper, inner_map=self.inner_map,
                        gate_child=self.gate_child)

    def map_rows(self, rows, identity_flow=True):
        """'identity' / 'residual' for each of the ``rows`` rows of the unit's inner-imaged
        map; None when the unit has no map or the layout does not give ``rows`` rows.
        ``identity_flow=False`` for a backbone without one (All-CNN): the map then holds the
        residual alone, as it does for a unit that does not read the identity."""
        if self.inner_map is None:
            return None
        if not (identity_flow and self.reads_identity):
            return ['residual'] * rows
        if self.inner_map == 'stacked':
            return ['residual', 'identity'] if rows == 2 else None
        return ['identity', 'residual'] * (rows // 2) if rows % 2 == 0 else None

    def bind(self, **options):
        """A copy with more options bound (they win over earlier ones and over hints)."""
        merged = dict(self.options)
        merged.update(options)
        return self._copy(merged, self.backbone_options)

    def with_hints(self, **hints):
        """A copy that takes the backbone's ``hints`` it declares (the others are dropped)."""
        taken = dict(self.backbone_options)
        taken.update((k, v) for k, v in hints.items() if k in self.hints)
        return self._copy(self.options, taken)

    def accepts(self, option):
        """Whether a backbone can set ``option`` on this unit (it is a declared hint)."""
        return option in self.hints

    def final_options(self):
        """The keyword arguments the constructor receives: defaults, then hints, then the
        user's options."""
        out = dict(self.defaults)
        out.update(self.backbone_options)
        out.update(self.options)
        return out

    @property
    def reads_identity(self):
        """Whether the unit built from this spec uses the identity flow."""
        if callable(self._reads_identity):
            return bool(self._reads_identity(self.final_options()))
        return bool(self._reads_identity)

    def build(self, channels, hints=None, identity_channels=None, where=None, prefix='unit_'):
        """The unit for a residual flow of ``channels`` channels.

        ``hints`` are this block's own (a bottleneck's ``inner_channels``), taken like
        :meth:`with_hints`; ``identity_channels`` is passed only to units that read the
        identity and only when it differs from ``channels``; ``where`` ('stage2 block1')
        prefixes error messages.
        """
        spec = self.with_hints(**hints) if hints else self
        kwargs = spec.final_options()
        kwargs.setdefault('prefix', prefix)
        if identity_channels not in (None, channels) and spec.reads_identity:
            kwargs['identity_channels'] = identity_channels
        try:
            return spec.constructor(channels, **kwargs)
        except ValueError as err:
            if where is None:
                raise
            raise ValueError('%s: %s' % (where, err)) from None

    def __repr__(self):
        opts = ', '.join('%s=%r' % kv for kv in sorted(self.final_options().items()))
        return 'UnitSpec(%s%s)' % (self.name, ', ' + opts if opts else '')


def register_unit(name, constructor, reads_identity, hints=(), *, paper, inner_map=None,
                  gate_child='gate_', **options):
    """Make ``name`` resolve to ``constructor(channels, **options, ...)``.

    ``reads_identity`` is a bool or a function of the final options; ``hints`` names the
    options a backbone may set (:meth:`UnitSpec.with_hints`). ``paper``, ``inner_map`` and
    ``gate_child`` are the unit's metadata (:class:`UnitSpec`); the model zoo, the pages and
    the visualiser read them instead of the name.
    """
    if name in _UNITS:
        raise ValueError('unit %r is already registered' % name)
    if inner_map not in (None,) + INNER_MAPS:
        raise ValueError('unit %r: inner_map must be None or one of %s, got %r'
                         % (name, ', '.join(INNER_MAPS), inner_map))
    _UNITS[name] = UnitSpec(name, constructor, None, reads_identity, hints, defaults=options,
                            paper=paper, inner_map=inner_map, gate_child=gate_child)
    return _UNITS[name]


def add_resolver(resolver, description):
    """``resolver(name) -> UnitSpec or None`` for names built from registered ones;
    ``description`` says which names in the unknown-unit message ('<unit>_spa')."""
    _RESOLVERS.append((resolver, description))


def gate_children():
    """The name prefixes of every registered unit's gate child ('gate_'), for finding the
    excitations in a graph."""
    return sorted({spec.gate_child for spec in _UNITS.values()})


def _registered():
    """The registered names for a message, by paper: every name of a paper with a few units,
    a prefix, a count and an example for one with many."""
    by_paper = {}
    for name, spec in _UNITS.items():
        by_paper.setdefault(spec.paper, []).append(name)
    parts = []
    for paper, names in by_paper.items():
        if len(names) <= 4:
            text = ', '.join(names)
        else:
            prefix = names[0]
            for n in names[1:]:
                while not n.startswith(prefix):
                    prefix = prefix[:-1]
            text = '%s... (%d names such as %s)' % (prefix, len(names), names[0])
        parts.append('%s [%s]' % (text, paper))
    parts += [description for _, description in _RESOLVERS]
    return '; '.join(parts)


def list_units():
    """Names of the registered units (derived names such as ``se_spa4`` also resolve)."""
    return sorted(_UNITS)


def lookup_unit(name):
    """The registered :class:`UnitSpec` of ``name``; a ValueError names the closest ones."""
    if name in _UNITS:
        return _UNITS[name]
    for resolver, _ in _RESOLVERS:
        spec = resolver(name)
        if spec is not None:
            return spec
    close = difflib.get_close_matches(str(name), list(_UNITS), n=3, cutoff=0.4)
    hint = (' Did you mean %s?' % ' or '.join(repr(c) for c in close)) if close else ''
    raise ValueError('unknown recalibration unit %r.%s Units [paper]: %s. '
                     'cmpese.units.list_units() lists all %d.'
                     % (name, hint, _registered(), len(_UNITS)))


def resolve_unit(unit, hints=None, **options):
    """A backbone's ``unit=`` argument as a :class:`UnitSpec`, or None for no unit.

    ``unit`` is None / 'none', a registered name, a :class:`UnitSpec`, or any callable
    ``unit(channels, reduction=..., prefix=..., **options)`` returning a HybridBlock (a
    user's own unit; it reads the identity if it has an attribute ``reads_identity = True``,
    and attributes ``paper``, ``inner_map``, ``gate_child`` give its metadata).
    ``options`` are bound (the user's, e.g. ``reduction=16``); ``hints`` are the backbone's.
    """
    if unit is None or (isinstance(unit, str) and unit == 'none'):
        return None
    if isinstance(unit, UnitSpec):
        spec = unit
    elif isinstance(unit, str):
        spec = lookup_unit(unit)
    elif callable(unit):
        def user_unit(channels, prefix=None, **kwargs):   # a user's factory names its own
            return unit(channels, **kwargs)
        spec = UnitSpec(getattr(unit, '__name__', repr(unit)), user_unit,
                        reads_identity=getattr(unit, 'reads_identity', False),
                        hints=getattr(unit, 'hints', ()), paper=getattr(unit, 'paper', None),
                        inner_map=getattr(unit, 'inner_map', None),
                        gate_child=getattr(unit, 'gate_child', 'gate_'))
    else:
        raise TypeError('unit must be a name, a UnitSpec, a callable or None, got %r' % (unit,))
    spec = spec.bind(**options)
    return spec.with_hints(**hints) if hints else spec
