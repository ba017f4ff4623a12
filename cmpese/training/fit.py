"""The one fit loop behind train_cifar.py and train_imagenet.py.

``fit`` trains a Gluon network with data parallelism over ``ctx`` (gradients aggregated by a
kvstore: ``device``/``local`` in one process, ``dist_sync``/``dist_device_sync`` across
processes and machines), the schedule of a resolved configuration (see
:mod:`cmpese.training.presets`), optional mixup switched off for the last epochs, and
epoch-end hooks that write checkpoints (resumed exactly after a kill), the best model by
test accuracy, a metrics CSV and a training-curve PNG. As in MXNet's
``example/image-classification/common/fit.py``, the loop is split in three:

* :func:`train_epoch`: one pass over the training data (forward, backward, NaN check,
  gradient aggregation, update), returning the epoch's training figures;
* :func:`evaluate`: top-1 / top-5 accuracy (``mx.metric``) and loss over a loader, every
  image counted exactly once (:func:`score_batches`, the one evaluator, which
  ``python -m cmpese.evaluate`` uses too);
* epoch-end hooks, called as ``hook(run, row)`` after each epoch with the :class:`Run` and
  the epoch's metrics row: :func:`finite_check_hook`, :func:`best_model_hook`,
  :func:`metrics_hook` (CSV and curves), :func:`checkpoint_hook` (:data:`DEFAULT_HOOKS`,
  run on worker 0 only, in that order). ``fit(..., hooks=[...])`` appends more.

Around the loop, elsewhere: the optimizer and its rate schedule
(:mod:`cmpese.training.schedule`), the gradient all-reduce across processes and the
BatchNorm statistics averaged over devices (:mod:`cmpese.training.kvstore`), failed writes
turned into one line (:func:`cmpese.training.checkpoint.write_errors`), and the command
line, the run directory and the final export (:mod:`cmpese.training.run`).

Loader protocol (what ``train_data`` and ``val_data`` must provide):

* ``len(loader)``: batches per epoch, **the same on every distributed worker** (uneven
  counts make ``dist_sync`` hang at the end of an epoch);
* ``loader.epoch(e, mixup_alpha=0)``: an iterator over the batches of epoch ``e``
  (0-based), each ``(data, label)`` or ``(data, label, pad)``: ``data`` an NDArray NCHW
  (float32, or float16 with ``cfg['dtype'] == 'float16'``), ``label`` an NDArray ``(B,)``
  of class indices or ``(B, classes)`` soft targets (mixup with ``mixup_alpha > 0``, label
  smoothing; the soft cross-entropy is used for those batches); ``pad`` an int, the number
  of rows at the end of the batch that are padding (``mx.io.DataBatch.pad`` of an
  ``ImageRecordIter``). Batches are
  **worker-local**: with ``dist_sync``, each worker's loader yields its own shard (the data
  side shards, e.g. ``BatchLoader(num_parts=kv.num_workers, part_index=kv.rank)`` or
  ``ImageRecordIter(num_parts=..., part_index=...)``), and every worker's batch ``b`` has the
  same number of rows. Loaders that cannot mix may ignore ``mixup_alpha`` only if
  ``cfg['mixup']`` is off.

Padding: evaluation drops the ``pad`` rows from the metrics, so each image counts once
(GluonCV's script and ``Module.score`` count padded images twice). Training trains on the
whole batch (the padded rows of an ``ImageRecordIter`` are real images wrapped around from
the start, as MXNet's own ``fit`` does) and counts only the non-padding rows in its figures.

Determinism: everything random in epoch ``e`` (data order, augmentation, mixup draws,
dropout) is seeded from ``(seed, e)``, so a run resumed after a kill replays the interrupted
epoch exactly and ends with the parameters of an uninterrupted run.

Failures: a NaN or infinite loss or gradient raises :class:`TrainingDiverged` before the
update, naming the last good checkpoint and a ``--resume`` command line that continues from
it; non-finite parameters or BatchNorm statistics are never written (the finite check runs
before any epoch-end file). SIGINT/SIGTERM (through :func:`cmpese.errors.run`) never cut a
file write in half and end with "interrupted at epoch E, iteration I; resume with
--resume". A full disk ends in one line naming the directory; the last complete checkpoint
stays resumable.
"""
import json
import logging
import math
import os
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from ..data.loader import epoch_rng
from ..errors import Interrupted, UserError, deferred_interrupts
from .checkpoint import (atomic_write, checkpoint_clause, find_nonfinite, latest_checkpoint,
                         load_checkpoint, remove_stale_temps, save_checkpoint, write_errors)
