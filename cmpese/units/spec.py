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
  gave, and a unit that does not declare a hint never receives it.
"""
import difflib

__all__ = ['UnitSpec', 'resolve_unit', 'register_unit', 'list_units', 'lookup_unit']

# name -> UnitSpec (with no user options bound)
_UNITS = {}
# functions name -> UnitSpec or None for names that are not listed (e.g. '<unit>_spa<tau>')
_RESOLVERS = []


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
    """

    def __init__(self, name, constructor, options=None, reads_identity=False, hints=(),
                 backbone_options=None, defaults=None):
        self.name = name
        self.constructor = constructor
        self.options = dict(options or {})
        self._reads_identity = reads_identity
        self.hints = tuple(hints)
        self.backbone_options = dict(backbone_options or {})
        self.defaults = dict(defaults or {})

    def _copy(self, options, backbone_options):
        return UnitSpec(self.name, self.constructor, options, self._reads_identity, self.hints,
                        backbone_options, self.defaults)

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


def register_unit(name, constructor, reads_identity, hints=(), **options):
    """Make ``name`` resolve to ``constructor(channels, **options, ...)``.

    ``reads_identity`` is a bool or a function of the final options; ``hints`` names the
    options a backbone may set (:meth:`UnitSpec.with_hints`).
    """
    if name in _UNITS:
        raise ValueError('unit %r is already registered' % name)
    _UNITS[name] = UnitSpec(name, constructor, None, reads_identity, hints, defaults=options)
    return _UNITS[name]


def add_resolver(resolver):
    """``resolver(name) -> UnitSpec or None`` for names built from registered ones."""
    _RESOLVERS.append(resolver)


def list_units():
    """Names of the registered units (derived names such as ``se_spa4`` also resolve)."""
    return sorted(_UNITS)


def lookup_unit(name):
    """The registered :class:`UnitSpec` of ``name``; a ValueError names the closest ones."""
    if name in _UNITS:
        return _UNITS[name]
    for resolver in _RESOLVERS:
        spec = resolver(name)
        if spec is not None:
            return spec
    close = difflib.get_close_matches(str(name), list(_UNITS), n=3, cutoff=0.4)
    hint = (' Did you mean %s?' % ' or '.join(repr(c) for c in close)) if close else ''
    raise ValueError(
        'unknown recalibration unit %r.%s Units are se, cmpe_se_double_fc, cmpe_se_2x1, '
        'cmpe_se_1x1 and ini_<Table I set>[_d][_nojoint] (e.g. ini_mix_5_d), each optionally '
        'followed by _spa or _spa<tau>; cmpese.units.list_units() lists all %d.'
        % (name, hint, len(_UNITS)))


def resolve_unit(unit, hints=None, **options):
    """A backbone's ``unit=`` argument as a :class:`UnitSpec`, or None for no unit.

    ``unit`` is None / 'none', a registered name, a :class:`UnitSpec`, or any callable
    ``unit(channels, reduction=..., prefix=..., **options)`` returning a HybridBlock (a
    user's own unit; it reads the identity if it has an attribute ``reads_identity = True``).
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
                        hints=getattr(unit, 'hints', ()))
    else:
        raise TypeError('unit must be a name, a UnitSpec, a callable or None, got %r' % (unit,))
    spec = spec.bind(**options)
    return spec.with_hints(**hints) if hints else spec
