"""Data layer: readers against tiny files in the exact official formats, the missing-file and
failed-download behaviour, augmentation, determinism, sharding and mixup."""
import io
import os
import tarfile
import threading

import numpy as np
import pytest

import cmpese.data as data
from cmpese.data import files as common


def _image(i):
    """A hand-built 32x32x3 image whose every pixel says where it is: value
    (7*i + 3*row + col + 50*channel) mod 256."""
    r, c, ch = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing='ij')
    return ((7 * i + 3 * r + c + 50 * ch) % 256).astype(np.uint8)


def _cifar_record(image, *label_bytes):
    """One official record: label byte(s), then the R, G and B planes, each row-major."""
    return bytes(label_bytes) + image.transpose(2, 0, 1).tobytes()


def _write_cifar10(folder, counts=(2, 3, 1, 2, 2), test=3):
    """data_batch_1..5 and test_batch with the given record counts; returns what was written."""
    os.makedirs(folder, exist_ok=True)
    written, k = {'train': ([], []), 'test': ([], [])}, 0
    files = [('data_batch_%d.bin' % (j + 1), n, 'train') for j, n in enumerate(counts)]
    for name, n, split in files + [('test_batch.bin', test, 'test')]:
        with open(os.path.join(folder, name), 'wb') as f:
            for _ in range(n):
                im, label = _image(k), k % 10
                f.write(_cifar_record(im, label))
                written[split][0].append(im)
                written[split][1].append(label)
                k += 1
    return {s: (np.stack(x), np.array(y)) for s, (x, y) in written.items()}


def test_cifar_record_layout_by_hand(tmp_path):
    # label 7; red plane all 10 except row 0 col 1 = 200; green all 20; blue all 30 except
    # row 31 col 0 = 99
    planes = np.zeros((3, 32, 32), np.uint8)
    planes[0], planes[1], planes[2] = 10, 20, 30
    planes[0, 0, 1], planes[2, 31, 0] = 200, 99
    raw = bytes([7]) + planes.tobytes()
    assert raw[2] == 200 and raw[1 + 2048 + 31 * 32] == 99
    path = tmp_path / 'test_batch.bin'
    path.write_bytes(raw)
    images, labels = data.read_cifar_binary(str(path), 1)
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [7] and labels.dtype == np.int32
    assert images[0, 0, 1, 0] == 200 and images[0, 0, 0, 0] == 10
    assert images[0, 31, 0, 2] == 99 and images[0, 5, 5, 2] == 30
    assert (images[0, :, :, 1] == 20).all()


@pytest.mark.parametrize('inside', [True, False])
def test_cifar10_reads_what_was_written(tmp_path, inside):
    folder = tmp_path / 'cifar-10-batches-bin' if inside else tmp_path
    written = _write_cifar10(str(folder))
    for split in ('train', 'test'):
        images, labels = data.load_dataset('cifar10', split, str(tmp_path))
        assert images.dtype == np.uint8 and labels.dtype == np.int32
        assert images.shape == (len(written[split][0]), 32, 32, 3)
        np.testing.assert_array_equal(images, written[split][0])
        np.testing.assert_array_equal(labels, written[split][1])


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / 'cifar-100-binary'
    folder.mkdir()
    ims = [_image(i) for i in range(4)]
    fine, coarse = [99, 0, 57, 3], [19, 0, 11, 1]
    (folder / 'train.bin').write_bytes(b''.join(
        _cifar_record(im, c, f) for im, c, f in zip(ims, coarse, fine)))
    (folder / 'test.bin').write_bytes(_cifar_record(ims[0], 5, 42))
    images, labels = data.load_cifar100('train', str(tmp_path))
    np.testing.assert_array_equal(images, np.stack(ims))
    assert labels.tolist() == fine
    assert data.load_cifar100('test', str(tmp_path))[1].tolist() == [42]


