"""``python -m cmpese.study``: the multi-seed study command (:mod:`cmpese.cli.study`; the
library is :mod:`cmpese.training.study`)."""
from .cli.study import PROG, build_parser, console, main  # noqa: F401

if __name__ == '__main__':
    import sys
    sys.exit(console(PROG))
