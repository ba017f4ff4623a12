"""Datasets read from local files in their official formats, the bundled digits set, a
deterministic batch loader and mixup. See docs/data.md."""
from .files import DatasetFormatError, DatasetNotFound, default_data_dir
from .cifar import load_cifar10, load_cifar100, read_cifar_binary
from .datasets import (DATASETS, OFFICIAL_SIZES, DatasetInfo, channel_stats, dataset_info,
                       dataset_names, load_dataset, load_train_test, normalization, size_note)
from .digits import load_digits
from .idx import read_idx, write_idx
from .mnist import FASHION_MNIST_CLASSES, load_fashion_mnist, load_mnist
from .loader import BatchLoader, crop_flip, epoch_rng, mix_batch, mixup, normalize
from .svhn import load_svhn, read_svhn_mat

__all__ = ['DatasetNotFound', 'DatasetFormatError', 'default_data_dir',
           'load_dataset', 'load_train_test', 'dataset_info', 'DatasetInfo', 'dataset_names',
           'DATASETS', 'normalization', 'channel_stats', 'OFFICIAL_SIZES', 'size_note',
           'load_cifar10', 'load_cifar100', 'read_cifar_binary', 'load_svhn', 'read_svhn_mat',
           'load_digits', 'read_idx', 'write_idx', 'load_fashion_mnist', 'load_mnist',
           'FASHION_MNIST_CLASSES',
           'BatchLoader', 'epoch_rng', 'crop_flip', 'normalize', 'mixup', 'mix_batch']
