"""cmpese.visualize: the units read from the symbol graph agree with the network computed
imperatively (forward hooks, in the test only), the inner-imaged maps hold the squeezed
identity and residual signals in the rows the unit puts them, Grad-CAM equals CAM for a
global-pooling head, and every command writes a readable PNG from real (tiny) training runs."""
import json
import os
import sys

import mxnet as mx
import numpy as np
import pytest

from model_checks import calibrate_bn, init_net, random_input
from datafiles import synthetic_images, write_cifar10

from cmpese import get_model
from cmpese.errors import run as run_cli
from cmpese.tools import visualize as vz
from cmpese.units import ExcitationUnit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _net(name):
    net = init_net(get_model(name))
    calibrate_bn(net)                 # realistic BN statistics (hybridizes the net)
    net.hybridize(active=False)       # imperative again, so that the hooks below fire
    return net


def _units(net):
    found = []
    net.apply(lambda b: found.append(b) if isinstance(b, ExcitationUnit) else None)
    return found


@pytest.mark.parametrize('name', ['se_preresnet20', 'cmpe_se_preresnet20_1x1',
                                  'ini_preresnet20_square_3', 'res_se_net20'])
def test_graph_excitations_equal_the_gate_outputs(name):
    net = _net(name)
    x = random_input((3, 3, 32, 32), seed=5)
    gates = []
    for unit in _units(net):
        unit.gate.register_forward_hook(lambda block, inp, out: gates.append(out.asnumpy())
                                        if isinstance(out, mx.nd.NDArray) else None)
    net(x)
    probe = vz.GraphProbe(net, (1, 3, 32, 32), model=name)
    assert len(probe.units) == len(gates) == len(_units(net))
    got = probe.excitations(x.asnumpy(), batch_size=2)
    for (label, value), expected in zip(got.items(), gates):
        assert value.shape == expected.shape
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)
    # most units' values vary (neither saturated nor constant): the comparison means something
    varied = [v.std() > 1e-3 and 0.01 < v.mean() < 0.99 for v in got.values()]
    assert sum(varied) >= len(varied) / 2.0
    if name == 'res_se_net20':
        assert [u.label for u in probe.units] == ['stage2 block1 bridge', 'stage3 block1 bridge']
    else:
        assert probe.units[0].label == 'stage1 block1' and probe.units[-1].label == \
            'stage3 block3'


def _squeezed_flows(net, x):
    """(residual, identity) spatial means of every unit's inputs, from pre-hooks."""
    flows = []
    for unit in _units(net):
        unit.register_forward_pre_hook(lambda block, inputs: flows.append(
            tuple(t.asnumpy().mean(axis=(2, 3)) for t in inputs))
            if isinstance(inputs[0], mx.nd.NDArray) else None)
    net(x)
    return flows


