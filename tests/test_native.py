"""cmpese.native: the native rescale operators (fused.cc) against the same expressions built
from stock operators, values and gradients, imperative and hybridized, float64 and float32;
their shape and dtype errors; the build cache and the fallback when there is no compiler;
the units' train profile using it (cmpese.units.ops) and exports never containing it."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd
from mxnet.gluon import HybridBlock, nn

from cmpese import native

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADED = native.load()
needs_library = pytest.mark.skipif(
    not LOADED, reason='cmpese.native.load() returned False (see the cmpese.native log line)')

# C not a multiple of 8, H*W = 1, batch 1, a map past the kernels' OpenMP threshold
SHAPES = [(2, 3, 4, 5), (3, 10, 1, 1), (1, 16, 7, 7), (2, 20, 32, 32)]
OPS = ('scale', 'scale_add', 'scale_add_relu')
TOL = {'float64': 1e-12, 'float32': 1e-5}


def reference(F, op, x, s, r=None):
    """The operator as the units' stock operators write it."""
    y = F.broadcast_mul(x, F.reshape(s, shape=(0, 0, 1, 1)))
    if op == 'scale':
        return y
    y = y + r
    return F.relu(y) if op == 'scale_add_relu' else y


def fused(F, op, x, s, r=None):
    return getattr(F, op)(x, s) if op == 'scale' else getattr(F, op)(x, s, r)


class Rescale(HybridBlock):
    """``op`` through F.* (mx.sym when hybridized, mx.nd when not), native or stock."""

    def __init__(self, op, use_native):
        super(Rescale, self).__init__()
        self.op, self.use_native = op, use_native

    def hybrid_forward(self, F, x, s, r=None):
        return (fused if self.use_native else reference)(F, self.op, x, s, r)


def inputs(op, shape, dtype, s_rank=2, seed=0):
    """x, s, r (None for 'scale') with a third of x * s + r negative."""
    rng = np.random.RandomState(seed)
    n, c = shape[:2]
    x = rng.uniform(-1, 1, shape)
    s = rng.uniform(0.1, 1, (n, c) if s_rank == 2 else (n, c, 1, 1))
    r = rng.uniform(-0.5, 1, shape) if op != 'scale' else None
    return [None if a is None else mx.nd.array(a, dtype=dtype) for a in (x, s, r)]


def run(call, arrays, weights=None):
    """Output and the gradient of every input of sum(out * weights), weights a fixed pattern
    of -3..3 (so the output gradient varies and has zeros)."""
    arrays = [a.copy() for a in arrays if a is not None]
    for a in arrays:
        a.attach_grad()
    with autograd.record():
        out = call(*arrays)
        if weights is None:
            weights = mx.nd.array(np.arange(out.size).reshape(out.shape) % 7 - 3.0,
                                  dtype=out.dtype)
        (out * weights).sum().backward()
    return [out.asnumpy()] + [a.grad.asnumpy() for a in arrays]


def assert_same(got, want, dtype):
    assert len(got) == len(want)
    for name, g, w in zip(('y', 'dx', 'ds', 'dr'), got, want):
        assert g.dtype == w.dtype == np.dtype(dtype), name
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=TOL[dtype], atol=TOL[dtype], err_msg=name)


@needs_library
@pytest.mark.parametrize('dtype', ['float64', 'float32'])
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('op', OPS)
def test_values_and_gradients_imperative(op, shape, dtype):
    arrays = inputs(op, shape, dtype, s_rank=2 + 2 * (shape[0] == 1))
    got = run(lambda *a: fused(mx.nd, op, *a), arrays)
    want = run(lambda *a: reference(mx.nd, op, *a), arrays)
    assert_same(got, want, dtype)
    # the forward rounds as the stock operators do: bit for bit
    assert np.array_equal(got[0], want[0])
    if op == 'scale_add_relu':
        assert (want[0] == 0).mean() > 0.1        # the mask is exercised
        assert np.all(got[1][want[0] == 0] == 0)


