"""Bad input gets one line in every tool (issue 20): complexity, flops, reproduce, the demo
builder, visualize, convert, study and launch, each through cmpese.errors.run as its command
line runs it (exit code 2, one or two lines on stderr, no traceback, the flag or file named
with what to do) and nothing written where the command refused; a few also through the real
command line (``python -m ...``).

Nothing is trained: a run directory is made from an initialized model in the files a trainer
leaves (config.json, best.params, metrics.csv by the trainer's own writer), the export by
cmpese.deploy.export, the timm file by cmpese.weights.save_timm, then damaged by hand. What
other tests already try is not repeated here (tests/test_visualize.py, test_flops.py,
test_reproduce.py, test_weights.py, test_launch.py, test_study.py, test_hostile_training.py).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types

import mxnet as mx
import pytest

import cmpese
from cmpese import errors
from cmpese.cli import complexity, convert, demo_imagenet, flops, launch, reproduce, study
from cmpese.cli import visualize
from cmpese.deploy.export import export_model
from cmpese.models import get_resnet_imagenet
from cmpese.training.report import write_metrics_csv
from cmpese.weights import save_timm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = 'cmpe_se_wrn10_1_1x1'
CLI = {'complexity': complexity, 'flops': flops, 'reproduce': reproduce,
       'demo': demo_imagenet, 'visualize': visualize, 'convert': convert, 'study': study,
       'launch': launch}


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb' if isinstance(data, bytes) else 'w') as f:
        f.write(data)


def _truncate(path, size):
    with open(path, 'r+b') as f:
        f.truncate(size)


def _copy_run(f, name):
    path = os.path.join(f.root, name)
    shutil.copytree(f.run, path)
    return path


@pytest.fixture(scope='module')
def f(tmp_path_factory):
    """Every file the cases read, sound and damaged, in one folder (the cases must leave it
    as it is)."""
    root = str(tmp_path_factory.mktemp('hostile'))
    f = types.SimpleNamespace(root=root)
    f.afile = os.path.join(root, 'afile')                   # a file where a folder belongs
    _write(f.afile, 'not a folder\n')
    # a CIFAR-10 run of the tiny CMPE-SE WRN as train_cifar.py leaves it (three epochs)
    net = cmpese.get_model(TINY, classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    f.run = os.path.join(root, 'run')
    os.makedirs(f.run)
    net.save_parameters(os.path.join(f.run, 'best.params'))
    _write(os.path.join(f.run, 'config.json'), json.dumps(dict(
        model=TINY, dataset='cifar10', classes=10, model_args='{}', preset='cmpe_wrn')))
    write_metrics_csv(os.path.join(f.run, 'metrics.csv'), [
        dict(epoch=e, lr=0.1, mixup=False, train_loss=2.3 - e / 10, train_error=0.9 - e / 20,
             test_loss=2.3 - e / 20, test_error=0.9 - e / 40, time=1.5) for e in (1, 2, 3)])
    f.params = os.path.join(f.run, 'best.params')
    # damaged copies of it
    f.cfg_cut = _copy_run(f, 'cfg_cut')
    _truncate(os.path.join(f.cfg_cut, 'config.json'), 20)
    f.cfg_unknown = _copy_run(f, 'cfg_unknown')
    _write(os.path.join(f.cfg_unknown, 'config.json'), json.dumps(dict(
        model='cmpe_se_wrn10_1_1x2', dataset='cifar10', classes=10)))
    csv_path = os.path.join(f.run, 'metrics.csv')
    with open(csv_path) as src:
        text = src.read()
    lines = text.splitlines(True)
    cells = lines[1].split(',')
    assert lines[0].split(',')[3] == 'train_loss'
    f.csv_cell = _copy_run(f, 'csv_cell')          # line 2: train_loss 'abc'
    _write(os.path.join(f.csv_cell, 'metrics.csv'),
           lines[0] + ','.join(cells[:3] + ['abc'] + cells[4:]) + ''.join(lines[2:]))
    f.csv_cut = _copy_run(f, 'csv_cut')            # cut inside line 4, its last
    _truncate(os.path.join(f.csv_cut, 'metrics.csv'), len(text) - len(lines[3]) // 2)
    f.csv_binary = _copy_run(f, 'csv_binary')
    _write(os.path.join(f.csv_binary, 'metrics.csv'), bytes(range(128, 256)))
    # the run exported, and damaged exports
    prefix = os.path.join(root, 'export', TINY)
    export_model(net, prefix)
    f.symbol = prefix + '-symbol.json'
    for name, damage in (('garbage', 'garbage'), ('cutsym', 'cut symbol'),
                         ('cutpar', 'cut params')):
        sym = os.path.join(root, 'export', name + '-symbol.json')
        par = os.path.join(root, 'export', name + '-0000.params')
        shutil.copy(f.symbol, sym)
        shutil.copy(prefix + '-0000.params', par)
        if damage == 'garbage':
            _write(sym, 'this is no JSON')
        elif damage == 'cut symbol':
            _truncate(sym, os.path.getsize(sym) // 2)
        else:
            _truncate(par, os.path.getsize(par) // 3)
        setattr(f, name, sym)
    # image folders
    f.empty = os.path.join(root, 'empty')
    os.makedirs(f.empty)
    f.notimage = os.path.join(root, 'notimage')
    _write(os.path.join(f.notimage, 'cat', 'photo.png'), 'a text file named .png\n')
    # a timm ResNet-18 (safetensors) for convert
    r18 = get_resnet_imagenet(18)
    r18.initialize(mx.init.Xavier())
    r18(mx.nd.zeros((1, 3, 64, 64)))
    f.timm = save_timm(r18, os.path.join(root, 'resnet18.safetensors'))
    # studies: another study's plan, a damaged plan and runs.csv
    plan = dict(dataset='cifar10', train_args=['--epochs', '1'], models=['preresnet8'],
                seeds=[0], baseline='preresnet8')
    f.other_study = os.path.join(root, 'other_study')
    _write(os.path.join(f.other_study, 'study.json'), json.dumps(plan, indent=1) + '\n')
    f.plan_keys = os.path.join(root, 'plan_keys')
    _write(os.path.join(f.plan_keys, 'study.json'), json.dumps(dict(dataset='digits')))
    f.runs_cut = os.path.join(root, 'runs_cut')
    _write(os.path.join(f.runs_cut, 'study.json'), json.dumps(plan))
    _write(os.path.join(f.runs_cut, 'runs.csv'), 'model,seed,test_accuracy,epoch_seconds\n'
                                                  'preresnet8,0,0.91,12.5\npreresnet8,1')
    # a finished run that Res-SE-Net Table 1's Res-20 row trains, and a damaged copy
    f.finished = os.path.join(root, 'finished')
    _write(os.path.join(f.finished, 'config.json'), json.dumps(dict(
        model='resnet20_cifar', dataset='cifar10', preset='res_se_net', mixup=False,
        seed=0)))
    _write(os.path.join(f.finished, 'result.json'), json.dumps(dict(
        history=[dict(epoch=1, test_error=0.8, test_top5_error=0.3)], best_error=0.8,
        best_epoch=1)))
    f.result_cut = os.path.join(root, 'result_cut')
    shutil.copytree(f.finished, f.result_cut)
    _truncate(os.path.join(f.result_cut, 'result.json'), 25)
    f.results_list = os.path.join(root, 'results-list.json')
    _write(f.results_list, '[{"table": "cmpe-2"}]\n')
    return f


def _snapshot(*folders):
    """{path: SHA-256} of every file under ``folders`` (and every folder, as None)."""
    out = {}
    for folder in folders:
        for base, dirs, names in os.walk(folder):
            for d in dirs:
                out[os.path.join(base, d)] = None
            for name in names:
                with open(os.path.join(base, name), 'rb') as fh:
                    out[os.path.join(base, name)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _fill(text, names):
    """``text`` with every ``{name}`` of ``names`` replaced by its value."""
    for key, value in names.items():
        if isinstance(value, str):
            text = text.replace('{%s}' % key, value)
    return text


def _refused(command, argv, capsys):
    """The one (or two) line(s) ``command`` prints on stderr for ``argv``, after checking
    exit code 2 and no traceback."""
    module = CLI[command]
    code = errors.run(module.main, argv, prog=module.PROG)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert 1 <= len(lines) <= 2 and 'Traceback' not in err, err
    assert lines[0].startswith(module.PROG + ': error: '), lines
    return ' '.join(lines)


# Each case: its id, the command, its arguments ({name}: a path of the fixture f, {tmp}: the
# test's own folder), the words the line must hold (the flag or file, what is wrong, what to
# do).
CASES = [
    # ---------------------------------------------------------------- complexity, flops
    ('complexity-nothing-to-do', 'complexity', [], ['give model names or --paper']),
    ('flops-unknown-model', 'flops', ['cmpe_se_wrn28_10_1x2', 'preresnet20'],
     ['cmpe_se_wrn28_10_1x2: unknown model', 'Closest names: cmpe_se_wrn28_10_1x1']),
    ('flops-negative-size', 'flops', ['preresnet20', '--input-size', '-4'],
     ['--input-size must be a positive integer, got -4']),
    # ---------------------------------------------------------------- reproduce
    ('reproduce-results-under-a-file', 'reproduce',
     ['--collect', '{finished}', '--results', '{afile}/results.json'],
     ['--results {afile}/results.json: {afile} is a file, not a directory',
      'choose another path']),
    ('reproduce-truncated-result-json', 'reproduce',
     ['--collect', '{result_cut}', '--results', '{tmp}/results.json'],
     ['--collect {result_cut}', 'result.json is not valid JSON', 'restore it',
      'nothing was recorded']),
    ('reproduce-results-not-an-object', 'reproduce', ['--list', '--results', '{results_list}'],
     ['{results_list} is not a results file', '{"results": [...]}', 'restore it']),
    ('reproduce-write-docs-a-file', 'reproduce', ['--write-docs', '{afile}'],
     ['--write-docs {afile}: is a file, not a directory', 'give an existing directory']),
    # ---------------------------------------------------------------- the demo builder
    ('demo-out-under-a-file', 'demo', ['--out', '{afile}/demo'],
     ['--out {afile}/demo: {afile} is a file, not a directory', 'choose another path']),
    ('demo-huge-size', 'demo', ['--out', '{tmp}/demo', '--size', '100000'],
     ['--size must be at least 16 and at most 1024 pixels', 'got 100000']),
    ('demo-negative-seed', 'demo', ['--out', '{tmp}/demo', '--seed', '-1'],
     ['--seed must be an integer >= 0 and < 2**32, got -1']),
    # ---------------------------------------------------------------- visualize
    ('visualize-symbol-garbage', 'visualize', ['units', '--symbol', '{garbage}'],
     ['--symbol {garbage} is not an MXNet symbol JSON', 'export the model again']),
    ('visualize-symbol-truncated', 'visualize', ['units', '--symbol', '{cutsym}'],
     ['--symbol {cutsym} is not an MXNet symbol JSON']),
    ('visualize-export-params-truncated', 'visualize', ['units', '--symbol', '{cutpar}'],
     ['--params', 'cutpar-0000.params is not a complete MXNet parameter file',
      'export the model again']),
    ('visualize-run-config-truncated', 'visualize', ['units', '--run', '{cfg_cut}'],
     ['--run {cfg_cut}: {cfg_cut}/config.json is not valid JSON', 'restore it',
      '--model NAME --params FILE']),
    ('visualize-run-config-unknown-model', 'visualize', ['units', '--run', '{cfg_unknown}'],
     ['--run {cfg_unknown}: config.json: unknown model', 'Closest names']),
    ('visualize-model-args-not-object', 'visualize',
     ['units', '--model', TINY, '--params', '{params}', '--model-args', '[1]'],
     ['--model-args must be a JSON object', 'got [1]']),
    ('visualize-classes-zero', 'visualize',
     ['units', '--model', TINY, '--params', '{params}', '--classes', '0'],
     ['--classes must be an integer >= 1, got 0']),
    ('visualize-metrics-bad-cell', 'visualize', ['curves', '{csv_cell}', '--out', '{tmp}/c.png'],
     ['{csv_cell}/metrics.csv line 2: train_loss is \'abc\', not a number', 'damaged',
      'restore the file']),
    ('visualize-metrics-truncated', 'visualize', ['curves', '{csv_cut}', '--out', '{tmp}/c.png'],
     ['{csv_cut}/metrics.csv line 4 has fewer cells than its header', 'restore the file']),
    ('visualize-metrics-binary', 'visualize', ['curves', '{csv_binary}', '--out', '{tmp}/c.png'],
     ['{csv_binary}/metrics.csv is not a text CSV file']),
    ('visualize-empty-image-folder', 'visualize',
     ['gradcam', '--run', '{run}', '--images', '{empty}', '--out', '{tmp}/g.png'],
     ['--images {empty} holds no image files', '.png']),
    ('visualize-image-not-an-image', 'visualize',
     ['gradcam', '--run', '{run}', '--images', '{notimage}', '--out', '{tmp}/g.png'],
     ['--images {notimage}: {notimage}/cat/photo.png is not an image PIL can read',
      'remove it']),
    ('visualize-negative-count', 'visualize',
     ['gradcam', '--run', '{run}', '--images', '{notimage}', '--count', '-2', '--out',
      '{tmp}/g.png'], ['--count must be an integer >= 0 (0: every image), got -2']),
    ('visualize-width-zero', 'visualize',
     ['maps', '--run', '{run}', '--data', 'cifar10', '--width', '0', '--out', '{tmp}/m.png'],
     ['--width must be an integer >= 1, got 0']),
    ('visualize-negative-channels', 'visualize',
     ['classes', '--run', '{run}', '--data', 'cifar10', '--channels', '-5', '--out',
      '{tmp}/k.png'], ['--channels must be an integer >= 1, got -5']),
    ('visualize-mean-two-values', 'visualize',
     ['excitations', '--run', '{run}', '--data', 'cifar10', '--mean', '1,2', '--std', '1,1,1',
      '--out', '{tmp}/e.png'], ['argument --mean: expected 3 comma-separated numbers',
                                "got '1,2'"]),
    ('visualize-designs-config-truncated', 'visualize',
     ['designs', '--se', '{cfg_cut}', '--cmpe', '{run}', '--ini', '{run}', '--data', 'cifar10',
      '--out', '{tmp}/d.png'], ['--se {cfg_cut}: {cfg_cut}/config.json is not valid JSON']),
    # ---------------------------------------------------------------- convert
    ('convert-json-under-a-file', 'convert',
     ['{timm}', '--model', 'resnet18', '--json', '{afile}/report.json', '--out',
      '{tmp}/r18.params'],
     ['--json {afile}/report.json: {afile} is a file, not a directory', 'another path']),
    ('convert-out-under-a-file', 'convert',
     ['{timm}', '--model', 'resnet18', '--out', '{afile}/r18.params'],
     ['--out {afile}/r18.params: {afile} is a file, not a directory']),
    ('convert-out-a-directory', 'convert', ['{timm}', '--model', 'resnet18', '--out', '{tmp}'],
     ['--out {tmp} is a directory; give the path of a file']),
    ('convert-file-a-directory', 'convert', ['{root}', '--model', 'resnet18', '--dry-run'],
     ['{root} is a directory: give a .safetensors or .params file']),
    # ---------------------------------------------------------------- study
    ('study-out-holds-another-study', 'study',
     ['--out', '{other_study}', '--dataset', 'digits', '--models', 'preresnet8'],
     ['--out {other_study} holds a study with dataset cifar10, not digits',
      'choose another --out']),
    ('study-plan-not-a-plan', 'study', ['--out', '{plan_keys}', '--report'],
     ['{plan_keys}/study.json is not the plan of a study: models is None', 'restore it']),
    ('study-runs-csv-truncated', 'study', ['--out', '{runs_cut}', '--report'],
     ['{runs_cut}/runs.csv line 3 is damaged', "seed '1'", 'restore it']),
    ('study-unknown-model', 'study',
     ['--out', '{tmp}/s', '--dataset', 'digits', '--models', 'preresnet8,cmpe_se_wrn28_10_1x2'],
     ['--models cmpe_se_wrn28_10_1x2: unknown model', 'Closest names: cmpe_se_wrn28_10_1x1']),
    ('study-no-seed', 'study',
     ['--out', '{tmp}/s', '--dataset', 'digits', '--models', 'preresnet8', '--seeds', ''],
     ["--seeds '' names no seed", '--seeds 0,1,2']),
    ('study-unclosed-quote', 'study',
     ['--out', '{tmp}/s', '--dataset', 'digits', '--models', 'preresnet8', '--train-args',
      '--lr "0.1'], ['--train-args --lr "0.1: No closing quotation', 'close the quotes']),
    # ---------------------------------------------------------------- launch
    ('launch-timeout-zero', 'launch',
     ['-n', '2', '--timeout', '0', '--', sys.executable, 'train_cifar.py', '--kvstore',
      'dist_sync'],
     ['--timeout must be a finite number of seconds > 0, got 0.0', 'leave it out']),
    ('launch-timeout-nan', 'launch',
     ['-n', '2', '--timeout', 'nan', '--', sys.executable, 'train_cifar.py', '--kvstore',
      'dist_sync'], ['--timeout must be a finite number', 'got nan']),
]


@pytest.mark.parametrize('command, argv, words', [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_refused_in_one_line_and_nothing_written(command, argv, words, f, tmp_path, capsys):
    names = dict(vars(f), tmp=str(tmp_path))
    before = _snapshot(f.root, str(tmp_path))
    line = _refused(command, [_fill(a, names) for a in argv], capsys)
    for w in words:
        assert _fill(w, names) in line, (w, line)
    assert _snapshot(f.root, str(tmp_path)) == before, 'a refused command wrote something'


def test_the_fixture_files_are_sound_where_not_damaged(f, tmp_path, capsys):
    """The positive controls: the sound run, export, timm file and finished run are used
    by the commands, so the refusals above come from the damage, not from the fixture."""
    assert errors.run(visualize.main, ['units', '--run', f.run], prog='visualize') == 0
    assert errors.run(visualize.main, ['units', '--symbol', f.symbol], prog='visualize') == 0
    assert errors.run(visualize.main, ['curves', f.run, '--out', str(tmp_path / 'c.png')],
                      prog='visualize') == 0
    assert errors.run(convert.main, [f.timm, '--model', 'resnet18', '--json',
                                     str(tmp_path / 'r.json'), '--out',
                                     str(tmp_path / 'r18.params')], prog='convert') == 0
    with open(str(tmp_path / 'r.json')) as fh:
        assert json.load(fh)      # the report, whole
    results = str(tmp_path / 'results.json')
    assert errors.run(reproduce.main, ['--collect', f.finished, '--results', results],
                      prog='reproduce') == 0
    assert 'recorded res-se-net-1 "Res-20" cifar10' in capsys.readouterr().out
    assert not [n for n in os.listdir(str(tmp_path)) if '.tmp' in n]


# ---------------------------------------------------------------- a folder no one may write

@pytest.fixture
def unwritable(tmp_path):
    """A folder this process cannot write in: a read-only folder, or (for root, whom file
    modes do not stop) a sysfs folder."""
    folder = tmp_path / 'read-only'
    folder.mkdir()
    folder.chmod(0o500)
    try:
        for candidate in (str(folder), '/sys/kernel'):
            try:
                tempfile.TemporaryFile(dir=candidate).close()
            except OSError:
                yield candidate
                break
        else:
            pytest.skip('no folder here refuses writes from this process')
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize('command, argv, words', [
    ('visualize', ['curves', '{run}', '--out', '{ro}/c.png'],
     ['--out {ro}/c.png: cannot write in {ro}', 'choose a writable folder']),
    ('convert', ['{timm}', '--model', 'resnet18', '--out', '{ro}/r18.params'],
     ['--out {ro}/r18.params: cannot write in {ro}', 'choose a writable folder']),
    ('demo', ['--out', '{ro}/demo'], ['--out {ro}/demo: cannot write in {ro}',
                                      'choose a writable folder']),
    ('study', ['--out', '{ro}/s', '--dataset', 'digits', '--models', 'preresnet8'],
     ['--out {ro}/s: cannot write in {ro}', 'choose a writable folder']),
    ('reproduce', ['--collect', '{finished}', '--results', '{ro}/results.json'],
     ['--results {ro}/results.json: cannot write in {ro}', 'choose a writable folder']),
], ids=['visualize-out', 'convert-out', 'demo-out', 'study-out', 'reproduce-results'])
def test_an_unwritable_folder_is_one_line(command, argv, words, f, unwritable, capsys):
    names = dict(vars(f), ro=unwritable)
    before = sorted(os.listdir(unwritable))
    line = _refused(command, [_fill(a, names) for a in argv], capsys)
    for w in words:
        assert _fill(w, names) in line, (w, line)
    assert sorted(os.listdir(unwritable)) == before


# ---------------------------------------------------------------- the real command lines

@pytest.mark.parametrize('argv, prog, words', [
    (['-m', 'cmpese.tools.complexity', 'cmpe_se_wrn28_10_1x2'],
     'python -m cmpese.tools.complexity', ['unknown model', 'cmpe_se_wrn28_10_1x1']),
    (['-m', 'cmpese.visualize', 'units', '--symbol', '{garbage}'],
     'python -m cmpese.visualize', ['--symbol {garbage} is not an MXNet symbol JSON']),
    (['-m', 'cmpese.study', '--out', '{afile}/s', '--dataset', 'digits', '--models',
      'preresnet8'], 'python -m cmpese.study', ['--out {afile}/s: {afile} is a file']),
    (['-m', 'cmpese.training.launch', '-n', '2', '--', 'no-such-program-anywhere', '--x'],
     'python -m cmpese.training.launch',
     ["the worker command 'no-such-program-anywhere' was not found on PATH"]),
    (['-m', 'cmpese.training.launch', '-n', '2', '--', sys.executable, 'train_cifar.py',
      '--model', TINY], 'python -m cmpese.training.launch',
     ['trains with --kvstore device (the default)', 'add --kvstore dist_sync']),
], ids=['complexity', 'visualize', 'study', 'launch-no-program', 'launch-no-dist'])
def test_real_command_line_exit_2_one_line(argv, prog, words, f):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    for var in [v for v in env if v.startswith('DMLC_')]:
        del env[var]
    names = vars(f)
    before = _snapshot(f.root)
    t = time.time()
    proc = subprocess.run([sys.executable] + [_fill(a, names) for a in argv], env=env,
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert 'Traceback' not in proc.stderr and lines[0].startswith(prog + ': error: '), lines
    for w in words:
        assert _fill(w, names) in lines[0], (w, lines[0])
    assert proc.stdout == '' and time.time() - t < 60      # refused at once, nothing started
    assert _snapshot(f.root) == before
