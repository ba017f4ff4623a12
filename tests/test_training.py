"""The training layer: presets against the papers' text, configuration resolution, atomic
checkpoints, the NaN stop, and train_cifar.py run end to end on tiny files in the official
formats (CIFAR-10/100 binary, SVHN .mat) on two CPU contexts, with mixup, a SIGKILL and
resume, and dist_sync against a single process on two devices."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading

import mxnet as mx
import numpy as np
import pytest

from datafiles import synthetic_images, write_cifar10, write_cifar100, write_svhn

from cmpese.data import BatchLoader
from cmpese.training import TrainingDiverged, fit, get_preset, latest_checkpoint
from cmpese.training import checkpoint as ckpt
from cmpese.training.launch import launch
from cmpese.training.cli import (ConfigError, check_resume_config, explicit_keys,
                                 resolve_config)
from cmpese.training.presets import default_preset, lr_steps_in_updates, resolve_epochs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'train_cifar.py')
TINY = 'cmpe_se_wrn10_1_1x1'   # WRN-10-1 (one block a stage) with the 1x1 pair-view unit


# ---------------------------------------------------------------- presets and configuration

def test_presets_are_the_papers_schedules():
    p = get_preset('cmpe_preresnet')      # CMPE-SE: batch 128, 200 epochs, /10 at 100, 150
    assert (p['optimizer'], p['momentum'], p['batch_size'], p['lr'], p['epochs'],
            p['lr_steps'], p['lr_factor']) == ('nag', 0.9, 128, 0.1, 200, [100, 150], 0.1)
    p = get_preset('cmpe_wrn')            # WRN: /5 at 60, 120, 160
    assert (p['epochs'], p['lr_steps'], p['lr_factor']) == (200, [60, 120, 160], 0.2)
    assert get_preset('cmpe_300')['lr_steps'] == [120, 200, 260]
    p = get_preset('cmpe_svhn')           # SVHN: 160 epochs, lr 0.01, /10 at 80, 120
    assert (p['epochs'], p['lr'], p['lr_steps'], p['lr_factor']) == (160, 0.01, [80, 120], 0.1)
    p = get_preset('ini_resnet')          # InI: batch 64, 300 epochs, /10 at 50% and 75%
    assert (p['batch_size'], p['epochs'], p['lr_steps_frac']) == (64, 300, [0.5, 0.75])
    p = get_preset('res_se_net')          # plain momentum SGD, wd 1e-4, 64k its, 32k/48k
    assert (p['optimizer'], p['wd'], p['iterations'], p['lr_steps_iter']) == (
        'sgd', 1e-4, 64000, [32000, 48000])
    with pytest.raises(ValueError, match='Did you mean cmpe_wrn'):
        get_preset('cmpe_wrm')


@pytest.mark.parametrize('model, dataset, preset', [
    ('cmpe_se_wrn28_10_1x1', 'cifar10', 'cmpe_wrn'),
    ('se_preresnet164', 'cifar100', 'cmpe_preresnet'),
    ('ini_preresnet164_square_3', 'cifar10', 'ini_resnet'),
    ('ini_wrn28_10_mix_5_d', 'cifar10', 'ini_wrn'),
    ('ini_allcnn_square_3', 'cifar10', 'ini_other'),
    ('res_se_net44', 'cifar10', 'res_se_net'),
    ('resnet110_cifar', 'cifar100', 'res_se_net'),
    ('cmpe_se_wrn28_10_1x1', 'svhn', 'cmpe_svhn'),
    ('ini_wrn28_10_mix_5_d', 'svhn', 'ini_svhn'),
    ('cmpe_se_preresnet20_1x1', 'digits', 'digits'),
])
def test_default_preset_by_family(model, dataset, preset):
    assert default_preset(model, dataset) == preset


def test_schedule_steps_in_updates_by_hand():
    # 391 iterations an epoch (CIFAR, batch 128): WRN steps after epochs 60, 120, 160
    assert lr_steps_in_updates(get_preset('cmpe_wrn'), 200, 391) == [23460, 46920, 62560]
    # InI ResNet, 300 epochs at 782 iterations (batch 64): 50% and 75% = epochs 150 and 225
    assert lr_steps_in_updates(get_preset('ini_resnet'), 300, 782) == [117300, 175950]
    # Res-SE-Net: 64k iterations = 164 epochs of 391, steps in iterations as given
    cfg = get_preset('res_se_net')
    assert resolve_epochs(cfg, 391) == 164
    assert lr_steps_in_updates(cfg, 164, 391) == [32000, 48000]
    # steps at or past the end are dropped; duplicates collapse
    assert lr_steps_in_updates(dict(lr_steps=[1, 1, 5]), 3, 10) == [10]


def _cfg(argv):
    sys.path.insert(0, ROOT)
    try:
        import train_cifar
    finally:
        sys.path.pop(0)
    parser = train_cifar.build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_keys(parser, argv)
    return resolve_config(args, explicit), explicit


def test_resolve_config_mixup_adds_the_papers_20_epochs():
    cfg, _ = _cfg(['--model', 'cmpe_se_wrn28_10_1x1', '--mixup'])
    assert (cfg['preset'], cfg['epochs'], cfg['lr_steps'], cfg['mixup_off_epochs']) == (
        'cmpe_wrn', 220, [60, 120, 160], 20)
    cfg, explicit = _cfg(['--model', 'cmpe_se_wrn28_10_1x1', '--mixup', '--epochs', '50',
                          '--lr', '0.05', '--lr-steps', '10,20'])
    assert (cfg['epochs'], cfg['lr'], cfg['lr_steps'], cfg['wd']) == (50, 0.05, [10, 20], 5e-4)
    assert {'model', 'mixup', 'epochs', 'lr', 'lr_steps'} <= explicit
    assert 'wd' not in explicit and 'batch_size' not in explicit
    cfg, _ = _cfg(['--model', 'ini_preresnet164_square_3', '--lr-steps', '3'])
    assert cfg['lr_steps'] == [3] and cfg['lr_steps_frac'] is None
    with pytest.raises(ConfigError, match='no mixup epoch'):
        _cfg(['--model', 'wrn16_8', '--mixup', '--epochs', '5'])


def test_resume_refuses_a_changed_configuration(tmp_path):
    cfg, explicit = _cfg(['--model', 'wrn16_8', '--save-dir', str(tmp_path)])
    with pytest.raises(ConfigError, match='no run to continue'):
        check_resume_config(cfg, explicit, str(tmp_path))
    (tmp_path / 'config.json').write_text(json.dumps(cfg))
    cfg2, explicit2 = _cfg(['--model', 'wrn16_8', '--save-dir', str(tmp_path),
                            '--batch-size', '32', '--resume', '--cpus', '2'])
    with pytest.raises(ConfigError, match=r'--batch-size: saved 128, given 32'):
        check_resume_config(cfg2, explicit2, str(tmp_path))
    cfg3, explicit3 = _cfg(['--model', 'wrn16_8', '--save-dir', str(tmp_path), '--resume',
                            '--cpus', '2'])
    out = check_resume_config(cfg3, explicit3, str(tmp_path))
    assert out['cpus'] == 2 and out['resume'] and out['lr'] == 0.1
    assert out['resume_changes'] == []
    # the values a NaN stop advises to change may change, and are listed
    cfg4, explicit4 = _cfg(['--model', 'wrn16_8', '--save-dir', str(tmp_path), '--resume',
                            '--lr', '0.01', '--momentum', '0.5', '--epochs', '7'])
    out = check_resume_config(cfg4, explicit4, str(tmp_path))
    assert (out['lr'], out['momentum'], out['epochs'], out['wd']) == (0.01, 0.5, 7, 5e-4)
    assert out['resume_changes'] == ['--epochs 200 -> 7', '--lr 0.1 -> 0.01',
                                     '--momentum 0.9 -> 0.5']
    (tmp_path / 'config.json').write_text(json.dumps(cfg)[:40])
    with pytest.raises(ConfigError, match=r'config.json is not valid JSON'):
        check_resume_config(cfg3, explicit3, str(tmp_path))


def test_print_config_and_device_errors(capsys):
    sys.path.insert(0, ROOT)
    try:
        import train_cifar
    finally:
        sys.path.pop(0)
    assert train_cifar.main(['--model', 'ini_preresnet164_square_3', '--dataset', 'cifar100',
                             '--print-config']) == 0
    out = capsys.readouterr().out
    assert 'preset ini_resnet' in out and 'InI paper' in out
    assert re.search(r'batch_size\s+64', out) and re.search(r'lr_steps_frac\s+\[0.5, 0.75\]', out)
    from cmpese.training.cli import contexts
    assert contexts(cpus=3) == [mx.cpu(0), mx.cpu(1), mx.cpu(2)]
    if mx.context.num_gpus() == 0:
        with pytest.raises(ConfigError, match='no GPU'):
            contexts(gpus='0,1')
    with pytest.raises(ConfigError, match='comma-separated'):
        contexts(gpus='a,b')


# ---------------------------------------------------------------- checkpoints and NaN stop

def _tiny_net(classes=4):
    import cmpese
    net = cmpese.get_model(TINY, classes=classes)
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(), ctx=[mx.cpu()])
    return net


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def test_checkpoint_survives_a_crash_while_writing(tmp_path, monkeypatch):
    net = _tiny_net()
    net(mx.nd.zeros((2, 3, 32, 32)))
    trainer = mx.gluon.Trainer(net.collect_params(), 'nag', {'learning_rate': 0.1,
                                                              'momentum': 0.9})
    ckpt.save_checkpoint(str(tmp_path), 1, net, trainer, {'history': [1]})
    real = os.replace

    def crash(src, dst):
        if dst.endswith(ckpt.RECORD):
            raise KeyboardInterrupt('killed while writing the record')
        return real(src, dst)
    monkeypatch.setattr(ckpt.os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(str(tmp_path), 2, net, trainer, {'history': [1, 2]})
    monkeypatch.undo()
    record = latest_checkpoint(str(tmp_path))
    assert record['epoch'] == 1 and record['history'] == [1]
    assert not [n for n in os.listdir(str(tmp_path)) if '.tmp-' in n]


class _NanOnEpoch(object):
    """A loader that hands a NaN pixel in the first batch of epoch ``bad``."""

    def __init__(self, loader, bad):
        self.loader, self.bad = loader, bad

    def __len__(self):
        return len(self.loader)

    def epoch(self, e, mixup_alpha=0.0):
        for i, (x, y) in enumerate(self.loader.epoch(e, mixup_alpha)):
            if e == self.bad and i == 0:
                x[0, 0, 5, 5] = float('nan')
            yield x, y


def test_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    images, labels = synthetic_images(32, 4)
    train = BatchLoader(images, labels, 16, shuffle=True, augment=True, seed=0, classes=4)
    test = BatchLoader(images, labels, 16)
    cfg = dict(get_preset('digits'), classes=4, seed=0, epochs=3, lr_steps=[2], mixup=False,
               mixup_alpha=1.0, mixup_off_epochs=0, save_every=1, model=TINY)
    net = _tiny_net()
    # (oneDNN's ReLU maps NaN to 0, so here the NaN reaches the gradients, not the loss)
    with pytest.raises(TrainingDiverged, match=r'became nan at epoch 2, iteration 1 .*'
                                               r'last good checkpoint'):
        fit(net, _NanOnEpoch(train, 1), test, cfg, [mx.cpu()], str(tmp_path), progress=False)
    record = latest_checkpoint(str(tmp_path))
    assert record['epoch'] == 1 and len(record['history']) == 1
    saved = _params(str(tmp_path / record['params']))
    assert all(np.isfinite(v).all() for v in saved.values())
    # the NaN batch did not update the weights (BN running statistics did see it in memory)
    for name, p in net._collect_params_with_prefix().items():
        if 'running' not in name:
            np.testing.assert_array_equal(p.data().asnumpy(), saved[name], err_msg=name)
    assert sorted(os.listdir(str(tmp_path))) == [
        'best.params', 'checkpoint.json', 'epoch-0001.json', 'epoch-0001.params',
        'epoch-0001.states',
        'metrics.csv', 'training-curve.png']


# ---------------------------------------------------------------- the script end to end

def _run(args, cwd, env=None, timeout=600, check=True, threads=1):
    """Run train_cifar.py; ``threads=None`` leaves the OpenMP threads to the script."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop('OMP_NUM_THREADS', None)
    if threads:
        full_env['OMP_NUM_THREADS'] = str(threads)
    proc = subprocess.run([sys.executable, SCRIPT] + list(args), cwd=str(cwd), env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          universal_newlines=True)
    if check and proc.returncode != 0:
        raise AssertionError('train_cifar.py %s failed (%d):\n%s' % (
            ' '.join(args), proc.returncode, proc.stderr[-4000:]))
    return proc


