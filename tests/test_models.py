"""Backbones: structure, every zoo name, hybridization, gradients, errors."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import cmpese
from cmpese.models import BasicBlock, PreActBlock, get_preresnet, get_resnet_cifar, get_wrn
from cmpese.units import DoubleFCUnit, PairViewUnit, SEUnit, resolve_unit
from model_checks import PositiveUniform, init_net, nparams, random_input, unreached_parameters

ALL_NAMES = cmpese.get_model_list()


def _blocks(net, cls):
    found = []
    net.apply(lambda b: found.append(b) if isinstance(b, cls) else None)
    return found


def test_zoo_holds_every_paper_name():
    expected = set()
    for pre, suf in [('', ''), ('se_', ''), ('cmpe_se_', '_double_fc'), ('cmpe_se_', '_2x1'),
                     ('cmpe_se_', '_1x1')]:
        expected |= {'%swrn%s%s' % (pre, dk, suf) for dk in ('16_8', '22_10', '28_10', '40_10')}
        expected |= {'%spreresnet%d%s' % (pre, d, suf) for d in (20, 56, 110, 164)}
    for d in (20, 32, 44, 56, 110):
        expected |= {'resnet%d_cifar' % d, 'se_resnet%d_cifar' % d, 'res_se_net%d' % d}
    # InI paper Tables II-IV
    ini = {'wrn16_8': 'simple_3 square_1 square_3 square_3_d mix_5 mix_5_d',
           'wrn22_10': 'simple_3 square_1 square_3 square_3_d mix_5 mix_5_d',
           'wrn28_10': 'square_1_nojoint simple_1 simple_3 square_1 square_3 square_3_d '
                       'mix_5 mix_5_d',
           'preresnet110': 'simple_1 simple_3 square_3 square_3_d',
           'preresnet164': 'square_1_nojoint simple_1 simple_3 square_1 square_3 square_3_d '
                           'mix_5 mix_5_d'}
    expected |= {'ini_%s_%s' % (b, g) for b, gs in ini.items() for g in gs.split()}
    # All-CNN, PyramidNet, ImageNet (InI Tables II, IV, V; CMPE Table 4)
    expected |= {'allcnn', 'se_allcnn', 'ini_allcnn_square_1', 'ini_allcnn_square_3',
                 'pyramidnet272_a200', 'ini_pyramidnet272_a200_square_3',
                 'ini_pyramidnet272_a200_mix_5', 'ini_pyramidnet272_a200_mix_5_d'}
    for d in (50, 101):
        expected |= {'resnet%d' % d, 'se_resnet%d' % d, 'se_resnet%d_timm' % d,
                     'cmpe_se_resnet%d_double_fc' % d,
                     'cmpe_se_resnet%d_1x1' % d, 'ini_resnet%d_mix_5_d' % d,
                     'ini_resnet%d_mix_5_d_spa' % d, 'ini_resnet%d_mix_5_d_spa4' % d}
    assert set(ALL_NAMES) == expected


@pytest.mark.parametrize('name', ALL_NAMES)
def test_every_zoo_model_runs_and_hybridizes(name):
    net = init_net(cmpese.get_model(name, classes=7))
    x = random_input((2, 3, 32, 32))
    imperative = net(x).asnumpy()
    assert imperative.shape == (2, 7) and np.isfinite(imperative).all()
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(x).asnumpy(), imperative, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('depth,bottleneck,blocks,convs', [(110, False, 54, 2), (164, True, 54, 3)])
def test_preresnet_structure(depth, bottleneck, blocks, convs):
    net = get_preresnet(depth, unit='cmpe_se_1x1')
    found = _blocks(net, PreActBlock)
    assert len(found) == blocks and all(b._num_layers == convs for b in found)
    assert all(isinstance(b.unit, PairViewUnit) for b in found)
    widths = sorted({b.unit.channels for b in found})
    assert widths == ([64, 128, 256] if bottleneck else [16, 32, 64])
    # projections only where the shape changes: stage entries (16 -> 16 needs none)
    assert sum(b.downsample is not None for b in found) == (3 if bottleneck else 2)
    # weighted layers = stem + convs + FC
    assert 1 + blocks * convs + 1 == depth


def test_wrn_structure_and_dropout():
    net = get_wrn(28, 10, unit='se', drop_rate=0.3)
    found = _blocks(net, PreActBlock)
    assert len(found) == 12 and sorted({b.unit.channels for b in found}) == [160, 320, 640]
    assert all(b._drop_rate == 0.3 for b in found)
    # dropout is active in training only
    small = init_net(get_wrn(10, 1, drop_rate=0.5))
    x = random_input((2, 3, 32, 32))
    np.testing.assert_allclose(small(x).asnumpy(), small(x).asnumpy())
    with autograd.record():
        a, b = small(x), small(x)
    assert not np.allclose(a.asnumpy(), b.asnumpy())


def test_res_se_net_puts_se_on_bridges_only():
    net = get_resnet_cifar(44, bridge_unit='se')
    found = _blocks(net, BasicBlock)
    assert len(found) == 21
    bridged = [b for b in found if b.bridge is not None]
    assert len(bridged) == 2                      # stage2 and stage3 entries (16 -> 32 -> 64)
    assert all(isinstance(b.bridge_unit, SEUnit) for b in bridged)
    assert [b.bridge_unit.channels for b in bridged] == [32, 64]
    assert all(b.unit is None for b in found)
    se = _blocks(get_resnet_cifar(44, unit='se'), BasicBlock)
    assert all(isinstance(b.unit, SEUnit) and b.bridge_unit is None for b in se)
    assert nparams(net) - nparams(get_resnet_cifar(44)) == 2 * (32 * 32 + 64 * 64) // 16


def test_res_se_net_bridge_recalibrates_after_downsampling():
    """The identity reaching the addition is SE(BN(conv1x1(x))): zeroing the SE's second FC
    halves the bridge output (sigmoid(0) = 0.5) and nothing else."""
    block = BasicBlock(16, 32, stride=2, bridge_unit=resolve_unit('se', reduction=16))
    init_net(block)
    x = random_input((2, 16, 8, 8))
    bridge = block.bridge(x)
    block.bridge_unit.fc2.weight.set_data(mx.nd.zeros((32, 2)))
    expected = mx.nd.relu(block.body(x) + 0.5 * bridge)
    np.testing.assert_allclose(block(x).asnumpy(), expected.asnumpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('build', [
    # conv_init=None: the test's positive initializer, not the authors' random-sign one
    lambda u: get_preresnet(20, unit=u, conv_init=None),
    lambda u: get_preresnet(11, unit=u, bottleneck=True, conv_init=None),
    lambda u: get_wrn(10, 4, unit=u), lambda u: get_resnet_cifar(8, unit=u, bridge_unit='se')])
@pytest.mark.parametrize('unit', [None, 'se', 'cmpe_se_double_fc', 'cmpe_se_2x1', 'cmpe_se_1x1'])
def test_a_training_step_reaches_every_parameter(build, unit):
    """With all-positive weights and inputs no ReLU is dead for a whole batch, so a parameter
    without gradient would be one the graph does not connect to the loss."""
    net = build(unit)
    net.initialize(PositiveUniform())
    # training-mode BN cancels the scale of a one-input 1x1 filter: its gradient is ~0 by
    # design (see test_pair_view_1x1_filter_scale_is_absorbed_by_bn). Likewise the WRN stem
    # BN (the authors' and GluonCV's) feeds only the first block's BN: in training mode that BN
    # normalizes its scale and shift away, so they get (numerically) no gradient.
    skip = ('pairview_weight',) if unit == 'cmpe_se_1x1' else ()
    missing = unreached_parameters(net, skip=skip + ('stembn_gamma', 'stembn_beta'))
    assert not missing, 'no gradient reached %s' % missing


def test_model_level_errors_name_the_layer():
    with pytest.raises(ValueError, match=r'stage1 block1: .*16 channels are not divisible by '
                                         r'the reduction ratio t=32'):
        get_wrn(16, 1, unit='se', reduction=32)
    with pytest.raises(ValueError, match=r'stage2 block1 bridge: .*not divisible'):
        get_resnet_cifar(20, bridge_unit='se', reduction=3)
    with pytest.raises(ValueError, match=r'WRN cannot have depth 27: .*6n\+4'):
        get_wrn(27, 10)
    with pytest.raises(ValueError, match=r'bottleneck depths are 9n\+2'):
        get_preresnet(165, bottleneck=True)
    with pytest.raises(ValueError, match=r'depths are 6n\+2'):
        get_resnet_cifar(21)
    with pytest.raises(ValueError, match=r'width factor'):
        get_wrn(16, 0)


@pytest.mark.parametrize('unit', ['cmpe_se_1x1', 'cmpe_se_2x1', 'cmpe_se_double_fc',
                                  'ini_simple_1'])
def test_bridge_refuses_a_unit_reading_the_identity(unit):
    """A bridge unit is called on the bridge's output alone: a unit that models the identity
    flow is refused when the network is built (it used to build and then fail with a
    TypeError in its first forward pass), in one line naming the slot and the unit."""
    with pytest.raises(ValueError) as err:
        get_resnet_cifar(20, bridge_unit=unit)
    message = str(err.value)
    assert message.startswith("stage2 block1 bridge: unit '%s' models the identity flow"
                              % unit) and '\n' not in message
    # an InI unit of the input alone (joint=False, hinted on the bridge) works there
    net = init_net(get_resnet_cifar(8, bridge_unit='ini_mix_5_d'))
    assert not any(b.bridge_unit.joint for b in _blocks(net, BasicBlock) if b.bridge_unit)
    assert net(random_input((2, 3, 32, 32))).shape == (2, 10)


def test_reduction_ratio_reaches_every_unit():
    net = get_wrn(16, 8, unit='cmpe_se_1x1', reduction=8)
    units = [b.unit for b in _blocks(net, PreActBlock)]
    assert all(u.reduction == 8 and u.filters == u.channels // 8 for u in units)
    assert all(isinstance(b.unit, DoubleFCUnit)
               for b in _blocks(get_wrn(16, 8, unit='cmpe_se_double_fc'), PreActBlock))


def test_any_input_size_works():
    net = init_net(cmpese.get_model('cmpe_se_preresnet20_1x1'))
    net.hybridize()
    assert net(random_input((1, 3, 48, 40))).shape == (1, 10)
