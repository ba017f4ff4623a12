"""SVHN (cropped digits, format 2) read from the official MATLAB files.

http://ufldl.stanford.edu/housenumbers/ publishes ``train_32x32.mat`` (73,257 images),
``test_32x32.mat`` (26,032) and ``extra_32x32.mat`` (531,131). Each holds ``X``, uint8 of
shape (32, 32, 3, N) (rows, columns, RGB, image), and ``y``, shape (N, 1), with the digits
1..9 as 1..9 and the digit 0 as 10.
"""
import os

import numpy as np

from .files import DatasetFormatError, DatasetNotFound, default_data_dir, download_files

__all__ = ['load_svhn', 'read_svhn_mat', 'SVHN_FILES', 'SVHN_URL', 'SVHN_SUBDIR']

SVHN_URL = 'http://ufldl.stanford.edu/housenumbers/'
SVHN_SUBDIR = 'svhn'
SVHN_FILES = {'train': 'train_32x32.mat', 'test': 'test_32x32.mat', 'extra': 'extra_32x32.mat'}
_SPLITS = {'train': ['train'], 'test': ['test'], 'extra': ['extra'],
           'train+extra': ['train', 'extra']}


def _not_mat(path, err):
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return DatasetFormatError('%s: not a readable MATLAB file (%s); SVHN "format 2" .mat files '
                              'hold X (32, 32, 3, N) uint8 and y (N, 1). Is it truncated or '
                              'another file? Get it again from %s.' % (path, text, SVHN_URL))


def read_svhn_mat(path, contiguous=True):
    """Read one official SVHN .mat file: ``(images, labels)``, uint8 (N, 32, 32, 3) and int32
    (N,) with the label 10 mapped to the digit 0. ``contiguous=False`` returns the images as
    a transposed view of the file's array (no copy)."""
    from scipy.io import loadmat
    try:
        mat = loadmat(path, variable_names=['X', 'y'])
    except OSError as err:
        if err.errno is None:      # scipy's own "not a MAT file" errors
            raise _not_mat(path, err) from err
        raise DatasetFormatError('cannot read %s (%s); it should be an SVHN .mat file with X '
                                 '(32, 32, 3, N) uint8 and y (N, 1). Make it readable or pass '
                                 'another --data-dir.' % (path, err.strerror or err)) from err
    except Exception as err:
        raise _not_mat(path, err) from err
    if 'X' not in mat or 'y' not in mat:
        raise DatasetFormatError('%s: expected variables X and y, found %s'
                                 % (path, sorted(k for k in mat if not k.startswith('__'))))
    x, y = mat['X'], np.asarray(mat['y']).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.shape[0]:
        raise DatasetFormatError('%s: X has shape %s and y %s; expected X (32, 32, 3, N) and '
                                 'y (N, 1)' % (path, x.shape, mat['y'].shape))
    if x.dtype != np.uint8:
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DatasetFormatError('%s: X values outside 0..255' % path)
        x = x.astype(np.uint8)
    labels = y.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 10):
        raise DatasetFormatError('%s: labels outside 1..10 (10 is the digit 0)' % path)
    labels[labels == 10] = 0
    images = x.transpose(3, 0, 1, 2)
    return (np.ascontiguousarray(images) if contiguous else images), labels.astype(np.int32)


def _find(name, data_dir):
    for folder in (os.path.join(data_dir, SVHN_SUBDIR), data_dir):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def _not_found(split, names, data_dir, reason):
    """Two lines: which files where, in which format; where to get them and what to pass."""
    root = os.path.abspath(data_dir)
    folder = os.path.join(root, SVHN_SUBDIR)
    first = ('SVHN (%s split) not found: expected %s in %s (or directly in %s), the official '
             'SVHN "format 2" (cropped 32x32 digits) MATLAB files, each with X (32, 32, 3, N) '
             'uint8 and y (N, 1), label 10 for the digit 0.'
             % (split, ', '.join(names), folder, root))
    second = ('Get them from %s, put them in %s, then pass --data-dir %s.%s'
              % (', '.join(SVHN_URL + n for n in names), folder, root,
                 ' ' + reason if reason else ''))
    return DatasetNotFound(first + '\n' + second)


def load_svhn(split='train', data_dir=None, download=False, extra=False):
    """SVHN ``split``: 'train', 'test', 'extra' or 'train+extra' (``extra=True`` turns 'train'
    into 'train+extra', the CMPE-SE paper's training set).

    Files are looked for in ``data_dir/svhn/``, then in ``data_dir``. Returns ``(images,
    labels)``: uint8 (N, 32, 32, 3) and int32 (N,) digits 0..9. Missing files raise
    :class:`DatasetNotFound`, after one download attempt (into ``data_dir/svhn/``) if
    ``download`` is true.
    """
    if extra and split == 'train':
        split = 'train+extra'
    if split not in _SPLITS:
        raise ValueError("SVHN split must be one of %s, got %r" % (sorted(_SPLITS), split))
    data_dir = default_data_dir() if data_dir is None else os.path.expanduser(data_dir)
    names = [SVHN_FILES[s] for s in _SPLITS[split]]
    missing = [n for n in names if _find(n, data_dir) is None]
    if missing:
        if not download:
            raise _not_found(split, names, data_dir,
                             'Missing: %s. Automatic download is off (download=False).'
                             % ', '.join(missing))
        try:
            download_files([SVHN_URL + n for n in missing], os.path.join(data_dir, SVHN_SUBDIR),
                           missing)
        except Exception as err:
            raise _not_found(split, names, data_dir, 'Missing: %s. Download from %s failed: %s'
                             % (', '.join(missing), SVHN_URL, err)) from err
    if len(names) == 1:
        return read_svhn_mat(_find(names[0], data_dir))
    # train+extra is 1.8 GB: size the result from the file headers, then fill it file by
    # file, so that at most one file's array exists beside it
    from scipy.io import whosmat
    paths = [_find(n, data_dir) for n in names]
    counts = []
    for path in paths:
        try:
            shape = dict((v[0], v[1]) for v in whosmat(path)).get('X', ())
        except Exception:   # read_svhn_mat below names the problem
            shape = ()
        counts.append(shape[3] if len(shape) == 4 else None)
    if None in counts:  # let read_svhn_mat report the format problem
        parts = [read_svhn_mat(p) for p in paths]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    images = np.empty((sum(counts), 32, 32, 3), np.uint8)
    labels, start = [], 0
    for path, count in zip(paths, counts):
        x, y = read_svhn_mat(path, contiguous=False)
        images[start:start + count] = x
        labels.append(y)
        start += count
        del x
    return images, np.concatenate(labels)
