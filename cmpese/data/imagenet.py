"""ImageNet-format RecordIO data (files made by MXNet's im2rec) read with
``mx.io.ImageRecordIter``, deterministic per ``(seed, epoch)`` and sharded per worker.

Training (:class:`RecordLoader` with ``train=True``): random-resized crop to the input size
(area 0.08-1 of the image, aspect 3/4-4/3, the ResNet/SENet "random-size crop"), horizontal
flip, optional rotation and colour jitter (the SENet ILSVRC 2017 extras), per-channel
``(pixel - mean) / std``. Validation (``train=False``): short side resized to 256 (for a 224
input; ``input_size * 256 / 224`` in general), centre crop, the same normalization.

What ``mx.io.ImageRecordIter`` does, and what this module does about it (MXNet 1.9.1, read
from ``src/io/iter_image_recordio_2.cc`` and dmlc-core's ``indexed_recordio_split.cc``):

* Order: with an ``.idx`` file and ``shuffle`` the iterator permutes the records of its part
  with a generator seeded once by ``seed``; each ``reset()`` draws the next permutation. A
  fresh iterator is built for every epoch with ``seed`` derived from ``(seed, epoch)``, so
  epoch ``e`` has the same order whether the run is resumed or not.
* Augmentation: each decoding thread owns a generator seeded with a constant, and records
  are handed to threads in the order they are reached, so draws depend on thread timing.
  ``seed_aug`` re-seeds the generator before every record with ``seed_aug + position in the
  batch``, which makes the draws independent of the thread count and timing. It is derived
  from ``(seed, epoch)`` as well. (Consequence: within one epoch, position ``i`` of every
  batch gets the same crop/flip draws applied to a different, shuffled image; over epochs
  every image gets independent draws.)
* Sharding: ``num_parts`` / ``part_index`` give part ``r`` the records
  ``[r * ceil(N / k), (r + 1) * ceil(N / k))`` in file order (:func:`part_sizes`), and
  shuffling stays inside a part. Parts differ in size when ``k`` does not divide ``N`` (and
  the last can be much smaller), so a training epoch has ``min_r floor(n_r / batch)``
  batches on every worker: ``dist_sync`` hangs at the end of an epoch when workers run
  different numbers of steps.
* The last batch: with ``round_batch=False`` MXNet 1.9.1 returns the last, partial batch
  with ``pad = 0`` and leftover rows from the previous batch (wrong data, wrong count), so
  the iterators here keep ``round_batch=True``: the last batch is filled with records from
  the start and ``pad`` says how many. Validation batches are ``(data, label, pad)`` and
  the last ``pad`` rows must be ignored (the evaluation counts each image once; GluonCV's
  ``train_imagenet.py`` and ``Module.score`` count the filler images too).
* Data arrays are buffers the iterator recycles a few batches later: use a batch before
  drawing the next ones, or copy it.

A missing ``.rec`` or ``.idx`` file raises :class:`RecordFileMissing` (a ``DatasetNotFound``)
whose one-line message names the file, the flag and the im2rec commands that make it
(docs/imagenet.md). What the files hold is checked before the first iterator reads them
(:mod:`cmpese.data.recordio_check`: a truncated or foreign ``.rec``, an empty or foreign
``.idx``, labels beyond ``classes``), each problem one line naming the file.
"""
import os

import numpy as np

from .files import DatasetFormatError, DatasetNotFound
from .loader import STREAM_AUGMENT, STREAM_MIXUP, STREAM_ORDER, epoch_rng, mix_batch

__all__ = ['RecordLoader', 'SyntheticLoader', 'RecordFileMissing', 'IMAGENET_MEAN',
           'IMAGENET_STD', 'record_paths', 'count_records', 'read_index', 'part_sizes',
           'val_resize', 'im2rec_commands', 'measure_io', 'read_synset']

# ImageNet training-set channel statistics in pixel units (RGB), as GluonCV and MXNet's
# examples use them: [0.485, 0.456, 0.406] and [0.229, 0.224, 0.225] times 255.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

_MAX_SEED = 2 ** 30      # ImageRecordIter seeds are C ints; seed_aug + position must fit


class RecordFileMissing(DatasetNotFound):
    """A RecordIO file (``.rec`` or ``.idx``) named by a flag does not exist."""


def im2rec_commands(prefix='train', folder='/data/imagenet/train', resize=256):
    """The two im2rec commands that make ``prefix.rec`` and ``prefix.idx`` from a folder of
    class sub-folders (one class per sub-folder, labels in sorted folder order)."""
    return ('python -m mxnet.tools.im2rec --list --recursive %s %s && '
            'python -m mxnet.tools.im2rec --resize %d --quality 95 --num-thread 8 %s %s'
            % (prefix, folder, resize, prefix, folder))