def test_cifar_wrong_size_names_the_file(tmp_path):
    _write_cifar10(str(tmp_path / 'cifar-10-batches-bin'))
    bad = tmp_path / 'cifar-10-batches-bin' / 'data_batch_3.bin'
    bad.write_bytes(bad.read_bytes() + b'xyz')
    with pytest.raises(data.DatasetFormatError) as err:
        data.load_dataset('cifar10', 'train', str(tmp_path))
    assert str(bad) in str(err.value) and '3073-byte records' in str(err.value)
    (tmp_path / 'cifar-100-binary').mkdir()
    (tmp_path / 'cifar-100-binary' / 'test.bin').write_bytes(b'\0' * 3073)
    with pytest.raises(ValueError, match='3074-byte records'):
        data.load_dataset('cifar100', 'test', str(tmp_path))


def test_missing_cifar_message_and_nothing_created(tmp_path):
    root = tmp_path / 'nowhere'
    with pytest.raises(data.DatasetNotFound) as err:
        data.load_dataset('cifar10', 'train', str(root))
    assert isinstance(err.value, FileNotFoundError)
    msg = str(err.value)
    assert len(msg.splitlines()) == 2        # the command lines print it as two lines
    assert ('expected %s in %s (or directly in %s)' % (
        ', '.join('data_batch_%d.bin' % i for i in range(1, 6)), root / 'cifar-10-batches-bin',
        root)) in msg
    assert 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz' in msg
    assert '--data-dir %s' % root in msg and '3,073-byte records' in msg
    assert not root.exists()
    msg = str(pytest.raises(data.DatasetNotFound, data.load_cifar100, 'test', str(root)).value)
    assert 'expected test.bin in %s' % (root / 'cifar-100-binary') in msg
    assert 'cifar-100-binary.tar.gz' in msg


def test_failed_download_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def offline(url, path, timeout):
        calls.append(url)
        with open(path, 'wb') as f:      # a half-written file, then the network goes away
            f.write(b'partial')
        raise OSError('Name or service not known')

    monkeypatch.setattr(common, 'fetch_url', offline)
    root = tmp_path / 'new' / 'data'
    with pytest.raises(data.DatasetNotFound) as err:
        data.load_dataset('cifar10', 'test', str(root), download=True)
    assert calls == ['https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz']
    assert 'Name or service not known' in str(err.value)
    assert 'expected test_batch.bin in %s' % (root / 'cifar-10-batches-bin') in str(err.value)
    assert not (tmp_path / 'new').exists()
    existing = tmp_path / 'existing'
    existing.mkdir()
    with pytest.raises(data.DatasetNotFound) as err:
        data.load_dataset('svhn', 'train', str(existing), download=True, extra=True)
    assert calls[-1] == 'http://ufldl.stanford.edu/housenumbers/train_32x32.mat'
    assert os.listdir(str(existing)) == []


def test_download_unpacks_the_archive(tmp_path, monkeypatch):
    src = tmp_path / 'src'
    written = _write_cifar10(str(src / 'cifar-10-batches-bin'))

    def fake(url, path, timeout):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w:gz') as tar:
            tar.add(str(src / 'cifar-10-batches-bin'), arcname='cifar-10-batches-bin')
        with open(path, 'wb') as f:
            f.write(buf.getvalue())
        return path

    monkeypatch.setattr(common, 'fetch_url', fake)
    root = tmp_path / 'data'
    images, labels = data.load_dataset('cifar10', 'train', str(root), download=True)
    np.testing.assert_array_equal(images, written['train'][0])
    assert sorted(os.listdir(str(root))) == ['cifar-10-batches-bin']


def _write_svhn(path, n, first):
    from scipy.io import savemat
    x = np.stack([_image(first + i) for i in range(n)], axis=3)     # (32, 32, 3, N) uint8
    y = (((np.arange(n) + first) % 10) + 1).astype(np.uint8).reshape(n, 1)   # 1..10
    savemat(str(path), {'X': x, 'y': y})
    return np.stack([_image(first + i) for i in range(n)]), y.reshape(-1) % 10


