import mxnet as mx
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, so initializations are repeatable."""
    mx.random.seed(0)
    np.random.seed(0)