@pytest.fixture(scope='module')
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('cifar')
    write_cifar10(root, synthetic_images(96, 10, seed=1), synthetic_images(40, 10, seed=2))
    return root


def _history(save_dir):
    with open(os.path.join(str(save_dir), 'metrics.csv')) as f:
        return list(csv.DictReader(f))


def test_cifar10_two_devices_mixup_export(cifar_dir, tmp_path):
    out = tmp_path / 'run'
    proc = _run(['--model', TINY, '--dataset', 'cifar10', '--data-dir', str(cifar_dir),
          '--no-download', '--cpus', '2', '--kvstore', 'device', '--mixup',
          '--mixup-off-epochs', '1', '--epochs', '3', '--batch-size', '16', '--lr', '0.05',
          '--lr-steps', '2', '--export', '--save-dir', str(out), '--no-progress'], tmp_path)
    rows = _history(out)
    assert [r['epoch'] for r in rows] == ['1', '2', '3']
    assert [r['mixup'] for r in rows] == ['True', 'True', 'False']
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.05, 0.05, 0.01])  # WRN: /5
    assert rows[2]['lr'] == '0.01'          # not 0.010000000000000002 (0.05 x 0.2)
    assert all(np.isfinite(float(r['train_loss'])) for r in rows)
    # top-5 (mx.metric.TopKAccuracy) for more than 5 classes: never above the top-1 error
    assert all(0 <= float(r['test_top5_error']) <= float(r['test_error']) for r in rows)
    config = json.loads((out / 'config.json').read_text())
    assert (config['cpus'], config['kvstore'], config['mixup'], config['preset']) == (
        2, 'device', True, 'cmpe_wrn')
    record = latest_checkpoint(str(out))
    assert record['epoch'] == 3 and len(record['history']) == 3
    for name in ('train.log', 'training-curve.png', 'best.params', 'result.json',
                 'export/%s-symbol.json' % TINY, 'export/%s-0000.params' % TINY):
        assert (out / name).exists(), name
    assert (out / 'training-curve.png').read_bytes()[:4] == b'\x89PNG'
    log_text = (out / 'train.log').read_text()
    assert '[epoch 3/3]' in log_text
    # MXNet's "Update[12]: Change learning rate to ..." is a debug line; no bar in a pipe
    assert 'Change learning rate' not in log_text and '\r' not in proc.stderr
    # the best epoch is exported (by default), with the data config beside it
    best = json.loads((out / 'result.json').read_text())['exported']
    assert best['source'] == 'best' and best['epoch'] == int(min(
        rows, key=lambda r: (float(r['test_error']), int(r['epoch'])))['epoch'])
    assert 'exporting the best epoch, %d of 3' % best['epoch'] in log_text
    data_cfg = json.loads((out / 'data_config.json').read_text())
    assert data_cfg == json.loads((out / 'export' / (TINY + '-data.json')).read_text())
    assert (data_cfg['dataset'], data_cfg['input_size'], data_cfg['classes'][:2]) == (
        'cifar10', 32, ['airplane', 'automobile'])
    # the export is the trained network of the best epoch
    from cmpese.tools.export import load_exported
    import cmpese
    net = cmpese.get_model(TINY, classes=10)
    net.load_parameters(str(out / 'best.params'))
    x = mx.nd.random.uniform(shape=(4, 3, 32, 32))
    exported = load_exported(str(out / 'export' / TINY))
    np.testing.assert_allclose(exported(x).asnumpy(), net(x).asnumpy(), rtol=1e-4, atol=1e-5)
    # starting again in the same directory without --resume refuses and changes nothing
    proc = _run(['--model', TINY, '--data-dir', str(cifar_dir), '--save-dir', str(out),
                 '--epochs', '3', '--no-progress', '--no-download'], tmp_path, check=False)
    assert proc.returncode == 2 and 'Continue that run with --resume' in proc.stderr
    assert latest_checkpoint(str(out))['epoch'] == 3


