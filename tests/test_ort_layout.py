"""cmpese.tools.ort_layout: the units' rescale kept in onnxruntime's blocked layout gives the
ordinary session's values, and falls back when it cannot."""
import collections

import mxnet as mx
import numpy as np
import pytest

import cmpese
from cmpese.tools import ort_layout
from cmpese.tools.deploy import Predictor
from cmpese.tools.export import export_model, export_onnx
from model_checks import calibrate_bn, init_net, random_input
from test_export import perturb_bn

ort = pytest.importorskip('onnxruntime')
onnx = pytest.importorskip('onnx')

UNITS = ['se_preresnet20', 'cmpe_se_preresnet20_1x1', 'cmpe_se_preresnet20_2x1',
         'cmpe_se_preresnet20_double_fc', 'ini_preresnet20_mix_5_d', 'se_wrn16_2',
         'cmpe_se_preresnet56_1x1', 'res_se_net20']


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """{name: (onnx file, x, Gluon output)}, folded exports of nets with trained-looking BNs."""
    out = tmp_path_factory.mktemp('ort_layout')
    x = random_input((4, 3, 32, 32), seed=5)
    files = {}
    for name in UNITS + ['preresnet20']:
        net = perturb_bn(calibrate_bn(init_net(cmpese.get_model(name, classes=10))), seed=2)
        prefix = str(out / name)
        sym, params = export_model(net, prefix, fold=True)
        files[name] = (export_onnx(sym, params, prefix + '.onnx'), x.asnumpy(),
                       net(x).asnumpy())
    return files


def _session(model, level=None):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if level is not None:
        options.graph_optimization_level = level
    data = model.SerializeToString() if hasattr(model, 'SerializeToString') else model
    return ort.InferenceSession(data, options, providers=['CPUExecutionProvider'])


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize('name', UNITS)
def test_spread_gates_is_the_same_network(exported, name):
    """Step 1 is standard ONNX: run without any onnxruntime optimization it gives the
    exported graph's values, with one spread per unit (a pre-act ResNet-20 has 9 blocks)."""
    path, x, gluon = exported[name]
    model, spread = ort_layout.spread_gates(onnx.load(path), len(x))
    assert spread == (6 if 'wrn16' in name else 27 if '56' in name else
                      2 if 'res_se' in name else 9)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert ops['Resize'] == spread and ops['Gemm'] <= 1          # the classifier may stay
    got = _session(model, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, {'data': x})[0]
    want = _session(path).run(None, {'data': x})[0]
    assert _rel(got, want) < 1e-5 and _rel(got, gluon) < 1e-4


@pytest.mark.parametrize('name', UNITS)
def test_predictor_runs_the_blocked_rescale(exported, name):
    path, x, gluon = exported[name]
    predictor = Predictor(path)
    got = predictor(x)
    session = predictor._layout_sessions[x.shape]
    assert session is not predictor._session                     # the layout pass was taken
    assert _rel(got, predictor._session.run(None, {'data': x})[0]) < 1e-5
    assert _rel(got, gluon) < 1e-4
    assert _rel(predictor(x[:1]), gluon[:1]) < 1e-4              # its own session per batch
    assert set(predictor._layout_sessions) == {x.shape, x[:1].shape}


def test_blocked_graph_has_no_reorder_left(exported):
    """What the pass is for: in onnxruntime's optimized graph of an SE net, no reorder is left
    between a full map and the rescale or the residual addition (the plain export has at least
    one per unit). Reorders of the tiny excitation maps (C/16 channels, not a whole block)
    stay."""
    path, x, _ = exported['se_preresnet20']
    model, _ = ort_layout.spread_gates(onnx.load(path), len(x))
    plain, spread = _reorders_at_the_rescale(onnx.load(path)), _reorders_at_the_rescale(model)
    assert plain >= 9 and spread == 0


def _reorders_at_the_rescale(model):
    """Reorder nodes that feed or read a Mul or Add, in onnxruntime's optimized graph."""
    import os
    import tempfile
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = os.path.join(tempfile.mkdtemp(), 'm.onnx')
    ort.InferenceSession(model.SerializeToString(), options, providers=['CPUExecutionProvider'])
    nodes = onnx.load(options.optimized_model_filepath).graph.node
    producer = {o: n for n in nodes for o in n.output}
    count = 0
    for n in nodes:
        if n.op_type in ('Mul', 'Add'):
            for i in n.input:
                count += i in producer and producer[i].op_type.startswith('Reorder')
            for m in nodes:
                count += m.op_type.startswith('Reorder') and m.input[0] == n.output[0]
    return count


def test_plain_nets_and_layout_off_run_the_ordinary_session(exported):
    path, x, gluon = exported['preresnet20']
    predictor = Predictor(path)
    assert _rel(predictor(x), gluon) < 1e-4
    assert predictor._layout_sessions[x.shape] is predictor._session
    path, x, gluon = exported['se_preresnet20']
    predictor = Predictor(path, layout=False)
    assert _rel(predictor(x), gluon) < 1e-4 and not predictor._layout_sessions


def test_a_wrong_block_size_is_caught_by_the_check(exported, monkeypatch):
    """The 5-D views are right only for onnxruntime's own block size: with a wrong one the
    check against the ordinary session fails and the spread graph (step 1) is used."""
    path, x, gluon = exported['se_preresnet20']
    monkeypatch.setattr(ort_layout, 'BLOCK_SIZES', (2,))
    reference = _session(path)
    session, how = ort_layout.layout_session(path, len(x), reference, x.shape[1:])
    assert 'spread' in how and session is not None
    assert _rel(session.run(None, {'data': x})[0], gluon) < 1e-4


def test_unknown_graphs_are_left_alone(exported, tmp_path):
    """An int8 (QDQ) model has no float gate chain: no rewrite, the ordinary session."""
    path, x, gluon = exported['se_preresnet20']
    predictor = Predictor(path)
    int8 = predictor.quantize(x, out=str(tmp_path / 'se.int8.onnx'))
    int8(x)
    assert int8._layout_sessions[x.shape] is int8._session


def test_a_graph_the_pass_cannot_read_runs_the_ordinary_session(exported, monkeypatch):
    path, x, gluon = exported['se_preresnet20']

    def broken(model, batch, spread_map=True):
        raise ValueError('shape inference failed')
    monkeypatch.setattr(ort_layout, 'spread_gates', broken)
    predictor = Predictor(path)
    assert _rel(predictor(x), gluon) < 1e-4
    assert predictor._layout_sessions[x.shape] is predictor._session