def _missing(path, flag, what):
    stem = os.path.splitext(os.path.basename(path))[0] or 'train'
    return RecordFileMissing(
        '%s %s: %s does not exist. Make it from a folder of class sub-folders with MXNet\'s '
        'im2rec: %s (docs/imagenet.md; a small demo set: python -m cmpese.data.demo_imagenet '
        '--out DIR)' % (flag, path, what, im2rec_commands(
            os.path.join(os.path.dirname(path) or '.', stem), '<image folder>')))


def record_paths(rec, idx=None, flag='--rec-train', idx_flag=None, need_idx=True):
    """Check that ``rec`` (and its index) exist and hold what their format promises
    (:func:`cmpese.data.recordio_check.check_record_set`: the first record, every index
    entry against the ``.rec``, a truncated file); return ``(rec, idx or None)``.

    ``idx`` defaults to ``rec`` with ``.idx`` for ``.rec`` (what im2rec writes beside it).
    Without ``need_idx`` a missing default index is allowed (None is returned); an index
    given explicitly must exist.
    """
    from .recordio_check import check_record_set
    idx_flag = idx_flag or flag + '-idx'
    if not rec or not os.path.isfile(rec):
        raise _missing(rec or '<none given>', flag, 'the RecordIO file')
    explicit = idx is not None
    if idx is None:
        idx = os.path.splitext(rec)[0] + '.idx'
    if not os.path.isfile(idx):
        if explicit or need_idx:
            raise _missing(idx, idx_flag if explicit else '%s (index of %s)' % (idx_flag, rec),
                           'the index file (im2rec writes it beside the .rec)')
        idx = None
    check_record_set(rec, idx, flag=flag, idx_flag=idx_flag if explicit else False)
    return rec, idx


def read_index(idx):
    """The record keys of an im2rec ``.idx`` file (``key<TAB>offset`` lines), in file
    order."""
    keys = []
    with open(idx) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise DatasetFormatError('%s line %d: expected "key<TAB>offset", got %r; is it '
                                         'an im2rec .idx file?' % (idx, n, line.strip()[:60]))
            keys.append(int(parts[0]))
    if not keys:
        raise DatasetFormatError('%s is empty: no records to read' % idx)
    return keys


def count_records(rec):
    """Number of records in a RecordIO file, read from the record headers only (a seek per
    record; no image is read). A damaged or truncated file is a
    :class:`~cmpese.data.recordio_check.RecordFileError` naming it."""
    from .recordio_check import check_record_set
    return check_record_set(rec, None, flag=None).count


def part_sizes(n, parts):
    """Records of each of ``parts`` parts of ``n`` records, as dmlc's indexed RecordIO
    splitter cuts them: ``ceil(n / parts)`` each, the remainder in the last, then empty
    parts."""
    step = (n + parts - 1) // parts
    return [max(0, min(n, (r + 1) * step) - min(n, r * step)) for r in range(parts)]


def val_resize(input_size):
    """Short side the validation images are resized to before the centre crop: 256 for
    224 (the papers' evaluation), ``round(input_size * 256 / 224)`` otherwise."""
    return int(round(input_size * 256.0 / 224.0))


def read_synset(path):
    """Class names, one a line (``synset.txt`` beside the demo set), or None if absent."""
    if path and os.path.isfile(path):
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    return None


