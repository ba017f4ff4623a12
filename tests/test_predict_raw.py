"""A deployed model carries its preprocessing (issue 19, item 1) and the Predictor checks what
it is given (issue 20): train on digits with --export, then predict from raw uint8 images in
both runtimes with the same accuracy as the trainer's test evaluation of the exported epoch;
every kind of bad input is a ValueError (InputError) saying what was expected."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cmpese.data.digits import load_digits
from cmpese.deploy.predictor import InputError, Predictor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = 'cmpe_se_wrn10_1_1x1'


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Two epochs on digits through the trainer, --export (the best epoch), plus ONNX."""
    out = tmp_path_factory.mktemp('digits') / 'run'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_cifar.py'), '--model', MODEL, '--dataset',
         'digits', '--epochs', '2', '--batch-size', '64', '--lr', '0.1', '--export',
         '--save-dir', str(out), '--no-progress'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
        timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    prefix = str(out / 'export' / MODEL)
    from cmpese.deploy.export import export_onnx
    from cmpese.data.config import load_data_config
    export_onnx(prefix + '-symbol.json', prefix + '-0000.params', prefix + '.onnx',
                data_config=load_data_config(prefix + '-data.json'))
    return out, prefix


@pytest.mark.parametrize('runtime', ['onnxruntime', 'mxnet'])
def test_raw_images_score_as_the_trainer(run, runtime):
    pytest.importorskip(runtime)
    out, prefix = run
    exported = json.loads((out / 'result.json').read_text())['exported']
    images, labels = load_digits('test')                 # uint8 (N, 32, 32, 3), as stored
    assert images.dtype == np.uint8
    predictor = Predictor(prefix, runtime)
    assert predictor.runtime == runtime and predictor.data_config['dataset'] == 'digits'
    accuracy = predictor.accuracy(images, labels)
    assert abs(accuracy - (1 - exported['test_error'])) < 0.5 / len(labels), (
        accuracy, exported)
    # one image, a list of HWC arrays, a grey (H, W) array: the same logits as the batch
    batch = predictor(images[:4])
    np.testing.assert_allclose(predictor(list(images[:4])), batch, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(predictor(images[0]), batch[:1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(predictor(images[0][:, :, 0]), batch[:1], rtol=1e-5, atol=1e-5)
    top = predictor.predict(images[:3], top_k=3)
    assert [len(t) for t in top] == [3, 3, 3]
    assert [t[0][0] for t in top] == [str(i) for i in batch[:3].argmax(1)]
    assert all(1 >= t[0][1] >= t[1][1] >= t[2][1] >= 0 for t in top)


def test_file_paths_pil_images_and_the_onnx_metadata(run, tmp_path):
    pytest.importorskip('onnxruntime')
    from PIL import Image
    _, prefix = run
    images, _ = load_digits('test')
    path = str(tmp_path / 'seven.png')
    Image.fromarray(images[5]).save(path)
    predictor = Predictor(prefix, 'mxnet')
    expected = predictor(images[5:6])
    np.testing.assert_allclose(predictor(path), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(predictor([Image.open(path)]), expected, rtol=1e-5, atol=1e-5)
    # the .onnx alone (no -data.json beside it) reads the config from its metadata_props
    alone = tmp_path / 'alone.onnx'
    alone.write_bytes(open(prefix + '.onnx', 'rb').read())
    onnx_only = Predictor(str(alone))
    assert onnx_only.data_config == predictor.data_config
    np.testing.assert_allclose(onnx_only(path), expected, rtol=1e-4, atol=1e-4)


def test_normalized_path_is_explicit(run):
    from cmpese.data.config import preprocess
    _, prefix = run
    images, _ = load_digits('test')
    predictor = Predictor(prefix, 'mxnet')
    x = preprocess(images[:2], predictor.data_config)
    np.testing.assert_allclose(predictor.logits(x), predictor(images[:2]), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(predictor(x, normalized=True), predictor.logits(x))
    with pytest.raises(InputError, match='raw'):             # float pixels as normalized
        predictor.logits(images[:2].transpose(0, 3, 1, 2).astype(np.float32))
    with pytest.raises(InputError, match='uint8'):           # float array on the raw path
        predictor(x)


@pytest.mark.parametrize('case', ['shape', 'channels', 'dtype', 'empty', 'nan', 'inf', 'size',
                                  'uint8 normalized', 'raw float', 'empty raw', 'raw shape'])
def test_bad_input_is_a_value_error(run, case):
    _, prefix = run
    predictor = Predictor(prefix, 'onnxruntime' if case in ('nan', 'size') else 'mxnet')
    good = np.random.RandomState(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    call, expected = {
        'shape': (lambda: predictor.logits(good[0]), 'shape'),
        'channels': (lambda: predictor.logits(good[:, :1]), r'\(N, 3, 32, 32\)'),
        'dtype': (lambda: predictor.logits(good.astype(np.int32)), 'dtype int32'),
        'empty': (lambda: predictor.logits(good[:0]), 'empty batch'),
        'nan': (lambda: predictor.logits(np.where(good > 2, np.nan, good).astype(np.float32)),
                'non-finite'),
        'inf': (lambda: predictor.logits(np.where(good > 2, np.inf, good).astype(np.float32)),
                'non-finite'),
        'size': (lambda: predictor.logits(np.zeros((1, 3, 28, 28), np.float32)),
                 'made for 32x32'),
        'uint8 normalized': (lambda: predictor.logits(np.zeros((1, 3, 32, 32), np.uint8)),
                             'raw pixels'),
        'raw float': (lambda: predictor(np.zeros((32, 32, 3), np.float32)), 'uint8'),
        'empty raw': (lambda: predictor([]), 'no images'),
        'raw shape': (lambda: predictor(np.zeros((32, 32, 5), np.uint8)), 'shape'),
    }[case]
    with pytest.raises(ValueError, match=expected) as info:
        call()
    assert isinstance(info.value, InputError)
    assert '\n' not in str(info.value)


def test_export_without_config_takes_normalized_arrays_only(tmp_path):
    import cmpese
    from cmpese.deploy.export import export_model
    from model_checks import init_net
    prefix = str(tmp_path / 'm')
    export_model(init_net(cmpese.get_model('se_preresnet20')), prefix)
    predictor = Predictor(prefix, 'mxnet')
    assert predictor.data_config is None
    assert predictor(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)
    with pytest.raises(InputError, match='no data config'):
        predictor(np.zeros((32, 32, 3), np.uint8), normalized=False)


def test_garbage_onnx_is_one_line_naming_the_file(tmp_path):
    pytest.importorskip('onnxruntime')
    from cmpese.errors import UserError
    bad = tmp_path / 'bad.onnx'
    bad.write_bytes(b'not a protobuf at all' * 20)
    with pytest.raises(UserError) as info:
        Predictor(str(bad))
    assert 'bad.onnx' in str(info.value) and '\n' not in str(info.value)
    done = subprocess.run([sys.executable, '-m', 'cmpese.tools.deploy', str(bad)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and 'bad.onnx' in done.stderr


def test_quantize_calibrates_on_raw_images(run, tmp_path):
    pytest.importorskip('onnxruntime')
    import warnings
    _, prefix = run
    images, labels = load_digits('test')
    fp32 = Predictor(prefix, 'onnxruntime')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        int8 = fp32.quantize(images[:64], out=str(tmp_path / 'int8.onnx'))
    assert int8.data_config == fp32.data_config
    assert abs(int8.accuracy(images, labels) - fp32.accuracy(images, labels)) < 0.05
