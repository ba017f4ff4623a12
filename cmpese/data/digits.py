"""scikit-learn's bundled handwritten digits (1,797 real 8x8 images, 10 classes), upsampled
to 32x32x3 so that it runs through the CIFAR path. It ships inside scikit-learn, so it needs
no download."""
import numpy as np

__all__ = ['load_digits', 'DIGITS_TEST_FRACTION']

DIGITS_TEST_FRACTION = 0.2


def load_digits(split='train', size=32, seed=0):
    """Return ``(images, labels)``: uint8 images (N, size, size, 3) and int32 labels.

    The split is deterministic and stratified: 20% of every class (rounded) goes to
    'test' (359 images), the rest to 'train' (1,438), chosen with ``seed``. The 8x8 images (values
    0..16) are scaled to 0..255 and resized bilinearly to ``size`` x ``size``, grey on all
    three channels.
    """
    if split not in ('train', 'test'):
        raise ValueError("digits split must be 'train' or 'test', got %r" % (split,))
    from sklearn.datasets import load_digits as sk_digits
    import cv2
    data = sk_digits()
    rng = np.random.RandomState(seed)
    test_mask = np.zeros(len(data.target), dtype=bool)
    for c in np.unique(data.target):
        idx = np.flatnonzero(data.target == c)
        rng.shuffle(idx)
        test_mask[idx[:int(round(len(idx) * DIGITS_TEST_FRACTION))]] = True
    mask = test_mask if split == 'test' else ~test_mask
    small = (data.images[mask] * (255.0 / 16.0)).astype(np.float32)
    images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR)
                       for im in small])
    images = np.repeat(np.clip(np.rint(images), 0, 255).astype(np.uint8)[..., None], 3, axis=3)
    return images, data.target[mask].astype(np.int32)