from .cli import LOG_INTERVAL
from .kvstore import DistSync, average_aux
from .presets import resolve_epochs
from .report import plot_curves, write_metrics_csv
from .schedule import configure_optimizer, make_trainer

__all__ = ['fit', 'train_epoch', 'evaluate', 'score_batches', 'EvalResult', 'Run',
           'TrainingDiverged', 'finite_check_hook', 'best_model_hook', 'metrics_hook',
           'checkpoint_hook', 'end_of_epoch', 'DEFAULT_HOOKS', 'STREAM_DROPOUT',
           'unpack_batch', 'write_result']

# The fit loop's per-epoch random stream (the loader's are 0-2; see cmpese.data.epoch_rng).
STREAM_DROPOUT = 10

log = logging.getLogger('cmpese.train')


class TrainingDiverged(UserError):
    """The loss, a gradient, a parameter or a BatchNorm statistic became NaN or infinite.
    Nothing non-finite was written; the message names the last good checkpoint (or says
    there is none) and the ``--resume`` options that continue from it. Exit code 3."""
    exit_code = 3


def _grad_sum_sq(grads_by_device):
    """Sum of squares of every gradient on every device (NaN or inf if any is); one fused
    ``multi_sum_sq`` per device over its list of gradient arrays."""
    return sum(float(mx.nd.multi_sum_sq(*grads, num_arrays=len(grads)).sum().asscalar())
               for grads in grads_by_device if grads)


# ---------------------------------------------------------------- batches and metrics

def unpack_batch(batch):
    """``(data, label, pad)`` of a loader batch ``(data, label)`` or ``(data, label, pad)``."""
    if len(batch) == 3:
        data, label, pad = batch
        return data, label, int(pad or 0)
    data, label = batch
    return data, label, 0


def _valid_slices(parts, valid):
    """For the device slices ``parts`` of one batch (in order), how many leading rows of each
    are real images when the batch has ``valid`` real rows."""
    out, offset = [], 0
    for p in parts:
        n = p.shape[0]
        out.append(max(0, min(n, valid - offset)))
        offset += n
    return out


class EvalResult(tuple):
    """``(top1_error, top5_error, loss, count)``: top-5 is None for 5 classes or fewer;
    ``count`` is the number of images counted (padding excluded)."""
    __slots__ = ()

    def __new__(cls, top1_error, top5_error, loss, count):
        return tuple.__new__(cls, (top1_error, top5_error, loss, count))

    top1_error = property(lambda self: self[0])
    top5_error = property(lambda self: self[1])
    loss = property(lambda self: self[2])
    count = property(lambda self: self[3])


def score_batches(net, batches, ctx, classes, top_k=5, on_batch=None):
    """The one evaluator (the fit loop's and ``python -m cmpese.evaluate``'s): top-1 and
    top-``top_k`` error (``mx.metric.Accuracy``, ``TopKAccuracy``; top-k only for more than
    ``top_k`` classes) and mean cross-entropy of ``net`` over ``batches`` (``(data, label)``
    or ``(data, label, pad)``), every image counted exactly once: each batch is split over
    ``ctx`` whole (the network sees the shapes it was built for) and the ``pad`` rows of the
    outputs are dropped. Outputs of another dtype (float16) are scored as float32.
    ``on_batch(count)``, if given, is called after each batch with the images counted so
    far (the metrics have been read back by then). Returns an :class:`EvalResult`."""
    top1 = mx.metric.Accuracy()
    topk = mx.metric.TopKAccuracy(top_k) if classes > top_k else None
    loss = mx.metric.Loss()
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    count = 0
    for batch in batches:
        x, y, pad = unpack_batch(batch)
        xs = gluon.utils.split_and_load(x, ctx, even_split=False)
        ys = gluon.utils.split_and_load(y, ctx, even_split=False)
        for xi, yi, k in zip(xs, ys, _valid_slices(xs, x.shape[0] - pad)):
            if not k:
                continue
            out = net(xi)
            if out.dtype != np.float32:
                out = out.astype('float32')
            if k < xi.shape[0]:
                out, yi = out[:k], yi[:k]
            top1.update([yi], [out])
            if topk is not None:
                topk.update([yi], [out])
            loss.update(None, [loss_fn(out, yi)])
            count += k
        if on_batch is not None:
            on_batch(count)
    return EvalResult(1 - top1.get()[1] if count else float('nan'),
                      None if topk is None else (1 - topk.get()[1] if count else float('nan')),
                      loss.get()[1] if count else float('nan'), count)