@needs_library
@pytest.mark.parametrize('dtype', ['float64', 'float32'])
@pytest.mark.parametrize('shape', [(2, 3, 4, 5), (3, 10, 1, 1), (1, 16, 7, 7)])
@pytest.mark.parametrize('op', OPS)
def test_hybridized_block_uses_the_symbol_operator(op, shape, dtype):
    arrays = inputs(op, shape, dtype, s_rank=4, seed=1)
    want = run(Rescale(op, False), arrays)
    block = Rescale(op, True)
    block.hybridize(static_alloc=True, static_shape=True)
    got = run(block, arrays)
    assert_same(got, want, dtype)
    got_again = run(block, arrays)          # the cached graph, a second time
    assert_same(got_again, want, dtype)
    sym = block(*[mx.sym.var('in%d' % i) for i, a in enumerate(arrays) if a is not None])
    assert op in sym.tojson()


class ConvBN(HybridBlock):
    """x = BN(conv1x1(a)), then the operator with r = a: x comes out of oneDNN in its
    blocked layout, which MXNet reorders for the library."""

    def __init__(self, op, use_native, channels):
        super(ConvBN, self).__init__()
        self.op, self.use_native = op, use_native
        with self.name_scope():
            self.conv = nn.Conv2D(channels, 1, use_bias=False, in_channels=channels)
            self.bn = nn.BatchNorm(in_channels=channels)

    def hybrid_forward(self, F, a, s):
        x = self.bn(self.conv(a))
        return (fused if self.use_native else reference)(F, self.op, x, s, a)


@needs_library
@pytest.mark.parametrize('op', OPS)
def test_inputs_in_onednn_layout(op):
    a, s, _ = inputs('scale_add', (2, 32, 8, 8), 'float32', seed=2)
    results = []
    for use_native in (False, True):
        net = ConvBN(op, use_native, 32)
        net.initialize(mx.init.Xavier())
        mx.random.seed(0)
        net.conv.weight.set_data(mx.nd.array(
            np.random.RandomState(3).normal(0, 0.2, (32, 32, 1, 1))))
        net.hybridize(static_alloc=True, static_shape=True)
        out = run(net, [a, s])
        results.append(out + [net.conv.weight.grad().asnumpy()])
    for name, g, w in zip(('y', 'da', 'ds', 'dweight'), results[1], results[0]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=name)


@needs_library
def test_gradient_of_x_alone():
    """Inputs that need no gradient (the backward's null requests) do not disturb dx."""
    x, s, r = inputs('scale_add_relu', (2, 5, 3, 3), 'float64', seed=4)
    x = x.copy()
    x.attach_grad()
    with autograd.record():
        y = mx.nd.scale_add_relu(x, s, r)
    y.backward()
    want = (x * s.reshape((2, 5, 1, 1)) + r).asnumpy() > 0
    np.testing.assert_array_equal(x.grad.asnumpy(),
                                  want * np.broadcast_to(s.asnumpy()[:, :, None, None],
                                                         x.shape))


@needs_library
def test_parameters_upstream_accumulate_with_grad_req_add():
    """A trainer accumulating gradients (grad_req='add') over two steps gets twice one step's
    gradient for the layers before the operator."""
    a, s, _ = inputs('scale_add', (2, 8, 5, 5), 'float64', seed=5)
    grads = {}
    for req in ('write', 'add'):
        net = ConvBN('scale_add_relu', True, 8)
        net.cast('float64')
        net.initialize(mx.init.Constant(0.1))
        net.hybridize()
        net.conv.weight.grad_req = req
        for _ in range(2 if req == 'add' else 1):
            with autograd.record():
                y = net(a, s)
            y.backward()
        grads[req] = net.conv.weight.grad().asnumpy()
    assert np.abs(grads['write']).max() > 0
    np.testing.assert_allclose(grads['add'], 2 * grads['write'], rtol=1e-12)


@needs_library
@pytest.mark.parametrize('args, message', [
    (lambda: (mx.nd.ones((2, 3, 4, 4)), mx.nd.ones((3, 2))),
     'scale: s must be (N, C) or (N, C, 1, 1) for x of (N, C) = (2, 3)'),
    (lambda: (mx.nd.ones((2, 3, 4, 4)), mx.nd.ones((2, 3, 2, 1))),
     'scale: s must be (N, C) or (N, C, 1, 1) for x of (N, C) = (2, 3)'),
    (lambda: (mx.nd.ones((6,)), mx.nd.ones((6,))), 'scale: x must be (N, C, ...), got rank 1'),
    (lambda: (mx.nd.ones((2, 3, 4, 4), dtype='float16'), mx.nd.ones((2, 3), dtype='float16')),
     'float32 or float64 inputs only, got dtype 2'),
    (lambda: (mx.nd.ones((2, 3, 4, 4)), mx.nd.ones((2, 3), dtype='float64')),
     'the inputs must all have one dtype'),
])
def test_bad_inputs_are_refused_with_the_reason(args, message):
    with pytest.raises(mx.base.MXNetError) as err:
        mx.nd.scale(*args()).wait_to_read()
    assert message in str(err.value)


