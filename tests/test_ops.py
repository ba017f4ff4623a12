"""cmpese.units.ops: every implementation of squeeze / rescale / channel mean gives the same
values and gradients (against numpy), hybridized and not; every unit and every backbone family
gives the reference profile's values and gradients in float64 with the native rescale; the
profile selection."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd
from mxnet.gluon import HybridBlock

import cmpese
from cmpese import native
from cmpese.units import get_unit, ops
from model_checks import calibrate_bn, init_net, random_input

SHAPES = [(1, 3, 4, 5), (3, 8, 7, 7), (2, 16, 1, 1)]
NATIVE = native.load()
needs_native = pytest.mark.skipif(
    not NATIVE, reason='cmpese.native.load() returned False (see the cmpese.native log line)')


def _impls(step):
    """The step's implementations, 'native' skipped where the library does not load."""
    return [pytest.param(name, marks=needs_native) if name == 'native' else name
            for name in sorted(ops.IMPLS[step])]


class Step(HybridBlock):
    """One of the three steps with the given choice, on inputs x (and s)."""

    def __init__(self, step, channels=None):
        super(Step, self).__init__()
        self.step, self.channels = step, channels

    def hybrid_forward(self, F, x, s=None):
        if self.step == 'squeeze':
            return ops.squeeze(F, x)
        if self.step == 'scale':
            return ops.scale(F, x, s)
        return ops.channel_mean(F, x, self.channels)


