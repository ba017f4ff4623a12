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

This module holds what is particular to ImageNet (its options, the RecordIO files and
loaders, the linear learning-rate scaling, ``--benchmark`` and ``--test-io``); the run
itself is :class:`cmpese.training.run.Trainer`'s. Several comma-separated ``--model`` names
with ``--benchmark`` compare the models' training steps: that is
``benchmarks/bench_train_models.py`` of a source checkout (the root ``train_imagenet.py``
hands such a command line to it).
"""
import logging
import os
import shutil
import sys
import tempfile

from ..errors import ArgumentParser, ConfigError
from ..training.cli import HelpFormatter, add_training_args, float_list, validate_args
from ..training.run import Settled, Trainer

__all__ = ['build_parser', 'main', 'console', 'ImageNetTrainer', 'PROG', 'DTYPES', 'KVSTORES',
           'RESUME_RUNTIME_KEYS', 'model_names']

PROG = 'train_imagenet.py'
DTYPES = ('float32', 'float16', 'bfloat16')
# ImageNet options a resumed run may change (besides the trainers' RUNTIME_KEYS): the data
# files' locations and the decoding threads, not what is computed.
RESUME_RUNTIME_KEYS = ('rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx', 'data_nthreads')
KVSTORES = ('device', 'local', 'nccl', 'dist_sync', 'dist_device_sync')
COMPARE_SCRIPT = 'benchmarks/bench_train_models.py'

log = logging.getLogger('cmpese.train')


def build_parser(prog=PROG):
    from ..data.imagenet import IMAGENET_MEAN, IMAGENET_STD
    parser = ArgumentParser(
        prog=prog, description=__doc__.split('\n\n')[0], formatter_class=HelpFormatter)
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
    g.add_argument('--mean', type=float_list(3), default=list(IMAGENET_MEAN),
                   help='R,G,B mean subtracted, pixel units')
    g.add_argument('--std', type=float_list(3), default=list(IMAGENET_STD),
                   help='R,G,B standard deviation divided by, pixel units (1,1,1: the SENet '
                        'paper\'s mean subtraction only)')
    g.add_argument('--min-random-area', type=float, default=0.08,
                   help='random-resized crop: smallest fraction of the image area')
    g.add_argument('--max-random-area', type=float, default=1.0,
                   help='random-resized crop: largest fraction of the image area')
    g.add_argument('--min-aspect-ratio', type=float, default=3.0 / 4.0,
                   help='random-resized crop: smallest width / height (default: 3/4)')
    g.add_argument('--max-aspect-ratio', type=float, default=4.0 / 3.0,
                   help='random-resized crop: largest width / height (default: 4/3)')
    g.add_argument('--no-flip', dest='flip', action='store_false',
                   help='train without the random horizontal flip (on by default)')
    g.add_argument('--max-rotate-angle', type=int, default=0,
                   help='SENet extra: rotate by a random angle in [-v, v] degrees')
    g.add_argument('--hsl-jitter', type=float_list(3), default=[0, 0, 0],
                   help='SENet extra (colour jitter): random H,S,L offsets up to these '
                        'values (e.g. 36,50,50)')
    g.add_argument('--pca-noise', type=float, default=0.0,
                   help='AlexNet PCA lighting noise (e.g. 0.1)')
    g = parser.add_argument_group('ImageNet training')
    g.add_argument('--label-smoothing', type=float, default=0.0,
                   help='targets (1 - eps) one-hot + eps / classes')
    g.add_argument('--dtype', default='float32', choices=DTYPES,
                   help='float16: GPUs, multi-precision SGD; bfloat16: MXNet AMP (CPU)')
    g.add_argument('--benchmark', action='store_true',
                   help='train on synthetic data: the model\'s throughput, no data loading')
    g.add_argument('--benchmark-batches', type=int, default=10,
                   help='--benchmark: timed iterations (after as many warm-up iterations); '
                        'with several --model names: iterations of each model a round')
    g.add_argument('--benchmark-rounds', type=int, default=3,
                   help='--benchmark with several comma-separated --model names (%s): timed '
                        'rounds (after one warm-up round), each model in a new random order'
                        % COMPARE_SCRIPT)
    g.add_argument('--test-io', action='store_true',
                   help='only read the data: decode throughput of the train and val pipelines')
    g.add_argument('--test-io-batches', type=int, default=50,
                   help='--test-io: batches timed per pipeline (running on into further '
                        'epochs of a small set)')
    add_training_args(parser)
    parser.set_defaults(dataset='imagenet')
    for action in parser._actions:       # the trainers' kvstore list, and NCCL for GPUs
        if action.dest == 'lr':
            action.help = action.help.replace(
                '(> 0).', '(> 0); without it, the preset\'s rate scaled linearly when '
                '--batch-size differs from the preset\'s.')
        if action.dest == 'kvstore':
            action.choices = KVSTORES
            action.help = ('gradient aggregation: device, local, nccl (GPUs); dist_sync, '
                           'dist_device_sync across processes and machines (launch with python '
                           '-m cmpese.training.launch or MXNet\'s tools/launch.py)')
    return parser


def model_names(text):
    """The comma-separated ``--model`` names."""
    return [n.strip() for n in (text or '').split(',') if n.strip()]


def _classes(classes, rec_train):
    """``(count, where it comes from)``: --classes, else the synset.txt beside --rec-train,
    else 1000."""
    from ..data.imagenet import read_synset
    if classes:
        return classes, '--classes'
    if rec_train:
        names = read_synset(os.path.join(os.path.dirname(os.path.abspath(rec_train)),
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


def scale_lr(cfg, explicit, preset_batch):
    """Linear scaling rule (Goyal et al. 2017): a global batch other than the preset's
    scales the preset's learning rate by batch / preset batch, unless --lr is given. Sets
    ``cfg['lr']`` and ``cfg['lr_scaling']`` (the sentence logged); returns the sentence or
    None."""
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


def record_loaders(cfg, kv, ctx):
    """(train loader, val loader) of this worker: training sharded over the workers,
    validation whole on each worker (None for a file not given)."""
    from ..data.imagenet import RecordLoader
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
                           flag='--rec-val', classes=cfg['classes'], **common)
    return train, val


def test_io(cfg):
    """--test-io: decode throughput of each pipeline; returns the figures."""
    import mxnet as mx
    from ..data.imagenet import measure_io
    train, val = record_loaders(cfg, None, [mx.cpu()])
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


class ImageNetTrainer(Trainer):
    """ImageNet on RecordIO (or synthetic data with ``--benchmark``)."""

    resume_runtime_keys = RESUME_RUNTIME_KEYS
    batch_per_device = True

    def __init__(self, prog=PROG):
        self.prog = prog
        self.names = []          # the --model names (several: a comparison)
        self.devices = 1
        self.throwaway = None    # --benchmark: the temporary run directory made here

    def build_parser(self):
        return build_parser(self.prog)

    def check_args(self, args, explicit):
        if args.test_io:
            if not args.rec_train and not args.rec_val:
                raise ConfigError('--test-io reads the data: give --rec-train and/or --rec-val')
        else:
            if not args.model:
                raise ConfigError('--model is required (e.g. --model se_resnet50); cmpese.'
                                  'get_model_list() lists the names')
            self.names = model_names(args.model)
            if len(self.names) > 1 and not args.benchmark:
                raise ConfigError('--model takes one name (several, comma-separated, only with '
                                  '--benchmark, which then compares them); got %s' % args.model)
            if len(self.names) > 1:      # compared models: the first one's preset
                args.model = self.names[0]
            if not args.benchmark:
                for flag, value in (('--rec-train', args.rec_train),
                                    ('--rec-val', args.rec_val)):
                    if not value:
                        raise ConfigError('%s is required (a RecordIO file made by python -m '
                                          'mxnet.tools.im2rec; docs/imagenet.md), or pass '
                                          '--benchmark for synthetic data' % flag)
        validate_args(args, explicit)
        if args.test_io:
            return
        if args.dtype == 'float16' and not args.gpus:
            raise ConfigError('--dtype float16 needs --gpus: MXNet 1.9.1 has no float16 GEMM '
                              'on the CPU ("FP16 gemm on cpu not implemented"); on a CPU use '
                              '--dtype bfloat16 or float32')
        if args.dtype == 'bfloat16' and args.gpus:
            raise ConfigError('--dtype bfloat16 runs on the CPU (MXNet AMP with oneDNN); on '
                              'GPUs use --dtype float16')
        if args.kvstore == 'nccl' and not args.gpus:
            raise ConfigError('--kvstore nccl aggregates over GPUs: give --gpus, or use '
                              '--kvstore device')

    def other_mode(self, args, explicit):
        if not args.test_io:
            return None
        from ..training.report import setup_logging
        setup_logging(None)
        cfg = dict(vars(args), classes=_classes(args.classes, args.rec_train)[0],
                   batch_size=args.batch_size or 64)
        cfg.pop('debug', None)
        test_io(cfg)
        return 0

    def configure(self, cfg, explicit):
        from ..training.presets import get_preset
        scale_lr(cfg, explicit, get_preset(cfg['preset'])['batch_size'])
        cfg['classes'], cfg['classes_from'] = _classes(cfg['classes'], cfg['rec_train'])

    def prepare(self, cfg):
        if cfg['benchmark']:          # a throw-away run directory, nothing exported
            self.throwaway = cfg['save_dir'] = tempfile.mkdtemp(prefix='cmpese-benchmark-')
            cfg['export'] = False
            return
        from ..data.imagenet import record_paths
        record_paths(cfg['rec_train'], cfg.get('rec_train_idx'), flag='--rec-train')
        record_paths(cfg['rec_val'], cfg.get('rec_val_idx'), flag='--rec-val', need_idx=False)
        top = _max_label(cfg['rec_train'])
        if top is not None and top >= cfg['classes']:
            raise ConfigError('--rec-train %s has labels up to %d (its .lst) but the model gets '
                              '%d classes (%s): pass --classes %d' % (
                                  cfg['rec_train'], top, cfg['classes'], cfg['classes_from'],
                                  int(top) + 1))

    def loaders(self, cfg, data, kv, ctx):
        if cfg['benchmark']:
            from ..data.imagenet import SyntheticLoader
            local = cfg['batch_size'] // kv.num_workers
            dtype = 'float16' if cfg['dtype'] == 'float16' else 'float32'
            return (SyntheticLoader(local, cfg['input_size'], cfg['classes'],
                                    cfg['benchmark_batches'], seed=cfg['seed'], dtype=dtype),
                    SyntheticLoader(local, cfg['input_size'], cfg['classes'], 1, train=False,
                                    dtype=dtype))
        try:
            return record_loaders(cfg, kv, ctx)
        except ValueError as err:       # e.g. fewer records a worker than one batch
            raise ConfigError('--batch-size %d: %s' % (cfg['batch_size'], err))

    def describe(self, cfg, data, train, val, kv, ctx):
        if cfg.get('lr_scaling') and not cfg['resume']:
            log.info('%s', cfg['lr_scaling'])
        if cfg['benchmark']:
            log.info('benchmark: synthetic %dx%d data, %d warm-up + %d timed iterations of '
                     'batch %d a worker; %s on %s', cfg['input_size'], cfg['input_size'],
                     cfg['benchmark_batches'], cfg['benchmark_batches'],
                     cfg['batch_size'] // kv.num_workers, cfg['model'], ctx)
            return
        log.info('%s: %d train records, %d in this worker\'s shard, %d batches of %d an '
                 'epoch; %s: %d records; %d classes (%s); %s on %s%s',
                 os.path.basename(cfg['rec_train']), train.num_records,
                 train.part_records[train.part_index], len(train), train.batch_size,
                 os.path.basename(cfg['rec_val']), val.num_records, cfg['classes'],
                 cfg['classes_from'], cfg['model'], ctx,
                 ' (worker %d of %d)' % (kv.rank, kv.num_workers) if 'dist' in kv.type else '')

    def data_config(self, cfg, data):
        if cfg['benchmark']:
            return None
        from ..data.config import imagenet_config
        from ..data.imagenet import read_synset
        names = read_synset(os.path.join(os.path.dirname(os.path.abspath(cfg['rec_train'])),
                                         'synset.txt'))
        if names is not None and len(names) != cfg['classes']:
            log.warning('synset.txt beside --rec-train names %d classes, the model has %d: the '
                        'data config records no class names', len(names), cfg['classes'])
            names = None
        return imagenet_config(cfg['input_size'], cfg['mean'], cfg['std'], classes=names)

    def fit_config(self, cfg):
        if not cfg['benchmark']:
            return cfg
        # one warm-up epoch, one timed epoch, a checkpoint at the end only
        return dict(cfg, epochs=2, iterations=None, lr_steps=[], lr_steps_frac=None,
                    lr_steps_iter=None, save_every=0, keep_checkpoints=1, mixup=False)

    def train(self, settled):
        self.devices = len(settled.ctx)
        try:
            return super(ImageNetTrainer, self).train(settled)
        finally:
            if self.throwaway:
                shutil.rmtree(self.throwaway, ignore_errors=True)

    def finish(self, cfg, state, kv):
        if not cfg['benchmark']:
            return super(ImageNetTrainer, self).finish(cfg, state, kv)
        timed = state['history'][-1]
        sys.stdout.write('benchmark %s: %.4f s an iteration, %.1f images/s (global batch %d, '
                         '%dx%d, %s, %d device(s) x %d worker(s))\n' % (
                             cfg['model'], timed['time'] / cfg['benchmark_batches'],
                             timed['images_per_sec'], cfg['batch_size'], cfg['input_size'],
                             cfg['input_size'], cfg['dtype'], self.devices, kv.num_workers))


def main(argv=None, prog=PROG, compare=None):
    """The command line (``argv`` without the program name); returns the exit code. Errors
    are raised (:class:`cmpese.errors.UserError`): run it through :func:`cmpese.errors.run`.

    Several ``--model`` names with ``--benchmark`` call ``compare(trainer, settled)`` (the
    root train_imagenet.py passes ``benchmarks/bench_train_models.py``'s); without it they
    are refused with the command to run instead."""
    trainer = ImageNetTrainer(prog)
    settled = trainer.settle(argv)
    if not isinstance(settled, Settled):
        return settled
    if len(trainer.names) > 1:
        if compare is None:
            raise ConfigError('several --model names compare the models\' training steps: run '
                              'python %s with the same options from a source checkout (or '
                              'python train_imagenet.py there)' % COMPARE_SCRIPT)
        return compare(trainer, settled)
    return trainer.train(settled)


def console(prog='cmpese-train-imagenet'):
    """The ``cmpese-train-imagenet`` console script."""
    from . import console as run_console
    return run_console(main, prog)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.train_imagenet'))
