"""Distributed runs never hang silently: the local launcher stops everything when a worker
dies, a worker without a reachable scheduler gives up after --dist-timeout, and one whose
cluster never forms too."""
import os
import re
import signal
import subprocess
import sys
import time

from datafiles import synthetic_images, write_cifar10

from cmpese.training.launch import free_port, launch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'train_cifar.py')
TINY = 'cmpe_se_wrn10_1_1x1'


def _env(**kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith('DMLC_')}
    env.update(OMP_NUM_THREADS='1', **kw)
    return env


def _children(pid):
    """Pids of the direct children of ``pid`` (from /proc)."""
    out = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/stat' % name) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(name))
    return out


def _role(pid):
    try:
        with open('/proc/%d/environ' % pid, 'rb') as f:
            env = dict(kv.split(b'=', 1) for kv in f.read().split(b'\0') if b'=' in kv)
    except OSError:
        return None
    return env.get(b'DMLC_ROLE', b'').decode()


def test_killed_worker_stops_everything(tmp_path):
    data = tmp_path / 'data'
    write_cifar10(data, synthetic_images(64, 10, seed=1), synthetic_images(16, 10, seed=2))
    save = tmp_path / 'run'
    cmd = [sys.executable, '-m', 'cmpese.training.launch', '-n', '2', '--', sys.executable,
           SCRIPT, '--model', TINY, '--data-dir', str(data), '--no-download', '--epochs', '50',
           '--batch-size', '8', '--kvstore', 'dist_sync', '--save-dir', str(save),
           '--no-progress']
    proc = subprocess.Popen(cmd, cwd=str(tmp_path), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not (save / 'metrics.csv').exists():
            time.sleep(0.2)          # training runs once worker 0 has finished epoch 1
        assert (save / 'metrics.csv').exists(), 'the run did not start'
        kids = _children(proc.pid)
        workers = sorted(p for p in kids if _role(p) == 'worker')
        daemons = [p for p in kids if _role(p) in ('scheduler', 'server')]
        assert len(workers) == 2 and len(daemons) == 2, kids
        os.kill(workers[1], signal.SIGKILL)
        killed = time.time()
        out, err = proc.communicate(timeout=30)
        took = time.time() - killed
    finally:
        if proc.poll() is None:
            for p in _children(proc.pid):
                os.kill(p, signal.SIGKILL)
            proc.kill()
            proc.communicate()
    assert took < 30
    assert proc.returncode == 128 + signal.SIGKILL
    assert 'launch: worker 1 (pid %d) was killed by SIGKILL; stopped the 3 other ' \
           'process(es)' % workers[1] in err
    for p in workers + daemons:
        assert not os.path.exists('/proc/%d' % p) or open('/proc/%d/stat' % p).read().split(
            ')')[1].split()[0] == 'Z', p


_FAILING_WORKER = """
import sys, time
from cmpese import errors
from cmpese.training.kvstore import create_kvstore

def main(argv):
    kv = create_kvstore('dist_sync', 60)
    if kv.rank == 0:
        raise errors.UserError('worker 0 gives up')   # one line, exit 2, no finalize wait
    time.sleep(600)                                     # worker 1 would wait for ever

sys.exit(errors.run(main, [], prog='worker'))
"""


def test_failing_worker_stops_the_others(tmp_path):
    """One worker fails after the cluster formed (through errors.run, as every command line
    does): it exits at once instead of waiting in MXNet's finalize barrier, and the launcher
    stops the other worker, the server and the scheduler."""
    script = tmp_path / 'worker.py'
    script.write_text(_FAILING_WORKER)
    t = time.time()
    results = launch([sys.executable, str(script)], workers=2, env=_env(PYTHONPATH=ROOT),
                     capture=True, grace=2)
    assert time.time() - t < 60
    assert results.code == 2
    assert re.match(r'worker [01] \(pid \d+\) exited with status 2; stopped the 3 other '
                    r'process\(es\)\. Its last output: worker: error: worker 0 gives up$',
                    results.failure), results.failure
    # the other worker stopped by SIGTERM, which errors.run turns into exit 143
    assert sorted(code for code, _, _ in results) == [2, 143]


def test_no_scheduler_gives_up_after_dist_timeout(tmp_path):
    data = tmp_path / 'data'
    write_cifar10(data, synthetic_images(16, 10, seed=1), synthetic_images(8, 10, seed=2))
    port = free_port()
    env = _env(DMLC_ROLE='worker', DMLC_PS_ROOT_URI='127.0.0.1', DMLC_PS_ROOT_PORT=str(port),
               DMLC_NUM_SERVER='1', DMLC_NUM_WORKER='1')
    t = time.time()
    proc = subprocess.run([sys.executable, SCRIPT, '--model', TINY, '--data-dir', str(data),
                           '--no-download', '--epochs', '1', '--kvstore', 'dist_sync',
                           '--dist-timeout', '3', '--save-dir', str(tmp_path / 'r')],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert time.time() - t < 60
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('train_cifar.py: error: no scheduler answered at 127.0.0.1:%d '
                           '(DMLC_PS_ROOT_URI:DMLC_PS_ROOT_PORT) within 3 s (--dist-timeout'
                           % port), last
    assert not (tmp_path / 'r').exists()


def test_cluster_that_never_forms_gives_up(tmp_path):
    """The scheduler answers, but the second worker and the server never come."""
    data = tmp_path / 'data'
    write_cifar10(data, synthetic_images(16, 10, seed=1), synthetic_images(8, 10, seed=2))
    port = free_port()
    dmlc = dict(DMLC_PS_ROOT_URI='127.0.0.1', DMLC_PS_ROOT_PORT=str(port), DMLC_NUM_SERVER='1',
                DMLC_NUM_WORKER='2')
    scheduler = subprocess.Popen([sys.executable, '-c', 'import mxnet'],
                                 env=_env(DMLC_ROLE='scheduler', **dmlc),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t = time.time()
        proc = subprocess.run([sys.executable, SCRIPT, '--model', TINY, '--data-dir',
                               str(data), '--no-download', '--epochs', '1', '--kvstore',
                               'dist_sync', '--dist-timeout', '6', '--save-dir',
                               str(tmp_path / 'r')],
                              env=_env(DMLC_ROLE='worker', **dmlc), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        took = time.time() - t
    finally:
        scheduler.kill()
        scheduler.wait()
    assert took < 60
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert ('the scheduler at 127.0.0.1:%d answered, but the cluster of 2 worker(s) and 1 '
            'server(s) (DMLC_NUM_WORKER, DMLC_NUM_SERVER) did not form within 6 s' % port) \
        in proc.stderr
