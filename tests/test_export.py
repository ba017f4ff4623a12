"""Export: symbol round trips (fresh process, mx.mod.Module), clean ONNX (no initializer among
the inputs, onnx.checker, onnxruntime silent on load), inference folding, the command line and
its one-line errors."""
import json
import logging
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import cmpese
from cmpese.tools.export import export_model, export_onnx, load_exported
from cmpese.tools.fold import fold_bank, fold_exported, fold_symbol
from cmpese.units.competitive import PairViewUnit
from cmpese.units.inner_imaging import InnerImagingUnit
from common import calibrate_bn, init_net, random_input

# one model per family x unit; every zoo name is hybridized in test_models.py
ROUND_TRIP = ['preresnet20', 'se_preresnet20', 'cmpe_se_preresnet20_double_fc',
              'cmpe_se_preresnet20_2x1', 'cmpe_se_preresnet20_1x1', 'cmpe_se_preresnet164_1x1',
              'se_wrn16_8', 'cmpe_se_wrn16_8_2x1', 'resnet20_cifar', 'se_resnet20_cifar',
              'res_se_net20', 'ini_wrn16_2_mix_5_d', 'ini_preresnet56_square_3_spa4',
              'ini_preresnet56_simple_3', 'ini_allcnn_square_3']
ONNX_MODELS = ['cmpe_se_preresnet20_1x1', 'cmpe_se_preresnet20_2x1',
               'cmpe_se_preresnet20_double_fc', 'res_se_net20', 'ini_wrn16_2_mix_5_d',
               'ini_preresnet56_square_3_spa4', 'ini_preresnet56_simple_3', 'ini_allcnn_square_3']
EXPORT = [sys.executable, '-m', 'cmpese.tools.export']

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


def perturb_bn(net, seed=0):
    """Trained-looking BN affine parameters (gamma, beta away from 1, 0) on top of
    calibrated statistics, so that folding them is exercised."""
    rng = np.random.RandomState(seed)
    for name, p in net.collect_params().items():
        if name.endswith('gamma'):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))
        elif name.endswith('beta'):
            p.set_data(mx.nd.array(rng.normal(0, 0.2, p.shape)))
    return net


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


def test_symbol_json_is_the_reference_graph(exported):
    """The exported JSON holds plain MXNet operators (no Python callbacks), names its input
    'data', and has the units' reference operators (global average pooling, broadcast_mul,
    mean), not the training ones (dots by constant rows of ones)."""
    _, results = exported
    graph = json.load(open(results['cmpe_se_preresnet20_1x1'][0] + '-symbol.json'))
    ops = {n['op'] for n in graph['nodes']}
    assert 'Custom' not in ops and '_CustomFunction' not in ops
    assert graph['nodes'][0]['name'] == 'data'
    assert {'Convolution', 'BatchNorm', 'FullyConnected', 'Pooling', 'broadcast_mul',
            'mean'} <= ops
    assert not {'dot', 'ones_like', 'BlockGrad'} & ops


def test_export_leaves_the_net_to_trace_the_training_ops_again(tmp_path):
    from cmpese.units import ops
    net = init_net(cmpese.get_model('se_preresnet20', classes=10))
    export_model(net, str(tmp_path / 'm'))
    assert ops.get_impl() == ops.PROFILES[ops.DEFAULT_PROFILE]
    net(random_input((1, 3, 32, 32)))
    graph_ops = {n['op'] for n in json.loads(net._cached_graph[1].tojson())['nodes']}
    want = {'dot'} if ops.PROFILES[ops.DEFAULT_PROFILE]['squeeze'] == 'dot' else {'Pooling'}
    assert want <= graph_ops


