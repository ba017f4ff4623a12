"""The predictor (cmpese.tools.deploy): both runtimes give the Gluon model's outputs on every
family and unit (the oneDNN subgraph backend included, where optimize_for used to fail), the
runtime choice, int8 quantization, errors, and the command line."""
import json
import os
import subprocess
import sys
import warnings

import mxnet as mx
import numpy as np
import pytest

import cmpese
from cmpese.errors import UserError
from cmpese.tools.deploy import Predictor, available_runtimes
from cmpese.tools.export import export_model, export_onnx
from model_checks import calibrate_bn, init_net, random_input
from test_export import perturb_bn

pytest.importorskip('onnxruntime')

MODELS = ['preresnet20', 'se_preresnet20', 'cmpe_se_preresnet20_1x1', 'cmpe_se_preresnet20_2x1',
          'cmpe_se_preresnet164_1x1', 'se_wrn16_2', 'ini_wrn16_2_mix_5_d',
          'ini_preresnet20_square_3_spa4', 'res_se_net20', 'ini_allcnn_square_3']


@pytest.fixture(scope='module')
def deployed(tmp_path_factory):
    """{name: (prefix, float32 output, float64 output)}: calibrated nets with trained-looking
    BNs, exported with ONNX files beside them."""
    out = tmp_path_factory.mktemp('deploy')
    x = random_input((3, 3, 32, 32), seed=11)
    results = {}
    for name in MODELS:
        net = perturb_bn(calibrate_bn(init_net(cmpese.get_model(name, classes=10))), seed=4)
        prefix = str(out / name)
        sym, params = export_model(net, prefix)
        export_onnx(sym, params, prefix + '.onnx')
        reference = net(x).asnumpy()
        net.cast('float64')
        net.hybridize(static_alloc=True, static_shape=True)
        results[name] = (prefix, reference, net(x.astype('float64')).asnumpy())
    return x.asnumpy(), results


