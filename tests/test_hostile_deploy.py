"""Hostile input to the deployment side gets one line (issue 20): export, deploy and evaluate's
model loading through cmpese.errors.run (exit code 2, one line naming the flag or file and
what to do, no traceback, nothing written), the Predictor API (a ValueError, InputError for
images, whose message says what was expected), and GluonCV's get_model after import cmpese
(the closest cmpese names, in one line).

The files are real: a tiny CMPE-SE WRN exported once per module with its data config and
ONNX file (cmpese.deploy.export), then damaged copies of them (truncated, empty, garbage,
another model's, a kill's leftovers). The cases already covered elsewhere are not repeated
(test_evaluate: evaluate --symbol with a truncated .params or a symbol that is not JSON, --json
under a file; test_export: --prefix under a file, a garbage --params; test_predict_raw:
a garbage .onnx, the basic Predictor input checks; test_deploy: deploy --input-size on the
mxnet runtime, unknown runtimes of the Predictor)."""
import os
import shutil
import subprocess
import tempfile

import mxnet as mx
import numpy as np
import pytest

import cmpese
from cmpese import errors
from cmpese.cli import deploy as deploy_cli
from cmpese.cli import evaluate as evaluate_cli
from cmpese.cli import export as export_cli
from cmpese.data.config import dataset_config
from cmpese.deploy.export import export_model, export_onnx
from cmpese.deploy.predictor import InputError, Predictor
from cmpese.errors import UserError
from model_checks import init_net

pytest.importorskip('onnxruntime')

TINY = 'cmpe_se_wrn10_1_1x1'
PROGS = {export_cli: 'export', deploy_cli: 'deploy', evaluate_cli: 'evaluate'}


@pytest.fixture(scope='module')
def made(tmp_path_factory):
    """One tiny export (symbol, params, data config, ONNX), the training-style .params of the
    same network, and another model's exported and training-style files."""
    root = tmp_path_factory.mktemp('hostile_deploy')
    cfg = dataset_config('digits', [78.0] * 3, [82.0] * 3)
    net = init_net(cmpese.get_model(TINY))
    prefix = str(root / 'm')
    sym, params = export_model(net, prefix, data_config=cfg)
    export_onnx(sym, params, prefix + '.onnx', data_config=cfg)
    net.save_parameters(str(root / 'best.params'))
    other = init_net(cmpese.get_model('preresnet20'))
    other.save_parameters(str(root / 'other.params'))
    export_model(other, str(root / 'other'))
    five = init_net(cmpese.get_model(TINY, classes=5))
    export_model(five, str(root / 'five'))
    return dict(root=root, prefix=prefix, cfg=cfg)


def _copy_export(made, folder, name='m', symbol=None, params=None, data=None):
    """A copy of the export under ``folder/name``; ``symbol`` / ``params`` / ``data`` replace
    a file's bytes (False: leave the file out)."""
    src, dst = made['prefix'], str(folder / name)
    for suffix, replace in (('-symbol.json', symbol), ('-0000.params', params),
                            ('-data.json', data)):
        if replace is False:
            continue
        if replace is None:
            shutil.copy(src + suffix, dst + suffix)
        else:
            with open(dst + suffix, 'wb') as f:
                f.write(replace)
    return dst


