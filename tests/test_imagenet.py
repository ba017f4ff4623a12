"""The ImageNet path: RecordIO files written with MXNet's own recordio tools (and im2rec, for
the demo set), the loaders over mx.io.ImageRecordIter (transforms checked against hand
computations, determinism per (seed, epoch), shards, padding), the demo set, the ImageNet
presets, and train_imagenet.py end to end (a few steps, SIGKILL + resume, dist_sync)."""
import os

import mxnet as mx
import numpy as np
import pytest

from datafiles import synthetic_images

from cmpese.data.imagenet import (IMAGENET_MEAN, IMAGENET_STD, RecordFileMissing, RecordLoader,
                                  SyntheticLoader, count_records, measure_io, part_sizes,
                                  read_index, val_resize)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_rec(prefix, images_rgb, labels, fmt='.png', quality=95):
    """``prefix.rec`` / ``prefix.idx`` with MXNet's MXIndexedRecordIO and pack_img (as
    im2rec writes them: key = position, header label = class). ``images_rgb`` are RGB; the
    files hold OpenCV's BGR encoding, as im2rec's do."""
    rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'w')
    for i, (img, label) in enumerate(zip(images_rgb, labels)):
        header = mx.recordio.IRHeader(0, float(label), i, 0)
        rec.write_idx(i, mx.recordio.pack_img(header, np.ascontiguousarray(img[..., ::-1]),
                                              quality=quality, img_fmt=fmt))
    rec.close()
    return prefix + '.rec', prefix + '.idx'


def uniform_images(n):
    """n images of one colour each, RGB = (10 + 20 i, 200 - 15 i, 7 i), sizes varying."""
    out = []
    for i in range(n):
        img = np.zeros((30 + 3 * i, 44 - i, 3), np.uint8)
        img[...] = (10 + 20 * i, 200 - 15 * i, 7 * i)
        out.append(img)
    return out


@pytest.fixture(scope='module')
def uniform_rec(tmp_path_factory):
    root = tmp_path_factory.mktemp('uniform')
    return write_rec(str(root / 'u'), uniform_images(10), np.arange(10) % 3)


# ---------------------------------------------------------------- file helpers

def test_counts_index_and_parts_by_hand(uniform_rec):
    rec, idx = uniform_rec
    assert count_records(rec) == 10
    assert read_index(idx) == list(range(10))
    # dmlc's indexed splitter: ceil(n / k) records a part, the rest in the last
    assert part_sizes(10, 3) == [4, 4, 2]
    assert part_sizes(10, 4) == [3, 3, 3, 1]
    assert part_sizes(3, 4) == [1, 1, 1, 0]
    assert val_resize(224) == 256 and val_resize(64) == 73


def test_missing_files_name_the_file_and_im2rec(tmp_path, uniform_rec):
    with pytest.raises(RecordFileMissing) as err:
        RecordLoader(str(tmp_path / 'train.rec'), batch_size=2)
    text = str(err.value)
    assert '--rec-train' in text and str(tmp_path / 'train.rec') in text
    assert 'python -m mxnet.tools.im2rec --list --recursive' in text and '\n' not in text
    # training needs the index; im2rec writes it beside the .rec
    rec = tmp_path / 'noidx.rec'
    rec.write_bytes(open(uniform_rec[0], 'rb').read())
    with pytest.raises(RecordFileMissing, match='noidx.idx'):
        RecordLoader(str(rec), batch_size=2, train=True)
    # validation reads a .rec without index (the records are counted from their headers)
    assert RecordLoader(str(rec), batch_size=4, train=False, input_size=8).num_records == 10


# ---------------------------------------------------------------- validation transforms

