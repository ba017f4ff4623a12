"""``python -m cmpese.study``: the multi-seed study command (:mod:`cmpese.cli.study`; the
library is :mod:`cmpese.training.study`)."""
from .cli.study import build_parser, main  # noqa: F401

if __name__ == '__main__':
    from .cli.study import cli
    cli()
