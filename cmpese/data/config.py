"""What a trained model expects of an image: its data config, recorded with every run and
export, and the one preprocessing that turns raw images into the network's input.

timm's ``pretrained_cfg`` plus ``resolve_data_config`` / ``create_transform`` is the model:
a model carries its input size, mean, std, interpolation and crop. Here a
:class:`DataConfig` holds

* ``input_size`` (side of the square input), ``channels`` (3) and ``channel_order`` ('RGB');
* ``mean`` and ``std`` per channel and ``value_range``: the network input is
  ``(pixel - mean) / std`` with pixels in ``value_range`` (``[0, 255]``: pixel units);
* ``eval_resize`` and ``crop``: for evaluation, the image is resized (short side to
  ``eval_resize``, or to ``input_size`` when ``crop`` is 'none') and centre-cropped to
  ``input_size`` (ImageNet: 256 then 224);
* ``interpolation`` ('bilinear'), ``grey``: true when the dataset is grey on three equal
  channels (Fashion-MNIST, MNIST, digits), so a colour image is converted to grey first;
* ``classes`` (the class names, ``None`` when unknown) and ``dataset``.

It is written as ``data_config.json`` beside ``config.json`` in a run directory, beside the
symbol and ONNX files of an export (``<prefix>-data.json``) and into the ONNX
``metadata_props`` (key ``cmpese.data_config``). :func:`preprocess` accepts uint8 HWC
arrays, batches of them, file paths and PIL images.
"""
import json
import os

import numpy as np

__all__ = ['DataConfig', 'dataset_config', 'imagenet_config', 'save_data_config',
           'load_data_config', 'preprocess', 'class_names', 'DATA_CONFIG_FILE',
           'ONNX_METADATA_KEY', 'export_config_path', 'looks_unnormalized']

DATA_CONFIG_FILE = 'data_config.json'
ONNX_METADATA_KEY = 'cmpese.data_config'

_FIELDS = ('dataset', 'input_size', 'channels', 'channel_order', 'mean', 'std', 'value_range',
           'eval_resize', 'crop', 'interpolation', 'grey', 'classes')

CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
                   'ship', 'truck')


