"""Hostile runs of the trainers and the launcher get one line (cmpese.errors.run: exit code 2,
no traceback, the flag, file or variable named) or a named recovery, and lose nothing:

* one run a directory: a second run on a held --save-dir (with --resume too) stops, and a run
  killed with SIGKILL leaves no lock behind;
* DMLC_ROLE=server / scheduler in a trainer's environment (it hung, deaf to SIGTERM), and
  DMLC_ROLE=worker without a dist kvstore;
* the launcher: a worker command that does not exist, a trainer without --kvstore dist_*;
* --preset senet on small images, --std / --mean that are zero, negative or not finite;
* kill -9 during --export, and of a distributed worker, then the documented recovery.

Most cases call a command's main() in this process (the command line's code path minus the
interpreter start); the ones about processes run the real command lines."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from datafiles import synthetic_images, write_cifar10
from test_launch import _children, _role

from cmpese import errors
from cmpese.cli import launch as launch_cli
from cmpese.cli import train_cifar, train_imagenet
from cmpese.training.checkpoint import (LOCK, RunLocked, latest_checkpoint, lock_name,
                                        lock_run_dir)
from cmpese.training.launch import LaunchError, free_port, launch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'train_cifar.py')
TINY = 'cmpe_se_wrn10_1_1x1'




def _env(**kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith('DMLC_')}
    env.update(OMP_NUM_THREADS='1', **kw)
    return env


def _base(data_dir, save_dir, epochs=1):
    return ['--model', TINY, '--data-dir', str(data_dir), '--no-download', '--epochs',
            str(epochs), '--batch-size', '8', '--save-dir', str(save_dir), '--no-progress']


def _run(main, argv, prog, capsys):
    """(exit code, the one line of ``prog`` on stderr) of ``main`` through errors.run."""
    code = errors.run(main, argv, prog=prog)
    err = capsys.readouterr().err
    lines = [l for l in err.strip().splitlines() if l.startswith(prog + ':')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return code, lines[0]


def _wait_for(predicate, timeout, what, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError('%s: the process ended first (%s)' % (what, proc.returncode))
        time.sleep(0.1)
    raise AssertionError('%s: not within %d s' % (what, timeout))


# ---------------------------------------------------------------- one run a directory

def test_second_run_refused_while_the_first_holds_the_dir_and_not_after_its_kill(
        cifar_dir, tmp_path, capsys):
    save = tmp_path / 'run'
    first = subprocess.Popen([sys.executable, SCRIPT] + _base(cifar_dir, save, epochs=500) +
                             ['--seed', '1'], env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: (save / 'checkpoint.json').exists(), 180, 'the first checkpoint',
                  first)
        for extra in (['--seed', '2'], ['--resume']):
            code, line = _run(train_cifar.main, _base(cifar_dir, save) + extra,
                              'train_cifar.py', capsys)
            assert code == 2
            assert line.startswith('train_cifar.py: error: --save-dir %s is in use by another '
                                   'run (pid %d on ' % (save, first.pid)), line
            assert line.endswith('or choose another --save-dir; nothing was written.'), line
        assert json.loads((save / 'config.json').read_text())['seed'] == 1
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL
    # the kernel dropped the lock with the process: the run continues with --resume
    done = latest_checkpoint(str(save))['epoch']
    code = errors.run(train_cifar.main, _base(cifar_dir, save) + [
        '--resume', '--epochs', str(done + 1)], prog='train_cifar.py')
    assert code == 0, capsys.readouterr().err[-2000:]
    assert latest_checkpoint(str(save))['epoch'] == done + 1
    assert 'resumed from' in (save / 'train.log').read_text()


_HOLD = """
import sys, time
from cmpese.training.checkpoint import lock_run_dir
print(lock_run_dir(sys.argv[1], int(sys.argv[2])), flush=True)
time.sleep(600)
"""


def test_lock_files_per_rank_and_what_a_kill_leaves(tmp_path):
    """Worker r > 0 of a dist run holds run-worker<r>.lock, so the workers of one run do not
    block each other; a held lock names its holder; after kill -9 it can be taken again."""
    holder = subprocess.Popen([sys.executable, '-c', _HOLD, str(tmp_path), '0'], env=_env(),
                              stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert holder.stdout.readline().strip() == str(tmp_path / LOCK)
        with pytest.raises(RunLocked, match=r'in use by another run \(pid %d on .*since'
                                            % holder.pid):
            lock_run_dir(str(tmp_path))
        assert lock_run_dir(str(tmp_path), rank=1) == str(tmp_path / 'run-worker1.lock')
        assert lock_run_dir(str(tmp_path), rank=1) == str(tmp_path / lock_name(1))  # re-entrant
    finally:
        holder.kill()
        holder.wait()
    assert lock_run_dir(str(tmp_path)) == str(tmp_path / LOCK)
    assert (tmp_path / LOCK).read_text().startswith('pid %d on ' % os.getpid())


# ---------------------------------------------------------------- DMLC_ROLE

@pytest.mark.parametrize('role, command', [
    ('server', [SCRIPT]), ('scheduler', [SCRIPT]), ('server', ['-m', 'cmpese.cli.train_cifar'])])
def test_server_or_scheduler_role_is_refused_before_mxnet_loads(role, command, cifar_dir,
                                                                tmp_path):
    """It hung without a word and ignored SIGTERM: mxnet became a server when it loaded."""
    env = _env(DMLC_ROLE=role, DMLC_PS_ROOT_URI='127.0.0.1', DMLC_PS_ROOT_PORT=str(free_port()),
               DMLC_NUM_SERVER='1', DMLC_NUM_WORKER='1')
    t = time.time()
    proc = subprocess.run([sys.executable] + command + _base(cifar_dir, tmp_path / 'r'),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert time.time() - t < 60
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    prog = 'train_cifar.py' if command == [SCRIPT] else 'python -m cmpese.cli.train_cifar'
    assert lines[0].startswith('%s: error: DMLC_ROLE=%s is set in the environment, but ' %
                               (prog, role)), lines[0]
    assert 'Unset the DMLC_* variables' in lines[0]
    assert not (tmp_path / 'r').exists()


def test_which_roles_are_stray():
    full = dict(DMLC_PS_ROOT_URI='10.0.0.1', DMLC_PS_ROOT_PORT='9091', DMLC_NUM_SERVER='1',
                DMLC_NUM_WORKER='2')
    py = sys.executable
    train = [py, 'train_cifar.py', '--model', TINY]
    # MXNet's tools/launch.py starts every role with the training command: let it be
    assert launch_cli.stray_role_message(train + ['--kvstore', 'dist_sync'],
                                         dict(full, DMLC_ROLE='server')) is None
    assert launch_cli.stray_role_message(train + ['--kvstore=dist_device_sync'],
                                         dict(full, DMLC_ROLE='scheduler')) is None
    # a worker, or a program that is not a trainer (a user's script importing cmpese)
    assert launch_cli.stray_role_message(train, dict(full, DMLC_ROLE='worker')) is None
    assert launch_cli.stray_role_message([py, 'mine.py', 'train_cifar.py'],
                                         dict(full, DMLC_ROLE='server')) is None
    text = launch_cli.stray_role_message(train + ['--kvstore', 'dist_sync'],
                                         dict(DMLC_ROLE='server', DMLC_NUM_WORKER='2'))
    assert 'DMLC_PS_ROOT_URI, DMLC_PS_ROOT_PORT, DMLC_NUM_SERVER are not set' in text
    text = launch_cli.stray_role_message([py, '/venv/bin/cmpese-train-imagenet'],
                                         dict(full, DMLC_ROLE='server'))
    assert 'cmpese-train-imagenet runs only as a worker (--kvstore device trains' in text


def test_worker_role_without_a_dist_kvstore_is_one_line(cifar_dir, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.setenv('DMLC_ROLE', 'worker')
    code, line = _run(train_cifar.main, _base(cifar_dir, tmp_path / 'r'), 'train_cifar.py',
                      capsys)
    assert code == 2
    assert line == ('train_cifar.py: error: DMLC_ROLE=worker is set: this process was started '
                    'as a node of a distributed run, but --kvstore device trains alone (every '
                    'worker would train its own copy into one --save-dir). Pass --kvstore '
                    'dist_sync to every worker, or unset the DMLC_* variables to train in one '
                    'process.')
    assert not (tmp_path / 'r').exists()


# ---------------------------------------------------------------- the launcher

@pytest.mark.parametrize('command, words', [
    (['no-such-program-here', '--x'], ["the worker command 'no-such-program-here' was not "
                                       "found on PATH"]),
    (['/no/such/dir/train'], ['the worker command /no/such/dir/train does not exist']),
    ([SCRIPT, '--model', TINY], ['is not an executable program; run a script with its '
                                 'interpreter: -- ']),
    ([sys.executable, SCRIPT, '--model', TINY], [
        'the worker command trains with --kvstore device (the default), so its 2 copies would '
        'each train alone into one --save-dir', 'add --kvstore dist_sync']),
    ([sys.executable, SCRIPT, '--kvstore', 'local'], ['trains with --kvstore local']),
    (['bash', '-c', 'python train_imagenet.py --model x'], ['--kvstore device (the default)']),
])
def test_launch_refuses_what_cannot_run_as_one_dist_run(command, words, capsys):
    t = time.time()
    code, line = _run(launch_cli.main, ['-n', '2', '--'] + command,
                      'python -m cmpese.training.launch', capsys)
    assert code == 2 and time.time() - t < 5
    for w in words:
        assert w in line, line


def test_launch_accepts_dist_and_foreign_commands():
    launch_cli.check_command([sys.executable, SCRIPT, '--kvstore', 'dist_sync'], 2)
    launch_cli.check_command(['bash', '-c', 'python train_cifar.py --kvstore=dist_sync'], 2)
    launch_cli.check_command([sys.executable, 'my_own_script.py'], 2)   # its own business


def test_launch_library_stops_the_daemons_when_a_worker_cannot_start(tmp_path):
    t = time.time()
    with pytest.raises(LaunchError, match='cannot start the worker command '
                                          '/no/such/program: No such file or directory'):
        launch(['/no/such/program'], workers=2, env=_env(), grace=1)
    assert time.time() - t < 30
    assert not [p for p in _children(os.getpid()) if _role(p) in ('scheduler', 'server')]


# ---------------------------------------------------------------- flags

def test_imagenet_preset_on_digits_is_refused_unless_forced(capsys):
    argv = ['--model', TINY, '--dataset', 'digits', '--preset', 'senet', '--print-config']
    code, line = _run(train_cifar.main, argv, 'train_cifar.py', capsys)
    assert code == 2
    assert line == (
        'train_cifar.py: error: --preset senet is an ImageNet schedule (batch 1024, lr 0.6, 100 '
        'epochs, for 1.28 M images of 224x224), but the run trains on --dataset digits (1,438 '
        'training images of 32x32 or less, 1 batch of 1024 an epoch). Use the dataset\'s own '
        'preset (the default without --preset), give the values yourself (--batch-size, --lr, '
        '--epochs, ...), or add --force-preset to train with it anyway.')
    assert errors.run(train_cifar.main, argv + ['--force-preset'], prog='train_cifar.py') == 0
    out = capsys.readouterr().out
    assert re.search(r'batch_size +1024\n', out) and 'force_preset' not in out
    # a small-image preset for ImageNet data, the other way round
    code, line = _run(train_imagenet.main, ['--model', 'se_resnet50', '--benchmark', '--preset',
                                            'cmpe_wrn', '--print-config'],
                      'train_imagenet.py', capsys)
    assert code == 2 and 'is a schedule for small images (batch 128' in line


@pytest.mark.parametrize('flag, value, words', [
    ('--std', '0,0,0', '--std must be 3 finite numbers > 0 (R,G,B in pixel units), got 0,0,0. '
                       'Pass e.g. --std 58.395,57.12,57.375 (ImageNet\'s), or 1,1,1 to '
                       'subtract the mean only.'),
    ('--std', '-1,1,1', '--std must be 3 finite numbers > 0'),
    ('--std', '1,inf,1', "argument --std: expected 3 finite numbers, got '1,inf,1'"),
    ('--mean', 'nan,0,0', "argument --mean: expected 3 finite numbers, got 'nan,0,0'"),
])
def test_std_and_mean_must_be_finite_and_std_positive(flag, value, words, capsys):
    code, line = _run(train_imagenet.main, ['--model', 'se_resnet50', '--benchmark',
                                            '%s=%s' % (flag, value), '--print-config'],
                      'train_imagenet.py', capsys)
    assert code == 2 and words in line, line


# ---------------------------------------------------------------- kill -9 during --export

_DIE_IN_EXPORT = """
import os, signal, sys
import mxnet as mx
real = mx.ndarray.save

