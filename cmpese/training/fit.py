"""The one fit loop behind train_cifar.py (and train_imagenet.py).

``fit`` trains a Gluon network with data parallelism over ``ctx`` (gradients aggregated by a
kvstore: ``device``/``local`` in one process, ``dist_sync``/``dist_device_sync``/``dist_async``
across processes and machines), the schedule of a resolved configuration (see
:mod:`cmpese.training.presets`), optional mixup switched off for the last epochs,
checkpoints every ``save_every`` epochs that a killed run resumes from exactly, the best model
by test accuracy, a log, a metrics CSV and a training-curve PNG.

Determinism: everything random in epoch ``e`` (data order, augmentation, mixup draws,
dropout) is seeded from ``(seed, e)``, so a run resumed after a kill replays the interrupted
epoch exactly and ends with the parameters of an uninterrupted run.

Data: ``train_data`` and ``val_data`` are loaders with ``epoch(e, mixup_alpha=0)`` (an
iterator of ``(images NDArray NCHW float32, labels NDArray)`` global batches, the same on
every worker; with ``mixup_alpha > 0`` mixed images and soft targets) and ``len()``
(batches per epoch): :class:`cmpese.data.BatchLoader`. A distributed worker ``r`` of
``k`` trains on the ``r``-th of ``k`` equal slices of every global batch, so ``k`` workers
compute exactly what one process on ``k`` devices computes.
"""
import json
import logging
import math
import os
import time

import mxnet as mx
from mxnet import autograd, gluon

from ..data.loader import epoch_rng
from .checkpoint import atomic_write, load_checkpoint, refuse_existing_run, save_checkpoint
from .presets import lr_steps_in_updates, resolve_epochs
from .report import plot_curves, write_metrics_csv

__all__ = ['fit', 'evaluate', 'TrainingDiverged', 'make_trainer', 'STREAM_DROPOUT']

# The fit loop's per-epoch random stream (the loader's are 0-2; see cmpese.data.epoch_rng).
STREAM_DROPOUT = 10

log = logging.getLogger('cmpese.train')


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def make_trainer(net, cfg, iters_per_epoch, epochs, kvstore, dist=False):
    """A ``gluon.Trainer`` with the configuration's optimizer and step schedule."""
    steps = lr_steps_in_updates(cfg, epochs, iters_per_epoch)
    params = {'learning_rate': cfg['lr'], 'wd': cfg['wd']}
    if cfg['optimizer'] in ('sgd', 'nag'):
        params['momentum'] = cfg['momentum']
    if steps:
        params['lr_scheduler'] = mx.lr_scheduler.MultiFactorScheduler(
            step=steps, factor=cfg['lr_factor'], base_lr=cfg['lr'])
    # Distributed runs: the gradients are all-reduced by DistSync (below) and every worker
    # applies the same update itself, so the optimizer state lives on the workers (identical
    # on each) and checkpoints hold it; the Trainer gets no kvstore then.
    trainer = gluon.Trainer(net.collect_params(), cfg['optimizer'], params,
                            kvstore=None if dist else kvstore)
    return trainer, steps


def _slice(batch, part, parts):
    """The ``part``-th of ``parts`` even slices of a global batch (dist workers)."""
    if parts == 1:
        return batch
    n = batch.shape[0]
    if n % parts:
        raise ValueError('a global batch of %d cannot be split evenly over %d workers; '
                         'choose --batch-size divisible by the number of workers' % (n, parts))
    step = n // parts
    return batch[part * step:(part + 1) * step]


def _grad_sum_sq(grads_by_device):
    """Sum of squares of every gradient on every device (NaN or inf if any is); one fused
    ``multi_sum_sq`` per device over its list of gradient arrays."""
    return sum(float(mx.nd.multi_sum_sq(*grads, num_arrays=len(grads)).sum().asscalar())
               for grads in grads_by_device if grads)


def _plain(array):
    """A copy of ``array`` in MXNet's default layout, on the same device."""
    return mx.nd.array(array.asnumpy(), ctx=array.context, dtype=array.dtype)


