"""Build a small ImageNet-format RecordIO demo set (3 classes) from the photographs inside
scikit-learn and matplotlib; no download.

    python -m cmpese.data.demo_imagenet --out DIR [--train-per-class 100] [--val-per-class 30]

Writes ``DIR/train.rec``, ``train.idx``, ``val.rec``, ``val.idx``, the ``.lst`` files and
``synset.txt``, packed by MXNet's im2rec; an existing set in ``DIR`` is refused. How the set is
cut: :mod:`cmpese.data.demo_imagenet`.
"""
import os
import sys

from ..errors import ArgumentParser, UserError, check_output_path

__all__ = ['build_parser', 'main', 'console', 'train_command', 'PROG']

PROG = 'python -m cmpese.data.demo_imagenet'
MAX_SIZE = 1024     # --size: the photographs' crops are at most ~400 pixels on the short side


def train_command(out):
    """The command that trains on the set in ``out``: the README's, word for word when
    ``out`` is ``data/demo`` (tests/test_readme.py checks it)."""
    return ('python train_imagenet.py --model se_resnet50 --rec-train %s --rec-val %s '
            '--input-size 64 --batch-size 16 --epochs 10 --lr 0.05 --lr-steps 7 '
            '--save-dir runs/demo --export' % (os.path.join(out, 'train.rec'),
                                                os.path.join(out, 'val.rec')))


def build_parser(prog=PROG):
    parser = ArgumentParser(prog=prog, description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('--out', required=True, help='directory to write (created)')
    parser.add_argument('--train-per-class', type=int, default=100)
    parser.add_argument('--val-per-class', type=int, default=30)
    parser.add_argument('--size', type=int, default=128,
                        help='short side of the stored crops, pixels (128)')
    parser.add_argument('--seed', type=int, default=0)
    return parser


def main(argv=None, prog=PROG):
    from ..data.demo_imagenet import CLASSES, build_demo
    args = build_parser(prog).parse_args(argv)
    if not 16 <= args.size <= MAX_SIZE:
        raise UserError('--size must be at least 16 and at most %d pixels (the crops of the '
                        'photographs are smaller: more only upscales), got %d'
                        % (MAX_SIZE, args.size))
    if not 0 <= args.seed < 2 ** 32:
        raise UserError('--seed must be an integer >= 0 and < 2**32, got %d' % args.seed)
    for flag in ('train_per_class', 'val_per_class'):     # before --out is made
        if getattr(args, flag) < 1:
            raise UserError('--%s must be at least 1, got %d'
                            % (flag.replace('_', '-'), getattr(args, flag)))
    check_output_path(args.out, '--out', directory=True)
    for name in ('train.rec', 'val.rec'):
        if os.path.exists(os.path.join(args.out, name)):
            raise UserError('--out %s already holds %s; choose an empty directory (nothing '
                            'was changed)' % (args.out, name))
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        raise UserError('--out %s cannot be created (%s); choose a directory you can write'
                        % (args.out, err.strerror or err))
    try:
        paths = build_demo(args.out, args.train_per_class, args.val_per_class, args.size,
                           args.seed)
    except ValueError as err:
        raise UserError(str(err))
    except OSError as err:
        raise UserError('--out %s: cannot write %s (%s); free space there or choose another '
                        'directory' % (args.out, err.filename or 'the set',
                                       err.strerror or err))
    print('demo set in %s: %d classes (%s), %d train / %d val images (short side %d)' % (
        args.out, paths['classes'], ', '.join(CLASSES), paths['train']['images'],
        paths['val']['images'], args.size))
    print('  %s %s\n  %s %s\n  %s' % (paths['train']['rec'], paths['train']['idx'],
                                      paths['val']['rec'], paths['val']['idx'],
                                      paths['synset']))
    print('train: ' + train_command(args.out))
    return 0


def console(prog='cmpese-demo-imagenet'):
    """The ``cmpese-demo-imagenet`` console script (no thread default: im2rec runs with its
    own threads)."""
    from . import console as run_console
    return run_console(main, prog, threads=False)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.demo_imagenet'))
