"""Alias of :mod:`cmpese.deploy.fold`: ``from cmpese.tools.fold import ...`` keeps working
(one module object under both names)."""
import sys

from ..deploy import fold as _module

sys.modules[__name__] = _module
