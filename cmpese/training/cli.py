"""Command-line plumbing shared by the trainers: arguments, their validation (every range
check of every trainer option is in :data:`_RANGES` here), the resolved configuration
(preset + explicit overrides), resume checks, devices and the batch split, the model
options and the run directory.

Every problem with the user's input is a :class:`ConfigError` (a
:class:`cmpese.errors.UserError`) raised before anything is written, with a message that
names the flag, says what was expected and what to do; :func:`cmpese.errors.run` prints it
as one line and exits 2.
"""
import argparse
import json
import math
import os
import re
import sys
import tempfile

import mxnet as mx

from ..errors import ArgumentParser, ConfigError
from .checkpoint import RECORD, CheckpointError, atomic_write, latest_checkpoint, read_json
from .checkpoint import check_run_unlocked
from .kvstore import dist_environment
from .presets import default_preset, get_preset, preset_names

__all__ = ['add_training_args', 'explicit_keys', 'resolve_config', 'validate_args',
           'validate_config', 'contexts', 'check_batch_split', 'float_list', 'save_config',
           'check_resume_config',
           'parse_model_args', 'build_model', 'check_save_dir', 'make_save_dir',
           'check_data_dir', 'print_config', 'RUNTIME_KEYS', 'RESUME_CHANGEABLE', 'ConfigError',
           'ArgumentParser', 'HelpFormatter', 'resume_run_dir', 'fill_help_from_config',
           'ALIASES', 'LOG_INTERVAL']

# Keys a resumed run may change without notice: where things are and how the run is
# executed, not what is computed.
RUNTIME_KEYS = ('data_dir', 'gpus', 'cpus', 'progress', 'export', 'resume', 'save_every',
                'keep_checkpoints', 'download', 'data_prefetch', 'print_config',
                'dist_timeout', 'record_result', 'log_interval', 'export_from')

# Training values a resumed run may change on purpose (e.g. after a NaN stop); each change is
# printed, applied from the next update on, and recorded in config.json.
RESUME_CHANGEABLE = ('lr', 'momentum', 'wd', 'epochs', 'iterations', 'mixup', 'mixup_alpha',
                     'mixup_off_epochs')

# Training values a preset provides (overridable).
PRESET_KEYS = ('optimizer', 'momentum', 'wd', 'batch_size', 'lr', 'epochs', 'iterations',
               'lr_steps', 'lr_steps_frac', 'lr_steps_iter', 'lr_factor', 'warmup_epochs')

# The options of GluonCV's and timm's training scripts that mean what one of ours means:
# (their flag, ours, whose, a note). They are accepted as aliases (docs/training.md).
ALIASES = (
    ('--num-epochs', '--epochs', 'GluonCV', ''),
    ('--weight-decay', '--wd', 'timm (GluonCV: --wd)', ''),
    ('--log-interval', '--log-interval', 'GluonCV, timm', 'iterations between log lines'),
    ('--resume PATH', '--resume [PATH]', 'timm', 'a checkpoint file or a run directory'),
)

#: iterations between two log lines when no progress bar is drawn (GluonCV's and timm's
#: default --log-interval)
LOG_INTERVAL = 50

