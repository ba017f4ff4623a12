import logging

import mxnet as mx
import numpy as np
import pytest

from datafiles import synthetic_images, write_cifar10


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, so initializations are repeatable."""
    mx.random.seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _restore_logging():
    """The commands' main() adds log handlers to the root logger; take them away after each
    test."""
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for h in list(root.handlers):
        if h not in before:
            root.removeHandler(h)
            h.close()


@pytest.fixture(scope='module')
def cifar_dir(tmp_path_factory):
    """A tiny CIFAR-10 set in the official binary files (20 train, 10 test images); modules
    that need a larger one define their own."""
    root = tmp_path_factory.mktemp('cifar')
    write_cifar10(root, synthetic_images(20, 10, seed=1), synthetic_images(10, 10, seed=2))
    return root
