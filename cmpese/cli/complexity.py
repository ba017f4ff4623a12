"""Parameter counts of zoo models, and the papers' printed counts beside ours.

    python -m cmpese.tools.complexity cmpe_se_wrn28_10_1x1 se_preresnet164 [--classes 100]
    python -m cmpese.tools.complexity --paper      # every count the papers print, and ours

Counts are what the papers count: weights, biases and BN scales and shifts (not the BN
running statistics); the library is :mod:`cmpese.analysis.complexity`, the printed counts
cmpese/papers/rows.csv.
"""
import sys

from ..errors import ArgumentParser, UserError

__all__ = ['build_parser', 'main', 'console', 'PROG']

PROG = 'python -m cmpese.tools.complexity'


def build_parser(prog=PROG):
    parser = ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    parser.add_argument('models', nargs='*', help='zoo names')
    parser.add_argument('--classes', type=int, default=None,
                        help="output classes (default: the model's, 10 CIFAR or 1000 ImageNet)")
    parser.add_argument('--paper', action='store_true',
                        help='compare with every count the papers print (markdown table)')
    return parser


def main(argv=None, prog=PROG):
    from ..analysis.complexity import (format_ini_table, format_paper_table, ini_paper_table,
                                       model_params, paper_table)
    from ..model_zoo import get_model_info
    args = build_parser(prog).parse_args(argv)
    if not args.models and not args.paper:
        raise UserError('give model names or --paper (see %s --help)' % prog)
    if args.classes is not None and args.classes < 1:
        raise UserError('--classes must be a positive integer, got %d' % args.classes)
    for name in args.models:        # every name checked before anything is counted
        try:
            get_model_info(name)
        except ValueError as err:
            raise UserError('%s: %s' % (name, str(err).strip('"')))
    if args.paper:
        print(format_paper_table(*paper_table()))
        print()
        print(format_ini_table(ini_paper_table()))
    for name in args.models:
        try:
            n = model_params(name, args.classes)
        except (TypeError, ValueError) as err:
            raise UserError('%s%s: %s' % (name, '' if args.classes is None else
                                          ' --classes %d' % args.classes, str(err).strip('"')))
        print('%-36s %12d  (%.2fM)' % (name, n, n / 1e6))
    return 0


def console(prog='cmpese-complexity'):
    """The ``cmpese-complexity`` console script."""
    from . import console as run_console
    return run_console(main, prog)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.complexity'))
