"""Alias of :mod:`cmpese.deploy.ort_layout`: ``from cmpese.tools.ort_layout import ...``
keeps working (one module object under both names)."""
import sys

from ..deploy import ort_layout as _module

sys.modules[__name__] = _module