def test_validation_values_order_and_padding_by_hand(uniform_rec):
    rec, idx = uniform_rec
    loader = RecordLoader(rec, idx, batch_size=4, train=False, input_size=8, threads=2)
    assert len(loader) == 3 and loader.num_samples == 10
    batches = [(d.asnumpy(), l.asnumpy(), p) for d, l, p in loader.epoch(0)]
    assert [d.shape for d, _, _ in batches] == [(4, 3, 8, 8)] * 3
    assert [p for _, _, p in batches] == [0, 0, 2]      # 10 = 4 + 4 + 2 real rows
    data = np.concatenate([d for d, _, _ in batches])
    labels = np.concatenate([l for _, l, _ in batches])
    # file order, then the filler rows are the first records again
    assert labels.tolist() == [i % 3 for i in range(10)] + [0, 1]
    for i in range(10):      # a one-colour image stays one colour: (RGB - mean) / std
        rgb = np.array((10 + 20 * i, 200 - 15 * i, 7 * i), np.float64)
        expect = (rgb - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
        np.testing.assert_allclose(data[i].reshape(3, -1).mean(1), expect, atol=1e-4)
        np.testing.assert_allclose(data[i].reshape(3, -1).std(1), 0, atol=1e-4)


def test_validation_is_a_centre_crop_of_the_resized_image(tmp_path):
    # 40 x 80 image: columns 0-39 black, 40-79 white. Short side 40 -> 9 (input 8), so the
    # image becomes 9 x 18 and the centre 8 x 8 crop spans columns 5-12: the black-white
    # edge (column 9 of 18) in its middle, left half dark, right half bright.
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 40:] = 255
    rec, idx = write_rec(str(tmp_path / 'edge'), [img], [0])
    d, _, pad = next(RecordLoader(rec, idx, batch_size=1, train=False, input_size=8).epoch(0))
    pixels = d.asnumpy()[0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    assert pad == 0
    assert pixels[:, :3].max() < 10 and pixels[:, 5:].min() > 245
    np.testing.assert_allclose(pixels[:, :4].mean() + pixels[:, 4:].mean(), 255, atol=2)


# ---------------------------------------------------------------- training augmentation

@pytest.fixture(scope='module')
def pattern_rec(tmp_path_factory):
    root = tmp_path_factory.mktemp('pattern')
    images, labels = synthetic_images(24, 4, seed=3, size=40)
    return write_rec(str(root / 'p'), images, labels, fmt='.jpg')


def _epoch(loader, e):
    return [(d.asnumpy(), l.asnumpy()) for d, l in loader.epoch(e)]


def test_training_is_deterministic_per_seed_and_epoch(pattern_rec):
    rec, idx = pattern_rec
    kw = dict(batch_size=8, train=True, input_size=16, seed=5)
    a = _epoch(RecordLoader(rec, idx, threads=1, **kw), 1)
    b = _epoch(RecordLoader(rec, idx, threads=2, **kw), 1)     # other thread count
    assert len(a) == 3
    for (da, la), (db, lb) in zip(a, b):
        np.testing.assert_array_equal(da, db)
        np.testing.assert_array_equal(la, lb)
    c = _epoch(RecordLoader(rec, idx, threads=2, **kw), 2)
    d = _epoch(RecordLoader(rec, idx, threads=2, **dict(kw, seed=6)), 1)
    assert not np.array_equal(a[0][0], c[0][0]) and not np.array_equal(a[0][0], d[0][0])
    # shuffled order: every record once per epoch, a different order in another epoch
    order = lambda batches: np.concatenate([l for _, l in batches])   # noqa: E731
    assert sorted(order(a)) == sorted(order(c)) == sorted(np.arange(24) % 4)


def test_training_crops_are_random_resized_and_flipped(tmp_path):
    # one 40 x 60 image, a horizontal ramp (R = column * 4): a crop of it is a ramp again,
    # rising left to right, or falling when mirrored; scale varies with the crop's area
    img = np.zeros((40, 60, 3), np.uint8)
    img[..., 0] = (np.arange(60) * 4)[None, :]
    rec, idx = write_rec(str(tmp_path / 'ramp'), [img] * 32, [0] * 32)
    loader = RecordLoader(rec, idx, batch_size=32, train=True, input_size=12, seed=1)
    d = next(loader.epoch(0))[0].asnumpy()[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    slope = d[:, :, -1].mean(1) - d[:, :, 0].mean(1)
    assert (slope > 0).sum() >= 4 and (slope < 0).sum() >= 4          # flips both ways
    np.testing.assert_allclose(d.std(axis=1), 0, atol=3)               # rows are the ramp
    spans = np.abs(slope)
    assert spans.max() - spans.min() > 40      # crops of different widths: different spans
    assert spans.max() <= 240 + 3              # never more than the whole image's ramp
    no_flip = RecordLoader(rec, idx, batch_size=32, train=True, input_size=12, seed=1,
                           flip=False)
    d = next(no_flip.epoch(0))[0].asnumpy()[:, 0]
    assert (d[:, :, -1].mean(1) > d[:, :, 0].mean(1)).all()


def test_shards_are_disjoint_and_have_equal_batch_counts(uniform_rec):
    rec, idx = uniform_rec                   # 10 records -> parts of 4, 4, 2
    parts = [RecordLoader(rec, idx, batch_size=2, train=True, input_size=8, seed=0,
                          num_parts=3, part_index=r) for r in range(3)]
    assert [len(p) for p in parts] == [1, 1, 1]     # min(4, 4, 2) // 2: the same everywhere
    seen = []
    for r, p in enumerate(parts):
        colours = set()
        for e in range(3):
            for d, _ in p.epoch(e):
                red = d.asnumpy()[:, 0].mean(axis=(1, 2)) * IMAGENET_STD[0] + IMAGENET_MEAN[0]
                colours |= {int(round((v - 10) / 20.0)) for v in red}
        lo, hi = 4 * r, min(10, 4 * r + 4)
        assert colours <= set(range(lo, hi)), (r, colours)
        seen.append(colours)
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2])
    with pytest.raises(ValueError, match='fewer than one batch'):
        RecordLoader(rec, idx, batch_size=3, train=True, num_parts=3, part_index=0)


