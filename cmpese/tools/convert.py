"""``python -m cmpese.tools.convert``: timm / GluonCV / cmpese weights into a cmpese .params,
with a report (the command is :mod:`cmpese.cli.convert`, the library :mod:`cmpese.weights`)."""
from ..cli.convert import build_parser, main  # noqa: F401

if __name__ == '__main__':
    import sys
    from ..errors import run
    sys.exit(run(main, prog='python -m cmpese.tools.convert'))
