"""Bad input gets one line: train_cifar.py through cmpese.errors.run (exit code 2, no
traceback, the flag or file named, nothing written), for bad numbers, contradictions, bad
--model-args, bad data files and directories, and a dist kvstore without a launcher. Most
cases call the command's main() in this process (the same code path as the command line,
minus the interpreter start); the first test runs the real command line."""
import os
import subprocess
import sys

import numpy as np
import pytest

from datafiles import synthetic_images, write_cifar10, write_svhn

from cmpese import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'train_cifar.py')
TINY = 'cmpe_se_wrn10_1_1x1'


def _train_cifar():
    sys.path.insert(0, ROOT)
    try:
        import train_cifar
    finally:
        sys.path.pop(0)
    return train_cifar




def _main(argv, capsys):
    """(exit code, stderr) of train_cifar.py ``argv`` through errors.run."""
    code = errors.run(_train_cifar().main, argv, prog='train_cifar.py')
    err = capsys.readouterr().err
    return code, err


def _base(data_dir, save_dir):
    return ['--model', TINY, '--data-dir', str(data_dir), '--no-download', '--epochs', '1',
            '--batch-size', '8', '--save-dir', str(save_dir), '--no-progress']


def _one_line(err):
    lines = [l for l in err.strip().splitlines() if l.startswith('train_cifar.py:')]
    assert len(lines) == 1, err
    assert 'Traceback' not in err
    return lines[0]


def test_real_command_line_one_line_exit_2_and_debug(cifar_dir, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    save = tmp_path / 'r'
    cmd = [sys.executable, SCRIPT] + _base(cifar_dir, save)
    proc = subprocess.run(cmd + ['--lr', 'nan'], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=120)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        'train_cifar.py: error: --lr must be a finite number > 0, got nan. Pass e.g. --lr 0.1.']
    assert not save.exists()
    proc = subprocess.run(cmd + ['--lr', 'nan', '--debug'], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=120)
    assert proc.returncode == 1 and 'Traceback' in proc.stderr and 'ConfigError' in proc.stderr


@pytest.mark.parametrize('extra, words', [
    (['--lr', '-1'], ['--lr must be a finite number > 0, got -1.0']),
    (['--lr', 'inf'], ['--lr', 'inf']),
    (['--epochs', '0'], ['--epochs must be an integer >= 1, got 0']),
    (['--batch-size', '0'], ['--batch-size must be an integer >= 1']),
    (['--lr-factor', '2'], ['--lr-factor must be a finite number > 0 and <= 1']),
    (['--lr-factor', '0'], ['--lr-factor']),
    (['--momentum', '1.5'], ['--momentum must be a finite number >= 0 and < 1']),
    (['--momentum', '-0.1'], ['--momentum']),
    (['--wd', 'nan'], ['--wd must be a finite number >= 0']),
    (['--mixup', '--mixup-alpha', '0', '--mixup-off-epochs', '0'], ['--mixup-alpha', '> 0']),
    (['--mixup-alpha', '0.5'], ['--mixup-alpha has no effect without --mixup']),
    (['--seed', '-1'], ['--seed must be an integer >= 0 and <= 4294967295']),
    (['--keep-checkpoints', '-1'], ['--keep-checkpoints must be an integer >= 0']),
    (['--save-every', '-2'], ['--save-every']),
    (['--cpus', '-1'], ['--cpus']),
    (['--dist-timeout', '0'], ['--dist-timeout']),
    (['--lr-steps', '1,-2'], ['--lr-steps takes epoch numbers >= 0']),
    (['--lr-steps', 'a,b'], ['argument --lr-steps', 'comma-separated numbers']),
    (['--epochs', 'x'], ['argument --epochs: invalid int value']),
    (['--iterations', '100', '--epochs', '3'], ['--epochs and --iterations were both given']),
    (['--lr-steps', '1', '--lr-steps-iter', '10'], ['--lr-steps and --lr-steps-iter']),
    (['--gpus', '0', '--cpus', '2'], ['--gpus 0 and --cpus 2 were both given']),
    (['--mixup', '--mixup-off-epochs', '5', '--epochs', '5'],
     ['--mixup-off-epochs 5 leaves no mixup epoch']),
    (['--svhn-extra'], ['--svhn-extra only applies to --dataset svhn']),
    (['--model-args', '{bad'], ['--model-args is not valid JSON']),
    (['--model-args', '[1, 2]'], ['--model-args must be a JSON object']),
    (['--model-args', '{"drop_rate": 2}'], ['--model-args: drop_rate must be a number in [0, 1)']),
    (['--model-args', '{"nonsense": 1}'], ['--model-args {"nonsense": 1}',
                                           'cannot be built', 'nonsense']),
    (['--model', 'cmpe_se_wrn28_10_1x2'], ['unknown model', 'cmpe_se_wrn28_10_1x1']),
    (['--resume'], ['--resume', 'config.json does not exist']),
    (['--kvstore', 'dist_sync'], ['--kvstore dist_sync', 'DMLC_ROLE',
                                  'python -m cmpese.training.launch']),
])
def test_bad_options_one_line_nothing_written(extra, words, cifar_dir, tmp_path, capsys,
                                              monkeypatch):
    for var in ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_SERVER',
                'DMLC_NUM_WORKER'):
        monkeypatch.delenv(var, raising=False)
    save = tmp_path / 'run'
    argv = ['--model', TINY, '--data-dir', str(cifar_dir), '--no-download', '--save-dir',
            str(save), '--no-progress']
    if '--model' in extra:
        argv = argv[2:]
    if '--epochs' not in extra:
        argv += ['--epochs', '1']
    if '--batch-size' not in extra:
        argv += ['--batch-size', '8']
    code, err = _main(argv + extra, capsys)
    assert code == 2, err
    line = _one_line(err)
    for w in words:
        assert w in line, (w, line)
    assert not save.exists()