def test_svhn_reads_mat_files(tmp_path):
    folder = tmp_path / 'svhn'
    folder.mkdir()
    tr = _write_svhn(folder / 'train_32x32.mat', 12, 0)
    te = _write_svhn(tmp_path / 'test_32x32.mat', 3, 100)          # directly in data_dir
    ex = _write_svhn(folder / 'extra_32x32.mat', 5, 200)
    images, labels = data.load_dataset('svhn', 'train', str(tmp_path))
    np.testing.assert_array_equal(images, tr[0])
    assert labels.dtype == np.int32 and labels.tolist() == tr[1].tolist()
    assert labels[9] == 0 and 10 not in labels                       # y = 10 is the digit 0
    images, labels = data.load_dataset('svhn', 'test', str(tmp_path))
    np.testing.assert_array_equal(images, te[0])
    images, labels = data.load_dataset('svhn', 'train', str(tmp_path), extra=True)
    np.testing.assert_array_equal(images, np.concatenate([tr[0], ex[0]]))
    np.testing.assert_array_equal(labels, np.concatenate([tr[1], ex[1]]))
    assert data.load_svhn('train+extra', str(tmp_path))[0].shape == (17, 32, 32, 3)


def test_svhn_missing_and_bad_files(tmp_path):
    folder = tmp_path / 'svhn'
    folder.mkdir()
    _write_svhn(folder / 'train_32x32.mat', 2, 0)
    msg = str(pytest.raises(data.DatasetNotFound, data.load_svhn, 'train', str(tmp_path),
                            extra=True).value)
    assert len(msg.splitlines()) == 2
    assert 'expected train_32x32.mat, extra_32x32.mat in %s' % folder in msg
    assert 'http://ufldl.stanford.edu/housenumbers/extra_32x32.mat' in msg
    assert 'Missing: extra_32x32.mat.' in msg and '--data-dir %s' % tmp_path in msg
    from scipy.io import savemat
    savemat(str(folder / 'test_32x32.mat'), {'X': np.zeros((32, 32, 3), np.uint8),
                                             'y': np.ones((1, 1), np.uint8)})
    with pytest.raises(data.DatasetFormatError, match='test_32x32.mat'):
        data.load_svhn('test', str(tmp_path))


def test_digits_and_metadata():
    train, test, info = data.load_train_test('digits')
    assert train[0].shape == (1438, 32, 32, 3) and test[0].shape == (359, 32, 32, 3)
    assert train[0].dtype == np.uint8 and train[1].dtype == np.int32
    assert info.classes == 10 and info.augment
    flat = train[0].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(info.mean, flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(info.std, flat.std(0), rtol=1e-5)
    mean, std = data.normalization('svhn')
    assert mean.tolist() == [0, 0, 0] and std.tolist() == [255, 255, 255]
    assert not data.dataset_info('svhn').augment and data.dataset_info('svhn').classes == 10
    assert data.DATASETS['cifar100']['classes'] == 100
    with pytest.raises(ValueError, match='unknown dataset'):
        data.load_dataset('kmnist')


def test_channel_stats_exact():
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, (20, 8, 8, 3)).astype(np.uint8)
    mean, std = data.channel_stats(images)
    flat = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, flat.std(0), rtol=1e-6)


def test_crop_flip_by_hand():
    im = _image(0)[None]
    np.testing.assert_array_equal(data.crop_flip(im, [[4, 4]], [False]), im)
    np.testing.assert_array_equal(data.crop_flip(im, [[4, 4]], [True]), im[:, :, ::-1])
    out = data.crop_flip(im, [[0, 8]], [False])      # 4 zero rows on top, shifted left by 4
    assert (out[0, :4] == 0).all() and (out[0, :, 28:] == 0).all()
    np.testing.assert_array_equal(out[0, 4:, :28], im[0, :28, 4:])
    out = data.crop_flip(im, [[8, 0]], [True])
    padded = np.pad(im[0], ((4, 4), (4, 4), (0, 0)))
    np.testing.assert_array_equal(out[0], padded[8:40, 0:32][:, ::-1])


