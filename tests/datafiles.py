"""Writers of tiny datasets in the official file formats, for tests of the real readers and of
the training script. The images are real-looking but synthetic: a class-dependent pattern
plus noise, so a small network can learn them in a few steps."""
import os

import numpy as np


def synthetic_images(n, classes, seed=0, size=32):
    """uint8 (n, size, size, 3) images and int labels: class c is a bright band at a
    class-specific row and colour, on noise."""
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    images = rng.randint(0, 80, size=(n, size, size, 3)).astype(np.uint8)
    for i, c in enumerate(labels):
        row = (c * 3) % (size - 4)
        images[i, row:row + 4, :, c % 3] = 230
        images[i, :, (c * 5) % (size - 4):(c * 5) % (size - 4) + 3, (c + 1) % 3] = 200
    return images, labels.astype(np.int64)


def _cifar_records(images, label_columns):
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)   # R plane, G plane, B plane
    labels = np.stack(label_columns, axis=1).astype(np.uint8)
    return np.concatenate([labels, planes], axis=1).tobytes()


def write_cifar10(data_dir, train, test, batches=5):
    """Official CIFAR-10 binary layout: cifar-10-batches-bin/data_batch_{1..5}.bin and
    test_batch.bin of 3,073-byte records. ``train``/``test`` are (images, labels)."""
    folder = os.path.join(str(data_dir), 'cifar-10-batches-bin')
    os.makedirs(folder, exist_ok=True)
    parts = np.array_split(np.arange(len(train[0])), batches)
    for i, idx in enumerate(parts):
        with open(os.path.join(folder, 'data_batch_%d.bin' % (i + 1)), 'wb') as f:
            f.write(_cifar_records(train[0][idx], [train[1][idx]]))
    with open(os.path.join(folder, 'test_batch.bin'), 'wb') as f:
        f.write(_cifar_records(test[0], [test[1]]))
    return folder


def write_cifar100(data_dir, train, test):
    """Official CIFAR-100 binary layout: cifar-100-binary/train.bin and test.bin of 3,074-byte
    records (coarse label, fine label, pixels); the coarse label is fine // 5 here."""
    folder = os.path.join(str(data_dir), 'cifar-100-binary')
    os.makedirs(folder, exist_ok=True)
    for name, (images, labels) in (('train.bin', train), ('test.bin', test)):
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(_cifar_records(images, [labels // 5, labels]))
    return folder


def write_svhn(data_dir, train, test, extra=None):
    """Official SVHN cropped-digits .mat files in data_dir: X uint8 (32, 32, 3, N), y (N, 1)
    double with the digit 0 stored as 10."""
    from scipy.io import savemat
    os.makedirs(str(data_dir), exist_ok=True)
    splits = [('train_32x32.mat', train), ('test_32x32.mat', test)]
    if extra is not None:
        splits.append(('extra_32x32.mat', extra))
    for name, (images, labels) in splits:
        y = np.where(labels == 0, 10, labels).astype(np.float64).reshape(-1, 1)
        savemat(os.path.join(str(data_dir), name),
                {'X': np.ascontiguousarray(images.transpose(1, 2, 3, 0)), 'y': y})
    return str(data_dir)