class DistSync(object):
    """Gradient all-reduce over a ``dist_sync`` kvstore, with an initialization that is safe.

    ``gluon.Trainer`` with a dist kvstore broadcasts worker 0's initial weights (kvstore init,
    then pull) inside its first ``step``, unordered with the first gradient push-pull of the
    same keys; in MXNet 1.9.1 a pull can then reach the server before the init ("init N
    first", the server aborts) or return the first gradient sum instead of the weights (a
    worker trains from other weights). Here the keys are initialized, completed and fenced
    by barriers before training starts, and every step is an explicit push-pull of each
    gradient (summed over the devices of all workers) before ``trainer.update``.
    """

    def __init__(self, kv, net, ctx):
        self.kv, self.ctx = kv, ctx
        self.params = [p for _, p in sorted(net._collect_params_with_prefix().items())]

    def start(self):
        """Store worker 0's parameters on the servers and give them to every device of
        every worker (collective: all workers call it). Shapes must be known."""
        keys = list(range(len(self.params)))
        # Fresh plain copies: initializing keys from the parameter arrays themselves makes
        # the MXNet 1.9.1 server lose keys ("init N first") -- seen with arrays that a
        # oneDNN forward pass has used.
        self.kv.init(keys, [_plain(p.data(self.ctx[0])) for p in self.params])
        mx.nd.waitall()
        self.kv._barrier()
        for i, p in enumerate(self.params):
            self.kv.pull(i, out=p.list_data(), priority=-i)
        mx.nd.waitall()
        self.kv._barrier()

    def allreduce_grads(self):
        for i, p in enumerate(self.params):
            if p.grad_req != 'null':
                self.kv.pushpull(i, p.list_grad(), priority=-i)

    def average_aux(self):
        """Set the BN running statistics to their mean over all devices of all workers (as
        ``save_parameters`` averages over the devices of one process)."""
        total = len(self.ctx) * self.kv.num_workers
        for i, p in enumerate(self.params):
            if p.grad_req == 'null':
                sums = [mx.nd.zeros(p.shape, ctx=d.context) for d in p.list_data()]
                self.kv.push(i, [_plain(d) for d in p.list_data()], priority=-i)
                self.kv.pull(i, out=sums, priority=-i)
                for d, v in zip(p.list_data(), sums):
                    d[:] = v / total
        mx.nd.waitall()


def evaluate(net, data, ctx, classes, epoch=0):
    """(top-1 error, top-5 error or None, mean loss) of ``net`` over ``data``."""
    top1 = mx.metric.Accuracy()
    top5 = mx.metric.TopKAccuracy(5) if classes >= 20 else None
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    total, count = 0.0, 0
    for x, y in data.epoch(epoch):
        xs = gluon.utils.split_and_load(x, ctx, even_split=False)
        ys = gluon.utils.split_and_load(y, ctx, even_split=False)
        for xi, yi in zip(xs, ys):
            out = net(xi)
            top1.update(yi, out)
            if top5 is not None:
                top5.update(yi, out)
            total += float(loss_fn(out, yi).sum().asscalar())
            count += xi.shape[0]
    return (1 - top1.get()[1], None if top5 is None else 1 - top5.get()[1],
            total / max(count, 1))


