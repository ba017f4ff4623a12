"""All-CNN-C (InI Table II): structure, units, hybridization, export, gradients,
parameter counts against the paper, errors.
"""
import pytest
from mxnet import gluon

from cmpese.models import AllCNNBlock, get_allcnn
from cmpese.tools.complexity import count_params
from model_checks import (blocks_of, cases, check_export_round_trip, check_forward_and_hybridize,
                    check_training_step, init_net, random_input, unit_params)

FAMILIES = [('allcnn', lambda u, c: get_allcnn(u, classes=c), 32, [None, 'se'])]

EXPORT_CASES = [('allcnn_se', lambda: get_allcnn('se'), 32)]

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


def test_allcnn_structure():
    net = get_allcnn('se', classes=100)
    layers = blocks_of(net.features, AllCNNBlock)
    assert len(layers) == 8
    assert [b.unit.channels for b in layers] == [96] * 3 + [192] * 5
    assert [b.conv._kwargs['stride'] for b in layers].count((2, 2)) == 2
    classifier = blocks_of(net.output, AllCNNBlock)
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


def test_errors_name_the_layer_or_the_rule():
    with pytest.raises(ValueError, match=r'conv1: unit .cmpe_se_1x1. models the identity flow'):
        get_allcnn('cmpe_se_1x1')
    with pytest.raises(ValueError, match=r'conv1: .*96 channels are not divisible'):
        get_allcnn('se', reduction=64)
