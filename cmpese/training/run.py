"""The run skeleton of the trainers' command lines: from ``argv`` to a finished run.

``cmpese.cli.train_cifar`` and ``cmpese.cli.train_imagenet`` are each a :class:`Trainer`
that gives its parser and its data; everything else happens here, once, in this order:

1. :meth:`Trainer.settle`, where nothing is written: parse; the trainer's own checks
   (:meth:`~Trainer.check_args`, the ranges are :func:`cli.validate_args`'); the preset
   resolved with the explicit options (:func:`cli.resolve_config`) and the trainer's
   additions (:meth:`~Trainer.configure`); ``--resume`` against the saved config.json;
   ``--model-args``, the devices, the batch split over the dist workers; ``--print-config``
   stops here.
2. :meth:`Trainer.train`: the trainer's input checks (:meth:`~Trainer.prepare`), the run
   directory checked (a new run never overwrites a checkpoint), the model built (a wrong name
   fails before any data is read), the data read, the kvstore created, the loaders made;
   only then the run directory, its log, config.json and data_config.json (what the model
   expects of an image: :meth:`~Trainer.data_config`), the network initialized (its backbone
   from ``--pretrained-backbone``), cast, hybridized, :func:`cmpese.training.fit.fit`, the
   ``--export`` of the best (or last) epoch with its data config, and the trainer's
   :meth:`~Trainer.finish` (``--record-result``).

In a run of several workers every log line starts with the worker's rank ("[worker 1/2]"),
and the lead worker (rank 0) alone writes the run's files and prints the summary.

A trainer overrides the hooks it needs; each hook's default does nothing (or the common
thing). ``cfg.get('dtype')`` is handled here for any trainer that has ``--dtype``: bfloat16
turns on MXNet AMP before the model is built, float16 casts the network and exports it as
float32.
"""
import collections
import logging
import os
import sys

import mxnet as mx

from ..errors import ConfigError, deferred_interrupts
from .checkpoint import (CheckpointError, checkpoint_clause, latest_checkpoint,
                         refuse_existing_run, write_errors)
from .checkpoint import lock_run_dir, remove_stale_temps
from .cli import (build_model, check_batch_split, check_resume_config, check_save_dir,
                  contexts, explicit_keys, fill_help_from_config, make_save_dir,
                  parse_model_args, print_config, resolve_config, save_config)
from .fit import fit, write_result
from .kvstore import create_kvstore
from .report import record_result, setup_logging

__all__ = ['Trainer', 'Settled', 'export_trained', 'exported_epoch', 'check_backbone_file',
           'load_backbone', 'enable_bfloat16']

log = logging.getLogger('cmpese.train')

Settled = collections.namedtuple('Settled', 'cfg ctx model_args workers')
Settled.__doc__ = """What :meth:`Trainer.settle` resolved: the configuration, the devices,
the ``--model-args`` dict and the number of dist workers (1 without a dist kvstore)."""


def _initializer():
    """The trainers' global initializer (the WRN paper's: MSRA, gaussian, fan-in)."""
    return mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)


def exported_epoch(state, source='best'):
    """``(epoch, test error, which)`` that ``--export-from source`` exports: the best epoch
    (lowest test error, best.params) or the last; ``which`` is 'best' or 'last' ('best' when
    the last epoch is the best)."""
    history = state.get('history') or []
    last = history[-1] if history else None
    best_epoch = state.get('best_epoch')
    if source == 'best' and best_epoch is not None:
        return best_epoch, state.get('best_error'), 'best'
    if last is None:
        return None, None, 'last'
    return last['epoch'], last['test_error'], 'last'