class RecordLoader(object):
    """Batches from an im2rec RecordIO file over ``mx.io.ImageRecordIter``.

    Parameters
    ----------
    rec, idx : paths of the ``.rec`` and its ``.idx`` (training needs the index; ``idx=None``
        looks for it beside the ``.rec``).
    batch_size : batch of this worker (the global batch divided by the workers).
    train : training augmentation, shuffling, equal batch counts over parts, ``(data,
        label)`` batches; else validation transforms and ``(data, label, pad)`` batches
        covering every record of the part once (the last padded).
    input_size : side of the square crop (224).
    mean, std : per-channel normalization in pixel units, RGB.
    seed : every draw of epoch ``e`` comes from ``(seed, e)``.
    num_parts, part_index : this worker's shard.
    threads : decoding threads (``--data-nthreads``).
    min_area, max_area, min_aspect, max_aspect : the random-resized crop (0.08, 1, 3/4, 4/3).
    flip : random horizontal flip in training.
    rotate : training images rotated by a random angle in [-rotate, rotate] degrees.
    hsl_jitter : (h, s, l) random offsets of the HSL channels (MXNet's random_h/s/l).
    pca_noise : AlexNet-style PCA lighting noise.
    classes : class count (mixup's one-hot targets).
    resize : validation short side (default :func:`val_resize`).
    pinned : decode into pinned CPU memory (faster copies to GPUs).
    label_smoothing : training targets ``(1 - eps) * onehot + eps / classes`` (soft targets,
        ``(B, classes)``; with mixup the mixed targets are smoothed).
    dtype : 'float32', or 'float16' for a network cast to float16 (data and labels are cast;
        the iterator itself decodes float32).
    """

    def __init__(self, rec, idx=None, batch_size=256, train=True, input_size=224,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, seed=0, num_parts=1, part_index=0,
                 threads=4, min_area=0.08, max_area=1.0, min_aspect=3.0 / 4.0,
                 max_aspect=4.0 / 3.0, flip=True, rotate=0, hsl_jitter=(0, 0, 0),
                 pca_noise=0.0, classes=None, resize=None, pinned=False, flag=None,
                 label_smoothing=0.0, dtype='float32', classes_flag='--classes'):
        from .recordio_check import check_labels, check_record_set
        flag = flag or ('--rec-train' if train else '--rec-val')
        self.rec, self.idx = record_paths(rec, idx, flag=flag, need_idx=train)
        if batch_size < 1:
            raise ValueError('batch_size must be positive, got %r' % (batch_size,))
        if not 0 <= part_index < num_parts:
            raise ValueError('part_index %d not in [0, num_parts=%d)' % (part_index, num_parts))
        self.batch_size, self.train = int(batch_size), bool(train)
        self.input_size = int(input_size)
        self.mean, self.std = tuple(map(float, mean)), tuple(map(float, std))
        self.seed, self.num_parts, self.part_index = int(seed), int(num_parts), int(part_index)
        self.threads = max(1, int(threads))
        self.augment = dict(min_area=min_area, max_area=max_area, min_aspect=min_aspect,
                            max_aspect=max_aspect, flip=bool(flip), rotate=int(rotate),
                            hsl_jitter=tuple(int(v) for v in hsl_jitter),
                            pca_noise=float(pca_noise))
        self.resize = int(resize) if resize else val_resize(self.input_size)
        self.classes = classes
        self.pinned = bool(pinned)
        self.label_smoothing = float(label_smoothing or 0.0)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError('label smoothing must be in [0, 1), got %r' % (label_smoothing,))
        if self.label_smoothing and not classes:
            raise ValueError('label smoothing needs the class count (classes=)')
        self.dtype = str(dtype)
        # what the files hold, checked before any iterator reads them (remembered from
        # record_paths): the record count, and every label a class index below ``classes``
        self.records = check_record_set(self.rec, self.idx, flag=flag)
        self.num_records = self.records.count
        if classes:
            check_labels(self.records, int(classes), flag=flag, classes_flag=classes_flag)
        self.part_records = part_sizes(self.num_records, self.num_parts)
        if self.train:
            self.batches = min(self.part_records) // self.batch_size
            if self.batches == 0:
                raise ValueError(
                    '%s has %d records; its smallest of %d part(s) has %d, fewer than one batch '
                    'of %d. Lower --batch-size (it is divided over the workers).' % (
                        self.rec, self.num_records, self.num_parts, min(self.part_records),
                        self.batch_size))
        else:
            n = self.part_records[self.part_index]
            self.batches = (n + self.batch_size - 1) // self.batch_size

    def __len__(self):
        """Batches per epoch (the same on every part in training)."""
        return self.batches

    @property
    def num_samples(self):
        """Images this part yields per epoch (validation: every record of the part once)."""
        if self.train:
            return self.batches * self.batch_size
        return self.part_records[self.part_index]

    def seeds(self, epoch):
        """``(order seed, augmentation seed)`` of ``epoch``, from ``(seed, epoch)``."""
        return (int(epoch_rng(self.seed, epoch, STREAM_ORDER).randint(_MAX_SEED)),
                int(epoch_rng(self.seed, epoch, STREAM_AUGMENT).randint(_MAX_SEED)))

    def iterator_args(self, epoch=0):
        """The keyword arguments of the ``mx.io.ImageRecordIter`` of ``epoch``."""
        order_seed, aug_seed = self.seeds(epoch)
        args = dict(path_imgrec=self.rec, data_shape=(3, self.input_size, self.input_size),
                    batch_size=self.batch_size, preprocess_threads=self.threads,
                    num_parts=self.num_parts, part_index=self.part_index, round_batch=True,
                    mean_r=self.mean[0], mean_g=self.mean[1], mean_b=self.mean[2],
                    std_r=self.std[0], std_g=self.std[1], std_b=self.std[2],
                    device_id=0 if self.pinned else -1, verbose=False)
        if self.idx is not None:
            args['path_imgidx'] = self.idx
        if self.train:
            a = self.augment
            args.update(shuffle=True, seed=order_seed, seed_aug=aug_seed,
                        random_resized_crop=True, min_random_area=a['min_area'],
                        max_random_area=a['max_area'], min_aspect_ratio=a['min_aspect'],
                        max_aspect_ratio=a['max_aspect'], rand_mirror=a['flip'])
            if a['rotate']:
                args.update(max_rotate_angle=a['rotate'])
            if any(a['hsl_jitter']):
                args.update(random_h=a['hsl_jitter'][0], random_s=a['hsl_jitter'][1],
                            random_l=a['hsl_jitter'][2])
            if a['pca_noise']:
                args.update(pca_noise=a['pca_noise'])
        else:
            args.update(shuffle=False, resize=self.resize)
        return args

    def iterator(self, epoch=0):
        """A fresh ``mx.io.ImageRecordIter`` positioned at the start of ``epoch``."""
        import mxnet as mx
        return mx.io.ImageRecordIter(**self.iterator_args(epoch))

    def epoch(self, epoch, mixup_alpha=0.0, start_batch=0):
        """The batches of ``epoch`` (0-based): ``(data, label)`` in training (soft targets
        ``(B, classes)`` with ``mixup_alpha > 0``), ``(data, label, pad)`` in validation.
        ``data`` is float32 NCHW normalized, ``label`` float32 class indices (soft targets
        with label smoothing). ``start_batch`` skips the first batches of the same epoch."""
        import mxnet as mx
        it = self.iterator(epoch)
        mix_rng = None
        if self.train and mixup_alpha and mixup_alpha > 0:
            if not self.classes:
                raise ValueError('mixup needs the class count (classes=)')
            mix_rng = epoch_rng(self.seed, epoch, STREAM_MIXUP, self.part_index)
        eps, classes = self.label_smoothing, self.classes
        try:
            for b in range(self.batches):
                batch = it.next()
                data, label = batch.data[0], batch.label[0]
                if mix_rng is not None:
                    lam = float(mix_rng.beta(mixup_alpha, mixup_alpha))
                    perm = mix_rng.permutation(self.batch_size)
                if b < start_batch:
                    continue
                if self.train and mix_rng is not None:
                    data, label = mix_batch(data, label, int(classes), lam, perm)
                if self.train and eps:
                    if label.ndim == 1:
                        label = mx.nd.one_hot(label, int(classes))
                    label = label * (1.0 - eps) + eps / float(classes)
                if self.dtype != 'float32':
                    data, label = data.astype(self.dtype), label.astype(self.dtype)
                yield (data, label) if self.train else (data, label, int(batch.pad))
        finally:
            del it

    __call__ = epoch


