#!/usr/bin/env python
"""Train a cmpese ImageNet model (ResNet-50/101: plain, SE, CMPE-SE, InI, spatial attention)
on RecordIO files made by MXNet's im2rec, on one or many GPUs and machines.

    python train_imagenet.py --model se_resnet50 --rec-train train.rec --rec-val val.rec \\
        --gpus 0,1,2,3,4,5,6,7 --batch-size 256
    python train_imagenet.py --model cmpe_se_resnet50_1x1 ... --kvstore dist_sync   # launched
    python train_imagenet.py --model se_resnet50 --benchmark --batch-size 8  # synthetic data
    python train_imagenet.py --rec-train train.rec --rec-val val.rec --test-io  # decode speed
    python train_imagenet.py --model resnet50 ... --save-dir runs/x --resume   # after a kill

The schedule comes from the paper that introduced the model (``--preset`` senet,
cmpe_imagenet or ini_imagenet, printed at start, every value overridable); when the global
batch differs from the preset's, the learning rate is scaled linearly (printed). Training
augmentation: random-resized crop (area 0.08-1, aspect 3/4-4/3), flip, mean/std
normalization, and optionally the SENet extras (rotation, colour jitter); validation: short
side 256, centre crop 224 (scaled with ``--input-size``). Outputs in ``--save-dir`` are the
CIFAR trainer's: train.log, metrics.csv (top-1 and top-5), training-curve.png, best.params,
checkpoints, ``--export``. See docs/imagenet.md.
"""
import argparse
import logging
import os
import shutil
import sys
import tempfile


def _default_threads():
    """Use every CPU this process may run on (MXNet 1.9.1 starts half as many OpenMP threads
    without OMP_NUM_THREADS); must run before mxnet is imported. A value already set is
    kept."""
    if 'OMP_NUM_THREADS' not in os.environ:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None
        os.environ['OMP_NUM_THREADS'] = str(cpus or os.cpu_count() or 1)


_default_threads()
import mxnet as mx  # noqa: E402  (after the thread default)

DTYPES = ('float32', 'float16', 'bfloat16')
# ImageNet options a resumed run may change (besides the trainers' RUNTIME_KEYS): the data
# files' locations and the decoding threads, not what is computed.
RESUME_RUNTIME_KEYS = ('rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx', 'data_nthreads')
KVSTORES = ('device', 'local', 'nccl', 'dist_sync', 'dist_device_sync')


def _floats(count):
    def parse(text):
        try:
            values = tuple(float(v) for v in text.split(','))
        except ValueError:
            values = ()
        if len(values) != count:
            raise argparse.ArgumentTypeError('expected %d comma-separated numbers, got %r'
                                             % (count, text))
        return list(values)      # a list, as config.json stores it (resume compares them)
    return parse