def _select_exported(net, cfg, save_dir, ctx, state):
    """Load the parameters of the epoch ``--export-from`` names into ``net`` (best.params,
    unless that is the last epoch, whose parameters are in memory); log and return
    ``dict(source, epoch, test_error)``."""
    source = cfg.get('export_from') or 'best'
    epoch, error, which = exported_epoch(state, source)
    history = state.get('history') or []
    last = history[-1] if history else None
    best = os.path.join(save_dir, 'best.params')
    if which == 'best' and last is not None and epoch != last['epoch']:
        if not os.path.isfile(best):
            raise ConfigError('--export-from best: %s is missing, so the best epoch (%d) cannot '
                              'be exported; pass --export-from last, or restore it' % (best,
                                                                                     epoch))
        net.load_parameters(best, ctx=ctx)
    if epoch is None:
        log.info('exporting the network as it is (no epoch was trained)')
    else:
        other = ''
        if last is not None and epoch != last['epoch']:
            other = '; the last epoch, %d: %.4f' % (last['epoch'], last['test_error'])
        elif state.get('best_epoch') not in (None, epoch):
            other = '; the best, epoch %d: %.4f' % (state['best_epoch'], state['best_error'])
        log.info('exporting the %s epoch, %d of %d (test error %.4f%s; --export-from %s)',
                 which, epoch, last['epoch'] if last else epoch, error, other, source)
    return dict(source=source, epoch=epoch, test_error=error)


def export_trained(net, cfg, save_dir, input_shape, ctx, state, data_config=None):
    """``--export``: the network of the epoch ``--export-from`` names (default the best:
    best.params) as symbol JSON + params in ``save_dir/export`` (a float16 network cast back
    to float32 first), with its data config beside them (``<prefix>-data.json``), recorded
    in result.json; a full disk ends in one line naming the directory."""
    from ..data.config import export_config_path, save_data_config
    from ..deploy.export import export_model
    prefix = os.path.join(save_dir, 'export', cfg['model'])

    def last_complete():
        try:
            record = latest_checkpoint(save_dir)
        except CheckpointError:
            record = None
        return checkpoint_clause(save_dir, record['epoch'] if record else None, 'complete')
    with deferred_interrupts(), write_errors(save_dir, last_complete):
        state['exported'] = _select_exported(net, cfg, save_dir, ctx, state)
        cast = cfg.get('dtype') == 'float16'
        if cast:
            net.cast('float32')
        for path in remove_stale_temps(save_dir):      # an export a kill cut short
            log.info('removed %s, left by an interrupted write', path)
        sym, params = export_model(net, prefix, input_shape, ctx=ctx[0])
        state['export'] = [sym, params]
        data_json = None
        if data_config is not None:
            data_json = save_data_config(export_config_path(prefix), data_config)
            state['export_data_config'] = data_json
        log.info('exported %s and %s%s%s', sym, params,
                 ' and its data config %s' % data_json if data_json else '',
                 ' (cast to float32)' if cast else '')
        write_result(save_dir, state)
    return sym, params


def check_backbone_file(net, path):
    """``--pretrained-backbone``: what can be checked before anything is written: the model
    is one that :func:`cmpese.weights.load_pretrained` maps (an ImageNet ResNet) and ``path``
    is a weights file it reads. Raises a one-line :class:`cmpese.errors.UserError`."""
    from ..weights import WeightsError, detect_source, target_layout
    try:
        target_layout(net)
    except WeightsError as err:
        raise ConfigError('--pretrained-backbone %s: %s' % (path, err))
    detect_source(path)          # a WeightsError naming the file


def load_backbone(net, path, ctx, lead=True):
    """``--pretrained-backbone``: the backbone weights of ``path`` into the initialized
    ``net`` (the units and the classifier keep their initialization); the load's report is
    logged (by the lead worker; the others log one line). A file that does not fit raises
    :class:`cmpese.weights.WeightsError` (one line). Returns the report."""
    from ..weights import load_pretrained
    report = load_pretrained(net, path, backbone_only=True, ctx=ctx)
    if lead:
        log.info('--pretrained-backbone: the backbone from %s; the rest starts fresh', path)
        for line in report.summary():
            log.info('  %s', line)
    else:
        log.info('--pretrained-backbone: %d tensors loaded from %s, %d new', len(report.loaded),
                 path, len(report.new))
    return report



def enable_bfloat16():
    """``--dtype bfloat16``: MXNet AMP, casts inserted around every operator of its bfloat16
    lists (oneDNN); must run before the network is built. Parameters and the update stay
    float32. The units' rescale uses the stock ``dot`` operators: the native ones
    (:mod:`cmpese.native`) take float32 and float64 only."""
    from mxnet.contrib import amp
    from ..units import ops
    amp.init(target_dtype='bfloat16')
    if ops.get_impl()['scale'] == 'native':
        ops.set_impl(scale='dot')

