"""Alias of :mod:`cmpese.deploy.predictor` (the library) and :mod:`cmpese.cli.deploy` (the
command line): ``python -m cmpese.tools.deploy`` and ``from cmpese.tools.deploy import ...``
keep working."""
from ..deploy.predictor import *  # noqa: F401,F403
from ..deploy.predictor import __all__ as _library
from ..cli.deploy import build_parser, main  # noqa: F401

__all__ = list(_library) + ['build_parser', 'main']

if __name__ == '__main__':
    import sys
    from ..cli.deploy import console
    sys.exit(console('python -m cmpese.tools.deploy'))
