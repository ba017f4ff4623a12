"""Inner-Imaging unit: fold orders (T, T_alt, stacking), G-filter dropping, zero-filled
aggregation, errors, against small hand-made inputs."""
import mxnet as mx
import numpy as np
import pytest

from cmpese.units import InnerImagingUnit, get_unit, resolve_unit
from cmpese.units.inner_imaging import fold_shape, padded_fold, parse_gset

BN_EPS = 1e-5


def _signals(values):
    """(1, C, 2, 2) feature map whose channel c averages to values[c]."""
    v = np.asarray(values, dtype=np.float32)
    return mx.nd.array(np.broadcast_to(v[None, :, None, None], (1, len(v), 2, 2)).copy())


def _identity_gfilters(unit):
    """Make every G-filter an all-ones kernel and every BN the identity (inference mode)."""
    for conv, bn in zip(unit.convs, unit.bns):
        conv.weight.set_data(mx.nd.ones(conv.weight.shape))
        bn.running_var.set_data(mx.nd.ones(bn.running_var.shape) - BN_EPS)


U = [1, 2, 3, 4]
X = [10, 20, 30, 40]


def test_fold_T_is_row_major():
    unit = InnerImagingUnit(4, reduction=1, gset='horizon_1', joint=False, map_shape=(2, 2))
    unit.initialize()
    v = unit.inner_image(mx.nd, _signals(U)).asnumpy()
    np.testing.assert_array_equal(v[0, 0], [[1, 2], [3, 4]])


def test_fold_T_alt_alternates_identity_and_residual_rows():
    # eq. 24: x^1..x^m / u^1..u^m / x^(m+1).. / u^(m+1)..
    unit = InnerImagingUnit(4, reduction=1, gset='horizon_1', joint=True, map_shape=(4, 2))
    unit.initialize()
    v = unit.inner_image(mx.nd, _signals(U), _signals(X)).asnumpy()
    np.testing.assert_array_equal(v[0, 0], [[10, 20], [1, 2], [30, 40], [3, 4]])


def test_simple_sets_stack_residual_over_identity():
    unit = InnerImagingUnit(4, reduction=1, gset='simple_1')
    unit.initialize()
    v = unit.inner_image(mx.nd, _signals(U), _signals(X)).asnumpy()
    np.testing.assert_array_equal(v[0, 0], [U, X])        # eq. 19
    assert unit.map_shape == (2, 4) and unit.group_shape == (1, 4)   # eq. 21: C^g = C


def test_concat_aggregation_zero_fills_shorter_results():
    # vertical-2 = {1x1, 2x1} on the 2x4 map [[1,2,3,4],[5,6,7,8]]: the 1x1 result is the map,
    # the 2x1 result is the column sums [6, 8, 10, 12] with its missing row filled with zeros
    unit = InnerImagingUnit(8, reduction=8, gset='vertical_2', joint=False, map_shape=(2, 4))
    unit.initialize()
    _identity_gfilters(unit)
    g = unit.group_signals(mx.nd, mx.nd.array(np.arange(1, 9, dtype=np.float32).reshape(1, 1, 2, 4)))
    np.testing.assert_allclose(g.asnumpy()[0, 0], [[1, 2, 3, 4, 6, 8, 10, 12],
                                                   [5, 6, 7, 8, 0, 0, 0, 0]], rtol=1e-6)
    assert unit.group_shape == (2, 8) and unit.fc1.weight.shape == (1, 16)


def test_overlay_aggregation_averages_zero_filled_results():
    unit = InnerImagingUnit(8, reduction=8, gset='horizon_2', joint=False, map_shape=(2, 4),
                            aggregate='overlay')
    unit.initialize()
    _identity_gfilters(unit)
    g = unit.group_signals(mx.nd, mx.nd.array(np.arange(1, 9, dtype=np.float32).reshape(1, 1, 2, 4)))
    # 1x1: the map; 1x2: adjacent sums [[3,5,7],[11,13,15]] with a zero column; averaged
    expected = (np.array([[1, 2, 3, 4], [5, 6, 7, 8]]) +
                np.array([[3, 5, 7, 0], [11, 13, 15, 0]])) / 2.0
    np.testing.assert_allclose(g.asnumpy()[0, 0], expected, rtol=1e-6)
    assert unit.group_shape == (2, 4)