def _half(path):
    data = open(path, 'rb').read()
    return data[:len(data) // 2]


def _tree(folder):
    return sorted(os.path.relpath(os.path.join(d, f), str(folder))
                  for d, _, files in os.walk(str(folder)) for f in files)


def _command(module, argv, capsys):
    """(exit code, the one error line) of a command run through errors.run."""
    prog = PROGS[module]
    capsys.readouterr()
    code = errors.run(module.main, [str(a) for a in argv], prog=prog)
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    mine = [line for line in lines if line.startswith(prog + ': ')]
    assert 'Traceback' not in err and len(mine) == 1 and len(lines) <= 2, err
    return code, mine[0]


# ---------------------------------------------------------------- damaged and foreign files

def _other_classes_params(made):
    """The 5-class export's parameters renamed to the 10-class symbol's instance prefix: the
    same names, one shape that does not fit (as two exports made in fresh processes are)."""
    loaded = mx.nd.load(made['prefix'] + '-0000.params')
    ours = sorted(loaded)[0].split(':', 1)[1].split('_')[0]
    five = mx.nd.load(str(made['root'] / 'five-0000.params'))
    theirs = sorted(five)[0].split(':', 1)[1].split('_')[0]
    path = str(made['root'] / 'renamed.params')
    mx.nd.save(path, {k.replace(theirs, ours): v for k, v in five.items()})
    return open(path, 'rb').read()


def _file_case(case, made, tmp):
    """(command module, argv, words the line must hold) of a damaged-file case."""
    root, prefix = made['root'], made['prefix']
    params = prefix + '-0000.params'
    digits = ['--dataset', 'digits']
    if case == 'evaluate truncated best.params':
        (tmp / 'cut.params').write_bytes(_half(str(root / 'best.params')))
        return evaluate_cli, ['--model', TINY, '--params', tmp / 'cut.params'] + digits, \
            ['--params', 'cut.params', 'not an MXNet parameter file']
    if case == 'export truncated best.params':
        (tmp / 'cut.params').write_bytes(_half(str(root / 'best.params')))
        return export_cli, ['--model', TINY, '--params', tmp / 'cut.params', '--prefix',
                            tmp / 'out' / 'm'], ['--params', 'cut.params',
                                                 'not an MXNet parameter file']
    if case.startswith('deploy truncated export params'):
        damaged = _copy_export(made, tmp, params=_half(params))
        return deploy_cli, [damaged, '--runtime', case.split()[-1], '--repeat', 1], \
            ['m-0000.params', 'not a complete MXNet parameter file', 'export the model again']
    if case == 'evaluate 0-byte params':
        (tmp / 'zero.params').write_bytes(b'')
        return evaluate_cli, ['--model', TINY, '--params', tmp / 'zero.params'] + digits, \
            ['--params', 'zero.params', 'not an MXNet parameter file']
    if case == 'export 0-byte params':
        (tmp / 'zero.params').write_bytes(b'')
        return export_cli, ['--model', TINY, '--params', tmp / 'zero.params', '--prefix',
                            tmp / 'out' / 'm'], ['--params', 'zero.params',
                                                 'not an MXNet parameter file']
    if case == 'deploy 0-byte export params':
        damaged = _copy_export(made, tmp, params=b'')
        return deploy_cli, [damaged, '--runtime', 'mxnet'], \
            ['m-0000.params', 'empty (0 bytes)', 'export the model again']
    if case == 'evaluate --model with another model\'s params':
        return evaluate_cli, ['--model', TINY, '--params', root / 'other.params'] + digits, \
            ['--params', 'other.params', 'does not fit this model', 'parameters missing',
             'Pass the --model']
    if case.startswith('deploy another model\'s export params'):
        damaged = _copy_export(made, tmp, params=open(str(root / 'other-0000.params'),
                                                      'rb').read())
        return deploy_cli, [damaged, '--runtime', case.split()[-1], '--repeat', 1], \
            ['m-0000.params', 'does not belong to', 'm-symbol.json', 'parameters of the symbol '
             'missing', 'give the .params exported with it']
    if case == 'evaluate --symbol with another model\'s params':
        return evaluate_cli, ['--symbol', prefix + '-symbol.json', '--params',
                              root / 'other-0000.params'] + digits, \
            ['--params', 'other-0000.params', 'does not belong to --symbol', 'missing']
    if case == 'evaluate --symbol with another class count':
        damaged = _copy_export(made, tmp, params=_other_classes_params(made))
        return evaluate_cli, ['--symbol', damaged + '-symbol.json'] + digits, \
            ['--params', 'does not belong to', 'shapes that do not fit it', '[5,64]']
    if case == 'deploy another class count':
        damaged = _copy_export(made, tmp, params=_other_classes_params(made))
        return deploy_cli, [damaged, '--runtime', 'mxnet'], \
            ['m-0000.params', 'shapes that do not fit it', '[5,64]']
    if case == 'evaluate --symbol with a training run\'s params':
        return evaluate_cli, ['--symbol', prefix + '-symbol.json', '--params',
                              root / 'best.params'] + digits, \
            ['--params', 'best.params', 'not the parameter file of an export', '--model NAME']
    if case.startswith('deploy symbol that is not JSON'):
        damaged = _copy_export(made, tmp, symbol=b'this is { not json')
        return deploy_cli, [damaged, '--runtime', case.split()[-1]], \
            ['m-symbol.json', 'not an MXNet symbol JSON', 'export the model again']
    if case.startswith('deploy JSON that is not a symbol'):
        damaged = _copy_export(made, tmp, symbol=b'{"nodes": "x", "heads": 3}')
        return deploy_cli, [damaged, '--runtime', case.split()[-1]], \
            ['m-symbol.json', 'not an MXNet symbol JSON', 'no "nodes" list']
    if case == 'evaluate JSON that is not a symbol':
        damaged = _copy_export(made, tmp, symbol=b'[1, 2, 3]')
        return evaluate_cli, ['--symbol', damaged + '-symbol.json'] + digits, \
            ['--symbol', 'm-symbol.json', 'not an MXNet symbol JSON']
    if case == 'deploy truncated .onnx':
        (tmp / 'cut.onnx').write_bytes(_half(prefix + '.onnx'))
        return deploy_cli, [tmp / 'cut.onnx'], ['cut.onnx', 'not a loadable ONNX model',
                                                '--onnx']
    if case == 'deploy -symbol.json without -0000.params':
        damaged = _copy_export(made, tmp, params=False)
        return deploy_cli, [damaged], ['m-symbol.json exists but', 'm-0000.params does not',
                                       'export the model again']
    if case == 'evaluate -symbol.json without -0000.params':
        damaged = _copy_export(made, tmp, params=False)
        return evaluate_cli, ['--symbol', damaged + '-symbol.json'] + digits, \
            ['--params', 'm-0000.params does not exist']
    if case == 'deploy garbage -data.json':
        damaged = _copy_export(made, tmp, data=b'garbage{')
        return deploy_cli, [damaged, '--runtime', 'mxnet'], \
            ['m-data.json', 'not a readable data config']
    if case == 'evaluate garbage -data.json':
        damaged = _copy_export(made, tmp, data=b'{"input_size": 32}')
        return evaluate_cli, ['--symbol', damaged + '-symbol.json'] + digits, \
            ['m-data.json', 'not a readable data config']
    raise AssertionError(case)


FILE_CASES = [
    'evaluate truncated best.params', 'export truncated best.params',
    'deploy truncated export params mxnet', 'deploy truncated export params onnxruntime',
    'evaluate 0-byte params', 'export 0-byte params', 'deploy 0-byte export params',
    'evaluate --model with another model\'s params',
    'deploy another model\'s export params mxnet',
    'deploy another model\'s export params onnxruntime',
    'evaluate --symbol with another model\'s params',
    'evaluate --symbol with another class count', 'deploy another class count',
    'evaluate --symbol with a training run\'s params',
    'deploy symbol that is not JSON mxnet', 'deploy symbol that is not JSON onnxruntime',
    'deploy JSON that is not a symbol mxnet', 'deploy JSON that is not a symbol onnxruntime',
    'evaluate JSON that is not a symbol', 'deploy truncated .onnx',
    'deploy -symbol.json without -0000.params', 'evaluate -symbol.json without -0000.params',
    'deploy garbage -data.json', 'evaluate garbage -data.json',
]


@pytest.mark.parametrize('case', FILE_CASES)
def test_a_damaged_or_foreign_file_is_one_line_naming_it(case, made, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path / 'tmp'))   # the ONNX conversion's
    (tmp_path / 'tmp').mkdir()
    module, argv, words = _file_case(case, made, tmp_path)
    before = _tree(tmp_path)
    code, line = _command(module, argv, capsys)
    assert code == 2, line
    for word in words:
        assert word in line, line
    # a damaged file's fault is not blamed on the model flags, and no traceback hides in
    # the message
    if 'truncated' in case or '0-byte' in case:
        assert '--model' not in line and '--classes' not in line, line
    assert 'traceback' not in line.lower(), line
    assert _tree(tmp_path) == before       # nothing written, no temporary file left