def build_parser():
    from cmpese.data.imagenet import IMAGENET_MEAN, IMAGENET_STD
    from cmpese.training.cli import ArgumentParser, add_training_args
    parser = ArgumentParser(
        prog='train_imagenet.py', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--model', help='a cmpese zoo name, e.g. se_resnet50, '
                                        'cmpe_se_resnet50_1x1, ini_resnet50_mix_5_d')
    parser.add_argument('--model-args', default='{}',
                        help='JSON keyword arguments for the model builder')
    parser.add_argument('--classes', type=int,
                        help='number of classes (default: the lines of synset.txt beside '
                             '--rec-train, else 1000)')
    g = parser.add_argument_group('data (RecordIO made by python -m mxnet.tools.im2rec)')
    g.add_argument('--rec-train', help='training .rec')
    g.add_argument('--rec-train-idx', help='its .idx (default: beside the .rec)')
    g.add_argument('--rec-val', help='validation .rec')
    g.add_argument('--rec-val-idx', help='its .idx (default: beside the .rec, optional)')
    g.add_argument('--data-nthreads', type=int, default=4, help='decoding threads a worker')
    g.add_argument('--input-size', type=int, default=224,
                   help='crop side; validation resizes the short side to input-size x 256/224')
    g.add_argument('--mean', type=_floats(3), default=list(IMAGENET_MEAN),
                   help='R,G,B mean subtracted, pixel units')
    g.add_argument('--std', type=_floats(3), default=list(IMAGENET_STD),
                   help='R,G,B standard deviation divided by, pixel units (1,1,1: the SENet '
                        'paper\'s mean subtraction only)')
    g.add_argument('--min-random-area', type=float, default=0.08)
    g.add_argument('--max-random-area', type=float, default=1.0)
    g.add_argument('--min-aspect-ratio', type=float, default=3.0 / 4.0)
    g.add_argument('--max-aspect-ratio', type=float, default=4.0 / 3.0)
    g.add_argument('--no-flip', dest='flip', action='store_false',
                   help='no random horizontal flip')
    g.add_argument('--max-rotate-angle', type=int, default=0,
                   help='SENet extra: rotate by a random angle in [-v, v] degrees')
    g.add_argument('--hsl-jitter', type=_floats(3), default=[0, 0, 0],
                   help='SENet extra (colour jitter): random H,S,L offsets up to these '
                        'values (e.g. 36,50,50)')
    g.add_argument('--pca-noise', type=float, default=0.0,
                   help='AlexNet PCA lighting noise (e.g. 0.1)')
    g = parser.add_argument_group('ImageNet training')
    g.add_argument('--label-smoothing', type=float, default=0.0,
                   help='targets (1 - eps) one-hot + eps / classes')
    g.add_argument('--warmup-epochs', type=int, default=0,
                   help='linear learning-rate warmup from 0 over these epochs')
    g.add_argument('--dtype', default='float32', choices=DTYPES,
                   help='float16: GPUs, multi-precision SGD; bfloat16: MXNet AMP (CPU)')
    g.add_argument('--benchmark', action='store_true',
                   help='train on synthetic data: the model\'s throughput, no data loading')
    g.add_argument('--benchmark-batches', type=int, default=10,
                   help='--benchmark: timed iterations (after as many warm-up iterations); '
                        'with several --model names: iterations of each model a round')
    g.add_argument('--benchmark-rounds', type=int, default=3,
                   help='--benchmark with several comma-separated --model names: timed '
                        'rounds (after one warm-up round), each model in a new random order')
    g.add_argument('--test-io', action='store_true',
                   help='only read the data: decode throughput of the train and val pipelines')
    g.add_argument('--test-io-batches', type=int, default=50,
                   help='--test-io: batches timed per pipeline (running on into further '
                        'epochs of a small set)')
    add_training_args(parser)
    parser.set_defaults(dataset='imagenet')
    for action in parser._actions:       # the trainers' kvstore list, and NCCL for GPUs
        if action.dest == 'kvstore':
            action.choices = KVSTORES
            action.help = ('gradient aggregation: device, local, nccl (GPUs); dist_sync, '
                           'dist_device_sync across processes and machines (launch with python '
                           '-m cmpese.training.launch or MXNet\'s tools/launch.py)')
    return parser


def _classes(args):
    """--classes, else the synset.txt beside --rec-train, else 1000."""
    from cmpese.data.imagenet import read_synset
    if args.classes:
        return args.classes, '--classes'
    if args.rec_train:
        names = read_synset(os.path.join(os.path.dirname(os.path.abspath(args.rec_train)),
                                         'synset.txt'))
        if names:
            return len(names), 'synset.txt beside --rec-train'
    return 1000, 'ImageNet'


def _max_label(rec):
    """The largest label of the im2rec .lst beside ``rec`` (None without one)."""
    lst = os.path.splitext(rec)[0] + '.lst'
    if not os.path.isfile(lst):
        return None
    top = None
    with open(lst) as f:
        for line in f:
            parts = line.split('\t')
            if len(parts) >= 3:
                value = float(parts[1])
                top = value if top is None else max(top, value)
    return top