def evaluate(net, data, ctx, classes, epoch=0):
    """:func:`score_batches` over epoch ``epoch`` of the loader ``data``: top-1 and top-5
    error (top-5 only for more than 5 classes) and mean cross-entropy. Returns an
    :class:`EvalResult`."""
    return score_batches(net, data.epoch(epoch), ctx, classes)


def _stderr_is_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):        # replaced or closed stream
        return False


def _progress(total, desc, enabled):
    """A tqdm bar when ``enabled`` and stderr is a terminal (its carriage-return frames
    would flood a log file, a batch scheduler's output or ``nohup.out``), else None."""
    if not enabled or not _stderr_is_terminal():
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


# ---------------------------------------------------------------- the run

class Run(object):
    """What the steps and hooks of one :func:`fit` share: the network, trainer, devices,
    kvstore, configuration, the resolved schedule and the state that checkpoints hold
    (``state``: history, best result). ``position`` is ``(epoch, iteration)`` of the batch
    being trained (1-based epoch), for the interrupt message."""

    def __init__(self, net, cfg, ctx, save_dir, kv, iters, epochs):
        self.net, self.cfg, self.ctx, self.save_dir, self.kv = net, cfg, ctx, save_dir, kv
        self.rank, self.workers = (kv.rank, kv.num_workers) if kv is not None else (0, 1)
        self.lead = self.rank == 0
        self.dist = kv is not None and 'dist' in kv.type
        self.iters, self.epochs = iters, epochs
        self.classes = cfg['classes']
        self.trainer, self.steps = make_trainer(net, cfg, iters, epochs, kv, self.dist)
        self.sync = DistSync(kv, net, ctx) if self.dist else None
        self.mixup_until = epochs - cfg.get('mixup_off_epochs', 0) if cfg.get('mixup') else 0
        self.state = dict(history=[], best_error=None, best_epoch=None, epochs=epochs,
                          lr_steps=self.steps)
        self.start = 0
        self.position = (1, 0)
        self.checkpoint_epoch = None    # epoch of the newest checkpoint on disk (or None)
        self.grads_by_device = None

    def good_checkpoint(self, adjective='good'):
        """A clause naming the newest checkpoint on disk, or saying there is none."""
        return checkpoint_clause(self.save_dir, self.checkpoint_epoch, adjective)

    def advice(self):
        """What to run after a NaN stop: options that ``--resume`` accepts."""
        where = ('continue from it' if self.checkpoint_epoch is not None else
                 'start again from epoch 1')
        return ('%s with a lower rate: --resume --lr %.4g (same --save-dir; or check the data)'
                % (where, self.cfg['lr'] / 10))

    def diverged(self, what, value, epoch, iteration):
        raise TrainingDiverged(
            '%s became %s at epoch %d, iteration %d (learning rate %.4g); nothing was '
            'updated or saved with it, and %s. To %s.'
            % (what, value, epoch, iteration, self.trainer.learning_rate, self.good_checkpoint(),
               self.advice()))