def test_load_exported_in_process(exported):
    x, results = exported
    prefix, reference = results['cmpe_se_wrn16_8_2x1']
    np.testing.assert_allclose(load_exported(prefix)(x).asnumpy(), reference, rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(FileNotFoundError, match='export_model'):
        load_exported(prefix + '-missing')


# --------------------------------------------------------------------------- ONNX
def _ort_load_stderr(path):
    """stderr of loading ``path`` in onnxruntime (default severity: warnings) in a new
    process, which also runs it once."""
    code = ('import sys, numpy as np, onnxruntime as ort\n'
            's = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])\n'
            'i = s.get_inputs()[0]\n'
            's.run(None, {i.name: np.zeros([1] + i.shape[1:], np.float32)})\n')
    done = subprocess.run([sys.executable, '-c', code, path], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize('name', ONNX_MODELS)
def test_onnx_export_is_clean_and_runs_in_onnxruntime(exported, name, tmp_path, caplog):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    from cmpese.tools.export import ONNX_OPSET, _onnx_opset
    x, results = exported
    prefix, reference = results[name]
    with caplog.at_level(logging.DEBUG):
        path = export_onnx(prefix + '-symbol.json', prefix + '-0000.params',
                           str(tmp_path / (name + '.onnx')), input_shape=(3, 3, 32, 32),
                           optimized_file=True)
    # mx2onnx's per-node notes and its dot warning are not passed on
    assert not [r for r in caplog.records if 'mx2onnx' in r.pathname or 'dot' in r.getMessage()]
    model = onnx.load(path)
    weights = {i.name for i in model.graph.initializer}
    assert [i.name for i in model.graph.input] == ['data']
    used = {n for node in model.graph.node for n in node.input}
    assert weights <= used
    with _onnx_opset(ONNX_OPSET):
        onnx.checker.check_model(model, full_check=True)
    assert '[W:onnxruntime' not in _ort_load_stderr(path)
    feed = x.asnumpy()
    for file in (path, str(tmp_path / (name + '.opt.onnx'))):
        session = ort.InferenceSession(file, providers=['CPUExecutionProvider'])
        out = session.run(None, {'data': feed})[0]
        np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)
        out1 = session.run(None, {'data': feed[:1]})[0]     # the batch axis is dynamic
        np.testing.assert_allclose(out1, reference[:1], rtol=1e-4, atol=1e-4)


def test_optimized_onnx_folds_batchnorm(exported, tmp_path):
    """onnxruntime's offline pass folds the BatchNorms that follow a convolution (the WRN
    stem's, the InI G-filters'); the pre-activation BNs stay (they precede their convs)."""
    onnx = pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    prefix, _ = exported[1]['ini_wrn16_2_mix_5_d']
    path = export_onnx(prefix + '-symbol.json', prefix + '-0000.params',
                       str(tmp_path / 'm.onnx'), optimized_file=str(tmp_path / 'm.opt.onnx'))

    def count(file, op):
        return sum(n.op_type == op for n in onnx.load(file).graph.node)
    before, after = count(path, 'BatchNormalization'), count(str(tmp_path / 'm.opt.onnx'),
                                                             'BatchNormalization')
    net = cmpese.get_model('ini_wrn16_2_mix_5_d', classes=10)
    banks = sum(len(u.gfilters) for u in _units(net, InnerImagingUnit))
    assert after <= before - banks - 1


# --------------------------------------------------------------------------- folding
def _units(net, cls):
    found = []
    net.apply(lambda b: found.append(b) if isinstance(b, cls) else None)
    return found


@pytest.mark.parametrize('kernel,dilation,bias', [((1, 1), 1, False), ((2, 1), 1, False),
                                                  ((3, 3), 2, False), ((1, 5), 1, True)])
def test_fold_bank_equals_the_hand_computation(kernel, dilation, bias):
    """Convolution (eps filters) - BN (fixed statistics) - mean over eps, folded into one
    filter with a bias, against numpy."""
    rng = np.random.RandomState(1)
    eps, rows, cols = 5, 6, 9
    v = rng.normal(size=(2, 1, rows, cols)).astype(np.float32)
    w = rng.normal(size=(eps, 1) + kernel).astype(np.float32)
    b = rng.normal(size=eps).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, eps), rng.normal(size=eps)
    mean, var = rng.normal(size=eps), rng.uniform(0.2, 2.0, eps)
    data = mx.sym.var('data')
    conv = mx.sym.Convolution(data, num_filter=eps, kernel=kernel, dilate=(dilation,) * 2,
                              no_bias=not bias, name='bank')
    out = mx.sym.mean(mx.sym.BatchNorm(conv, fix_gamma=False, eps=1e-5, name='bn'), axis=1,
                      keepdims=True)
    out = mx.sym.relu(out)
    args = {'bank_weight': mx.nd.array(w), 'bn_gamma': mx.nd.array(gamma),
            'bn_beta': mx.nd.array(beta)}
    if bias:
        args['bank_bias'] = mx.nd.array(b)
    aux = {'bn_moving_mean': mx.nd.array(mean), 'bn_moving_var': mx.nd.array(var)}
    folded, fargs, faux, names = fold_symbol(out, args, aux)
    assert names == ['bank'] and faux == {}
    assert sorted(fargs) == ['bank_folded_bias', 'bank_folded_weight']
    assert {n['op'] for n in json.loads(folded.tojson())['nodes']} == {'null', 'Convolution',
                                                                       'relu'}
    ex = folded.bind(mx.cpu(), dict(fargs, data=mx.nd.array(v)), aux_states=faux)
    got = ex.forward()[0].asnumpy()
    # by hand: the eps maps, normalized with the running statistics, averaged
    kh, kw = kernel
    oh, ow = rows - (kh - 1) * dilation, cols - (kw - 1) * dilation
    maps = np.zeros((2, eps, oh, ow))
    for k in range(eps):
        for i in range(kh):
            for j in range(kw):
                maps[:, k] += w[k, 0, i, j] * v[:, 0, i * dilation:i * dilation + oh,
                                                j * dilation:j * dilation + ow]
        maps[:, k] += b[k] if bias else 0
        maps[:, k] = gamma[k] * (maps[:, k] - mean[k]) / np.sqrt(var[k] + 1e-5) + beta[k]
    np.testing.assert_allclose(got, np.maximum(maps.mean(axis=1, keepdims=True), 0),
                               rtol=1e-5, atol=1e-5)
    w1, b1 = fold_bank(w, b if bias else None, gamma, beta, mean, var, 1e-5)
    assert w1.shape == (1, 1) + kernel and b1.shape == (1,)


