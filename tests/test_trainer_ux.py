"""What a user of the trainers reads and gets (issue 19; --pretrained-backbone from issue 21):
the help, the GluonCV / timm aliases, --resume PATH, the log (no progress bar in a pipe, a
line every --log-interval iterations, MXNet's rate lines at debug level, the worker's rank),
the data config of a run and of its export, --export-from, and a backbone loaded from a
weights file. Tiny models on tiny files; the end-to-end runs are in this process."""
import json
import logging
import os
import re

import mxnet as mx
import numpy as np
import pytest

from datafiles import synthetic_images, write_cifar10

import cmpese
from cmpese.cli import train_cifar, train_imagenet
from cmpese.errors import UserError, run as run_command
from cmpese.training import checkpoint as ckpt
from cmpese.training.cli import (ConfigError, explicit_keys, resolve_config,
                                 resume_run_dir)
from cmpese.training.report import format_lr, setup_logging, worker_prefix

TINY = 'cmpe_se_wrn10_1_1x1'


@pytest.fixture(autouse=True)
def _own_log_handlers():
    """The trainers add handlers to the root logger (stderr, train.log): remove the ones a
    test added, so that no run writes into another's log."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in before:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def _cfg(argv, module=train_cifar):
    parser = module.build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_keys(parser, argv)
    return resolve_config(args, explicit), explicit


# ---------------------------------------------------------------- --help

def _entries(text):
    """{first option string: the whole help entry} of an argparse help text."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.match(r'  (-[-\w]+)(?=$|,| [A-Z_\[{]|  )', line)
        if m:
            current = m.group(1)
            out[current] = line
        elif current and line.startswith('    '):
            out[current] += ' ' + line.strip()
        else:
            current = None
    return out


def _help(module, argv, capsys):
    with pytest.raises(SystemExit) as stop:
        module.main(argv + ['--help'])
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize('module', [train_cifar, train_imagenet])
def test_help_has_one_clear_line_a_flag(module, capsys, monkeypatch):
    monkeypatch.setenv('COLUMNS', '100')
    entries = _entries(_help(module, [], capsys))
    assert entries, 'no option found in the help'
    for flag, text in entries.items():
        assert '(default: True)' not in text and '(default: False)' not in text, text
        assert '(default: None)' not in text and '(default: )' not in text, text
        assert text.lower().count('default') <= 1, text
    assert all(a.help for a in module.build_parser()._actions), 'a flag without help'
    for flag in ('--no-progress', '--no-mixup', '--mixup', '--export', '--resume'):
        assert flag in entries
    if module is train_cifar:
        assert 'train' in entries['--dataset'] and '--no-download' in entries
        assert 'downloaded' in entries['--no-download']
    else:
        assert 'flip' in entries['--no-flip'] and 'fraction' in entries['--min-random-area']
    batch = entries['--batch-size']
    assert 'GLOBAL' in batch and 'per device' in batch and 'GluonCV' in batch
    for flag in ('--epochs', '--iterations', '--batch-size', '--lr', '--lr-steps',
                 '--lr-steps-iter', '--lr-factor', '--optimizer', '--momentum', '--wd'):
        assert 'Default: from the preset.' in entries[flag], entries[flag]
    # the aliases of GluonCV and timm are the same options
    assert 'also --num-epochs' in entries['--epochs'] and 'also --weight-decay' in entries['--wd']
    assert '--log-interval' in entries and '--resume [PATH]' in entries['--resume']


def test_help_after_model_and_dataset_shows_the_preset_values(capsys, monkeypatch):
    monkeypatch.setenv('COLUMNS', '100')
    entries = _entries(_help(train_cifar, ['--model', 'cmpe_se_wrn28_10_1x1', '--dataset',
                                           'cifar10', '--mixup', '--lr', '0.05'], capsys))
    assert 'With these options: 220 (preset cmpe_wrn + --mixup-off-epochs 20)' in \
        entries['--epochs']
    assert '128 (preset cmpe_wrn)' in entries['--batch-size']
    assert '60,120,160 (preset cmpe_wrn)' in entries['--lr-steps']
    assert '0.0005 (preset cmpe_wrn)' in entries['--wd']
    assert 'nag (preset cmpe_wrn)' in entries['--optimizer']
    assert '0.05 (given)' in entries['--lr']
    entries = _entries(_help(train_cifar, ['--model', 'ini_preresnet164_square_3'], capsys))
    assert 'at 50%, 75% of the epochs (preset ini_resnet)' in entries['--lr-steps']
    # ImageNet: the linear scaling of the rate with the global batch
    entries = _entries(_help(train_imagenet, ['--model', 'se_resnet50', '--batch-size', '256'],
                             capsys))
    assert '0.15 (preset senet, scaled linearly to --batch-size 256)' in entries['--lr']
    assert '256 (given)' in entries['--batch-size']


