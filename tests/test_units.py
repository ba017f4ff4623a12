"""Recalibration units against hand-computed values, the factory and its errors."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from cmpese.units import (DoubleFCUnit, PairViewUnit, SEUnit, UnitSpec, get_unit, list_units,
                          resolve_unit)
from model_checks import sigmoid

BN_EPS = 1e-5


def _set(param, value):
    param.set_data(mx.nd.array(np.asarray(value, dtype=np.float32)))


def _feature(channel_values, hw=(2, 2)):
    """(1, C, H, W) map whose channel c is constant ``channel_values[c]``."""
    v = np.asarray(channel_values, dtype=np.float32)
    return mx.nd.array(np.broadcast_to(v[None, :, None, None], (1, len(v)) + hw).copy())


def test_factory_lists_and_builds_every_unit():
    names = list_units()
    assert [n for n in names if not n.startswith('ini_')] == [
        'cmpe_se_1x1', 'cmpe_se_2x1', 'cmpe_se_double_fc', 'se']
    # InI: 28 Table I sets x (plain, -d) x (joint, nojoint) + simple-1, simple-3
    assert len([n for n in names if n.startswith('ini_')]) == 28 * 4 + 2
    assert {'ini_mix_5_d', 'ini_square_1_nojoint', 'ini_simple_3', 'ini_horizon_9_d'} <= set(names)
    assert isinstance(get_unit('se', 32), SEUnit)
    assert isinstance(get_unit('cmpe_se_double_fc', 32), DoubleFCUnit)
    assert get_unit('cmpe_se_2x1', 32).kernel == '2x1'
    assert get_unit('cmpe_se_1x1', 32).kernel == '1x1'
    assert not resolve_unit('se').reads_identity and resolve_unit('cmpe_se_1x1').reads_identity
    assert resolve_unit(None) is None and resolve_unit('none') is None


def test_unit_spec_binds_options_once_and_takes_only_declared_hints():
    spec = resolve_unit('cmpe_se_1x1', hints={'ini_map': ('cols', 16), 'inner_channels': 16},
                        reduction=4)
    assert isinstance(spec, UnitSpec) and spec.reads_identity
    assert spec.final_options() == {'kernel': '1x1', 'reduction': 4, 'inner_channels': 16}
    assert spec.build(64).filters == 4                      # eps = inner width / t
    assert spec.bind(eps_from='output').build(64).filters == 16      # eps = C / t
    # a user's option wins over a backbone hint
    ini = resolve_unit('ini_mix_5_d', hints={'ini_map': ('cols', 16)}, ini_map=('cols', 8))
    assert ini.final_options()['ini_map'] == ('cols', 8)
    # an InI unit stops reading the identity when a backbone without one hints joint=False
    assert not resolve_unit('ini_square_1', hints={'joint': False}).reads_identity
    assert resolve_unit('ini_simple_1', hints={'joint': False}).reads_identity
    assert resolve_unit('ini_mix_5_d_spa4').reads_identity
    assert not resolve_unit('se_spa').reads_identity


def test_se_by_hand():
    # C = 2, t = 2: one hidden neuron. Channel means 1 and 3.
    unit = SEUnit(2, reduction=2)
    unit.initialize()
    _set(unit.fc1.weight, [[1.0, 1.0]])          # h = relu(1 + 3) = 4
    _set(unit.fc2.weight, [[0.5], [-0.25]])      # s = sigmoid([2, -1])
    x = _feature([1.0, 3.0])
    out = unit(x, None).asnumpy()
    np.testing.assert_allclose(out[0, 0], 1.0 * 0.8807971, rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], 3.0 * 0.26894142, rtol=1e-6)
    # a negative pre-activation dies in the ReLU: s = sigmoid(0) = 0.5 everywhere
    _set(unit.fc1.weight, [[1.0, -1.0]])
    np.testing.assert_allclose(unit(x, None).asnumpy(), 0.5 * x.asnumpy(), rtol=1e-6)


@pytest.mark.parametrize('squeeze,gate', [('avg', 'sigmoid'), ('max', 'sigmoid'),
                                          ('avg', 'tanh'), ('avg', 'relu')])
def test_se_ablation_options(squeeze, gate):
    rng = np.random.RandomState(1)
    x = rng.normal(size=(3, 8, 4, 5)).astype(np.float32)
    unit = SEUnit(8, reduction=4, squeeze=squeeze, gate=gate)
    unit.initialize(mx.init.Normal(0.5))
    w1, w2 = unit.fc1.weight.data().asnumpy(), unit.fc2.weight.data().asnumpy()
    z = x.mean(axis=(2, 3)) if squeeze == 'avg' else x.max(axis=(2, 3))
    a = np.maximum(z @ w1.T, 0) @ w2.T
    s = {'sigmoid': sigmoid, 'tanh': np.tanh, 'relu': lambda v: np.maximum(v, 0)}[gate](a)
    out = unit(mx.nd.array(x), mx.nd.array(x)).asnumpy()
    np.testing.assert_allclose(out, x * s[:, :, None, None], rtol=1e-5, atol=1e-6)


def test_double_fc_by_hand():
    # C = 2, t = 2. residual means (1, 3), identity means (2, -2).
    unit = DoubleFCUnit(2, reduction=2)
    unit.initialize()
    _set(unit.fc1.weight, [[1.0, 1.0]])       # residual code relu(4) = 4
    _set(unit.fc1_id.weight, [[1.0, -1.0]])   # identity code relu(4) = 4
    _set(unit.fc2.weight, [[0.25, -0.5], [0.0, 0.125]])   # [1 - 2, 0.5] = [-1, 0.5]
    out = unit(_feature([1.0, 3.0]), _feature([2.0, -2.0])).asnumpy()
    np.testing.assert_allclose(out[0, 0], 1.0 * sigmoid(-1.0), rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], 3.0 * sigmoid(0.5), rtol=1e-6)
    assert unit.fc2.weight.shape == (2, 2)   # W2_ex in R^{C x 2C/t}


def _pair_view_reference(u, x, conv_w, gamma, beta, mean, var, w1, w2, kernel):
    """Eq. 10-14 in numpy: u, x are (N, C) squeezed signals."""
    v = np.stack([u, x], axis=1)                                   # (N, 2, C)
    if kernel == '2x1':
        maps = np.einsum('er,nrc->nec', conv_w[:, 0, :, 0], v)[:, :, None, :]   # (N, eps, 1, C)
    else:
        maps = conv_w[None, :, 0, 0, 0, None, None] * v[:, None]                # (N, eps, 2, C)
    if mean is None:                                             # training: batch statistics
        mean = maps.mean(axis=(0, 2, 3))
        var = maps.var(axis=(0, 2, 3))
    bn = (gamma[None, :, None, None] * (maps - mean[None, :, None, None])
          / np.sqrt(var[None, :, None, None] + BN_EPS) + beta[None, :, None, None])
    vc = bn.mean(axis=1).reshape(len(u), -1)                     # average eps maps, flatten
    return sigmoid(np.maximum(vc @ w1.T, 0) @ w2.T)


def test_pair_view_1x1_by_hand():
    # C = 2, t = 1 -> 2 filters, 2 hidden neurons, FC1 sees 2C = 4 signals.
    unit = PairViewUnit(2, reduction=1, kernel='1x1')
    unit.initialize()
    _set(unit.conv.weight, np.array([2.0, -1.0]).reshape(2, 1, 1, 1))
    _set(unit.bn.gamma, [1.0, 2.0])
    _set(unit.bn.beta, [0.0, 1.0])
    _set(unit.bn.running_mean, [0.5, 0.0])
    _set(unit.bn.running_var, [4.0 - BN_EPS, 1.0 - BN_EPS])
    _set(unit.fc1.weight, [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    _set(unit.fc2.weight, [[1.0, 0.0], [0.0, -1.0]])
    # residual means (1, 3), identity means (2, -2). Stacked map [[1, 3], [2, -2]].
    # filter 1: BN(2v) = (2v - 0.5) / 2           -> [[0.75, 2.75], [1.75, -2.25]]
    # filter 2: BN(-v) = 2 * (-v) + 1             -> [[-1, -5], [-3, 5]]
    # average                                      -> [[-0.125, -1.125], [-0.625, 1.375]]
    # flatten [-0.125, -1.125, -0.625, 1.375]; FC1 picks the first and last: relu -> [0, 1.375]
    # FC2 -> [0, -1.375]; s = sigmoid(...) = [0.5, 0.20181322]
    out = unit(_feature([1.0, 3.0]), _feature([2.0, -2.0])).asnumpy()
    np.testing.assert_allclose(out[0, 0], 0.5, rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], 3.0 * 0.20181322, rtol=1e-6)


def test_pair_view_2x1_pairs_residual_with_identity_channel():
    # one 2x1 filter [1, -1]: v_c = u_c - x_c (top row residual, bottom row identity)
    unit = PairViewUnit(2, reduction=2, kernel='2x1')
    unit.initialize()
    _set(unit.conv.weight, np.array([1.0, -1.0]).reshape(1, 1, 2, 1))
    _set(unit.bn.running_var, [1.0 - BN_EPS])
    _set(unit.fc1.weight, [[1.0, 1.0]])
    _set(unit.fc2.weight, [[1.0], [-1.0]])
    # u = (1, 3), x = (2, -2): v = (-1, 5), h = relu(4) = 4, s = sigmoid(4, -4)
    out = unit(_feature([1.0, 3.0]), _feature([2.0, -2.0])).asnumpy()
    np.testing.assert_allclose(out[0, 0], sigmoid(4.0), rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], 3.0 * sigmoid(-4.0), rtol=1e-6)


@pytest.mark.parametrize('kernel', ['1x1', '2x1'])
@pytest.mark.parametrize('train', [False, True])
def test_pair_view_matches_equations(kernel, train):
    rng = np.random.RandomState(3)
    res = rng.normal(size=(4, 16, 3, 3)).astype(np.float32)
    idt = rng.normal(size=(4, 16, 3, 3)).astype(np.float32)
    unit = PairViewUnit(16, reduction=4, kernel=kernel)
    unit.initialize(mx.init.Normal(0.5))
    assert unit.filters == 4 and unit.fc1.weight.shape == (4, 32 if kernel == '1x1' else 16)
    rng_bn = np.random.RandomState(4)
    for p, v in ((unit.bn.gamma, rng_bn.uniform(0.5, 2, 4)), (unit.bn.beta, rng_bn.normal(size=4)),
                 (unit.bn.running_mean, rng_bn.normal(size=4)),
                 (unit.bn.running_var, rng_bn.uniform(0.5, 2, 4))):
        _set(p, v)
    g = lambda p: p.data().asnumpy()  # noqa: E731
    stats = (None, None) if train else (g(unit.bn.running_mean), g(unit.bn.running_var))
    s = _pair_view_reference(res.mean(axis=(2, 3)), idt.mean(axis=(2, 3)), g(unit.conv.weight),
                             g(unit.bn.gamma), g(unit.bn.beta), *stats, g(unit.fc1.weight),
                             g(unit.fc2.weight), kernel)
    with autograd.record(train_mode=train):
        out = unit(mx.nd.array(res), mx.nd.array(idt))
    np.testing.assert_allclose(out.asnumpy(), res * s[:, :, None, None], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name', ['se', 'cmpe_se_double_fc', 'cmpe_se_2x1', 'cmpe_se_1x1'])
def test_unit_gradients_reach_every_parameter_and_both_flows(name):
    rng = np.random.RandomState(0)
    res = mx.nd.array(rng.normal(size=(16, 32, 4, 4)))
    idt = mx.nd.array(rng.normal(size=(16, 32, 4, 4)))
    res.attach_grad()
    idt.attach_grad()
    unit = get_unit(name, 32, reduction=4)
    unit.initialize(mx.init.Normal(0.5))
    with autograd.record():
        loss = (unit(res, idt) * mx.nd.array(rng.normal(size=(16, 32, 4, 4)))).sum()
    loss.backward()
    for pname, p in unit.collect_params().items():
        if p.grad_req != 'null':
            assert np.abs(p.grad().asnumpy()).sum() > 0, pname
    assert np.abs(res.grad.asnumpy()).sum() > 0
    assert (np.abs(idt.grad.asnumpy()).sum() > 0) == resolve_unit(name).reads_identity


@pytest.mark.parametrize('name', ['se', 'cmpe_se_double_fc', 'cmpe_se_2x1', 'cmpe_se_1x1'])
def test_unit_hybridized_equals_imperative(name):
    rng = np.random.RandomState(0)
    res, idt = (mx.nd.array(rng.normal(size=(2, 32, 4, 4))) for _ in range(2))
    unit = get_unit(name, 32, reduction=8)
    unit.initialize(mx.init.Normal(0.5))
    a = unit(res, idt)
    unit.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(unit(res, idt).asnumpy(), a.asnumpy(), rtol=1e-5, atol=1e-6)


def test_excitation_values_can_be_inspected():
    unit = get_unit('cmpe_se_1x1', 32)
    unit.initialize()
    seen = []
    unit.gate.register_forward_hook(lambda block, inp, out: seen.append(out.shape))
    unit(mx.nd.ones((2, 32, 4, 4)), mx.nd.ones((2, 32, 4, 4)))
    assert seen == [(2, 32)]


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r'24 channels are not divisible by the reduction ratio '
                                         r't=16.*reduction=<t>'):
        get_unit('se', 24)
    with pytest.raises(ValueError, match=r"unknown recalibration unit 'cmpe_se_1x2'.*"
                                         r"Did you mean 'cmpe_se_1x1'"):
        get_unit('cmpe_se_1x2', 32)
    with pytest.raises(ValueError, match=r'needs equal widths'):
        get_unit('cmpe_se_1x1', 64, identity_channels=32)
    with pytest.raises(ValueError, match=r'gate must be one of'):
        get_unit('se', 32, gate='softmax')
    with pytest.raises(ValueError, match=r'squeeze must be one of'):
        get_unit('se', 32, squeeze='median')
    with pytest.raises(ValueError, match=r'stage3 block1: .*not divisible'):
        resolve_unit('se').build(24, where='stage3 block1')


def test_double_fc_encodes_an_identity_of_another_width():
    unit = get_unit('cmpe_se_double_fc', 64, identity_channels=32)
    unit.initialize()
    assert unit.fc1_id.weight.shape == (4, 32)
    out = unit(mx.nd.ones((2, 64, 4, 4)), mx.nd.ones((2, 32, 4, 4)))
    assert out.shape == (2, 64, 4, 4)


def test_user_defined_unit_callable():
    from mxnet.gluon import nn

    class Halve(nn.HybridBlock):
        def hybrid_forward(self, F, residual, identity=None):
            return residual * 0.5

    from cmpese.models import get_preresnet
    calls = []

    def factory(channels, identity_channels=None, reduction=16):
        calls.append(channels)
        return Halve()

    net = get_preresnet(20, unit=factory)
    assert calls == [16] * 3 + [32] * 3 + [64] * 3
    net.initialize()
    assert net(mx.nd.ones((1, 3, 32, 32))).shape == (1, 10)


def test_pair_view_1x1_filter_scale_is_absorbed_by_bn():
    """A property of eq. 13 with BN right after the conv (docs/units.md): each 1x1 filter
    sees one input channel, so in training mode BN(w * v) depends on w only through its
    sign. Scaling the filters by a positive factor changes nothing; flipping a sign does."""
    rng = np.random.RandomState(0)
    res, idt = (mx.nd.array(rng.normal(size=(8, 16, 3, 3))) for _ in range(2))
    unit = PairViewUnit(16, reduction=4, kernel='1x1')
    unit.initialize(mx.init.Normal(0.5))
    _set(unit.conv.weight, np.array([0.5, -0.8, 1.2, 0.3]).reshape(4, 1, 1, 1))
    with autograd.record():
        a = unit(res, idt).asnumpy()
    w = unit.conv.weight.data()
    unit.conv.weight.set_data(w * 7.0)
    with autograd.record():
        b = unit(res, idt).asnumpy()
    scaled_gap = np.abs(a - b).max()        # only BN's eps = 1e-5 tells the scales apart
    unit.conv.weight.set_data(w * mx.nd.array([-1, 1, 1, 1]).reshape((4, 1, 1, 1)))
    with autograd.record():
        c = unit(res, idt).asnumpy()
    flipped_gap = np.abs(a - c).max()
    assert scaled_gap < 5e-3 and flipped_gap > 20 * scaled_gap, (scaled_gap, flipped_gap)


@pytest.mark.parametrize('hybridize', [False, True])
def test_channel_mean_matches_the_mean_over_channels(hybridize):
    """base.channel_mean (a 1x1 convolution by a constant 1/C) is mean(axis=1), values and
    gradients, and gives no gradient to anything but its input."""
    from mxnet.gluon import HybridBlock
    from cmpese.units.base import channel_mean

    class Probe(HybridBlock):
        def hybrid_forward(self, F, x):
            return channel_mean(F, x, 5)

    rng = np.random.RandomState(4)
    x_np = rng.standard_normal((3, 5, 4, 7)).astype(np.float32)
    g_np = rng.standard_normal((3, 1, 4, 7)).astype(np.float32)
    probe = Probe()
    if hybridize:
        probe.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.array(x_np)
    x.attach_grad()
    with autograd.record():
        y = probe(x)
    y.backward(mx.nd.array(g_np))
    np.testing.assert_allclose(y.asnumpy(), x_np.mean(axis=1, keepdims=True), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(x.grad.asnumpy(), np.repeat(g_np / 5, 5, axis=1), rtol=1e-6,
                               atol=1e-7)


@pytest.mark.parametrize('hybridize', [False, True])
def test_squeeze_and_scale_helpers_match_the_plain_formulas(hybridize):
    """base.squeeze / base.scale (dot by constant rows of 1/HW and ones) are the global mean and the
    channel-wise product, values and gradients, imperative and hybridized."""
    from mxnet.gluon import HybridBlock
    from cmpese.units.base import scale, squeeze

    class Probe(HybridBlock):
        def hybrid_forward(self, F, x, s):
            return scale(F, x, s), squeeze(F, x), squeeze(F, x, 'max')

    rng = np.random.RandomState(3)
    x_np = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    s_np = rng.standard_normal((2, 3)).astype(np.float32)
    g_np = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    probe = Probe()
    if hybridize:
        probe.hybridize(static_alloc=True, static_shape=True)
    x, s = mx.nd.array(x_np), mx.nd.array(s_np)
    x.attach_grad()
    s.attach_grad()
    with autograd.record():
        y, avg, mx_ = probe(x, s)
    y.backward(mx.nd.array(g_np))
    np.testing.assert_array_equal(y.asnumpy(), x_np * s_np[:, :, None, None])
    np.testing.assert_allclose(avg.asnumpy(), x_np.mean(axis=(2, 3), keepdims=True), rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_array_equal(mx_.asnumpy(), x_np.max(axis=(2, 3), keepdims=True))
    np.testing.assert_array_equal(x.grad.asnumpy(), g_np * s_np[:, :, None, None])
    np.testing.assert_allclose(s.grad.asnumpy(), (g_np * x_np).sum(axis=(2, 3)), rtol=1e-5,
                               atol=1e-6)