def relative_error(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize('runtime', ['onnxruntime', 'mxnet'])
@pytest.mark.parametrize('name', MODELS)
def test_predictor_equals_the_gluon_model(deployed, name, runtime):
    """Within a few times Gluon's own float32 rounding error (against float64): a deep net
    with trained-looking BNs (ResNet-164, logits ~300) is that badly conditioned, and a
    runtime that sums in another order lands elsewhere in it."""
    x, results = deployed
    prefix, reference, exact = results[name]
    predictor = Predictor(prefix, runtime)
    assert predictor.runtime == runtime
    bound = max(3 * relative_error(reference, exact), 2e-5)
    assert relative_error(predictor(x), exact) <= bound
    assert relative_error(predictor(x[:1]), exact[:1]) <= bound     # another batch size
    assert relative_error(np.concatenate([predictor.logits(x[i:i + 2]) for i in range(0, len(x), 2)]), exact) <= bound


def _fused_ops(predictor):
    return {n['op'] for n in json.loads(predictor._net._cached_graph[1].tojson())['nodes']}


def test_mxnet_runtime_runs_the_onednn_fusions(deployed):
    """The cached graph holds oneDNN's fused convolutions (conv + BN + ReLU, conv + sum) and
    fully connected layers, not the plain operators."""
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        pytest.skip('MXNet built without oneDNN')
    x, results = deployed
    predictor = Predictor(results['se_preresnet20'][0], 'mxnet')
    predictor(x)
    ops = _fused_ops(predictor)
    assert {'_sg_mkldnn_conv', '_sg_mkldnn_fully_connected'} <= ops
    assert 'Convolution' not in ops and 'FullyConnected' not in ops


def test_optimize_for_needs_skip_infer_on_preact_nets_with_units(deployed):
    """Why the MXNet runtime passes skip_infer=True (docs/deploy.md): MXNet 1.9.1's
    optimize_for matches parameter shapes to the partitioned graph's inputs by position,
    and the conv + BN + ReLU fusion reorders those inputs in a pre-act block with a unit."""
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        pytest.skip('MXNet built without oneDNN')
    x, results = deployed
    prefix, reference, _ = results['se_preresnet20']
    sym, args, aux = mx.model.load_checkpoint(prefix, 0)
    data = mx.nd.array(x)
    with pytest.raises(mx.base.MXNetError, match='Shape inconsistent'):
        sym.optimize_for('MKLDNN', dict(args, data=data), aux, ctx=mx.cpu())
    fused = sym.optimize_for('MKLDNN', dict(args, data=data), aux, ctx=mx.cpu(),
                             skip_infer=True)
    assert sym.list_inputs() != fused.list_inputs()           # the reordering
    assert sorted(sym.list_inputs()) == sorted(fused.list_inputs())
    ex = fused.bind(mx.cpu(), dict(args, data=data), aux_states=aux)
    np.testing.assert_allclose(ex.forward()[0].asnumpy(), reference, rtol=1e-4,
                               atol=1e-4 * np.abs(reference).max())


def test_auto_runtime_and_onnx_only_models(deployed, tmp_path):
    x, results = deployed
    prefix, reference, _ = results['cmpe_se_preresnet20_1x1']
    assert available_runtimes() == ['onnxruntime', 'mxnet']
    auto = Predictor(prefix)
    assert auto.runtime == 'onnxruntime' and auto.onnx_file == prefix + '.onnx'
    tol = dict(rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    np.testing.assert_allclose(Predictor(prefix + '.onnx')(x), reference, **tol)
    # only the symbol exported: the ONNX model is converted in a temporary directory
    sym_only = str(tmp_path / 'm')
    for suffix in ('-symbol.json', '-0000.params'):
        with open(prefix + suffix, 'rb') as src, open(sym_only + suffix, 'wb') as dst:
            dst.write(src.read())
    converted = Predictor(sym_only)
    assert converted.runtime == 'onnxruntime' and not converted.onnx_file.startswith(
        str(tmp_path))
    np.testing.assert_allclose(converted(x), reference, **tol)
    tmp = os.path.dirname(converted.onnx_file)
    converted.close()
    assert not os.path.exists(tmp)
    assert sorted(os.listdir(tmp_path)) == ['m-0000.params', 'm-symbol.json']


def test_predictor_errors(deployed, tmp_path):
    _, results = deployed
    prefix = results['se_preresnet20'][0]
    with pytest.raises(UserError, match='export the model first'):
        Predictor(str(tmp_path / 'nothing'))
    with pytest.raises(UserError, match='no such ONNX file'):
        Predictor(str(tmp_path / 'nothing.onnx'))
    with pytest.raises(UserError, match='needs the exported symbol'):
        Predictor(prefix + '.onnx', 'mxnet')
    with pytest.raises(UserError, match='runtime must be'):
        Predictor(prefix, 'tensorrt')


@pytest.mark.parametrize('runtime', ['onnxruntime', 'mxnet'])
def test_int8_predictor_is_quantized_and_close(deployed, runtime, tmp_path):
    """Post-training int8 quantization, calibrated on 32 images: the graph is quantized, and
    on other images the logits stay close to float32 (the accuracy on real data is measured
    in benchmarks/bench_int8.py)."""
    x, results = deployed
    # folded, as deployed (the collapsed FC layers once tripped onnxruntime's quantizer)
    net = calibrate_bn(init_net(cmpese.get_model('cmpe_se_preresnet20_1x1', classes=10)))
    prefix = str(tmp_path / 'folded')
    sym, params = export_model(net, prefix, fold=True)
    export_onnx(sym, params, prefix + '.onnx')
    fp32 = Predictor(prefix, runtime)
    calibration = random_input((32, 3, 32, 32), seed=21).asnumpy()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        int8 = fp32.quantize(calibration, out=str(tmp_path / ('int8.onnx' if runtime ==
                                                              'onnxruntime' else 'int8')))
    assert int8.runtime == runtime
    if runtime == 'onnxruntime':
        import onnx
        ops = {n.op_type for n in onnx.load(int8.onnx_file).graph.node}
        assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    else:
        int8(x)
        assert any(op.startswith('_contrib_quantize') or 'quantized' in op
                   for op in json_ops(str(tmp_path / 'int8') + '-symbol.json'))
    images = random_input((16, 3, 32, 32), seed=22).asnumpy()
    ref, got = fp32(images), int8(images)
    assert np.abs(got - ref).max() < 0.2 * np.abs(ref).max()
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.98


def json_ops(path):
    return {n['op'] for n in json.load(open(path))['nodes']}


def test_deploy_command_line(deployed):
    _, results = deployed
    prefix = results['se_preresnet20'][0]
    done = subprocess.run([sys.executable, '-m', 'cmpese.tools.deploy', prefix, '--batch', '2',
                           '--repeat', '2'], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'onnxruntime, batch 2' in done.stdout
    done = subprocess.run([sys.executable, '-m', 'cmpese.tools.deploy', prefix + '-nope'],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert 'export the model first' in done.stderr and len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize('runtime', ['onnxruntime', 'mxnet'])
def test_predictor_from_an_in_memory_block(runtime):
    net = perturb_bn(calibrate_bn(init_net(cmpese.get_model('ini_preresnet20_mix_5_d',
                                                            classes=10))))
    x = random_input((2, 3, 32, 32), seed=13)
    reference = net(x).asnumpy()
    predictor = Predictor.from_block(net, runtime=runtime)
    assert predictor.runtime == runtime
    assert relative_error(predictor(x.asnumpy()), reference) < 1e-4
    tmp = predictor._tmp
    assert os.path.isdir(tmp)
    predictor.close()
    assert not os.path.exists(tmp)


def test_deploy_input_size_the_export_was_not_made_for(tmp_path):
    """issue 20: deploy --input-size other than the export's is one line, exit 2."""
    import subprocess
    import sys
    from cmpese.data.config import dataset_config
    net = init_net(cmpese.get_model('se_preresnet20'))
    prefix = str(tmp_path / 'm')
    export_model(net, prefix, data_config=dataset_config('digits', [78.0] * 3, [82.0] * 3))
    done = subprocess.run([sys.executable, '-m', 'cmpese.tools.deploy', prefix, '--runtime',
                           'mxnet', '--input-size', '28', '--repeat', '1'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert '--input-size 28' in done.stderr and '32x32' in done.stderr
