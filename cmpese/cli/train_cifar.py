"""Train a cmpese model on CIFAR-10/100, SVHN or the bundled digits set, as the papers did.

    python train_cifar.py --model cmpe_se_wrn28_10_1x1 --mixup
    python train_cifar.py --model ini_preresnet164_square_3 --dataset cifar100 --cpus 2
    python train_cifar.py --model cmpe_se_preresnet20_1x1 --dataset digits --export
    python train_cifar.py --model se_wrn16_8 --save-dir runs/x --resume     # after a kill

The schedule (epochs, batch, learning rate and its steps, optimizer, weight decay) comes from
the paper that introduced the model (``--preset``, printed at start, every value
overridable). Data are read from the official files in --data-dir (CIFAR binary batches,
SVHN .mat); see docs/training.md. Bad input ends with one line naming the flag or file and
exit code 2 (--debug shows the traceback); Ctrl-C / SIGTERM exit 130 / 143 and say how to
resume.

This module holds what is particular to these datasets (their options, files, loaders and
log lines); the run itself is :class:`cmpese.training.run.Trainer`'s.
"""
import logging
import sys

from ..errors import ArgumentParser, ConfigError
from ..training.cli import HelpFormatter, add_training_args, check_data_dir
from ..training.run import Trainer

__all__ = ['build_parser', 'main', 'console', 'CifarTrainer', 'PROG']

PROG = 'train_cifar.py'

log = logging.getLogger('cmpese.train')


def build_parser(prog=PROG):
    from ..data import dataset_names, default_data_dir
    parser = ArgumentParser(
        prog=prog, description=__doc__.split('\n\n')[0], formatter_class=HelpFormatter)
    parser.add_argument('--model', required=True,
                        help='a cmpese zoo name, e.g. cmpe_se_wrn28_10_1x1 (see '
                             'cmpese.get_model_list())')
    parser.add_argument('--dataset', default='cifar10', choices=dataset_names(),
                        help='what to train and test on, read from the official files in '
                             '--data-dir (digits: bundled with scikit-learn, no download; '
                             'docs/data.md); it also picks the preset')
    parser.add_argument('--data-dir',
                        help='directory with the official files (default: $CMPESE_DATA, else '
                             '%s)' % default_data_dir())
    parser.add_argument('--svhn-extra', action='store_true',
                        help='SVHN: train on train+extra (the CMPE-SE paper\'s setting)')
    parser.add_argument('--no-download', dest='download', action='store_false',
                        help='never download missing dataset files (by default they are '
                             'downloaded when the machine has internet)')
    parser.add_argument('--model-args', default='{}',
                        help='JSON keyword arguments for the model builder, e.g. '
                             '\'{"drop_rate": 0.3}\'')
    parser.add_argument('--data-prefetch', type=int, default=2,
                        help='batches prepared ahead in a background thread (0: none)')
    return add_training_args(parser)


class CifarTrainer(Trainer):
    """The small-image datasets of :data:`cmpese.data.DATASETS`, read whole into memory and
    served by :class:`cmpese.data.BatchLoader` (each dist worker its shard of every global
    batch)."""

    def __init__(self, prog=PROG):
        self.prog = prog

    def build_parser(self):
        return build_parser(self.prog)

    def check_args(self, args, explicit):
        if args.svhn_extra and args.dataset != 'svhn':
            raise ConfigError('--svhn-extra only applies to --dataset svhn (got --dataset %s): '
                              'drop it or pass --dataset svhn' % args.dataset)

    def configure(self, cfg, explicit):
        from ..data import DATASETS
        cfg['classes'] = DATASETS[cfg['dataset']]['classes']

    def prepare(self, cfg):
        if cfg['dataset'] != 'digits':
            check_data_dir(cfg['data_dir'])

    def read_data(self, cfg):
        from ..data import load_train_test, size_note
        train, test, info = load_train_test(cfg['dataset'], cfg['data_dir'], cfg['download'],
                                            extra=cfg['svhn_extra'])
        notes = [size_note(cfg['dataset'], 'train+extra' if cfg['svhn_extra'] else 'train',
                           len(train[0])), size_note(cfg['dataset'], 'test', len(test[0]))]
        return dict(train=train, test=test, info=info, notes=[n for n in notes if n])

    def loaders(self, cfg, data, kv, ctx):
        # cmpese.data.BatchLoader looked up at call time (benchmarks/bench_data.py swaps it)
        from .. import data as datasets
        train, test, info = data['train'], data['test'], data['info']
        train_data = datasets.BatchLoader(
            train[0], train[1], cfg['batch_size'] // kv.num_workers, shuffle=True,
            augment=info.augment, flip=info.flip, mean=info.mean, std=info.std,
            seed=cfg['seed'], num_parts=kv.num_workers, part_index=kv.rank,
            classes=info.classes, prefetch=cfg['data_prefetch'])
        test_data = datasets.BatchLoader(
            test[0], test[1], max(cfg['batch_size'], 256), shuffle=False, augment=False,
            mean=info.mean, std=info.std, seed=cfg['seed'])
        return train_data, test_data

    def input_shape(self, cfg, data):
        _, height, width, channels = data['train'][0].shape     # NHWC
        return (1, channels, height, width)

    def data_config(self, cfg, data):
        from ..data import default_data_dir
        from ..data.config import dataset_config
        info = data['info']
        return dataset_config(cfg['dataset'], info.mean, info.std,
                              cfg.get('data_dir') or default_data_dir())

    def describe(self, cfg, data, train, val, kv, ctx):
        for note in data['notes']:
            log.warning('%s: training runs, but its figures are not comparable with the '
                        'papers\'', note)
        log.info('%s: %d train / %d test images, %d classes; %s on %s%s', cfg['dataset'],
                 len(data['train'][0]), len(data['test'][0]), data['info'].classes,
                 cfg['model'], ctx, ' (worker %d of %d)' % (kv.rank, kv.num_workers)
                 if 'dist' in kv.type else '')


def main(argv=None, prog=PROG):
    """The command line (``argv`` without the program name); returns the exit code. Errors
    are raised (:class:`cmpese.errors.UserError`): run it through :func:`cmpese.errors.run`
    (as :func:`console` does)."""
    return CifarTrainer(prog).main(argv)


def console(prog='cmpese-train-cifar'):
    """The ``cmpese-train-cifar`` console script."""
    from . import console as run_console
    return run_console(main, prog)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.train_cifar'))
