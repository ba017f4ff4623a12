"""The ImageNet path: RecordIO files written with MXNet's own recordio tools (and im2rec, for
the demo set), the loaders over mx.io.ImageRecordIter (transforms checked against hand
computations, determinism per (seed, epoch), shards, padding), the demo set, the ImageNet
presets, and train_imagenet.py end to end (a few steps, SIGKILL + resume, dist_sync)."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading

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
    im2rec writes them: key = position, header label = class), and the ``prefix.lst``.
    ``images_rgb`` are RGB; the files hold OpenCV's BGR encoding, as im2rec's do."""
    rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'w')
    with open(prefix + '.lst', 'w') as lst:      # the list im2rec packs from
        for i, (img, label) in enumerate(zip(images_rgb, labels)):
            header = mx.recordio.IRHeader(0, float(label), i, 0)
            rec.write_idx(i, mx.recordio.pack_img(header, np.ascontiguousarray(img[..., ::-1]),
                                                  quality=quality, img_fmt=fmt))
            lst.write('%d\t%f\timg%04d%s\n' % (i, label, i, fmt))
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
    loader = RecordLoader(rec, idx, batch_size=4, train=False, input_size=16)   # 6 batches
    r = measure_io(loader)            # one warm-up batch, then one epoch's worth of batches
    assert (r['images'], r['batches'], r['epochs']) == (24, 6, 2) and r['images_per_sec'] > 0
    r = measure_io(loader, batches=10, warmup=0)
    assert (r['images'], r['batches'], r['epochs']) == (40, 10, 2)
    syn = SyntheticLoader(4, input_size=16, classes=10, batches=3)
    batches = list(syn.epoch(0))
    assert len(batches) == 3 and batches[0][0].shape == (4, 3, 16, 16)
    assert batches[0][1].asnumpy().tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------- demo set

def test_demo_set_from_installed_photographs(tmp_path, capsys):
    from cmpese.cli.demo_imagenet import main as demo_main
    from cmpese.data import demo_imagenet
    from cmpese.errors import run
    for width in (640, 512):
        r = demo_imagenet.regions(width)
        assert r['train'][0] == 0 and r['train'][1] < r['val'][0] and r['val'][1] == width
    out = tmp_path / 'demo'
    code = run(demo_main, ['--out', str(out), '--train-per-class', '4',
                           '--val-per-class', '2', '--size', '24'])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == 'train: python train_imagenet.py --model se_resnet50 --rec-train ' \
        '%s --rec-val %s --input-size 64 --batch-size 16 --epochs 10 --lr 0.05 --lr-steps 7 ' \
        '--save-dir runs/demo --export' % (out / 'train.rec', out / 'val.rec')
    for name in ('train.rec', 'train.idx', 'train.lst', 'val.rec', 'val.idx', 'synset.txt'):
        assert (out / name).exists(), name
    assert (out / 'synset.txt').read_text().split() == ['china', 'flower', 'grace_hopper']
    assert count_records(str(out / 'train.rec')) == 12
    assert len(read_index(str(out / 'val.idx'))) == 6
    labels = []
    for d, l, pad in RecordLoader(str(out / 'val.rec'), batch_size=6, train=False,
                                  input_size=16).epoch(0):
        labels += l.asnumpy()[:6 - pad].tolist()
        assert d.shape == (6, 3, 16, 16)
    assert sorted(labels) == [0, 0, 1, 1, 2, 2]
    # a second build into the same directory refuses and changes nothing
    assert run(demo_main, ['--out', str(out)]) == 2


# ---------------------------------------------------------------- presets

def test_imagenet_presets_are_the_papers_and_cite_them():
    from cmpese.training.presets import default_preset, get_preset
    p = get_preset('senet')               # SENet 5.1: batch 1024, lr 0.6, /10 every 30, 100
    assert (p['optimizer'], p['momentum'], p['batch_size'], p['lr'], p['epochs'],
            p['lr_steps'], p['lr_factor']) == ('sgd', 0.9, 1024, 0.6, 100, [30, 60, 90], 0.1)
    p = get_preset('cmpe_imagenet')       # CMPE-SE: batch 64, lr 0.1, /10 at 30, 60, 90
    assert (p['batch_size'], p['lr'], p['epochs'], p['lr_steps']) == (64, 0.1, 100,
                                                                       [30, 60, 90])
    p = get_preset('ini_imagenet')        # InI: batch 256, lr 0.1, /10 every 30, 100
    assert (p['batch_size'], p['lr'], p['epochs'], p['lr_steps']) == (256, 0.1, 100,
                                                                       [30, 60, 90])
    for name in ('senet', 'cmpe_imagenet', 'ini_imagenet'):
        p = get_preset(name)
        assert p['wd'] == 1e-4 and 'inherited from the ResNet papers' in p['source']
    assert default_preset('se_resnet50', 'imagenet') == 'senet'
    assert default_preset('resnet101', 'imagenet') == 'senet'
    assert default_preset('cmpe_se_resnet50_1x1', 'imagenet') == 'cmpe_imagenet'
    assert default_preset('ini_resnet50_mix_5_d_spa4', 'imagenet') == 'ini_imagenet'


