#!/usr/bin/env python
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


def _quiet_interrupts():
    """Until cmpese.errors.run takes over: Ctrl-C / SIGTERM while MXNet and cmpese are being
    imported end with one line and 130 / 143 (nothing has been written yet)."""
    import signal

    def stop(signum, frame):
        sys.stderr.write('train_cifar.py: interrupted (%s) while starting; nothing was '
                         'written\n' % signal.Signals(signum).name)
        sys.stderr.flush()
        os._exit(128 + signum)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


if __name__ == '__main__':
    _quiet_interrupts()
_default_threads()
import mxnet as mx  # noqa: E402  (after the thread default)


def build_parser():
    from cmpese.data import dataset_names, default_data_dir
    from cmpese.training.cli import ArgumentParser, add_training_args
    parser = ArgumentParser(
        prog='train_cifar.py', description=__doc__.split('\n\n')[0],
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
    """The command line (``argv`` without the program name); returns the exit code. Errors
    are raised (UserError and friends): run it through :func:`cmpese.errors.run`."""
    argv = sys.argv[1:] if argv is None else argv
    from cmpese.data import DATASETS, BatchLoader, load_train_test, size_note
    from cmpese.training import fit
    from cmpese.training.checkpoint import refuse_existing_run
    from cmpese.training.cli import (ConfigError, build_model, check_data_dir,
                                     check_resume_config, check_save_dir, contexts,
                                     explicit_keys, make_save_dir, parse_model_args,
                                     print_config, resolve_config, save_config)
    from cmpese.training.kvstore import create_kvstore, dist_environment
    from cmpese.training.report import setup_logging

    # 1. everything the user gave is checked before anything is written
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_keys(parser, argv)
    if args.svhn_extra and args.dataset != 'svhn':
        raise ConfigError('--svhn-extra only applies to --dataset svhn (got --dataset %s): '
                          'drop it or pass --dataset svhn' % args.dataset)
    cfg = resolve_config(args, explicit)
    if args.resume:
        cfg = check_resume_config(cfg, explicit, cfg['save_dir'])
    model_args = parse_model_args(cfg['model_args'])
    ctx = contexts(cfg['gpus'], cfg['cpus'])
    workers = 1
    if 'dist' in cfg['kvstore']:
        workers = dist_environment(cfg['kvstore'])[2]
        if cfg['batch_size'] % workers:
            raise ConfigError('--batch-size %d cannot be split evenly over %d workers '
                              '(DMLC_NUM_WORKER): pass a multiple of %d'
                              % (cfg['batch_size'], workers, workers))
    if cfg['print_config']:
        print_config(cfg)
        return 0
    save_dir = cfg['save_dir']
    check_save_dir(save_dir)
    if not args.resume:
        refuse_existing_run(save_dir)
    if cfg['dataset'] != 'digits':
        check_data_dir(cfg['data_dir'])

    setup_logging(None)
    log = logging.getLogger('cmpese.train')
    cfg['classes'] = DATASETS[cfg['dataset']]['classes']
    net = build_model(cfg['model'], cfg['classes'], model_args)   # a wrong name fails first
    # missing or malformed data: the error names the file and the format, nothing is written
    train, test, info = load_train_test(cfg['dataset'], cfg['data_dir'], cfg['download'],
                                        extra=cfg['svhn_extra'])
    notes = [size_note(cfg['dataset'], 'train+extra' if cfg['svhn_extra'] else 'train',
                       len(train[0])), size_note(cfg['dataset'], 'test', len(test[0]))]
    kv = create_kvstore(cfg['kvstore'], cfg['dist_timeout'])
    dist = 'dist' in kv.type

    # 2. the run directory
    make_save_dir(save_dir)
    setup_logging(os.path.join(save_dir, 'train.log' if kv.rank == 0 else
                               'train-worker%d.log' % kv.rank))
    if kv.rank == 0:
        if not args.resume or cfg.get('resume_changes'):
            try:
                save_config(cfg, save_dir)
            except OSError as err:
                raise ConfigError('--save-dir %s: cannot write config.json (%s); free space or '
                                  'fix its permissions' % (save_dir, err.strerror or err))
        print_config(cfg, sys.stderr)
    for change in cfg.get('resume_changes') or ():
        log.info('resumed with a change: %s', change)
    for note in notes:
        if note:
            log.warning('%s: training runs, but its figures are not comparable with the '
                        'papers\'', note)
    log.info('%s: %d train / %d test images, %d classes; %s on %s%s', cfg['dataset'],
             len(train[0]), len(test[0]), info.classes, cfg['model'], ctx,
             ' (worker %d of %d)' % (kv.rank, kv.num_workers) if dist else '')

    # 3. train: each worker loads its own shard of every global batch
    mx.random.seed(cfg['seed'])
    net.initialize(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    train_data = BatchLoader(train[0], train[1], cfg['batch_size'] // kv.num_workers,
                             shuffle=True, augment=info.augment, flip=info.flip, mean=info.mean,
                             std=info.std, seed=cfg['seed'], num_parts=kv.num_workers,
                             part_index=kv.rank, classes=info.classes,
                             prefetch=cfg['data_prefetch'])
    test_data = BatchLoader(test[0], test[1], max(cfg['batch_size'], 256), shuffle=False,
                            augment=False, mean=info.mean, std=info.std, seed=cfg['seed'])
    export_prefix = os.path.join(save_dir, 'export', cfg['model']) if cfg['export'] else None
    fit(net, train_data, test_data, cfg, ctx, save_dir, kvstore=kv, resume=cfg['resume'],
        progress=cfg['progress'], export_prefix=export_prefix)
    if cfg.get('record_result') and kv.rank == 0:
        from cmpese.training.report import record_result
        record_result(save_dir, log)
    return 0


if __name__ == '__main__':
    from cmpese.errors import run
    sys.exit(run(main, prog='train_cifar.py'))
