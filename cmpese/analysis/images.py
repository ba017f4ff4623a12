"""Images for looking inside a network: a dataset split, a folder of images or an im2rec
RecordIO file, normalized as the network was trained (:func:`load_images`).
"""
import collections
import itertools
import os

import numpy as np

__all__ = ['load_images', 'ImageSet']

ImageSet = collections.namedtuple('ImageSet', 'data images labels class_names source')
ImageSet.__doc__ = """Images ready for the network: ``data`` float32 NCHW normalized,
``images`` uint8 NHWC as shown to the network (for overlays), ``labels`` int (-1 unknown),
``class_names`` (list or None), ``source`` (a description)."""



def _resize_crop(img, size, resize=None):
    """PIL image -> uint8 (size, size, 3): short side to ``resize`` (default size), centre
    crop."""
    from PIL import Image
    img = img.convert('RGB')
    resize = resize or size
    w, h = img.size
    scale = float(resize) / min(w, h)
    img = img.resize((max(size, int(round(w * scale))), max(size, int(round(h * scale)))),
                     Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


_IMAGE_EXT = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.ppm', '.tif', '.tiff', '.webp')


def _normalize(images, mean, std):
    x = (images.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return x.transpose(0, 3, 1, 2).copy()


def load_images(data=None, folder=None, rec=None, rec_idx=None, count=64, input_size=32,
                mean=None, std=None, data_dir=None, norm=None, seed=0):
    """An :class:`ImageSet` from a dataset split (``data`` = 'digits', 'cifar10:test',
    'svhn:train' ...), a folder of images (class sub-folders give labels), or an im2rec
    RecordIO file (short side to input_size x 256/224, centre crop).

    Normalization: ``mean`` / ``std`` (pixel units) when given, else the training-split
    statistics of dataset ``norm`` (as train_cifar.py normalizes; a split's own dataset by
    default), else ImageNet's for 224-pixel inputs. ``count`` images are taken (a dataset split
    is sampled evenly over its classes, deterministically from ``seed``).
    """
    from ..errors import UserError
    from ..data import DATASETS, load_dataset, normalization
    images, labels, names, source = None, None, None, None
    if sum(x is not None for x in (data, folder, rec)) != 1:
        raise UserError('give one of --data DATASET[:SPLIT], --images FOLDER, --rec FILE')
    if data is not None:
        name, _, split = data.partition(':')
        split = split or 'test'
        if name not in DATASETS:
            raise UserError('--data %s: unknown dataset %r; choose one of %s (optionally '
                            'followed by :train or :test)' % (data, name, ', '.join(DATASETS)))
        x, y = load_dataset(name, split, data_dir)
        rng = np.random.RandomState(seed)
        order = rng.permutation(len(y))
        # round-robin over classes, so that every class is represented
        by_class = [order[y[order] == c] for c in np.unique(y)]
        pick = [idx for group in itertools.zip_longest(*by_class) for idx in group
                if idx is not None]
        pick = np.array(pick[:count] if count else pick)
        images, labels = x[pick], np.asarray(y)[pick].astype(np.int64)
        from ..data.config import class_names    # the names a data config records
        names = class_names(name, data_dir) or [str(c) for c in range(DATASETS[name]['classes'])]
        norm = norm or name
        source = '%s %s split' % (name, split)
    elif folder is not None:
        if not os.path.isdir(folder):
            raise UserError('--images %s is not a folder' % folder)
        subdirs = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
        files = []
        if subdirs:
            for c, d in enumerate(subdirs):
                files += [(os.path.join(folder, d, f), c) for f in sorted(os.listdir(
                    os.path.join(folder, d))) if f.lower().endswith(_IMAGE_EXT)]
            names = subdirs
        else:
            files = [(os.path.join(folder, f), -1) for f in sorted(os.listdir(folder))
                     if f.lower().endswith(_IMAGE_EXT)]
        if not files:
            raise UserError('--images %s holds no image files (%s)' % (folder,
                                                                      ', '.join(_IMAGE_EXT)))
        from PIL import Image
        files = files[:count] if count else files
        resize = int(round(input_size * 256.0 / 224.0)) if input_size >= 64 else input_size
        crops = []
        for path, _ in files:
            try:
                with Image.open(path) as img:
                    crops.append(_resize_crop(img, input_size, resize))
            except (OSError, ValueError) as err:     # PIL.UnidentifiedImageError, truncated
                raise UserError('--images %s: %s is not an image PIL can read (%s); remove it '
                                'from the folder' % (folder, path, str(err)[:80]))
        images = np.stack(crops)
        labels = np.array([c for _, c in files], np.int64)
        source = 'images in %s' % folder
    else:
        from ..data.imagenet import IMAGENET_MEAN, IMAGENET_STD, RecordLoader, read_synset
        loader = RecordLoader(rec, rec_idx, batch_size=min(count or 64, 64), train=False,
                              input_size=input_size, mean=(0, 0, 0), std=(1, 1, 1),
                              flag='--rec')
        got, labs = [], []
        for batch, label, pad in loader.epoch(0):
            n = batch.shape[0] - pad
            got.append(batch.asnumpy()[:n])
            labs.append(label.asnumpy()[:n])
            if count and sum(len(g) for g in got) >= count:
                break
        raw = np.concatenate(got)[:count or None]
        images = np.clip(np.round(raw.transpose(0, 2, 3, 1)), 0, 255).astype(np.uint8)
        labels = np.concatenate(labs)[:len(images)].astype(np.int64)
        names = read_synset(os.path.join(os.path.dirname(rec), 'synset.txt'))
        source = 'records of %s' % rec
        if mean is None and norm is None:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
    if mean is None:
        if norm is None and input_size >= 64:
            from ..data.imagenet import IMAGENET_MEAN, IMAGENET_STD
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        elif norm is None:
            raise UserError('how were the training images normalized? pass --norm DATASET '
                            '(e.g. --norm cifar10) or --mean R,G,B --std R,G,B')
        elif norm == 'imagenet':
            from ..data.imagenet import IMAGENET_MEAN, IMAGENET_STD
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        else:
            if norm not in DATASETS:
                raise UserError('--norm %s: choose one of %s or imagenet'
                                % (norm, ', '.join(DATASETS)))
            train = load_dataset(norm, 'train', data_dir)[0] \
                if DATASETS[norm]['norm'] != 'scale' else None
            mean, std = normalization(norm, train)
    return ImageSet(_normalize(images, mean, std), images, labels, names, source)