def _progress(total, desc, enabled):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def fit(net, train_data, val_data, cfg, ctx, save_dir, kvstore='device', resume=False,
        progress=True, export_prefix=None, input_shape=(1, 3, 32, 32)):
    """Train ``net`` as ``cfg`` says; returns the final state dict (history, best, ...).

    ``cfg`` keys used: classes, seed, optimizer, lr, momentum, wd, lr_factor and one of
    lr_steps / lr_steps_frac / lr_steps_iter, epochs or iterations, batch_size, mixup,
    mixup_alpha, mixup_off_epochs, save_every, keep_checkpoints.
    The network must be initialized (on ``ctx``) before the call.
    """
    kv = mx.kv.create(kvstore) if isinstance(kvstore, str) else kvstore
    rank, workers = (kv.rank, kv.num_workers) if kv is not None else (0, 1)
    lead = rank == 0
    iters = len(train_data)
    epochs = resolve_epochs(cfg, iters)
    classes = cfg['classes']
    dist = kv is not None and 'dist' in kv.type
    trainer, steps = make_trainer(net, cfg, iters, epochs, kv, dist)
    mixup_until = epochs - cfg.get('mixup_off_epochs', 0) if cfg.get('mixup') else 0
    state = dict(history=[], best_error=None, best_epoch=None, epochs=epochs, lr_steps=steps)
    sync = DistSync(kv, net, ctx) if dist else None
    start = 0
    if resume:
        record = load_checkpoint(save_dir, net, trainer, ctx)
        if record is None:
            log.info('no checkpoint in %s yet: starting from epoch 1', save_dir)
        else:
            start = record['epoch']
            state.update({k: record[k] for k in ('history', 'best_error', 'best_epoch')})
    elif lead:
        refuse_existing_run(save_dir)
    # Resolve deferred shapes (predict mode: no statistics change), then give every device
    # the same initial parameters before the first forward pass. (Left to the first
    # trainer.step, Gluon broadcasts device 0's values after that forward pass has already
    # updated each device's BN statistics, so device 0's statistics of batch 1 overwrite
    # the others'.)
    for c in ctx:
        net(mx.nd.zeros((1,) + tuple(input_shape[1:]), ctx=c))
    if sync is not None:
        sync.start()
    elif start == 0:
        trainer._init_kvstore()
        trainer._init_params()
    # the gradient arrays live as long as the network: list them once for the NaN check
    grads_by_device = [[p.grad(c) for p in net.collect_params().values()
                        if p.grad_req != 'null'] for c in ctx]
    log.info('training for %d epochs x %d iterations (global batch %d on %d device(s) x %d '
             'worker(s)); lr %.4g x%.4g at updates %s', epochs, iters, cfg['batch_size'],
             len(ctx), workers, cfg['lr'], cfg['lr_factor'], steps)

    sparse_loss = gluon.loss.SoftmaxCrossEntropyLoss()
    soft_loss = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)
    for epoch in range(start, epochs):
        mx.random.seed(int(epoch_rng(cfg['seed'], epoch, STREAM_DROPOUT).randint(2 ** 31 - 1)))
        use_mixup = epoch < mixup_until
        bar = _progress(iters, 'epoch %d/%d' % (epoch + 1, epochs), progress and lead)
        tic, seen, loss_sum, correct = time.time(), 0, 0.0, 0.0
        batches = train_data.epoch(epoch, mixup_alpha=cfg['mixup_alpha'] if use_mixup else 0)
        for i, (x, target) in enumerate(batches):
            # mixup gives soft targets (B, classes); train error counts the dominant label
            label = mx.nd.argmax(target, axis=1) if use_mixup else target
            global_batch = x.shape[0]
            x, target, label = (_slice(b, rank, workers) for b in (x, target, label))
            xs = gluon.utils.split_and_load(x, ctx, even_split=False)
            ts = gluon.utils.split_and_load(target, ctx, even_split=False)
            loss_fn = soft_loss if use_mixup else sparse_loss
            with autograd.record():
                outs = [net(xi) for xi in xs]
                losses = [loss_fn(o, t) for o, t in zip(outs, ts)]
            autograd.backward(losses)
            batch_loss = sum(float(l.sum().asscalar()) for l in losses)
            # oneDNN's ReLU maps NaN to 0, so a NaN can hide from the loss and show only in
            # the gradients: check both (one fused sum of squares per device)
            grad_sq = _grad_sum_sq(grads_by_device)
            if not (math.isfinite(batch_loss) and math.isfinite(grad_sq)):
                if bar is not None:
                    bar.close()
                raise TrainingDiverged(
                    'the training %s became %s at epoch %d, iteration %d (learning rate %.4g). '
                    'Parameters were not updated with it; the last good checkpoint in %s is '
                    'kept. Lower --lr, check the data, or resume with --resume after changing '
                    'the cause.' % (
                        'loss' if not math.isfinite(batch_loss) else 'gradient',
                        batch_loss if not math.isfinite(batch_loss) else grad_sq, epoch + 1,
                        i + 1, trainer.learning_rate, save_dir))
            if sync is None:
                trainer.step(global_batch)
            else:
                sync.allreduce_grads()
                trainer.update(global_batch)
            pred = [mx.nd.argmax(o, axis=1) for o in outs]
            labels = gluon.utils.split_and_load(label, ctx, even_split=False)
            correct += sum(float((p == l.astype(p.dtype)).sum().asscalar())
                           for p, l in zip(pred, labels))
            seen += x.shape[0]
            loss_sum += batch_loss
            if bar is not None:
                bar.set_postfix(loss='%.3f' % (loss_sum / seen), lr='%.3g' % trainer.learning_rate)
                bar.update(1)
        if bar is not None:
            bar.close()
        train_time = time.time() - tic
        if sync is not None:   # one set of BN statistics for the whole cluster
            sync.average_aux()
        err1, err5, val_loss = evaluate(net, val_data, ctx, classes)
        row = dict(epoch=epoch + 1, lr=trainer.learning_rate, mixup=use_mixup,
                   train_loss=loss_sum / max(seen, 1), train_error=1 - correct / max(seen, 1),
                   test_loss=val_loss, test_error=err1, test_top5_error=err5,
                   time=train_time, images_per_sec=seen * workers / train_time)
        state['history'].append(row)
        log.info('[epoch %d/%d] lr %.4g  train loss %.4f err %.4f%s  test loss %.4f err %.4f%s  '
                 '%.1fs %.1f img/s', epoch + 1, epochs, row['lr'], row['train_loss'],
                 row['train_error'], ' (mixup)' if use_mixup else '', val_loss, err1,
                 '' if err5 is None else ' top-5 err %.4f' % err5, train_time,
                 row['images_per_sec'])
        improved = state['best_error'] is None or err1 < state['best_error']
        if improved:
            state['best_error'], state['best_epoch'] = err1, epoch + 1
        if lead:
            if improved:
                atomic_write(os.path.join(save_dir, 'best.params'), net.save_parameters)
            write_metrics_csv(os.path.join(save_dir, 'metrics.csv'), state['history'])
            plot_curves(os.path.join(save_dir, 'training-curve.png'), state['history'],
                        title=cfg.get('model', ''))
        last = epoch + 1 == epochs
        if last or (cfg.get('save_every') and (epoch + 1) % cfg['save_every'] == 0):
            if lead:
                save_checkpoint(save_dir, epoch + 1, net, trainer, state,
                                keep=cfg.get('keep_checkpoints', 2))
    log.info('done: best test error %.4f at epoch %s; final %.4f',
             state['best_error'] if state['best_error'] is not None else float('nan'),
             state['best_epoch'], state['history'][-1]['test_error'] if state['history'] else
             float('nan'))
    if export_prefix and lead:
        from ..tools.export import export_model
        sym, params = export_model(net, export_prefix, input_shape, ctx=ctx[0])
        log.info('exported %s and %s', sym, params)
        state['export'] = [sym, params]
    if lead:
        atomic_write(os.path.join(save_dir, 'result.json'), lambda p: _dump(state, p))
    return state


def _dump(obj, path):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
