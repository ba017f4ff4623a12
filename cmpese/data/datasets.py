"""One entry point for every dataset, and what the training loop needs to know about each:
class count, normalization and whether the papers augment it."""
import collections

import numpy as np

from .cifar import load_cifar10, load_cifar100
from .digits import load_digits
from .mnist import load_fashion_mnist, load_mnist
from .svhn import load_svhn

__all__ = ['DATASETS', 'dataset_names', 'load_dataset', 'channel_stats', 'normalization',
           'DatasetInfo', 'dataset_info', 'load_train_test', 'OFFICIAL_SIZES', 'size_note']

# classes: label count. size: side of the square images the loader returns. augment: the
# papers' CIFAR augmentation (pad 4, random crop of the image size) for training; flip: and
# random horizontal flips. norm: 'train_stats' = per-channel mean/std of the training
# images; 'scale' = divide by 255 only (SVHN, as in the CMPE-SE paper).
DATASETS = {
    'cifar10': dict(classes=10, size=32, augment=True, flip=True, norm='train_stats'),
    'cifar100': dict(classes=100, size=32, augment=True, flip=True, norm='train_stats'),
    'svhn': dict(classes=10, size=32, augment=False, flip=False, norm='scale'),
    # digits: pad and crop, but no mirror images (a mirrored 2 or 7 is not a digit)
    'digits': dict(classes=10, size=32, augment=True, flip=False, norm='train_stats'),
    # Fashion-MNIST: native 28x28 (grey on 3 channels), pad 4 and crop 28, mirrored (a
    # mirrored shirt is a shirt; the dataset's benchmark table uses "standard crops and
    # flips"). MNIST: no mirror.
    'fashion-mnist': dict(classes=10, size=28, augment=True, flip=True, norm='train_stats'),
    'mnist': dict(classes=10, size=28, augment=True, flip=False, norm='train_stats'),
}


# The official number of images per split (SVHN 'train+extra': 73,257 + 531,131).
OFFICIAL_SIZES = {
    'cifar10': dict(title='CIFAR-10', train=50000, test=10000),
    'cifar100': dict(title='CIFAR-100', train=50000, test=10000),
    'svhn': dict(title='SVHN', train=73257, test=26032, extra=531131,
                 **{'train+extra': 604388}),
    'digits': dict(title='digits', train=1438, test=359),
    'fashion-mnist': dict(title='Fashion-MNIST', train=60000, test=10000),
    'mnist': dict(title='MNIST', train=60000, test=10000),
}


def size_note(name, split, count):
    """A sentence when ``count`` images of ``split`` are fewer than the official set's
    (e.g. "CIFAR-10 train set has 100 images, the official one 50,000"), else None."""
    sizes = OFFICIAL_SIZES.get(name, {})
    official = sizes.get(split)
    if official is None or count >= official:
        return None
    return '%s %s set has %s images, the official one %s' % (
        sizes['title'], split, '{:,}'.format(count), '{:,}'.format(official))


def dataset_names():
    return sorted(DATASETS)


def _check(name):
    if name not in DATASETS:
        raise ValueError('unknown dataset %r; choose one of %s'
                         % (name, ', '.join(dataset_names())))


def load_dataset(name, split='train', data_dir=None, download=False, extra=False):
    """``(images, labels)`` of dataset ``name``: uint8 (N, H, W, C) and int32 (N,): (N, 32, 32, 3)
    RGB for CIFAR, SVHN and digits, (N, 28, 28, 1) grey for Fashion-MNIST and MNIST.

    ``name``: 'cifar10', 'cifar100' (fine labels), 'svhn', 'digits', 'fashion-mnist' or
    'mnist'. ``split``: 'train' or
    'test' (SVHN also 'extra' and 'train+extra'; ``extra=True`` makes the SVHN 'train' split
    'train+extra'). ``data_dir`` holds the official files (default ``$CMPESE_DATA`` or
    ``./data``); missing files raise :class:`~cmpese.data.DatasetNotFound`, after one download
    attempt if ``download`` is true. 'digits' ships with scikit-learn and ignores
    ``data_dir``/``download``.
    """
    _check(name)
    if name == 'cifar10':
        return load_cifar10(split, data_dir, download)
    if name == 'cifar100':
        return load_cifar100(split, data_dir, download)
    if name == 'svhn':
        return load_svhn(split, data_dir, download, extra=extra)
    if name in ('fashion-mnist', 'mnist'):
        load = load_fashion_mnist if name == 'fashion-mnist' else load_mnist
        images, labels = load(split, data_dir, download)
        # The grey plane as three equal channels: the zoo's stems take RGB (as for the digits
        # set). It adds 0.23M of 31.2M multiply-adds (0.7%) to a pre-act ResNet-20 at 28x28;
        # padding to 32x32 would add 31% (docs/data.md).
        return np.repeat(images, 3, axis=3), labels
    return load_digits(split)


def channel_stats(images):
    """Exact per-channel mean and standard deviation (population) of uint8 NHWC ``images``,
    in pixel units (0..255), as float32 arrays of shape (C,). Computed from value histograms,
    so it needs no float copy of the images."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError('channel_stats expects uint8 images, got %s' % images.dtype)
    values = np.arange(256, dtype=np.float64)
    mean, std = [], []
    for c in range(images.shape[-1]):
        hist = np.bincount(images[..., c].ravel(), minlength=256).astype(np.float64)
        n = hist.sum()
        m = (hist * values).sum() / n
        mean.append(m)
        std.append(np.sqrt((hist * (values - m) ** 2).sum() / n))
    return np.array(mean, np.float32), np.array(std, np.float32)


def normalization(name, train_images=None):
    """``(mean, std)`` per channel, in pixel units, for ``x = (pixel - mean) / std``.

    CIFAR-10/100 and digits: the mean and std of ``train_images`` (the loaded training
    split; required). SVHN: mean 0 and std 255, i.e. ``x = pixel / 255``.
    """
    _check(name)
    if DATASETS[name]['norm'] == 'scale':
        return np.zeros(3, np.float32), np.full(3, 255.0, np.float32)
    if train_images is None:
        raise ValueError('%s is normalized with its training-set statistics; pass the training '
                         'images' % name)
    return channel_stats(train_images)


DatasetInfo = collections.namedtuple('DatasetInfo', 'name classes augment mean std flip')
DatasetInfo.__doc__ = """What the training loop needs about a dataset: ``classes`` (label count),
``augment`` (pad-crop for training), ``flip`` (and random horizontal flips), ``mean``/``std``
(float32 (3,), pixel units)."""


def dataset_info(name, train_images=None):
    """:class:`DatasetInfo` of ``name``; ``train_images`` are needed for the normalization of
    CIFAR and digits (see :func:`normalization`)."""
    _check(name)
    mean, std = normalization(name, train_images)
    spec = DATASETS[name]
    return DatasetInfo(name, spec['classes'], spec['augment'], mean, std, spec['flip'])


def load_train_test(name, data_dir=None, download=False, extra=False):
    """``(train, test, info)``: the two splits as ``(images, labels)`` and the
    :class:`DatasetInfo` computed from the training images. For SVHN ``extra=True`` trains on
    train+extra (the CMPE-SE paper's setting)."""
    train = load_dataset(name, 'train', data_dir, download, extra=extra)
    test = load_dataset(name, 'test', data_dir, download)
    return train, test, dataset_info(name, train[0])
