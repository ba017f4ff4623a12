"""A deterministic, vectorized batch iterator over in-memory uint8 images, and mixup.

Everything random in an epoch is drawn, before its first batch, from numpy RandomStates
seeded with ``(seed, epoch, stream)`` (see :func:`epoch_rng`): the order of the samples
(stream 0), the crop offsets and flips (stream 1, one draw per position in the epoch's
order) and the mixup draws (stream 2, one per global batch). None of them depends on how
the epoch is sharded over workers, so ``k`` workers see exactly the rows that one process
sees, cut into ``k`` slices. Running epoch ``e`` again, after a crash, gives the same
batches bit for bit.
"""
import queue
import threading

import numpy as np

__all__ = ['BatchLoader', 'epoch_rng', 'crop_flip', 'normalize', 'mixup', 'mix_batch',
           'STREAM_ORDER', 'STREAM_AUGMENT', 'STREAM_MIXUP']

STREAM_ORDER, STREAM_AUGMENT, STREAM_MIXUP = 0, 1, 2


def epoch_rng(seed, epoch, stream=0, part=0):
    """``np.random.RandomState`` seeded with the tuple ``(seed, epoch, stream, part)``.

    Streams 0-2 are the loader's (order, augmentation, mixup); other code that wants its own
    per-epoch draws can take a stream number of 10 or more.
    """
    key = [int(seed), int(epoch), int(stream), int(part)]
    if any(k < 0 or k >= 2 ** 32 for k in key):
        raise ValueError('seed, epoch, stream and part must be in [0, 2**32), got %s' % key)
    return np.random.RandomState(key)


def crop_flip(images, offsets, flips, pad=4):
    """Zero-pad uint8 NHWC ``images`` by ``pad`` on each side and cut the window of the
    original size whose top-left corner in the padded image is ``offsets[i] = (dy, dx)``
    (each in ``0..2*pad``), mirrored left-right where ``flips[i]`` is true. One gather for
    the whole batch."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, c), images.dtype)
    padded[:, pad:pad + h, pad:pad + w] = images
    offsets = np.asarray(offsets, np.int64).reshape(n, 2)
    flips = np.asarray(flips, bool).reshape(n)
    rows = offsets[:, :1] + np.arange(h)                               # (n, h)
    cols = np.where(flips[:, None], np.arange(w - 1, -1, -1), np.arange(w)) + offsets[:, 1:]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def normalize(images, mean=None, std=None):
    """uint8 NHWC ``images`` -> float32 NCHW ``(pixel - mean) / std`` (per channel, pixel
    units; ``None`` means 0 and 1)."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    out = np.empty((n, c, h, w), np.float32)
    out[...] = images.transpose(0, 3, 1, 2)
    if mean is not None:
        out -= np.asarray(mean, np.float32).reshape(1, c, 1, 1)
    if std is not None:
        out *= (1.0 / np.asarray(std, np.float64)).astype(np.float32).reshape(1, c, 1, 1)
    return out


def _one_hot(labels, classes):
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    out = np.zeros((labels.size, classes), np.float32)
    out[np.arange(labels.size), labels] = 1.0
    return out


def mix_batch(data, labels, classes, lam, perm):
    """Mixup with given draws: ``lam * x + (1 - lam) * x[perm]`` and soft targets
    ``lam * onehot(y) + (1 - lam) * onehot(y[perm])``, float32 (B, classes).

    ``data``/``labels`` are numpy arrays or MXNet NDArrays (the result is of the same kind).
    """
    perm = np.asarray(perm, np.int64)
    try:
        import mxnet as mx
        is_nd = isinstance(data, mx.nd.NDArray)
    except ImportError:  # pragma: no cover
        is_nd = False
    if is_nd:
        idx = mx.nd.array(perm, ctx=data.context, dtype='int64')
        x = data * lam + mx.nd.take(data, idx) * (1.0 - lam)
        onehot = mx.nd.one_hot(labels.reshape((-1,)).astype('float32'), classes)
        y = onehot * lam + mx.nd.take(onehot, idx.as_in_context(onehot.context)) * (1.0 - lam)
        return x, y
    data = np.asarray(data)
    x = (data * np.float32(lam) + data[perm] * np.float32(1.0 - lam)).astype(np.float32)
    onehot = _one_hot(labels, classes)
    y = onehot * np.float32(lam) + onehot[perm] * np.float32(1.0 - lam)
    return x, y


