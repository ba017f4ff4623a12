"""CIFAR-10 and CIFAR-100 read from the official binary version.

CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz) unpacks to
``cifar-10-batches-bin/`` with ``data_batch_1.bin`` .. ``data_batch_5.bin`` (10,000 images
each) and ``test_batch.bin`` (10,000). Every record is 3,073 bytes: the label (0..9), then
the 32x32 image as 1,024 red, 1,024 green and 1,024 blue bytes, each plane row-major.

CIFAR-100 (https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz) unpacks to
``cifar-100-binary/`` with ``train.bin`` (50,000) and ``test.bin`` (10,000). Every record is
3,074 bytes: the coarse label (0..19), the fine label (0..99), then the image as above.

The files are read here rather than through ``gluon.data.vision.CIFAR10``, which checks the
SHA-1 of every file and downloads the archive again when the check fails.
"""
import os

import numpy as np

from .files import DatasetFormatError, DatasetNotFound, default_data_dir, download_files

__all__ = ['load_cifar10', 'load_cifar100', 'read_cifar_binary', 'CIFAR_SPECS']

_PIXELS = 3 * 32 * 32

CIFAR_SPECS = {
    'cifar10': dict(
        title='CIFAR-10', subdir='cifar-10-batches-bin', label_bytes=1, classes=10,
        files={'train': ['data_batch_%d.bin' % i for i in range(1, 6)],
               'test': ['test_batch.bin']},
        url='https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
        record='3,073-byte records: 1 label byte (0-9), then 3,072 pixel bytes (1,024 red, '
               '1,024 green, 1,024 blue; each a row-major 32x32 plane); 10,000 records a file'),
    'cifar100': dict(
        title='CIFAR-100', subdir='cifar-100-binary', label_bytes=2, classes=100,
        files={'train': ['train.bin'], 'test': ['test.bin']},
        url='https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
        record='3,074-byte records: coarse label byte (0-19), fine label byte (0-99), then '
               '3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue; each a row-major 32x32 '
               'plane); 50,000 records in train.bin, 10,000 in test.bin'),
}


def _title(label_bytes):
    return 'CIFAR-10' if label_bytes == 1 else 'CIFAR-100'


def read_cifar_binary(path, label_bytes):
    """Read one official CIFAR binary file.

    Returns ``(images, labels)``: uint8 (N, 32, 32, 3) and int32 (N,). With
    ``label_bytes=2`` (CIFAR-100) the label is the second (fine) label byte. A file that
    cannot be read, is not a whole number of records or holds labels out of range raises
    :class:`DatasetFormatError` naming it and the expected format.
    """
    record = label_bytes + _PIXELS
    title = _title(label_bytes)
    layout = ('records of %d label byte%s + 3,072 pixel bytes (R, G, B planes of 32x32)'
              % (label_bytes, '' if label_bytes == 1 else 's'))
    try:
        size = os.path.getsize(path)
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise DatasetFormatError('cannot read %s (%s); it should be a %s binary file of %s. '
                                 'Make it readable or pass another --data-dir.'
                                 % (path, err.strerror or err, title, layout)) from err
    if size == 0 or size % record or raw.size != size:
        raise DatasetFormatError(
            '%s: %d bytes is not a whole number of %d-byte records (%s); a %s binary file '
            'holds %s. Is it truncated or another file? Get the official archive again.'
            % (path, size, record, '{:,}'.format(record), title, layout))
    raw = raw.reshape(-1, record)
    limits = [(0, 10)] if label_bytes == 1 else [(0, 20), (1, 100)]
    for column, classes in limits:
        top = int(raw[:, column].max())
        if top >= classes:
            raise DatasetFormatError(
                '%s: a %slabel byte is %d, outside 0..%d, so this is not %s binary data (%s). '
                'Is it garbage or another dataset? Get the official archive again.'
                % (path, ('coarse ' if column == 0 else 'fine ') if label_bytes == 2 else '',
                   top, classes - 1, title, layout))
    labels = raw[:, label_bytes - 1].astype(np.int32)
    images = raw[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _find(spec, split, data_dir):
    """The directory holding every file of ``split``: ``data_dir/<subdir>`` or ``data_dir``.
    An expected name that exists but is not a regular file is a format error."""
    for folder in (os.path.join(data_dir, spec['subdir']), data_dir):
        for f in spec['files'][split]:
            path = os.path.join(folder, f)
            if os.path.exists(path) and not os.path.isfile(path):
                raise DatasetFormatError('%s is a directory (or another non-file), expected the '
                                         '%s binary file of %s' % (path, spec['title'],
                                                                   spec['record']))
        if all(os.path.isfile(os.path.join(folder, f)) for f in spec['files'][split]):
            return folder
    return None


def _not_found(spec, split, data_dir, reason):
    """Two lines: which files where, in which format; where to get them and what to pass."""
    root = os.path.abspath(data_dir)
    folder = os.path.join(root, spec['subdir'])
    first = ('%s (%s split) not found: expected %s in %s (or directly in %s), the official '
             '"binary version" of %s, %s.' % (spec['title'], split,
                                             ', '.join(spec['files'][split]), folder, root,
                                             spec['title'], spec['record']))
    second = ('Get %s, unpack it with: mkdir -p %s && tar xzf %s -C %s, then pass --data-dir %s '
              '(the directory that holds %s/).%s'
              % (spec['url'], root, spec['url'].split('/')[-1], root, root, spec['subdir'],
                 ' ' + reason if reason else ''))
    return DatasetNotFound(first + '\n' + second)


def _load(name, split, data_dir, download):
    spec = CIFAR_SPECS[name]
    if split not in spec['files']:
        raise ValueError("%s split must be 'train' or 'test', got %r" % (spec['title'], split))
    data_dir = default_data_dir() if data_dir is None else os.path.expanduser(data_dir)
    folder = _find(spec, split, data_dir)
    if folder is None:
        if not download:
            raise _not_found(spec, split, data_dir,
                             'Automatic download is off (download=False).')
        produces = [os.path.join(spec['subdir'], f)
                    for s in ('train', 'test') for f in spec['files'][s]]
        try:
            download_files([spec['url']], data_dir, produces)
        except Exception as err:  # no network, HTTP error, broken archive
            raise _not_found(spec, split, data_dir, 'Download of %s failed: %s'
                             % (spec['url'], err)) from err
        folder = os.path.join(data_dir, spec['subdir'])
    parts = [read_cifar_binary(os.path.join(folder, f), spec['label_bytes'])
             for f in spec['files'][split]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_cifar10(split='train', data_dir=None, download=False):
    """CIFAR-10 ``split`` ('train': data_batch_1..5, 'test': test_batch) from the binary files.

    Files are looked for in ``data_dir/cifar-10-batches-bin/``, then in ``data_dir``. Returns
    ``(images, labels)``: uint8 (N, 32, 32, 3) RGB and int32 (N,). Missing files raise
    :class:`DatasetNotFound`, after one download attempt of the official archive if
    ``download`` is true.
    """
    return _load('cifar10', split, data_dir, download)


def load_cifar100(split='train', data_dir=None, download=False):
    """CIFAR-100 ``split`` ('train' or 'test') with its fine (100-class) labels.

    Files are looked for in ``data_dir/cifar-100-binary/``, then in ``data_dir``. Returns
    ``(images, labels)`` as :func:`load_cifar10`.
    """
    return _load('cifar100', split, data_dir, download)
