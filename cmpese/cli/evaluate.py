"""The command line of ``python -m cmpese.evaluate`` (``cmpese-evaluate``): single-crop
top-1 / top-5 error, images counted, images/s, parameters and FLOPs of a trained model, from
a zoo name + parameters or an export. Usage and what is measured: :mod:`cmpese.evaluate`."""
import json
import sys

from ..errors import ArgumentParser, check_output_path
from ..training.cli import float_list

__all__ = ['build_parser', 'main', 'console', 'PROG']

PROG = 'python -m cmpese.evaluate'


def build_parser(prog=PROG):
    from ..data.imagenet import IMAGENET_MEAN, IMAGENET_STD
    p = ArgumentParser(
        prog=prog,
        description='Single-crop top-1/top-5 error, image count, images/s, parameters and '
                    'FLOPs of a trained model.')
    p.add_argument('--model', help='zoo name (with --params)')
    p.add_argument('--params', help='parameters: a run\'s best.params / epoch-NNNN.params, or '
                                    'the .params of --symbol')
    p.add_argument('--symbol', help='an exported <prefix>-symbol.json instead of --model')
    p.add_argument('--model-args', default='{}', help='JSON keyword arguments of the builder')
    p.add_argument('--runtime', default='auto', choices=('auto', 'onnxruntime', 'mxnet'),
                   help='--symbol: the cmpese.tools.deploy predictor\'s runtime (auto: the '
                        'fastest installed)')
    p.add_argument('--rec-val', help='ImageNet-format validation RecordIO (im2rec)')
    p.add_argument('--rec-val-idx', help='its .idx (default: beside the .rec, optional)')
    p.add_argument('--dataset', choices=('cifar10', 'cifar100', 'svhn', 'fashion-mnist',
                                         'mnist', 'digits'),
                   help='evaluate on this test split instead of a RecordIO file (normalized '
                        'with its training split, as train_cifar.py does)')
    p.add_argument('--data-dir', help='directory of the --dataset files')
    p.add_argument('--classes', type=int, help='class count (default: synset.txt beside '
                                              '--rec-val, else the dataset\'s / model\'s)')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--input-size', type=int,
                   help="--rec-val crop side (default: the --symbol export's data config, "
                        "else 224); --dataset is evaluated at its own size (32, 28 for "
                        "fashion-mnist / mnist)")
    p.add_argument('--mean', type=float_list(3, 'numbers (R,G,B)'),
                   help="R,G,B mean in pixel units (RecordIO; default: the --symbol export's "
                        "data config, else ImageNet's %s)" % ','.join('%g' % v for v in
                                                                     IMAGENET_MEAN))
    p.add_argument('--std', type=float_list(3, 'numbers (R,G,B)', positive=True),
                   help="R,G,B standard deviation in pixel units (RecordIO; default: the "
                        "--symbol export's data config, else ImageNet's %s)"
                        % ','.join('%g' % v for v in IMAGENET_STD))
    p.add_argument('--data-nthreads', type=int, default=4, help='decoding threads')
    p.add_argument('--gpus', default='', help='GPU ids, e.g. 0,1')
    p.add_argument('--cpus', type=int, default=0, help='N CPU contexts')
    p.add_argument('--json', help='also write the result to this JSON file')
    return p


def main(argv=None, prog=PROG):
    from ..evaluate import evaluate_model, format_table
    args = build_parser(prog).parse_args(argv)
    if args.json:
        check_output_path(args.json, '--json')
    result = evaluate_model(args)
    print(format_table(result))
    if args.json:
        from ..training.checkpoint import atomic_write
        check_output_path(args.json, '--json', create=True)

        def write(tmp):
            with open(tmp, 'w') as f:
                json.dump(result, f, indent=1, sort_keys=True)
        atomic_write(args.json, write)
    return 0


def console(prog='cmpese-evaluate'):
    """The ``cmpese-evaluate`` console script."""
    from . import console as run_console
    return run_console(main, prog)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.evaluate'))