def test_normalization_by_hand():
    im = np.zeros((1, 2, 2, 3), np.uint8)
    im[0, 0, 1] = [100, 60, 255]
    out = data.normalize(im, mean=[50, 60, 0], std=[25, 2, 255])
    assert out.shape == (1, 3, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0, 1], [2.0, 0.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(out[0, :, 0, 0], [-2.0, -30.0, 0.0], rtol=1e-6)


def _loader(n=50, **kw):
    images = np.stack([_image(i) for i in range(n)])
    labels = np.arange(n) % 10
    args = dict(batch_size=8, shuffle=True, augment=True, mean=[10, 20, 30], std=[2, 4, 8],
                seed=5)
    args.update(kw)
    return data.BatchLoader(images, labels, **args)


def test_loader_batches_are_shifted_flipped_windows():
    loader = _loader()
    plan = loader.plan(2)
    batches = list(loader.epoch(2))
    assert len(batches) == len(loader) == 7 and batches[-1][0].shape == (2, 3, 32, 32)
    x = np.concatenate([b[0].asnumpy() for b in batches])
    y = np.concatenate([b[1].asnumpy() for b in batches])
    assert sorted(plan['indices'].tolist()) == list(range(50))
    np.testing.assert_array_equal(y, plan['indices'] % 10)
    assert plan['offsets'].min() >= 0 and plan['offsets'].max() <= 8
    assert 0 < plan['flips'].sum() < 50
    for j, i in enumerate(plan['indices']):
        padded = np.pad(_image(i), ((4, 4), (4, 4), (0, 0))).astype(np.float32)
        dy, dx = plan['offsets'][j]
        window = padded[dy:dy + 32, dx:dx + 32]
        if plan['flips'][j]:
            window = window[:, ::-1]
        expect = ((window - [10, 20, 30]) / [2, 4, 8]).transpose(2, 0, 1)
        np.testing.assert_allclose(x[j], expect, rtol=1e-6, atol=1e-5)
    test = _loader(shuffle=False, augment=False, last_batch='discard')
    xs = [b[0].asnumpy() for b in test.epoch(0)]
    assert len(xs) == 6
    np.testing.assert_allclose(xs[0][3], ((_image(3) - np.float32([10, 20, 30]))
                                          / [2, 4, 8]).transpose(2, 0, 1), rtol=1e-6)


def test_loader_deterministic_per_seed_and_epoch():
    def run(loader, epoch, **kw):
        return [(x.asnumpy(), y.asnumpy()) for x, y in loader.epoch(epoch, **kw)]

    a, b = run(_loader(), 3), run(_loader(prefetch=0), 3)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], run(_loader(), 4)[0][0])
    assert not np.array_equal(a[0][0], run(_loader(seed=6), 3)[0][0])
    for _ in zip(range(2), _loader().epoch(3)):    # leaving early stops the prefetch thread
        pass
    assert not any(t.name == 'BatchLoader-prefetch' for t in threading.enumerate())
    # running the epoch again from a fresh loader (a resumed run) gives the same batches
    again = run(_loader(prefetch=0), 3)
    np.testing.assert_array_equal(again[4][0], a[4][0])
    m1, m2 = run(_loader(), 3, mixup_alpha=0.2), run(_loader(), 3, mixup_alpha=0.2)
    np.testing.assert_array_equal(m1[1][0], m2[1][0])
    np.testing.assert_array_equal(m1[1][1], m2[1][1])
    # mixup draws do not disturb order and augmentation
    plain = _loader().plan(3)
    mixed = _loader().plan(3, mixup_alpha=0.2)
    np.testing.assert_array_equal(plain['indices'], mixed['indices'])
    np.testing.assert_array_equal(plain['offsets'], mixed['offsets'])


