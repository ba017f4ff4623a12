"""The optimizer and its learning-rate schedule for one run: a ``gluon.Trainer`` built from a
resolved configuration, and the same values set again on a trainer restored from a
checkpoint.

The schedule is MXNet's own ``mx.lr_scheduler.MultiFactorScheduler``: the rate is multiplied
by ``lr_factor`` at each step (optimizer updates, from the preset's epochs, fractions or
iterations: :func:`cmpese.training.presets.lr_steps_in_updates`), after an optional linear
warmup (``warmup_epochs`` from ``warmup_begin_lr``).
"""
import mxnet as mx
from mxnet import gluon

from .presets import lr_steps_in_updates

__all__ = ['make_scheduler', 'make_trainer', 'configure_optimizer']


def make_scheduler(cfg, steps, iters_per_epoch, epochs):
    """``MultiFactorScheduler`` of the ``steps`` (updates), with a linear warmup over the
    first ``cfg['warmup_epochs']`` epochs from ``cfg['warmup_begin_lr']`` (default 0) when
    set; None for a constant rate."""
    warmup = int(round(float(cfg.get('warmup_epochs') or 0) * iters_per_epoch))
    if not steps and not warmup:
        return None
    return mx.lr_scheduler.MultiFactorScheduler(
        step=list(steps) or [epochs * iters_per_epoch + 1], factor=cfg['lr_factor'],
        base_lr=cfg['lr'], warmup_steps=warmup,
        warmup_begin_lr=float(cfg.get('warmup_begin_lr') or 0.0), warmup_mode='linear')


def make_trainer(net, cfg, iters_per_epoch, epochs, kvstore, dist=False):
    """``(trainer, steps)``: a ``gluon.Trainer`` with the configuration's optimizer and rate
    schedule (steps in updates, optional warmup); ``cfg['dtype'] == 'float16'`` turns on
    multi-precision SGD (float32 master weights).

    With ``dist=True`` the trainer gets no kvstore: the gradients are all-reduced by
    :class:`cmpese.training.kvstore.DistSync` and every worker applies the same update
    itself, so the optimizer state lives on the workers (identical on each) and checkpoints
    hold it."""
    steps = lr_steps_in_updates(cfg, epochs, iters_per_epoch)
    params = {'learning_rate': cfg['lr'], 'wd': cfg['wd']}
    if cfg['optimizer'] in ('sgd', 'nag'):
        params['momentum'] = cfg['momentum']
    if cfg.get('dtype') == 'float16':
        params['multi_precision'] = True
    scheduler = make_scheduler(cfg, steps, iters_per_epoch, epochs)
    if scheduler is not None:
        params['lr_scheduler'] = scheduler
    trainer = gluon.Trainer(net.collect_params(), cfg['optimizer'], params,
                            kvstore=None if dist else kvstore)
    return trainer, steps


def configure_optimizer(trainer, cfg, steps, iters_per_epoch, epochs):
    """Set the rate schedule, weight decay and momentum of ``trainer``'s optimizer from
    ``cfg``, keeping its update counts (per device and per parameter) and its states.

    Called after ``trainer.load_states``: the states file holds the pickled optimizer of the
    saved run, so a resumed run with a changed ``--lr``, ``--wd``, ``--momentum`` or
    ``--epochs`` would otherwise continue with the saved values. A fresh
    ``MultiFactorScheduler`` asked at the restored update count gives exactly the rate the
    saved one would (it steps through the same factors in the same order).
    """
    opt = trainer._optimizer
    opt.lr = cfg['lr']
    opt.lr_scheduler = make_scheduler(cfg, steps, iters_per_epoch, epochs)
    opt.wd = cfg['wd']
    if hasattr(opt, 'momentum'):
        opt.momentum = cfg['momentum']
    return opt