# ---------------------------------------------------------------- flags

def _flag_case(case, made, tmp):
    prefix = made['prefix']
    digits = ['--dataset', 'digits']
    model = ['--model', TINY, '--params', made['root'] / 'best.params']
    return {
        'deploy --input-size 28 of a 32 export (onnxruntime)': (
            deploy_cli, [prefix + '.onnx', '--input-size', 28, '--repeat', 1],
            ['--input-size 28', 'm.onnx was exported for 32x32', 'give --input-size 32']),
        'evaluate --input-size 28 of a 32 export': (
            evaluate_cli, ['--symbol', prefix + '-symbol.json', '--input-size', 28] + digits,
            ['--input-size 28', 'made for 32x32', 'leave --input-size out']),
        'evaluate --input-size 40 on --dataset digits': (
            evaluate_cli, model + digits + ['--input-size', 40],
            ['--input-size 40', '--dataset digits', 'its own 32x32', 'leave --input-size out']),
        'evaluate --input-size 0': (
            evaluate_cli, model + digits + ['--input-size', 0],
            ['--input-size must be a positive integer, got 0']),
        'evaluate --batch-size -4': (
            evaluate_cli, model + digits + ['--batch-size', -4],
            ['--batch-size must be at least 1, got -4']),
        'deploy --batch 0': (deploy_cli, [prefix, '--batch', 0],
                             ['--batch must be a positive integer, got 0', '--batch 8']),
        'deploy --batch -2': (deploy_cli, [prefix, '--batch', -2],
                              ['--batch must be a positive integer, got -2']),
        'deploy --repeat 0': (deploy_cli, [prefix, '--repeat', 0],
                              ['--repeat must be a positive integer, got 0']),
        'deploy --threads -1': (deploy_cli, [prefix, '--threads', -1],
                                ['--threads must be a positive integer', "runtime's default"]),
        'deploy --runtime tensorrt': (deploy_cli, [prefix, '--runtime', 'tensorrt'],
                                      ['--runtime', "invalid choice: 'tensorrt'", 'onnxruntime']),
        'export --prefix ending in a separator': (
            export_cli, ['--model', TINY, '--prefix', str(tmp / 'out') + os.sep],
            ['--prefix', 'ends in a directory separator', 'add a name after it']),
        'export garbage --data-config': (
            export_cli, ['--model', TINY, '--prefix', tmp / 'out' / 'm', '--data-config',
                         tmp / 'cfg.json'], ['cfg.json', 'not a readable data config']),
        'evaluate --json that is a directory': (
            evaluate_cli, model + digits + ['--json', tmp / 'out'],
            ['--json', 'is a directory', 'the path of a file']),
    }[case]


