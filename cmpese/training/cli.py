"""Command-line plumbing shared by the trainers: arguments, the resolved configuration
(preset + explicit overrides), resume checks, devices and kvstore."""
import argparse
import json
import os
import sys

import mxnet as mx

from .checkpoint import atomic_write
from .presets import default_preset, get_preset, preset_names

__all__ = ['add_training_args', 'explicit_keys', 'resolve_config', 'contexts', 'save_config',
           'check_resume_config', 'RUNTIME_KEYS', 'ConfigError']

# Keys a resumed run may change: where things are and how the run is executed, not what is
# computed.
RUNTIME_KEYS = ('data_dir', 'gpus', 'cpus', 'progress', 'export', 'resume', 'save_every',
                'keep_checkpoints', 'download', 'log_file', 'data_prefetch', 'print_config')

# Training values a preset provides (overridable).
PRESET_KEYS = ('optimizer', 'momentum', 'wd', 'batch_size', 'lr', 'epochs', 'iterations',
               'lr_steps', 'lr_steps_frac', 'lr_steps_iter', 'lr_factor')


class ConfigError(ValueError):
    """A configuration that cannot run, with what to change."""


def _int_list(text):
    try:
        return [float(v) if '.' in v else int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('expected comma-separated numbers, got %r' % text)


def add_training_args(parser):
    """The options every trainer has (schedule, optimizer, mixup, devices, checkpoints)."""
    g = parser.add_argument_group('schedule (defaults from --preset)')
    g.add_argument('--preset', choices=preset_names(),
                   help='a paper schedule; default: the one the papers used for --model on '
                        '--dataset (printed at start)')
    g.add_argument('--epochs', type=int, help='number of epochs')
    g.add_argument('--iterations', type=int,
                   help='train for this many iterations instead (rounded up to whole epochs)')
    g.add_argument('--batch-size', type=int, help='global batch size (all devices, all workers)')
    g.add_argument('--lr', type=float, help='initial learning rate')
    g.add_argument('--lr-steps', type=_int_list,
                   help='epochs after which the rate is multiplied by --lr-factor, e.g. 60,120,160')
    g.add_argument('--lr-steps-iter', type=_int_list,
                   help='the same in iterations, e.g. 32000,48000')
    g.add_argument('--lr-factor', type=float, help='rate multiplier at each step (0.1, 0.2)')
    g.add_argument('--optimizer', choices=('sgd', 'nag'), help='sgd (momentum) or nag (Nesterov)')
    g.add_argument('--momentum', type=float)
    g.add_argument('--wd', type=float, help='weight decay')
    g = parser.add_argument_group('mixup')
    g.add_argument('--mixup', action='store_true', help='train with mixup (Zhang et al. 2018)')
    g.add_argument('--mixup-alpha', type=float, default=1.0, help='Beta(alpha, alpha) (1.0)')
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
                        'mxnet/tools/launch.py or DMLC_* variables)')
    g = parser.add_argument_group('run')
    g.add_argument('--save-dir', help='checkpoints, log, metrics (default runs/<model>-<dataset>)')
    g.add_argument('--save-every', type=int, default=1, help='checkpoint every N epochs (1)')
    g.add_argument('--keep-checkpoints', type=int, default=2, help='checkpoints kept (2)')
    g.add_argument('--resume', action='store_true',
                   help='continue the run in --save-dir from its last checkpoint')
    g.add_argument('--export', action='store_true',
                   help='write the trained model as symbol JSON + params at the end')
    g.add_argument('--seed', type=int, default=0, help='makes a run repeatable (0)')
    g.add_argument('--no-progress', dest='progress', action='store_false',
                   help='no tqdm progress bar')
    g.add_argument('--print-config', action='store_true',
                   help='print the resolved configuration and exit')
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