def test_eps_filters_are_averaged():
    unit = InnerImagingUnit(16, reduction=4, gset='square_1', joint=False, map_shape=(4, 4))
    unit.initialize()
    assert unit.convs[0].weight.shape == (4, 1, 3, 3)      # eps = C/t filters
    w = np.zeros((4, 1, 3, 3), dtype=np.float32)
    w[:, 0, 1, 1] = [1, 2, 3, 6]                            # centre taps: mean 3
    unit.convs[0].weight.set_data(mx.nd.array(w))
    unit.bns[0].running_var.set_data(mx.nd.ones(4) - BN_EPS)
    v = mx.nd.array(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    g = unit.group_signals(mx.nd, v).asnumpy()[0, 0]
    np.testing.assert_allclose(g, 3 * np.array([[5, 6], [9, 10]]), rtol=1e-6)


def test_gfilters_larger_than_the_map_are_dropped():
    # WRN-16-1 stage 1: C = 16, joint, groups rule k=1 -> 2 x 16 map: only 1x1 and 1x5 fit
    unit = get_unit('ini_mix_5_d', 16, reduction=16, ini_map=('groups', 1))
    assert unit.map_shape == (2, 16)
    assert unit.gfilters == [(1, 1, 1), (1, 5, 1)]
    assert (3, 3, 2) in unit.dropped and (3, 3, 1) in unit.dropped


def test_empty_set_is_an_error_naming_layer_and_map():
    with pytest.raises(ValueError, match=r'stage1 block1: .*every G-filter of the set square_1 '
                                         r'exceeds the 2x16 inner-imaged map'):
        resolve_unit('ini_square_1').build(16, where='stage1 block1')


def test_fold_that_does_not_fit_is_an_error():
    with pytest.raises(ValueError, match=r'cannot fold 256 channel signals .*groups.*rows x cols'):
        get_unit('ini_square_3', 128, ini_map=('groups', 3))
    with pytest.raises(ValueError, match=r'map_shape=\(rows, cols\) with rows x cols = 64'):
        get_unit('ini_square_3', 32, map_shape=(5, 12))
    with pytest.raises(ValueError, match='even row count'):
        get_unit('ini_square_3', 48, map_shape=(3, 32))


def test_set_names_and_errors():
    assert parse_gset("mix_5_d")[0][-1] == (3, 3, 2)          # 5x5 receptive field
    assert parse_gset('vertical_3')[0] == [(1, 1, 1), (2, 1, 1), (3, 1, 1)]
    assert parse_gset('simple_3') == ([(1, 1, 1), (2, 1, 1), (2, 2, 1)], True)
    with pytest.raises(ValueError, match='unknown G-filter set'):
        parse_gset('triangle_3')
    with pytest.raises(ValueError, match='dilated G-filter needs a folded map'):
        parse_gset('simple_3_d')
    with pytest.raises(ValueError, match='need joint=True'):
        InnerImagingUnit(32, gset='simple_1', joint=False)
    assert fold_shape(320, 160, ('groups', 10)) == (20, 16)    # n = 20, m = C/10 (WRN)
    assert fold_shape(128, 64, ('cols', 16)) == (8, 16)        # n = 2C/16, m = 16
    assert fold_shape(96, 96, ('rows', 8)) == (8, 12)          # n = 8, m = C/8 (All-CNN)


@pytest.mark.parametrize('name', ['ini_simple_1', 'ini_simple_3', 'ini_square_3_d', 'ini_mix_5_d',
                                  'ini_square_1_nojoint', 'ini_horizon_3'])
def test_ini_unit_hybridizes_and_trains(name):
    from mxnet import autograd
    rng = np.random.RandomState(0)
    res, idt = (mx.nd.array(rng.normal(size=(8, 64, 4, 4))) for _ in range(2))
    unit = get_unit(name, 64, reduction=8, ini_map=('cols', 16))
    unit.initialize(mx.init.Normal(0.5))
    a = unit(res, idt)
    unit.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(unit(res, idt).asnumpy(), a.asnumpy(), rtol=1e-5, atol=1e-6)
    with autograd.record():
        loss = (unit(res, idt) * mx.nd.array(rng.normal(size=res.shape))).sum()
    loss.backward()
    for pname, p in unit.collect_params().items():
        if p.grad_req != 'null':
            assert np.isfinite(p.grad().asnumpy()).all(), pname
            assert np.abs(p.grad().asnumpy()).sum() > 0, pname


def test_spatial_attention_by_hand():
    """One map per group, from that group's channel mean and max (CBAM), applied before the
    channel unit (eq. 50-51)."""
    from cmpese.units import SpatialAttention
    spa = SpatialAttention(4, groups=2, kernel_size=1)
    spa.initialize()
    # group k's map = sigmoid(a_k * mean + b_k * max) with BN the identity
    spa.conv.weight.set_data(mx.nd.array(np.array([1.0, 0.0, 0.0, 2.0]).reshape(2, 2, 1, 1)))
    spa.bn.running_var.set_data(mx.nd.ones(2) - BN_EPS)
    x = np.zeros((1, 4, 1, 2), dtype=np.float32)
    x[0, :, 0, 0] = [1, 3, -2, 0]      # group 1 mean 2; group 2 max 0
    x[0, :, 0, 1] = [0, 0, 1, 5]       # group 1 mean 0; group 2 max 5
    out = spa(mx.nd.array(x)).asnumpy()
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    xi1 = sig(np.array([2.0, 0.0]))
    xi2 = sig(np.array([0.0, 10.0]))
    np.testing.assert_allclose(out[0, :2, 0], x[0, :2, 0] * xi1, rtol=1e-6)
    np.testing.assert_allclose(out[0, 2:, 0], x[0, 2:, 0] * xi2, rtol=1e-6)


def test_spa_variants_compose_spatial_then_channel():
    unit = get_unit('ini_mix_5_d_spa4', 64, ini_map=('cols', 16))
    unit.initialize()
    assert unit.spatial.groups == 4 and isinstance(unit.channel, InnerImagingUnit)
    assert unit.spatial.conv.weight.shape == (4, 2, 7, 7)
    rng = np.random.RandomState(0)
    res, idt = (mx.nd.array(rng.normal(size=(2, 64, 5, 5))) for _ in range(2))
    expected = unit.channel(unit.spatial(res), idt)
    np.testing.assert_allclose(unit(res, idt).asnumpy(), expected.asnumpy(), rtol=1e-6)
    unit.hybridize()
    np.testing.assert_allclose(unit(res, idt).asnumpy(), expected.asnumpy(), rtol=1e-5, atol=1e-6)
    assert get_unit('se_spa', 64).spatial.groups == 1
    with pytest.raises(ValueError, match='cannot be split into 3 groups'):
        get_unit('se_spa3', 64)
    with pytest.raises(ValueError, match=r"unknown recalibration unit 'ini_mix_9_spa'"):
        get_unit('ini_mix_9_spa', 64)


# ------------------------------------------------------- widths t does not divide (PyramidNet)

def test_widths_t_does_not_divide_are_refused_unless_rounding_floor():
    # PyramidNet-272's first block: C = 72, t = 16
    with pytest.raises(ValueError, match=r"stage1 block1: .*72 channels are not divisible by "
                                         r"the reduction ratio t=16.*rounding='floor' for "
                                         r"floor\(C/t\) = 4"):
        resolve_unit('ini_mix_5_d', hints={'ini_map': ('cols', 16)}).build(
            72, where='stage1 block1')
    unit = get_unit('ini_mix_5_d', 72, ini_map=('cols', 16), rounding='floor')
    # floor(72/16) = 4 G-filters per shape and FC neurons; 2 x ceil(72/16) = 10 rows of 16,
    # each flow padded with 5 x 16 - 72 = 8 zero signals
    assert unit.hidden == 4 and unit.convs[0].weight.shape == (4, 1, 1, 1)
    assert unit.map_shape == (10, 16) and unit.pad == 8
    assert unit.fc1.weight.shape == (4, 10 * (16 + 12 + 14 + 16 + 12 + 12))
    assert unit.fc2.weight.shape == (72, 4)
    assert 'eps=4' in repr(unit) and '8 zeros per flow' in repr(unit)
    with pytest.raises(ValueError, match='rounding must be one of exact, floor'):
        get_unit('ini_mix_5_d', 72, rounding='ceil')


def test_rounding_floor_changes_nothing_when_t_divides_c():
    for name, rule in (('ini_mix_5_d', ('cols', 16)), ('ini_square_3_nojoint', ('cols', 16)),
                       ('ini_square_1_nojoint', ('rows', 8))):
        exact = get_unit(name, 96, ini_map=rule)
        floor = get_unit(name, 96, ini_map=rule, rounding='floor')
        assert (floor.map_shape, floor.pad, floor.group_shape, floor.hidden) == \
            (exact.map_shape, 0, exact.group_shape, exact.hidden)
        assert sorted(p.shape for p in floor.collect_params().values()) == \
            sorted(p.shape for p in exact.collect_params().values())


def test_padded_fold_T_alt_puts_the_zeros_at_the_end_of_each_flow():
    u = list(range(1, 11))                  # C = 10 residual signals
    x = [10 * v for v in u]                 # identity signals
    unit = InnerImagingUnit(10, reduction=4, gset='horizon_1', ini_map=('cols', 4),
                            rounding='floor')
    unit.initialize()
    assert unit.hidden == 2 and unit.map_shape == (6, 4) and unit.pad == 2
    v = unit.inner_image(mx.nd, _signals(u), _signals(x)).asnumpy()
    np.testing.assert_array_equal(v[0, 0], [[10, 20, 30, 40], [1, 2, 3, 4],
                                            [50, 60, 70, 80], [5, 6, 7, 8],
                                            [90, 100, 0, 0], [9, 10, 0, 0]])
    # T (one flow) and the ('rows', n) rule: 3 rows of ceil(10 / 3) = 4
    alone = InnerImagingUnit(10, reduction=4, gset='horizon_1', joint=False,
                             ini_map=('rows', 3), rounding='floor')
    alone.initialize()
    v = alone.inner_image(mx.nd, _signals(u)).asnumpy()
    np.testing.assert_array_equal(v[0, 0], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 0, 0]])
    assert padded_fold(72, 2, ('cols', 16)) == (10, 16, 8)
    assert padded_fold(64, 2, ('cols', 16)) == (8, 16, 0)
    with pytest.raises(ValueError, match='zero-padded fold needs'):
        padded_fold(72, 2, ('rows', 3))