@needs_library
def test_identity_of_another_shape_is_refused():
    with pytest.raises(mx.base.MXNetError) as err:
        mx.nd.scale_add(mx.nd.ones((2, 3, 4, 4)), mx.nd.ones((2, 3)),
                        mx.nd.ones((2, 3, 4, 5))).wait_to_read()
    assert 'scale_add: x and r must have one shape' in str(err.value)


def test_build_is_cached_by_content():
    """A second build finds the first one's file (no compiler run); only the package's own
    sources and MXNet's are in the name."""
    if not LOADED:
        pytest.skip('cmpese.native.load() returned False')
    path = native.build()
    mtime = os.path.getmtime(path)
    assert native.build() == path and os.path.getmtime(path) == mtime
    assert os.path.basename(path).startswith('libcmpese_fused-') and path.endswith('.so')


def test_no_compiler_is_a_one_line_build_error(tmp_path, monkeypatch):
    monkeypatch.setenv('CXX', str(tmp_path / 'no-such-g++'))
    with pytest.raises(native.BuildError) as err:
        native.build(cache_dir=str(tmp_path / 'cache'))
    assert str(err.value) == ("no C++ compiler: %r is not on PATH (install g++ or set CXX)"
                              % str(tmp_path / 'no-such-g++'))


def test_failed_compile_names_the_first_error(tmp_path, monkeypatch):
    fake = tmp_path / 'fake-g++'
    fake.write_text('#!/bin/sh\necho "note: starting"\necho "fused.cc:1: error: boom" \nexit 3\n')
    fake.chmod(0o755)
    monkeypatch.setenv('CXX', str(fake))
    cache = tmp_path / 'cache'
    with pytest.raises(native.BuildError) as err:
        native.build(cache_dir=str(cache))
    assert str(err.value) == 'fake-g++ exited with 3: fused.cc:1: error: boom'
    assert os.listdir(str(cache)) == []         # the temporary file is gone


def test_load_without_a_compiler_falls_back_with_one_log_line(tmp_path):
    code = ('import logging, sys\n'
            'logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")\n'
            'from cmpese import native\n'
            'print(native.load(cache_dir=sys.argv[1]), native.load(), native.loaded())\n')
    env = dict(os.environ, CXX=str(tmp_path / 'no-such-g++'), PYTHONPATH=ROOT)
    env.pop('CMPESE_NATIVE', None)
    done = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'cache')], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'False False False\n'
    assert done.stderr.splitlines() == [
        "WARNING cmpese.native: native rescale operators not loaded (no C++ compiler: %r is "
        "not on PATH (install g++ or set CXX)); using the stock operators"
        % str(tmp_path / 'no-such-g++')]


