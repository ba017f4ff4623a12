"""The data config a model carries: written and read back, and the one preprocessing that
turns raw images (arrays, files, PIL images) into exactly what the trainers' evaluation feeds."""
import json

import numpy as np
import pytest

from cmpese.data import BatchLoader, load_train_test
from cmpese.data.config import (dataset_config, imagenet_config, load_data_config,
                                looks_unnormalized, preprocess, save_data_config)


def test_raw_digits_images_become_the_evaluation_batch():
    (x, _), (xt, yt), info = load_train_test('digits')
    cfg = dataset_config('digits', info.mean, info.std)
    assert cfg.input_size == 32 and cfg.crop == 'none' and cfg.grey
    assert cfg.classes == [str(i) for i in range(10)]
    want = next(iter(BatchLoader(xt[:8], yt[:8], 8, mean=info.mean, std=info.std)
                     .epoch_numpy(0)))[0]
    np.testing.assert_allclose(preprocess(xt[:8], cfg), want, rtol=1e-6, atol=1e-6)
    # one grey plane, a list of arrays, PIL images and files give the same
    from PIL import Image
    np.testing.assert_allclose(preprocess([im[:, :, 0] for im in xt[:2]], cfg), want[:2],
                               atol=1e-6)
    np.testing.assert_allclose(preprocess([Image.fromarray(im) for im in xt[:2]], cfg),
                               want[:2], atol=1e-6)


def test_imagenet_centre_crop_by_hand(tmp_path):
    cfg = imagenet_config(4, mean=[0, 0, 0], std=[1, 1, 1], resize=4)
    assert cfg.eval_resize == 4 and imagenet_config(224, [0] * 3, [1] * 3).eval_resize == 256
    # a 4x8 image: short side already 4, so no resize; centre crop takes columns 2..5
    img = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3)
    out = preprocess(img, cfg)
    assert out.shape == (1, 3, 4, 4)
    np.testing.assert_array_equal(out[0].transpose(1, 2, 0), img[:, 2:6].astype(np.float32))
    path = str(tmp_path / 'x.png')
    from PIL import Image
    Image.fromarray(img).save(path)
    np.testing.assert_array_equal(preprocess([path], cfg), out)


def test_round_trip_and_bad_files(tmp_path):
    cfg = dataset_config('fashion-mnist', [72.94] * 3, [90.02] * 3)
    path = save_data_config(str(tmp_path / 'data_config.json'), cfg)
    back = load_data_config(path)
    assert back == cfg and back.classes[9] == 'Ankle boot' and back.input_size == 28
    assert '28x28 RGB' in back.describe()
    (tmp_path / 'bad.json').write_text(json.dumps({'input_size': 3}))
    from cmpese.errors import UserError
    with pytest.raises(UserError, match='bad.json is not a readable data config'):
        load_data_config(str(tmp_path / 'bad.json'))


def test_bad_images_and_unnormalized_batches():
    cfg = dataset_config('digits', [0] * 3, [1] * 3)
    with pytest.raises(ValueError, match='must be uint8'):
        preprocess(np.zeros((4, 4, 3), np.float32), cfg)
    with pytest.raises(ValueError, match='no images'):
        preprocess([], cfg)
    with pytest.raises(ValueError, match='got shape'):
        preprocess([np.zeros((4, 4, 5), np.uint8)], cfg)
    assert looks_unnormalized(np.zeros((1, 3, 4, 4), np.uint8))
    assert looks_unnormalized(np.full((1, 3, 4, 4), 200.0, np.float32))
    assert not looks_unnormalized(np.random.RandomState(0).randn(1, 3, 4, 4).astype(np.float32))
