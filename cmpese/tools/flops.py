"""Alias of :mod:`cmpese.analysis.flops` (the library) and :mod:`cmpese.cli.flops` (the
command line): ``python -m cmpese.tools.flops`` and ``from cmpese.tools.flops import ...``
keep working."""
from ..analysis.flops import *  # noqa: F401,F403
from ..analysis.flops import __all__ as _library
from ..cli.flops import build_parser, main  # noqa: F401

__all__ = list(_library) + ['build_parser', 'main']

if __name__ == '__main__':
    import sys
    from ..cli.flops import console
    sys.exit(console('python -m cmpese.tools.flops'))