# The help of a schedule option ends with this sentence; with --model (and --dataset) on
# the command line, --help replaces it by the value (fill_help_from_config).
_FROM_PRESET = 'Default: from the preset.'


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with one default a flag: "(default: X)" is added only where it informs
    (not for switches, empty or unset values, nor where the help text already says its
    default in words)."""

    def _get_help_string(self, action):
        text = action.help or ''
        if '%(default)' in text or 'default' in text.lower():
            return text
        default = action.default
        if default is None or default is True or default is False or action.nargs == 0 or \
                default == '' or default == argparse.SUPPRESS:
            return text
        if not action.option_strings:
            return text
        return text + ' (default: %(default)s)'


def float_list(count, what='numbers', positive=False):
    """An argparse ``type``: ``count`` comma-separated finite numbers (e.g. R,G,B) as a list
    (as config.json stores it); ``positive``: each > 0 (a standard deviation divides every
    input)."""
    def parse(text):
        try:
            values = [float(v) for v in text.split(',')]
        except ValueError:
            values = []
        if len(values) != count:
            raise argparse.ArgumentTypeError('expected %d comma-separated %s, got %r'
                                             % (count, what, text))
        if not all(math.isfinite(v) for v in values):
            raise argparse.ArgumentTypeError('expected %d finite %s, got %r (NaN and inf would '
                                             'make every input NaN)' % (count, what, text))
        if positive and not all(v > 0 for v in values):
            raise argparse.ArgumentTypeError('expected %d %s > 0, got %r (every input is '
                                             'divided by them; 1,1,1 subtracts the mean only)'
                                             % (count, what, text))
        return values
    return parse


def _number_list(text):
    try:
        return [float(v) if '.' in v else int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('expected comma-separated numbers, got %r' % text)


def _alias(group, flag, action):
    """``flag`` as another name of ``action`` (same destination and type), kept out of the
    help (the option's own help names it) and named as itself in argparse's errors."""
    group.add_argument(flag, dest=action.dest, type=action.type, metavar=action.metavar,
                       help=argparse.SUPPRESS)


def add_training_args(parser):
    """The options every trainer has (schedule, optimizer, mixup, devices, checkpoints)."""
    g = parser.add_argument_group(
        'schedule', 'Each value comes from the preset (--preset, by default the papers\' '
        'schedule for --model on --dataset) unless given. --help after --model (and '
        '--dataset) shows the values; they are printed at the start of a run and by '
        '--print-config.')
    g.add_argument('--preset', choices=preset_names(),
                   help='a paper schedule. Default: the one the papers used for --model on '
                        '--dataset')
    g.add_argument('--force-preset', action='store_true',
                   help='train with a --preset made for other data (an ImageNet schedule on '
                        'small images, or the reverse), which is refused otherwise')
    epochs = g.add_argument('--epochs', type=int, metavar='N',
                            help='epochs to train (>= 1; also --num-epochs, GluonCV\'s name). '
                                 + _FROM_PRESET)
    _alias(g, '--num-epochs', epochs)
    g.add_argument('--iterations', type=int, metavar='N',
                   help='train for this many iterations instead of --epochs (rounded up to '
                        'whole epochs). ' + _FROM_PRESET)
    g.add_argument('--batch-size', type=int, metavar='N',
                   help='GLOBAL batch size: the sum over all devices and all workers, split '
                        'evenly between them (GluonCV\'s --batch-size is per device: multiply '
                        'it by the devices and workers). ' + _FROM_PRESET)
    g.add_argument('--lr', type=float, help='initial learning rate (> 0). ' + _FROM_PRESET)
    g.add_argument('--warmup-epochs', type=int, metavar='N',
                   help='raise the rate linearly from 0 to --lr over the first N epochs (He et '
                        'al.\'s warm-up for very deep nets; 0: none). ' + _FROM_PRESET)
    g.add_argument('--lr-steps', type=_number_list, metavar='E1,E2,..',
                   help='epochs after which the rate is multiplied by --lr-factor, e.g. '
                        '60,120,160. ' + _FROM_PRESET)
    g.add_argument('--lr-steps-iter', type=_number_list, metavar='I1,I2,..',
                   help='the same in iterations, e.g. 32000,48000. ' + _FROM_PRESET)
    g.add_argument('--lr-factor', type=float,
                   help='rate multiplier at each step, in (0, 1]. ' + _FROM_PRESET)
    g.add_argument('--optimizer', choices=('sgd', 'nag'),
                   help='sgd (momentum) or nag (Nesterov). ' + _FROM_PRESET)
    g.add_argument('--momentum', type=float, help='in [0, 1). ' + _FROM_PRESET)
    wd = g.add_argument('--wd', type=float,
                        help='weight decay (>= 0; also --weight-decay, timm\'s name). '
                             + _FROM_PRESET)
    _alias(g, '--weight-decay', wd)
    g = parser.add_argument_group('mixup')
    g.add_argument('--mixup', action='store_true',
                   help='train with mixup (Zhang et al. 2018); off unless given')
    g.add_argument('--no-mixup', dest='mixup', action='store_false',
                   help='train without mixup, the default; to switch it off when resuming a '
                        'mixup run')
    g.add_argument('--mixup-alpha', type=float, default=1.0, help='Beta(alpha, alpha), > 0')
    g.add_argument('--mixup-off-epochs', type=int, default=20,
                   help='last epochs trained without mixup (the CMPE-SE paper: 20). With a '
                        'preset schedule they are added after it, as the paper does')
    g = parser.add_argument_group('devices')
    g.add_argument('--gpus', default='', help='GPU ids, e.g. 0,1 (data parallel)')
    g.add_argument('--cpus', type=int, default=0,
                   help='N CPU contexts (data parallel on CPU; for testing)')
    g.add_argument('--kvstore', default='device',
                   choices=('device', 'local', 'dist_sync', 'dist_device_sync'),
                   help='gradient aggregation; dist_* across processes/machines (launch with '
                        'python -m cmpese.training.launch, mxnet/tools/launch.py or DMLC_* '
                        'variables)')
    g.add_argument('--dist-timeout', type=float, default=60.0,
                   help='dist_*: seconds to wait for the scheduler and the other nodes before '
                        'giving up')
    g = parser.add_argument_group('run')
    g.add_argument('--save-dir', help='checkpoints, log, metrics (default runs/<model>-<dataset>)')
    g.add_argument('--save-every', type=int, default=1,
                   help='checkpoint every N epochs (0: only at the end)')
    g.add_argument('--keep-checkpoints', type=int, default=2,
                   help='checkpoints kept (0: all)')
    g.add_argument('--resume', nargs='?', const=True, default=False, metavar='PATH',
                   help='continue a run from its newest intact checkpoint: alone, the run in '
                        '--save-dir; with PATH, that run directory or its newest checkpoint '
                        'file (checkpoint.json, epoch-NNNN.params/.states/.json; timm\'s '
                        '--resume FILE). --lr, --momentum, --wd, --epochs, --mixup* may be '
                        'changed')
    g.add_argument('--pretrained-backbone', metavar='FILE',
                   help='start from the backbone weights in FILE (a timm safetensors, GluonCV '
                        'or cmpese .params of a plain or SE ImageNet ResNet); the units and the '
                        'classifier start fresh. ImageNet ResNets only; not with --resume '
                        '(docs/weights.md)')
    g.add_argument('--export', action='store_true',
                   help='at the end, write the model of --export-from as symbol JSON + params '
                        'in <save-dir>/export, with its data config')
    g.add_argument('--export-from', choices=('best', 'last'), default='best',
                   help='--export: the epoch with the lowest test error (best.params) or the '
                        'last epoch')
    g.add_argument('--record-result', action='store_true',
                   help='when the run finishes, record its result against the paper table rows '
                        'it reproduces (as python -m cmpese.reproduce --collect; '
                        'docs/reproduce.md)')
    g.add_argument('--seed', type=int, default=0, help='makes a run repeatable (0 .. 2**32-1)')
    g.add_argument('--no-progress', dest='progress', action='store_false',
                   help='never draw the progress bar (it is drawn only when stderr is a '
                        'terminal; otherwise a line every --log-interval iterations is logged)')
    g.add_argument('--log-interval', type=int, default=LOG_INTERVAL, metavar='N',
                   help='without a progress bar: log the running loss, rate and images/s every '
                        'N iterations (0: only a line per epoch; GluonCV\'s and timm\'s flag)')
    g.add_argument('--print-config', action='store_true',
                   help='print the resolved configuration and exit')
    g.add_argument('--debug', action='store_true',
                   help='show the Python traceback of an error instead of one line')
    return parser


def explicit_keys(parser, argv):
    """The destinations the user set on the command line (not defaults)."""
    sentinel = object()
    probe = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != 'help':
            kwargs = dict(dest=action.dest, default=sentinel)
            if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                kwargs['action'] = 'store_const'
                kwargs['const'] = action.const
            else:
                kwargs['nargs'] = action.nargs
            probe.add_argument(*action.option_strings, **kwargs)
    ns, _ = probe.parse_known_args(argv)
    return {k for k, v in vars(ns).items() if v is not sentinel}


# ---------------------------------------------------------------- validation

def _flag(key):
    return '--' + key.replace('_', '-')


# key: (type, low, low inclusive, high, high inclusive, example). An option a trainer does
# not have is skipped (the ImageNet ones below, for train_cifar).
_RANGES = {
    'epochs': (int, 1, True, None, None, '200'),
    'iterations': (int, 1, True, None, None, '64000'),
    'batch_size': (int, 1, True, None, None, '128'),
    'lr': (float, 0, False, None, None, '0.1'),
    'lr_factor': (float, 0, False, 1, True, '0.1'),
    'momentum': (float, 0, True, 1, False, '0.9'),
    'wd': (float, 0, True, None, None, '1e-4'),
    'mixup_alpha': (float, 0, False, None, None, '1.0'),
    'mixup_off_epochs': (int, 0, True, None, None, '20'),
    'seed': (int, 0, True, 2 ** 32 - 1, True, '0'),
    'keep_checkpoints': (int, 0, True, None, None, '2'),
    'save_every': (int, 0, True, None, None, '1'),
    'cpus': (int, 0, True, None, None, '2'),
    'data_prefetch': (int, 0, True, None, None, '2'),
    'dist_timeout': (float, 0, False, None, None, '60'),
    'log_interval': (int, 0, True, None, None, '50'),
    'warmup_epochs': (int, 0, True, None, None, '1'),
    # train_imagenet
    'classes': (int, 2, True, None, None, '1000'),
    'input_size': (int, 16, True, None, None, '224'),
    'data_nthreads': (int, 1, True, None, None, '4'),
    'label_smoothing': (float, 0, True, 1, False, '0.1'),
    'benchmark_batches': (int, 1, True, None, None, '10'),
    'benchmark_rounds': (int, 1, True, None, None, '3'),
    'test_io_batches': (int, 1, True, None, None, '50'),
    'min_random_area': (float, 0, False, 1, True, '0.08'),
    'max_random_area': (float, 0, False, 1, True, '1.0'),
    'min_aspect_ratio': (float, 0, False, None, None, '0.75'),
    'max_aspect_ratio': (float, 0, False, None, None, '1.333'),
    'max_rotate_angle': (int, 0, True, 180, True, '10'),
    'pca_noise': (float, 0, True, None, None, '0.1'),
}

# (low, high): ranges whose two ends are two options; low must not exceed high.
_ORDERED = (('min_random_area', 'max_random_area'), ('min_aspect_ratio', 'max_aspect_ratio'))


def _check_range(key, value):
    kind, low, low_in, high, high_in, example = _RANGES[key]
    if value is None:
        return
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)
    ok = finite and (kind is float or float(value).is_integer())
    if ok and low is not None:
        ok = value >= low if low_in else value > low
    if ok and high is not None:
        ok = value <= high if high_in else value < high
    if ok:
        return
    what = 'an integer' if kind is int else 'a finite number'
    bounds = []
    if low is not None:
        bounds.append(('>= %s' if low_in else '> %s') % low)
    if high is not None:
        bounds.append(('<= %s' if high_in else '< %s') % high)
    raise ConfigError('%s must be %s %s, got %r. Pass e.g. %s %s.'
                      % (_flag(key), what, ' and '.join(bounds), value, _flag(key), example))


def validate_args(args, explicit):
    """Ranges of every numeric option that ``args`` has, and the contradictions between
    explicitly given options; raises :class:`ConfigError` naming the flag."""
    for key in _RANGES:
        if hasattr(args, key):
            _check_range(key, getattr(args, key))
    for low, high in _ORDERED:
        if hasattr(args, low) and getattr(args, low) > getattr(args, high):
            raise ConfigError('%s %s is larger than %s %s: the range is [%s, %s]; swap them or '
                              'change one' % (_flag(low), getattr(args, low), _flag(high),
                                              getattr(args, high), _flag(low), _flag(high)))
    _check_normalization(args)
    for key in ('lr_steps', 'lr_steps_iter'):
        steps = getattr(args, key, None)
        for v in steps or ():
            if not (math.isfinite(v) and v >= 0) or (key == 'lr_steps_iter' and v != int(v)):
                raise ConfigError('%s takes %s >= 0, got %s'
                                  % (_flag(key), 'iteration counts' if key == 'lr_steps_iter'
                                     else 'epoch numbers', ','.join(map(str, steps))))
    pairs = [('epochs', 'iterations', 'the run length is set by one of them'),
             ('lr_steps', 'lr_steps_iter', 'the rate steps are given in epochs or in '
                                           'iterations, not both')]
    for a, b, why in pairs:
        if a in explicit and b in explicit:
            raise ConfigError('%s and %s were both given, but %s: drop one.'
                              % (_flag(a), _flag(b), why))
    if 'gpus' in explicit and 'cpus' in explicit and getattr(args, 'gpus', '') and \
            getattr(args, 'cpus', 0):
        raise ConfigError('--gpus %s and --cpus %s were both given; a run uses GPUs or CPU '
                          'contexts, not both: drop one.' % (args.gpus, args.cpus))
    if not getattr(args, 'resume', False) and not getattr(args, 'mixup', False):
        for key in ('mixup_alpha', 'mixup_off_epochs'):
            if key in explicit:
                raise ConfigError('%s has no effect without --mixup: add --mixup or drop %s.'
                                  % (_flag(key), _flag(key)))
    backbone = getattr(args, 'pretrained_backbone', None)
    if backbone and getattr(args, 'resume', False):
        raise ConfigError('--pretrained-backbone %s and --resume were both given: a resumed run '
                          'continues from its checkpoint, which wins; drop --pretrained-backbone'
                          % backbone)
    if backbone and not os.path.isfile(backbone):
        raise ConfigError('--pretrained-backbone %s: no such file; pass a timm .safetensors, '
                          'a GluonCV or a cmpese .params file (docs/weights.md)' % backbone)
    if 'export_from' in explicit and not getattr(args, 'export', False) and \
            not getattr(args, 'resume', False):
        raise ConfigError('--export-from has no effect without --export: add --export or drop '
                          '--export-from.')


def _check_normalization(args):
    """``--mean`` finite (float_list checks it on the command line) and ``--std`` finite
    and > 0: inputs are divided by it."""
    for key, positive in (('mean', False), ('std', True)):
        values = getattr(args, key, None)
        if values is None:
            continue
        if all(math.isfinite(v) and (v > 0 or not positive) for v in values):
            continue
        raise ConfigError('%s must be 3 finite numbers%s (R,G,B in pixel units), got %s. Pass '
                          'e.g. %s %s (ImageNet\'s)%s.' % (
                              _flag(key), ' > 0' if positive else '',
                              ','.join('%g' % v for v in values), _flag(key),
                              '58.395,57.12,57.375' if positive else '123.675,116.28,103.53',
                              ', or 1,1,1 to subtract the mean only' if positive else ''))


# The presets made for ImageNet (224x224 crops of 1.28 M images); every other preset is a
# schedule for the small-image sets of train_cifar.py.
IMAGENET_PRESETS = ('senet', 'cmpe_imagenet', 'ini_imagenet')


def _check_preset_fits(preset, dataset):
    """Refuse an explicit ``--preset`` made for other data than ``dataset`` (see
    ``--force-preset``)."""
    imagenet_preset = preset in IMAGENET_PRESETS
    if imagenet_preset == (dataset == 'imagenet'):
        return
    values = get_preset(preset)
    schedule = 'batch %d, lr %g, %s' % (
        values['batch_size'], values['lr'], '%d epochs' % values['epochs'] if values.get('epochs')
        else '%d iterations' % values['iterations'])
    if imagenet_preset:
        from ..data import OFFICIAL_SIZES
        train = OFFICIAL_SIZES.get(dataset, {}).get('train')
        data = ('--dataset %s (%s training images of 32x32 or less%s)' % (
            dataset, '{:,}'.format(train) if train else 'small',
            ', %d batch%s of %d an epoch' % (
                max(1, train // values['batch_size']),
                '' if train // values['batch_size'] <= 1 else 'es', values['batch_size'])
            if train else ''))
        made = 'an ImageNet schedule (%s, for 1.28 M images of 224x224)' % schedule
        fix = 'the dataset\'s own preset (the default without --preset)'
    else:
        data = 'ImageNet-size RecordIO data'
        made = 'a schedule for small images (%s, for CIFAR-size sets)' % schedule
        fix = 'senet, cmpe_imagenet or ini_imagenet (the model\'s default without --preset)'
    raise ConfigError('--preset %s is %s, but the run trains on %s. Use %s, give the values '
                      'yourself (--batch-size, --lr, --epochs, ...), or add --force-preset to '
                      'train with it anyway.' % (preset, made, data, fix))


def validate_config(cfg):
    """Ranges of the resolved values (preset ones included) and the mixup epochs."""
    for key in _RANGES:
        if key in cfg:
            _check_range(key, cfg[key])
    if not cfg.get('epochs') and not cfg.get('iterations'):
        raise ConfigError('the configuration sets neither --epochs nor --iterations: pass one')
    if cfg.get('mixup') and cfg.get('epochs') and cfg['mixup_off_epochs'] >= cfg['epochs']:
        raise ConfigError('--mixup-off-epochs %d leaves no mixup epoch in a %d-epoch run; '
                          'lower it or raise --epochs' % (cfg['mixup_off_epochs'], cfg['epochs']))


def resolve_config(args, explicit):
    """Preset values overridden by the explicitly given options; returns a plain dict.
    Validates the options first (:func:`validate_args`)."""
    validate_args(args, explicit)
    cfg = dict(vars(args))
    cfg.pop('debug', None)
    try:
        preset = args.preset or default_preset(args.model, args.dataset)
    except (KeyError, ValueError) as err:
        raise ConfigError('--model %s: %s' % (args.model, str(err).strip('"')))
    force = cfg.pop('force_preset', False)     # how a preset was accepted: not a run value
    if args.preset and not force:
        _check_preset_fits(preset, getattr(args, 'dataset', None))
    values = get_preset(preset)
    cfg['preset'] = preset
    cfg['preset_source'] = values.pop('source')
    if isinstance(cfg.get('resume'), str):          # --resume PATH: a run or its checkpoint
        run_dir = resume_run_dir(cfg['resume'])
        if cfg.get('save_dir') and os.path.abspath(cfg['save_dir']) != os.path.abspath(run_dir):
            raise ConfigError('--resume %s continues the run in %s, but --save-dir %s was given: '
                              'drop one of them' % (cfg['resume'], run_dir, cfg['save_dir']))
        cfg['save_dir'], cfg['resume'] = run_dir, True
    for key in PRESET_KEYS:
        if key in explicit and getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if 'lr_steps' in explicit:
        values['lr_steps_frac'] = values['lr_steps_iter'] = None
    if 'lr_steps_iter' in explicit:
        values['lr_steps'] = values['lr_steps_frac'] = None
    if 'epochs' in explicit:
        values['iterations'] = None
    elif 'iterations' in explicit:
        values['epochs'] = None
    elif args.mixup and values.get('epochs') and args.mixup_off_epochs:
        # The CMPE-SE paper trains the schedule with mixup, then adds 20 epochs without it.
        values['epochs'] += args.mixup_off_epochs
    cfg.update(values)
    validate_config(cfg)
    if not cfg.get('save_dir'):
        cfg['save_dir'] = os.path.join('runs', '%s-%s' % (args.model, args.dataset))
    return cfg


# ---------------------------------------------------------------- config.json and resume

_CHECKPOINT_FILE = re.compile(r'^epoch-(\d+)\.(params|states|json)$')


def resume_run_dir(path):
    """The run directory that ``--resume PATH`` continues: ``path`` itself when it is a
    directory; the folder of ``path`` when it is that run's ``checkpoint.json`` or a file of
    its newest intact checkpoint (``epoch-NNNN.params`` / ``.states`` / ``.json``). Anything
    else is a :class:`ConfigError` saying what to pass."""
    if os.path.isdir(path):
        return path
    if not os.path.exists(path):
        raise ConfigError('--resume %s: no such run directory or checkpoint file; pass the run '
                          'directory (its --save-dir) or its checkpoint.json' % path)
    folder, name = os.path.split(path)
    folder = folder or '.'
    if name == RECORD:
        return folder
    m = _CHECKPOINT_FILE.match(name)
    if not m:
        raise ConfigError('--resume %s is not a checkpoint of a cmpese run: pass the run '
                          'directory or its checkpoint.json / epoch-NNNN.params (best.params '
                          'and exported files hold no optimizer state; to start a new run from '
                          'weights use --pretrained-backbone)' % path)
    record = latest_checkpoint(folder)
    epoch = int(m.group(1))
    if record is None or record['epoch'] != epoch:
        newest = ('its newest intact checkpoint is after epoch %d' % record['epoch']
                  if record else 'it holds no intact checkpoint')
        raise ConfigError('--resume %s: a run continues from its newest intact checkpoint, and %s '
                          'in %s. Pass --resume %s, or move the newer epoch-NNNN.* files out of '
                          'the directory to continue from epoch %d' % (path, newest, folder,
                                                                      folder, epoch))
    return folder

def save_config(cfg, save_dir):
    os.makedirs(save_dir, exist_ok=True)
    text = json.dumps({k: v for k, v in cfg.items() if k != 'resume_changes'}, indent=1,
                      sort_keys=True, default=str)

    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text + '\n')
    atomic_write(os.path.join(save_dir, 'config.json'), write)
    return os.path.join(save_dir, 'config.json')


def check_resume_config(cfg, explicit, save_dir):
    """The configuration to resume with: the saved one, plus runtime changes and the
    explicitly changed :data:`RESUME_CHANGEABLE` values (listed in ``'resume_changes'`` as
    ``'--lr 0.1 -> 0.01'``). Any other explicitly given value that differs from the saved
    run is an error (nothing is changed)."""
    path = os.path.join(save_dir, 'config.json')
    if not os.path.exists(path):
        raise ConfigError('--resume: %s does not exist, so there is no run to continue in %s. '
                          'Start it without --resume (or point --save-dir at the run).'
                          % (path, save_dir))
    try:
        saved = read_json(path, 'configuration of the run')
    except CheckpointError as err:
        raise ConfigError('--resume: %s. Restore it, or start a new run in another --save-dir.'
                          % err)
    for key in ('model', 'seed', 'batch_size', 'lr', 'optimizer'):
        if key not in saved:
            raise ConfigError('--resume: %s has no %r entry; it is not the config.json of a '
                              'cmpese run' % (path, key))
    differ, changes = [], []
    for key in sorted(explicit):
        if key in RUNTIME_KEYS or key in ('save_dir', 'debug'):
            continue
        if key in saved and saved[key] != cfg.get(key):
            if key in RESUME_CHANGEABLE:
                changes.append(key)
            else:
                differ.append('%s: saved %r, given %r' % (_flag(key), saved[key], cfg.get(key)))
    if differ:
        raise ConfigError('--resume continues the run saved in %s, whose configuration differs '
                          'from the options given:\n  %s\nDrop those options (the saved values '
                          'are used; %s may change) or start a new run in another --save-dir.'
                          % (path, '\n  '.join(differ),
                             ', '.join(_flag(k) for k in RESUME_CHANGEABLE)))
    out = dict(saved)
    out['resume_changes'] = []
    for key in changes:
        out['resume_changes'].append('%s %s -> %s' % (_flag(key), saved[key], cfg[key]))
        out[key] = cfg[key]
    if 'epochs' in changes:
        out['iterations'] = None
    if 'iterations' in changes:
        out['epochs'] = None
    for key in RUNTIME_KEYS:
        if key in explicit or key in ('resume', 'progress') or key not in out:
            out[key] = cfg.get(key)     # (a key missing: a config.json of an older cmpese)
    out['save_dir'] = save_dir
    if not out.get('mixup'):
        for key in ('mixup_alpha', 'mixup_off_epochs'):
            if key in explicit:
                raise ConfigError('%s has no effect: the run trains without mixup (add --mixup '
                                  'to switch it on)' % _flag(key))
    validate_config(out)
    if out['resume_changes']:
        out.setdefault('changed_on_resume', [])
        out['changed_on_resume'] = list(out['changed_on_resume']) + out['resume_changes']
    return out


# ---------------------------------------------------------------- devices, model, directories

def contexts(gpus='', cpus=0):
    """The device list from --gpus / --cpus (default: one CPU)."""
    if gpus:
        try:
            ids = [int(i) for i in str(gpus).split(',') if i.strip()]
        except ValueError:
            raise ConfigError('--gpus takes comma-separated ids such as 0,1; got %r' % gpus)
        if any(i < 0 for i in ids):
            raise ConfigError('--gpus takes ids >= 0 such as 0,1; got %r' % gpus)
        if ids:
            available = mx.context.num_gpus()
            if available == 0:
                raise ConfigError('--gpus %s: this MXNet build or machine has no GPU (install '
                                  'the CUDA build, e.g. CMPESE_MXNET=mxnet-cu112==1.9.1, or use '
                                  '--cpus)' % gpus)
            bad = [i for i in ids if i >= available]
            if bad:
                raise ConfigError('--gpus %s: only %d GPU(s) exist (ids 0..%d)'
                                  % (gpus, available, available - 1))
            return [mx.gpu(i) for i in ids]
    if cpus < 0:
        raise ConfigError('--cpus must be >= 0, got %d' % cpus)
    return [mx.cpu(i) for i in range(cpus)] if cpus > 0 else [mx.cpu()]


def check_batch_split(cfg, devices=1, per_device=False):
    """The number of workers (``DMLC_NUM_WORKER`` for a ``dist_*`` kvstore, else 1), after
    checking that the global ``--batch-size`` splits evenly over them (``per_device``: over
    the workers x ``devices``)."""
    role = os.environ.get('DMLC_ROLE')
    if role and 'dist' not in cfg['kvstore']:
        raise ConfigError('DMLC_ROLE=%s is set: this process was started as a node of a '
                          'distributed run, but --kvstore %s trains alone (every worker would '
                          'train its own copy into one --save-dir). Pass --kvstore dist_sync to '
                          'every worker, or unset the DMLC_* variables to train in one process.'
                          % (role, cfg['kvstore']))
    workers = dist_environment(cfg['kvstore'])[2] if 'dist' in cfg['kvstore'] else 1
    batch = cfg['batch_size']
    if per_device and batch % (workers * devices):
        raise ConfigError('--batch-size %d cannot be split evenly over %d worker(s) x %d '
                          'device(s): pass a multiple of %d' % (batch, workers, devices,
                                                               workers * devices))
    if not per_device and batch % workers:
        raise ConfigError('--batch-size %d cannot be split evenly over %d workers '
                          '(DMLC_NUM_WORKER): pass a multiple of %d' % (batch, workers, workers))
    return workers


def parse_model_args(text, flag='--model-args'):
    """The JSON object of ``--model-args`` as a dict; ``drop_rate`` must be in [0, 1)."""
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ConfigError('%s is not valid JSON (%s): give an object such as '
                          '\'{"drop_rate": 0.3}\'' % (flag, err))
    if not isinstance(value, dict):
        raise ConfigError('%s must be a JSON object such as \'{"drop_rate": 0.3}\', got %s'
                          % (flag, text))
    rate = value.get('drop_rate')
    if rate is not None and not (isinstance(rate, (int, float)) and not isinstance(rate, bool)
                                 and math.isfinite(rate) and 0 <= rate < 1):
        raise ConfigError('%s: drop_rate must be a number in [0, 1), got %r' % (flag, rate))
    return value


def build_model(name, classes, model_args, flag='--model-args'):
    """``cmpese.get_model(name, classes=classes, **model_args)`` with its errors named: an
    unknown model names ``--model`` (with the closest names), an option the builder does not
    take or a value it refuses names ``flag``."""
    import cmpese
    from ..model_zoo import get_model_list
    known = name.lower() in set(get_model_list())
    try:
        return cmpese.get_model(name, classes=classes, **model_args)
    except KeyError as err:
        raise ConfigError('--model: %s' % str(err).strip('"'))
    except (TypeError, ValueError, mx.base.MXNetError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if not model_args and not known:
            raise ConfigError('--model %s: %s' % (name, text))
        raise ConfigError('%s %s: %s cannot be built with these options (%s)'
                          % (flag, json.dumps(model_args), name, text))


def _nearest_existing(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_save_dir(save_dir, flag='--save-dir', busy=True):
    """Refuse a ``save_dir`` that is a file or cannot be created or written, without
    writing anything; with ``busy``, also one that another run holds
    (:func:`cmpese.training.checkpoint.check_run_unlocked`)."""
    if os.path.exists(save_dir) and not os.path.isdir(save_dir):
        raise ConfigError('%s %s is a file, not a directory; pass a directory (it is created '
                          'if missing)' % (flag, save_dir))
    base = _nearest_existing(save_dir)
    if not os.path.isdir(base):
        raise ConfigError('%s %s cannot be created: %s is a file, not a directory'
                          % (flag, save_dir, base))
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError('%s %s is not writable (%s: permission denied); choose a directory '
                          'you can write to' % (flag, save_dir, base))
    if busy and os.path.isdir(save_dir):
        check_run_unlocked(save_dir)


def make_save_dir(save_dir, flag='--save-dir'):
    """Create ``save_dir`` and check that a file can be written in it (the run's lock is
    taken after, by the caller: :func:`cmpese.training.checkpoint.lock_run_dir`)."""
    check_save_dir(save_dir, flag, busy=False)
    try:
        os.makedirs(save_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=save_dir):
            pass
    except OSError as err:
        raise ConfigError('%s %s cannot be written (%s); choose a directory you can write to'
                          % (flag, save_dir, err.strerror or err))


def check_data_dir(data_dir, flag='--data-dir'):
    """Refuse a ``data_dir`` that is a file or is not readable (a missing one is left to the
    dataset reader, which names every expected file)."""
    if data_dir is None or not os.path.exists(data_dir):
        return
    if not os.path.isdir(data_dir):
        raise ConfigError('%s %s is a file, not a directory; pass the directory that holds '
                          'the dataset files' % (flag, data_dir))
    if not os.access(data_dir, os.R_OK | os.X_OK):
        raise ConfigError('%s %s is not readable (permission denied); make it readable or '
                          'pass another directory' % (flag, data_dir))


def _help_value(key, cfg):
    value = cfg.get(key)
    if key == 'lr_steps' and value is None:
        if cfg.get('lr_steps_frac'):
            return 'at %s of the epochs' % ', '.join('%g%%' % (100 * f)
                                                     for f in cfg['lr_steps_frac'])
        if cfg.get('lr_steps_iter'):
            return 'none (the steps are in iterations)'
    if value is None:
        return 'not used'
    if isinstance(value, (list, tuple)):
        return ','.join('%g' % v for v in value) or 'none'
    if isinstance(value, float):
        return '%.4g' % value
    return str(value)


def fill_help_from_config(parser, cfg, explicit):
    """Write the values ``cfg`` resolves into the help of ``parser``'s schedule options (in
    place of their 'Default: from the preset' sentence), so that ``--help`` after ``--model``
    (and ``--dataset``) shows the preset's values."""
    for action in parser._actions:
        if not action.help or _FROM_PRESET not in action.help:
            continue
        key = action.dest
        if key in explicit:
            where = 'given'
        else:
            where = 'preset %s' % cfg['preset']
            if key == 'epochs' and cfg.get('mixup') and cfg.get('epochs'):
                where += ' + --mixup-off-epochs %d' % cfg['mixup_off_epochs']
            if key == 'lr' and cfg.get('lr_scaling'):
                where += ', scaled linearly to --batch-size %d' % cfg['batch_size']
        note = 'With these options: %s (%s).' % (_help_value(key, cfg), where)
        action.help = action.help.replace(_FROM_PRESET, note.replace('%', '%%'))


def print_config(cfg, stream=None):
    stream = stream or sys.stdout
    keys = sorted(k for k in cfg if k not in ('preset_source', 'resume_changes'))
    width = max(len(k) for k in keys)
    stream.write('configuration (preset %s: %s)\n' % (cfg['preset'], cfg.get('preset_source')))
    for k in keys:
        stream.write('  %-*s %s\n' % (width, k, cfg[k]))
    stream.flush()
