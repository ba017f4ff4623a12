"""cmpese.weights: timm safetensors and GluonCV .params mapped by role into our ImageNet
ResNets, without any download.

The files are written from our own networks' random weights (BN statistics randomized
too, so that a mixed-up statistic shows): the timm layout by our key map's inverse
(``timm_state``), the GluonCV layout by GluonCV's own networks (built with
``pretrained=False``), into which our weights are copied and whose outputs must equal ours
before they ``save_parameters``. Every file is converted back into a fresh model and the
outputs compared in float32. Every refusal must be one line through the command line.
"""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from gluoncv.model_zoo import get_model as gluoncv_model

import cmpese
from cmpese import errors
from cmpese.cli import convert
from cmpese.models import get_resnet_imagenet
from cmpese.weights import (DepthMismatch, LayoutMismatch, NotAWeightsFile, ShapeMismatch,
                            UnsupportedLayout, WeightsError, gluoncv_state, load_pretrained,
                            save_timm, timm_state)
from cmpese.weights.layout import part_of, target_layout

SIZE = 64
BIAS = {'unit_kwargs': {'use_bias': True}}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def randomize(net, seed=0):
    """Random weights (Xavier), and BN statistics, scales, shifts and biases away from their
    initial 0 and 1."""
    net.initialize(mx.init.Xavier(), force_reinit=True)
    rng = np.random.RandomState(seed)
    for name, p in net._collect_params_with_prefix().items():
        if name.endswith('running_var'):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, p.shape)))
        elif name.endswith(('running_mean', 'beta', 'gamma', 'bias')):
            p.set_data(p.data() + mx.nd.array(rng.uniform(-0.2, 0.2, p.shape)))
    return net


def gluoncv_net(name):
    """GluonCV's network ``name`` (pretrained=False), initialized, shapes settled."""
    net = gluoncv_model(name, pretrained=False)
    net.initialize()
    net(image())
    return net


def snapshot(net):
    return {k: p.data().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()}


def image(seed=1):
    return mx.nd.array(np.random.RandomState(seed).normal(size=(1, 3, SIZE, SIZE)))


def assert_same_output(a, b):
    x = image()
    np.testing.assert_allclose(b(x).asnumpy(), a(x).asnumpy(), rtol=1e-5, atol=1e-6)


def copy_into_gluoncv(ours, theirs):
    """Our weights into a GluonCV network by our key map (gluoncv_state): the key sets
    must be equal."""
    state = gluoncv_state(ours)
    params = theirs._collect_params_with_prefix()
    assert set(state) == set(params)
    for key, value in state.items():
        params[key].set_data(mx.nd.array(value))


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Random ResNet-50 and ResNet-18 (basic blocks) in timm's layout."""
    root = tmp_path_factory.mktemp('weights')
    mx.random.seed(0)
    nets = dict(resnet50=randomize(cmpese.get_model('resnet50'), 1),
                resnet18=randomize(get_resnet_imagenet(18), 2))
    paths = {}
    for name, net in nets.items():
        paths[name] = str(root / ('%s.safetensors' % name))
        save_timm(net, paths[name])
    return dict(root=root, nets=nets, paths=paths)


# -- timm ----------------------------------------------------------------------------------

def test_timm_se_resnet50_round_trip_keys_and_output(tmp_path):
    from safetensors.numpy import load_file
    src = randomize(cmpese.get_model('se_resnet50', **BIAS))
    path = str(tmp_path / 'seresnet50.safetensors')
    save_timm(src, path)
    state = load_file(path)
    # timm's names and layouts: SE FCs as biased 1x1 convolutions, PyTorch BN fields
    assert state['conv1.weight'].shape == (64, 3, 7, 7)
    assert state['layer1.0.se.fc1.weight'].shape == (16, 256, 1, 1)
    assert state['layer4.2.se.fc2.bias'].shape == (2048,)
    assert state['layer3.0.downsample.0.weight'].shape == (1024, 512, 1, 1)
    assert 'layer3.1.downsample.0.weight' not in state
    assert state['layer2.0.downsample.1.running_var'].shape == (512,)
    assert state['bn1.num_batches_tracked'].dtype == np.int64
    assert {'layer1.0.bn1.weight', 'layer1.0.bn1.bias', 'fc.weight', 'fc.bias'} <= set(state)
    assert not any(k.startswith('features') or 'gamma' in k for k in state)

    dst = cmpese.get_model('se_resnet50', **BIAS)
    report = load_pretrained(dst, path)
    assert_same_output(src, dst)
    assert report.source == 'timm' and not report.new
    assert len(report.loaded) == len(dst.collect_params().keys())
    assert {e.reason for e in report.skipped} == {"PyTorch's count of BN updates; MXNet keeps none"}
    assert len(report.skipped) == 53      # one per BatchNorm
    assert 'seresnet50' in str(report)


