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
from cmpese.tools.fold import collapse_linear, fold_bank, fold_exported, fold_symbol
from cmpese.units.competitive import PairViewUnit
from cmpese.units.inner_imaging import InnerImagingUnit
from model_checks import calibrate_bn, init_net, random_input

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
    from cmpese.deploy.export import ONNX_OPSET, _onnx_opset
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
    # FC layers without bias have no (zero scalar) bias input
    assert all(len(n.input) == 2 for n in model.graph.node if n.op_type == 'Gemm'
               and 'unit_fc' in n.name)
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
    units = _units(net, PairViewUnit) + _units(net, InnerImagingUnit)
    banks = len(_units(net, PairViewUnit)) + sum(len(u.gfilters)
                                                 for u in _units(net, InnerImagingUnit))
    count = lambda nodes, op: sum(n['op'] == op for n in nodes)   # noqa: E731
    unfolded = json.load(open(prefix + '-symbol.json'))['nodes']
    tol = dict(rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    # step 1: every bank into one filter with a bias
    folded = fold_exported(prefix, out_prefix=prefix + '-banks')
    assert banks > 0 and len(folded) == banks
    graph = json.load(open(prefix + '-banks-symbol.json'))['nodes']
    assert count(graph, 'BatchNorm') == count(unfolded, 'BatchNorm') - banks
    assert count(graph, 'mean') == count(unfolded, 'mean') - banks
    np.testing.assert_allclose(load_exported(prefix + '-banks')(x).asnumpy(), reference, **tol)
    params = mx.nd.load(prefix + '-banks-0000.params')
    assert any(k.endswith('_folded_bias') and abs(v.asscalar()) > 1e-3
               for k, v in params.items())
    # step 2: the affine map from the squeezed signals into the unit's first FC layer
    names = fold_exported(prefix, out_prefix=prefix + '-all', input_shape=(1, 3, 32, 32))
    assert len(names) == banks + len(units)
    graph = json.load(open(prefix + '-all-symbol.json'))['nodes']
    assert count(graph, 'Convolution') == count(unfolded, 'Convolution') - banks
    assert count(graph, 'FullyConnected') == count(unfolded, 'FullyConnected')
    if '_spa' not in name:       # the spatial maps have means and pads of their own
        assert count(graph, 'mean') == 0 and count(graph, 'Pad') == 0
    np.testing.assert_allclose(load_exported(prefix + '-all')(x).asnumpy(), reference, **tol)


def test_collapse_equals_the_hand_computation():
    """Two squeezed signal vectors, stacked into a map, a 2x1 bank (conv, BN, mean), zero
    padding and a concatenation with the second vector, then an FC with a bias: the FC over
    the concatenated signals that replaces them, against numpy."""
    rng = np.random.RandomState(3)
    c, eps, hidden = 6, 3, 4
    data = mx.sym.var('data')
    pu = mx.sym.Pooling(data, kernel=(1, 1), global_pool=True, pool_type='avg', name='pu')
    px = mx.sym.Pooling(mx.sym.relu(data), kernel=(1, 1), global_pool=True, pool_type='max',
                        name='px')
    v = mx.sym.concat(mx.sym.reshape(pu, shape=(0, 1, 1, -1)),
                      mx.sym.reshape(px, shape=(0, 1, 1, -1)), dim=2)     # (N, 1, 2, C)
    g = mx.sym.mean(mx.sym.BatchNorm(mx.sym.Convolution(v, num_filter=eps, kernel=(2, 1),
                                                        no_bias=True, name='bank'),
                                     fix_gamma=False, eps=1e-5, name='bn'), axis=1,
                    keepdims=True)                                        # (N, 1, 1, C)
    g = mx.sym.pad(g, mode='constant', constant_value=0, pad_width=(0, 0, 0, 0, 0, 0, 0, 2))
    z = mx.sym.concat(mx.sym.flatten(g), mx.sym.flatten(px), dim=1)       # C + 2 + C
    out = mx.sym.FullyConnected(z, num_hidden=hidden, name='fc1')
    args = {'bank_weight': rng.normal(size=(eps, 1, 2, 1)), 'bn_gamma': rng.uniform(.5, 1.5, eps),
            'bn_beta': rng.normal(size=eps), 'fc1_weight': rng.normal(size=(hidden, 2 * c + 2)),
            'fc1_bias': rng.normal(size=hidden)}
    aux = {'bn_moving_mean': rng.normal(size=eps), 'bn_moving_var': rng.uniform(.5, 2, eps)}
    args = {k: mx.nd.array(v) for k, v in args.items()}
    aux = {k: mx.nd.array(v) for k, v in aux.items()}
    new, nargs, naux, names = collapse_linear(out, args, aux, (1, c, 3, 3))
    assert names == ['fc1'] and naux == {}
    assert sorted(nargs) == ['fc1_collapsed_bias', 'fc1_collapsed_weight']
    assert nargs['fc1_collapsed_weight'].shape == (hidden, 2 * c)     # u and x: 2C signals
    ops = {n['op'] for n in json.loads(new.tojson())['nodes']}
    assert ops == {'null', 'Pooling', 'relu', 'Flatten', 'Concat', 'FullyConnected'}
    x = rng.normal(size=(5, c, 3, 3))
    got = new.bind(mx.cpu(), dict(nargs, data=mx.nd.array(x))).forward()[0].asnumpy()
    # by hand
    u, xs = x.mean(axis=(2, 3)), np.maximum(x, 0).max(axis=(2, 3))
    w = args['bank_weight'].asnumpy()[:, 0, :, 0]
    a = args['bn_gamma'].asnumpy() / np.sqrt(aux['bn_moving_var'].asnumpy() + 1e-5)
    maps = [a[k] * (w[k, 0] * u + w[k, 1] * xs - aux['bn_moving_mean'].asnumpy()[k]) +
            args['bn_beta'].asnumpy()[k] for k in range(eps)]
    zz = np.concatenate([np.mean(maps, axis=0), np.zeros((5, 2)), xs], axis=1)
    want = zz.dot(args['fc1_weight'].asnumpy().T) + args['fc1_bias'].asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_collapse_leaves_se_units_and_nonlinear_maps_alone():
    data = mx.sym.var('data')
    z = mx.sym.Pooling(data, kernel=(1, 1), global_pool=True, pool_type='avg')
    se = mx.sym.FullyConnected(z, num_hidden=2, no_bias=True, name='fc')   # nothing to absorb
    conv = mx.sym.Convolution(mx.sym.reshape(z, shape=(0, 1, 1, -1)), num_filter=1,
                              kernel=(1, 1), name='c')
    through_relu = mx.sym.FullyConnected(mx.sym.relu(conv), num_hidden=2, name='fc2')
    args = {'fc_weight': mx.nd.ones((2, 4)), 'c_weight': mx.nd.ones((1, 1, 1, 1)),
            'c_bias': mx.nd.ones((1,)), 'fc2_weight': mx.nd.ones((2, 4)),
            'fc2_bias': mx.nd.ones((2,))}
    for sym in (se, through_relu):
        assert collapse_linear(sym, args, {}, (1, 4, 2, 2))[3] == []


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
                                  'other model', 'garbage params', 'bad classes',
                                  'prefix under a file', 'missing data config',
                                  'config of another size'])