def run(step, name, x, s=None, hybridize=False):
    """Output, gradient of x and of s of sum(out * weights) for a fixed weight pattern."""
    block = Step(step, x.shape[1])
    x = x.copy()
    x.attach_grad()
    inputs = [x]
    if s is not None:
        s = s.copy()
        s.attach_grad()
        inputs.append(s)
    with ops.using(**{step: name}):
        if hybridize:
            block.hybridize(static_alloc=True, static_shape=True)
        with autograd.record():
            out = block(*inputs)
            weights = mx.nd.array(np.arange(out.size).reshape(out.shape) % 7 - 3.0)
            loss = (out * weights).sum()
        loss.backward()
    return out.asnumpy(), weights.asnumpy(), x.grad.asnumpy(), \
        None if s is None else s.grad.asnumpy()


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('name', sorted(ops.IMPLS['squeeze']))
@pytest.mark.parametrize('hybridize', [False, True])
def test_squeeze_values_and_gradients(shape, name, hybridize):
    x = random_input(shape, seed=1)
    out, w, gx, _ = run('squeeze', name, x, hybridize=hybridize)
    xn = x.asnumpy()
    assert out.shape == shape[:2] + (1, 1)
    np.testing.assert_allclose(out, xn.mean(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)
    hw = shape[2] * shape[3]
    np.testing.assert_allclose(gx, np.broadcast_to(w / hw, shape), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('name', _impls('scale'))
@pytest.mark.parametrize('hybridize', [False, True])
def test_scale_values_and_gradients(shape, name, hybridize):
    x = random_input(shape, seed=2)
    s = random_input(shape[:2], seed=3)
    out, w, gx, gs = run('scale', name, x, s, hybridize=hybridize)
    xn, sn = x.asnumpy(), s.asnumpy()[:, :, None, None]
    np.testing.assert_allclose(out, xn * sn, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx, np.broadcast_to(sn, shape) * w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gs, (w * xn).sum(axis=(2, 3)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('name', sorted(ops.IMPLS['mean']))
@pytest.mark.parametrize('hybridize', [False, True])
def test_channel_mean_values_and_gradients(shape, name, hybridize):
    x = random_input(shape, seed=4)
    out, w, gx, _ = run('mean', name, x, hybridize=hybridize)
    np.testing.assert_allclose(out, x.asnumpy().mean(axis=1, keepdims=True), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(gx, np.broadcast_to(w / shape[1], shape), rtol=1e-5, atol=1e-6)


def test_max_squeeze_is_always_max_pooling():
    x = random_input((2, 3, 4, 4), seed=5)
    for name in ops.IMPLS['squeeze']:
        with ops.using(squeeze=name):
            out = ops.squeeze(mx.nd, x, 'max').asnumpy()
        np.testing.assert_array_equal(out, x.asnumpy().max(axis=(2, 3), keepdims=True))


def test_profiles_and_selection():
    default = ops.get_impl()
    assert set(ops.PROFILES) >= {'reference', 'train'}
    for profile in ops.PROFILES.values():
        assert set(profile) == set(ops.IMPLS)
        assert all(profile[step] in ops.IMPLS[step] for step in profile)
    with ops.using('reference'):
        assert ops.get_impl() == ops.PROFILES['reference']
        with ops.using(scale='dot'):
            assert ops.get_impl() == dict(ops.PROFILES['reference'], scale='dot')
        assert ops.get_impl() == ops.PROFILES['reference']
    assert ops.get_impl() == default
    assert ops.parse_impl('squeeze=pool, mean=conv') == {'squeeze': 'pool', 'mean': 'conv'}
    assert ops.parse_impl('train') == ops.PROFILES['train']
    # the train rescale is the native operator exactly where the library loads; the
    # reference profile never uses it
    assert ops.PROFILES['train']['scale'] == ('native' if NATIVE else 'dot')
    assert ops.PROFILES['reference']['scale'] == 'broadcast'
    for bad in ('fast', 'squeeze=fft', 'colour=red', 'scale=natve'):
        with pytest.raises(ValueError, match='scale in broadcast[|]dot[|]native'):
            ops.parse_impl(bad)
    with pytest.raises(ValueError):
        ops.set_impl(scale='nope')
    assert ops.get_impl() == default


def test_environment_variable_selects_the_default():
    code = 'from cmpese.units import ops; print(ops.get_impl())'
    env = dict(os.environ, CMPESE_UNIT_OPS='reference')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert eval(out) == ops.PROFILES['reference']


def _graph_ops(net):
    return {n['op'] for n in json.loads(net(mx.sym.var('data')).tojson())['nodes']}


def test_hybridized_graph_keeps_its_ops_until_rehybridized():
    net = init_net(cmpese.get_model('cmpe_se_preresnet20_1x1', classes=10))
    with ops.using('train'):
        train_ops = _graph_ops(net)
    with ops.using('reference'):
        reference_ops = _graph_ops(net)
    assert {'dot', 'ones_like'} <= train_ops and 'broadcast_mul' not in train_ops
    assert {'broadcast_mul', 'mean', 'Pooling'} <= reference_ops
    assert not {'dot', 'ones_like', 'BlockGrad'} & reference_ops


@pytest.mark.parametrize('name', ['se_preresnet20', 'cmpe_se_preresnet20_2x1',
                                  'ini_preresnet20_mix_5_d'])
def test_models_agree_across_every_choice(name):
    """Whole networks, forward in training mode and the parameter gradients, with every
    combination of the three steps: the same numbers to float rounding."""
    x = random_input((4, 3, 32, 32), seed=6)
    y = mx.nd.array([0, 1, 2, 3])
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    results = []
    combos = [ops.PROFILES['train'], ops.PROFILES['reference'],
              {'squeeze': 'adaptive', 'scale': 'dot', 'mean': 'mean'},
              {'squeeze': 'pool', 'scale': 'native' if NATIVE else 'dot', 'mean': 'mean'},
              {'squeeze': 'pool', 'scale': 'dot', 'mean': 'conv'},
              {'squeeze': 'dot', 'scale': 'broadcast', 'mean': 'mean'}]
    for combo in combos:
        net = calibrate_bn(init_net(cmpese.get_model(name, classes=10), seed=3))
        with ops.using(**combo):
            net.hybridize(static_alloc=True, static_shape=True)
            with autograd.record():
                out = net(x)
                loss = loss_fn(out, y)
            loss.backward()
        grads = {k: p.grad().asnumpy() for k, p in net._collect_params_with_prefix().items()
                 if p.grad_req != 'null'}
        results.append((out.asnumpy(), grads))
    ref_out, ref_grads = results[0]
    # a filter followed by a training-mode BN over its single channel has a gradient that is
    # zero in exact arithmetic (BN undoes its scale): rounding noise, hence the global term
    largest = max(np.abs(g).max() for g in ref_grads.values())
    for (out, grads), combo in zip(results[1:], combos[1:]):
        np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-4 * np.abs(ref_out).max(),
                                   err_msg=str(combo))
        for key in ref_grads:
            scale = np.abs(ref_grads[key]).max()
            np.testing.assert_allclose(grads[key], ref_grads[key], rtol=1e-3,
                                       atol=max(1e-3 * scale, 1e-5 * largest),
                                       err_msg='%s %s' % (combo, key))


# ------------------------------------------------------------------ float64, native vs reference
# The choices every unit and network is run with: the reference profile first (what the
# others must equal), the reference with the native rescale, and the default train profile
# (native rescale with the dot squeeze and the conv channel mean).
NATIVE_CHOICES = [('reference', {}), ('reference', {'scale': 'native'}), ('train', {})]
NATIVE_OPS = {'scale', 'scale_add', 'scale_add_relu'}


def _graph_ops_of(block):
    return {n['op'] for n in json.loads(block._cached_graph[1].tojson())['nodes']}


def _run_float64(block, inputs, profile, choices):
    """Traced (hybridized) under the choice, in training mode: the output, the gradients of
    the inputs and of every parameter for sum(out * weights), and the graph's operators."""
    inputs = [a.copy() for a in inputs]
    for a in inputs:
        a.attach_grad()
    with ops.using(profile, **choices):
        block.hybridize(static_alloc=True, static_shape=True)
        mx.random.seed(5)       # the same dropout masks (All-CNN) in every run
        with autograd.record():
            out = block(*inputs)
            weights = mx.nd.array(np.arange(out.size).reshape(out.shape) % 7 - 3.0,
                                  dtype='float64')
            loss = (out * weights).sum()
        loss.backward()
    grads = {'d/input%d' % i: a.grad.asnumpy() for i, a in enumerate(inputs)}
    grads.update({k: p.grad().asnumpy() for k, p in block._collect_params_with_prefix().items()
                  if p.grad_req != 'null'})
    assert out.dtype == np.float64
    return out.asnumpy(), grads, _graph_ops_of(block)


def _assert_equal_to_reference(block, inputs):
    results = [_run_float64(block, inputs, profile, choices)
               for profile, choices in NATIVE_CHOICES]
    ref_out, ref_grads, ref_ops = results[0]
    assert not NATIVE_OPS & ref_ops
    # a gradient that is zero in exact arithmetic (a filter followed by a training-mode BN
    # over its one channel) is rounding noise: hence the term relative to the largest one
    largest = max(np.abs(g).max() for g in ref_grads.values())
    assert largest > 0
    for (out, grads, graph_ops), (profile, choices) in zip(results[1:], NATIVE_CHOICES[1:]):
        what = '%s %s' % (profile, choices)
        assert 'scale' in graph_ops, what       # the rescale is the native operator
        np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12 * np.abs(ref_out).max(),
                                   err_msg=what)
        assert sorted(grads) == sorted(ref_grads)
        for key in ref_grads:
            np.testing.assert_allclose(grads[key], ref_grads[key], rtol=1e-9,
                                       atol=1e-11 * largest, err_msg='%s %s' % (what, key))


@needs_native
@pytest.mark.filterwarnings('ignore:The 1-th input to HybridBlock is not used')  # SE, nojoint
@pytest.mark.parametrize('name, options', [
    ('se', {}), ('se', {'squeeze': 'max', 'gate': 'tanh'}), ('cmpe_se_double_fc', {}),
    ('cmpe_se_2x1', {}), ('cmpe_se_1x1', {}), ('ini_square_3', {}), ('ini_mix_5_d', {}),
    ('ini_horizon_2', {}), ('ini_simple_1', {}), ('ini_mix_5_d_nojoint', {}),
    ('ini_mix_5_d_spa', {}), ('ini_square_3_spa4', {})])
def test_every_unit_native_equals_reference_in_float64(name, options):
    """Per unit: the output and the gradients of the residual, the identity and every
    parameter, native rescale against the reference operators, float64."""
    rng = np.random.RandomState(11)
    residual, identity = (mx.nd.array(rng.normal(size=(3, 32, 6, 6)), dtype='float64')
                          for _ in range(2))
    unit = get_unit(name, 32, reduction=4, **options)
    mx.random.seed(1)
    unit.initialize(mx.init.Normal(0.5))
    unit.cast('float64')
    _assert_equal_to_reference(unit, [residual, identity])


@needs_native
@pytest.mark.parametrize('name', ['se_preresnet20', 'cmpe_se_preresnet20_1x1',
                                  'ini_preresnet20_mix_5_d', 'res_se_net20',
                                  'cmpe_se_wrn10_1_2x1', 'ini_allcnn_square_3'])
def test_every_family_native_equals_reference_in_float64(name):
    """Per backbone family, hybridized: the network's output and every gradient (input and
    parameters) with the native rescale against the reference operators, float64."""
    net = init_net(cmpese.get_model(name, classes=10), seed=4)
    net.cast('float64')
    x = mx.nd.array(np.random.RandomState(12).normal(size=(2, 3, 32, 32)), dtype='float64')
    _assert_equal_to_reference(net, [x])