def test_timm_basic_blocks_round_trip(files, tmp_path):
    src = randomize(get_resnet_imagenet(18, unit='se', **BIAS), 3)
    path = str(tmp_path / 'seresnet18.safetensors')
    save_timm(src, path)
    dst = get_resnet_imagenet(18, unit='se', **BIAS)
    load_pretrained(dst, path, source='timm')
    assert_same_output(src, dst)
    dst = get_resnet_imagenet(18)
    report = load_pretrained(dst, files['paths']['resnet18'])
    assert_same_output(files['nets']['resnet18'], dst)
    assert len(report.loaded) == len(dst.collect_params().keys()) and not report.new
    # a float16 checkpoint (saved from DataParallel: 'module.' keys) is cast, and says so
    from safetensors.numpy import save_file
    half = {'module.' + k: (v.astype(np.float16) if v.dtype == np.float32 else v)
            for k, v in timm_state(files['nets']['resnet18']).items()}
    path = str(tmp_path / 'half.safetensors')
    save_file(half, path)
    dst = get_resnet_imagenet(18)
    report = load_pretrained(dst, path)
    assert any('float16' in n for n in report.notes)
    np.testing.assert_array_equal(dst.features[0].weight.data().asnumpy(),
                                  half['module.conv1.weight'].astype(np.float32))


def test_timm_resnet50_into_resnet50_and_se_resnet50(files):
    path, src = files['paths']['resnet50'], files['nets']['resnet50']
    dst = cmpese.get_model('resnet50')
    load_pretrained(dst, path)
    assert_same_output(src, dst)

    se = cmpese.get_model('se_resnet50')
    se.initialize()
    before = snapshot(se)
    report = load_pretrained(se, path)
    after, file_values = snapshot(se), snapshot(src)
    units = [k for k in after if '.unit.' in k]
    assert len(units) == 32 and sorted(report.new_names()) == sorted(units)
    for k in after:       # same structural names in both nets, units aside
        expected = before[k] if k in units else file_values[k]
        np.testing.assert_array_equal(after[k], expected, err_msg=k)
    assert all(e.reason.startswith('SE unit: not in the file') for e in report.new)


def test_backbone_only_into_cmpe_se_resnet50_from_timm(files):
    """A post-activation file into the pre-activation CMPE-SE-ResNet-50: every convolution
    and the BNs between them load, the units stay as they were, the pre-activation BNs are
    new and said so."""
    path = files['paths']['resnet50']
    net = cmpese.get_model('cmpe_se_resnet50_1x1', classes=10)
    net.initialize()
    before = snapshot(net)
    report = load_pretrained(net, path, backbone_only=True)
    after = snapshot(net)
    from safetensors.numpy import load_file
    state = load_file(path)
    layout = target_layout(net)
    for (role, field), param in layout.entries.items():
        key = layout.keys[(role, field)]
        if part_of(role) == 'unit' or role == 'fc' or role.endswith(
                ('preact', 'input_bn', 'final_bn')):
            np.testing.assert_array_equal(after[key], before[key], err_msg=key)
        else:
            name = {'gamma': 'weight', 'beta': 'bias'}.get(field, field)
            tkey = {'stem.conv': 'conv1', 'stem.bn': 'bn1'}.get(role, role.replace(
                'downsample.conv', 'downsample.0'))
            np.testing.assert_array_equal(after[key], state['%s.%s' % (tkey, name)],
                                          err_msg=key)
    assert len(report.loaded) == 53 + 4 + 16 * 2 * 4      # convs, stem BN, inner BNs
    reasons = {e.reason.split(':')[0] for e in report.new}
    assert reasons == {'classifier', 'pre-activation BN', 'PairViewUnit unit'}
    assert any('bn3' in e.source and 'last convolution' in e.reason for e in report.skipped)
    assert report.notes and 'pre-activation' in report.notes[0]