def test_fold_leaves_other_patterns_alone():
    """A BN whose output also feeds something else, a mean over another axis, a grouped
    convolution: not banks."""
    data = mx.sym.var('data')
    conv = mx.sym.Convolution(data, num_filter=4, kernel=(1, 1), no_bias=True, name='c')
    bn = mx.sym.BatchNorm(conv, name='bn')
    two_uses = mx.sym.mean(bn, axis=1, keepdims=True) + mx.sym.sum(bn, axis=1, keepdims=True)
    other_axis = mx.sym.mean(mx.sym.BatchNorm(
        mx.sym.Convolution(data, num_filter=4, kernel=(1, 1), name='c2'), name='bn2'), axis=2,
        keepdims=True)
    grouped = mx.sym.mean(mx.sym.BatchNorm(mx.sym.Convolution(
        data, num_filter=4, kernel=(1, 1), num_group=2, name='c3'), name='bn3'), axis=1,
        keepdims=True)
    for sym in (two_uses, other_axis, grouped):
        assert fold_symbol(sym, {}, {})[3] == []


FOLD_MODELS = ['cmpe_se_preresnet20_2x1', 'cmpe_se_preresnet20_1x1', 'cmpe_se_wrn16_2_1x1',
               'cmpe_se_preresnet164_1x1', 'ini_preresnet20_mix_5_d', 'ini_wrn16_2_mix_5_d',
               'ini_preresnet20_square_3', 'ini_preresnet20_simple_3', 'ini_wrn16_2_horizon_3_d',
               'ini_preresnet20_mix_5_d_spa4']


@pytest.mark.parametrize('name', FOLD_MODELS)
def test_folded_export_equals_the_unfolded_model(name, tmp_path):
    net = perturb_bn(calibrate_bn(init_net(cmpese.get_model(name, classes=10))), seed=2)
    x = random_input((4, 3, 32, 32), seed=7)
    reference = net(x).asnumpy()
    prefix = str(tmp_path / name)
    export_model(net, prefix)
    folded = fold_exported(prefix, out_prefix=prefix + '-folded')
    banks = len(_units(net, PairViewUnit)) + sum(len(u.gfilters)
                                                 for u in _units(net, InnerImagingUnit))
    assert banks > 0 and len(folded) == banks
    unfolded_graph = json.load(open(prefix + '-symbol.json'))['nodes']
    graph = json.load(open(prefix + '-folded-symbol.json'))['nodes']
    count = lambda nodes, op: sum(n['op'] == op for n in nodes)   # noqa: E731
    assert count(graph, 'BatchNorm') == count(unfolded_graph, 'BatchNorm') - banks
    assert count(graph, 'mean') == count(unfolded_graph, 'mean') - banks
    out = load_exported(prefix + '-folded')(x).asnumpy()
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    # and the folding really moved weights: the unit's maps depend on gamma, beta
    params = mx.nd.load(prefix + '-folded-0000.params')
    assert any(k.endswith('_folded_bias') and abs(v.asscalar()) > 1e-3
               for k, v in params.items())