class DataConfig(dict):
    """A dict of the fields in the module docstring, with attribute access; JSON as it is."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key)

    def describe(self):
        """One line: size, normalization, resize and crop."""
        return ('%dx%d %s, (pixel - mean %s) / std %s on %g..%g%s%s' % (
            self.input_size, self.input_size, self.channel_order,
            _fmt(self.mean), _fmt(self.std), self.value_range[0], self.value_range[1],
            ', short side %d then centre crop' % self.eval_resize if self.crop == 'center'
            else ', resized to the input size', ', grey' if self.grey else ''))


def _fmt(values):
    return '(%s)' % ', '.join('%.2f' % v for v in values)


def _make(**fields):
    missing = [f for f in _FIELDS if f not in fields]
    if missing:
        raise ValueError('data config lacks %s' % ', '.join(missing))
    cfg = DataConfig((k, fields[k]) for k in _FIELDS)
    cfg['mean'] = [float(v) for v in cfg['mean']]
    cfg['std'] = [float(v) for v in cfg['std']]
    if cfg['classes'] is not None:
        cfg['classes'] = [str(c) for c in cfg['classes']]
    return cfg


def class_names(dataset, data_dir=None):
    """The class names of a dataset the trainers read, or None: Fashion-MNIST's ten, CIFAR-10's
    ten, the digits' '0'..'9', CIFAR-100's fine names when ``fine_label_names.txt`` of the
    binary archive is found in ``data_dir``."""
    if dataset == 'fashion-mnist':
        from .mnist import FASHION_MNIST_CLASSES
        return list(FASHION_MNIST_CLASSES)
    if dataset == 'cifar10':
        return list(CIFAR10_CLASSES)
    if dataset in ('digits', 'mnist', 'svhn'):
        return [str(i) for i in range(10)]
    if dataset == 'cifar100' and data_dir:
        for folder in (os.path.join(data_dir, 'cifar-100-binary'), data_dir):
            path = os.path.join(folder, 'fine_label_names.txt')
            if os.path.isfile(path):
                with open(path) as f:
                    names = [line.strip() for line in f if line.strip()]
                if len(names) == 100:
                    return names
    return None


def dataset_config(dataset, mean, std, data_dir=None):
    """The config of a ``train_cifar.py`` dataset: its native size, no resize or crop for
    evaluation (the test images are used whole), ``mean``/``std`` in pixel units."""
    from .datasets import DATASETS
    spec = DATASETS[dataset]
    return _make(dataset=dataset, input_size=spec['size'], channels=3, channel_order='RGB',
                 mean=mean, std=std, value_range=[0, 255], eval_resize=spec['size'],
                 crop='none', interpolation='bilinear',
                 grey=dataset in ('fashion-mnist', 'mnist', 'digits'),
                 classes=class_names(dataset, data_dir))


def imagenet_config(input_size, mean, std, resize=None, classes=None, dataset='imagenet'):
    """The config of a ``train_imagenet.py`` run: short side to ``resize`` (default
    ``input_size * 256 / 224``), centre crop ``input_size``, RGB."""
    from .imagenet import val_resize
    return _make(dataset=dataset, input_size=int(input_size), channels=3, channel_order='RGB',
                 mean=mean, std=std, value_range=[0, 255],
                 eval_resize=int(resize or val_resize(input_size)), crop='center',
                 interpolation='bilinear', grey=False, classes=classes)


def export_config_path(prefix):
    """Where an export made with ``prefix`` keeps its data config: ``<prefix>-data.json``."""
    return prefix + '-data.json'


def save_data_config(path, cfg):
    """Write ``cfg`` as JSON, atomically."""
    from ..training.checkpoint import atomic_write

    def write(tmp):
        with open(tmp, 'w') as f:
            json.dump(dict(cfg), f, indent=1)
            f.write('\n')
    atomic_write(path, write)
    return path


def load_data_config(path):
    """The :class:`DataConfig` in JSON file ``path``; a file that is not one raises
    :class:`cmpese.errors.UserError` naming it."""
    from ..errors import UserError
    try:
        with open(path) as f:
            raw = json.load(f)
        return _make(**{k: raw[k] for k in _FIELDS})
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError('%s is not a readable data config (%s); it is written by the trainers '
                        'and the export tool beside the model' % (path, err))


# ---------------------------------------------------------------- preprocessing

def _as_hwc(item):
    """One image as a uint8 (H, W, 3) RGB array from a path, a PIL image or an array."""
    if isinstance(item, (str, bytes, os.PathLike)):
        from PIL import Image
        try:
            with Image.open(item) as im:
                return np.asarray(im.convert('RGB'))
        except (OSError, ValueError) as err:
            raise ValueError('cannot read image %s (%s)' % (item, err))
    if hasattr(item, 'convert') and hasattr(item, 'size'):        # a PIL image
        return np.asarray(item.convert('RGB'))
    arr = np.asarray(item)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError('an image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape '
                         '%s' % (arr.shape,))
    if arr.dtype != np.uint8:
        raise ValueError('raw images must be uint8 (0..255), got %s; pass normalized NCHW '
                         'float32 arrays with normalized=True instead' % arr.dtype)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr[:, :, :3]


def _resize(arr, height, width, interpolation):
    import cv2
    if arr.shape[:2] == (height, width):
        return arr
    flag = cv2.INTER_AREA if interpolation == 'area' else cv2.INTER_LINEAR
    return cv2.resize(arr, (width, height), interpolation=flag)


def _to_input(arr, cfg):
    if cfg['grey']:
        grey = np.rint(arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        arr = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    size = cfg['input_size']
    if cfg['crop'] == 'center':
        h, w = arr.shape[:2]
        short = cfg['eval_resize']
        if h <= w:
            nh, nw = short, max(short, int(round(w * short / float(h))))
        else:
            nh, nw = max(short, int(round(h * short / float(w)))), short
        arr = _resize(arr, nh, nw, cfg['interpolation'])
        top, left = (nh - size) // 2, (nw - size) // 2
        arr = arr[top:top + size, left:left + size]
    else:
        arr = _resize(arr, size, size, cfg['interpolation'])
    return arr


def preprocess(images, cfg):
    """Raw images -> the network's input: float32 (N, 3, S, S), ``(pixel - mean) / std``.

    ``images``: one image or a list of them (uint8 (H, W[, C]) arrays, file paths, PIL images)
    or a uint8 batch (N, H, W, C). Each is converted to RGB (grey when the config says so),
    resized and cropped as the config's evaluation does, then normalized.
    """
    if isinstance(images, np.ndarray) and images.ndim == 4:
        items = list(images)
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        items = [images]
    if not items:
        raise ValueError('no images: expected at least one image')
    batch = np.stack([_to_input(_as_hwc(it), cfg) for it in items])
    out = batch.transpose(0, 3, 1, 2).astype(np.float32)
    out -= np.asarray(cfg['mean'], np.float32).reshape(1, 3, 1, 1)
    out /= np.asarray(cfg['std'], np.float32).reshape(1, 3, 1, 1)
    return out


def looks_unnormalized(batch):
    """True when a batch given as already normalized looks like raw pixels: uint8, or values
    spanning more than 0..50 with nothing below zero (normalized inputs are centred)."""
    arr = np.asarray(batch)
    if arr.dtype == np.uint8:
        return True
    if arr.size == 0:
        return False
    lo, hi = float(np.min(arr)), float(np.max(arr))
    return lo >= 0.0 and hi > 50.0