# ---------------------------------------------------------------- aliases and --resume PATH

def test_gluoncv_and_timm_aliases():
    cfg, explicit = _cfg(['--model', TINY, '--num-epochs', '7', '--weight-decay', '0.002',
                          '--log-interval', '3'])
    assert (cfg['epochs'], cfg['wd'], cfg['log_interval']) == (7, 0.002, 3)
    assert {'epochs', 'wd', 'log_interval'} <= explicit
    with pytest.raises(ConfigError, match=r'--log-interval must be an integer >= 0'):
        _cfg(['--model', TINY, '--log-interval', '-1'])
    with pytest.raises(ConfigError, match=r'--epochs and --iterations were both given'):
        _cfg(['--model', TINY, '--num-epochs', '3', '--iterations', '10'])
    with pytest.raises(UserError, match=r'^argument --num-epochs: invalid int value'):
        _cfg(['--model', TINY, '--num-epochs', 'x'])


def _tiny_checkpoints(folder, epochs=2):
    net = mx.gluon.nn.Dense(2, in_units=3)
    net.initialize()
    trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    for e in range(1, epochs + 1):
        ckpt.save_checkpoint(str(folder), e, net, trainer, dict(history=[]), keep=0)


def test_resume_takes_a_run_directory_or_its_newest_checkpoint(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    _tiny_checkpoints(run)
    (run / 'best.params').write_bytes(b'x')
    assert resume_run_dir(str(run)) == str(run)
    for name in ('checkpoint.json', 'epoch-0002.params', 'epoch-0002.states',
                 'epoch-0002.json'):
        assert resume_run_dir(str(run / name)) == str(run)
    with pytest.raises(ConfigError, match=r'newest intact checkpoint is after epoch 2.*'
                                          r'move the newer epoch-NNNN'):
        resume_run_dir(str(run / 'epoch-0001.params'))
    with pytest.raises(ConfigError, match=r'best.params is not a checkpoint.*'
                                          r'--pretrained-backbone'):
        resume_run_dir(str(run / 'best.params'))
    with pytest.raises(ConfigError, match=r'no such run directory or checkpoint file'):
        resume_run_dir(str(tmp_path / 'nothing'))
    # through the options: --resume PATH is --save-dir PATH --resume
    cfg, _ = _cfg(['--model', TINY, '--resume', str(run / 'epoch-0002.params')])
    assert (cfg['save_dir'], cfg['resume']) == (str(run), True)
    cfg, _ = _cfg(['--model', TINY, '--save-dir', str(run), '--resume', '--lr', '0.5'])
    assert (cfg['save_dir'], cfg['resume'], cfg['lr']) == (str(run), True, 0.5)
    with pytest.raises(ConfigError, match=r'but --save-dir .*other was given: drop one'):
        _cfg(['--model', TINY, '--resume', str(run), '--save-dir', str(tmp_path / 'other')])


# ---------------------------------------------------------------- the log

def test_log_lines_rank_prefix_and_mxnet_rate_lines_at_debug(tmp_path):
    assert worker_prefix(1, 2) == '[worker 1/2] ' and worker_prefix(0, 1) == ''
    assert format_lr(0.05 * 0.2) == '0.01' and format_lr(0.00234375) == '0.00234375'
    setup_logging(str(tmp_path / 'a.log'), worker=(1, 2))
    logging.getLogger('cmpese.train').info('hello')
    sched = mx.lr_scheduler.MultiFactorScheduler(step=[2], factor=0.1, base_lr=0.1)
    sched(5)                     # MXNet logs "Update[5]: Change learning rate to ..."
    text = (tmp_path / 'a.log').read_text()
    assert re.search(r' INFO \[worker 1/2\] hello$', text, re.M) and 'Change learning' not in text
    logging.getLogger().setLevel(logging.DEBUG)
    mx.lr_scheduler.MultiFactorScheduler(step=[2], factor=0.1, base_lr=0.1)(5)
    assert re.search(r' DEBUG \[worker 1/2\] Update\[5\]: Change learning rate',
                     (tmp_path / 'a.log').read_text())


def test_a_workers_last_error_line_carries_its_rank(tmp_path, capsys):
    """The one line errors.run prints when a worker stops on a user error names the worker,
    like every log line before it; a run of one worker prints it bare."""
    from cmpese.errors import UserError, run as run_cli

    def fails(argv):
        raise UserError('--rec-train x.rec: no such file')
    assert run_cli(fails, [], prog='train_imagenet.py') == 2
    assert capsys.readouterr().err == 'train_imagenet.py: error: --rec-train x.rec: no such ' \
        'file\n'
    setup_logging(str(tmp_path / 'w.log'), worker=(1, 2))
    assert run_cli(fails, [], prog='train_imagenet.py') == 2
    assert capsys.readouterr().err == '[worker 1/2] train_imagenet.py: error: --rec-train ' \
        'x.rec: no such file\n'
    assert re.search(r' ERROR \[worker 1/2\] error: --rec-train x.rec: no such file$',
                     (tmp_path / 'w.log').read_text(), re.M)


# ---------------------------------------------------------------- a run end to end

@pytest.fixture(scope='module')
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('cifar')
    write_cifar10(root, synthetic_images(96, 10, seed=1), synthetic_images(40, 10, seed=2))
    return root


def _main(module, argv):
    """``module.main(argv)`` through the error handler: (exit code, its one line or '')."""
    import io
    import contextlib
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_command(module.main, argv, prog='train')
    return code, err.getvalue()


def test_run_records_its_data_config_and_logs_by_interval(cifar_dir, tmp_path, caplog):
    out = tmp_path / 'run'
    caplog.set_level(logging.INFO)
    assert train_cifar.main(['--model', TINY, '--data-dir', str(cifar_dir), '--no-download',
                             '--epochs', '1', '--batch-size', '16', '--log-interval', '2',
                             '--save-dir', str(out)]) == 0
    from cmpese.data.config import dataset_config, load_data_config
    from cmpese.data import load_train_test
    info = load_train_test('cifar10', str(cifar_dir))[2]
    saved = load_data_config(str(out / 'data_config.json'))
    assert saved == dataset_config('cifar10', info.mean, info.std, str(cifar_dir))
    assert saved.classes[0] == 'airplane' and saved.input_size == 32
    assert not (out / 'export').exists()
    # stderr is not a terminal here: no bar, a line every 2 of the 6 iterations
    lines = [r.getMessage() for r in caplog.records]
    assert [l for l in lines if l.startswith('epoch 1/1 | ')] == [
        l for l in lines if re.match(r'epoch 1/1 \| [246]/6 \| loss \d\.\d{4}  lr 0\.1  '
                                     r'[\d.]+ img/s$', l)]
    assert len([l for l in lines if l.startswith('epoch 1/1 | ')]) == 3


def test_export_from_best_or_last(tmp_path):
    from cmpese.training.run import _select_exported
    net = cmpese.get_model(TINY, classes=10)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / 'best.params'))          # epoch 1, the best
    best = {k: v.data().asnumpy().copy() for k, v in net.collect_params().items()}
    for p in net.collect_params().values():                     # epoch 2, in memory
        p.set_data(p.data() + 1)
    state = dict(history=[dict(epoch=1, test_error=0.25), dict(epoch=2, test_error=0.5)],
                 best_epoch=1, best_error=0.25)
    chosen = _select_exported(net, dict(export_from='last'), str(tmp_path), [mx.cpu()], state)
    assert chosen == dict(source='last', epoch=2, test_error=0.5)
    some = next(iter(best))
    np.testing.assert_array_equal(net.collect_params()[some].data().asnumpy(), best[some] + 1)
    chosen = _select_exported(net, dict(export_from='best'), str(tmp_path), [mx.cpu()], state)
    assert chosen == dict(source='best', epoch=1, test_error=0.25)
    for name, value in best.items():
        np.testing.assert_array_equal(net.collect_params()[name].data().asnumpy(), value)
    os.remove(str(tmp_path / 'best.params'))
    with pytest.raises(ConfigError, match='best.params is missing.*--export-from last'):
        _select_exported(net, dict(export_from='best'), str(tmp_path), [mx.cpu()], state)
    with pytest.raises(ConfigError, match='--export-from has no effect without --export'):
        _cfg(['--model', TINY, '--export-from', 'last'])