def test_export_fold_flag_and_onnx_of_the_folded_model(tmp_path):
    ort = pytest.importorskip('onnxruntime')
    net = perturb_bn(calibrate_bn(init_net(cmpese.get_model('ini_wrn16_2_mix_5_d',
                                                            classes=10))))
    x = random_input((2, 3, 32, 32), seed=8)
    reference = net(x).asnumpy()
    sym, params = export_model(net, str(tmp_path / 'm'), fold=True)
    path = export_onnx(sym, params, str(tmp_path / 'm.onnx'))
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    np.testing.assert_allclose(session.run(None, {'data': x.asnumpy()})[0], reference,
                               rtol=1e-4, atol=1e-4 * np.abs(reference).max())


# --------------------------------------------------------------------------- command line
def run_export(*args, timeout=300):
    return subprocess.run(EXPORT + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def test_export_command_line(tmp_path):
    pytest.importorskip('onnxruntime')
    net = init_net(cmpese.get_model('cmpe_se_preresnet20_1x1', classes=5))
    net.save_parameters(str(tmp_path / 'trained.params'))
    prefix = str(tmp_path / 'out' / 'm')
    done = run_export('--model', 'cmpe_se_preresnet20_1x1', '--classes', 5, '--params',
                      tmp_path / 'trained.params', '--prefix', prefix, '--fold',
                      '--onnx-optimized')
    assert done.returncode == 0, done.stderr
    assert 'Converting' not in done.stderr and 'Traceback' not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 3, done.stderr
    x = random_input((2, 3, 32, 32))
    np.testing.assert_allclose(load_exported(prefix)(x).asnumpy(), net(x).asnumpy(),
                               rtol=1e-5, atol=1e-5)
    assert os.path.isfile(prefix + '.onnx') and os.path.isfile(prefix + '.opt.onnx')


@pytest.fixture(scope='module')
def five_class_params(tmp_path_factory):
    path = tmp_path_factory.mktemp('params') / 'se5.params'
    init_net(cmpese.get_model('se_preresnet20', classes=5)).save_parameters(str(path))
    return path


@pytest.mark.parametrize('case', ['missing params', 'unknown model', 'bad depth', 'class count',
                                  'other model', 'garbage params', 'bad classes'])
def test_export_errors_are_one_line(case, tmp_path, five_class_params):
    garbage = tmp_path / 'garbage.params'
    garbage.write_bytes(b'not a parameter file' * 10)
    args, expected = {
        'missing params': (['--model', 'se_preresnet20', '--params', tmp_path / 'nope.params'],
                           ['--params', 'nope.params', 'no such file']),
        'unknown model': (['--model', 'se_resnett50'], ['--model', 'se_resnett50',
                                                        'se_resnet50']),
        'bad depth': (['--model', 'se_preresnet21'], ['--model se_preresnet21', '6n+2']),
        'class count': (['--model', 'se_preresnet20', '--params', five_class_params],
                        ['5 classes', '--classes 5']),
        'other model': (['--model', 'se_preresnet56', '--classes', 5, '--params',
                         five_class_params], ['--params', 'does not fit']),
        'garbage params': (['--model', 'se_preresnet20', '--params', garbage],
                           ['--params', 'garbage.params', 'not an MXNet parameter file']),
        'bad classes': (['--model', 'se_preresnet20', '--classes', 0], ['--classes']),
    }[case]
    done = run_export('--prefix', tmp_path / 'out' / 'm', *args)
    assert done.returncode == 2, done.stderr
    assert 'Traceback' not in done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert len(lines) <= 2, done.stderr
    for word in expected:
        assert word in done.stderr, done.stderr
    assert not (tmp_path / 'out').exists()       # nothing written before the input is valid
