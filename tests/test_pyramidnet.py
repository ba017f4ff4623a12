"""PyramidNet (CMPE Table 3, InI Table IV): structure, units, hybridization, export,
gradients, parameter counts against the papers, errors.
"""
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.block import HybridBlock

from cmpese.models import (AllCNNBlock, PostActBlock, PreActBlock, PyramidBlock, get_allcnn,
                           get_pyramidnet, get_resnet_imagenet, pyramid_widths)
from cmpese.tools.complexity import count_params
from cmpese.tools.export import export_model, load_exported
from cmpese.units import SEUnit, resolve_unit
from model_checks import (UNITS, agrees, blocks_of, cases, check_export_round_trip,
                    check_forward_and_hybridize, check_training_step, init_net, random_input,
                    small_pyramidnet, unit_params)

FAMILIES = [
    ('pyramidnet', lambda u, c: small_pyramidnet(u, classes=c), 32, UNITS),
    ('pyramidnet_basic', lambda u, c: get_pyramidnet(14, 96, u, classes=c, bottleneck=False),
     32, UNITS),
]

EXPORT_CASES = [
    ('pyramidnet_cmpe_1x1', lambda: small_pyramidnet('cmpe_se_1x1'), 32),
    # widths 21 ... 46, outputs 84 ... 184: none a multiple of 16, every fold zero-padded
    ('pyramidnet_odd_ini_mix_5_d',
     lambda: get_pyramidnet(20, 30, 'ini_mix_5_d', rounding='floor'), 32),
]

CASES, IDS = cases(FAMILIES)


@pytest.mark.parametrize('name,build,size,unit', CASES, ids=IDS)
def test_forward_shape_and_hybridize_equals_imperative(name, build, size, unit):
    check_forward_and_hybridize(build, size, unit)


@pytest.mark.parametrize('name,build,size,unit', CASES, ids=IDS)
def test_a_training_step_reaches_every_parameter(name, build, size, unit):
    """See model_checks.check_training_step: positive weights leave no ReLU dead for a whole
    batch, so a parameter without gradient is one the graph does not connect."""
    check_training_step(name, build, size, unit)


@pytest.mark.parametrize('name,build,size', EXPORT_CASES, ids=[c[0] for c in EXPORT_CASES])
def test_export_reloads_binds_and_runs_in_onnxruntime(name, build, size, tmp_path):
    check_export_round_trip(name, build, size, tmp_path)


@pytest.mark.parametrize('depth,alpha,bottleneck,paper', [
    (272, 200, True, 26.0),     # InI Table IV
    (164, 270, True, 27.0),     # CMPE Table 3, "bottleneck"
    (110, 270, False, 28.3),    # CMPE Table 3
])
def test_pyramidnet_counts_match_the_papers(depth, alpha, bottleneck, paper):
    ours = count_params(get_pyramidnet(depth, alpha, bottleneck=bottleneck))
    assert agrees(ours, paper), (depth, alpha, ours, paper)


@pytest.mark.parametrize('unit', UNITS[1:] + ['cmpe_se_2x1'])
def test_pyramidnet_unit_cost_matches_the_equations(unit):
    widths = pyramid_widths(6, 24)
    assert widths == [20, 24, 28, 32, 36, 40]
    extra = count_params(small_pyramidnet(unit)) - count_params(small_pyramidnet())
    assert extra == sum(unit_params(unit, 4 * w, inner=w) for w in widths)


def test_pyramidnet_width_schedule():
    net = get_pyramidnet(272, 200)
    blocks = blocks_of(net, PyramidBlock)
    assert len(blocks) == 90 and len(blocks_of(net, PreActBlock)) == 0
    # round(16 + k * 200 / 90): 18.2 -> 18 first, 216 last; outputs 4x
    assert (blocks[0].width, blocks[0].channels, blocks[0].in_channels) == (18, 72, 16)
    assert (blocks[-1].width, blocks[-1].channels) == (216, 864)
    assert [b.width for b in blocks] == pyramid_widths(90, 200)
    assert all(b.in_channels == a.channels for a, b in zip(blocks, blocks[1:]))
    assert all(b.width >= a.width for a, b in zip(blocks, blocks[1:]))
    assert net.output.weight.shape == (10, 864)
    # downsampling (average-pooled shortcut) at the entries of stages 2 and 3 only
    assert [i for i, b in enumerate(blocks) if b.pool is not None] == [30, 60]
    # weighted layers: stem + 3 per block + FC
    assert 1 + 3 * 90 + 1 == 272
    basic = blocks_of(get_pyramidnet(110, 270, bottleneck=False), PyramidBlock)
    assert len(basic) == 54 and (basic[0].channels, basic[-1].channels) == (21, 286)
    # half-up rounding in exact arithmetic: 16 + 3 * 1.5 = 20.5 -> 21
    assert pyramid_widths(4, 6) == [18, 19, 21, 22]


class _ReturnIdentity(HybridBlock):
    """A 'unit' that returns the identity it is given, to see what the block hands it."""

    def hybrid_forward(self, F, residual, identity):
        return identity


def test_pyramidnet_unit_sees_the_pooled_zero_padded_identity():
    block = PyramidBlock(16, 18, stride=2,
                         unit=resolve_unit(lambda c, **kw: _ReturnIdentity()),
                         where='stage2 block1')
    init_net(block)
    x = random_input((2, 16, 9, 9))
    pooled = mx.nd.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type='avg',
                           pooling_convention='full', count_include_pad=False)
    padded = mx.nd.concat(pooled, mx.nd.zeros((2, 72 - 16, 5, 5)), dim=1)
    out = block(x)
    assert out.shape == (2, 72, 5, 5)
    # out = unit(residual, identity) + identity = 2 * padded identity
    np.testing.assert_allclose(out.asnumpy(), 2 * padded.asnumpy(), rtol=1e-6, atol=1e-6)
    block.hybridize()
    np.testing.assert_allclose(block(x).asnumpy(), 2 * padded.asnumpy(), rtol=1e-6, atol=1e-6)