def train_epoch(run, data, epoch, progress=True):
    """Train ``run.net`` for epoch ``epoch`` (0-based) over the loader ``data``; returns the
    epoch's figures ``dict(train_loss, train_error, images, time, mixup)`` (images: the
    non-padding rows this worker trained on).

    Worker 0 shows its progress: a tqdm bar when ``progress`` and stderr is a terminal;
    otherwise a log line ``epoch 2/3 | 40/391 | loss ... lr ... img/s`` every
    ``cfg['log_interval']`` iterations (default :data:`cmpese.training.cli.LOG_INTERVAL`;
    0: none)."""
    net, trainer, ctx, cfg = run.net, run.trainer, run.ctx, run.cfg
    mx.random.seed(int(epoch_rng(cfg['seed'], epoch, STREAM_DROPOUT).randint(2 ** 31 - 1)))
    use_mixup = epoch < run.mixup_until
    sparse_loss = gluon.loss.SoftmaxCrossEntropyLoss()
    soft_loss = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)
    accuracy, loss_metric = mx.metric.Accuracy(), mx.metric.Loss()
    desc = 'epoch %d/%d' % (epoch + 1, run.epochs)
    bar = _progress(run.iters, desc, progress and run.lead)
    interval = cfg.get('log_interval', LOG_INTERVAL) if bar is None and run.lead else 0
    tic = time.time()
    batches = data.epoch(epoch, mixup_alpha=cfg['mixup_alpha'] if use_mixup else 0)
    run.position = (epoch + 1, 0)
    try:
        for i, batch in enumerate(batches):
            x, target, pad = unpack_batch(batch)
            # (B, classes) targets are soft (mixup, label smoothing), (B,) class indices
            soft = len(target.shape) == 2
            loss_fn = soft_loss if soft else sparse_loss
            xs = gluon.utils.split_and_load(x, ctx, even_split=False)
            ts = gluon.utils.split_and_load(target, ctx, even_split=False)
            with autograd.record():
                outs = [net(xi) for xi in xs]
                losses = [loss_fn(o, t) for o, t in zip(outs, ts)]
            autograd.backward(losses)
            batch_loss = sum(float(l.sum().asscalar()) for l in losses)
            # oneDNN's ReLU maps NaN to 0, so a NaN can hide from the loss and show only in
            # the gradients: check both (one fused sum of squares per device)
            grad_sq = _grad_sum_sq(run.grads_by_device)
            if not math.isfinite(batch_loss):
                run.diverged('the training loss', batch_loss, epoch + 1, i + 1)
            if not math.isfinite(grad_sq):
                run.diverged('a gradient', grad_sq, epoch + 1, i + 1)
            # every worker's batch has the same rows: the global batch is rows x workers
            if run.sync is None:
                trainer.step(x.shape[0] * run.workers)
            else:
                run.sync.allreduce_grads()
                trainer.update(x.shape[0] * run.workers)
            run.position = (epoch + 1, i + 1)
            # with soft targets the train error counts the dominant label
            for o, t, l, k in zip(outs, ts, losses, _valid_slices(xs, x.shape[0] - pad)):
                if k:
                    label = mx.nd.argmax(t, axis=1) if soft else t
                    accuracy.update([label[:k]], [o[:k]])
                    loss_metric.update(None, [l[:k]])
            if bar is not None:
                bar.set_postfix(loss='%.3f' % loss_metric.get()[1],
                                lr='%.3g' % trainer.learning_rate)
                bar.update(1)
            elif interval and (i + 1) % interval == 0:
                log.info('%s | %d/%d | loss %.4f  lr %.4g  %.1f img/s', desc, i + 1, run.iters,
                         loss_metric.get()[1], trainer.learning_rate,
                         accuracy.num_inst * run.workers / max(time.time() - tic, 1e-9))
    finally:
        if hasattr(batches, 'close'):
            batches.close()        # stops a prefetch thread at once, also on an exception
        if bar is not None:
            bar.close()
    seen = accuracy.num_inst
    return dict(train_loss=loss_metric.get()[1] if seen else float('nan'),
                train_error=1 - accuracy.get()[1] if seen else float('nan'),
                images=seen, time=time.time() - tic, mixup=use_mixup)


# ---------------------------------------------------------------- epoch-end hooks

def finite_check_hook(run, row):
    """Refuse to write anything when a parameter or a BatchNorm running statistic (on any
    device) is NaN or infinite: the checkpoint on disk stays the last good one."""
    bad = find_nonfinite(run.net)
    if bad:
        raise TrainingDiverged(
            '%s of the parameters %s not finite after epoch %d (learning rate %.4g); nothing '
            'of this epoch was saved, and %s. To %s.' % (
                ', '.join(bad[:3]) + (' and %d more' % (len(bad) - 3) if len(bad) > 3 else ''),
                'is' if len(bad) == 1 else 'are', row['epoch'], row['lr'],
                run.good_checkpoint(), run.advice()))