# -- GluonCV -------------------------------------------------------------------------------

@pytest.mark.parametrize('depth', [50, 101])
def test_gluoncv_v1b_is_our_graph_and_loads_back(depth, tmp_path):
    ours = randomize(cmpese.get_model('resnet%d' % depth), depth)
    theirs = gluoncv_net('resnet%d_v1b' % depth)
    copy_into_gluoncv(ours, theirs)
    assert_same_output(ours, theirs)            # the same graph
    if depth == 101:
        return                                  # the file path is the same as ResNet-50's
    path = str(tmp_path / ('resnet%d_v1b.params' % depth))
    theirs.save_parameters(path)
    fresh = cmpese.get_model('resnet%d' % depth)
    report = load_pretrained(fresh, path)
    assert_same_output(theirs, fresh)
    assert report.source == 'gluoncv' and 'resnet%d_v1b' % depth in report.source_description
    assert len(report.loaded) == len(fresh.collect_params().keys()) and not report.new \
        and not report.skipped


def test_gluoncv_old_names_basic_v1_and_se_v2(tmp_path):
    # a file saved by parameter names (before save_parameters): found by GluonCV's nets
    ours = randomize(get_resnet_imagenet(18), 5)
    theirs = gluoncv_net('resnet18_v1b')
    copy_into_gluoncv(ours, theirs)
    old = str(tmp_path / 'old.params')
    theirs.collect_params().save(old, strip_prefix=theirs.prefix)
    assert not any('.' in k for k in mx.nd.load(old))
    fresh = get_resnet_imagenet(18)
    report = load_pretrained(fresh, old, source='gluoncv')
    assert_same_output(ours, fresh)
    assert 'resnet18_v1b' in report.source_description
    # resnet18_v1 (basic blocks: the v1b graph under features.* names), copied in order
    v1 = gluoncv_net('resnet18_v1')
    for p, q in zip(ours.collect_params().values(), v1.collect_params().values()):
        assert p.shape == q.shape
        q.set_data(p.data())
    path = str(tmp_path / 'resnet18_v1.params')
    v1.save_parameters(path)
    fresh = get_resnet_imagenet(18)
    load_pretrained(fresh, path)
    assert_same_output(v1, fresh)
    # se_resnet18_v2: the pre-activation SE graph
    ours = randomize(get_resnet_imagenet(18, unit='se', version=2), 6)
    theirs = gluoncv_net('se_resnet18_v2')
    copy_into_gluoncv(ours, theirs)
    assert_same_output(ours, theirs)
    path = str(tmp_path / 'se_resnet18_v2.params')
    theirs.save_parameters(path)
    fresh = get_resnet_imagenet(18, unit='se', version=2)
    report = load_pretrained(fresh, path)
    assert_same_output(theirs, fresh)
    assert not report.new and not report.skipped


def test_backbone_only_into_cmpe_se_resnet50_from_gluoncv_v2(tmp_path):
    """A pre-activation file (GluonCV resnet50_v2) initializes every backbone parameter of
    CMPE-SE-ResNet-50 and leaves its units untouched."""
    ours = randomize(get_resnet_imagenet(50, version=2), 7)
    theirs = gluoncv_net('resnet50_v2')
    copy_into_gluoncv(ours, theirs)
    path = str(tmp_path / 'resnet50_v2.params')
    theirs.save_parameters(path)
    net = cmpese.get_model('cmpe_se_resnet50_1x1')
    net.initialize()
    before, file_values = snapshot(net), snapshot(ours)
    report = load_pretrained(net, path, backbone_only=True)
    after = snapshot(net)
    units = [k for k in after if '.unit.' in k]
    head = ['output.weight', 'output.bias']
    assert len(units) == 16 * 7
    assert sorted(report.new_names()) == sorted(units + head)
    for k in after:
        expected = before[k] if k in units or k in head else file_values[k]
        np.testing.assert_array_equal(after[k], expected, err_msg=k)
    assert len(report.loaded) == len(after) - len(units) - 2
    assert {e.reason for e in report.skipped} == {'classifier: backbone only'}