def test_data_dir_and_save_dir_problems(cifar_dir, tmp_path, capsys):
    afile = tmp_path / 'afile'
    afile.write_text('x')
    code, err = _main(_base(afile, tmp_path / 'r'), capsys)
    assert code == 2 and '--data-dir %s is a file, not a directory' % afile in _one_line(err)
    code, err = _main(_base(cifar_dir, afile), capsys)
    assert code == 2 and '--save-dir %s is a file, not a directory' % afile in _one_line(err)
    code, err = _main(_base(cifar_dir, afile / 'sub'), capsys)
    assert code == 2 and 'cannot be created: %s is a file' % afile in _one_line(err)
    # /proc refuses new directories even to root
    code, err = _main(_base(cifar_dir, '/proc/cmpese-test/run'), capsys)
    line = _one_line(err)
    assert code == 2 and '--save-dir /proc/cmpese-test/run' in line and 'writ' in line


def _bad_cifar(root, mutate):
    write_cifar10(root, synthetic_images(20, 10, seed=1), synthetic_images(10, 10, seed=2))
    path = root / 'cifar-10-batches-bin' / 'data_batch_2.bin'
    mutate(path)
    return path


@pytest.mark.parametrize('kind, words', [
    ('garbage', ['outside 0..9', 'not CIFAR-10 binary data', '1 label byte + 3,072 pixel']),
    ('truncated', ['not a whole number of 3073-byte records', 'truncated']),
    ('text', ['25 bytes is not a whole number']),
    ('directory', ['is a directory', 'CIFAR-10 binary file']),
])
def test_bad_cifar_files_name_file_and_format(kind, words, tmp_path, capsys):
    rng = np.random.RandomState(0)

    def mutate(path):
        size = path.stat().st_size
        if kind == 'garbage':      # same size, every byte random (label bytes up to 255)
            path.write_bytes(rng.randint(0, 256, size).astype(np.uint8).tobytes())
        elif kind == 'truncated':
            path.write_bytes(path.read_bytes()[:-1000])
        elif kind == 'text':
            path.write_text('this is not a CIFAR file\n')
        else:
            path.unlink()
            path.mkdir()
    path = _bad_cifar(tmp_path / 'data', mutate)
    save = tmp_path / 'r'
    code, err = _main(_base(tmp_path / 'data', save), capsys)
    line = _one_line(err)
    assert code == 2 and str(path) in line
    for w in words:
        assert w in line, (w, line)
    assert not save.exists()


def test_garbage_svhn_mat_names_file(tmp_path, capsys):
    write_svhn(tmp_path / 'svhn', synthetic_images(8, 10, seed=5), synthetic_images(4, 10, seed=6))
    bad = tmp_path / 'svhn' / 'test_32x32.mat'
    bad.write_bytes(np.random.RandomState(1).bytes(5000))
    argv = ['--model', TINY, '--dataset', 'svhn', '--data-dir', str(tmp_path / 'svhn'),
            '--save-dir', str(tmp_path / 'r'), '--epochs', '1', '--no-download']
    code, err = _main(argv, capsys)
    line = _one_line(err)
    assert code == 2 and str(bad) in line and 'not a readable MATLAB file' in line
    assert 'X (32, 32, 3, N)' in line