def best_model_hook(run, row):
    """``best.params``: the parameters with the lowest test error so far."""
    if run.state['best_epoch'] == row['epoch']:
        atomic_write(os.path.join(run.save_dir, 'best.params'), run.net.save_parameters)


def metrics_hook(run, row):
    """``metrics.csv`` (rewritten from the whole history) and ``training-curve.png``."""
    write_metrics_csv(os.path.join(run.save_dir, 'metrics.csv'), run.state['history'])
    plot_curves(os.path.join(run.save_dir, 'training-curve.png'), run.state['history'],
                title=run.cfg.get('model', ''))


def checkpoint_hook(run, row):
    """A checkpoint every ``save_every`` epochs (0: only at the end) and after the last."""
    epoch, every = row['epoch'], run.cfg.get('save_every', 1)
    if epoch == run.epochs or (every and epoch % every == 0):
        save_checkpoint(run.save_dir, epoch, run.net, run.trainer, run.state,
                        keep=run.cfg.get('keep_checkpoints', 2))
        run.checkpoint_epoch = epoch


DEFAULT_HOOKS = (finite_check_hook, best_model_hook, metrics_hook, checkpoint_hook)

def end_of_epoch(run, row, hooks):
    """Run the epoch-end ``hooks`` (worker 0), with interrupts held back until the files
    are complete and failed writes turned into one line naming the directory
    (:func:`cmpese.training.checkpoint.write_errors`)."""
    if not run.lead:
        return
    with deferred_interrupts(), write_errors(run.save_dir,
                                             lambda: run.good_checkpoint('complete')):
        for hook in hooks:
            hook(run, row)


# ---------------------------------------------------------------- fit