def test_cifar100_and_svhn_files(tmp_path):
    write_cifar100(tmp_path / 'c100', synthetic_images(40, 100, seed=3),
                   synthetic_images(20, 100, seed=4))
    write_svhn(tmp_path / 'svhn', synthetic_images(32, 10, seed=5),
               synthetic_images(16, 10, seed=6), extra=synthetic_images(16, 10, seed=7))
    out = tmp_path / 'c100run'
    _run(['--model', TINY, '--dataset', 'cifar100', '--data-dir', str(tmp_path / 'c100'),
          '--epochs', '1', '--batch-size', '8', '--save-dir', str(out), '--no-progress'],
         tmp_path)
    row = _history(out)[0]
    assert 0 <= float(row['test_top5_error']) <= float(row['test_error']) <= 1
    out = tmp_path / 'svhnrun'
    proc = _run(['--model', TINY, '--dataset', 'svhn', '--svhn-extra', '--data-dir',
                 str(tmp_path / 'svhn'), '--epochs', '1', '--save-dir', str(out),
                 '--no-progress'], tmp_path)
    assert 'svhn: 48 train / 16 test images' in proc.stderr
    config = json.loads((out / 'config.json').read_text())
    assert (config['preset'], config['lr'], config['batch_size']) == ('cmpe_svhn', 0.01, 128)