# ---------------------------------------------------------------- train_imagenet.py

SCRIPT = os.path.join(ROOT, 'train_imagenet.py')
BENCH = os.path.join(ROOT, 'benchmarks', 'bench_train_models.py')   # the model comparison
TINY = 'cmpe_se_wrn10_1_1x1'     # a CIFAR net (one block a stage): the fast stand-in


def _script(args, cwd, check=True, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, SCRIPT] + list(args), cwd=str(cwd), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          universal_newlines=True)
    if check and proc.returncode != 0:
        raise AssertionError('train_imagenet.py %s failed (%d):\n%s' % (
            ' '.join(args), proc.returncode, proc.stderr[-4000:]))
    return proc


def _history(save_dir):
    with open(os.path.join(str(save_dir), 'metrics.csv')) as f:
        return list(csv.DictReader(f))


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


@pytest.fixture(scope='module')
def seven(tmp_path_factory):
    """A 7-class RecordIO pair (28 train, 14 val) with im2rec's .lst beside the train file."""
    root = tmp_path_factory.mktemp('seven')
    train = write_rec(str(root / 'train'), *synthetic_images(28, 7, seed=21, size=40))
    val = write_rec(str(root / 'val'), *synthetic_images(14, 7, seed=22, size=40))
    return dict(root=root, train=train[0], val=val[0])


def test_resnet50_trains_a_few_steps_with_the_real_script(seven, tmp_path):
    out = tmp_path / 'run'
    proc = _script(['--model', 'se_resnet50', '--rec-train', seven['train'], '--rec-val',
                    seven['val'], '--classes', '7', '--input-size', '32', '--batch-size', '4',
                    '--epochs', '1', '--data-nthreads', '2', '--save-dir', str(out),
                    '--export'], tmp_path)
    # the senet preset (batch 1024, lr 0.6) scaled linearly to the global batch of 4
    assert 'preset senet: SENet paper, Sec. 5.1' in proc.stderr
    assert '0.6 x 4 / 1024 = 0.002344' in proc.stderr
    assert 'epoch 1/1' in proc.stderr                      # the progress bar
    row = _history(out)[0]
    assert row['epoch'] == '1' and np.isfinite(float(row['train_loss']))
    assert 0 <= float(row['test_top5_error']) <= float(row['test_error']) <= 1
    assert float(row['lr']) == pytest.approx(0.6 * 4 / 1024)
    config = json.loads((out / 'config.json').read_text())
    assert (config['preset'], config['classes'], config['input_size']) == ('senet', 7, 32)
    for name in ('train.log', 'training-curve.png', 'best.params', 'checkpoint.json',
                 'export/se_resnet50-symbol.json', 'export/se_resnet50-0000.params'):
        assert (out / name).exists(), name
    assert "28 train records, 28 in this worker's shard, 7 batches of 4 an epoch" in \
        (out / 'train.log').read_text()


def test_label_smoothing_and_warmup_train(seven, tmp_path):
    """--label-smoothing (soft targets, the soft cross-entropy) and --warmup-epochs (a linear
    warmup in the rate schedule) run through the shared fit loop."""
    out = tmp_path / 'smooth'
    _script(['--model', TINY, '--preset', 'ini_imagenet', '--rec-train', seven['train'],
             '--rec-val', seven['val'], '--classes', '7', '--input-size', '32', '--batch-size',
             '4', '--epochs', '2', '--label-smoothing', '0.1', '--warmup-epochs', '1',
             '--no-progress', '--save-dir', str(out)], tmp_path)
    rows = _history(out)
    assert len(rows) == 2 and all(np.isfinite(float(r['train_loss'])) for r in rows)
    config = json.loads((out / 'config.json').read_text())
    assert (config["label_smoothing"], config["warmup_epochs"]) == (0.1, 1)
    # ini preset lr 0.1 scaled to batch 4: 0.1 * 4 / 256; the warmup reaches it after epoch 1
    assert float(rows[1]['lr']) == pytest.approx(0.1 * 4 / 256)


