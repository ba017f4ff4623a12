"""``python -m cmpese.visualize``: excitations, inner-imaged maps, class-wise excitations,
Grad-CAM, training curves (the command is :mod:`cmpese.cli.visualize`, the library
:mod:`cmpese.analysis`)."""
from .cli.visualize import build_parser, main  # noqa: F401

if __name__ == '__main__':
    import sys
    from .cli.visualize import console
    sys.exit(console('python -m cmpese.visualize'))