def test_pair_view_map_is_residual_over_identity():
    net = _net('cmpe_se_preresnet20_1x1')
    x = random_input((2, 3, 32, 32), seed=6)
    flows = _squeezed_flows(net, x)
    probe = vz.GraphProbe(net, (1, 3, 32, 32), model='cmpe_se_preresnet20_1x1')
    out = probe.run([u.signal for u in probe.units], x.asnumpy())
    for unit, (residual, identity) in zip(probe.units, flows):
        assert unit.kind == 'map' and unit.signal_shape == (1, 2, unit.channels)
        assert probe.roles(unit) == ['residual', 'identity']
        m = out[unit.signal][:, 0]
        np.testing.assert_allclose(m[:, 0], residual, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(m[:, 1], identity, rtol=1e-4, atol=1e-5)


def test_ini_map_is_the_alternate_fold():
    """T_alt (InI eq. 24): identity row, residual row, ... each of 16 signals (n = 2C/16)."""
    net = _net('ini_preresnet20_square_3')
    x = random_input((2, 3, 32, 32), seed=7)
    flows = _squeezed_flows(net, x)
    probe = vz.GraphProbe(net, (1, 3, 32, 32), model='ini_preresnet20_square_3')
    out = probe.run([u.signal for u in probe.units], x.asnumpy())
    for unit, (residual, identity) in zip(probe.units, flows):
        rows = 2 * unit.channels // 16
        assert unit.signal_shape == (1, rows, 16)
        roles = probe.roles(unit)
        assert roles == ['identity', 'residual'] * (rows // 2)
        m = out[unit.signal][:, 0]
        expected = np.empty_like(m)
        expected[:, 0::2] = identity.reshape(len(x), -1, 16)
        expected[:, 1::2] = residual.reshape(len(x), -1, 16)
        np.testing.assert_allclose(m, expected, rtol=1e-4, atol=1e-5)


def test_row_roles_of_every_layout():
    assert vz.row_roles('cmpe_se_2x1', 'wrn', 2) == ['residual', 'identity']
    assert vz.row_roles('ini_simple_3', 'preresnet', 2) == ['residual', 'identity']
    assert vz.row_roles('ini_mix_5_d_spa4', 'resnet_imagenet', 4) == ['identity', 'residual'] * 2
    assert vz.row_roles('ini_square_1_nojoint', 'wrn', 3) == ['residual'] * 3
    assert vz.row_roles('ini_square_3', 'allcnn', 8) == ['residual'] * 8
    assert vz.row_roles('se', 'wrn', 1) is None and vz.row_roles(None, 'wrn', 2) is None


def test_grad_cam_of_a_pooling_head_is_cam():
    """Head ReLU -> global average pool -> FC: dy_c/dA_k = W_ck / (h w) everywhere, so
    Grad-CAM = ReLU(sum_k W_ck A_k) / (h w), the class activation map."""
    net = _net('se_preresnet20')
    x = random_input((4, 3, 32, 32), seed=8)
    probe = vz.GraphProbe(net, (1, 3, 32, 32), model='se_preresnet20')
    layer = probe.cam_layer()
    a = probe.run([layer], x.asnumpy())[layer]
    assert a.shape == (4, 64, 8, 8)
    maps, pred, used, scores = vz.grad_cam(probe, x.asnumpy(), classes=[0, 3, 5, 9],
                                           batch_size=3)
    w = net.output.weight.data().asnumpy()
    expected = np.maximum(np.einsum('nk,nkhw->nhw', w[[0, 3, 5, 9]], a), 0) / 64.0
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(scores, net(x).asnumpy(), rtol=1e-4, atol=1e-5)
    assert list(used) == [0, 3, 5, 9] and list(pred) == list(scores.argmax(axis=1))
    assert maps.max() > 0


def test_cut_graph_tail_of_head_is_the_network():
    net = _net('ini_preresnet20_square_3')
    probe = vz.GraphProbe(net, (1, 3, 32, 32))
    layer = probe.cam_layer()
    tail = mx.gluon.SymbolBlock(vz.cut_graph(probe.symbol, layer), [mx.sym.var('cam_feature')],
                                params=probe.params)
    x = random_input((2, 3, 32, 32), seed=9)
    feat = probe.run([layer], x.asnumpy())[layer]
    np.testing.assert_allclose(tail(mx.nd.array(feat)).asnumpy(), net(x).asnumpy(), rtol=1e-4,
                               atol=1e-5)


def test_class_means_and_stage_blocks_by_hand():
    values = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    classes, means, overall = vz.class_means(values, [2, 0, 2, -1])
    assert classes == [0, 2]
    np.testing.assert_allclose(means, [[1.0, 0.0], [0.25, 0.75]])
    np.testing.assert_allclose(overall, [0.625, 0.625])
    probe = vz.GraphProbe(get_model('se_preresnet20'), (1, 3, 32, 32))
    assert [u.label for u in vz.stage_last_units(probe.units)] == [
        'stage1 block3', 'stage2 block3', 'stage3 block3']


# ------------------------------------------------------------- command lines on real runs

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Three real one-epoch (two-step) train_cifar.py runs (SE, CMPE-SE 1x1, InI square-3) on a tiny
    CIFAR-10 in the official binary format; the CMPE one also exported."""
    root = tmp_path_factory.mktemp('viz')
    write_cifar10(root / 'data', synthetic_images(64, 10, seed=1), synthetic_images(40, 10,
                                                                                    seed=2))
    sys.path.insert(0, ROOT)
    try:
        import train_cifar
    finally:
        sys.path.pop(0)
    out = {}
    for name in ('se_preresnet20', 'cmpe_se_preresnet20_1x1', 'ini_preresnet20_square_3'):
        save = root / name
        assert train_cifar.main(['--model', name, '--dataset', 'cifar10', '--data-dir',
                                 str(root / 'data'), '--epochs', '1', '--batch-size', '32',
                                 '--no-progress', '--save-dir', str(save)] +
                                (['--export'] if name.startswith('cmpe') else [])) == 0
        out[name] = str(save)
    out['data'] = str(root / 'data')
    return out


def _cli(argv):
    from cmpese.visualize import main
    return run_cli(main, argv, prog='visualize')


def _check(path, size):
    width, height, colours, std = vz.check_png(path)
    assert abs(width - size[0]) <= 1 and abs(height - size[1]) <= 1, (width, height)  # rounding
    assert colours > 50 and std > 10, 'the picture looks blank'


def test_exported_symbol_reads_the_same_units(runs):
    run = runs['cmpe_se_preresnet20_1x1']
    symbol = os.path.join(run, 'export', 'cmpe_se_preresnet20_1x1-symbol.json')
    net, meta = vz.load_model(symbol=symbol)
    assert meta['model'] == 'cmpe_se_preresnet20_1x1'      # named after the file
    exported = vz.GraphProbe(net, (1, 3, 32, 32), model=meta['model'])
    zoo_net, _ = vz.load_model(run_dir=run)      # best.params: the one epoch, as exported
    zoo = vz.GraphProbe(zoo_net, (1, 3, 32, 32), model='cmpe_se_preresnet20_1x1')
    assert [u.label for u in exported.units] == [u.label for u in zoo.units]
    images = vz.load_images(data='cifar10:test', count=8, data_dir=runs['data'])
    a, b = exported.excitations(images.data), zoo.excitations(images.data)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_every_command_writes_a_readable_png(runs, tmp_path, capsys):
    cmpe, se, ini = (runs[k] for k in ('cmpe_se_preresnet20_1x1', 'se_preresnet20',
                                       'ini_preresnet20_square_3'))
    data = ['--data', 'cifar10', '--data-dir', runs['data']]
    out = str(tmp_path / '%s.png')
    assert _cli(['excitations', '--run', ini, '--image-index', '3', '--out', out % 'exc']
                + data) == 0
    _check(out % 'exc', (933, 372))
    assert _cli(['maps', '--run', ini, '--units', '0,stage2 block1,8', '--width', '12', '--out',
                 out % 'maps'] + data) == 0
    _check(out % 'maps', (1100, 750))
    assert _cli(['classes', '--run', cmpe, '--count', '40', '--out', out % 'cls'] + data) == 0
    _check(out % 'cls', (1200, 650))
    assert _cli(['gradcam', '--run', se, '--count', '8', '--target', 'label', '--out',
                 out % 'cam'] + data) == 0
    _check(out % 'cam', (1200, 480))
    assert _cli(['curves', cmpe, se, ini, '--out', out % 'curves']) == 0
    _check(out % 'curves', (1100, 400))
    assert _cli(['designs', '--se', se, '--cmpe', cmpe, '--ini', ini, '--out',
                 out % 'designs'] + data) == 0
    _check(out % 'designs', (1380, 460))
    assert _cli(['units', '--run', ini]) == 0
    text = capsys.readouterr().out
    assert 'rows: identity residual identity residual' in text and '9 units' in text


def test_gradcam_on_an_image_folder(runs, tmp_path):
    """A folder of class sub-folders of PNG files, normalized as the run's dataset."""
    from PIL import Image
    images, labels = synthetic_images(6, 3, seed=4, size=40)
    for i, (img, c) in enumerate(zip(images, labels)):
        folder = tmp_path / 'imgs' / ('class%d' % c)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(str(folder / ('%d.png' % i)))
    loaded = vz.load_images(folder=str(tmp_path / 'imgs'), input_size=32, norm='cifar10',
                            data_dir=runs['data'])
    assert loaded.data.shape == (6, 3, 32, 32) and loaded.class_names == ['class0', 'class1',
                                                                          'class2']
    assert sorted(loaded.labels) == [0, 0, 1, 1, 2, 2]
    out = str(tmp_path / 'cam.png')
    assert _cli(['gradcam', '--run', runs['se_preresnet20'], '--images',
                 str(tmp_path / 'imgs'), '--data-dir', runs['data'], '--out', out]) == 0
    _check(out, (1200, 260))


def test_bad_input_is_one_line_exit_2(runs, tmp_path, capsys):
    cmpe = runs['cmpe_se_preresnet20_1x1']
    data = ['--data', 'cifar10', '--data-dir', runs['data']]
    assert _cli(['maps', '--run', cmpe, '--units', 'stage9 block1', '--out',
                 str(tmp_path / 'x.png')] + data) == 2
    err = capsys.readouterr().err
    assert 'no unit' in err and 'stage3 block3' in err and 'Traceback' not in err
    assert _cli(['excitations', '--run', str(tmp_path), '--out', str(tmp_path / 'x.png')]
                + data) == 2
    assert 'no config.json' in capsys.readouterr().err
    assert _cli(['maps', '--run', runs['se_preresnet20'], '--out', str(tmp_path / 'x.png')]
                + data) == 2
    assert 'no inner-imaged maps' in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / 'x.png'))
    with open(os.path.join(cmpe, 'config.json')) as f:
        assert json.load(f)['model'] == 'cmpe_se_preresnet20_1x1'