FLAG_CASES = ['deploy --input-size 28 of a 32 export (onnxruntime)',
              'evaluate --input-size 28 of a 32 export',
              'evaluate --input-size 40 on --dataset digits', 'evaluate --input-size 0',
              'evaluate --batch-size -4', 'deploy --batch 0', 'deploy --batch -2',
              'deploy --repeat 0', 'deploy --threads -1', 'deploy --runtime tensorrt',
              'export --prefix ending in a separator', 'export garbage --data-config',
              'evaluate --json that is a directory']


@pytest.mark.parametrize('case', FLAG_CASES)
def test_a_bad_flag_is_one_line_naming_it(case, made, tmp_path, capsys):
    (tmp_path / 'cfg.json').write_text('{"mean": [1, 2')
    if case.startswith('evaluate --json'):
        (tmp_path / 'out').mkdir()
    module, argv, words = _flag_case(case, made, tmp_path)
    before = _tree(tmp_path)
    code, line = _command(module, argv, capsys)
    assert code == 2, line
    for word in words:
        assert word in line, line
    assert _tree(tmp_path) == before and (case.startswith('evaluate --json') or
                                          not (tmp_path / 'out').exists())


# ---------------------------------------------------------------- an export killed with -9

def test_an_export_killed_with_sigkill_is_named_then_replaced_whole(made, tmp_path, capsys):
    """What a kill -9 in the middle of an export leaves (its temporary files, and the empty
    final file an export that was not atomic left): deploy and evaluate name the empty file,
    and the next export of the prefix removes the dead process's temporaries (not those of
    a running one) and writes whole files that deploy runs."""
    dead = subprocess.Popen(['true'])
    dead.wait()
    out = tmp_path / 'out'
    out.mkdir()
    prefix = str(out / 'm')
    stale = ['m.tmp-%d-symbol.json' % dead.pid, 'm.tmp-%d-0000.params' % dead.pid,
             'm-data.json.tmp-%d' % dead.pid, 'm.onnx.tmp-%d' % dead.pid]
    alive = 'm.tmp-%d-0000.params' % os.getppid()       # an export still running
    for name in stale + [alive]:
        (out / name).write_bytes(b'half a file')
    shutil.copy(made['prefix'] + '-symbol.json', prefix + '-symbol.json')
    (out / 'm-0000.params').write_bytes(b'')
    code, line = _command(deploy_cli, [prefix, '--runtime', 'mxnet'], capsys)
    assert code == 2 and 'm-0000.params' in line and 'empty (0 bytes)' in line, line
    code, line = _command(evaluate_cli, ['--symbol', prefix + '-symbol.json', '--dataset',
                                         'digits'], capsys)
    assert code == 2 and 'empty (0 bytes)' in line and 'export the model again' in line, line
    assert errors.run(export_cli.main, ['--model', TINY, '--prefix', prefix, '--params',
                                        str(made['root'] / 'best.params')], prog='export') == 0
    assert sorted(os.listdir(str(out))) == sorted(['m-0000.params', 'm-symbol.json', alive])
    loaded = mx.nd.load(prefix + '-0000.params')
    assert len(loaded) == len(mx.nd.load(made['prefix'] + '-0000.params'))
    capsys.readouterr()
    assert errors.run(deploy_cli.main, [prefix, '--runtime', 'mxnet', '--repeat', '1'],
                      prog='deploy') == 0
    assert 'median' in capsys.readouterr().out