class SyntheticLoader(object):
    """``batches`` identical random batches of the given shape a epoch (``--benchmark``):
    the model's throughput without any data loading. Labels cycle through the classes."""

    def __init__(self, batch_size, input_size=224, classes=1000, batches=20, seed=0,
                 train=True, ctx=None, dtype='float32'):
        import mxnet as mx
        rng = np.random.RandomState(seed)
        self.batch_size, self.batches, self.train = int(batch_size), int(batches), bool(train)
        self.classes = int(classes)
        self.data = mx.nd.array(rng.normal(size=(batch_size, 3, input_size, input_size)),
                                dtype=dtype, ctx=ctx or mx.cpu())
        self.label = mx.nd.array(np.arange(batch_size) % classes, dtype=dtype,
                                 ctx=ctx or mx.cpu())
        self.num_samples = self.batches * self.batch_size

    def __len__(self):
        return self.batches

    def epoch(self, epoch=0, mixup_alpha=0.0, start_batch=0):
        for _ in range(start_batch, self.batches):
            if mixup_alpha and mixup_alpha > 0:
                yield mix_batch(self.data, self.label, self.classes, 0.5,
                                np.arange(self.batch_size)[::-1])
            elif self.train:
                yield self.data, self.label
            else:
                yield self.data, self.label, 0

    __call__ = epoch


def measure_io(loader, batches=None, epoch=0, warmup=1):
    """Decode throughput of ``loader`` alone: ``dict(images, seconds, images_per_sec,
    batches, epochs)`` over ``batches`` batches (default: one epoch) after ``warmup`` batches
    (which include building the first iterator). More batches than an epoch has run on into
    the next epochs, each with its fresh iterator, whose set-up is then timed too. Each batch
    is waited for (``wait_to_read``); nothing else is computed. Padding rows are not
    counted."""
    import itertools
    import time
    total = len(loader) if batches is None else int(batches)

    def stream():
        for e in itertools.count(epoch):
            for batch in loader.epoch(e):
                yield e, batch
    it = stream()
    for _ in range(warmup):
        next(it)[1][0].wait_to_read()
    seen, last, tic = 0, epoch, time.time()
    for _ in range(total):
        last, batch = next(it)
        batch[0].wait_to_read()
        seen += batch[0].shape[0] - (batch[2] if len(batch) > 2 else 0)
    seconds = time.time() - tic
    it.close()
    return dict(images=seen, seconds=seconds, batches=total, epochs=last - epoch + 1,
                images_per_sec=seen / seconds if seconds > 0 else float('nan'))