def test_committed_pictures_are_readable():
    """docs/img: the PNGs docs/visualize.md regenerates, at the sizes their plots make."""
    sizes = {'unit_designs.png': (1380, 460), 'excitations.png': (933, 372),
             'inner_maps_cmpe.png': (1100, 750), 'inner_maps_ini.png': (1100, 750),
             'class_excitations.png': (1200, 650), 'gradcam.png': (1200, 480),
             'curves.png': (1100, 400)}
    folder = os.path.join(ROOT, 'docs', 'img')
    assert set(sizes) <= set(os.listdir(folder))
    for name, size in sizes.items():
        _check(os.path.join(folder, name), size)


def test_out_under_a_file_is_one_line(tmp_path, capsys):
    """issue 20: --out under a path that is a file is one line, exit 2, before any work."""
    (tmp_path / 'afile').write_text('x')
    assert _cli(['curves', str(tmp_path), '--out', str(tmp_path / 'afile' / 'c.png')]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err
    assert '--out' in err and 'afile' in err and 'is a file' in err


def test_images_use_the_model_data_config(tmp_path):
    """issue 19: without --mean/--std/--norm the run's (or export's) data config normalizes."""
    import argparse
    from cmpese.cli.visualize import _data_config
    from cmpese.data.config import dataset_config, save_data_config
    cfg = dataset_config('digits', [70.0] * 3, [80.0] * 3)
    save_data_config(str(tmp_path / 'data_config.json'), cfg)
    assert _data_config(argparse.Namespace(run_dir=str(tmp_path))) == cfg
    save_data_config(str(tmp_path / 'm-data.json'), cfg)
    assert _data_config(argparse.Namespace(symbol=str(tmp_path / 'm-symbol.json'))) == cfg
    assert _data_config(argparse.Namespace(run_dir=str(tmp_path / 'none'))) is None
