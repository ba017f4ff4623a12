"""Alias of :mod:`cmpese.analysis.complexity` (the library) and :mod:`cmpese.cli.complexity` (the
command line): ``python -m cmpese.tools.complexity`` and ``from cmpese.tools.complexity import ...``
keep working."""
from ..analysis.complexity import *  # noqa: F401,F403
from ..analysis.complexity import __all__ as _library
from ..cli.complexity import build_parser, main  # noqa: F401

__all__ = list(_library) + ['build_parser', 'main']

if __name__ == '__main__':
    import sys
    from ..cli.complexity import console
    sys.exit(console('python -m cmpese.tools.complexity'))