def _check_args(args, explicit, ConfigError):
    """What argparse cannot check: needed flags, ranges, combinations."""
    if args.test_io:
        if not args.rec_train and not args.rec_val:
            raise ConfigError('--test-io reads the data: give --rec-train and/or --rec-val')
        return
    if not args.model:
        raise ConfigError('--model is required (e.g. --model se_resnet50); cmpese.'
                          'get_model_list() lists the names')
    if ',' in args.model and not args.benchmark:
        raise ConfigError('--model takes one name (several, comma-separated, only with '
                          '--benchmark, which then compares them); got %s' % args.model)
    if not args.benchmark:
        for flag, value in (('--rec-train', args.rec_train), ('--rec-val', args.rec_val)):
            if not value:
                raise ConfigError('%s is required (a RecordIO file made by python -m '
                                  'mxnet.tools.im2rec; docs/imagenet.md), or pass --benchmark '
                                  'for synthetic data' % flag)
    checks = [('--classes', args.classes is None or args.classes >= 2, 'an integer >= 2'),
              ('--input-size', args.input_size >= 16, 'an integer >= 16'),
              ('--data-nthreads', args.data_nthreads >= 1, 'an integer >= 1'),
              ('--label-smoothing', 0 <= args.label_smoothing < 1, 'in [0, 1)'),
              ('--warmup-epochs', args.warmup_epochs >= 0, 'an integer >= 0'),
              ('--benchmark-batches', args.benchmark_batches >= 1, 'an integer >= 1'),
              ('--benchmark-rounds', args.benchmark_rounds >= 1, 'an integer >= 1'),
              ('--min-random-area', 0 < args.min_random_area <= args.max_random_area <= 1,
               'in (0, --max-random-area], with --max-random-area <= 1'),
              ('--min-aspect-ratio', 0 < args.min_aspect_ratio <= args.max_aspect_ratio,
               'in (0, --max-aspect-ratio]'),
              ('--max-rotate-angle', 0 <= args.max_rotate_angle <= 180, 'in [0, 180]'),
              ('--pca-noise', args.pca_noise >= 0, '>= 0')]
    for flag, ok, what in checks:
        if not ok:
            raise ConfigError('%s must be %s, got %s' % (
                flag, what, getattr(args, flag[2:].replace('-', '_'))))
    if args.dtype == 'float16' and not args.gpus:
        raise ConfigError('--dtype float16 needs --gpus: MXNet 1.9.1 has no float16 GEMM on '
                          'the CPU ("FP16 gemm on cpu not implemented"); on a CPU use --dtype '
                          'bfloat16 or float32')
    if args.dtype == 'bfloat16' and args.gpus:
        raise ConfigError('--dtype bfloat16 runs on the CPU (MXNet AMP with oneDNN); on GPUs '
                          'use --dtype float16')
    if args.kvstore == 'nccl' and not args.gpus:
        raise ConfigError('--kvstore nccl aggregates over GPUs: give --gpus, or use --kvstore '
                          'device')


def _scale_lr(cfg, explicit, preset_batch, log=None):
    """Linear scaling rule (Goyal et al. 2017): a global batch other than the preset's
    scales the preset's learning rate by batch / preset batch, unless --lr is given."""
    if 'lr' in explicit or cfg['batch_size'] == preset_batch:
        return None
    base = cfg['lr']
    cfg['lr'] = base * cfg['batch_size'] / float(preset_batch)
    note = ('learning rate scaled linearly with the global batch: %.4g x %d / %d = %.4g '
            '(preset %s: batch %d, lr %.4g; pass --lr to set it)' % (
                base, cfg['batch_size'], preset_batch, cfg['lr'], cfg['preset'],
                preset_batch, base))
    cfg['lr_scaling'] = note
    return note


def _loaders(cfg, kv, ctx):
    """(train loader, val loader) of this worker: training sharded over the workers,
    validation whole on each worker."""
    from cmpese.data.imagenet import RecordLoader
    workers, rank = (kv.num_workers, kv.rank) if kv is not None else (1, 0)
    local = cfg['batch_size'] // workers
    dtype = 'float16' if cfg['dtype'] == 'float16' else 'float32'
    pinned = any(c.device_type == 'gpu' for c in ctx)
    common = dict(input_size=cfg['input_size'], mean=cfg['mean'], std=cfg['std'],
                  seed=cfg['seed'], threads=cfg['data_nthreads'], pinned=pinned, dtype=dtype)
    train = None
    if cfg.get('rec_train'):
        train = RecordLoader(cfg['rec_train'], cfg.get('rec_train_idx'), local, train=True,
                             num_parts=workers, part_index=rank, classes=cfg['classes'],
                             min_area=cfg['min_random_area'], max_area=cfg['max_random_area'],
                             min_aspect=cfg['min_aspect_ratio'],
                             max_aspect=cfg['max_aspect_ratio'], flip=cfg['flip'],
                             rotate=cfg['max_rotate_angle'],
                             hsl_jitter=[int(v) for v in cfg['hsl_jitter']],
                             pca_noise=cfg['pca_noise'],
                             label_smoothing=cfg['label_smoothing'], **common)
    val = None
    if cfg.get('rec_val'):
        val = RecordLoader(cfg['rec_val'], cfg.get('rec_val_idx'), local, train=False,
                           flag='--rec-val', **common)
    return train, val