# ---------------------------------------------------------------- the Predictor API

@pytest.fixture(scope='module')
def predictors(made):
    return {runtime: Predictor(made['prefix'], runtime) for runtime in ('mxnet', 'onnxruntime')}


def _good(n=2):
    return np.random.RandomState(0).standard_normal((n, 3, 32, 32)).astype(np.float32)


def _nonfinite(value):
    x = _good()
    x[1, 2, 3, 4] = value
    return x


RAW = np.zeros((2, 32, 32, 3), np.uint8)
API_CASES = {
    # case: (runtime, call(predictor, tmp), InputError's words)
    'NHWC float batch': ('mxnet', lambda p, t: p.logits(_good().transpose(0, 2, 3, 1)),
                         r'expected float32 \(N, 3, 32, 32\), got shape \(2, 32, 32, 3\)'),
    '2-D array': ('onnxruntime', lambda p, t: p.logits(_good()[0, 0]),
                  r'expected float32 \(N, 3, 32, 32\), got shape \(32, 32\)'),
    '5-D array': ('mxnet', lambda p, t: p.logits(_good()[None]),
                  r'got shape \(1, 2, 3, 32, 32\)'),
    '4 channels': ('onnxruntime', lambda p, t: p.logits(np.concatenate([_good()] * 2, 1)[:, :4]),
                   r'expected float32 \(N, 3, 32, 32\), got shape \(2, 4, 32, 32\)'),
    'dtype object': ('mxnet', lambda p, t: p.logits(_good().astype(object)),
                     r'expected float32 .*got dtype object'),
    'dtype str': ('onnxruntime', lambda p, t: p.logits(_good().astype(str)),
                  r'expected float32 .*got dtype <U'),
    'dtype bool': ('mxnet', lambda p, t: p.logits(_good() > 0), 'got dtype bool'),
    'empty list': ('onnxruntime', lambda p, t: p.logits([]),
                   r'empty batch .*expected float32 \(N, 3, 32, 32\) with N >= 1'),
    'empty array (onnxruntime)': ('onnxruntime', lambda p, t: p.logits(_good()[:0]),
                                  r'empty batch \(shape \(0, 3, 32, 32\)\)'),
    'empty raw uint8 batch': ('mxnet', lambda p, t: p(RAW[:0]),
                              'no images: expected at least one image'),
    'NaN (mxnet)': ('mxnet', lambda p, t: p.logits(_nonfinite(np.nan)),
                    r'1 non-finite value\(s\) \(NaN or inf\).*expected finite float32'),
    'inf (onnxruntime)': ('onnxruntime', lambda p, t: p.logits(_nonfinite(np.inf)),
                          r'1 non-finite value\(s\)'),
    'NaN through predict (onnxruntime)': (
        'onnxruntime', lambda p, t: p.predict(_nonfinite(np.nan), normalized=True),
        'non-finite'),
    'input size 28 (mxnet)': ('mxnet', lambda p, t: p.logits(np.zeros((1, 3, 28, 28),
                                                                      np.float32)),
                              'the export was made for 32x32 inputs, got 28x28'),
    'input size 40 (onnxruntime)': ('onnxruntime', lambda p, t: p.logits(
        np.zeros((1, 3, 40, 40), np.float32)), 'made for 32x32 inputs, got 40x40'),
    'uint8 on the normalized path (onnxruntime)': (
        'onnxruntime', lambda p, t: p.logits(np.zeros((1, 3, 32, 32), np.uint8)),
        'looks like raw pixels: expected float32'),
    'a path that does not exist': ('onnxruntime', lambda p, t: p(str(t / 'nope.png')),
                                   r'cannot read image .*nope\.png.*No such file'),
    'a file that is not an image': ('mxnet', lambda p, t: p([str(t / 'notes.txt')]),
                                    r'cannot read image .*notes\.txt.*cannot identify'),
    'top_k 0': ('onnxruntime', lambda p, t: p.predict(RAW, top_k=0),
                'top_k must be a positive integer .*got 0'),
    'top_k larger than the class count': (
        'mxnet', lambda p, t: p.predict(RAW, top_k=11),
        "top_k 11 is more than the model's 10 classes: give top_k from 1 to 10"),
    'batch_size 0': ('mxnet', lambda p, t: p.predict(RAW, batch_size=0),
                     'batch_size must be a positive integer, got 0'),
    'labels of another length': ('onnxruntime', lambda p, t: p.accuracy(RAW, [1, 2, 3]),
                                 r'labels must be one integer per image: 2 images'),
}