def test_padded_unit_hybridizes_and_matches_imperative():
    rng = np.random.RandomState(1)
    res, idt = (mx.nd.array(rng.normal(size=(4, 72, 3, 3))) for _ in range(2))
    unit = get_unit('ini_mix_5_d_spa4', 72, ini_map=('cols', 16), rounding='floor')
    unit.initialize(mx.init.Normal(0.5))
    a = unit(res, idt).asnumpy()
    unit.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(unit(res, idt).asnumpy(), a, rtol=1e-5, atol=1e-6)


def _ini_units(net):
    found = []
    net.apply(lambda b: found.append(b) if isinstance(b, InnerImagingUnit) else None)
    return found


# family builder -> the aggregation its hint gives (docs/inner_imaging.md, "Aggregation")
def _family_builders():
    from cmpese.models import (get_allcnn, get_preresnet, get_pyramidnet, get_resnet_cifar,
                               get_resnet_imagenet, get_wrn)
    return [
        ('pre-act basic', lambda **kw: get_preresnet(20, unit='ini_mix_5_d', **kw), 'concat'),
        ('pre-act basic 164', lambda **kw: get_preresnet(164, bottleneck=False,
                                                         unit='ini_square_3', **kw), 'concat'),
        ('pre-act bottleneck', lambda **kw: get_preresnet(29, bottleneck=True,
                                                          unit='ini_mix_5_d', **kw), 'overlay'),
        ('WRN', lambda **kw: get_wrn(16, 2, unit='ini_simple_3', **kw), 'overlay'),
        ('All-CNN', lambda **kw: get_allcnn(unit='ini_square_3', **kw), 'overlay'),
        ('PyramidNet', lambda **kw: get_pyramidnet(20, 30, unit='ini_mix_5_d_spa',
                                                   rounding='floor', **kw), 'overlay'),
        ('ImageNet ResNet', lambda **kw: get_resnet_imagenet(18, unit='ini_square_3_nojoint',
                                                             **kw), 'overlay'),
        ('CIFAR ResNet (no printed row)', lambda **kw: get_resnet_cifar(
            8, unit='ini_mix_5_d', bridge_unit='ini_square_3', **kw), 'concat'),
    ]


