"""Alias of :mod:`cmpese.papers.reproduce` (the paper bookkeeping moved beside its data,
``cmpese/papers/rows.csv``); kept so that ``from cmpese.tools import reproduce`` works."""
import sys

from ..papers import reproduce as _reproduce

sys.modules[__name__] = _reproduce
