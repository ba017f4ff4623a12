"""Export a zoo model to MXNet symbol JSON + params, and optionally ONNX.

    python -m cmpese.tools.export --model cmpe_se_wrn16_8_1x1 --prefix out/cmpe_se_wrn16_8_1x1 \\
        [--params trained.params] [--classes 100] [--fold] [--onnx [--onnx-optimized]]

Writes ``{prefix}-symbol.json`` and ``{prefix}-0000.params`` (``--onnx``: ``{prefix}.onnx``,
``--onnx-optimized``: also ``{prefix}.opt.onnx``); ``--fold`` collapses the units' filter
banks first. The library is :mod:`cmpese.deploy.export`; docs/export.md, docs/deploy.md.
Every input is checked before anything is written.
"""
import logging
import sys

from ..errors import ArgumentParser, UserError

__all__ = ['build_parser', 'main', 'console', 'PROG']

PROG = 'python -m cmpese.tools.export'


def build_parser(prog=PROG):
    parser = ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True, help='zoo name, e.g. cmpe_se_wrn28_10_1x1')
    parser.add_argument('--prefix', required=True, help='output path prefix')
    parser.add_argument('--params', help='trained parameters (net.save_parameters file); '
                                         'random initialisation when omitted')
    parser.add_argument('--classes', type=int, help="output classes (the model's default: "
                                                    '10 for CIFAR nets, 1000 for ImageNet)')
    parser.add_argument('--input-size', type=int,
                        help="input height and width (the model's: 32 CIFAR, 224 ImageNet)")
    parser.add_argument('--fold', action='store_true',
                        help="collapse the units' filter banks (filters + BN + average) into "
                             'one filter with a bias each, and the affine maps before their '
                             'FC layers into those layers (same outputs, fewer operators)')
    parser.add_argument('--onnx', action='store_true', help='also write {prefix}.onnx')
    parser.add_argument('--onnx-optimized', action='store_true',
                        help="also write {prefix}.opt.onnx, onnxruntime's offline-optimized "
                             'graph (implies --onnx)')
    return parser


def _build(name, classes):
    from ..model_zoo import get_model, get_model_info
    try:
        info = get_model_info(name)
    except ValueError as err:
        raise UserError('--model: %s' % str(err).strip('"'))
    try:
        return get_model(name, classes=classes), info
    except (TypeError, ValueError) as err:
        raise UserError('--model %s%s: %s' % (name, '' if classes is None else
                                              ' --classes %d' % classes, str(err).strip('"')))


def main(argv=None, prog=PROG):
    import mxnet as mx
    from ..deploy.export import export_model, export_onnx, need_onnx
    from ..weights.params import load_params_checked
    args = build_parser(prog).parse_args(argv)
    for flag in ('classes', 'input_size'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError('--%s must be a positive integer, got %d'
                            % (flag.replace('_', '-'), value))
    if args.onnx or args.onnx_optimized:
        need_onnx()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    net, info = _build(args.model, args.classes)
    if args.params:
        load_params_checked(net, args.params, flag='--params', classes_option='--classes %d',
                            hint='Pass the parameters of the same --model and options.')
    else:
        logging.warning('no --params given: exporting randomly initialised weights')
        net.initialize(mx.init.Xavier())
    size = args.input_size or info.input_size
    shape = (1, 3, size, size)
    sym, params = export_model(net, args.prefix, shape, fold=args.fold)
    logging.info('wrote %s and %s%s', sym, params, ' (folded)' if args.fold else '')
    if args.onnx or args.onnx_optimized:
        path = export_onnx(sym, params, args.prefix + '.onnx', shape,
                           optimized_file=args.onnx_optimized or None)
        logging.info('wrote %s%s', path, ' and %s.opt.onnx' % args.prefix
                     if args.onnx_optimized else '')
    return 0


def console(prog='cmpese-export'):
    """The ``cmpese-export`` console script."""
    from . import console as run_console
    return run_console(main, prog)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.export'))
