"""Alias of the visualiser's library, now three modules: :mod:`cmpese.analysis.probe` (the
graph probe, Grad-CAM, loading the model), :mod:`cmpese.analysis.images` (the images) and
:mod:`cmpese.analysis.plots` (the figures); ``from cmpese.tools import visualize`` keeps
working. The command line is ``python -m cmpese.visualize`` (:mod:`cmpese.cli.visualize`)."""
from ..analysis.images import *  # noqa: F401,F403
from ..analysis.images import __all__ as _images
from ..analysis.plots import *  # noqa: F401,F403
from ..analysis.plots import __all__ as _plots
from ..analysis.probe import *  # noqa: F401,F403
from ..analysis.probe import __all__ as _probe

__all__ = list(_probe) + list(_images) + list(_plots)
