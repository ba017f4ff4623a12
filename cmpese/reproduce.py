"""``python -m cmpese.reproduce``: one command per paper table row (the command is
:mod:`cmpese.cli.reproduce`, the library :mod:`cmpese.papers.reproduce`)."""
from .cli.reproduce import build_parser, main  # noqa: F401

if __name__ == '__main__':
    import sys
    from .cli.reproduce import console
    sys.exit(console('python -m cmpese.reproduce'))