def test_clear_errors_for_missing_data_and_unknown_model(tmp_path):
    empty = tmp_path / 'nothing'
    proc = _run(['--model', TINY, '--data-dir', str(empty), '--no-download', '--save-dir',
                 str(tmp_path / 'r')], tmp_path, check=False)
    assert proc.returncode == 2
    assert 'cifar-10-batches-bin' in proc.stderr and 'data_batch_1.bin' in proc.stderr
    assert '--data-dir' in proc.stderr and not empty.exists()
    assert not (tmp_path / 'r').exists()
    proc = _run(['--model', 'cmpe_se_wrn28_10_1x2', '--save-dir', str(tmp_path / 'r')],
                tmp_path, check=False)
    assert proc.returncode == 2 and 'cmpe_se_wrn28_10_1x1' in proc.stderr


def test_readme_main_job_reaches_95_percent_on_digits(tmp_path):
    # what `bash run.sh main` runs: CMPE-SE pre-act ResNet-20 on the bundled digits, 6 epochs
    out = tmp_path / 'main'
    _run(['--model', 'cmpe_se_preresnet20_1x1', '--dataset', 'digits', '--export',
          '--save-dir', str(out), '--no-progress'], tmp_path, threads=None)
    final = _history(out)[-1]
    assert final['epoch'] == '6'
    assert 1 - float(final['test_error']) >= 0.95, final
    assert (out / 'export' / 'cmpe_se_preresnet20_1x1-symbol.json').exists()


