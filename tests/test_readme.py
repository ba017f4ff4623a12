"""The README runs as written: its export command and every Python block, in order, in one
namespace, in a directory holding what the README assumes (a run's parameters, small)."""
import os
import re
import shlex
import subprocess
import sys

import mxnet as mx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme():
    with open(os.path.join(ROOT, 'README.md')) as f:
        return f.read()


def _python_blocks(text):
    return re.findall(r'```python\n(.*?)```', text, re.S)


def _command(text, start):
    """The README's shell command starting with ``start`` (continuation lines joined,
    comments dropped), as an argument list."""
    for block in re.findall(r'```bash\n(.*?)```', text, re.S):
        joined = re.sub(r'\\\n\s*', ' ', block)
        for line in joined.splitlines():
            if line.startswith(start):
                return shlex.split(line.split('#')[0])
    raise AssertionError('README has no command starting with %r' % start)


def test_readme_snippets_define_their_names():
    text = _readme()
    assert len(_python_blocks(text)) >= 2
    for name in ('my_unit_factory', 'images', 'calibration_images'):
        uses = [b for b in _python_blocks(text) if re.search(r'\b%s\b' % name, b)]
        for block in uses:
            assert re.search(r'(def %s\b|\b%s\s*=)' % (name, name), '\n'.join(
                _python_blocks(text))), '%s is used but never defined' % name


def test_demo_builder_prints_the_readme_train_command():
    """What `python -m cmpese.data.demo_imagenet --out data/demo` tells a user to run next is
    the README's train command, word for word."""
    from cmpese.cli.demo_imagenet import train_command
    assert shlex.split(train_command('data/demo')) == _command(
        _readme(), 'python train_imagenet.py --model se_resnet50 --rec-train data/demo/')


def test_readme_export_command_and_python_blocks_run(tmp_path):
    import cmpese
    from cmpese.data import load_train_test
    from cmpese.data.config import DATA_CONFIG_FILE, dataset_config, save_data_config
    text = _readme()
    # what the README assumes: runs/x holds a digits run's parameters and data config
    run = tmp_path / 'runs' / 'x'
    run.mkdir(parents=True)
    _, _, info = load_train_test('digits')
    save_data_config(str(run / DATA_CONFIG_FILE), dataset_config('digits', info.mean, info.std))
    for name in ('cmpe_se_preresnet20_1x1', 'se_preresnet20'):
        net = cmpese.get_model(name, classes=10)
        net.initialize(mx.init.Xavier())
        net(mx.nd.zeros((1, 3, 32, 32)))
        net.save_parameters(str(run / ('best.params' if name.startswith('cmpe') else
                                       name + '.params')))
    cmd = _command(text, 'python -m cmpese.tools.export')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable] + cmd[1:], cwd=str(tmp_path), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / 'out' / 'm-data.json').exists()
    namespace = {}
    old = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        for block in _python_blocks(text):
            exec(compile(block, 'README.md', 'exec'), namespace)
    finally:
        os.chdir(old)
    assert 'predictor' in namespace and len(namespace['logits']) == 8
    top = namespace['predictor'].predict(namespace['images'][:1], top_k=3)[0]
    assert len(top) == 3 and all(isinstance(c, str) for c, _ in top)
