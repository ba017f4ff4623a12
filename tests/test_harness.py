"""benchmarks/harness.py: interleaved seeded rounds (warm-up dropped, every key once a round,
the same order for the same seed), medians, --env, the environment line, the export pair."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'benchmarks'))
import harness  # noqa: E402


def _record(keys, rounds, warmup, seed, label=''):
    calls = []

    def measure(key):
        calls.append(key)
        return len(calls)            # the call's position: shows which rounds were kept
    samples = harness.interleaved_rounds(measure, keys, rounds, warmup=warmup, seed=seed,
                                         label=label)
    return calls, samples


def test_rounds_interleave_every_key_and_drop_the_warm_up():
    keys = ['a', 'b', 'c', 'd']
    calls, samples = _record(keys, rounds=3, warmup=2, seed=0)
    assert len(calls) == 5 * len(keys)
    for r in range(5):      # each round calls every key exactly once
        assert sorted(calls[4 * r:4 * r + 4]) == keys
    # kept: the calls of rounds 3..5 (positions 9..20), one a round per key
    for key in keys:
        assert len(samples[key]) == 3
        assert all(9 <= v <= 20 for v in samples[key])
        assert [(v - 1) // 4 for v in samples[key]] == [2, 3, 4]
    orders = {tuple(calls[4 * r:4 * r + 4]) for r in range(5)}
    assert len(orders) > 1, 'the order should change from round to round'


def test_the_order_follows_the_seed_and_label():
    keys = list(range(8))
    again = _record(keys, 3, 1, seed=7)[0]
    assert _record(keys, 3, 1, seed=7)[0] == again
    assert _record(keys, 3, 1, seed=8)[0] != again
    assert _record(keys, 3, 1, seed=7, label='infer')[0] != again


def test_bad_rounds_median_and_env():
    with pytest.raises(ValueError, match='rounds'):
        harness.interleaved_rounds(lambda k: 0, ['a'], 0)
    assert harness.median([3.0, 1.0, 2.0]) == 2.0
    assert np.isnan(harness.median([]))
    with pytest.raises(ValueError, match='KEY=VALUE'):
        harness.apply_env(['OMP_NUM_THREADS'])
    old = os.environ.get('CMPESE_HARNESS_TEST')
    try:
        harness.apply_env(['CMPESE_HARNESS_TEST=a=b'])
        assert os.environ['CMPESE_HARNESS_TEST'] == 'a=b'
        line = harness.environment_line()
        assert 'CMPESE_HARNESS_TEST=a=b' in line and 'mxnet 1.9.1' in line
        assert 'load average' in line
    finally:
        if old is None:
            os.environ.pop('CMPESE_HARNESS_TEST', None)


def test_timers_count_calls():
    count = []
    assert harness.time_call(lambda: count.append(1), reps=5) >= 0 and len(count) == 5
    del count[:]
    assert harness.time_for(lambda: count.append(1), 0.0) >= 0 and len(count) == 1
    assert 1 <= harness.reps_for(lambda: None, 0.01, cap=16) <= 16


def test_export_pair_writes_what_the_predictor_reads(tmp_path):
    pytest.importorskip('onnx')
    import mxnet as mx
    import cmpese
    net = cmpese.get_model('se_preresnet20', classes=10)
    net.initialize(mx.init.Xavier())
    prefix = str(tmp_path / 'se')
    symbol, params, onnx_file = harness.export_pair(net, prefix, (1, 3, 32, 32), fold=True)
    assert (symbol, params, onnx_file) == (prefix + '-symbol.json', prefix + '-0000.params',
                                           prefix + '.onnx')
    assert all(os.path.isfile(p) for p in (symbol, params, onnx_file))
    assert harness.export_pair(net, str(tmp_path / 'no'), (1, 3, 32, 32), onnx=False)[2] is None
    assert not os.path.exists(str(tmp_path / 'no.onnx'))