def _run_until(args, cwd, predicate, timeout=300, sig=signal.SIGKILL):
    """Start the script, watch its stderr, send ``sig`` as soon as ``predicate(text)``."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, SCRIPT] + list(args), cwd=str(cwd), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    killed = threading.Event()

    def watch():
        buf = b''
        while True:
            chunk = proc.stderr.read1(4096) if hasattr(proc.stderr, 'read1') else \
                proc.stderr.read(1)
            if not chunk:
                return
            buf += chunk
            seen.append(chunk)
            if not killed.is_set() and predicate(buf.decode('utf8', 'replace')):
                killed.set()
                proc.send_signal(sig)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    proc.wait(timeout=timeout)
    thread.join(timeout=10)
    return proc.returncode, b''.join(seen).decode('utf8', 'replace')


def _mid_epoch(text, epoch, total):
    """True once the log line of ``epoch`` says 2..total-3 of ``total`` iterations (stderr is
    not a terminal: a line every --log-interval iterations, "epoch 2/3 | 3/12 | ...")."""
    if epoch not in text:
        return False
    done = re.findall(r'\| *(\d+)/%d ' % total, text.split(epoch)[-1])
    return any(2 <= int(n) <= total - 3 for n in done)


def _resume_args(cifar_dir):
    return ['--model', TINY, '--data-dir', str(cifar_dir), '--no-download', '--epochs', '3',
            '--batch-size', '8', '--lr', '0.05', '--lr-steps', '2', '--mixup',
            '--mixup-off-epochs', '1', '--seed', '7', '--log-interval', '1']


@pytest.fixture(scope='module')
def straight_run(cifar_dir, tmp_path_factory):
    """The uninterrupted run that killed and interrupted runs must equal."""
    out = tmp_path_factory.mktemp('straight') / 'run'
    _run(_resume_args(cifar_dir) + ['--save-dir', str(out), '--no-progress'], out.parent)
    return out


def _assert_bit_exact(a, b):
    a, b = _params(str(a)), _params(str(b))
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(cifar_dir, straight_run,
                                                                    tmp_path):
    args = _resume_args(cifar_dir)
    killed_dir = tmp_path / 'killed'
    # The log shows "epoch 2/3 | 3/12 | ...": kill there, in the middle of epoch 2.
    code, text = _run_until(args + ['--save-dir', str(killed_dir)], tmp_path,
                            lambda t: _mid_epoch(t, 'epoch 2/3', 12))
    assert code == -signal.SIGKILL, text[-2000:]
    assert latest_checkpoint(str(killed_dir))['epoch'] == 1
    proc = _run(args + ['--save-dir', str(killed_dir), '--resume', '--no-progress'], tmp_path)
    assert 'resumed from' in proc.stderr
    rows = _history(killed_dir)
    assert [r['epoch'] for r in rows] == ['1', '2', '3']
    assert [r['mixup'] for r in rows] == ['True', 'True', 'False']
    # bit for bit: the interrupted epoch is replayed with the same draws and update counts
    _assert_bit_exact(straight_run / 'epoch-0003.params', killed_dir / 'epoch-0003.params')
    straight = _history(straight_run)
    assert [r['test_error'] for r in rows] == [r['test_error'] for r in straight]


@pytest.mark.parametrize('sig, status', [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_says_where_and_resumes(cifar_dir, straight_run, tmp_path, sig, status):
    args = _resume_args(cifar_dir)
    run_dir = tmp_path / 'run'
    code, text = _run_until(args + ['--save-dir', str(run_dir)], tmp_path,
                            lambda t: _mid_epoch(t, 'epoch 2/3', 12), sig=sig)
    assert code == status, text[-2000:]
    assert 'Traceback' not in text
    name = signal.Signals(sig).name
    line = ('interrupted at epoch 2, iteration %s of 12; resume with --resume (%s; the last '
            'complete checkpoint is epoch-0001 (after epoch 1) in %s)')
    m = re.search(r'train_cifar.py: interrupted at epoch 2, iteration (\d+) of 12; ', text)
    assert m and 2 <= int(m.group(1)) <= 10, text[-1500:]
    assert text.rstrip().endswith(line % (m.group(1), name, run_dir))
    assert (line % (m.group(1), name, run_dir)) in (run_dir / 'train.log').read_text()
    assert latest_checkpoint(str(run_dir))['epoch'] == 1
    assert not [n for n in os.listdir(str(run_dir)) if '.tmp-' in n]
    _run(args + ['--save-dir', str(run_dir), '--resume', '--no-progress'], tmp_path)
    _assert_bit_exact(straight_run / 'epoch-0003.params', run_dir / 'epoch-0003.params')


def test_dist_sync_two_workers_match_one_process_on_two_devices(cifar_dir, tmp_path):
    args = ['--model', TINY, '--data-dir', str(cifar_dir), '--no-download', '--epochs', '1',
            '--batch-size', '16', '--lr', '0.05', '--seed', '3', '--no-progress']
    _run(args + ['--cpus', '2', '--kvstore', 'device', '--save-dir', str(tmp_path / 'local')],
         tmp_path)
    # one scheduler, one server and two workers on 127.0.0.1
    results = launch([sys.executable, SCRIPT] + args + [
        '--kvstore', 'dist_sync', '--save-dir', str(tmp_path / 'dist')], workers=2, servers=1,
        env=dict(os.environ, OMP_NUM_THREADS='1'), cwd=str(tmp_path), timeout=600,
        capture=True)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    assert any('(worker 1 of 2)' in err for _, _, err in results)
    assert any('2 worker(s)' in err for _, _, err in results)
    # every line of each worker names it; the lead worker alone prints the summary
    by_rank = sorted(results, key=lambda r: '[worker 1/2]' in r[2])       # rank 0 first
    for rank, (_, _, err) in enumerate(by_rank):
        lines = [l for l in err.splitlines() if re.match(r'\d{4}-\d\d-\d\d ', l)]
        tag = ' [worker %d/2] ' % rank
        first = next(i for i, l in enumerate(lines) if tag in l)   # once the rank is known
        assert all(tag in l for l in lines[first:]), err[-2000:]
        assert ('done: best test error' in err) == (rank == 0), err[-2000:]
    a = _params(str(tmp_path / 'local' / 'epoch-0001.params'))
    b = _params(str(tmp_path / 'dist' / 'epoch-0001.params'))
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-5, err_msg=name)


# ---------------------------------------------------------------- what train_imagenet.py adds

def test_warmup_and_multi_precision_in_the_trainer():
    from cmpese.training.schedule import make_trainer
    net = _tiny_net()
    cfg = dict(get_preset('digits'), lr=0.4, lr_steps=[3], lr_factor=0.1, warmup_epochs=2,
               warmup_begin_lr=0.0, dtype='float16')
    trainer, steps = make_trainer(net, cfg, 10, 5, None)
    assert steps == [30] and trainer._optimizer.multi_precision
    sched = trainer._optimizer.lr_scheduler
    # linear from 0 over the 20 updates of 2 epochs, then 0.4, /10 after update 30
    assert [sched(n) for n in (0, 5, 10, 19)] == pytest.approx([0.0, 0.1, 0.2, 0.38])
    assert [sched(n) for n in (20, 30, 31, 49)] == pytest.approx([0.4, 0.4, 0.04, 0.04])
    cfg.update(lr_steps=None, dtype='float32')        # warmup without steps
    trainer, steps = make_trainer(net, cfg, 10, 5, None)
    assert steps == [] and not trainer._optimizer.multi_precision
    assert trainer._optimizer.lr_scheduler(10) == pytest.approx(0.2)
    assert trainer._optimizer.lr_scheduler(49) == pytest.approx(0.4)


class _OneHot(object):
    """The loader's batches with (B, classes) one-hot targets: what a label-smoothing loader
    with smoothing 0 gives."""

    def __init__(self, loader, classes):
        self.loader, self.classes = loader, classes

    def __len__(self):
        return len(self.loader)

    def epoch(self, e, mixup_alpha=0.0):
        for x, y in self.loader.epoch(e, mixup_alpha):
            yield x, mx.nd.one_hot(y, self.classes)


def test_soft_targets_without_mixup_use_the_soft_loss(tmp_path):
    images, labels = synthetic_images(32, 4)
    cfg = dict(get_preset('digits'), classes=4, seed=0, epochs=1, lr_steps=[], mixup=False,
               mixup_alpha=1.0, mixup_off_epochs=0, save_every=1, model=TINY)
    out = []
    for i, wrap in enumerate((lambda l: l, lambda l: _OneHot(l, 4))):
        train = BatchLoader(images, labels, 16, shuffle=True, seed=0, classes=4)
        state = fit(_tiny_net(), wrap(train), BatchLoader(images, labels, 16), cfg, [mx.cpu()],
                    str(tmp_path / str(i)), progress=False)
        out.append((state['history'][0], _params(str(tmp_path / str(i) / 'epoch-0001.params'))))
    (row_a, a), (row_b, b) = out
    assert row_a['train_loss'] == pytest.approx(row_b['train_loss'], rel=1e-5)
    assert row_a['train_error'] == row_b['train_error']
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-6, err_msg=name)