def test_plain_pyramid_block_adds_the_padded_identity():
    block = init_net(PyramidBlock(16, 6, stride=1, bottleneck=True))
    x = random_input((2, 16, 8, 8))
    padded = mx.nd.concat(x, mx.nd.zeros((2, 8, 8, 8)), dim=1)
    np.testing.assert_allclose(block(x).asnumpy(), (block.body(x) + padded).asnumpy(),
                               rtol=1e-5, atol=1e-6)


def test_ini_pyramidnet272_zoo_entries_round_every_odd_width():
    """InI Table IV's PyramidNet rows: 60 of the 90 block outputs (72 ... 864) are not
    multiples of 16; their units take floor(C/16) G-filters and neurons and a zero-padded
    2 ceil(C/16) x 16 joint map; the other 30 are exactly the paper's 2C/16 x 16."""
    import cmpese
    for gset in ('square_3', 'mix_5', 'mix_5_d'):
        net = cmpese.get_model('ini_pyramidnet272_a200_%s' % gset)
        blocks = blocks_of(net, PyramidBlock)
        assert len(blocks) == 90
        for b in blocks:
            c = b.channels
            assert b.unit.gset == gset and b.unit.joint and b.unit.rounding == 'floor'
            assert b.unit.hidden == c // 16 and b.unit.convs[0].weight.shape[0] == c // 16
            assert b.unit.map_shape == (2 * -(-c // 16), 16)
            assert b.unit.pad == 16 * -(-c // 16) - c
        assert sum(b.unit.pad > 0 for b in blocks) == 60
        first = blocks[0].unit
        assert (first.channels, first.hidden, first.map_shape, first.pad) == (72, 4, (10, 16), 8)


def test_ini_pyramidnet272_hybridizes_and_exports(tmp_path):
    """The full InI-PyramidNet-272-mix-5-d: hybridized equals imperative, and the exported
    symbol reloads with the same outputs."""
    import cmpese
    from cmpese.units import ops
    # the export traces the reference operators (cmpese.units.ops); with untrained BN
    # statistics activations reach ~1e12 after 272 layers, where other operators would
    # change every digit, so the whole comparison runs on the reference ones
    with ops.using('reference'):
        net = init_net(cmpese.get_model('ini_pyramidnet272_a200_mix_5_d'))
        x = random_input((2, 3, 32, 32), seed=3)
        imperative = net(x).asnumpy()
        assert imperative.shape == (2, 10) and np.isfinite(imperative).all()
        prefix = str(tmp_path / 'ini_pyramidnet272_a200_mix_5_d')
        export_model(net, prefix, (2, 3, 32, 32))
        hybrid = net(x).asnumpy()
    np.testing.assert_allclose(hybrid, imperative, rtol=1e-4,
                               atol=1e-5 * np.abs(imperative).max())
    np.testing.assert_allclose(load_exported(prefix)(x).asnumpy(), hybrid, rtol=1e-5,
                               atol=1e-5 * np.abs(hybrid).max())


def test_backbones_hint_the_inner_imaged_map():
    """All-CNN: n = 8 rows and no identity (joint=False); ResNets and PyramidNet: 16 columns,
    joint residual + identity maps (2C signals)."""
    allcnn = blocks_of(get_allcnn('ini_square_1'), AllCNNBlock)
    assert [b.unit.map_shape for b in allcnn[:4]] == [(8, 12)] * 3 + [(8, 24)]
    assert not any(b.unit.joint for b in allcnn[:8])
    resnet = blocks_of(get_resnet_imagenet(50, 'ini_mix_5_d'), PostActBlock)
    assert resnet[0].unit.map_shape == (2 * 256 // 16, 16) and resnet[0].unit.joint
    pyramid = blocks_of(small_pyramidnet('ini_square_3'), PyramidBlock)
    assert pyramid[0].unit.map_shape == (2 * 80 // 16, 16)


def test_errors_name_the_layer_or_the_rule():
    with pytest.raises(ValueError, match=r'PyramidNet \(bottleneck\) cannot have depth 273: '
                                         r'.*9n\+2'):
        get_pyramidnet(273, 200)
    with pytest.raises(ValueError, match=r'PyramidNet \(basic\) cannot have depth 111: .*6n\+2'):
        get_pyramidnet(111, 270, bottleneck=False)
    with pytest.raises(ValueError, match=r'alpha .* >= 0'):
        get_pyramidnet(272, -10)
    # PyramidNet-272's first block outputs 72 channels, not a multiple of t = 16
    with pytest.raises(ValueError, match=r'stage1 block1: .*72 channels are not divisible by '
                                         r'the reduction ratio t=16'):
        get_pyramidnet(272, 200, unit='se')
    with pytest.raises(ValueError, match=r"stage1 block1: .*72 channels are not divisible .*"
                                         r"rounding='floor'"):
        get_pyramidnet(272, 200, unit='ini_mix_5_d')
    with pytest.raises(ValueError, match=r"rounding='floor' is an option of the Inner-Imaging "
                                         r"units .*'se' needs the reduction ratio t=16"):
        get_pyramidnet(272, 200, unit='se', rounding='floor')
    with pytest.raises(ValueError, match=r"rounding must be None or 'floor'"):
        get_pyramidnet(272, 200, unit='ini_mix_5_d', rounding='ceil')
    assert isinstance(blocks_of(get_pyramidnet(272, 200, 'se', reduction=4), PyramidBlock)[0]
                      .unit, SEUnit)
