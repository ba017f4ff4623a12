"""The multi-seed study: its statistics against hand computations, and a short study on the
digits set that records each run, continues where it stopped and writes its report."""
import csv
import json
import os
import subprocess
import sys

import pytest

from cmpese.training.study import (Study, format_markdown, mean_std, summarize,
                                   welch_interval)


def test_mean_and_sample_std_by_hand():
    # 0.93, 0.94, 0.95: mean 0.94, deviations -0.01, 0, 0.01, sample variance 2e-4 / 2
    mean, std = mean_std([0.93, 0.94, 0.95])
    assert mean == pytest.approx(0.94) and std == pytest.approx(0.01)
    assert mean_std([0.5]) == (0.5, None)


def test_welch_interval_by_hand():
    # equal spread and size: s^2 = 1 on both sides, se = sqrt(1/3 + 1/3) = 0.81650,
    # df = 2 (n - 1) = 4, t(0.975, 4) = 2.776 (any t table): 1 -/+ 2.2666
    diff, low, high, df = welch_interval([1, 2, 3], [0, 1, 2])
    assert diff == 1 and df == pytest.approx(4.0)
    assert low == pytest.approx(1 - 2.7764 * 0.81650, abs=1e-3)
    assert high == pytest.approx(1 + 2.7764 * 0.81650, abs=1e-3)
    # unequal spread: var_a/n = 1e-4/3, var_b/n = 2.5e-5/3, se = 6.4550e-3,
    # df = (4.1667e-5)^2 / ((3.3333e-5)^2/2 + (8.3333e-6)^2/2) = 2.9412
    diff, low, high, df = welch_interval([0.93, 0.94, 0.95], [0.92, 0.925, 0.93])
    assert diff == pytest.approx(0.015) and df == pytest.approx(2.9412, abs=1e-4)
    from scipy import stats
    assert (high - low) / 2 == pytest.approx(stats.t.ppf(0.975, 2.9412) * 6.4550e-3, rel=1e-4)
    assert 3.182 < stats.t.ppf(0.975, 2.9412) < 4.303      # between t(3) and t(2)
    assert welch_interval([1, 2], [3]) == (-1.5, None, None, None)


def test_summary_rows_and_table():
    runs = [dict(model='plain', seed=s, test_accuracy=a, epoch_seconds=t)
            for s, a, t in ((0, 0.92, 10), (1, 0.925, 12), (2, 0.93, 11))]
    runs += [dict(model='se', seed=s, test_accuracy=a, epoch_seconds=t)
             for s, a, t in ((0, 0.93, 14), (1, 0.94, 13), (2, 0.95, 15))]
    rows = summarize(runs, 'plain', {'plain': (100, 2e6), 'se': (110, 2.1e6)})
    assert [r['model'] for r in rows] == ['plain', 'se']
    assert rows[0]['diff'] is None and rows[0]['epoch_seconds'] == 11
    assert rows[1]['diff'] == pytest.approx(0.015) and rows[1]['seeds'] == 3
    assert rows[1]['std_accuracy'] == pytest.approx(0.01)
    text = format_markdown(rows, 'plain')
    assert '| se | 3 | 94.00 ± 1.00 | +1.50 [' in text
    assert '| plain | 3 | 92.50 ± 0.50 | baseline | 100 | 2.0M | 11 |' in text


def test_study_records_continues_and_reports(tmp_path):
    out = str(tmp_path / 'study')
    cmd = [sys.executable, '-m', 'cmpese.study', '--out', out, '--dataset', 'digits',
           '--models', 'preresnet8,se_preresnet8', '--seeds', '0', '--epochs', '1',
           '--train-args', '--batch-size 128']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(out, 'runs.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [(r['model'], r['seed'], r['epochs']) for r in rows] == [
        ('preresnet8', '0', '1'), ('se_preresnet8', '0', '1')]
    assert all(0 < float(r['test_accuracy']) <= 1 for r in rows)
    for name in ('summary.md', 'summary.csv', 'accuracy-vs-cost.png', 'study.json'):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert '| se_preresnet8 | 1 |' in proc.stdout and 'one seed: no interval' in proc.stdout
    # the same command again trains nothing; a new seed trains only the new runs
    again = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=600)
    assert again.returncode == 0 and 'start' not in again.stderr, again.stderr[-2000:]
    # a killed run (checkpoint, not recorded) continues with --resume
    study = Study(out, 'digits', ['preresnet8'], [0], ['--epochs', '1'])
    assert '--resume' in study.command('preresnet8', 0, resume=True)
    # another recipe in the same directory is refused, in one line
    bad = subprocess.run(cmd[:-2] + ['--train-args', '--lr 0.5'], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=600)
    assert bad.returncode == 2 and 'keeps one recipe' in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    with open(os.path.join(out, 'study.json')) as f:
        assert json.load(f)['train_args'] == ['--epochs', '1', '--batch-size', '128']
