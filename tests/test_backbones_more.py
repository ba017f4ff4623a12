"""All-CNN-C, PyramidNet and the ImageNet ResNets: structure, units, hybridization, export,
gradients, parameter counts against the papers, errors.

ImageNet models run at 32-64 pixels (global pooling makes any size work); their parameters
are counted at full size, which needs no forward pass since every layer knows its inputs.
"""
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon
from mxnet.gluon.block import HybridBlock

from cmpese.models import (AllCNNBlock, PostActBlock, PreActBlock, PyramidBlock, get_allcnn,
                           get_pyramidnet, get_resnet_imagenet, pyramid_widths)
from cmpese.tools.complexity import count_params
from cmpese.tools.export import export_model, export_onnx, load_exported
from cmpese.units import DoubleFCUnit, PairViewUnit, SEUnit
from common import (HE_INIT, PositiveUniform, calibrate_bn, init_net, random_input, unit_params,
                    unreached_parameters)

UNITS = [None, 'se', 'cmpe_se_double_fc', 'cmpe_se_1x1']
UNIT_CLASS = {'se': SEUnit, 'cmpe_se_double_fc': DoubleFCUnit, 'cmpe_se_1x1': PairViewUnit}


def _blocks(net, cls):
    found = []
    net.apply(lambda b: found.append(b) if isinstance(b, cls) else None)
    return found


def small_pyramidnet(unit=None, **kwargs):
    """Bottleneck PyramidNet-20 (2 blocks per stage) widening by 4 per block: widths 20 ... 40,
    block outputs 80 ... 160, all divisible by t = 16."""
    return get_pyramidnet(20, 24, unit=unit, **kwargs)


# (family, builder(unit, classes), input side, units the family takes)
FAMILIES = [
    ('allcnn', lambda u, c: get_allcnn(u, classes=c), 32, [None, 'se']),
    ('pyramidnet', lambda u, c: small_pyramidnet(u, classes=c), 32, UNITS),
    ('pyramidnet_basic', lambda u, c: get_pyramidnet(14, 96, u, classes=c, bottleneck=False),
     32, UNITS),
    ('resnet50_v1', lambda u, c: get_resnet_imagenet(50, u, classes=c), 32, UNITS),
    ('resnet50_v2', lambda u, c: get_resnet_imagenet(50, u, version=2, classes=c), 32, UNITS),
]
CASES = [(name, build, size, unit) for name, build, size, units in FAMILIES for unit in units]
IDS = ['%s-%s' % (name, unit or 'plain') for name, _, _, unit in CASES]


@pytest.mark.parametrize('name,build,size,unit', CASES, ids=IDS)
def test_forward_shape_and_hybridize_equals_imperative(name, build, size, unit):
    net = calibrate_bn(init_net(build(unit, 7)), steps=3, shape=(3, size, size))
    x = random_input((2, 3, size, size))
    imperative = net(x).asnumpy()
    assert imperative.shape == (2, 7) and np.isfinite(imperative).all()
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(x).asnumpy(), imperative, rtol=1e-4,
                               atol=1e-5 * np.abs(imperative).max())
    if unit is not None:
        found = _blocks(net, UNIT_CLASS[unit])
        assert found and all(type(u) is UNIT_CLASS[unit] for u in found)


@pytest.mark.parametrize('name,build,size,unit', CASES, ids=IDS)
def test_a_training_step_reaches_every_parameter(name, build, size, unit):
    """As tests/test_models.py: with all-positive weights and inputs no ReLU is dead for a
    whole batch, so a parameter without gradient is one the graph does not connect.

    A reached parameter may still get a tiny gradient: a BN whose output only feeds a
    convolution and a training-mode BN (PyramidNet's first BN in a block) moves the loss only
    through differences between its channels, ~1e-8 with near-identical positive filters, which
    a float32 step does not resolve around gamma = 1. So "reached" is a nonzero gradient, and
    the step (lr 0.1, batch 8) must move every parameter with a gradient above 1e-4.

    All-CNN has no identity path: positive weights make every channel of every layer nearly the
    same function of the input, and the class scores come out equal to 1e-5. Its convolutions
    get He's random-sign initialization instead (BN in training mode leaves no channel dead
    over a batch); its units keep the positive one, as an FC-ReLU without BN needs it.
    """
    net = build(unit, 10)
    if name == 'allcnn':
        net.initialize(HE_INIT)
        net.collect_params('.*unit.*').initialize(PositiveUniform(), force_reinit=True)
    else:
        net.initialize(PositiveUniform())
    missing = unreached_parameters(
        net, size=min(size, 32), min_grad=1e-4,
        skip=('pairview_weight',) if unit == 'cmpe_se_1x1' else ())  # docs/units.md
    assert not missing, 'no gradient reached, or the step did not move, %s' % missing