def test_io(cfg, log):
    """--test-io: decode throughput of each pipeline; returns the figures."""
    from cmpese.data.imagenet import measure_io
    train, val = _loaders(dict(cfg, classes=cfg['classes']), None, [mx.cpu()])
    out = {}
    for name, loader in (('train', train), ('val', val)):
        if loader is None:
            continue
        r = measure_io(loader, batches=cfg['test_io_batches'])
        out[name] = r
        log.info('%s pipeline (%s): %d images in %.2f s = %.1f images/s (%d batches of %d over '
                 '%d epoch(s), %d decoding thread(s), %dx%d%s)', name,
                 os.path.basename(loader.rec), r['images'], r['seconds'], r['images_per_sec'],
                 r['batches'], loader.batch_size, r['epochs'], loader.threads,
                 loader.input_size, loader.input_size,
                 ', random-resized crop + flip' if name == 'train' else
                 ', short side %d + centre crop' % loader.resize)
    return out


def compare_models(names, cfg, ctx, model_args, stream=None):
    """``--benchmark`` with several models: their training steps interleaved in one process.

    Every model is built, initialized from the same seed, hybridized and given the
    optimizer of the run's configuration (``make_trainer`` of the fit loop); each makes one
    untimed step (graph building). Then, for one warm-up round and ``benchmark_rounds``
    timed rounds, in a new seeded random order each round, every model runs
    ``benchmark_batches`` steps on the same synthetic batch: forward under
    ``autograd.record()``, softmax cross-entropy, backward, ``trainer.step``, ``waitall``.
    On a shared machine the load then hits all models alike. Returns ``{name: [seconds a
    step, per round]}`` and prints each model's median, minimum and ratio to the first.
    """
    import random
    import time
    import numpy as np
    from mxnet import autograd, gluon
    from cmpese.training.cli import build_model
    from cmpese.training.fit import make_trainer
    stream = stream or sys.stdout
    size, batch = cfg['input_size'], cfg['batch_size']
    rng = np.random.RandomState(cfg['seed'])
    x = mx.nd.array(rng.normal(size=(batch, 3, size, size)), dtype='float32')
    y = mx.nd.array(np.arange(batch) % cfg['classes'], dtype='float32')
    xs = gluon.utils.split_and_load(x, ctx, even_split=False)
    ys = gluon.utils.split_and_load(y, ctx, even_split=False)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    models = []
    for name in names:
        net = build_model(name, cfg['classes'], model_args)
        mx.random.seed(cfg['seed'])
        net.initialize(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2),
                       ctx=ctx)
        net.hybridize(static_alloc=True, static_shape=True)
        trainer, _ = make_trainer(net, cfg, 1000, cfg['epochs'] or 100, 'device')
        models.append((name, net, trainer))

    def step(net, trainer):
        with autograd.record():
            losses = [loss_fn(net(xi), yi) for xi, yi in zip(xs, ys)]
        autograd.backward(losses)
        trainer.step(batch)
        mx.nd.waitall()

    for _, net, trainer in models:
        step(net, trainer)
    times = {name: [] for name in names}
    for r in range(cfg['benchmark_rounds'] + 1):
        order = list(range(len(models)))
        random.Random(cfg['seed'] * 1000 + r).shuffle(order)
        for i in order:
            name, net, trainer = models[i]
            tic = time.time()
            for _ in range(cfg['benchmark_batches']):
                step(net, trainer)
            if r > 0:
                times[name].append((time.time() - tic) / cfg['benchmark_batches'])
    base = float(np.median(times[names[0]]))
    stream.write('benchmark, training steps interleaved: %d rounds x %d steps a model after a '
                 'warm-up round; batch %d, %dx%d, %s, %s, OMP_NUM_THREADS=%s\n' % (
                     cfg['benchmark_rounds'], cfg['benchmark_batches'], batch, size, size,
                     cfg['dtype'], ctx, os.environ.get('OMP_NUM_THREADS', '?')))
    width = max(len(n) for n in names)
    for name in names:
        med = float(np.median(times[name]))
        stream.write('  %-*s  median %.4f s a step (min %.4f), %.1f images/s, %.3fx %s\n' % (
            width, name, med, min(times[name]), batch / med, med / base, names[0]))
    stream.flush()
    return times


def _cast_for_dtype(net, cfg):
    if cfg['dtype'] == 'float16':
        net.cast('float16')      # Gluon's BatchNorm keeps float32 parameters