class Trainer(object):
    """One trainer command line over the run skeleton (see the module docstring).

    ``main(argv)`` raises the user's errors (:class:`cmpese.errors.UserError`); run it
    through :func:`cmpese.errors.run`."""

    #: the program name in messages
    prog = 'cmpese'
    #: options a resumed run may change besides :data:`cli.RUNTIME_KEYS` (e.g. where the
    #: data files are), given explicitly
    resume_runtime_keys = ()
    #: whether the global batch must split evenly over workers x devices (else workers)
    batch_per_device = False

    # ------------------------------------------------------------ hooks

    def build_parser(self):
        """The :class:`cmpese.errors.ArgumentParser` of the command."""
        raise NotImplementedError

    def check_args(self, args, explicit):
        """What argparse and :func:`cli.validate_args` cannot check: needed options and
        their combinations. Raise :class:`ConfigError`."""

    def other_mode(self, args, explicit):
        """A mode of the command that does not train (ImageNet's ``--test-io``): run it and
        return its exit code; None to train."""
        return None

    def configure(self, cfg, explicit):
        """Add the trainer's resolved values to ``cfg`` (the class count, ...), in place;
        before ``--resume`` replaces it by the saved configuration."""

    def prepare(self, cfg):
        """Check the trainer's inputs before anything is written (data files, directories);
        may change ``cfg['save_dir']``."""

    def read_data(self, cfg):
        """Read what the loaders need (before the kvstore is created); returns it."""
        return None

    def loaders(self, cfg, data, kv, ctx):
        """``(train loader, validation loader)`` of this worker (``kv.rank`` of
        ``kv.num_workers``), following the loader protocol of :mod:`cmpese.training.fit`."""
        raise NotImplementedError

    def input_shape(self, cfg, data):
        """The shape of one input, ``(1, C, H, W)`` (the export's, and the first pass that
        resolves the deferred shapes)."""
        size = cfg.get('input_size') or 32
        return (1, 3, size, size)

    def describe(self, cfg, data, train, val, kv, ctx):
        """Log what the run trains on (after the log file is open)."""

    def fit_config(self, cfg):
        """The configuration handed to the fit loop (default ``cfg``)."""
        return cfg

    def data_config(self, cfg, data):
        """What the trained model expects of an image (:class:`cmpese.data.config.DataConfig`:
        input size, mean and std, evaluation resize and crop, class names), written as
        data_config.json in the run directory and beside the export; None for none."""
        return None

    def finish(self, cfg, state, kv):
        """After training (and the export): ``--record-result`` on worker 0."""
        if cfg.get('record_result') and kv.rank == 0:
            record_result(cfg['save_dir'], log)

    # ------------------------------------------------------------ the skeleton

    def main(self, argv=None):
        """The command line (``argv`` without the program name); returns the exit code."""
        settled = self.settle(argv)
        if not isinstance(settled, Settled):
            return settled
        return self.train(settled)

    def settle(self, argv=None):
        """Everything the user gave, checked and resolved before anything is written:
        returns a :class:`Settled`, or an exit code when the command is done
        (``--print-config``, :meth:`other_mode`)."""
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = self.build_parser()
        if '-h' in argv or '--help' in argv:
            self.fill_help(parser, argv)
        args = parser.parse_args(argv)
        explicit = explicit_keys(parser, argv)
        self.check_args(args, explicit)
        code = self.other_mode(args, explicit)
        if code is not None:
            return code
        cfg = resolve_config(args, explicit)
        self.configure(cfg, explicit)
        if cfg['resume']:
            # the explicitly given resume_runtime_keys keep their new values
            given, moved = dict(cfg), explicit & set(self.resume_runtime_keys)
            cfg = check_resume_config(cfg, explicit - moved, cfg['save_dir'])
            cfg.update({k: given[k] for k in moved})
        model_args = parse_model_args(cfg['model_args'])
        ctx = contexts(cfg['gpus'], cfg['cpus'])
        workers = check_batch_split(cfg, len(ctx), per_device=self.batch_per_device)
        if cfg['print_config']:
            print_config(cfg)
            return 0
        return Settled(cfg, ctx, model_args, workers)

    def fill_help(self, parser, argv):
        """``--help`` with ``--model`` (and ``--dataset``): the schedule options' help shows
        the values the preset gives for them (:func:`cli.fill_help_from_config`). Options
        that do not resolve leave the help as it is."""
        rest = [a for a in argv if a not in ('-h', '--help')]
        try:
            args, _ = parser.parse_known_args(rest)
            explicit = explicit_keys(parser, rest)
            cfg = resolve_config(args, explicit)
            self.configure(cfg, explicit)
        except Exception:        # e.g. no --model: the generic help
            return
        fill_help_from_config(parser, cfg, explicit)

    def train(self, settled):
        """Train as :meth:`settle` resolved; returns the exit code (0)."""
        cfg, ctx, model_args = settled.cfg, settled.ctx, settled.model_args
        self.prepare(cfg)
        save_dir = cfg['save_dir']
        check_save_dir(save_dir)
        if not cfg['resume']:
            refuse_existing_run(save_dir)
        setup_logging(None)
        if cfg.get('dtype') == 'bfloat16':
            enable_bfloat16()
        net = build_model(cfg['model'], cfg['classes'], model_args)   # a wrong name fails first
        from ..units import ops
        ops.get_impl()      # CMPESE_UNIT_OPS checked (and the native library loaded) first
        backbone = cfg.get('pretrained_backbone') if not cfg['resume'] else None
        if backbone:
            check_backbone_file(net, backbone)
        # missing or malformed data: the error names the file and the format, nothing written
        data = self.read_data(cfg)
        kv = create_kvstore(cfg['kvstore'], cfg['dist_timeout'])
        train_data, val_data = self.loaders(cfg, data, kv, ctx)

        # the run directory
        make_save_dir(save_dir)
        lock_run_dir(save_dir, kv.rank)     # one run a directory: a second one stops here
        setup_logging(os.path.join(save_dir, 'train.log' if kv.rank == 0 else
                                   'train-worker%d.log' % kv.rank),
                      worker=(kv.rank, kv.num_workers))
        log.info('unit operators: %s (cmpese.units.ops; CMPESE_UNIT_OPS to choose)', ', '.join(
            '%s=%s' % kv for kv in sorted(ops.get_impl().items())))
        data_config = self.data_config(cfg, data)
        if kv.rank == 0:
            from ..data.config import DATA_CONFIG_FILE, save_data_config
            if not cfg['resume'] or cfg.get('resume_changes'):
                try:
                    save_config(cfg, save_dir)
                except OSError as err:
                    raise ConfigError('--save-dir %s: cannot write config.json (%s); free space '
                                      'or fix its permissions' % (save_dir, err.strerror or err))
            if data_config is not None:
                try:
                    save_data_config(os.path.join(save_dir, DATA_CONFIG_FILE), data_config)
                except OSError as err:
                    raise ConfigError('--save-dir %s: cannot write %s (%s); free space or fix '
                                      'its permissions' % (save_dir, DATA_CONFIG_FILE,
                                                           err.strerror or err))
            print_config(cfg, sys.stderr)
        for change in cfg.get('resume_changes') or ():
            log.info('resumed with a change: %s', change)
        self.describe(cfg, data, train_data, val_data, kv, ctx)
        if data_config is not None:
            log.info('data config (%s): %s', 'data_config.json', data_config.describe())

        # train
        mx.random.seed(cfg['seed'])
        net.initialize(_initializer(), ctx=ctx)
        if backbone:
            load_backbone(net, backbone, ctx, lead=kv.rank == 0)
        if cfg.get('dtype') == 'float16':
            net.cast('float16')      # Gluon's BatchNorm keeps float32 parameters
        net.hybridize(static_alloc=True, static_shape=True)
        input_shape = self.input_shape(cfg, data)
        state = fit(net, train_data, val_data, self.fit_config(cfg), ctx, save_dir, kvstore=kv,
                    resume=cfg['resume'], progress=cfg['progress'], input_shape=input_shape)
        if cfg['export'] and kv.rank == 0:
            export_trained(net, cfg, save_dir, input_shape, ctx, state, data_config)
        self.finish(cfg, state, kv)
        return 0