# ---------------------------------------------------------------- --pretrained-backbone

@pytest.fixture(scope='module')
def plain_resnet50(tmp_path_factory):
    """A cmpese .params of a plain ResNet-50 (10 classes), saved with save_parameters."""
    path = str(tmp_path_factory.mktemp('weights') / 'resnet50.params')
    net = cmpese.get_model('resnet50', classes=10)
    net.initialize(mx.init.Xavier(magnitude=2))
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(path)
    return path


def test_pretrained_backbone_fine_tunes_an_se_model(cifar_dir, plain_resnet50, tmp_path):
    out = tmp_path / 'ft'
    assert train_cifar.main(['--model', 'se_resnet50', '--preset', 'cmpe_preresnet',
                             '--data-dir', str(cifar_dir), '--no-download', '--epochs', '1',
                             '--batch-size', '16', '--lr', '1e-7', '--no-progress',
                             '--pretrained-backbone', plain_resnet50,
                             '--save-dir', str(out)]) == 0
    log_text = (out / 'train.log').read_text()
    assert '--pretrained-backbone: the backbone from %s' % plain_resnet50 in log_text
    # the log says which unit operators trained (the package's current choice)
    from cmpese.units import ops
    assert 'unit operators: %s (cmpese.units.ops' % ', '.join(
        '%s=%s' % kv for kv in sorted(ops.get_impl().items())) in log_text
    assert re.search(r'loaded:  265 tensors', log_text)
    assert re.search(r'new: +34 tensors', log_text)
    assert re.search(r'32  SE unit: backbone only', log_text)
    assert re.search(r'2  classifier: backbone only', log_text)
    assert json.loads((out / 'config.json').read_text())['pretrained_backbone'] == \
        plain_resnet50
    # the backbone started from the file (a rate of 1e-7 for one epoch moves it by ~0)
    src = {k: v.asnumpy() for k, v in mx.nd.load(plain_resnet50).items()}
    got = {k: v.asnumpy() for k, v in mx.nd.load(str(out / 'epoch-0001.params')).items()}
    conv = 'features.4.0.body.0.weight'
    np.testing.assert_allclose(got[conv], src[conv], atol=1e-5)
    assert not np.allclose(got['output.weight'], src['output.weight'], atol=1e-3)