def save(fname, data):
    # the exported parameters (not a checkpoint, not best.params): the kill lands when the
    # file has been opened and nothing is written yet
    if os.path.basename(str(fname)).startswith(%r):
        open(fname, 'wb').close()
        os.kill(os.getpid(), signal.SIGKILL)
    return real(fname, data)
mx.ndarray.save = mx.nd.save = save
sys.path.insert(0, %r)
import train_cifar
from cmpese.errors import run
sys.exit(run(train_cifar.main, sys.argv[1:], prog='train_cifar.py'))
""" % (TINY, ROOT)


@pytest.fixture(scope='module')
def killed_in_export(cifar_dir, tmp_path_factory):
    """A run killed (SIGKILL) while --export writes its parameters, and the files it left."""
    save = tmp_path_factory.mktemp('export') / 'run'
    proc = subprocess.run([sys.executable, '-c', _DIE_IN_EXPORT] + _base(cifar_dir, save) +
                          ['--export'], env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    export = save / 'export'
    left = {n: (export / n).stat().st_size for n in sorted(os.listdir(str(export)))}
    return save, left


def test_kill_during_export_leaves_no_partial_file_under_its_final_name(killed_in_export):
    """The export is written under temporary names and moved into place (it left an empty
    <model>-0000.params under its final name before)."""
    _, left = killed_in_export
    assert sorted(left) == ['%s.tmp-%s' % (TINY, tail) for tail in (
        '%s-0000.params' % left_pid(left), '%s-symbol.json' % left_pid(left))], left


def left_pid(left):
    return re.search(r'\.tmp-(\d+)-', sorted(left)[0]).group(1)


def test_kill_during_export_then_resume_export_writes_a_whole_export(killed_in_export,
                                                                     cifar_dir, capsys):
    save, _ = killed_in_export
    code = errors.run(train_cifar.main, _base(cifar_dir, save) + ['--resume', '--export'],
                      prog='train_cifar.py')
    assert code == 0, capsys.readouterr().err[-2000:]
    params = mx.nd.load(str(save / 'export' / ('%s-0000.params' % TINY)))
    best = mx.nd.load(str(save / 'best.params'))
    assert len(params) == len(best) > 0
    assert not [n for n in os.listdir(str(save / 'export')) if '.tmp-' in n]


# ---------------------------------------------------------------- a killed dist worker

def _dist_cmd(data, save, extra=()):
    return [sys.executable, '-m', 'cmpese.training.launch', '-n', '2', '--', sys.executable,
            SCRIPT, '--model', TINY, '--data-dir', str(data), '--no-download', '--epochs', '2',
            '--batch-size', '8', '--lr', '0.05', '--seed', '5', '--kvstore', 'dist_sync',
            '--save-dir', str(save), '--no-progress', '--log-interval', '1'] + list(extra)


def test_killed_dist_worker_then_resume_is_bit_exact(tmp_path):
    """kill -9 of worker 1 in the middle of epoch 2: the launcher stops the run, and the same
    launch with --resume ends with the parameters of an uninterrupted run, bit for bit."""
    data = tmp_path / 'data'
    write_cifar10(data, synthetic_images(256, 10, seed=3), synthetic_images(16, 10, seed=4))
    straight = tmp_path / 'straight'
    proc = subprocess.run(_dist_cmd(data, straight), env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    killed = tmp_path / 'killed'
    run = subprocess.Popen(_dist_cmd(data, killed), env=_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, universal_newlines=True)
    try:
        log = killed / 'train.log'

        def mid_epoch_2():          # "epoch 2/2 | 5/32 | ...", a line an iteration
            text = log.read_text() if log.exists() else ''
            done = re.findall(r'epoch 2/2 \| *(\d+)/32 ', text)
            return any(3 <= int(n) <= 28 for n in done)
        _wait_for(mid_epoch_2, 300, 'the middle of epoch 2', run)
        workers = sorted(p for p in _children(run.pid) if _role(p) == 'worker')
        assert len(workers) == 2
        os.kill(workers[1], signal.SIGKILL)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            for p in _children(run.pid):
                os.kill(p, signal.SIGKILL)
            run.kill()
            run.communicate()
    assert run.returncode == 128 + signal.SIGKILL, err[-2000:]
    assert 'was killed by SIGKILL' in err
    assert latest_checkpoint(str(killed))['epoch'] == 1
    proc = subprocess.run(_dist_cmd(data, killed, ['--resume']), env=_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'resumed from' in proc.stderr
    a = mx.nd.load(str(straight / 'epoch-0002.params'))
    b = mx.nd.load(str(killed / 'epoch-0002.params'))
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(b[name].asnumpy(), a[name].asnumpy(), err_msg=name)


# ---------------------------------------------------------------- SIGTERM in a checkpoint write

_TERM_IN_CHECKPOINT = """
import os, signal, sys
import mxnet as mx
real = mx.ndarray.save