@pytest.mark.parametrize('family,build,hinted', _family_builders(),
                         ids=[f for f, _, _ in _family_builders()])
def test_each_family_hints_its_aggregation_and_the_user_option_wins(family, build, hinted):
    units = _ini_units(build())
    assert units and {u.aggregate for u in units} == {hinted}
    other = {'concat': 'overlay', 'overlay': 'concat'}[hinted]
    chosen = _ini_units(build(unit_kwargs={'aggregate': other}))
    assert len(chosen) == len(units) and {u.aggregate for u in chosen} == {other}


def test_the_aggregate_hint_reaches_ini_units_only():
    # the unit's own default is the equations' concatenation; a backbone's hint changes it,
    # the user's option beats the hint, and units without the option never receive it
    assert get_unit('ini_square_3', 64, ini_map=('cols', 16)).aggregate == 'concat'
    spec = resolve_unit('ini_square_3', hints={'ini_map': ('cols', 16), 'aggregate': 'overlay'})
    assert spec.accepts('aggregate') and spec.build(64).aggregate == 'overlay'
    spec = resolve_unit('ini_square_3', hints={'ini_map': ('cols', 16), 'aggregate': 'overlay'},
                        aggregate='concat')
    assert spec.build(64).aggregate == 'concat'
    for name in ('ini_simple_3', 'ini_square_3_nojoint', 'ini_mix_5_d_spa4'):
        assert resolve_unit(name).accepts('aggregate')
    for name in ('se', 'cmpe_se_1x1', 'cmpe_se_double_fc'):
        spec = resolve_unit(name, hints={'aggregate': 'overlay'})
        assert not spec.accepts('aggregate') and 'aggregate' not in spec.final_options()
        spec.build(64)


def test_ini_preresnet20_mix_5_d_keeps_the_concatenation():
    """Basic-block pre-act ResNets keep eq. 10-11's concatenation (InI Table II's ResNet-110
    rows): ini_preresnet20_mix_5_d is the same 283,286-parameter network as before the
    per-family default."""
    import cmpese
    from cmpese.tools.complexity import count_params
    net = cmpese.get_model('ini_preresnet20_mix_5_d')
    assert {u.aggregate for u in _ini_units(net)} == {'concat'}
    assert count_params(net) == 283286 == count_params(
        cmpese.get_model('ini_preresnet20_mix_5_d', unit_kwargs={'aggregate': 'concat'}))