def main(argv=None):
    """The command line (``argv`` without the program name); returns the exit code. Errors
    are raised (UserError and friends): run it through :func:`cmpese.errors.run`."""
    argv = sys.argv[1:] if argv is None else argv
    from cmpese.training import fit
    from cmpese.training.checkpoint import refuse_existing_run
    from cmpese.training.cli import (ConfigError, build_model, check_resume_config,
                                     check_save_dir, contexts, explicit_keys, make_save_dir,
                                     parse_model_args, print_config, resolve_config,
                                     save_config)
    from cmpese.training.kvstore import create_kvstore, dist_environment
    from cmpese.training.presets import get_preset
    from cmpese.training.report import setup_logging

    # 1. everything the user gave is checked before anything is written
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_keys(parser, argv)
    _check_args(args, explicit, ConfigError)
    classes, classes_from = _classes(args)
    if args.test_io:
        setup_logging(None)
        cfg = dict(vars(args), classes=classes, batch_size=args.batch_size or 64)
        cfg.pop('debug', None)
        test_io(cfg, logging.getLogger('cmpese.train'))
        return 0
    if not args.model:
        raise ConfigError('--model is required')
    names = [n.strip() for n in args.model.split(',') if n.strip()]
    if len(names) > 1:       # --benchmark comparing models: the first one's preset
        args.model = names[0]
    cfg = resolve_config(args, explicit)
    lr_note = _scale_lr(cfg, explicit, get_preset(cfg['preset'])['batch_size'])
    cfg['classes'], cfg['classes_from'] = classes, classes_from
    if args.resume:
        # where the files are and how many threads decode them may change on resume
        given, moved = dict(cfg), explicit & set(RESUME_RUNTIME_KEYS)
        cfg = check_resume_config(cfg, explicit - moved, cfg['save_dir'])
        cfg.update({k: given[k] for k in moved})
    model_args = parse_model_args(cfg['model_args'])
    ctx = contexts(cfg['gpus'], cfg['cpus'])
    workers = 1
    if 'dist' in cfg['kvstore']:
        workers = dist_environment(cfg['kvstore'])[2]
    if cfg['batch_size'] % (workers * len(ctx)):
        raise ConfigError('--batch-size %d cannot be split evenly over %d worker(s) x %d '
                          'device(s): pass a multiple of %d' % (
                              cfg['batch_size'], workers, len(ctx), workers * len(ctx)))
    if cfg['print_config']:
        print_config(cfg)
        return 0
    if len(names) > 1:
        if 'dist' in cfg['kvstore']:
            raise ConfigError('--benchmark with several models runs in one process; drop '
                              '--kvstore %s' % cfg['kvstore'])
        setup_logging(None)
        print_config(cfg, sys.stderr)
        if lr_note:
            logging.getLogger('cmpese.train').info('%s', lr_note)
        if cfg['dtype'] == 'bfloat16':
            from mxnet.contrib import amp
            amp.init(target_dtype='bfloat16')
        compare_models(names, cfg, ctx, model_args)
        return 0
    if not cfg['benchmark']:
        from cmpese.data.imagenet import record_paths
        record_paths(cfg['rec_train'], cfg.get('rec_train_idx'), flag='--rec-train')
        record_paths(cfg['rec_val'], cfg.get('rec_val_idx'), flag='--rec-val', need_idx=False)
        top = _max_label(cfg['rec_train'])
        if top is not None and top >= cfg['classes']:
            raise ConfigError('--rec-train %s has labels up to %d (its .lst) but the model gets '
                              '%d classes (%s): pass --classes %d' % (
                                  cfg['rec_train'], top, cfg['classes'], cfg['classes_from'],
                                  int(top) + 1))
    save_dir = cfg['save_dir']
    if cfg['benchmark']:          # a throw-away run directory
        save_dir = cfg['save_dir'] = tempfile.mkdtemp(prefix='cmpese-benchmark-')
    check_save_dir(save_dir)
    if not args.resume:
        refuse_existing_run(save_dir)

    setup_logging(None)
    log = logging.getLogger('cmpese.train')
    if cfg['dtype'] == 'bfloat16':
        # MXNet AMP: casts inserted around every operator of its bfloat16 lists (oneDNN);
        # must run before the network is built. Parameters and the update stay float32.
        from mxnet.contrib import amp
        amp.init(target_dtype='bfloat16')
    net = build_model(cfg['model'], cfg['classes'], model_args)   # a wrong name fails first
    if cfg['benchmark']:
        from cmpese.data.imagenet import SyntheticLoader
        local = cfg['batch_size'] // workers
        dtype = 'float16' if cfg['dtype'] == 'float16' else 'float32'
        train_data = SyntheticLoader(local, cfg['input_size'], cfg['classes'],
                                     cfg['benchmark_batches'], seed=cfg['seed'], dtype=dtype)
        val_data = SyntheticLoader(local, cfg['input_size'], cfg['classes'], 1, train=False,
                                   dtype=dtype)
        kv = create_kvstore(cfg['kvstore'], cfg['dist_timeout'])
    else:
        kv = create_kvstore(cfg['kvstore'], cfg['dist_timeout'])
        try:
            train_data, val_data = _loaders(cfg, kv, ctx)
        except ValueError as err:       # e.g. fewer records a worker than one batch
            raise ConfigError('--batch-size %d: %s' % (cfg['batch_size'], err))
    dist = 'dist' in kv.type

    # 2. the run directory
    make_save_dir(save_dir)
    setup_logging(os.path.join(save_dir, 'train.log' if kv.rank == 0 else
                               'train-worker%d.log' % kv.rank))
    if kv.rank == 0:
        if not args.resume or cfg.get('resume_changes'):
            save_config(cfg, save_dir)
        print_config(cfg, sys.stderr)
    if lr_note and not args.resume:
        log.info('%s', lr_note)
    for change in cfg.get('resume_changes') or ():
        log.info('resumed with a change: %s', change)
    if cfg['benchmark']:
        log.info('benchmark: synthetic %dx%d data, %d warm-up + %d timed iterations of batch '
                 '%d a worker; %s on %s', cfg['input_size'], cfg['input_size'],
                 cfg['benchmark_batches'], cfg['benchmark_batches'], cfg['batch_size'] // workers,
                 cfg['model'], ctx)
    else:
        log.info('%s: %d train records, %d in this worker\'s shard, %d batches of %d an '
                 'epoch; %s: %d records; %d classes (%s); %s on %s%s',
                 os.path.basename(cfg['rec_train']), train_data.num_records,
                 train_data.part_records[train_data.part_index], len(train_data),
                 train_data.batch_size, os.path.basename(cfg['rec_val']), val_data.num_records,
                 cfg['classes'], cfg['classes_from'], cfg['model'], ctx,
                 ' (worker %d of %d)' % (kv.rank, kv.num_workers) if dist else '')

    # 3. train
    mx.random.seed(cfg['seed'])
    net.initialize(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2), ctx=ctx)
    _cast_for_dtype(net, cfg)
    net.hybridize(static_alloc=True, static_shape=True)
    input_shape = (1, 3, cfg['input_size'], cfg['input_size'])
    export_prefix = os.path.join(save_dir, 'export', cfg['model']) \
        if cfg['export'] and not cfg['benchmark'] else None
    # float16: exported as float32 after training (the fit loop exports with float32 input)
    fit_export = None if cfg['dtype'] == 'float16' else export_prefix
    run_cfg = dict(cfg)
    if cfg['benchmark']:      # one warm-up epoch, one timed epoch, a checkpoint at the end only
        run_cfg.update(epochs=2, iterations=None, lr_steps=[], lr_steps_frac=None,
                       lr_steps_iter=None, save_every=0, keep_checkpoints=1, mixup=False)
    try:
        state = fit(net, train_data, val_data, run_cfg, ctx, save_dir, kvstore=kv,
                    resume=cfg['resume'], progress=cfg['progress'],
                    export_prefix=fit_export, input_shape=input_shape)
        if export_prefix and fit_export is None and kv.rank == 0:
            from cmpese.tools.export import export_model
            net.cast('float32')
            sym, params = export_model(net, export_prefix, input_shape, ctx=ctx[0])
            log.info('exported %s and %s (cast to float32)', sym, params)
    finally:
        if cfg['benchmark'] and kv.rank == 0:
            shutil.rmtree(save_dir, ignore_errors=True)
    if cfg['benchmark']:
        timed = state['history'][-1]
        per_iter = timed['time'] / cfg['benchmark_batches']
        sys.stdout.write('benchmark %s: %.4f s an iteration, %.1f images/s (global batch %d, '
                         '%dx%d, %s, %d device(s) x %d worker(s))\n' % (
                             cfg['model'], per_iter, timed['images_per_sec'], cfg['batch_size'],
                             cfg['input_size'], cfg['input_size'], cfg['dtype'], len(ctx),
                             workers))
    elif cfg.get('record_result') and kv.rank == 0:
        from cmpese.training.report import record_result
        record_result(save_dir, log)
    return 0


if __name__ == '__main__':
    from cmpese.errors import run
    sys.exit(run(main, prog='train_imagenet.py'))
