"""python -m cmpese.evaluate: every image counted once (10 images at batch 4 count 10, where
counting the iterator's filler rows would give 12), errors against a hand computation from
the same preprocessed images, the exported-symbol path, a --dataset test split, and the
one-line errors."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from datafiles import synthetic_images
from test_imagenet import write_rec

import cmpese
from cmpese.data.imagenet import RecordLoader
from cmpese.errors import run
from cmpese.cli.evaluate import main
from cmpese.tools.complexity import count_params
from cmpese.tools.flops import count_flops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = 'cmpe_se_wrn10_1_1x1'
CLASSES = 7      # more than 5, so top-5 is reported


@pytest.fixture(scope='module')
def model_and_rec(tmp_path_factory):
    root = tmp_path_factory.mktemp('evaluate')
    images, labels = synthetic_images(10, CLASSES, seed=11, size=40)
    rec, idx = write_rec(str(root / 'val'), images, labels)
    mx.random.seed(1)
    net = cmpese.get_model(TINY, classes=CLASSES)
    net.initialize(mx.init.Xavier(magnitude=3))
    net(mx.nd.zeros((1, 3, 32, 32)))
    params = str(root / 'tiny.params')
    net.save_parameters(params)
    return dict(root=root, rec=rec, idx=idx, labels=labels, params=params, net=net)


def _hand_errors(net, rec, idx):
    """Top-1 / top-5 error from the logits of every record, computed with numpy."""
    loader = RecordLoader(rec, idx, batch_size=10, train=False, input_size=32)
    data, label, pad = next(loader.epoch(0))
    assert pad == 0
    logits = net(data).asnumpy()
    y = label.asnumpy().astype(int)
    top1 = (logits.argmax(1) != y).mean()
    rank = (logits > logits[np.arange(len(y)), y][:, None]).sum(1)
    return top1, (rank >= 5).mean()


def test_ten_images_at_batch_four_count_ten(model_and_rec, capsys):
    m = model_and_rec
    out = str(m['root'] / 'r.json')
    code = run(main, ['--model', TINY, '--params', m['params'], '--rec-val', m['rec'],
                      '--rec-val-idx', m['idx'], '--batch-size', '4', '--classes',
                      str(CLASSES), '--input-size', '32', '--json', out])
    assert code == 0
    table = capsys.readouterr().out
    r = json.load(open(out))
    assert r['images'] == 10                    # 4 + 4 + 2, the 2 filler rows dropped
    assert 'images counted  10' in table
    top1, top5 = _hand_errors(m['net'], m['rec'], m['idx'])
    assert r['top1_error'] == pytest.approx(top1) and r['top5_error'] == pytest.approx(top5)
    assert '%.2f%%' % (100 * top1) in table and '%.2f%%' % (100 * top5) in table
    assert r['params'] == count_params(m['net'])
    assert r['flops'] == count_flops(m['net'], input_shape=(1, 3, 32, 32)).total
    assert r['images_per_sec'] > 0 and r['classes'] == CLASSES


def test_exported_symbol_gives_the_same_figures(model_and_rec, capsys):
    m = model_and_rec
    from cmpese.tools.export import export_model
    net = cmpese.get_model(TINY, classes=CLASSES)
    net.load_parameters(m['params'])
    sym, params = export_model(net, str(m['root'] / 'export' / TINY), (1, 3, 32, 32))
    try:     # the predictor of cmpese.tools.deploy when present, else a SymbolBlock
        __import__('cmpese.tools.deploy')
        runtimes = {'auto': 'onnxruntime', 'mxnet': 'mxnet'}
    except ImportError:
        runtimes = {'auto': 'mxnet SymbolBlock'}
    top1, top5 = _hand_errors(m['net'], m['rec'], m['idx'])
    for runtime, shown in runtimes.items():
        out = str(m['root'] / ('s-%s.json' % runtime))
        assert run(main, ['--symbol', sym, '--params', params, '--rec-val', m['rec'],
                          '--batch-size', '3', '--classes', str(CLASSES), '--input-size', '32',
                          '--runtime', runtime, '--json', out]) == 0
        r = json.load(open(out))
        assert 'runtime %s)' % shown in r['model']
        assert r['images'] == 10 and r['top1_error'] == pytest.approx(top1)
        assert r['top5_error'] == pytest.approx(top5)
    # an exported model counts its symbol's arguments: every parameter but the BN running
    # statistics, so also the frozen scale/shift of the input BN (3 + 3) that training skips
    args = sum(int(np.prod(p.shape)) for name, p in m['net'].collect_params().items()
               if not name.endswith(('running_mean', 'running_var')))
    assert r['params'] == args == count_params(m['net']) + 6


def test_dataset_test_split_is_counted_whole(tmp_path, capsys):
    from cmpese.data import load_dataset
    net = cmpese.get_model(TINY, classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / 'd.params'))
    out = str(tmp_path / 'd.json')
    assert run(main, ['--model', TINY, '--params', str(tmp_path / 'd.params'), '--dataset',
                      'digits', '--batch-size', '100', '--json', out]) == 0
    r = json.load(open(out))
    assert r['images'] == len(load_dataset('digits', 'test')[1]) == 359
    assert 0 <= r['top1_error'] <= 1 and r['classes'] == 10


def test_errors_are_one_line(model_and_rec, tmp_path):
    m = model_and_rec
    env = dict(os.environ, OMP_NUM_THREADS='1')
    missing = str(tmp_path / 'val.rec')
    proc = subprocess.run([sys.executable, '-m', 'cmpese.evaluate', '--model', TINY, '--params',
                           m['params'], '--rec-val', missing], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and missing in lines[0] and 'im2rec' in lines[0]
    assert 'Traceback' not in proc.stderr
    # parameters of a 7-class model loaded as a 3-class one
    assert run(main, ['--model', TINY, '--params', m['params'], '--rec-val', m['rec'],
                      '--classes', '3', '--input-size', '32']) == 2
    assert run(main, ['--model', TINY, '--rec-val', m['rec']]) == 2        # no --params
    assert run(main, ['--model', TINY, '--params', m['params']]) == 2      # no data


@pytest.fixture(scope='module')
def exported_tiny(model_and_rec):
    from cmpese.tools.export import export_model
    prefix = str(model_and_rec['root'] / 'export' / 'tiny')
    export_model(model_and_rec['net'], prefix, (1, 3, 32, 32))
    return prefix


@pytest.mark.parametrize('case', ['truncated params', 'symbol not json', 'json under a file'])
def test_file_errors_are_one_line(model_and_rec, exported_tiny, tmp_path, capsys, case):
    """issue 20: a truncated params file names the file (not --model), a symbol that is not
    JSON is one line, --json under a file is one line before anything runs."""
    m = model_and_rec
    symbol, params = exported_tiny + '-symbol.json', exported_tiny + '-0000.params'
    cut = tmp_path / 'cut-0000.params'
    cut.write_bytes(open(params, 'rb').read()[:5000])
    (tmp_path / 'cut-symbol.json').write_bytes(open(symbol, 'rb').read())
    (tmp_path / 'bad-symbol.json').write_text('this is { not json')
    (tmp_path / 'afile').write_text('x')
    args, expected = {
        'truncated params': (['--symbol', str(tmp_path / 'cut-symbol.json')],
                             ['--params', 'cut-0000.params', 'not a complete']),
        'symbol not json': (['--symbol', str(tmp_path / 'bad-symbol.json'), '--params', params],
                            ['--symbol', 'bad-symbol.json', 'not an MXNet symbol JSON']),
        'json under a file': (['--symbol', symbol, '--json', str(tmp_path / 'afile' / 'r.json')],
                              ['--json', 'afile', 'is a file']),
    }[case]
    capsys.readouterr()
    assert run(main, args + ['--rec-val', m['rec'], '--input-size', '32']) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err and '--model' not in err, err
    for word in expected:
        assert word in err, err


def test_symbol_uses_the_export_data_config(model_and_rec, exported_tiny, tmp_path, capsys):
    """--symbol with a <prefix>-data.json: its input size, mean and std are the defaults."""
    import shutil
    from cmpese.data.config import imagenet_config, save_data_config
    m = model_and_rec
    prefix = str(tmp_path / 'withcfg')
    for suffix in ('-symbol.json', '-0000.params'):
        shutil.copy(exported_tiny + suffix, prefix + suffix)
    save_data_config(prefix + '-data.json',
                     imagenet_config(32, [100.0, 110.0, 120.0], [50.0, 60.0, 70.0], resize=36))
    out = str(tmp_path / 'r.json')
    assert run(main, ['--symbol', prefix + '-symbol.json', '--rec-val', m['rec'],
                      '--runtime', 'mxnet', '--batch-size', '4', '--json', out]) == 0
    r = json.load(open(out))
    assert r['input_size'] == 32
    assert run(main, ['--symbol', prefix + '-symbol.json', '--dataset', 'cifar10']) == 2
