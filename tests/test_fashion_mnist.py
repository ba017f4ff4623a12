"""Fashion-MNIST and MNIST: the idx reader against hand-built files (gzipped and not), every
format error, the folder search, a short train_cifar.py run on small files in the official
format, and the real files when Debian's dataset-fashion-mnist package is installed."""
import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from datafiles import synthetic_images

import cmpese.data as data
from cmpese.data import DatasetFormatError, DatasetNotFound, read_idx, write_idx
from cmpese.data.idx import IDX_IMAGES, IDX_LABELS
from cmpese.data.mnist import mnist_folders

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM = '/usr/share/datasets/fashion-mnist'
NAMES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
         'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}


def _write_set(folder, train=60, test=20, gz=True, seed=0):
    """The four official files of a small set; returns {split: (images (N,28,28), labels)}."""
    os.makedirs(folder, exist_ok=True)
    out = {}
    for split, n in (('train', train), ('test', test)):
        images, labels = synthetic_images(n, 10, seed=seed + (split == 'test'), size=28)
        grey = images.max(axis=3)     # the bands of every channel
        suffix = '.gz' if gz else ''
        write_idx(os.path.join(folder, NAMES[split][0] + suffix), grey)
        write_idx(os.path.join(folder, NAMES[split][1] + suffix), labels.astype(np.uint8))
        out[split] = (grey, labels)
    return out


def test_idx_header_by_hand(tmp_path):
    # magic 2051 = 0x00000803: zero, zero, type 0x08 (ubyte), 3 dimensions; then 2, 3, 4
    pixels = bytes(range(24))
    raw = b'\x00\x00\x08\x03' + struct.pack('>III', 2, 3, 4) + pixels
    assert struct.unpack('>i', raw[:4])[0] == IDX_IMAGES == 2051
    path = tmp_path / 'x-idx3-ubyte'
    path.write_bytes(raw)
    arr = read_idx(str(path), IDX_IMAGES, (3, 4))
    assert arr.shape == (2, 3, 4) and arr.dtype == np.uint8
    assert arr[1, 2, 3] == 23 and arr[0, 1, 0] == 4
    labels = b'\x00\x00\x08\x01' + struct.pack('>I', 3) + bytes([7, 0, 9])
    assert struct.unpack('>i', labels[:4])[0] == IDX_LABELS == 2049
    (tmp_path / 'y.gz').write_bytes(gzip.compress(labels))
    assert read_idx(str(tmp_path / 'y.gz'), IDX_LABELS, ()).tolist() == [7, 0, 9]


@pytest.mark.parametrize('gz', [True, False])
def test_reads_the_official_layout_gzipped_or_not(tmp_path, gz):
    written = _write_set(str(tmp_path / 'fashion-mnist'), gz=gz)
    for split in ('train', 'test'):
        images, labels = data.load_fashion_mnist(split, str(tmp_path))
        assert images.shape == (len(written[split][0]), 28, 28, 1)
        assert images.dtype == np.uint8 and labels.dtype == np.int32
        np.testing.assert_array_equal(images[..., 0], written[split][0])
        np.testing.assert_array_equal(labels, written[split][1])
    # through the dataset layer: native size, the grey plane on three channels
    x, y = data.load_dataset('fashion-mnist', 'test', str(tmp_path))
    assert x.shape == (20, 28, 28, 3) and (x[..., 0] == x[..., 2]).all()
    info = data.dataset_info('fashion-mnist', x)
    assert info.classes == 10 and info.flip and info.augment
    np.testing.assert_allclose(info.mean, [written['test'][0].mean()] * 3, rtol=1e-5)
    assert data.DATASETS['fashion-mnist']['size'] == 28
    # what visualize looks at: the split, with the dataset's class names
    from cmpese.analysis.images import load_images
    seen = load_images(data='fashion-mnist:test', data_dir=str(tmp_path), count=10,
                       input_size=28)
    assert seen.data.shape == (10, 3, 28, 28)
    assert seen.class_names[:2] == ['T-shirt/top', 'Trouser'] and len(seen.class_names) == 10