def fit(net, train_data, val_data, cfg, ctx, save_dir, kvstore='device', resume=False,
        progress=True, input_shape=(1, 3, 32, 32), hooks=None):
    """Train ``net`` as ``cfg`` says; returns the final state dict (history, best, ...).

    ``cfg`` keys used: classes, seed, optimizer, lr, momentum, wd, lr_factor and one of
    lr_steps / lr_steps_frac / lr_steps_iter, epochs or iterations, mixup, mixup_alpha,
    mixup_off_epochs, save_every, keep_checkpoints (and model, for the curve's title,
    log_interval, for the log lines when no progress bar is drawn);
    optional: warmup_epochs and warmup_begin_lr (linear warmup), dtype ('float16': multi-
    precision SGD and a float16 first pass). Soft targets (``(B, classes)``, from mixup or
    label smoothing) select the soft cross-entropy batch by batch.
    ``train_data``/``val_data`` follow the loader protocol of this module's docstring.
    The network must be initialized (on ``ctx``) before the call; ``input_shape`` is that
    of one input (its first pass resolves the deferred shapes). A new run's ``save_dir``
    must hold no checkpoint (the command lines refuse one before writing anything:
    :func:`cmpese.training.checkpoint.refuse_existing_run`). ``hooks`` are called after
    :data:`DEFAULT_HOOKS` at the end of every epoch, on worker 0. At the end worker 0 writes
    ``result.json`` (:func:`write_result`); exporting the network is the caller's
    (:mod:`cmpese.training.run`).
    """
    kv = mx.kv.create(kvstore) if isinstance(kvstore, str) else kvstore
    iters = len(train_data)
    if iters == 0:
        raise UserError('the training set gives no batch per worker (--batch-size larger than '
                        'the data?); lower --batch-size')
    epochs = resolve_epochs(cfg, iters)
    run = Run(net, cfg, ctx, save_dir, kv, iters, epochs)
    state = run.state
    if run.lead:
        os.makedirs(save_dir, exist_ok=True)
        for path in remove_stale_temps(save_dir):
            log.info('removed %s, left by an interrupted write', path)
    if resume:
        record = load_checkpoint(save_dir, net, run.trainer, ctx)
        if record is None:
            log.info('no checkpoint in %s yet: starting from epoch 1', save_dir)
        else:
            run.start = run.checkpoint_epoch = record['epoch']
            state.update({k: record[k] for k in ('history', 'best_error', 'best_epoch')})
            configure_optimizer(run.trainer, cfg, run.steps, iters, epochs)
    else:
        existing = latest_checkpoint(save_dir) if os.path.isdir(save_dir) else None
        run.checkpoint_epoch = existing['epoch'] if existing else None
    # Resolve deferred shapes (predict mode: no statistics change), then give every device
    # the same initial parameters before the first forward pass. (Left to the first
    # trainer.step, Gluon broadcasts device 0's values after that forward pass has already
    # updated each device's BN statistics, so device 0's statistics of batch 1 overwrite
    # the others'.)
    dtype = 'float16' if cfg.get('dtype') == 'float16' else 'float32'
    for c in ctx:
        net(mx.nd.zeros((1,) + tuple(input_shape[1:]), ctx=c, dtype=dtype))
    if run.sync is not None:
        run.sync.start()
    elif run.start == 0:
        run.trainer._init_kvstore()
        run.trainer._init_params()
    # the gradient arrays live as long as the network: list them once for the NaN check
    run.grads_by_device = [[p.grad(c) for p in net.collect_params().values()
                            if p.grad_req != 'null'] for c in ctx]
    log.info('training for %d epochs x %d iterations (batch %d a worker on %d device(s) x %d '
             'worker(s)); lr %.4g x%.4g at updates %s', epochs, iters,
             getattr(train_data, 'batch_size', 0), len(ctx), run.workers, cfg['lr'],
             cfg['lr_factor'], run.steps)
    if run.start >= epochs:
        log.info('the run already has its %d epochs (checkpoint after epoch %d)', epochs,
                 run.start)
    hooks = tuple(DEFAULT_HOOKS) + tuple(hooks or ())
    try:
        for epoch in range(run.start, epochs):
            figures = train_epoch(run, train_data, epoch, progress)
            # one set of BN statistics for all devices (of all workers): what a checkpoint
            # holds, so that a resumed run continues from exactly the same values
            if run.sync is not None:
                run.sync.average_aux()
            elif len(ctx) > 1:
                average_aux(net)
            result = evaluate(net, val_data, ctx, run.classes)
            row = dict(epoch=epoch + 1, lr=run.trainer.learning_rate, mixup=figures['mixup'],
                       train_loss=figures['train_loss'], train_error=figures['train_error'],
                       test_loss=result.loss, test_error=result.top1_error,
                       test_top5_error=result.top5_error, time=figures['time'],
                       images_per_sec=figures['images'] * run.workers / figures['time'])
            state['history'].append(row)
            log.info('[epoch %d/%d] lr %.4g  train loss %.4f err %.4f%s  test loss %.4f err '
                     '%.4f%s  %.1fs %.1f img/s', epoch + 1, epochs, row['lr'],
                     row['train_loss'], row['train_error'],
                     ' (mixup)' if row['mixup'] else '', result.loss, result.top1_error,
                     '' if result.top5_error is None else ' top-5 err %.4f' % result.top5_error,
                     row['time'], row['images_per_sec'])
            if state['best_error'] is None or result.top1_error < state['best_error']:
                state['best_error'], state['best_epoch'] = result.top1_error, epoch + 1
            run.position = (epoch + 1, iters)
            end_of_epoch(run, row, hooks)
    except Interrupted as err:
        e, i = run.position
        raise Interrupted(err.signum, 'interrupted at epoch %d, iteration %d of %d; resume with '
                          '--resume (%s; %s)' % (e, i, iters, _signame(err.signum),
                                                 run.good_checkpoint('complete'))) from None
    if run.lead:        # the summary: the lead worker's alone
        log.info('done: best test error %.4f at epoch %s; final %.4f',
                 state['best_error'] if state['best_error'] is not None else float('nan'),
                 state['best_epoch'], state['history'][-1]['test_error'] if state['history']
                 else float('nan'))
        with deferred_interrupts(), write_errors(save_dir,
                                                 lambda: run.good_checkpoint('complete')):
            write_result(save_dir, state)
    return state


def write_result(save_dir, state):
    """``result.json``: the final state of a run (history, best result, schedule; the
    export's files once the caller has added them), written atomically."""
    atomic_write(os.path.join(save_dir, 'result.json'), lambda p: _dump(state, p))


def _signame(signum):
    import signal
    return signal.Signals(signum).name


def _dump(obj, path):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=True, default=_json_default)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError('%r is not JSON serializable' % (value,))
