#!/usr/bin/env python
"""Is data loading the bottleneck of train_cifar.py? Training images per second through the
full script against the same script with data loading taken out.

For each model (plain, SE and CMPE-SE WRN-16-8 by default) two runs of ``train_cifar.py``
on a CIFAR-10 set written in the official binary format:

* ``full``: the script as users run it: official files -> BatchLoader (shuffle, pad-4 crop,
  flip, normalization, NDArray conversion, background prefetch) -> fit loop;
* ``model``: the same script, the same configuration and fit loop, but the training loader
  replaced by one that hands out the same ready-made NDArray batch every iteration (no
  reading, augmentation or conversion) -- the model-alone rate.

Each run trains ``--epochs`` epochs; the rate of the last epoch is used (the first pays for
graph building and memory allocation). Rates are the fit loop's own ``images_per_sec``
(training loop only: forward, backward, the NaN checks and the update; evaluation and
checkpoints excluded). Runs are interleaved: every round runs each (model, full / model)
once, in a seeded random order (benchmarks/harness.py), and the median over rounds is
reported with the ratio full/model.
Goal: full >= 90% of model.

    python benchmarks/bench_data.py                        # ~12 min on 2 cores (plain, SE, CMPE 1x1)
    python benchmarks/bench_data.py --models wrn16_8,se_wrn16_8,cmpe_se_wrn16_8_double_fc,cmpe_se_wrn16_8_2x1,cmpe_se_wrn16_8_1x1
    python benchmarks/bench_data.py --images 192 --rounds 1 --models wrn16_8   # smoke run
"""
import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'train_cifar.py')
MODELS = ('wrn16_8', 'se_wrn16_8', 'cmpe_se_wrn16_8_double_fc', 'cmpe_se_wrn16_8_2x1',
          'cmpe_se_wrn16_8_1x1')


def write_cifar10(folder, n_train, n_test, seed=0):
    """A CIFAR-10 set in the official binary layout (random pixels, balanced labels)."""
    import numpy as np
    rng = np.random.RandomState(seed)
    os.makedirs(os.path.join(folder, 'cifar-10-batches-bin'), exist_ok=True)

    def records(n):
        labels = (np.arange(n) % 10).astype(np.uint8)[:, None]
        pixels = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
        return np.concatenate([labels, pixels], axis=1).tobytes()
    parts = [n_train // 5 + (1 if i < n_train % 5 else 0) for i in range(5)]
    for i, n in enumerate(parts):
        with open(os.path.join(folder, 'cifar-10-batches-bin', 'data_batch_%d.bin' % (i + 1)),
                  'wb') as f:
            f.write(records(n))
    with open(os.path.join(folder, 'cifar-10-batches-bin', 'test_batch.bin'), 'wb') as f:
        f.write(records(n_test))


def model_alone_main(argv):
    """Run train_cifar.main with the training BatchLoader replaced by a constant batch."""
    sys.path.insert(0, ROOT)
    import train_cifar   # first: it sets the OpenMP thread default before mxnet is imported
    import cmpese.data
    real = cmpese.data.BatchLoader

    class ConstantBatch(object):
        """len() and epoch() of the real training loader, but every batch is the first
        batch of epoch 0, prepared once."""

        def __init__(self, *args, **kwargs):
            self.inner = real(*args, **kwargs)
            self.training = kwargs.get('shuffle', False)
            self.batch = next(iter(self.inner.epoch(0))) if self.training else None

        def __len__(self):
            return len(self.inner)

        def epoch(self, e, mixup_alpha=0.0):
            if not self.training:
                for item in self.inner.epoch(e, mixup_alpha):
                    yield item
                return
            for _ in range(len(self.inner)):
                yield self.batch

    cmpese.data.BatchLoader = ConstantBatch
    return train_cifar.main(argv)


def run(kind, model, data_dir, out_dir, args):
    save = os.path.join(out_dir, '%s-%s-%d' % (model, kind, random.getrandbits(32)))
    argv = ['--model', model, '--dataset', 'cifar10', '--data-dir', data_dir, '--no-download',
            '--epochs', str(args.epochs), '--batch-size', str(args.batch_size),
            '--save-dir', save, '--no-progress', '--seed', '0']
    cmd = [sys.executable, SCRIPT] + argv if kind == 'full' else \
        [sys.executable, os.path.abspath(__file__), '--model-alone'] + argv
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if proc.returncode:
        raise SystemExit('%s run of %s failed:\n%s' % (kind, model, proc.stderr[-3000:]))
    with open(os.path.join(save, 'metrics.csv')) as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]['images_per_sec'])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--model-alone':
        return model_alone_main(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', default='wrn16_8,se_wrn16_8,cmpe_se_wrn16_8_1x1',
                        help='comma-separated zoo names')
    parser.add_argument('--images', type=int, default=256, help='training images')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--epochs', type=int, default=2, help='the last one is measured')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args()
    models = [m for m in args.models.split(',') if m]
    random.seed(args.seed)          # the run directories' names
    keys = [(m, k) for m in models for k in ('full', 'model')]
    with tempfile.TemporaryDirectory(prefix='cmpese-bench-data-') as tmp:
        data_dir = os.path.join(tmp, 'data')
        write_cifar10(data_dir, args.images, 32)
        print('%s\n%d training images, batch %d, %d epochs (last measured), %d round(s)%s'
              % (harness.environment_line(), args.images, args.batch_size, args.epochs,
                 args.rounds, '' if 'OMP_NUM_THREADS' in os.environ else
                 '; OMP_NUM_THREADS unset: train_cifar.py uses every CPU'), flush=True)

        def measure(key):
            m, k = key
            rate = run(k, m, data_dir, tmp, args)
            print('  %-28s %-5s %7.2f img/s' % (m, k, rate), flush=True)
            return rate
        rates = harness.interleaved_rounds(measure, keys, args.rounds, warmup=0,
                                           seed=args.seed, label='data', stream=sys.stdout)
    print('\n%-28s %12s %12s %8s' % ('model', 'full img/s', 'model img/s', 'full/model'))
    result = []
    for m in models:
        full = harness.median(rates[(m, 'full')])
        alone = harness.median(rates[(m, 'model')])
        result.append(dict(model=m, full=full, model_alone=alone, ratio=full / alone,
                           rounds_full=rates[(m, 'full')], rounds_model=rates[(m, 'model')]))
        print('%-28s %12.2f %12.2f %7.1f%%%s' % (m, full, alone, 100 * full / alone,
                                               '' if full >= 0.9 * alone else '  < 90%'))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    sys.exit(main())