@pytest.mark.parametrize('case', sorted(API_CASES))
def test_predictor_input_is_checked(case, predictors, tmp_path):
    runtime, call, words = API_CASES[case]
    (tmp_path / 'notes.txt').write_text('not an image')
    with pytest.raises(InputError, match=words) as info:
        call(predictors[runtime], tmp_path)
    assert isinstance(info.value, ValueError) and '\n' not in str(info.value)


def test_predictor_defaults_and_paths_still_work(made, predictors):
    """The checks do not refuse what is right: top_k defaults to 5 and takes 1..classes,
    labels as a column, a pathlib prefix."""
    import pathlib
    p = predictors['onnxruntime']
    assert [len(r) for r in p.predict(RAW)] == [5, 5]
    assert [len(r) for r in p.predict(RAW, top_k=10)] == [10, 10]
    assert 0 <= p.accuracy(RAW, np.array([[1], [2]])) <= 1
    again = Predictor(pathlib.Path(made['prefix']), 'mxnet')
    np.testing.assert_allclose(again(RAW), predictors['mxnet'](RAW), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('case', ['truncated params', 'symbol not JSON', 'another model',
                                  'epoch without params', 'threads -1', 'model None'])
def test_predictor_files_and_arguments_are_one_line(case, made, tmp_path):
    root = made['root']
    kind, words, make = {
        'truncated params': (UserError, 'm-0000.params is not a complete MXNet parameter file',
                             lambda: Predictor(_copy_export(
                                 made, tmp_path, params=_half(made['prefix'] +
                                                              '-0000.params')), 'mxnet')),
        'symbol not JSON': (UserError, 'm-symbol.json is not an MXNet symbol JSON',
                            lambda: Predictor(_copy_export(made, tmp_path, symbol=b'{'),
                                              'onnxruntime')),
        'another model': (UserError, 'does not belong to',
                          lambda: Predictor(_copy_export(made, tmp_path, params=open(
                              str(root / 'other-0000.params'), 'rb').read()), 'mxnet')),
        'epoch without params': (UserError, 'm-0003.params does not exist',
                                 lambda: Predictor(made['prefix'], 'mxnet', epoch=3)),
        'threads -1': (ValueError, 'threads must be a positive integer',
                       lambda: Predictor(made['prefix'], 'onnxruntime', threads=-1)),
        'model None': (TypeError, 'export prefix or an .onnx path', lambda: Predictor(None)),
    }[case]
    with pytest.raises(kind) as info:
        make()
    assert words in str(info.value) and '\n' not in str(info.value)


# ---------------------------------------------------------------- GluonCV's get_model

def test_gluoncv_get_model_names_the_closest_cmpese_models():
    import gluoncv
    with pytest.raises(ValueError) as info:
        gluoncv.model_zoo.get_model('cmpe_se_wrn28_10_1x2')
    msg = str(info.value)
    assert msg.startswith("unknown model 'cmpe_se_wrn28_10_1x2'. Closest names: "
                          'cmpe_se_wrn28_10_1x1'), msg
    assert '\n' not in msg and len(msg) < 400 and 'cmpese.get_model_list()' in msg
    with pytest.raises(ValueError, match='Closest names: .*res_se_net56'):
        gluoncv.model_zoo.model_zoo.get_model('resse_net56')
    # the names cmpese.get_model parses are built, as by cmpese.get_model
    net = gluoncv.model_zoo.get_model('cmpe_se_wrn16_4_2x1', classes=7)
    assert type(net).__name__ == 'PreActCIFARNet' and net.output._units == 7
    # GluonCV's own names and messages are left alone
    assert type(gluoncv.model_zoo.get_model('cifar_resnet20_v1')).__name__ == 'CIFARResNetV1'
    with pytest.raises(ValueError, match='is not among the following model list'):
        gluoncv.model_zoo.get_model('zzzz_qq')