# -- cmpese's own files --------------------------------------------------------------------

def test_cmpese_files_backbone_into_ini_and_units_into_same_unit(tmp_path):
    se = randomize(get_resnet_imagenet(18, unit='se'), 8)
    path = str(tmp_path / 'se18.params')
    se.save_parameters(path)
    ini = get_resnet_imagenet(18, unit='ini_mix_5_d')
    ini.initialize()
    before = snapshot(ini)
    report = load_pretrained(ini, path, backbone_only=True)
    after, file_values = snapshot(ini), snapshot(se)
    for k in after:
        if '.unit.' in k or k.startswith('output'):
            np.testing.assert_array_equal(after[k], before[k], err_msg=k)
        else:
            np.testing.assert_array_equal(after[k], file_values[k], err_msg=k)
    assert report.source == 'cmpese'
    assert {e.reason.split(':')[0] for e in report.new} == {'classifier',
                                                            'InnerImagingUnit unit'}
    # a CMPE-SE file into the same model with another class count: units load, head new
    cmpe = randomize(get_resnet_imagenet(18, unit='cmpe_se_1x1', version=2), 9)
    path = str(tmp_path / 'cmpe18.params')
    cmpe.save_parameters(path)
    net = get_resnet_imagenet(18, unit='cmpe_se_1x1', version=2, classes=10)
    report = load_pretrained(net, path)
    assert sorted(report.new_names()) == ['output.bias', 'output.weight']
    assert any(e.part == 'unit' for e in report.loaded)
    feats = [mx.nd.array(v) for v in (net.features(image()), cmpe.features(image()))]
    np.testing.assert_allclose(feats[0].asnumpy(), feats[1].asnumpy(), rtol=1e-5, atol=1e-6)


# -- the command and its refusals ----------------------------------------------------------

def _run(argv, capsys):
    code = errors.run(convert.main, argv, prog='convert')
    out = capsys.readouterr()
    return code, out.out, out.err


def test_command_writes_a_loadable_params(files, tmp_path, capsys):
    out = str(tmp_path / 'r18.params')
    code, text, err = _run([files['paths']['resnet18'], '--model', 'resnet18', '--out', out],
                           capsys)
    assert code == 0, err
    assert 'loaded:  ' in text and 'wrote:   ' in text
    net = get_resnet_imagenet(18)
    net.load_parameters(out)
    assert_same_output(files['nets']['resnet18'], net)