def save(fname, data):
    # SIGTERM arrives while the checkpoint after epoch 2 is being written
    if 'epoch-0002.params' in os.path.basename(str(fname)):
        os.kill(os.getpid(), signal.SIGTERM)
    return real(fname, data)
mx.ndarray.save = mx.nd.save = save
sys.path.insert(0, %r)
import train_cifar
from cmpese.errors import run
sys.exit(run(train_cifar.main, sys.argv[1:], prog='train_cifar.py'))
""" % ROOT


def test_sigterm_during_a_checkpoint_write_completes_it_then_resume_is_bit_exact(cifar_dir,
                                                                                tmp_path):
    args = _base(cifar_dir, tmp_path / 'x', epochs=3)[:-3] + ['--seed', '4', '--no-progress']

    def run(save, extra=(), script=(SCRIPT,)):
        return subprocess.run([sys.executable] + list(script) + args + [
            '--save-dir', str(save)] + list(extra), env=_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    term = tmp_path / 'term'
    proc = run(term, script=('-c', _TERM_IN_CHECKPOINT))
    assert proc.returncode == 143 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        'train_cifar.py: interrupted at epoch 2, iteration 3 of 3; resume with --resume '
        '(SIGTERM; the last complete checkpoint is epoch-0002 (after epoch 2) in %s)' % term)
    assert latest_checkpoint(str(term))['epoch'] == 2          # whole, its SHA-256 checked
    assert not [n for n in os.listdir(str(term)) if '.tmp-' in n]
    assert run(term, ['--resume']).returncode == 0
    straight = tmp_path / 'straight'
    assert run(straight).returncode == 0
    a = mx.nd.load(str(straight / 'epoch-0003.params'))
    b = mx.nd.load(str(term / 'epoch-0003.params'))
    for name in a:
        np.testing.assert_array_equal(b[name].asnumpy(), a[name].asnumpy(), err_msg=name)
