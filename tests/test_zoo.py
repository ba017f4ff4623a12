"""Model zoo: names, GluonCV registration, pretrained loading, errors."""
import numpy as np
import pytest

import cmpese
from cmpese.models import PreActCIFARNet, ResNetCIFAR
from common import init_net, random_input


def test_gluoncv_builds_our_models_after_import():
    import gluoncv
    net = gluoncv.model_zoo.get_model('cmpe_se_wrn28_10_1x1', classes=100)
    assert isinstance(net, PreActCIFARNet)
    assert net.output._units == 100
    assert 'res_se_net110' in gluoncv.model_zoo.get_model_list()
    assert isinstance(gluoncv.model_zoo.get_model('res_se_net20'), ResNetCIFAR)
    # GluonCV's own models are untouched
    assert type(gluoncv.model_zoo.get_model('cifar_resnet20_v1')).__name__ == 'CIFARResNetV1'


def test_get_model_case_and_kwargs():
    net = cmpese.get_model('CMPE_SE_PreResNet20_1x1', classes=3, reduction=8)
    assert net.output._units == 3


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ValueError, match=r"unknown model 'cmpe_se_wrn28_10_1x2'\. Closest names: "
                                         r"cmpe_se_wrn28_10_1x1"):
        cmpese.get_model('cmpe_se_wrn28_10_1x2')
    with pytest.raises(ValueError, match=r'Closest names: .*res_se_net56'):
        cmpese.get_model('resse_net56')
    with pytest.raises(TypeError):
        cmpese.get_model(None)


def test_names_of_other_depths_and_widths_are_parsed():
    net = cmpese.get_model('cmpe_se_wrn16_4_2x1')
    assert sorted({u.channels for u in _units(net)}) == [64, 128, 256]
    assert len(_units(cmpese.get_model('se_preresnet56'))) == 27
    with pytest.raises(ValueError, match='6n\\+4'):
        cmpese.get_model('wrn17_4')


def _units(net):
    found = []
    net.apply(lambda b: found.append(b) if isinstance(b, cmpese.units.ExcitationUnit) else None)
    return found


def test_pretrained_loads_local_weights(tmp_path):
    net = init_net(cmpese.get_model('res_se_net20'))
    net.save_parameters(str(tmp_path / 'res_se_net20.params'))
    again = cmpese.get_model('res_se_net20', pretrained=True, root=str(tmp_path))
    x = random_input((2, 3, 32, 32))
    np.testing.assert_allclose(again(x).asnumpy(), net(x).asnumpy(), rtol=1e-6)


def test_pretrained_without_weights_says_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        cmpese.get_model('se_wrn16_8', pretrained=True, root=str(tmp_path))
    msg = str(err.value)
    assert 'No published weights exist' in msg
    assert 'python train_cifar.py --model se_wrn16_8 --export' in msg
    assert str(tmp_path / 'se_wrn16_8.params') in msg


def test_model_docstrings_cite_the_variant():
    import gluoncv
    entry = gluoncv.model_zoo.model_zoo._models['res_se_net44']
    assert 'bridge' in entry.__doc__