# ---------------------------------------------------------------------------- parameters

def _agrees(ours, paper_millions):
    return abs(ours / (paper_millions * 1e6) - 1) <= 0.01


@pytest.mark.parametrize('depth,unit,paper', [(50, None, 25.6), (101, None, 44.6),
                                              (50, 'se', 28.1), (101, 'se', 49.4)])
def test_imagenet_resnet_counts_match_ini_table_v(depth, unit, paper):
    """InI Table V (He et al.; SENet's SE-ResNets, t = 16): 25,557,032 / 44,549,160 /
    28,071,976 / 49,292,328."""
    ours = count_params(get_resnet_imagenet(depth, unit))
    assert _agrees(ours, paper), (depth, unit, ours, paper)


def test_imagenet_resnets_are_gluoncv_resnets():
    """v1 has exactly the parameters of GluonCV's resnet50_v1b (stride on the 3x3), v2 those of
    resnet50_v2 (whose input BN has no trainable parameters)."""
    from gluoncv.model_zoo import get_model
    assert count_params(get_resnet_imagenet(50)) == count_params(get_model('resnet50_v1b'))
    assert count_params(get_resnet_imagenet(50, version=2)) == \
        count_params(get_model('resnet50_v2'))


@pytest.mark.parametrize('unit', UNITS[1:] + ['cmpe_se_2x1'])
@pytest.mark.parametrize('version', [1, 2])
def test_imagenet_unit_cost_matches_the_equations(unit, version):
    extra = count_params(get_resnet_imagenet(50, unit, version=version)) - \
        count_params(get_resnet_imagenet(50, version=version))
    assert extra == sum(n * unit_params(unit, c)
                        for n, c in zip([3, 4, 6, 3], [256, 512, 1024, 2048]))


@pytest.mark.parametrize('depth,alpha,bottleneck,paper', [
    (272, 200, True, 26.0),     # InI Table IV
    (164, 270, True, 27.0),     # CMPE Table 3, "bottleneck"
    (110, 270, False, 28.3),    # CMPE Table 3
])
def test_pyramidnet_counts_match_the_papers(depth, alpha, bottleneck, paper):
    ours = count_params(get_pyramidnet(depth, alpha, bottleneck=bottleneck))
    assert _agrees(ours, paper), (depth, alpha, ours, paper)


@pytest.mark.parametrize('unit', UNITS[1:] + ['cmpe_se_2x1'])
def test_pyramidnet_unit_cost_matches_the_equations(unit):
    widths = pyramid_widths(6, 24)
    assert widths == [20, 24, 28, 32, 36, 40]
    extra = count_params(small_pyramidnet(unit)) - count_params(small_pyramidnet())
    assert extra == sum(unit_params(unit, 4 * w) for w in widths)


def test_allcnn_counts():
    """All-CNN-C with BN: 1,370,996; SE after the 8 feature convolutions (t = 16) adds
    3 x 2 * 96^2 / 16 + 5 x 2 * 192^2 / 16 = 26,496. InI Table II prints 1.30M (Springenberg
    et al.'s own rounded figure for All-CNN-C, whose weights alone are 1,368,480) and 1.35M;
    cmpese/models/allcnn.py shows why no t = 16 placement gives the printed +0.05M."""
    weights = 3 * 96 * 9 + 2 * 96 * 96 * 9 + 96 * 192 * 9 + 3 * 192 * 192 * 9 + 192 * 192 \
        + 192 * 10
    bn = 2 * (3 * 96 + 5 * 192 + 10)
    assert weights == 1368480
    plain = count_params(get_allcnn())
    assert plain == weights + bn == 1370996
    se = count_params(get_allcnn('se'))
    assert se - plain == 3 * unit_params('se', 96) + 5 * unit_params('se', 192) == 26496
    # t = 8 would add the printed 0.05M
    assert count_params(get_allcnn('se', reduction=8)) - plain == 52992
    assert count_params(get_allcnn(classes=100)) - plain == 90 * 192 + 2 * 90