# ------------------------------------------------------------------ the units' train profile
def _python(code, **env):
    """Run ``code`` in a fresh interpreter with ``env`` added (None removes a variable)."""
    full = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return subprocess.run([sys.executable, '-c', code], env=full, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


@needs_library
def test_export_of_a_net_trained_native_holds_no_native_operator(tmp_path):
    """The net traces the native rescale under the default (train) profile; its export is the
    reference graph, with no library operator; the net then traces native again."""
    import cmpese
    from cmpese.tools.export import export_model
    from cmpese.units import ops
    from model_checks import init_net, random_input
    assert ops.get_impl()['scale'] == 'native'
    net = init_net(cmpese.get_model('cmpe_se_preresnet20_1x1', classes=10))
    net.hybridize(static_alloc=True, static_shape=True)
    x = random_input((2, 3, 32, 32))
    trained = net(x).asnumpy()

    def graph_ops():
        return {n['op'] for n in json.loads(net._cached_graph[1].tojson())['nodes']}
    assert 'scale' in graph_ops()
    json_path, _ = export_model(net, str(tmp_path / 'm'), (2, 3, 32, 32))
    exported = {n['op'] for n in json.load(open(json_path))['nodes']}
    assert not set(native.OPERATORS) & exported
    assert 'broadcast_mul' in exported
    again = net(x).asnumpy()
    assert 'scale' in graph_ops()
    np.testing.assert_array_equal(again, trained)


@needs_library
def test_default_profile_loads_the_library_only_when_a_rescale_needs_it():
    """A fresh process: tracing the reference operators (export, FLOP counts) loads nothing;
    the default profile's rescale is the native one, decided on first use; the variable
    CMPESE_UNIT_OPS accepts scale=native."""
    code = ('import mxnet as mx\n'
            'from cmpese import native\n'
            'from cmpese.units import ops\n'
            'with ops.using("reference"):\n'
            '    ops.scale(mx.sym, mx.sym.var("x"), mx.sym.var("s"))\n'
            'before = list(native._result)\n'
            'print(before, ops.get_impl()["scale"], native.loaded())\n')
    done = _python(code, CMPESE_UNIT_OPS=None, CMPESE_NATIVE=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '[] native True\n'
    done = _python('from cmpese.units import ops; print(sorted(ops.get_impl().items()))',
                   CMPESE_UNIT_OPS='squeeze=pool,scale=native', CMPESE_NATIVE=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[('mean', 'conv'), ('scale', 'native'), ('squeeze', 'pool')]\n"


def test_without_the_library_train_falls_back_and_native_is_refused():
    """CMPESE_NATIVE=0 (as a CUDA build or a machine without g++): the train profile's
    rescale is dot, the reference profile is unchanged, and asking for scale=native is one
    ConfigError naming the reason."""
    code = ('from cmpese.errors import ConfigError\n'
            'from cmpese.units import ops\n'
            'print(ops.get_impl()["scale"], ops.PROFILES["reference"]["scale"])\n'
            'try:\n'
            '    ops.set_impl(scale="native")\n'
            'except ConfigError as e:\n'
            '    print(e)\n'
            'print(ops.get_impl()["scale"])\n')
    done = _python(code, CMPESE_UNIT_OPS=None, CMPESE_NATIVE='0')
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        'dot broadcast',
        "unit operators 'scale=native': the native rescale operator cannot be used here "
        "(CMPESE_NATIVE=0). Choose scale=dot, or leave the rescale to the train profile, "
        "which falls back by itself",
        'dot']


def test_unit_ops_native_without_the_library_is_one_line_from_the_trainer(tmp_path):
    """CMPESE_UNIT_OPS=scale=native where the library cannot load: train_cifar.py stops with
    one error line naming the variable and the reason, exit 2, no traceback."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', CMPESE_NATIVE='0',
               CMPESE_UNIT_OPS='scale=native')
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_cifar.py'), '--model', 'cmpe_se_wrn10_1_1x1',
         '--dataset', 'digits', '--epochs', '1', '--save-dir', str(tmp_path / 'run')],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
        timeout=300, cwd=str(tmp_path))
    assert done.returncode == 2, done.stderr[-2000:]
    assert 'Traceback' not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        'train_cifar.py: error: CMPESE_UNIT_OPS=scale=native: the native rescale operator '
        'cannot be used here (CMPESE_NATIVE=0). Choose scale=dot, or leave the rescale to the '
        'train profile, which falls back by itself')
    assert not (tmp_path / 'run').exists()          # refused before the run directory


def test_misspelled_unit_ops_is_one_line_not_an_import_traceback(tmp_path):
    """A misspelled CMPESE_UNIT_OPS: `import cmpese` works, and the trainer stops with one
    line listing the choices, before it makes the run directory."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', CMPESE_UNIT_OPS='scale=natve')
    imported = subprocess.run([sys.executable, '-c', 'import cmpese'], env=env,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert imported.returncode == 0, imported.stderr[-2000:]
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_cifar.py'), '--model', 'se_preresnet20',
         '--dataset', 'digits', '--epochs', '1', '--save-dir', str(tmp_path / 'run')],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
        timeout=300, cwd=str(tmp_path))
    assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1].startswith(
        "train_cifar.py: error: CMPESE_UNIT_OPS=scale=natve: unit operators 'scale=natve': "
        "expected a profile (reference, train) or step=name pairs with ")
    assert 'scale in broadcast|dot|native' in done.stderr.splitlines()[-1]
    assert not (tmp_path / 'run').exists()
