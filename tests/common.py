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


def calibrate_bn(net, steps=2, batch=8, shape=(3, 32, 32)):
    """Put BN running statistics where training would (they move in the backward pass in
    MXNet 1.x). Untrained nets with the default statistics (mean 0, var 1) have activations
    that grow with depth to ~1e5, where any change of summation order is amplified. With
    momentum 0 the running statistics are those of the last batch, so two steps do."""
    from mxnet import autograd
    bns = []
    net.apply(lambda b: bns.append(b) if isinstance(b, mx.gluon.nn.BatchNorm) else None)
    saved = [b._kwargs['momentum'] for b in bns]
    for b in bns:
        b._kwargs['momentum'] = 0.0
    net.hybridize(static_alloc=True, static_shape=True)
    for i in range(steps):
        with autograd.record(train_mode=True):
            out = net(random_input((batch,) + shape, seed=100 + i))
        out.backward()
    mx.nd.waitall()
    for b, m in zip(bns, saved):
        b._kwargs['momentum'] = m
    net.hybridize(static_alloc=True, static_shape=True)   # rebuild the graph with them
    return net


class PositiveUniform(mx.init.Initializer):
    """Positive weights averaging 1/fan_in: activations keep their scale, gates stay unsaturated."""

    def _init_weight(self, name, arr):
        fan_in = int(np.prod(arr.shape[1:]))
        arr[:] = mx.nd.random.uniform(0.1 / fan_in, 1.9 / fan_in, shape=arr.shape)


T = 16


def unit_params(unit, c, t=T):
    """Hand count of one unit's weights for C channels (docs/units.md)."""
    eps = c // t
    return {None: 0, 'se': 2 * c * c // t, 'cmpe_se_double_fc': 4 * c * c // t,
            'cmpe_se_2x1': 2 * c * c // t + 2 * eps + 2 * eps,
            'cmpe_se_1x1': 3 * c * c // t + eps + 2 * eps}[unit]


def unreached_parameters(net, size=32, batch=8, min_grad=0.0, skip=()):
    """One hybridized NAG step on |random| images; names of the parameters that got no
    gradient, or (with a gradient above ``min_grad``) were not moved by the step. Parameter
    names ending in any of ``skip`` only need finite gradients."""
    from mxnet import autograd, gluon
    net.hybridize(static_alloc=True, static_shape=True)
    x = random_input((batch, 3, size, size), seed=2).abs()
    y = mx.nd.array(np.arange(batch) % 10)
    params = {k: p for k, p in net.collect_params().items() if p.grad_req != 'null'}
    before = {k: p.data().asnumpy().copy() for k, p in params.items()}
    trainer = gluon.Trainer(net.collect_params(), 'nag', {'learning_rate': 0.1, 'momentum': 0.9})
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
    loss.backward()
    trainer.step(batch)
    missing = []
    for k, p in params.items():
        g = np.abs(p.grad().asnumpy())
        assert np.isfinite(g).all(), k
        if k.endswith(tuple(skip)):
            continue
        if not g.sum() > 0 or (g.max() > min_grad and
                               np.array_equal(p.data().asnumpy(), before[k])):
            missing.append(k)
    return missing