def _refusals(files, root):
    """(argv, words the one line must hold) for each kind of file that does not fit."""
    from safetensors.numpy import save_file
    r18 = files['paths']['resnet18']
    paths = {}

    def write(name, data):
        paths[name] = str(root / name)
        with open(paths[name], 'wb') as f:
            f.write(data)
    write('notes.txt', b'not weights at all\n')
    write('model.pth', b'PK\x03\x04' + b'\0' * 64)
    with open(r18, 'rb') as f:
        data = f.read()
    write('cut.safetensors', data[:len(data) // 3])
    write('cuthead.safetensors', data[:60])
    mx.nd.save(str(root / 'ok.params'), {'conv1.weight': mx.nd.zeros((64, 3, 7, 7))})
    with open(str(root / 'ok.params'), 'rb') as f:
        write('cut.params', f.read()[:200])
    paths['vit'] = str(root / 'vit.safetensors')
    save_file({'blocks.0.attn.qkv.weight': np.zeros((6, 2), np.float32)}, paths['vit'])
    state = timm_state(files['nets']['resnet18'])
    deep = {('conv1.0.weight' if k == 'conv1.weight' else k): v for k, v in state.items()}
    paths['deep'] = str(root / 'resnet18d.safetensors')
    save_file(deep, paths['deep'])
    se8 = randomize(get_resnet_imagenet(18, unit='se', reduction=8), 4)
    paths['se8'] = str(root / 'se8.safetensors')
    save_timm(se8, paths['se8'])
    se_bias = randomize(get_resnet_imagenet(18, unit='se', **BIAS), 4)
    paths['se_bias'] = str(root / 'se_bias.safetensors')
    save_timm(se_bias, paths['se_bias'])
    v1 = gluoncv_net('se_resnet50_v1')
    paths['se_v1'] = str(root / 'se_resnet50_v1.params')
    v1.save_parameters(paths['se_v1'])
    paths['se_v1_old'] = str(root / 'se_resnet50_v1_old.params')
    v1.collect_params().save(paths['se_v1_old'], strip_prefix=v1.prefix)
    header = b'{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}'
    write('bf16.safetensors', len(header).to_bytes(8, 'little') + header + b'\x80?\x00@')
    return [
        ([paths['notes.txt'], '--model', 'resnet18'], ['neither a safetensors', 'MXNet']),
        ([paths['model.pth'], '--model', 'resnet18'], ['PyTorch checkpoint', 'safetensors']),
        ([paths['cut.safetensors'], '--model', 'resnet18'], ['damaged safetensors']),
        ([paths['cuthead.safetensors'], '--model', 'resnet18'], ['damaged safetensors']),
        ([paths['cut.params'], '--model', 'resnet18'], ['damaged MXNet .params']),
        ([paths['bf16.safetensors'], '--model', 'resnet18'], ['bfloat16']),
        ([paths['vit'], '--model', 'resnet18'], ['blocks.0.attn.qkv.weight', 'not part of']),
        ([paths['deep'], '--model', 'resnet18'], ['deep stem', '7x7']),
        ([r18, '--model', 'resnet50'], ['ResNet-18', 'ResNet-50', 'depth']),
        ([r18, '--model', 'cmpe_se_resnet50_1x1'], ['ResNet-18', 'ResNet-50']),
        ([files['paths']['resnet50'], '--model', 'cmpe_se_resnet50_1x1'],
         ['post-activation', 'pre-activation', '--backbone-only']),
        ([paths['se8'], '--model', 'se_resnet18'], ['layer1.0.se.fc1.weight', '(8, 64)',
                                                    '(4, 64)']),
        ([paths['se_bias'], '--model', 'se_resnet18'], ['biases', 'use_bias']),
        ([paths['se_v1'], '--model', 'se_resnet50'], ['se_resnet50_v1', 'stride on the first '
                                                      '1x1', 'biases', 'resnet50_v1b']),
        ([paths['se_v1_old'], '--model', 'se_resnet50'], ['se_resnet50_v1', 'stride']),
        ([r18, '--model', 'resnet18', '--source', 'gluoncv'], ['not an MXNet .params']),
        ([r18, '--model', 'no_such_net'], ['--model no_such_net', 'unknown model']),
        ([str(root / 'missing.safetensors'), '--model', 'resnet18'], ['does not exist']),
        ([r18, '--model', 'resnet18', '--out', r18], ['--out', 'input file']),
    ]


def test_every_refusal_is_one_line(files, tmp_path, capsys):
    cases = _refusals(files, tmp_path)
    for argv, words in cases:
        code, text, err = _run(argv + ['--dry-run'], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and 'Traceback' not in err, (argv, err)
        assert lines[0].startswith('convert: error: '), lines
        for w in words:
            assert w in lines[0], (w, lines[0])


def test_api_refusals_are_user_errors(files):
    """The API raises the same one-line errors (cmpese.errors.UserError subclasses)."""
    with pytest.raises(DepthMismatch):
        load_pretrained(cmpese.get_model('resnet101'), files['paths']['resnet50'])
    with pytest.raises(LayoutMismatch):
        load_pretrained(cmpese.get_model('cmpe_se_resnet50_double_fc'),
                        files['paths']['resnet50'])
    with pytest.raises(UnsupportedLayout, match='ImageNet ResNets'):
        load_pretrained(cmpese.get_model('preresnet20'), files['paths']['resnet18'])
    with pytest.raises(NotAWeightsFile, match='unknown source'):
        load_pretrained(get_resnet_imagenet(18), files['paths']['resnet18'], source='torch')
    for cls in (DepthMismatch, LayoutMismatch, ShapeMismatch, UnsupportedLayout,
                NotAWeightsFile):
        assert issubclass(cls, WeightsError) and issubclass(cls, errors.UserError)


def test_tools_alias_runs_the_command(files):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, '-m', 'cmpese.tools.convert',
                           files['paths']['resnet18'], '--model', 'resnet50', '--dry-run'],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith('python -m cmpese.tools.convert: error: ') and 'ResNet-18' in lines[0]
