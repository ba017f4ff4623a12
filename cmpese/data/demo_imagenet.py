"""A small ImageNet-format demo set made from the photographs that ship inside installed
packages (no download): ``python -m cmpese.data.demo_imagenet --out DIR`` (the command line
is :mod:`cmpese.cli.demo_imagenet`).

Classes (one per photograph, labels in this order): ``china`` and ``flower`` (scikit-learn's
``load_sample_images()``, 640 x 427) and ``grace_hopper`` (matplotlib's
``sample_data/grace_hopper.jpg``, 512 x 600). These are the only photographs in the project's
environment (scikit-image's would need a new package).

Each photograph is cut, across its width, into a training region (the left 60%) and a
validation region (the right 35%), with a 5% gap between them so that no validation crop
shares a pixel with a training crop. From each region random windows (side 50-100% of the
region's smaller side, aspect 3/4-4/3) are cut, resized so that the short side is ``--size``
pixels and saved as JPEG files in ``DIR/images/{train,val}/<class>/``. MXNet's im2rec then
packs them, exactly as docs/imagenet.md packs a real image folder::

    python -m mxnet.tools.im2rec --list --recursive DIR/train DIR/images/train
    python -m mxnet.tools.im2rec --quality 95 DIR/train DIR/images/train

(the same for val), giving ``DIR/train.rec``, ``train.idx``, ``val.rec``, ``val.idx``, the
``.lst`` files, and ``synset.txt`` with the class names. The validation crops show other
parts of the scenes than the training crops, so the set measures a little generalization;
it is a demonstration of the pipeline, not a benchmark, and no accuracy is promised.
"""
import os
import sys

import numpy as np

from .imagenet import count_records

__all__ = ['photographs', 'regions', 'random_windows', 'build_demo', 'CLASSES']

CLASSES = ('china', 'flower', 'grace_hopper')
TRAIN_FRACTION, GAP_FRACTION = 0.60, 0.05


def photographs():
    """``{class name: uint8 RGB (H, W, 3) array}`` of the installed photographs."""
    from PIL import Image
    import matplotlib
    from sklearn.datasets import load_sample_images
    sample = load_sample_images()
    out = {}
    for name, image in zip(sample.filenames, sample.images):
        out[os.path.splitext(os.path.basename(name))[0]] = np.asarray(image, np.uint8)
    path = os.path.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')
    with Image.open(path) as img:
        out['grace_hopper'] = np.asarray(img.convert('RGB'), np.uint8)
    missing = [c for c in CLASSES if c not in out]
    if missing:   # pragma: no cover - depends on the installed packages
        raise RuntimeError('photographs not found in the installed packages: %s' % missing)
    return {c: out[c] for c in CLASSES}


def regions(width):
    """``{'train': (x0, x1), 'val': (x0, x1)}``: column ranges of the two disjoint regions
    of an image ``width`` pixels wide (left 60%, right 35%, a 5% gap)."""
    train_end = int(round(width * TRAIN_FRACTION))
    val_start = int(round(width * (TRAIN_FRACTION + GAP_FRACTION)))
    return {'train': (0, train_end), 'val': (val_start, width)}


def random_windows(rng, region_w, region_h, count, min_side=0.5, max_side=1.0,
                   min_aspect=3.0 / 4.0, max_aspect=4.0 / 3.0):
    """``count`` windows ``(x, y, w, h)`` inside a ``region_w`` x ``region_h`` region."""
    short = min(region_w, region_h)
    out = []
    for _ in range(count):
        side = rng.uniform(min_side, max_side) * short
        aspect = np.exp(rng.uniform(np.log(min_aspect), np.log(max_aspect)))
        w = int(min(region_w, max(8, round(side * np.sqrt(aspect)))))
        h = int(min(region_h, max(8, round(side / np.sqrt(aspect)))))
        x = int(rng.randint(0, region_w - w + 1))
        y = int(rng.randint(0, region_h - h + 1))
        out.append((x, y, w, h))
    return out


def _im2rec(args):
    """Run MXNet's own ``tools/im2rec.py`` (the script of ``python -m mxnet.tools.im2rec``)
    with ``args``, in this process (one MXNet import instead of four); its progress lines
    are swallowed."""
    import contextlib
    import io
    import runpy
    saved = sys.argv
    sys.argv = ['im2rec.py'] + [str(a) for a in args]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            script = runpy.run_module('mxnet.tools.im2rec', run_name='__main__',
                                      alter_sys=False)
    finally:
        sys.argv = saved
    # im2rec's single-process branch never closes its MXIndexedRecordIO (the process exit
    # flushes it); run in-process, the last records stay buffered until it is closed here.
    record = script.get('record')
    if record is not None:
        record.close()


def build_demo(out, train_per_class=100, val_per_class=30, size=128, seed=0, quality=95):
    """Write the demo set into ``out``; returns a dict of its paths and counts."""
    from PIL import Image
    rng = np.random.RandomState(seed)
    photos = photographs()
    counts = {'train': train_per_class, 'val': val_per_class}
    for split, n in counts.items():
        if n < 1:
            raise ValueError('--%s-per-class must be at least 1, got %d' % (split, n))
    for split in ('train', 'val'):
        for label, name in enumerate(CLASSES):
            folder = os.path.join(out, 'images', split, name)
            os.makedirs(folder, exist_ok=True)
            image = photos[name]
            height, width = image.shape[:2]
            x0, x1 = regions(width)[split]
            for i, (x, y, w, h) in enumerate(random_windows(rng, x1 - x0, height,
                                                            counts[split])):
                crop = Image.fromarray(image[y:y + h, x0 + x:x0 + x + w])
                scale = float(size) / min(w, h)
                crop = crop.resize((max(1, int(round(w * scale))), max(1, int(round(h * scale)))),
                                   Image.BICUBIC)
                crop.save(os.path.join(folder, '%04d.jpg' % i), quality=quality)
    paths = {}
    for split in ('train', 'val'):
        prefix = os.path.join(out, split)
        root = os.path.join(out, 'images', split)
        _im2rec(['--list', '--recursive', prefix, root])
        _im2rec(['--quality', str(quality), prefix, root])
        labels = _labels_of_list(prefix + '.lst', root)
        packed = count_records(prefix + '.rec')
        if packed != counts[split] * len(CLASSES):   # pragma: no cover
            raise RuntimeError('im2rec packed %d of the %d images of %s'
                               % (packed, counts[split] * len(CLASSES), root))
        if labels != {c: i for i, c in enumerate(CLASSES)}:   # pragma: no cover
            raise RuntimeError('im2rec labelled the classes %s' % labels)
        paths[split] = dict(rec=prefix + '.rec', idx=prefix + '.idx', lst=prefix + '.lst',
                            images=counts[split] * len(CLASSES))
    with open(os.path.join(out, 'synset.txt'), 'w') as f:
        f.write('\n'.join(CLASSES) + '\n')
    paths['synset'] = os.path.join(out, 'synset.txt')
    paths['classes'] = len(CLASSES)
    return paths


def _labels_of_list(lst, root):
    """``{folder: label}`` as im2rec's list assigned them."""
    out = {}
    with open(lst) as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            out[os.path.dirname(parts[-1])] = int(float(parts[1]))
    return out


if __name__ == '__main__':      # the command line: cmpese.cli.demo_imagenet
    from cmpese.cli.demo_imagenet import console
    sys.exit(console('python -m cmpese.data.demo_imagenet'))