def mixup(data, labels, classes, alpha, rng):
    """Mixup (Zhang et al. 2018): ``lam ~ Beta(alpha, alpha)`` for the batch, a random
    pairing ``perm`` of its samples, then :func:`mix_batch`. Draws ``lam`` and then ``perm``
    from ``rng`` (a ``np.random.RandomState``). Returns ``(mixed data, soft targets, lam)``.
    """
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(int(data.shape[0]))
    x, y = mix_batch(data, labels, classes, lam, perm)
    return x, y, lam


class _Failure(object):
    def __init__(self, exc):
        self.exc = exc


_END = object()


class BatchLoader(object):
    """Batches of ``(data, label)`` NDArrays from uint8 NHWC ``images`` and int ``labels``.

    Parameters
    ----------
    images, labels : uint8 (N, H, W, C) and integer (N,) numpy arrays (kept, not copied).
    batch_size : int, the batch of this part (of one worker; the whole batch when
        ``num_parts=1``).
    shuffle : a new order every epoch (else the stored order).
    flip : with ``augment``, also the random horizontal flip (default; off for digits, whose
        mirror images are not digits). The flips are drawn either way, so the crops are the
        same with and without it.
    augment : zero-pad by ``pad``, random HxW crop and random horizontal flip (the papers'
        CIFAR training augmentation).
    mean, std : per-channel normalization in pixel units, ``(pixel - mean) / std``; SVHN's
        /255 is ``mean=0, std=255``. ``None``: 0 and 1.
    seed : every draw of epoch ``e`` comes from ``epoch_rng(seed, e, ...)``.
    last_batch : 'keep' (a smaller last batch) or 'discard'.
    num_parts, part_index : sharding for distributed workers (``kv.num_workers``,
        ``kv.rank``). The epoch's order is cut into global batches of
        ``num_parts * batch_size`` consecutive positions, the same on every worker, and part
        ``r`` takes the ``r``-th of ``num_parts`` equal contiguous slices of each: its batch
        ``b`` is rows ``r*B .. (r+1)*B - 1`` of the global batch ``b`` that one loader with
        ``num_parts=1`` and batch ``num_parts * batch_size`` gives, bit for bit (augmentation
        and mixup included: a mixup partner may lie in another part's slice). A partial last
        global batch (with 'keep') is cut into ``num_parts`` slices of ``rest // num_parts``
        rows, the ``rest % num_parts`` positions left over are skipped that epoch. So every
        part has the same number of batches of the same sizes, which ``dist_sync`` needs.
    classes : number of classes (for mixup's one-hot targets); default ``labels.max() + 1``.
    prefetch : batches prepared ahead in a background thread (0: none, in the caller's
        thread).

    ``data`` is float32 (B, C, H, W), ``label`` float32 (B,) class indices, or, with mixup,
    float32 (B, classes) soft targets. Both are on the CPU.
    """

    def __init__(self, images, labels, batch_size, shuffle=False, augment=False, mean=None,
                 std=None, pad=4, seed=0, last_batch='keep', num_parts=1, part_index=0,
                 classes=None, prefetch=2, flip=True):
        images = np.asarray(images)
        labels = np.asarray(labels).reshape(-1)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError('images must be uint8 (N, H, W, C), got %s %s'
                             % (images.dtype, images.shape))
        if len(images) != len(labels):
            raise ValueError('%d images but %d labels' % (len(images), len(labels)))
        if last_batch not in ('keep', 'discard'):
            raise ValueError("last_batch must be 'keep' or 'discard', got %r" % (last_batch,))
        if num_parts < 1 or not 0 <= part_index < num_parts:
            raise ValueError('part_index %d not in [0, num_parts=%d)' % (part_index, num_parts))
        if batch_size < 1:
            raise ValueError('batch_size must be positive')
        self.images, self.labels = images, labels
        self.batch_size = int(batch_size)
        self.shuffle, self.augment, self.pad = bool(shuffle), bool(augment), int(pad)
        self.flip = bool(flip)
        self.mean = None if mean is None else np.asarray(mean, np.float32)
        self.std = None if std is None else np.asarray(std, np.float32)
        self.seed, self.last_batch = int(seed), last_batch
        self.num_parts, self.part_index = int(num_parts), int(part_index)
        self.classes = int(classes) if classes is not None else (
            int(labels.max()) + 1 if len(labels) else 0)
        self.prefetch = int(prefetch)

    @property
    def global_batch(self):
        """Rows of a full batch over all parts."""
        return self.batch_size * self.num_parts

    def _geometry(self):
        """(full global batches, rows a part takes from the partial last one or 0)."""
        full, rest = divmod(len(self.images), self.global_batch)
        last = rest // self.num_parts if self.last_batch == 'keep' else 0
        return full, last

    def __len__(self):
        """Batches per epoch (the same for every part)."""
        full, last = self._geometry()
        return full + (1 if last else 0)

    def batch_rows(self, b):
        """``(start, rows)``: global batch ``b`` starts at position ``start`` of the epoch's
        order and gives each part ``rows`` rows."""
        full, last = self._geometry()
        return b * self.global_batch, (self.batch_size if b < full else last)

    def order(self, epoch):
        """The sample order of ``epoch`` shared by all parts (length N)."""
        n = len(self.images)
        if self.shuffle:
            return epoch_rng(self.seed, epoch, STREAM_ORDER).permutation(n)
        return np.arange(n)

    def plan(self, epoch, mixup_alpha=0.0):
        """Every random draw of ``epoch``, for all parts: the sample order ``indices``, crop
        ``offsets`` and ``flips`` per position of that order, and with mixup ``lam`` per
        global batch and the ``pair_keys`` whose stable argsort pairs the rows of a global
        batch."""
        plan = {'indices': self.order(epoch)}
        if self.augment:
            n = len(self.images)
            rng = epoch_rng(self.seed, epoch, STREAM_AUGMENT)
            offsets = rng.randint(0, 2 * self.pad + 1, size=(n, 2))
            flips = rng.randint(0, 2, size=n).astype(bool)
            plan['offsets'], plan['flips'] = offsets, flips & self.flip
        if mixup_alpha and mixup_alpha > 0:
            rng = epoch_rng(self.seed, epoch, STREAM_MIXUP)
            # one draw per global batch of the unsharded epoch, whatever the sharding
            nb = -(-len(self.images) // self.global_batch)
            plan['lam'] = rng.beta(mixup_alpha, mixup_alpha, size=nb)
            plan['pair_keys'] = rng.random_sample((nb, self.global_batch))
        return plan

    def _rows(self, plan, positions):
        """Normalized (augmented) images and labels at ``positions`` of the order."""
        idx = plan['indices'][positions]
        x = self.images[idx]
        if self.augment:
            x = crop_flip(x, plan['offsets'][positions], plan['flips'][positions], self.pad)
        return normalize(x, self.mean, self.std), self.labels[idx]

    def make_batch(self, plan, b):
        """Batch ``b`` of this part, from a :meth:`plan`, as numpy ``(data, label)``."""
        start, rows = self.batch_rows(b)
        own = np.arange(self.part_index * rows, (self.part_index + 1) * rows)
        x, y = self._rows(plan, start + own)
        if 'lam' not in plan:
            return x, y.astype(np.float32)
        lam = float(plan['lam'][b])
        perm = np.argsort(plan['pair_keys'][b, :rows * self.num_parts], kind='stable')
        if self.num_parts == 1:
            return mix_batch(x, y, self.classes, lam, perm)
        # the partners of this part's rows, wherever they lie in the global batch; the same
        # arithmetic as mix_batch, so the rows equal those of the unsharded loader
        px, py = self._rows(plan, start + perm[own])
        mixed = (x * np.float32(lam) + px * np.float32(1.0 - lam)).astype(np.float32)
        target = (_one_hot(y, self.classes) * np.float32(lam) +
                  _one_hot(py, self.classes) * np.float32(1.0 - lam))
        return mixed, target

    def epoch_numpy(self, epoch, mixup_alpha=0.0):
        """The batches of ``epoch`` as numpy arrays, computed in the caller's thread."""
        plan = self.plan(epoch, mixup_alpha)
        for b in range(len(self)):
            yield self.make_batch(plan, b)

    def epoch(self, epoch, mixup_alpha=0.0):
        """Iterate over the ``(data, label)`` NDArray batches of ``epoch`` (0-based).

        ``mixup_alpha > 0`` mixes every batch (lam ~ Beta(alpha, alpha)) and gives soft
        targets. With ``prefetch > 0`` the next batches are prepared in a background thread
        while the caller trains; leaving the loop early (or closing the generator) stops it.
        """
        import mxnet as mx

        def to_nd(item):
            x, y = item
            return mx.nd.array(x, dtype=np.float32), mx.nd.array(y, dtype=np.float32)

        if self.prefetch <= 0:
            for item in self.epoch_numpy(epoch, mixup_alpha):
                yield to_nd(item)
            return
        source = self.epoch_numpy(epoch, mixup_alpha)
        q = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item):
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def work():
            try:
                for item in source:
                    if not put(item):
                        return
                put(_END)
            except BaseException as exc:  # handed to the consumer
                put(_Failure(exc))

        thread = threading.Thread(target=work, name='BatchLoader-prefetch', daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    break
                if isinstance(item, _Failure):
                    raise item.exc
                yield to_nd(item)
        finally:
            stop.set()
            thread.join()