def test_unreadable_file_names_it(tmp_path):
    """A data file without read permission (run as an unprivileged user when we are root:
    root reads every file)."""
    data = tmp_path / 'data'
    path = _bad_cifar(data, lambda p: p.chmod(0))
    for d in [tmp_path] + [data] + [p for p in data.rglob('*') if p.is_dir()]:
        d.chmod(0o755)
    os.chmod(str(tmp_path.parent), 0o755)
    def drop_to_nobody():
        os.setgid(65534)
        os.setuid(65534)
    preexec = drop_to_nobody if os.getuid() == 0 else None
    env = dict(os.environ, OMP_NUM_THREADS='1', HOME=str(tmp_path), MPLCONFIGDIR=str(tmp_path))
    try:
        proc = subprocess.run([sys.executable, SCRIPT] + _base(data, tmp_path / 'r'),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              timeout=120, universal_newlines=True, preexec_fn=preexec,
                              cwd=str(tmp_path))
    except PermissionError as err:   # this Python is not executable by that user
        pytest.skip('cannot run Python as an unprivileged user here (%s); '
                    'test_unreadable_file_message covers the message' % err)
    if 'Permission denied' in proc.stderr and str(path) not in proc.stderr:
        pytest.skip('cannot run as an unprivileged user here: %s' % proc.stderr[-300:])
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
    assert 'cannot read %s (Permission denied)' % path in proc.stderr


def test_unreadable_file_message(tmp_path, capsys, monkeypatch):
    """The reader's answer to an OSError (what a file without read permission gives to a
    user who is not root), through the command line's main."""
    data = tmp_path / 'data'
    path = _bad_cifar(data, lambda p: None)
    real = np.fromfile

    def fromfile(name, *args, **kwargs):
        if str(name) == str(path):
            raise PermissionError(13, 'Permission denied', str(name))
        return real(name, *args, **kwargs)
    monkeypatch.setattr(np, 'fromfile', fromfile)
    code, err = _main(_base(data, tmp_path / 'r'), capsys)
    line = _one_line(err)
    assert code == 2 and 'cannot read %s (Permission denied)' % path in line
    assert 'CIFAR-10 binary file of records of 1 label byte + 3,072 pixel bytes' in line
    assert not (tmp_path / 'r').exists()


def test_small_dataset_trains_and_says_so(cifar_dir, tmp_path, capsys):
    code, err = _main(_base(cifar_dir, tmp_path / 'r'), capsys)
    assert code == 0, err
    assert 'CIFAR-10 train set has 20 images, the official one 50,000' in err
    assert 'CIFAR-10 test set has 10 images, the official one 10,000' in err


def test_dist_environment_checks(monkeypatch):
    from cmpese.training.kvstore import DistError, dist_environment
    env = dict(DMLC_ROLE='worker', DMLC_PS_ROOT_URI='127.0.0.1', DMLC_PS_ROOT_PORT='9091',
               DMLC_NUM_SERVER='1', DMLC_NUM_WORKER='2')
    assert dist_environment('dist_sync', env) == ('127.0.0.1', 9091, 2, 1)
    with pytest.raises(DistError, match='DMLC_PS_ROOT_PORT is not set'):
        dist_environment('dist_sync', dict(env, DMLC_PS_ROOT_PORT=''))
    with pytest.raises(DistError, match="DMLC_NUM_WORKER='two' is not an integer"):
        dist_environment('dist_sync', dict(env, DMLC_NUM_WORKER='two'))
    with pytest.raises(DistError, match='DMLC_ROLE=server'):
        dist_environment('dist_sync', dict(env, DMLC_ROLE='server'))


def test_deferred_interrupt_finishes_the_write(tmp_path, capsys):
    """SIGINT while a checkpoint file is written: the write completes, then the program
    stops with 130 and one line (through errors.run, as the command lines do)."""
    import signal
    from cmpese.training.checkpoint import atomic_write
    target = tmp_path / 'f.bin'

    def write(tmp):
        with open(tmp, 'wb') as f:
            f.write(b'a' * 1000)
            os.kill(os.getpid(), signal.SIGINT)      # arrives in the middle of the write
            f.write(b'b' * 1000)

    def main(argv):
        with errors.deferred_interrupts():
            atomic_write(str(target), write)
        raise AssertionError('not reached: the interrupt is raised when the block ends')
    code = errors.run(main, [], prog='t')
    assert code == 130
    assert capsys.readouterr().err == 't: interrupted (SIGINT)\n'
    assert target.read_bytes() == b'a' * 1000 + b'b' * 1000
    assert os.listdir(str(tmp_path)) == ['f.bin']


def test_interrupt_while_starting_is_one_line(cifar_dir, tmp_path):
    """Ctrl-C while MXNet is still being imported: 130, one line, nothing written."""
    import signal
    import time
    proc = subprocess.Popen([sys.executable, SCRIPT] + _base(cifar_dir, tmp_path / 'r'),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    time.sleep(0.7)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and 'Traceback' not in err, err
    assert err.strip().splitlines()[-1].startswith('train_cifar.py: interrupted')
    assert not (tmp_path / 'r').exists()