def resolve_config(args, explicit):
    """Preset values overridden by the explicitly given options; returns a plain dict."""
    cfg = dict(vars(args))
    preset = args.preset or default_preset(args.model, args.dataset)
    values = get_preset(preset)
    cfg['preset'] = preset
    cfg['preset_source'] = values.pop('source')
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
    if cfg['mixup'] and cfg['epochs'] and cfg['mixup_off_epochs'] >= cfg['epochs']:
        raise ConfigError('--mixup-off-epochs %d leaves no mixup epoch in a %d-epoch run; '
                          'lower it or raise --epochs' % (cfg['mixup_off_epochs'], cfg['epochs']))
    for key in ('batch_size', 'lr'):
        if not cfg[key] or cfg[key] <= 0:
            raise ConfigError('--%s must be positive, got %r' % (key.replace('_', '-'), cfg[key]))
    if not cfg.get('save_dir'):
        cfg['save_dir'] = os.path.join('runs', '%s-%s' % (args.model, args.dataset))
    return cfg


def save_config(cfg, save_dir):
    os.makedirs(save_dir, exist_ok=True)
    text = json.dumps(cfg, indent=1, sort_keys=True, default=str)

    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text + '\n')
    atomic_write(os.path.join(save_dir, 'config.json'), write)
    return os.path.join(save_dir, 'config.json')


def check_resume_config(cfg, explicit, save_dir):
    """The configuration to resume with: the saved one, plus runtime changes. Any other
    explicitly given value that differs from the saved run is an error (nothing is changed)."""
    path = os.path.join(save_dir, 'config.json')
    if not os.path.exists(path):
        raise ConfigError('--resume: %s does not exist, so there is no run to continue in %s. '
                          'Start it without --resume (or point --save-dir at the run).'
                          % (path, save_dir))
    with open(path) as f:
        saved = json.load(f)
    differ = []
    for key in sorted(explicit):
        if key in RUNTIME_KEYS or key == 'save_dir':
            continue
        if key in saved and saved[key] != cfg.get(key):
            differ.append('--%s: saved %r, given %r' % (key.replace('_', '-'), saved[key],
                                                         cfg.get(key)))
    if differ:
        raise ConfigError('--resume continues the run saved in %s, whose configuration differs '
                          'from the options given:\n  %s\nDrop those options (the saved values '
                          'are used) or start a new run in another --save-dir.'
                          % (path, '\n  '.join(differ)))
    out = dict(saved)
    for key in RUNTIME_KEYS:
        if key in explicit or key in ('resume', 'progress'):
            out[key] = cfg.get(key)
    out['save_dir'] = save_dir
    return out


def contexts(gpus='', cpus=0):
    """The device list from --gpus / --cpus (default: one CPU)."""
    if gpus:
        try:
            ids = [int(i) for i in str(gpus).split(',') if i.strip()]
        except ValueError:
            raise ConfigError('--gpus takes comma-separated ids such as 0,1; got %r' % gpus)
        if ids:
            available = mx.context.num_gpus()
            if available == 0:
                raise ConfigError('--gpus %s: this MXNet build or machine has no GPU (install '
                                  'the CUDA build, e.g. CMPESE_MXNET=mxnet-cu112==1.9.1, or use '
                                  '--cpus)' % gpus)
            bad = [i for i in ids if i >= available]
            if bad:
                raise ConfigError('--gpus %s: only %d GPU(s) exist' % (gpus, available))
            return [mx.gpu(i) for i in ids]
    return [mx.cpu(i) for i in range(cpus)] if cpus > 0 else [mx.cpu()]


def print_config(cfg, stream=None):
    stream = stream or sys.stdout
    keys = sorted(k for k in cfg if k != 'preset_source')
    width = max(len(k) for k in keys)
    stream.write('configuration (preset %s: %s)\n' % (cfg['preset'], cfg.get('preset_source')))
    for k in keys:
        stream.write('  %-*s %s\n' % (width, k, cfg[k]))
    stream.flush()
