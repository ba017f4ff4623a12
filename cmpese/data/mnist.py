"""Fashion-MNIST and MNIST read from their four official idx files.

Fashion-MNIST (Xiao, Rasul and Vollgraf, arXiv:1708.07747) has 60,000 training and 10,000 test
images of clothing, 28x28 grey levels, 10 classes; MNIST (LeCun et al.) the same sizes in
handwritten digits. Both come as

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

(gzipped or not; format in :mod:`cmpese.data.idx`). The folders searched, in order, are
``data_dir`` (``--data-dir``), ``$CMPESE_DATA``, ``./data`` and, for Fashion-MNIST, the folder
where Debian's ``dataset-fashion-mnist`` package puts them
(``/usr/share/datasets/fashion-mnist``); in each, ``<folder>/<dataset>/`` is tried before
``<folder>`` itself. Nothing is downloaded when the files are present. Gluon's
``gluon.data.vision.FashionMNIST`` is not used: it checks the SHA-1 of each archive and
downloads again on a mismatch, and Debian's recompressed archives differ in hash but not in
content.

Images are returned at their native 28x28 with one channel (docs/data.md says why, with the
measurement).
"""
import os

import numpy as np

from .files import DatasetFormatError, DatasetNotFound, default_data_dir, download_files
from .idx import IDX_IMAGES, IDX_LABELS, read_idx

__all__ = ['load_fashion_mnist', 'load_mnist', 'MNIST_SPECS', 'FASHION_MNIST_CLASSES',
           'mnist_folders']

_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
          'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}

FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                         'Shirt', 'Sneaker', 'Bag', 'Ankle boot')

MNIST_SPECS = {
    'fashion-mnist': dict(
        title='Fashion-MNIST', subdir='fashion-mnist', system='/usr/share/datasets/fashion-mnist',
        url='http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
        package='apt-get install dataset-fashion-mnist',
        classes=FASHION_MNIST_CLASSES),
    'mnist': dict(
        title='MNIST', subdir='mnist', system=None,
        url='https://ossci-datasets.s3.amazonaws.com/mnist/', package=None,
        classes=tuple(str(i) for i in range(10))),
}


def mnist_folders(name, data_dir=None):
    """The folders searched for dataset ``name``, in order (see the module docstring)."""
    spec = MNIST_SPECS[name]
    roots = []
    if data_dir is not None:
        roots.append(os.path.expanduser(data_dir))
    if os.environ.get('CMPESE_DATA'):
        roots.append(os.environ['CMPESE_DATA'])
    roots.append(default_data_dir())
    out = []
    for root in roots:
        for folder in (os.path.join(root, spec['subdir']), root):
            if folder not in out:
                out.append(folder)
    if spec['system'] and spec['system'] not in out:
        out.append(spec['system'])
    return out


def _file_in(folder, base):
    """``folder/base.gz`` or ``folder/base``, whichever is a file (gzipped first), else None.
    A name that exists but is not a file is a format error."""
    for name in (base + '.gz', base):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
        if os.path.exists(path):
            raise DatasetFormatError('%s is a directory (or another non-file), expected an idx '
                                     'file' % path)
    return None


def _find(name, split, data_dir):
    """``(images_path, labels_path)`` from the first folder holding both files of ``split``."""
    for folder in mnist_folders(name, data_dir):
        paths = [_file_in(folder, base) for base in _FILES[split]]
        if all(paths):
            return paths
    return None


def _not_found(name, split, data_dir, reason=''):
    spec = MNIST_SPECS[name]
    files = ', '.join(b + '.gz' for b in _FILES[split])
    first = ('%s (%s split) not found: expected %s (gzipped or not) in one of %s.'
             % (spec['title'], split, files, ', '.join(mnist_folders(name, data_dir))))
    how = ('install them with `%s`, or ' % spec['package']) if spec['package'] else ''
    second = ('To fix: %sput the four official idx files from %s into a folder and pass '
              '--data-dir FOLDER (or set CMPESE_DATA).%s'
              % (how, spec['url'], ' ' + reason if reason else ''))
    return DatasetNotFound(first + '\n' + second)


def _load(name, split, data_dir, download):
    if split not in _FILES:
        raise ValueError("%s split must be 'train' or 'test', got %r"
                         % (MNIST_SPECS[name]['title'], split))
    paths = _find(name, split, data_dir)
    if paths is None:
        if not download:
            raise _not_found(name, split, data_dir, 'Automatic download is off.')
        spec = MNIST_SPECS[name]
        root = os.path.join(default_data_dir() if data_dir is None
                            else os.path.expanduser(data_dir), spec['subdir'])
        bases = [b + '.gz' for s in ('train', 'test') for b in _FILES[s]]
        try:
            download_files([spec['url'] + b for b in bases], root, bases)
        except Exception as err:  # no network, HTTP error
            raise _not_found(name, split, data_dir, 'Download from %s failed: %s'
                             % (spec['url'], err)) from err
        paths = _find(name, split, data_dir)
    images_path, labels_path = paths
    images = read_idx(images_path, IDX_IMAGES, (28, 28))
    labels = read_idx(labels_path, IDX_LABELS, ())
    if len(images) != len(labels):
        raise DatasetFormatError('%s holds %s images but %s holds %s labels; the two files '
                                 'must be of one split of one dataset'
                                 % (images_path, '{:,}'.format(len(images)), labels_path,
                                    '{:,}'.format(len(labels))))
    if len(labels) and int(labels.max()) > 9:
        raise DatasetFormatError('%s: a label is %d, outside 0..9; is it the labels file of '
                                 'another dataset?' % (labels_path, int(labels.max())))
    return images[..., None].copy(), labels.astype(np.int32)


def load_fashion_mnist(split='train', data_dir=None, download=False):
    """Fashion-MNIST ``split`` ('train': 60,000, 'test': 10,000) from the official idx files.

    Returns ``(images, labels)``: uint8 (N, 28, 28, 1) and int32 (N,) in 0..9
    (:data:`FASHION_MNIST_CLASSES`). Missing files raise :class:`DatasetNotFound` naming the
    folders searched; a damaged file :class:`DatasetFormatError` naming it.
    """
    return _load('fashion-mnist', split, data_dir, download)


def load_mnist(split='train', data_dir=None, download=False):
    """MNIST ``split`` from the official idx files; as :func:`load_fashion_mnist`."""
    return _load('mnist', split, data_dir, download)
