"""Model zoo: names, GluonCV registration, pretrained loading, errors."""
import numpy as np
import pytest

import cmpese
from cmpese.models import PreActCIFARNet, ResNetCIFAR
from model_checks import init_net, random_input


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


def test_pretrained_loads_an_exported_params_file(tmp_path):
    from cmpese.tools.export import export_model
    net = init_net(cmpese.get_model('cmpe_se_preresnet20_1x1'))
    export_model(net, str(tmp_path / 'exp'))
    (tmp_path / 'exp-0000.params').rename(tmp_path / 'cmpe_se_preresnet20_1x1.params')
    again = cmpese.get_model('cmpe_se_preresnet20_1x1', pretrained=True, root=str(tmp_path))
    x = random_input((2, 3, 32, 32))
    np.testing.assert_allclose(again(x).asnumpy(), net(x).asnumpy(), rtol=1e-5, atol=1e-6)


def test_pretrained_garbage_wrong_model_or_classes_name_the_file(tmp_path):
    from cmpese.model_zoo import PretrainedError
    path = tmp_path / 'se_preresnet20.params'
    path.write_bytes(b'not a parameter file' * 50)
    with pytest.raises(PretrainedError, match=r'se_preresnet20\.params is not an MXNet '
                                              r'parameter file'):
        cmpese.get_model('se_preresnet20', pretrained=True, root=str(tmp_path))
    init_net(cmpese.get_model('preresnet20')).save_parameters(str(path))
    with pytest.raises(PretrainedError, match=r'se_preresnet20\.params does not fit this '
                                              r'model: \d+ parameters missing \(e\.g\. .*unit'):
        cmpese.get_model('se_preresnet20', pretrained=True, root=str(tmp_path))
    init_net(cmpese.get_model('se_preresnet20', classes=100)).save_parameters(str(path))
    with pytest.raises(PretrainedError, match=r'trained for 100 classes and this model has 10: '
                                              r'pass classes=100'):
        cmpese.get_model('se_preresnet20', pretrained=True, root=str(tmp_path))
    assert cmpese.get_model('se_preresnet20', classes=100, pretrained=True,
                            root=str(tmp_path)).output.weight.shape == (100, 64)


def test_model_info_is_the_registry_metadata():
    from cmpese.model_zoo import get_model_info
    info = get_model_info('cmpe_se_wrn28_10_1x1')
    assert (info.family, info.unit, info.input_size, info.classes) == \
        ('wrn', 'cmpe_se_1x1', 32, 10)
    assert info.papers == ('cmpe', 'wrn') and 'CMPE Table 2' in info.tables
    assert info.presets['cifar10'] == 'cmpe_wrn' and info.presets['digits'] == 'digits'
    ini = get_model_info('ini_resnet50_mix_5_d_spa4')
    assert (ini.family, ini.input_size, ini.classes, ini.presets) == \
        ('resnet_imagenet', 224, 1000, {'imagenet': 'ini_imagenet'})
    assert get_model_info('res_se_net44').papers[0] == 'res_se_net'
    assert get_model_info('res_se_net44').presets['cifar10'] == 'res_se_net'
    # parsed names (other depths, widths, Table I sets) get the same metadata
    parsed = get_model_info('ini_wrn16_4_mix_3')
    assert (parsed.family, parsed.unit, parsed.presets['cifar10']) == ('wrn', 'ini_mix_3',
                                                                        'ini_wrn')
    assert get_model_info('se_preresnet56').presets['cifar100'] == 'cmpe_preresnet'
    assert get_model_info('ini_preresnet164_square_3').presets['cifar10'] == 'ini_resnet'
    every = [get_model_info(n) for n in cmpese.get_model_list()]
    assert all(i.family and i.input_size in (32, 224) and i.presets for i in every)
    with pytest.raises(ValueError, match='unknown model'):
        get_model_info('se_wide_resnet')


def test_model_docstrings_cite_the_variant():
    import gluoncv
    entry = gluoncv.model_zoo.model_zoo._models['res_se_net44']
    assert 'bridge' in entry.__doc__


@pytest.mark.parametrize('depth', [50, 101])
def test_timm_compatible_se_resnet_is_one_zoo_name(depth, tmp_path):
    """se_resnet<depth>_timm: the SE FCs have biases (timm's SEModule), everything else is
    se_resnet<depth>; a timm-layout file written from it loads back into a fresh one by
    load_pretrained and gives the same outputs. se_resnet<depth> keeps SENet eq. 5's count."""
    import mxnet as mx
    from cmpese.weights import load_pretrained, save_timm
    name = 'se_resnet%d_timm' % depth
    src = cmpese.get_model(name)
    units = _units(src)
    assert len(units) == {50: 16, 101: 33}[depth]
    assert all(u.fc1.bias is not None and u.fc2.bias is not None for u in units)
    assert all(u.fc1.bias is None and u.fc2.bias is None
               for u in _units(cmpese.get_model('se_resnet%d' % depth)))
    # the options a user adds keep the biases; an explicit use_bias wins
    assert _units(cmpese.get_model(name, unit_kwargs={'squeeze': 'max'}))[0].fc1.bias is not None
    assert _units(cmpese.get_model(name, unit_kwargs={'use_bias': False}))[0].fc1.bias is None
    src.initialize(mx.init.Xavier())
    rng = np.random.RandomState(depth)
    for key, p in src._collect_params_with_prefix().items():
        if key.endswith('bias'):     # biases away from their initial zeros
            p.set_data(mx.nd.array(rng.uniform(-0.2, 0.2, p.shape)))
    path = str(tmp_path / ('seresnet%d.safetensors' % depth))
    save_timm(src, path)
    from safetensors.numpy import load_file
    state = load_file(path)
    assert state['layer1.0.se.fc1.bias'].shape == (16,)
    assert state['layer4.2.se.fc2.bias'].shape == (2048,)
    dst = cmpese.get_model(name)
    report = load_pretrained(dst, path)
    assert report.source == 'timm' and not report.new
    assert len(report.loaded) == len(dst.collect_params().keys())
    np.testing.assert_array_equal(_units(dst)[-1].fc2.bias.data().asnumpy(),
                                  state['layer4.2.se.fc2.bias'])
    x = random_input((1, 3, 64, 64))
    np.testing.assert_allclose(dst(x).asnumpy(), src(x).asnumpy(), rtol=1e-5, atol=1e-6)
    assert cmpese.model_zoo.get_model_info(name).unit == 'se'
