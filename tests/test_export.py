"""Hybridize/export round trips: SymbolBlock in a fresh process, mx.mod.Module, ONNX."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cmpese
from cmpese.tools.export import export_model, export_onnx, load_exported
from common import calibrate_bn, init_net, random_input

# one model per family x unit; every zoo name is hybridized in test_models.py
ROUND_TRIP = ['preresnet20', 'se_preresnet20', 'cmpe_se_preresnet20_double_fc',
              'cmpe_se_preresnet20_2x1', 'cmpe_se_preresnet20_1x1', 'cmpe_se_preresnet164_1x1',
              'se_wrn16_8', 'cmpe_se_wrn16_8_2x1', 'resnet20_cifar', 'se_resnet20_cifar',
              'res_se_net20', 'ini_wrn16_2_mix_5_d', 'ini_preresnet56_square_3_spa4',
              'ini_preresnet56_simple_3', 'ini_allcnn_square_3']

FRESH_PROCESS = r'''
import json, sys
import mxnet as mx, numpy as np
spec = json.load(open(sys.argv[1]))
x = mx.nd.array(np.load(spec['input']))
for prefix in spec['prefixes']:
    net = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'], prefix + '-0000.params')
    np.save(prefix + '-fresh.npy', net(x).asnumpy())
    sym, arg, aux = mx.model.load_checkpoint(prefix, 0)
    mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[('data', x.shape)], for_training=False)
    mod.set_params(arg, aux)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    np.save(prefix + '-module.npy', mod.get_outputs()[0].asnumpy())
'''


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """Export every ROUND_TRIP model once; return {name: (prefix, in-process output)}."""
    out = tmp_path_factory.mktemp('export')
    x = random_input((3, 3, 32, 32), seed=5)
    np.save(out / 'input.npy', x.asnumpy())
    results = {}
    for name in ROUND_TRIP:
        net = calibrate_bn(init_net(cmpese.get_model(name, classes=10)))
        prefix = str(out / name)
        sym, params = export_model(net, prefix, (3, 3, 32, 32))
        assert os.path.isfile(sym) and os.path.isfile(params)
        results[name] = (prefix, net(x).asnumpy())
    spec = out / 'spec.json'
    spec.write_text(json.dumps({'input': str(out / 'input.npy'),
                                'prefixes': [p for p, _ in results.values()]}))
    script = out / 'reload.py'
    script.write_text(FRESH_PROCESS)
    subprocess.run([sys.executable, str(script), str(spec)], check=True, timeout=600)
    return x, results


@pytest.mark.parametrize('name', ROUND_TRIP)
def test_export_reloads_in_a_fresh_process(exported, name):
    _, results = exported
    prefix, reference = results[name]
    np.testing.assert_allclose(np.load(prefix + '-fresh.npy'), reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', ROUND_TRIP)
def test_export_binds_in_module_for_inference(exported, name):
    _, results = exported
    prefix, reference = results[name]
    # Module's executor applies the oneDNN subgraph fusions (conv+BN...), so sums run in
    # another order
    np.testing.assert_allclose(np.load(prefix + '-module.npy'), reference, rtol=1e-4,
                               atol=1e-4 * np.abs(reference).max())


def test_symbol_json_is_pure_graph(exported):
    """The exported JSON holds MXNet operators only (no Python callbacks) and names its input
    'data'."""
    _, results = exported
    graph = json.load(open(results['cmpe_se_preresnet20_1x1'][0] + '-symbol.json'))
    ops = {n['op'] for n in graph['nodes']}
    assert 'Custom' not in ops and '_CustomFunction' not in ops
    assert graph['nodes'][0]['name'] == 'data'
    assert {'Convolution', 'BatchNorm', 'FullyConnected', 'dot', 'elemwise_mul', 'ones_like',
            'BlockGrad'} <= ops


def test_load_exported_in_process(exported):
    x, results = exported
    prefix, reference = results['cmpe_se_wrn16_8_2x1']
    np.testing.assert_allclose(load_exported(prefix)(x).asnumpy(), reference, rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(FileNotFoundError, match='export_model'):
        load_exported(prefix + '-missing')


@pytest.mark.parametrize('name', ['cmpe_se_preresnet20_1x1', 'cmpe_se_preresnet20_2x1',
                                  'cmpe_se_preresnet20_double_fc', 'res_se_net20',
                                  'ini_wrn16_2_mix_5_d', 'ini_preresnet56_square_3_spa4',
                                  'ini_preresnet56_simple_3', 'ini_allcnn_square_3'])
def test_onnx_export_runs_in_onnxruntime(exported, name, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    x, results = exported
    prefix, reference = results[name]
    path = export_onnx(prefix + '-symbol.json', prefix + '-0000.params',
                       str(tmp_path / (name + '.onnx')), input_shape=(3, 3, 32, 32))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    feed = x.asnumpy()
    out = session.run(None, {session.get_inputs()[0].name: feed})[0]
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)
    # the batch axis is dynamic
    out1 = session.run(None, {session.get_inputs()[0].name: feed[:1]})[0]
    np.testing.assert_allclose(out1, reference[:1], rtol=1e-4, atol=1e-4)


def test_export_command_line(tmp_path):
    net = init_net(cmpese.get_model('se_preresnet20', classes=5))
    net.save_parameters(str(tmp_path / 'trained.params'))
    prefix = str(tmp_path / 'out' / 'se_preresnet20')
    subprocess.run([sys.executable, '-m', 'cmpese.tools.export', '--model', 'se_preresnet20',
                    '--classes', '5', '--params', str(tmp_path / 'trained.params'),
                    '--prefix', prefix], check=True, timeout=300)
    x = random_input((2, 3, 32, 32))
    np.testing.assert_allclose(load_exported(prefix)(x).asnumpy(), net(x).asnumpy(),
                               rtol=1e-5, atol=1e-5)