def test_benchmark_test_io_and_one_line_errors(seven, tmp_path, capsys):
    proc = _script(['--model', TINY, '--preset', 'ini_imagenet', '--benchmark',
                    '--benchmark-batches', '2', '--batch-size', '4', '--input-size', '32',
                    '--classes', '10', '--no-progress'], tmp_path)
    m = re.search(r'benchmark %s: ([0-9.]+) s an iteration, ([0-9.]+) images/s' % TINY,
                  proc.stdout)
    assert m and float(m.group(1)) > 0, proc.stdout + proc.stderr[-2000:]
    proc = _script(['--rec-train', seven['train'], '--rec-val', seven['val'], '--test-io',
                    '--batch-size', '4', '--input-size', '32', '--test-io-batches', '3'],
                   tmp_path)
    assert re.search(r'train pipeline \(train.rec\): 12 images in [0-9.]+ s = [0-9.]+ images/s',
                     proc.stderr), proc.stderr
    # 14 records at batch 4: one warm-up batch, then 4 + 4 + 2 (the filler rows not counted)
    assert re.search(r'val pipeline \(val.rec\): 10 images', proc.stderr)
    # a missing file: one line on stderr, exit 2, from the real process
    missing = str(tmp_path / 'none.rec')
    proc = _script(['--model', TINY, '--preset', 'senet', '--rec-train', missing,
                    '--rec-val', seven['val']], tmp_path, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert missing in lines[0] and 'python -m mxnet.tools.im2rec --list' in lines[0]
    # the other refusals through the same main() and error handler, in this process
    from cmpese.errors import run
    script = _load_script()
    data = ['--rec-train', seven['train'], '--rec-val', seven['val']]
    cases = [
        (['--model', 'resnet50', '--dtype', 'float16'], ['--dtype float16 needs --gpus']),
        (['--model', 'resnet50', '--classes', '5', '--save-dir', str(tmp_path / 'r5')],
         ['labels up to 6', '--classes 7']),
        (['--model', 'resnet50', '--classes', '7', '--save-dir', str(tmp_path / 'r6')],
         ['--batch-size 1024', '28 records']),
        (['--model', TINY], ['no default training preset for imagenet', '--preset']),
        (['--model', 'resnet50', '--kvstore', 'nccl'], ['--kvstore nccl', '--gpus']),
        (['--model', 'resnet50', '--batch-size', '3', '--cpus', '2'],
         ['--batch-size 3 cannot be split evenly']),
    ]
    for args, needles in cases:
        assert run(script.main, args + data, prog='train_imagenet.py') == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        for needle in needles:
            assert needle in err[0], (needle, err[0])
    assert not (tmp_path / 'r5').exists() and not (tmp_path / 'r6').exists()


def test_benchmark_compares_models_interleaved():
    import io
    from cmpese.training.presets import get_preset
    script = _load_script(BENCH)
    cfg = dict(get_preset('ini_imagenet'), input_size=32, batch_size=4, seed=0, classes=10,
               benchmark_rounds=3, benchmark_batches=2, dtype='float32')
    out = io.StringIO()
    times = script.compare_models([TINY, 'se_wrn16_1'], cfg, [mx.cpu()], {}, stream=out)
    assert sorted(times) == sorted([TINY, 'se_wrn16_1'])
    assert all(len(t) == 3 and min(t) > 0 for t in times.values())
    lines = out.getvalue().splitlines()
    assert lines[0].startswith('benchmark, training steps interleaved: 3 rounds x 2 steps')
    assert lines[1].split()[0] == TINY and lines[1].endswith('1.000x %s' % TINY)
    ratio = float(re.search(r'([0-9.]+)x %s$' % TINY, lines[2]).group(1))
    assert ratio == pytest.approx(np.median(times['se_wrn16_1']) / np.median(times[TINY]),
                                  abs=1e-3)


def _load_script(path=SCRIPT):
    """train_imagenet.py (or another script) as a module (its main() in this process)."""
    import importlib.util
    name = os.path.splitext(os.path.basename(path))[0] + '_script'
    spec = importlib.util.spec_from_file_location(name, path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _run_until(args, cwd, predicate, timeout=300):
    """Start the script, watch its stderr, SIGKILL it as soon as ``predicate(text)``."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, SCRIPT] + list(args), cwd=str(cwd), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen, killed = [], threading.Event()

    def watch():
        buf = b''
        while True:
            chunk = proc.stderr.read1(4096)
            if not chunk:
                return
            buf += chunk
            seen.append(chunk)
            if not killed.is_set() and predicate(buf.decode('utf8', 'replace')):
                killed.set()
                proc.send_signal(signal.SIGKILL)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    proc.wait(timeout=timeout)
    thread.join(timeout=10)
    return proc.returncode, b''.join(seen).decode('utf8', 'replace')


def _mid_epoch(text, epoch, total):
    if epoch not in text:
        return False
    done = re.findall(r'\| *(\d+)/%d ' % total, text.split(epoch)[-1])
    return any(2 <= int(n) <= total - 2 for n in done)


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(seven, tmp_path):
    from cmpese.training import latest_checkpoint
    args = ['--model', TINY, '--preset', 'cmpe_imagenet', '--rec-train', seven['train'],
            '--rec-val', seven['val'], '--classes', '7', '--input-size', '32',
            '--batch-size', '4', '--lr', '0.05', '--epochs', '3', '--lr-steps', '2',
            '--seed', '9', '--mixup', '--mixup-off-epochs', '1']
    _script(args + ['--save-dir', str(tmp_path / 'straight'), '--no-progress',
                    '--data-nthreads', '2'], tmp_path)
    killed = tmp_path / 'killed'
    code, text = _run_until(args + ['--save-dir', str(killed), '--data-nthreads', '2',
                                    '--log-interval', '1'],     # a line an iteration (a pipe)
                            tmp_path, lambda t: _mid_epoch(t, 'epoch 2/3', 7))
    assert code == -signal.SIGKILL, text[-2000:]
    assert latest_checkpoint(str(killed))['epoch'] == 1
    # resumed with another number of decoding threads: the batches do not depend on it
    proc = _script(args + ['--save-dir', str(killed), '--resume', '--no-progress',
                           '--data-nthreads', '1'], tmp_path)
    assert 'resumed from' in proc.stderr
    rows, straight = _history(killed), _history(tmp_path / 'straight')
    assert [r['epoch'] for r in rows] == ['1', '2', '3']
    assert [r['mixup'] for r in rows] == ['True', 'True', 'False']
    assert [float(r['lr']) for r in rows] == pytest.approx([0.05, 0.05, 0.005])
    a = _params(tmp_path / 'straight' / 'epoch-0003.params')
    b = _params(killed / 'epoch-0003.params')
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert [r['test_error'] for r in rows] == [r['test_error'] for r in straight]


class _Worker(object):
    def __init__(self, workers, rank):
        self.num_workers, self.rank = workers, rank


class _AsOneProcess(object):
    """The batches the ``k`` workers read (their shards), stacked into one global batch,
    so that device ``r`` of one process gets exactly worker ``r``'s rows."""

    def __init__(self, parts):
        self.parts = parts
        self.batch_size = sum(p.batch_size for p in parts)
        self.num_records = parts[0].num_records
        self.num_samples = sum(p.num_samples for p in parts)
        self.part_records, self.part_index = [sum(parts[0].part_records)], 0

    def __len__(self):
        return len(self.parts[0])

    def epoch(self, e, mixup_alpha=0.0, start_batch=0):
        for batches in zip(*(p.epoch(e, mixup_alpha, start_batch) for p in self.parts)):
            yield (mx.nd.concat(*[b[0] for b in batches], dim=0),
                   mx.nd.concat(*[b[1] for b in batches], dim=0))


def test_dist_sync_two_workers_match_one_process_on_two_devices(seven, tmp_path, monkeypatch):
    from cmpese.training.launch import launch
    args = ['--model', TINY, '--preset', 'ini_imagenet', '--rec-train', seven['train'],
            '--rec-val', seven['val'], '--classes', '7', '--input-size', '32',
            '--batch-size', '8', '--lr', '0.05', '--epochs', '1', '--seed', '4',
            '--data-nthreads', '2', '--no-progress']
    # one scheduler, one server and two workers on 127.0.0.1, each reading its own shard
    results = launch([sys.executable, SCRIPT] + args + [
        '--kvstore', 'dist_sync', '--save-dir', str(tmp_path / 'dist')], workers=2, servers=1,
        env=dict(os.environ, OMP_NUM_THREADS='1'), cwd=str(tmp_path), timeout=600,
        capture=True)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    # 28 records: shards of 14, 3 batches of 4 on each worker
    assert any('(worker 1 of 2)' in err and "14 in this worker's shard, 3 batches of 4" in err
               for _, _, err in results)
    # the same script in this process on two CPU contexts, device r fed worker r's shard
    script = _load_script()
    from cmpese.cli import train_imagenet as cli
    original = cli.record_loaders

    def as_workers(cfg, kv, ctx):
        shards = [original(cfg, _Worker(2, r), ctx) for r in range(2)]
        return _AsOneProcess([train for train, _ in shards]), shards[0][1]
    monkeypatch.setattr(cli, 'record_loaders', as_workers)
    assert script.main(args + ['--cpus', '2', '--save-dir', str(tmp_path / 'local')]) == 0
    a = _params(tmp_path / 'local' / 'epoch-0001.params')
    b = _params(tmp_path / 'dist' / 'epoch-0001.params')
    assert sorted(a) == sorted(b)
    # float tolerance: the worker processes and this one may run different OpenMP thread
    # counts (the trainer defaults to every CPU), which changes summation orders
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-3, atol=1e-4, err_msg=name)
    assert abs(float(_history(tmp_path / 'dist')[0]['test_error']) -
               float(_history(tmp_path / 'local')[0]['test_error'])) <= 1.0 / 14 + 1e-9  # one image


def test_float16_path_parts_that_run_on_a_cpu(pattern_rec):
    """What of --dtype float16 runs without a GPU (MXNet 1.9.1 has no float16 GEMM on the
    CPU, so no forward pass): the float16 batches, the cast network and the multi-precision
    SGD update the GPU path uses."""
    import cmpese
    from mxnet import gluon
    rec, idx = pattern_rec
    kw = dict(batch_size=8, train=True, input_size=16, seed=2)
    d32, l32 = next(RecordLoader(rec, idx, **kw).epoch(0))
    d16, l16 = next(RecordLoader(rec, idx, dtype='float16', **kw).epoch(0))
    assert d16.dtype == np.float16 and l16.dtype == np.float16
    np.testing.assert_allclose(d16.asnumpy(), d32.asnumpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(l16.asnumpy(), l32.asnumpy())
    net = cmpese.get_model('se_resnet50', classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.cast('float16')
    params = net.collect_params()
    dtypes = {name: p.data().dtype for name, p in params.items()}
    assert all(t == np.float32 for n, t in dtypes.items() if 'bn' in n or 'batchnorm' in n)
    assert any(t == np.float16 for t in dtypes.values())
    # multi-precision SGD: float32 master weights, the float16 copy follows them
    lr, wd, momentum = 0.1, 1e-4, 0.9
    name = next(n for n, t in dtypes.items() if t == np.float16 and n.endswith('weight'))
    p = params[name]
    trainer = gluon.Trainer({name: p}, 'sgd', {'learning_rate': lr, 'wd': wd,
                                               'momentum': momentum, 'multi_precision': True})
    w0 = p.data().asnumpy().astype(np.float32)
    g = np.random.RandomState(0).normal(size=p.shape).astype(np.float16)
    with mx.autograd.record():     # d/dw sum(w * g) = g, with float16 element-wise ops only
        y = (p.data() * mx.nd.array(g, dtype='float16')).sum()
    y.backward()
    trainer.step(1)
    expect = w0 - lr * (g.astype(np.float32) + wd * w0)      # first step: momentum state 0
    momentum_state, master = trainer._updaters[0].states[0]   # (momentum, float32 weights)
    assert master.dtype == np.float32 and momentum_state.dtype == np.float32
    np.testing.assert_allclose(master.asnumpy(), expect, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p.data().asnumpy().astype(np.float32), expect, rtol=2e-3,
                               atol=2e-3)


def test_bfloat16_benchmark_runs_with_amp(tmp_path):
    proc = _script(['--model', TINY, '--preset', 'ini_imagenet', '--benchmark',
                    '--benchmark-batches', '2', '--batch-size', '4', '--input-size', '32',
                    '--classes', '10', '--no-progress', '--dtype', 'bfloat16'], tmp_path)
    m = re.search(r'benchmark %s: ([0-9.]+) s an iteration, ([0-9.]+) images/s .*bfloat16'
                  % TINY, proc.stdout)
    assert m, proc.stdout + proc.stderr[-2000:]
    assert 'train loss nan' not in proc.stderr.lower()