def _corrupt(path, how):
    raw = open(path, 'rb').read()
    body = gzip.decompress(raw)
    if how == 'magic':
        body = b'\x00\x00\x08\x02' + body[4:]
    elif how == 'type':
        body = b'\x00\x00\x0d' + body[3:]
    elif how == 'count':
        body = body[:4] + struct.pack('>I', struct.unpack('>I', body[4:8])[0] + 1) + body[8:]
    elif how == 'size':
        body = body[:8] + struct.pack('>I', 27) + body[12:]
    elif how == 'truncated_gzip':
        open(path, 'wb').write(raw[:len(raw) // 2])
        return
    elif how == 'short':
        body = body[:-5]
    open(path, 'wb').write(gzip.compress(body))


@pytest.mark.parametrize('how,words', [
    ('magic', 'magic number 2050'),
    ('type', 'not that of an unsigned-byte idx file'),
    ('count', 'truncated'),
    ('size', 'items of size 27x28, expected 28x28'),
    ('truncated_gzip', 'not a complete gzip file'),
    ('short', 'truncated'),
])
def test_every_format_error_names_the_file(tmp_path, how, words):
    _write_set(str(tmp_path), gz=True)
    path = str(tmp_path / (NAMES['train'][0] + '.gz'))
    _corrupt(path, how)
    with pytest.raises(DatasetFormatError) as err:
        data.load_fashion_mnist('train', str(tmp_path))
    text = str(err.value)
    assert path in text and words in text, text
    assert '\n' not in text


def test_swapped_and_mismatched_files(tmp_path):
    _write_set(str(tmp_path), train=60, test=20, gz=False)
    images = tmp_path / NAMES['test'][0]
    labels = tmp_path / NAMES['test'][1]
    images.rename(tmp_path / 'tmp')
    labels.rename(images)
    (tmp_path / 'tmp').rename(labels)
    with pytest.raises(DatasetFormatError, match='magic number 2049 .labels., expected 2051'):
        data.load_fashion_mnist('test', str(tmp_path))
    _write_set(str(tmp_path), train=60, test=20, gz=False)
    write_idx(str(labels), np.zeros(7, np.uint8))
    with pytest.raises(DatasetFormatError, match='holds 20 images but .* holds 7 labels'):
        data.load_fashion_mnist('test', str(tmp_path))
    write_idx(str(labels), np.full(20, 11, np.uint8))
    with pytest.raises(DatasetFormatError, match='a label is 11'):
        data.load_fashion_mnist('test', str(tmp_path))


def test_missing_files_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv('CMPESE_DATA', raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFound) as err:
        data.load_mnist('train', str(tmp_path / 'nowhere'))
    first, second = str(err.value).split('\n')
    assert 'train-images-idx3-ubyte.gz' in first and str(tmp_path / 'nowhere') in first
    assert '--data-dir' in second and 'download is off' in second


def test_folder_order(tmp_path, monkeypatch):
    monkeypatch.setenv('CMPESE_DATA', str(tmp_path / 'env'))
    monkeypatch.chdir(tmp_path)
    folders = mnist_folders('fashion-mnist', str(tmp_path / 'given'))
    assert folders[:4] == [str(tmp_path / 'given' / 'fashion-mnist'), str(tmp_path / 'given'),
                           str(tmp_path / 'env' / 'fashion-mnist'), str(tmp_path / 'env')]
    assert folders[-1] == SYSTEM
    assert SYSTEM not in mnist_folders('mnist')
    # the first folder that holds the split wins: --data-dir over $CMPESE_DATA
    _write_set(str(tmp_path / 'env'), train=30, test=10)
    assert len(data.load_fashion_mnist('test')[1]) == 10
    _write_set(str(tmp_path / 'given' / 'fashion-mnist'), train=30, test=12)
    assert len(data.load_fashion_mnist('test', str(tmp_path / 'given'))[1]) == 12


def test_train_cifar_trains_on_small_official_files(tmp_path):
    _write_set(str(tmp_path / 'data' / 'fashion-mnist'), train=640, test=100)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_cifar.py'), '--model', 'preresnet20',
         '--dataset', 'fashion-mnist', '--data-dir', str(tmp_path / 'data'), '--epochs', '3',
         '--batch-size', '32', '--save-dir', str(tmp_path / 'run'), '--no-progress'],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=600, universal_newlines=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Fashion-MNIST train set has 640 images, the official one 60,000' in proc.stderr
    assert "'fashion_mnist'" in proc.stderr or 'fashion_mnist' in proc.stderr  # its preset
    import csv
    with open(str(tmp_path / 'run' / 'metrics.csv')) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    # it learns: the training loss halves and the test error is below chance (0.9)
    assert float(rows[-1]['train_loss']) < 0.5 * float(rows[0]['train_loss'])
    assert float(rows[-1]['test_error']) < 0.9


@pytest.mark.skipif(not os.path.isdir(SYSTEM), reason='Debian dataset-fashion-mnist not installed')
def test_real_fashion_mnist_files():
    x, y = data.load_fashion_mnist('train')
    xt, yt = data.load_fashion_mnist('test')
    assert x.shape == (60000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    # the dataset's published statistics: mean 0.2860, std 0.3530 of the [0, 1] pixels
    mean, std = data.channel_stats(x)
    assert abs(mean[0] / 255 - 0.2860) < 5e-4 and abs(std[0] / 255 - 0.3530) < 5e-4
    assert data.FASHION_MNIST_CLASSES[int(y[0])] == 'Ankle boot'
