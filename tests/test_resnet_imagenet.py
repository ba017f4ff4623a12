"""ImageNet ResNets v1/v2 (SENet, CMPE Table 4, InI Table V): structure, units,
hybridization, export, gradients, parameter counts against the papers, errors.

They run at 32-64 pixels (global pooling makes any size work); their parameters are counted
at full size, which needs no forward pass since every layer knows its inputs.
"""
import pytest

from cmpese.models import PostActBlock, PreActBlock, get_resnet_imagenet
from cmpese.tools.complexity import count_params
from model_checks import (UNITS, agrees, blocks_of, cases, check_export_round_trip,
                    check_forward_and_hybridize, check_training_step, init_net, random_input,
                    unit_params)

FAMILIES = [
    ('resnet50_v1', lambda u, c: get_resnet_imagenet(50, u, classes=c), 32, UNITS),
    ('resnet50_v2', lambda u, c: get_resnet_imagenet(50, u, version=2, classes=c), 32, UNITS),
]

EXPORT_CASES = [
    ('resnet50_v1_se', lambda: get_resnet_imagenet(50, 'se'), 64),
    ('resnet50_v2_double_fc', lambda: get_resnet_imagenet(50, 'cmpe_se_double_fc', version=2),
     64),
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


@pytest.mark.parametrize('depth,unit,paper', [(50, None, 25.6), (101, None, 44.6),
                                              (50, 'se', 28.1), (101, 'se', 49.4)])
def test_imagenet_resnet_counts_match_ini_table_v(depth, unit, paper):
    """InI Table V (He et al.; SENet's SE-ResNets, t = 16): 25,557,032 / 44,549,160 /
    28,071,976 / 49,292,328."""
    ours = count_params(get_resnet_imagenet(depth, unit))
    assert agrees(ours, paper), (depth, unit, ours, paper)


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
    assert extra == sum(n * unit_params(unit, c, inner=c // 4)
                        for n, c in zip([3, 4, 6, 3], [256, 512, 1024, 2048]))


@pytest.mark.parametrize('version,block_cls', [(1, PostActBlock), (2, PreActBlock)])
def test_imagenet_resnet_structure(version, block_cls):
    net = get_resnet_imagenet(101, 'cmpe_se_1x1', version=version)
    blocks = blocks_of(net, block_cls)
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
    assert (len(blocks_of(net, PostActBlock)) == 0) == (version == 2)


def test_imagenet_basic_depths():
    net = init_net(get_resnet_imagenet(18, 'se', version=2, classes=5))
    blocks = blocks_of(net, PreActBlock)
    assert len(blocks) == 8 and all(b._num_layers == 2 for b in blocks)
    assert net(random_input((1, 3, 40, 48))).shape == (1, 5)
    assert len(blocks_of(get_resnet_imagenet(34), PostActBlock)) == 16


def test_errors_name_the_layer_or_the_rule():
    with pytest.raises(ValueError, match=r'ImageNet ResNet cannot have depth 49: depths are '
                                         r'18, 34, 50, 101, 152'):
        get_resnet_imagenet(49)
    with pytest.raises(ValueError, match=r'version must be 1 .* or 2'):
        get_resnet_imagenet(50, version=3)
    with pytest.raises(ValueError, match=r'stage1 block1: .*256 channels are not divisible '
                                         r'by the reduction ratio t=3'):
        get_resnet_imagenet(50, 'se', reduction=3)