def test_mixup_and_label_smoothing_give_soft_targets(pattern_rec):
    rec, idx = pattern_rec
    kw = dict(batch_size=8, train=True, input_size=16, seed=2, classes=4)
    plain = _epoch(RecordLoader(rec, idx, **kw), 0)
    smooth = _epoch(RecordLoader(rec, idx, label_smoothing=0.1, **kw), 0)
    for (d0, l0), (d1, l1) in zip(plain, smooth):
        np.testing.assert_array_equal(d0, d1)
        expect = np.full((8, 4), 0.1 / 4)
        expect[np.arange(8), l0.astype(int)] += 0.9
        np.testing.assert_allclose(l1, expect, rtol=1e-6)
    loader = RecordLoader(rec, idx, **kw)
    mixed = [(d.asnumpy(), l.asnumpy()) for d, l in loader.epoch(0, mixup_alpha=1.0)]
    again = [(d.asnumpy(), l.asnumpy()) for d, l in loader.epoch(0, mixup_alpha=1.0)]
    for (d, l), (d2, l2), (d0, _) in zip(mixed, again, plain):
        np.testing.assert_array_equal(d, d2)          # the draws come from (seed, epoch)
        assert l.shape == (8, 4)
        np.testing.assert_allclose(l.sum(1), 1, rtol=1e-6)
        assert not np.array_equal(d, d0)


def test_measure_io_and_synthetic_loader(pattern_rec):
    rec, idx = pattern_rec
    r = measure_io(RecordLoader(rec, idx, batch_size=4, train=False, input_size=16))
    assert r['images'] == 24 - 4 and r['batches'] == 5 and r['images_per_sec'] > 0
    syn = SyntheticLoader(4, input_size=16, classes=10, batches=3)
    batches = list(syn.epoch(0))
    assert len(batches) == 3 and batches[0][0].shape == (4, 3, 16, 16)
    assert batches[0][1].asnumpy().tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------- demo set

def test_demo_set_from_installed_photographs(tmp_path):
    from cmpese.data import demo_imagenet
    from cmpese.errors import run
    for width in (640, 512):
        r = demo_imagenet.regions(width)
        assert r['train'][0] == 0 and r['train'][1] < r['val'][0] and r['val'][1] == width
    out = tmp_path / 'demo'
    code = run(demo_imagenet.main, ['--out', str(out), '--train-per-class', '4',
                                    '--val-per-class', '2', '--size', '24'])
    assert code == 0
    for name in ('train.rec', 'train.idx', 'train.lst', 'val.rec', 'val.idx', 'synset.txt'):
        assert (out / name).exists(), name
    assert (out / 'synset.txt').read_text().split() == ['china', 'flower', 'grace_hopper']
    assert count_records(str(out / 'train.rec')) == 12 and len(read_index(str(out / 'val.idx'))) == 6
    labels = []
    for d, l, pad in RecordLoader(str(out / 'val.rec'), batch_size=6, train=False,
                                  input_size=16).epoch(0):
        labels += l.asnumpy()[:6 - pad].tolist()
        assert d.shape == (6, 3, 16, 16)
    assert sorted(labels) == [0, 0, 1, 1, 2, 2]
    # a second build into the same directory refuses and changes nothing
    assert run(demo_imagenet.main, ['--out', str(out)]) == 2
