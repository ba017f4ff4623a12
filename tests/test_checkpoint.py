"""Checkpoints are never silently wrong: SHA-256 verified on --resume with a fallback to the
newest intact checkpoint, truncated records named, nothing non-finite written, the NaN
stop's advice accepted by --resume, stale temporary files removed, a full disk reported in
one line with the last checkpoint still resumable, --keep-checkpoints, and a resumed run
(two devices) equal bit for bit to an uninterrupted one, update counts included."""
import json
import os
import re
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from datafiles import synthetic_images, write_cifar10

from cmpese.data import BatchLoader
from cmpese.training import (TrainingDiverged, find_checkpoint, fit, get_preset,
                             latest_checkpoint)
from cmpese.training import checkpoint as ckpt
from cmpese.training.fit import Run, end_of_epoch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'train_cifar.py')
TINY = 'cmpe_se_wrn10_1_1x1'


def _env():
    return dict(os.environ, OMP_NUM_THREADS='1')


def _run(args, cwd, cmd=None, check=True):
    proc = subprocess.run((cmd or [sys.executable, SCRIPT]) + list(args), cwd=str(cwd),
                          env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError('%s failed (%d):\n%s' % (args, proc.returncode, proc.stderr[-3000:]))
    return proc


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def _assert_same(a, b):
    a, b = _params(a), _params(b)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('cifar')
    write_cifar10(root, synthetic_images(48, 10, seed=1), synthetic_images(16, 10, seed=2))
    return root


def _args(data_dir, save_dir, epochs, lr='0.05'):
    return ['--model', TINY, '--data-dir', str(data_dir), '--no-download', '--epochs',
            str(epochs), '--batch-size', '8', '--lr', lr, '--lr-steps', '2', '--seed', '5',
            '--save-dir', str(save_dir), '--no-progress']


@pytest.fixture(scope='module')
def runs(data_dir, tmp_path_factory):
    """A 3-epoch run, and a 2-epoch run of the same seed (its first two epochs are the same)."""
    root = tmp_path_factory.mktemp('runs')
    _run(_args(data_dir, root / 'three', 3), root)
    _run(_args(data_dir, root / 'two', 2), root)
    return root


def _copy(runs, tmp_path, name='two'):
    dest = tmp_path / name
    shutil.copytree(str(runs / name), str(dest))
    return dest


def test_record_holds_the_sha256_of_every_file(runs):
    record = json.loads((runs / 'two' / 'checkpoint.json').read_text())
    assert record['epoch'] == 2 and record['format'] == 2
    assert sorted(record['sha256']) == ['epoch-0002.params', 'epoch-0002.states']
    for name, digest in record['sha256'].items():
        assert ckpt.sha256_file(str(runs / 'two' / name)) == digest
    # the per-checkpoint records of the kept checkpoints (--keep-checkpoints 2)
    assert sorted(n for n in os.listdir(str(runs / 'two')) if n.startswith('epoch-')) == [
        'epoch-0001.json', 'epoch-0001.params', 'epoch-0001.states', 'epoch-0002.json',
        'epoch-0002.params', 'epoch-0002.states']


def test_flipped_bytes_are_detected_and_resume_falls_back_bit_exact(runs, data_dir, tmp_path):
    run = _copy(runs, tmp_path)
    path = run / 'epoch-0002.params'
    raw = bytearray(path.read_bytes())
    size = len(raw)
    for i in range(size // 2, size // 2 + 4096):      # 4 KB overwritten, same size
        raw[i] ^= 0xA5
    path.write_bytes(bytes(raw))
    assert path.stat().st_size == size
    proc = _run(_args(data_dir, run, 3) + ['--resume'], tmp_path)
    assert 'epoch-0002.params does not match the SHA-256 recorded in checkpoint.json' in \
        proc.stderr
    assert 'resuming from epoch-0001 (after epoch 1), the newest intact checkpoint' in proc.stderr
    assert 'resumed with a change: --epochs 2 -> 3' in proc.stderr
    # epochs 2 and 3 trained again from epoch 1: the parameters of the straight 3-epoch run
    _assert_same(run / 'epoch-0003.params', runs / 'three' / 'epoch-0003.params')
    rows = (run / 'metrics.csv').read_text().strip().splitlines()
    assert len(rows) == 4 and rows[-1].startswith('3,')
    assert json.loads((run / 'config.json').read_text())['epochs'] == 3


def test_missing_file_and_truncated_record_fall_back(runs, tmp_path):
    run = _copy(runs, tmp_path)
    (run / 'epoch-0002.states').unlink()
    record, notes = find_checkpoint(str(run))
    assert record['epoch'] == 1
    assert notes == ['the checkpoint after epoch 2 is not intact: epoch-0002.states is missing']
    shutil.rmtree(str(run))
    run = _copy(runs, tmp_path)
    text = (run / 'checkpoint.json').read_text()
    (run / 'checkpoint.json').write_text(text[:len(text) // 2])
    record, notes = find_checkpoint(str(run))
    assert record['epoch'] == 2            # from epoch-0002.json
    assert len(notes) == 1 and re.match(r'.*checkpoint.json is not valid JSON \(.*\): the '
                                        r'checkpoint record was truncated', notes[0])


def test_no_intact_checkpoint_is_one_line(runs, data_dir, tmp_path):
    run = _copy(runs, tmp_path)
    for e in (1, 2):
        p = run / ('epoch-%04d.params' % e)
        p.write_bytes(p.read_bytes()[::-1])
    proc = _run(_args(data_dir, run, 2) + ['--resume'], tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('train_cifar.py: error: no intact checkpoint in %s' % run)
    assert 'epoch-0002.params does not match' in last and 'epoch-0001.params does not match' in last
    # a new run there is refused too: nothing is overwritten
    proc = _run(_args(data_dir, run, 2), tmp_path, check=False)
    assert proc.returncode == 2 and 'already holds a checkpoint' in proc.stderr


def test_stale_temporary_files_are_removed(runs, data_dir, tmp_path):
    run = _copy(runs, tmp_path)
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = run / ('epoch-0003.params.tmp-%d' % dead.pid)
    stale.write_bytes(b'half a file')
    proc = _run(_args(data_dir, run, 2) + ['--resume'], tmp_path)
    assert not stale.exists() and 'left by an interrupted write' in proc.stderr


_FULL_DISK = '''
import errno, os, sys
sys.path.insert(0, %r)
import train_cifar
import mxnet as mx
from cmpese import errors
real, calls = mx.nd.save, [0]
def save(fname, data):       # the disk fills up after the first epoch's two params files
    calls[0] += 1
    if calls[0] > 2:
        with open(fname, 'wb') as f:
            f.write(b'partial')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), fname)
    return real(fname, data)
mx.nd.save = save             # what Block.save_parameters calls
sys.exit(errors.run(train_cifar.main, prog='train_cifar.py'))
'''


def test_disk_full_one_line_logged_and_resumable(data_dir, tmp_path):
    run = tmp_path / 'full'
    script = tmp_path / 'full_disk.py'
    script.write_text(_FULL_DISK % ROOT)
    proc = _run(_args(data_dir, run, 2), tmp_path, cmd=[sys.executable, str(script)],
                check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == ('train_cifar.py: error: cannot write in %s: no space left on the device; '
                    'the last complete checkpoint is epoch-0001 (after epoch 1) in %s. Free '
                    'space there (or fix its permissions) and continue with --resume.'
                    % (run, run))
    assert 'no space left on the device' in (run / 'train.log').read_text()
    assert latest_checkpoint(str(run))['epoch'] == 1
    assert not [n for n in os.listdir(str(run)) if '.tmp-' in n]
    _run(_args(data_dir, run, 2) + ['--resume'], tmp_path)
    assert latest_checkpoint(str(run))['epoch'] == 2


def test_nan_stop_advice_is_accepted_by_resume(data_dir, tmp_path):
    run = tmp_path / 'nan'
    proc = _run(_args(data_dir, run, 2, lr='1000'), tmp_path, check=False)
    assert proc.returncode == 3 and 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    # a NaN/inf in the loss or a gradient, or (at the end of the epoch) in a BN statistic
    assert re.search(r'(became (nan|inf) at epoch 1, iteration \d+|not finite after epoch 1) '
                     r'\(learning rate 1000\)', last), last
    assert 'no checkpoint was written yet (none is good)' in last
    advice = re.search(r'with a lower rate: (--resume --lr [0-9.e+-]+)', last).group(1).split()
    assert advice == ['--resume', '--lr', '100']
    assert not os.path.exists(str(run / 'checkpoint.json'))
    # the advice as given: accepted by --resume (it may diverge again: exit 3, not 2)
    base = [a for a in _args(data_dir, run, 2) if a not in ('--lr', '0.05')]
    proc = _run(base + advice, tmp_path, check=False)
    assert proc.returncode in (0, 3) and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert 'resumed with a change: --lr 1000.0 -> 100.0' in proc.stderr


# ---------------------------------------------------------------- in this process

def _tiny_net(classes=4):
    import cmpese
    net = cmpese.get_model(TINY, classes=classes)
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(), ctx=[mx.cpu()])
    return net


def _cfg(**kw):
    # the digits preset with the schedule these tests compute by hand: lr 0.1, no warm-up
    cfg = dict(get_preset('digits'), lr=0.1, warmup_epochs=0, classes=4, seed=0, epochs=3,
               lr_steps=[2], mixup=False,
               mixup_alpha=1.0, mixup_off_epochs=0, save_every=1, model=TINY)
    cfg.update(kw)
    return cfg


def _loaders(n=32, batch=16):
    images, labels = synthetic_images(n, 4)
    return (BatchLoader(images, labels, batch, shuffle=True, augment=True, seed=0, classes=4),
            BatchLoader(images, labels, 16))


class _InfStatistic(object):
    """A loader whose epoch ``bad`` leaves an infinite BatchNorm running variance behind
    (the loss stays finite: training-mode BN does not read it)."""

    def __init__(self, loader, net, bad):
        self.loader, self.net, self.bad = loader, net, bad

    def __len__(self):
        return len(self.loader)

    def epoch(self, e, mixup_alpha=0.0):
        for item in self.loader.epoch(e, mixup_alpha):
            yield item
        if e == self.bad:
            name = [k for k in self.net.collect_params() if k.endswith('running_var')][0]
            p = self.net.collect_params()[name]
            p.set_data(mx.nd.full(p.shape, float('inf')))


def test_nothing_nonfinite_is_written(tmp_path):
    train, test = _loaders()
    net = _tiny_net()
    with pytest.raises(TrainingDiverged) as err:
        fit(net, _InfStatistic(train, net, 1), test, _cfg(), [mx.cpu()], str(tmp_path),
            progress=False)
    msg = str(err.value)
    assert 'running_var of the parameters is not finite after epoch 2' in msg
    assert 'the last good checkpoint is epoch-0001 (after epoch 1)' in msg
    assert 'continue from it with a lower rate: --resume --lr 0.01' in msg
    record = latest_checkpoint(str(tmp_path))
    assert record['epoch'] == 1
    assert (tmp_path / 'metrics.csv').read_text().count('\n') == 2     # header + epoch 1
    for path in (tmp_path / 'epoch-0001.params', tmp_path / 'best.params'):
        assert all(np.isfinite(v).all() for v in _params(path).values())
    assert not (tmp_path / 'epoch-0002.params').exists()


def test_nan_message_names_the_good_checkpoint(tmp_path):
    class NanOnEpoch(object):
        def __init__(self, loader):
            self.loader = loader

        def __len__(self):
            return len(self.loader)

        def epoch(self, e, mixup_alpha=0.0):
            for i, (x, y) in enumerate(self.loader.epoch(e, mixup_alpha)):
                if e == 1 and i == 1:
                    x[0, 0, 5, 5] = float('nan')
                yield x, y
    train, test = _loaders()
    with pytest.raises(TrainingDiverged) as err:
        fit(_tiny_net(), NanOnEpoch(train), test, _cfg(), [mx.cpu()], str(tmp_path),
            progress=False)
    assert re.search(r'became nan at epoch 2, iteration 2 .*the last good checkpoint is '
                     r'epoch-0001 \(after epoch 1\) in %s\. To continue from it with a lower '
                     r'rate: --resume --lr 0\.01' % re.escape(str(tmp_path)), str(err.value))
    assert err.value.exit_code == 3


def test_keep_checkpoints(tmp_path):
    net = _tiny_net()
    net(mx.nd.zeros((1, 3, 32, 32)))
    trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    for keep, folder in ((1, 'one'), (0, 'all')):
        d = tmp_path / folder
        d.mkdir()
        for e in (1, 2, 3):
            ckpt.save_checkpoint(str(d), e, net, trainer, {'history': []}, keep=keep)
        kept = sorted(n for n in os.listdir(str(d)) if n.endswith('.params'))
        assert kept == (['epoch-0003.params'] if keep else
                        ['epoch-0001.params', 'epoch-0002.params', 'epoch-0003.params'])
    with pytest.raises(ValueError, match='keep must be >= 0'):
        ckpt.save_checkpoint(str(tmp_path / 'one'), 4, net, trainer, {}, keep=-1)


class _Stop(Exception):
    pass


def _stop_after(epoch):
    def hook(run, row):
        if row['epoch'] == epoch:
            raise _Stop()
    return hook


def _optimizer_counts(trainer):
    opt = trainer._optimizer
    return opt.num_update, {d: dict(c) for d, c in opt._all_index_update_counts.items()}


def test_resume_on_two_devices_is_bit_exact_with_update_counts(tmp_path):
    """Stopped after epoch 1 of 3 (after its checkpoint), resumed in a new network and
    trainer: the parameters, the learning rate and the optimizer's update counts (per device,
    per parameter) are those of the uninterrupted run."""
    ctx = [mx.cpu(0), mx.cpu(1)]
    cfg = _cfg(lr_steps=[1, 2], mixup=True, mixup_off_epochs=1, classes=4)

    def go(save, resume=False, hooks=()):
        train, test = _loaders(48, 8)
        net = _tiny_net()
        net.initialize(mx.init.Xavier(), ctx=ctx, force_reinit=True)
        kv = mx.kv.create('device')
        captured = {}

        def capture(run, row):
            captured['trainer'] = run.trainer
        state = fit(net, train, test, cfg, ctx, str(save), kvstore=kv, resume=resume,
                    progress=False, hooks=(capture,) + tuple(hooks))
        return net, captured['trainer'], state
    straight_net, straight_trainer, straight = go(tmp_path / 'straight')
    with pytest.raises(_Stop):
        go(tmp_path / 'split', hooks=[_stop_after(1)])
    net, trainer, state = go(tmp_path / 'split', resume=True)
    _assert_same(tmp_path / 'split' / 'epoch-0003.params',
                 tmp_path / 'straight' / 'epoch-0003.params')
    assert _optimizer_counts(trainer) == _optimizer_counts(straight_trainer)
    assert trainer.learning_rate == straight_trainer.learning_rate == pytest.approx(0.001)
    assert [r['test_error'] for r in state['history']] == \
        [r['test_error'] for r in straight['history']]
    assert [r['lr'] for r in state['history']] == pytest.approx([0.1, 0.01, 0.001])


def test_a_real_failed_write_in_mxnet_is_one_line(tmp_path):
    """MXNet's C++ writer (nd.save, behind save_parameters) reports a real ENOSPC only as
    "FileStream.Write incomplete": make the checkpoint's temporary file /dev/full."""
    if not os.path.exists('/dev/full'):
        pytest.skip('no /dev/full here')
    from cmpese.errors import UserError
    net = _tiny_net()
    net(mx.nd.zeros((1, 3, 32, 32)))
    cfg = _cfg(epochs=1)
    run = Run(net, cfg, [mx.cpu()], str(tmp_path), None, 2, 1)
    os.symlink('/dev/full', str(tmp_path / ('epoch-0001.params.tmp-%d' % os.getpid())))
    row = dict(epoch=1, lr=0.1)
    run.state['best_epoch'] = 0
    with pytest.raises(UserError) as err:
        end_of_epoch(run, row, (ckpt_hook_only,))
    msg = str(err.value)
    assert msg.startswith('cannot write in %s: MXNet could not write a file (FileStream.Write '
                          'incomplete; ' % tmp_path), msg
    assert 'no checkpoint was written yet (none is complete)' in msg
    assert not os.path.lexists(str(tmp_path / ('epoch-0001.params.tmp-%d' % os.getpid())))
    assert latest_checkpoint(str(tmp_path)) is None


def ckpt_hook_only(run, row):
    from cmpese.training.fit import checkpoint_hook
    checkpoint_hook(run, row)
