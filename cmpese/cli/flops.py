"""Multiply-adds (1 MAC = 1 FLOP) of zoo models, counted on the symbol graph.

    python -m cmpese.tools.flops resnet110_cifar preresnet164 wrn28_10      # 100 classes, 32x32
    python -m cmpese.tools.flops wrn28_10 --all-ops --by-op
    python -m cmpese.tools.flops --paper      # InI Table IV's FLOPs column beside ours

Names are cmpese zoo names, or GluonCV's for comparison. The counting is
:mod:`cmpese.analysis.flops`; docs/flops.md has the rules.
"""
import sys

from ..errors import ArgumentParser, UserError

__all__ = ['build_parser', 'main', 'console', 'PROG']

PROG = 'python -m cmpese.tools.flops'


def build_parser(prog=PROG):
    parser = ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    parser.add_argument('models', nargs='*', help='cmpese (or GluonCV) model names')
    parser.add_argument('--classes', type=int, default=100, help='default 100 (CIFAR-100)')
    parser.add_argument('--input-size', type=int, default=32)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--all-ops', action='store_true',
                        help='add pooling, BN, activations, element-wise ops to the total')
    parser.add_argument('--by-op', action='store_true', help='print the per-operator breakdown')
    parser.add_argument('--paper', action='store_true',
                        help="InI Table IV's FLOPs beside ours (markdown table)")
    return parser


def _check_name(name):
    """A one-line error for a name neither cmpese's zoo nor GluonCV's knows (before any
    output), with the closest cmpese names."""
    from ..model_zoo import get_model_info
    try:
        get_model_info(name)
        return
    except ValueError as err:
        error = err
    try:
        from gluoncv.model_zoo import get_model_list
        if name.lower() in get_model_list():
            return
    except ImportError:
        pass
    raise UserError('%s: %s' % (name, str(error).strip('"')))


def _build(name, classes):
    """The cmpese model ``name``, else GluonCV's."""
    from ..model_zoo import get_model
    try:
        return get_model(name, classes=classes)
    except (ValueError, TypeError) as cmpese_error:
        try:
            from gluoncv.model_zoo import get_model as gcv_get_model
            return gcv_get_model(name, classes=classes)
        except (ImportError, ValueError, TypeError):
            pass
        raise UserError('%s: %s' % (name, str(cmpese_error).strip('"')))


def main(argv=None, prog=PROG):
    from ..analysis.flops import count_flops, format_flops, format_paper_table, paper_table
    args = build_parser(prog).parse_args(argv)
    if not args.models and not args.paper:
        raise UserError('give model names or --paper (see %s --help)' % prog)
    for flag in ('classes', 'input_size', 'batch'):
        if getattr(args, flag) < 1:
            raise UserError('--%s must be a positive integer, got %d'
                            % (flag.replace('_', '-'), getattr(args, flag)))
    for name in args.models:
        _check_name(name)
    if args.paper:
        print(format_paper_table(paper_table(args.classes, args.input_size)))
    shape = (args.batch, 3, args.input_size, args.input_size)
    include = 'all' if args.all_ops else 'macs'
    if args.models:
        print('%-34s %10s %12s %18s%s' % ('model', 'params', 'FLOPs', '(exact)',
                                         '  (+all ops)' if args.all_ops else ''))
    for name in args.models:
        result = count_flops(_build(name, args.classes), shape, include=include)
        print('%-34s %9.2fM %12s %18s' % (name, result.params / 1e6, format_flops(result.total),
                                          format(result.total, ',')))
        if args.by_op:
            for op, flops in sorted(result.by_op.items(), key=lambda kv: -kv[1]):
                if flops:
                    print('    %-30s %14s %18s' % (op, format_flops(flops), format(flops, ',')))
        if result.unknown_ops:
            print('    unknown operators (1 FLOP per output element): %s'
                  % ', '.join(result.unknown_ops))
    return 0


def console(prog='cmpese-flops'):
    """The ``cmpese-flops`` console script."""
    from . import console as run_console
    return run_console(main, prog)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.flops'))
