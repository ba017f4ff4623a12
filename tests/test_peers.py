"""Our backbones against GluonCV's own models (installed with the package), weights copied.

Each pair is built, every parameter and BatchNorm statistic of the GluonCV model is copied
into ours in creation order (the two nets create their layers in the same order; the copy
checks every shape), and the outputs must agree in float64 in inference mode (running
statistics) and in training mode (batch statistics), and so must the input gradients.

Where GluonCV itself deviates from the papers, the test undoes that deviation on the GluonCV
model and says so:

* ``cifar_resnet20_v1`` has no ReLU after its stem BatchNorm (He et al. 2016a, Sec. 4.2, has
  conv - BN - ReLU before the first stage): the test inserts one.
* ``cifar_resnet110_v2`` projects the raw input in the downsampling blocks, where He et al.
  2016b (Fig. 4(e), and the CMPE-SE authors' code) project ReLU(BN(x)): the test makes its
  blocks project the pre-activated input.
"""
import re
import types

import mxnet as mx
import numpy as np
import pytest
from gluoncv.model_zoo import get_model as gluoncv_model
from mxnet import autograd
from mxnet.gluon import nn

import cmpese


def _params(net):
    return list(net.collect_params().values())


def _stable_within_blocks(params):
    """Our blocks create the projection before the unit, GluonCV's SE blocks after it: within
    each block, move the projection's parameters last (a stable sort)."""
    out, group, current = [], [], None
    for p in params + [None]:
        m = re.search(r'stage\d+_block\d+_', p.name) if p is not None else None
        key = m.group() if m else None
        if key != current or p is None or key is None:
            out += sorted(group, key=lambda q: 'downsample' in q.name)
            group, current = [], key
        if p is None:
            break
        (group.append(p) if key else out.append(p))
    return out


def copy_weights(src, dst, size, order=None):
    """Initialize both nets (float64, random values in ``src``), then copy every parameter of
    ``src`` into ``dst`` in creation order (``order`` rearranges ours first); returns the
    number copied."""
    rng = np.random.RandomState(0)
    for net in (src, dst):
        net.initialize(mx.init.Xavier(), force_reinit=True)
        net.cast('float64')
        net(mx.nd.zeros((1, 3, size, size), dtype='float64'))   # settle deferred shapes
    a, b = _params(src), _params(dst)
    if order is not None:
        b = order(b)
    assert len(a) == len(b), (len(a), len(b))
    for p, q in zip(a, b):
        assert p.shape == q.shape, (p.name, p.shape, q.name, q.shape)
        value = p.data().asnumpy()
        if p.name.endswith('running_var'):
            value = rng.uniform(0.5, 2.0, value.shape)
        elif p.name.endswith(('running_mean', 'beta', 'gamma')):
            value = value + rng.uniform(-0.2, 0.2, value.shape)
        p.set_data(mx.nd.array(value, dtype='float64'))
        q.set_data(mx.nd.array(value, dtype='float64'))
    return len(a)


def assert_same_function(src, dst, size, batch=2):
    x = mx.nd.array(np.random.RandomState(1).normal(size=(batch, 3, size, size)),
                    dtype='float64')
    np.testing.assert_allclose(dst(x).asnumpy(), src(x).asnumpy(), rtol=1e-9, atol=1e-9)
    grads = []
    for net in (src, dst):
        xx = x.copy()
        xx.attach_grad()
        with autograd.record(train_mode=True):
            out = net(xx)
            loss = (out * out).sum()
        loss.backward()
        grads.append((out.asnumpy(), xx.grad.asnumpy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize('peer,ours,size', [
    ('resnet50_v1b', dict(name='resnet50'), 64),
    ('resnet50_v2', dict(name='resnet50', version=2), 64),
])
def test_imagenet_resnets_equal_gluoncv(peer, ours, size):
    ours = dict(ours)
    net = cmpese.get_model(ours.pop('name'), **ours)
    ref = gluoncv_model(peer)
    assert copy_weights(ref, net, size) > 200
    assert_same_function(ref, net, size)


def test_se_resnet50_v2_equals_gluoncv():
    net = cmpese.models.get_resnet_imagenet(50, 'se', version=2)
    ref = gluoncv_model('se_resnet50_v2')
    copy_weights(ref, net, 64, order=_stable_within_blocks)
    assert_same_function(ref, net, 64)


@pytest.mark.parametrize('depth', [16, 28])
def test_wide_resnets_equal_gluoncv(depth):
    net = cmpese.get_model('wrn%d_10' % depth)
    ref = gluoncv_model('cifar_wideresnet%d_10' % depth)
    copy_weights(ref, net, 32)
    assert_same_function(ref, net, 32, batch=2)


def test_resnet20_cifar_equals_gluoncv_with_its_stem_relu():
    ref = gluoncv_model('cifar_resnet20_v1')
    layers = list(ref.features._children.values())
    assert isinstance(layers[1], nn.BatchNorm) and not isinstance(layers[2], nn.Activation)
    fixed = nn.HybridSequential(prefix='')
    fixed.add(layers[0], layers[1], nn.Activation('relu'), *layers[2:])
    ref.features = fixed                       # undo GluonCV's deviation: ReLU after stem BN
    net = cmpese.get_model('resnet20_cifar')
    copy_weights(ref, net, 32)
    assert_same_function(ref, net, 32)


def _project_preactivated(block, F, x):
    """GluonCV's BasicBlockV2 forward, with the projection of ReLU(BN(x)) (He et al. 2016b)
    instead of the raw input."""
    x = F.Activation(block.bn1(x), act_type='relu')
    residual = block.downsample(x) if block.downsample else x
    x = block.conv1(x)
    x = F.Activation(block.bn2(x), act_type='relu')
    x = block.conv2(x)
    return x + residual


def test_preresnet110_equals_gluoncv_projecting_the_preactivated_input():
    ref = gluoncv_model('cifar_resnet110_v2')
    fixed = 0
    for stage in list(ref.features._children.values()):
        for block in getattr(stage, '_children', {}).values():
            if getattr(block, 'downsample', None) is not None:
                block.hybrid_forward = types.MethodType(_project_preactivated, block)
                fixed += 1
    assert fixed == 2       # the first block of stages 2 and 3
    net = cmpese.get_model('preresnet110')
    copy_weights(ref, net, 32)
    assert_same_function(ref, net, 32)