def test_pretrained_backbone_refusals_are_one_line(cifar_dir, plain_resnet50, tmp_path):
    base = ['--data-dir', str(cifar_dir), '--no-download', '--epochs', '1']
    cases = [
        (['--model', 'se_resnet50', '--preset', 'cmpe_preresnet', '--pretrained-backbone',
          plain_resnet50, '--resume', '--save-dir', str(tmp_path / 'a')],
         '--resume were both given: a resumed run continues from its checkpoint, which wins'),
        (['--model', 'se_resnet50', '--preset', 'cmpe_preresnet', '--pretrained-backbone',
          str(tmp_path / 'missing.params'), '--save-dir', str(tmp_path / 'b')],
         'missing.params: no such file'),
        (['--model', TINY, '--pretrained-backbone', plain_resnet50, '--save-dir',
          str(tmp_path / 'c')], 'load_pretrained maps ImageNet ResNets'),
    ]
    junk = tmp_path / 'junk.params'
    junk.write_bytes(b'not weights at all')
    cases.append((['--model', 'se_resnet50', '--preset', 'cmpe_preresnet',
                   '--pretrained-backbone', str(junk), '--save-dir', str(tmp_path / 'd')],
                  'neither a safetensors file'))
    for argv, words in cases:
        code, err = _main(train_cifar, argv + base)
        assert code == 2 and words in err, err
        assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
    # nothing was written for any of them
    assert sorted(os.listdir(str(tmp_path))) == ['junk.params']