@pytest.mark.parametrize('mixup_alpha', [0.0, 0.4])
def test_sharding_slices_the_global_batch(mixup_alpha):
    # 50 images, 3 parts of 4 rows: global batches of 12; the 4 full ones, then 2 left over,
    # fewer than one row a part: no last batch. Part r's batch b is rows 4r..4r+3 of the
    # unsharded loader's batch b, bit for bit (crops, flips and mixup partners included).
    whole = _loader(n=50, batch_size=12, classes=10)
    parts = [_loader(n=50, batch_size=4, num_parts=3, part_index=r, classes=10)
             for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4] and len(whole) == 5
    ref = list(whole.epoch_numpy(1, mixup_alpha))
    got = [list(p.epoch_numpy(1, mixup_alpha)) for p in parts]
    for b in range(4):
        for r in range(3):
            np.testing.assert_array_equal(got[r][b][0], ref[b][0][4 * r:4 * r + 4])
            np.testing.assert_array_equal(got[r][b][1], ref[b][1][4 * r:4 * r + 4])
    seen = [whole.order(1)[parts[r].batch_rows(b)[0] + 4 * r + np.arange(4)]
            for r in range(3) for b in range(4)]
    assert len(set(np.concatenate(seen).tolist())) == 48          # disjoint, 48 of 50
    # a partial last global batch is cut evenly: 50 = 3 x 14 + 8, 8 // 2 = 4 rows a part
    halves = [_loader(n=50, batch_size=7, num_parts=2, part_index=r) for r in range(2)]
    assert [len(h) for h in halves] == [4, 4]
    assert [x.shape[0] for x, _ in halves[1].epoch_numpy(0)] == [7, 7, 7, 4]
    whole = _loader(n=50, batch_size=14)
    np.testing.assert_array_equal(list(halves[1].epoch_numpy(0))[3][0],
                                  list(whole.epoch_numpy(0))[3][0][4:8])
    assert len(_loader(n=50, batch_size=7, num_parts=2, last_batch='discard')) == 3
    with pytest.raises(ValueError):
        _loader(num_parts=2, part_index=2)


def test_mixup_by_hand():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    y = np.array([0, 1, 2, 1])
    out_x, out_y, lam = data.mixup(x, y, 3, 0.4, np.random.RandomState(7))
    rng = np.random.RandomState(7)
    lam_hand, perm = rng.beta(0.4, 0.4), rng.permutation(4)
    assert lam == lam_hand and 0.0 <= lam <= 1.0
    for i in range(4):
        np.testing.assert_allclose(out_x[i], lam * x[i] + (1 - lam) * x[perm[i]], rtol=1e-6)
        target = np.zeros(3)
        target[y[i]] += lam
        target[y[perm[i]]] += 1 - lam
        np.testing.assert_allclose(out_y[i], target, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out_y.sum(1), 1.0, rtol=1e-6)
    import mxnet as mx
    nd_x, nd_y = data.mix_batch(mx.nd.array(x), mx.nd.array(y), 3, lam, perm)
    np.testing.assert_allclose(nd_x.asnumpy(), out_x, rtol=1e-6)
    np.testing.assert_allclose(nd_y.asnumpy(), out_y, rtol=1e-6, atol=1e-7)


def test_loader_mixup_targets():
    loader = _loader(classes=10)
    plan = loader.plan(0, mixup_alpha=1.0)
    assert ((plan['lam'] >= 0) & (plan['lam'] <= 1)).all()
    for b, (x, y) in enumerate(loader.epoch_numpy(0, mixup_alpha=1.0)):
        assert y.shape == (len(x), 10) and y.dtype == np.float32
        np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-6)
        hard = plan['indices'][b * 8:b * 8 + len(x)] % 10
        # own label weighs lam, plus 1 - lam where the partner has the same label
        assert (y[np.arange(len(x)), hard] >= plan['lam'][b] - 1e-6).all()