def test_export_errors_are_one_line(case, tmp_path, five_class_params):
    garbage = tmp_path / 'garbage.params'
    garbage.write_bytes(b'not a parameter file' * 10)
    (tmp_path / 'afile').write_text('x')
    from cmpese.data.config import dataset_config, save_data_config
    save_data_config(str(tmp_path / 'cfg28.json'),
                     dataset_config('fashion-mnist', [72.9] * 3, [90.0] * 3))
    args, expected = {
        'prefix under a file': (['--model', 'se_preresnet20', '--prefix', tmp_path / 'afile' /
                                 'm'], ['--prefix', 'afile', 'is a file']),
        'missing data config': (['--model', 'se_preresnet20', '--data-config',
                                 tmp_path / 'nope.json'], ['--data-config', 'nope.json']),
        'config of another size': (['--model', 'se_preresnet20', '--input-size', 32,
                                    '--data-config', tmp_path / 'cfg28.json'],
                                   ['28x28', '--input-size 28']),
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


# --------------------------------------------------------------------------- data config, atomic
def test_export_carries_the_data_config(tmp_path):
    """--params from a run directory: its data_config.json goes beside the export and into
    the ONNX metadata_props (issue 19, item 1)."""
    pytest.importorskip('onnxruntime')
    from cmpese.data.config import (ONNX_METADATA_KEY, dataset_config, load_data_config,
                                    save_data_config)
    import onnx
    run = tmp_path / 'run'
    run.mkdir()
    cfg = dataset_config('digits', [78.0] * 3, [82.6] * 3)
    save_data_config(str(run / 'data_config.json'), cfg)
    net = init_net(cmpese.get_model('cmpe_se_preresnet20_1x1'))
    net.save_parameters(str(run / 'best.params'))
    prefix = str(tmp_path / 'out' / 'm')
    done = run_export('--model', 'cmpe_se_preresnet20_1x1', '--params', run / 'best.params',
                      '--prefix', prefix, '--onnx')
    assert done.returncode == 0, done.stderr
    assert load_data_config(prefix + '-data.json') == cfg
    props = {p.key: p.value for p in onnx.load(prefix + '.onnx').metadata_props}
    assert json.loads(props[ONNX_METADATA_KEY]) == dict(cfg)
    assert '--data-config' in run_export('--help').stdout


def test_export_is_atomic(tmp_path, monkeypatch):
    """Interrupted before its files are moved into place, an export leaves no file under
    a final name and no temporary file; a completed one leaves no temporary either."""
    from cmpese.deploy import export as export_module
    net = init_net(cmpese.get_model('se_preresnet20'))
    prefix = str(tmp_path / 'm')
    real = export_module._publish
    seen = []

    def interrupted(pairs):
        seen.extend(pairs)
        assert all(os.path.getsize(tmp) > 0 for tmp, _ in pairs)
        raise KeyboardInterrupt
    monkeypatch.setattr(export_module, '_publish', interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_model(net, prefix)
    assert [os.path.basename(final) for _, final in seen] == ['m-symbol.json', 'm-0000.params']
    assert all('.tmp-' in os.path.basename(tmp) for tmp, _ in seen)
    assert os.listdir(str(tmp_path)) == []
    monkeypatch.setattr(export_module, '_publish', real)
    export_model(net, prefix)
    assert sorted(os.listdir(str(tmp_path))) == ['m-0000.params', 'm-symbol.json']