# ---------------------------------------------------------------------------- structure

def test_pyramidnet_width_schedule():
    net = get_pyramidnet(272, 200)
    blocks = _blocks(net, PyramidBlock)
    assert len(blocks) == 90 and len(_blocks(net, PreActBlock)) == 0
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
    basic = _blocks(get_pyramidnet(110, 270, bottleneck=False), PyramidBlock)
    assert len(basic) == 54 and (basic[0].channels, basic[-1].channels) == (21, 286)
    # half-up rounding in exact arithmetic: 16 + 3 * 1.5 = 20.5 -> 21
    assert pyramid_widths(4, 6) == [18, 19, 21, 22]


class _ReturnIdentity(HybridBlock):
    """A 'unit' that returns the identity it is given, to see what the block hands it."""

    def hybrid_forward(self, F, residual, identity):
        return identity


def test_pyramidnet_unit_sees_the_pooled_zero_padded_identity():
    block = PyramidBlock(16, 18, stride=2, unit=lambda c, **kw: _ReturnIdentity(),
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


@pytest.mark.parametrize('version,block_cls', [(1, PostActBlock), (2, PreActBlock)])
def test_imagenet_resnet_structure(version, block_cls):
    net = get_resnet_imagenet(101, 'cmpe_se_1x1', version=version)
    blocks = _blocks(net, block_cls)
    assert len(blocks) == 33 and all(b._num_layers == 3 for b in blocks)
    assert [b.unit.channels for b in blocks] == [256] * 3 + [512] * 4 + [1024] * 23 + \
        [2048] * 3
    projections = [b for b in blocks if (b.bridge if version == 1 else b.downsample)
                   is not None]
    assert len(projections) == 4
    # the stride sits on the 3x3 convolution (v1b), not on the first 1x1
    strided = [b for b in blocks if b.conv1._kwargs['stride'] == (2, 2)] if version == 2 \
        else [b for b in blocks if b.body[3]._kwargs['stride'] == (2, 2)]
    assert len(strided) == 3
    assert net.output.weight.shape == (1000, 2048)
    assert (len(_blocks(net, PostActBlock)) == 0) == (version == 2)


def test_imagenet_basic_depths():
    net = init_net(get_resnet_imagenet(18, 'se', version=2, classes=5))
    blocks = _blocks(net, PreActBlock)
    assert len(blocks) == 8 and all(b._num_layers == 2 for b in blocks)
    assert net(random_input((1, 3, 40, 48))).shape == (1, 5)
    assert len(_blocks(get_resnet_imagenet(34), PostActBlock)) == 16


def test_allcnn_structure():
    net = get_allcnn('se', classes=100)
    layers = _blocks(net.features, AllCNNBlock)
    assert len(layers) == 8
    assert [b.unit.channels for b in layers] == [96] * 3 + [192] * 5
    assert [b.conv._kwargs['stride'] for b in layers].count((2, 2)) == 2
    classifier = _blocks(net.output, AllCNNBlock)
    assert len(classifier) == 1 and classifier[0].unit is None
    assert classifier[0].conv.weight.shape == (100, 192, 1, 1)
    # All-CNN-C's dropout: 0.2 on the input, 0.5 after each stride-2 convolution
    rates = [b._rate for b in net.features if isinstance(b, gluon.nn.Dropout)]
    assert rates == [0.2, 0.5, 0.5]
    assert not [b for b in get_allcnn(drop_rate=0, input_drop_rate=0).features
                if isinstance(b, gluon.nn.Dropout)]
    # 32 -> 16 -> 8 -> 6 (conv7 has no padding) -> global pooling
    small = init_net(get_allcnn())
    assert small.features(random_input((1, 3, 32, 32))).shape == (1, 192, 6, 6)


def test_backbones_hint_the_inner_imaged_map():
    """All-CNN: n = 8 rows and no identity (joint=False); ResNets and PyramidNet: 16 columns,
    joint residual + identity maps (2C signals)."""
    allcnn = _blocks(get_allcnn('ini_square_1'), AllCNNBlock)
    assert [b.unit.map_shape for b in allcnn[:4]] == [(8, 12)] * 3 + [(8, 24)]
    assert not any(b.unit.joint for b in allcnn[:8])
    resnet = _blocks(get_resnet_imagenet(50, 'ini_mix_5_d'), PostActBlock)
    assert resnet[0].unit.map_shape == (2 * 256 // 16, 16) and resnet[0].unit.joint
    pyramid = _blocks(small_pyramidnet('ini_square_3'), PyramidBlock)
    assert pyramid[0].unit.map_shape == (2 * 80 // 16, 16)


def test_ini_pyramidnet272_zoo_entries_round_every_odd_width():
    """InI Table IV's PyramidNet rows: 60 of the 90 block outputs (72 ... 864) are not
    multiples of 16; their units take floor(C/16) G-filters and neurons and a zero-padded
    2 ceil(C/16) x 16 joint map; the other 30 are exactly the paper's 2C/16 x 16."""
    import cmpese
    for gset in ('square_3', 'mix_5', 'mix_5_d'):
        net = cmpese.get_model('ini_pyramidnet272_a200_%s' % gset)
        blocks = _blocks(net, PyramidBlock)
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


# ---------------------------------------------------------------------------- export

EXPORT_CASES = [
    ('allcnn_se', lambda: get_allcnn('se'), 32),
    ('pyramidnet_cmpe_1x1', lambda: small_pyramidnet('cmpe_se_1x1'), 32),
    # widths 21 ... 46, outputs 84 ... 184: none a multiple of 16, every fold zero-padded
    ('pyramidnet_odd_ini_mix_5_d',
     lambda: get_pyramidnet(20, 30, 'ini_mix_5_d', rounding='floor'), 32),
    ('resnet50_v1_se', lambda: get_resnet_imagenet(50, 'se'), 64),
    ('resnet50_v2_double_fc', lambda: get_resnet_imagenet(50, 'cmpe_se_double_fc', version=2),
     64),
]


@pytest.mark.parametrize('name,build,size', EXPORT_CASES, ids=[c[0] for c in EXPORT_CASES])
def test_export_reloads_binds_and_runs_in_onnxruntime(name, build, size, tmp_path):
    net = calibrate_bn(init_net(build()), steps=3, shape=(3, size, size))
    x = random_input((3, 3, size, size), seed=5)
    prefix = str(tmp_path / name)
    export_model(net, prefix, (3, 3, size, size))
    reference = net(x).asnumpy()
    np.testing.assert_allclose(load_exported(prefix)(x).asnumpy(), reference, rtol=1e-5,
                               atol=1e-5)
    sym, arg, aux = mx.model.load_checkpoint(prefix, 0)
    mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[('data', x.shape)], for_training=False)
    mod.set_params(arg, aux)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    # Module applies oneDNN's subgraph fusions (docs/export.md): sums run in another order
    np.testing.assert_allclose(mod.get_outputs()[0].asnumpy(), reference, rtol=1e-4,
                               atol=1e-4 * np.abs(reference).max())
    try:
        import onnxruntime as ort
    except ImportError:
        return
    path = export_onnx(prefix + '-symbol.json', prefix + '-0000.params', prefix + '.onnx',
                       input_shape=(3, 3, size, size))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    out = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())


# ---------------------------------------------------------------------------- errors

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
    assert isinstance(_blocks(get_pyramidnet(272, 200, 'se', reduction=4), PyramidBlock)[0]
                      .unit, SEUnit)
    with pytest.raises(ValueError, match=r'ImageNet ResNet cannot have depth 49: depths are '
                                         r'18, 34, 50, 101, 152'):
        get_resnet_imagenet(49)
    with pytest.raises(ValueError, match=r'version must be 1 .* or 2'):
        get_resnet_imagenet(50, version=3)
    with pytest.raises(ValueError, match=r'stage1 block1: .*256 channels are not divisible '
                                         r'by the reduction ratio t=3'):
        get_resnet_imagenet(50, 'se', reduction=3)
    with pytest.raises(ValueError, match=r'conv1: unit .cmpe_se_1x1. models the identity flow'):
        get_allcnn('cmpe_se_1x1')
    with pytest.raises(ValueError, match=r'conv1: .*96 channels are not divisible'):
        get_allcnn('se', reduction=64)
