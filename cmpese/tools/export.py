"""Alias of :mod:`cmpese.deploy.export` (the library) and :mod:`cmpese.cli.export` (the
command line): ``python -m cmpese.tools.export`` and ``from cmpese.tools.export import ...``
keep working."""
from ..deploy.export import *  # noqa: F401,F403
from ..deploy.export import __all__ as _library
from ..cli.export import build_parser, main  # noqa: F401

__all__ = list(_library) + ['build_parser', 'main']

if __name__ == '__main__':
    import sys
    from ..cli.export import console
    sys.exit(console('python -m cmpese.tools.export'))
