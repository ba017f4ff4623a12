"""Helpers shared by the tests."""
import mxnet as mx
import numpy as np

HE_INIT = mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)


def init_net(net, seed=0):
    mx.random.seed(seed)
    np.random.seed(seed)
    net.initialize(HE_INIT)
    return net


def nparams(net):
    return int(sum(np.prod(p.shape) for p in net.collect_params().values()
                   if p.grad_req != 'null'))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def random_input(shape=(2, 3, 32, 32), seed=0):
    return mx.nd.array(np.random.RandomState(seed).normal(size=shape).astype(np.float32))


def calibrate_bn(net, steps=20, batch=8, shape=(3, 32, 32)):
    """Put BN running statistics where training would (they move in the backward pass in
    MXNet 1.x). Untrained nets with the default statistics (mean 0, var 1) have activations
    that grow with depth to ~1e5, where any change of summation order is amplified."""
    from mxnet import autograd
    for i in range(steps):
        with autograd.record(train_mode=True):
            out = net(random_input((batch,) + shape, seed=100 + i))
        out.backward()
    return net
