#!/usr/bin/env python
"""Train a cmpese model on CIFAR-10/100, SVHN or the bundled digits set, as the papers did.

    python train_cifar.py --model cmpe_se_wrn28_10_1x1 --mixup
    python train_cifar.py --model ini_preresnet164_square_3 --dataset cifar100 --cpus 2
    python train_cifar.py --model cmpe_se_preresnet20_1x1 --dataset digits --export
    python train_cifar.py --model se_wrn16_8 --save-dir runs/x --resume     # after a kill

The schedule (epochs, batch, learning rate and its steps, optimizer, weight decay) comes from
the paper that introduced the model (``--preset``, printed at start, every value
overridable). Data are read from the official files in --data-dir (CIFAR binary batches,
SVHN .mat); see docs/training.md.
"""
import argparse
import logging
import os
import sys


def _default_threads():
    """Use every CPU this process may run on: without OMP_NUM_THREADS, MXNet 1.9.1 starts
    half as many OpenMP threads (one on a 2-core machine, 1.5x slower here). Must run before
    mxnet is imported; an OMP_NUM_THREADS already set is kept."""
    if 'OMP_NUM_THREADS' not in os.environ:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None
        os.environ['OMP_NUM_THREADS'] = str(cpus or os.cpu_count() or 1)


_default_threads()
import mxnet as mx  # noqa: E402  (after the thread default)


def build_parser():
    from cmpese.data import dataset_names, default_data_dir
    from cmpese.training.cli import add_training_args
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--model', required=True,
                        help='a cmpese zoo name, e.g. cmpe_se_wrn28_10_1x1 (see '
                             'cmpese.get_model_list())')
    parser.add_argument('--dataset', default='cifar10', choices=dataset_names())
    parser.add_argument('--data-dir',
                        help='directory with the official files (default $CMPESE_DATA or '
                             '%s)' % default_data_dir())
    parser.add_argument('--svhn-extra', action='store_true',
                        help='SVHN: train on train+extra (the CMPE-SE paper\'s setting)')
    parser.add_argument('--no-download', dest='download', action='store_false',
                        help='never try to download missing dataset files')
    parser.add_argument('--model-args', default='{}',
                        help='JSON keyword arguments for the model builder, e.g. '
                             '\'{"drop_rate": 0.3}\'')
    parser.add_argument('--data-prefetch', type=int, default=2,
                        help='batches prepared ahead in a background thread (0: none)')
    return add_training_args(parser)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    import json

    import cmpese
    from cmpese.data import DATASETS, BatchLoader, DatasetNotFound, load_train_test
    from cmpese.training import TrainingDiverged, fit
    from cmpese.training.checkpoint import refuse_existing_run
    from cmpese.training.cli import (ConfigError, check_resume_config, contexts, explicit_keys,
                                     print_config, resolve_config, save_config)
    from cmpese.training.report import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_keys(parser, argv)
    try:
        cfg = resolve_config(args, explicit)
        if args.resume:
            cfg = check_resume_config(cfg, explicit, cfg['save_dir'])
        model_args = json.loads(cfg['model_args'])
        ctx = contexts(cfg['gpus'], cfg['cpus'])
    except (ConfigError, ValueError) as err:
        parser.error(str(err))
    if cfg['print_config']:
        print_config(cfg)
        return 0

    setup_logging(None)
    log = logging.getLogger('cmpese.train')
    cfg['classes'] = DATASETS[cfg['dataset']]['classes']
    try:  # a wrong model name fails before any data is read
        net = cmpese.get_model(cfg['model'], classes=cfg['classes'], **model_args)
    except (KeyError, ValueError, TypeError) as err:
        parser.error(str(err).strip('"'))
    try:  # missing data: the error says what is expected where, and nothing is written
        train, test, info = load_train_test(cfg['dataset'], cfg['data_dir'], cfg['download'],
                                            extra=cfg['svhn_extra'])
    except DatasetNotFound as err:
        log.error('%s', err)
        return 2

    kv = mx.kv.create(cfg['kvstore'])
    dist = 'dist' in kv.type
    save_dir = cfg['save_dir']
    if not args.resume:
        try:
            refuse_existing_run(save_dir)
        except FileExistsError as err:
            log.error('%s', err)
            return 2
    os.makedirs(save_dir, exist_ok=True)
    setup_logging(os.path.join(save_dir, 'train.log' if kv.rank == 0 else
                               'train-worker%d.log' % kv.rank))
    if not args.resume and kv.rank == 0:
        save_config(cfg, save_dir)
    if kv.rank == 0:
        print_config(cfg, sys.stderr)
    log.info('%s: %d train / %d test images, %d classes; %s on %s%s', cfg['dataset'],
             len(train[0]), len(test[0]), info.classes, cfg['model'], ctx,
             ' (worker %d of %d)' % (kv.rank, kv.num_workers) if dist else '')

    mx.random.seed(cfg['seed'])
    net.initialize(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    train_data = BatchLoader(train[0], train[1], cfg['batch_size'], shuffle=True,
                             augment=info.augment, flip=info.flip, mean=info.mean,
                             std=info.std,
                             seed=cfg['seed'], last_batch='discard' if dist else 'keep',
                             classes=info.classes, prefetch=cfg['data_prefetch'])
    test_data = BatchLoader(test[0], test[1], max(cfg['batch_size'], 256), shuffle=False,
                            augment=False, mean=info.mean, std=info.std, seed=cfg['seed'])
    export_prefix = os.path.join(save_dir, 'export', cfg['model']) if cfg['export'] else None
    try:
        fit(net, train_data, test_data, cfg, ctx, save_dir, kvstore=kv, resume=cfg['resume'],
            progress=cfg['progress'], export_prefix=export_prefix)
    except TrainingDiverged as err:
        log.error('%s', err)
        return 3
    except FileExistsError as err:
        log.error('%s', err)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
