"""Export a zoo model to MXNet symbol JSON + params, and optionally ONNX.

    python -m cmpese.tools.export --model cmpe_se_wrn16_8_1x1 --prefix out/cmpe_se_wrn16_8_1x1 \\
        [--params trained.params] [--classes 100] [--fold] [--onnx [--onnx-optimized]]

Writes ``{prefix}-symbol.json`` and ``{prefix}-0000.params`` (``--onnx``: ``{prefix}.onnx``,
``--onnx-optimized``: also ``{prefix}.opt.onnx``); ``--fold`` collapses the units' filter
banks first. The model's data config (input size, mean/std, resize/crop, class names:
:mod:`cmpese.data.config`) is written as ``{prefix}-data.json`` and into the ONNX
``metadata_props``; it comes from ``--data-config FILE``, else from the run directory of
``--params`` (its data_config.json), else from ``--dataset``. Every file is written under a
temporary name and moved into place when complete; the temporary files of an export to the
same prefix that was killed are removed first. Every input is checked before anything is
written. The library is :mod:`cmpese.deploy.export`; docs/export.md, docs/deploy.md.
"""
import logging
import os
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
    g = parser.add_argument_group(
        'data config', 'what the model expects of an image, written as {prefix}-data.json '
        'and into the ONNX metadata (the Predictor reads it to take raw images). Taken from '
        '--data-config, else from the data_config.json of the run directory --params comes '
        'from, else built from --dataset; none of them: no data config is written (the '
        'Predictor then takes normalized arrays only)')
    g.add_argument('--data-config', metavar='FILE',
                   help="a data config JSON (a run's data_config.json or an export's "
                        '-data.json)')
    g.add_argument('--dataset', choices=_dataset_choices(),
                   help='the dataset the model was trained on (CIFAR-style sets: mean/std '
                        "from the training split, which is read; imagenet: the trainer's "
                        'default mean/std, 256 then centre crop)')
    g.add_argument('--data-dir', help='where --dataset is stored (default $CMPESE_DATA or data)')
    parser.add_argument('--fold', action='store_true',
                        help="collapse the units' filter banks (filters + BN + average) into "
                             'one filter with a bias each, and the affine maps before their '
                             'FC layers into those layers (same outputs, fewer operators)')
    parser.add_argument('--onnx', action='store_true', help='also write {prefix}.onnx')
    parser.add_argument('--onnx-optimized', action='store_true',
                        help="also write {prefix}.opt.onnx, onnxruntime's offline-optimized "
                             'graph (implies --onnx)')
    return parser


def _dataset_choices():
    from ..data.datasets import DATASETS
    return sorted(DATASETS) + ['imagenet']


def resolve_data_config(args, input_size):
    """The data config the export carries (module docstring) and where it came from, or
    (None, None); one line when it is for another input size than ``input_size`` (None: the
    config's size is taken)."""
    from ..data.config import load_data_config
    from ..deploy.export import run_data_config
    if args.data_config:
        if not os.path.isfile(args.data_config):
            raise UserError('--data-config %s: no such file' % args.data_config)
        cfg = load_data_config(args.data_config)
        source = args.data_config
    elif args.params and run_data_config(args.params) is not None:
        cfg, source = run_data_config(args.params), 'the run of --params'
    elif args.dataset == 'imagenet':
        from ..data.config import imagenet_config
        from ..data.imagenet import IMAGENET_MEAN, IMAGENET_STD
        cfg, source = imagenet_config(input_size, IMAGENET_MEAN, IMAGENET_STD), '--dataset'
    elif args.dataset:
        from ..data import default_data_dir
        from ..data.config import dataset_config
        from ..data.datasets import dataset_info, load_dataset
        data_dir = args.data_dir or default_data_dir()
        try:
            train_images = load_dataset(args.dataset, 'train', data_dir)[0]
        except (OSError, ValueError) as err:
            raise UserError('--dataset %s: cannot read its training split in %s (%s); give '
                            '--data-dir, or --data-config FILE' % (args.dataset, data_dir, err))
        info = dataset_info(args.dataset, train_images)
        cfg, source = dataset_config(args.dataset, info.mean, info.std, data_dir), '--dataset'
    else:
        return None, None
    if input_size is not None and cfg.input_size != input_size:
        raise UserError('the data config (%s) is for %dx%d inputs, the export for %dx%d; give '
                        '--input-size %d' % (source, cfg.input_size, cfg.input_size,
                                             input_size, input_size, cfg.input_size))
    return cfg, source


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
    from ..deploy.export import _check_output_dir
    _check_output_dir(args.prefix, create=False)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    net, info = _build(args.model, args.classes)
    data_cfg, source = resolve_data_config(
        args, args.input_size or (None if args.data_config or args.params or args.dataset
                                  else info.input_size))
    size = args.input_size or (data_cfg.input_size if data_cfg is not None else info.input_size)
    if args.params:
        load_params_checked(net, args.params, flag='--params', classes_option='--classes %d',
                            hint='Pass the parameters of the same --model and options.')
    else:
        logging.warning('no --params given: exporting randomly initialised weights')
        net.initialize(mx.init.Xavier())
    shape = (1, 3, size, size)
    sym, params = export_model(net, args.prefix, shape, fold=args.fold, data_config=data_cfg)
    if data_cfg is not None:
        from ..data.config import export_config_path
        logging.info('wrote %s, %s and %s%s (data config from %s: %s)', sym, params,
                     export_config_path(args.prefix), ' (folded)' if args.fold else '',
                     source, data_cfg.describe())
    else:
        logging.info('wrote %s and %s%s; no data config (give --data-config, --dataset or the '
                     '--params of a run directory): the Predictor will take normalized arrays '
                     'only', sym, params, ' (folded)' if args.fold else '')
    if args.onnx or args.onnx_optimized:
        path = export_onnx(sym, params, args.prefix + '.onnx', shape,
                           optimized_file=args.onnx_optimized or None, data_config=data_cfg)
        logging.info('wrote %s%s', path, ' and %s.opt.onnx' % args.prefix
                     if args.onnx_optimized else '')
    return 0


def console(prog='cmpese-export'):
    """The ``cmpese-export`` console script."""
    from . import console as run_console
    return run_console(main, prog)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.export'))
