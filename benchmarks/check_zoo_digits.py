#!/usr/bin/env python
"""Every small CIFAR-family zoo model trained on the bundled digits set under its default
digits preset, as a user would (`python train_cifar.py --model NAME --dataset digits`). Prints
one table row per model (parameters, final test accuracy, epochs, wall time, pass at 95%)
and a summary; exit status 1 if any model stays below the floor or its run fails.

    python benchmarks/check_zoo_digits.py                        # every model <= 2.1M params
    python benchmarks/check_zoo_digits.py --models resnet44_cifar,res_se_net44
    python benchmarks/check_zoo_digits.py --list                 # the selection, no training

Resumable: each model trains in <out>/<model> (train.log, metrics.csv, result.json); a model
whose run finished under the current preset is read, not retrained; a run that was killed is
continued with train_cifar.py --resume; a finished or partial run of another preset (or
seed) is moved aside to <model>.stale-N and trained again. The table is also written to
<out>/table.md and <out>/results.csv. The selection: families wrn, preresnet, resnet_cifar,
allcnn and pyramidnet with at most --max-params trainable parameters (2.1M: "about 2M"; the
zoo has nothing between 2.09M and 2.33M).
"""
import argparse
import concurrent.futures
import csv
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, ROOT)

FAMILIES = ('wrn', 'preresnet', 'resnet_cifar', 'allcnn', 'pyramidnet')
DATASET = 'digits'
# the configuration keys a finished run must share with the current preset to be reused
EXTRA_KEYS = ('warmup_epochs', 'warmup_begin_lr')


def cifar_names():
    from cmpese.model_zoo import get_model_info, get_model_list
    return [n for n in get_model_list() if get_model_info(n).family in FAMILIES]


def count_params(name, classes=10):
    """Trainable parameters of ``name`` built for ``classes`` outputs (shapes inferred by one
    forward pass at the family's input size)."""
    import mxnet as mx
    import cmpese
    from cmpese.model_zoo import get_model_info
    size = get_model_info(name).input_size
    net = cmpese.get_model(name, classes=classes)
    net.initialize()
    net(mx.nd.zeros((1, 3, size, size)))
    return sum(p.data().size for p in net.collect_params().values() if p.grad_req != 'null')


def expected_config(name, seed):
    """The preset values (and seed) a run of ``name`` on digits is trained with today."""
    from cmpese.training.presets import default_preset, get_preset
    preset = default_preset(name, DATASET)
    values = get_preset(preset)
    values.pop('source')
    values['preset'] = preset
    values['seed'] = seed
    for key in EXTRA_KEYS:
        values.setdefault(key, None)
    return values


def config_differences(saved, expected):
    """``key: saved -> expected`` for each preset value that differs (0 and None alike)."""
    out = []
    for key, want in sorted(expected.items()):
        have = saved.get(key)
        if (have or None) != (want or None) and have != want:
            out.append('%s: %r -> %r' % (key, have, want))
    return out


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_state(run_dir, expected):
    """('done' | 'partial' | 'new' | 'stale', differences) of the run in ``run_dir``."""
    if not os.path.isdir(run_dir):
        return 'new', []
    saved = read_json(os.path.join(run_dir, 'config.json'))
    if saved is None:
        # killed before config.json was written, or not a run directory: keep it aside
        return ('stale', ['no config.json']) if os.listdir(run_dir) else ('new', [])
    diff = config_differences(saved, expected)
    if diff:
        return 'stale', diff
    if os.path.exists(os.path.join(run_dir, 'result.json')):
        return 'done', []
    return 'partial', []


def move_aside(run_dir):
    n = 1
    while os.path.exists('%s.stale-%d' % (run_dir, n)):
        n += 1
    os.rename(run_dir, '%s.stale-%d' % (run_dir, n))
    return '%s.stale-%d' % (run_dir, n)


def read_metrics(run_dir):
    with open(os.path.join(run_dir, 'metrics.csv')) as f:
        return list(csv.DictReader(f))


def train(name, run_dir, seed, resume, env):
    """Run train_cifar.py for ``name``; returns (exit code, wall seconds). Its output goes
    to ``<run_dir>.out``."""
    cmd = [sys.executable, os.path.join(ROOT, 'train_cifar.py'), '--model', name,
           '--dataset', DATASET, '--save-dir', run_dir, '--seed', str(seed), '--no-progress']
    if resume:
        cmd.append('--resume')
    t0 = time.time()
    with open(run_dir + '.out', 'a') as out:
        out.write('$ %s\n' % ' '.join(cmd))
        out.flush()
        code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    return code, time.time() - t0


def commit():
    try:
        head = subprocess.check_output(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                                       stderr=subprocess.DEVNULL).decode().strip()
        dirty = subprocess.check_output(['git', 'status', '--porcelain', '--untracked-files=no'],
                                        cwd=ROOT, stderr=subprocess.DEVNULL).decode().strip()
        return head + ('+changes' if dirty else '')
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


COLUMNS = ('model', 'params', 'test_acc', 'epochs', 'wall_s', 'result')


def format_table(rows, floor):
    lines = ['| model | params | test acc | epochs | wall s | >= %.0f%% |' % (100 * floor),
             '|---|---:|---:|---:|---:|---|']
    for r in rows:
        acc = '%.1f%%' % (100 * r['test_acc']) if r['test_acc'] is not None else '-'
        wall = '-' if r['wall_s'] is None else '%.0f%s' % (r['wall_s'], '*' if r['resumed']
                                                            else '')
        lines.append('| %s | %.2fM | %s | %s | %s | %s |' % (
            r['model'], r['params'] / 1e6, acc, r['epochs'] if r['epochs'] else '-', wall,
            r['result']))
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', default=os.path.join('runs', 'zoo-digits'),
                   help='directory of the runs (one sub-directory a model)')
    p.add_argument('--models', help='comma-separated zoo names: only these (any size)')
    p.add_argument('--max-params', type=float, default=2.1e6,
                   help='models with at most this many trainable parameters')
    p.add_argument('--floor', type=float, default=0.95, help='final test accuracy to pass')
    p.add_argument('--seed', type=int, default=0, help='train_cifar.py --seed')
    p.add_argument('--jobs', type=int, default=1,
                   help='models trained at once (each gets OMP_NUM_THREADS = CPUs / jobs '
                        'unless OMP_NUM_THREADS is set)')
    p.add_argument('--list', action='store_true', help='print the selection and exit')
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error('--jobs must be >= 1, got %d' % args.jobs)
    if not 0 < args.floor <= 1:
        p.error('--floor is a fraction in (0, 1], got %g' % args.floor)
    import warnings
    warnings.filterwarnings('ignore')

    known = cifar_names()
    if args.models:
        names = [n.strip() for n in args.models.split(',') if n.strip()]
        bad = [n for n in names if n not in known]
        if bad:
            import difflib
            hints = []
            for n in bad:
                close = difflib.get_close_matches(n, known, n=2, cutoff=0.5)
                hints.append('%s (did you mean %s?)' % (n, ' or '.join(close)) if close else n)
            p.error('--models: not a CIFAR-family zoo name: %s' % '; '.join(hints))
    else:
        names = known
    sizes = {}
    for name in names:
        sizes[name] = count_params(name)
    if not args.models:
        names = [n for n in names if sizes[n] <= args.max_params]
    names.sort(key=lambda n: (sizes[n], n))
    if args.list:
        for n in names:
            print('%-36s %9d' % (n, sizes[n]))
        print('%d models' % len(names))
        return 0

    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ)
    if 'OMP_NUM_THREADS' not in env and args.jobs > 1:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else \
            os.cpu_count() or 1
        env['OMP_NUM_THREADS'] = str(max(1, cpus // args.jobs))
    print('commit %s; %d models on %s (preset digits, seed %d), runs in %s; OMP_NUM_THREADS=%s'
          % (commit(), len(names), DATASET, args.seed, out_dir, env.get('OMP_NUM_THREADS',
                                                                        'all CPUs')),
          flush=True)
    lock = threading.Lock()
    t_start = time.time()

    def check(name):
        run_dir = os.path.join(out_dir, name)
        expected = expected_config(name, args.seed)
        state, diff = run_state(run_dir, expected)
        row = dict(model=name, params=sizes[name], test_acc=None, epochs=None, wall_s=None,
                   resumed=False, result='FAIL')
        note = ''
        if state == 'stale':
            moved = move_aside(run_dir)
            note = 'earlier run moved to %s (%s)' % (os.path.basename(moved), '; '.join(diff))
            state = 'new'
        wall_file = os.path.join(run_dir, 'check_zoo_digits.json')
        if state == 'done':
            row['wall_s'] = (read_json(wall_file) or {}).get('wall_s')
            row['resumed'] = (read_json(wall_file) or {}).get('resumed', False)
            note = 'finished earlier'
        else:
            code, wall = train(name, run_dir, args.seed, state == 'partial', env)
            if code != 0 or not os.path.exists(os.path.join(run_dir, 'result.json')):
                row['result'] = 'FAIL (train_cifar.py exit %d, see %s.out)' % (code, run_dir)
                if code in (130, 143):
                    raise KeyboardInterrupt
                row['wall_s'] = wall
            else:
                row['wall_s'], row['resumed'] = wall, state == 'partial'
                with open(wall_file, 'w') as f:
                    json.dump(dict(wall_s=wall, resumed=state == 'partial'), f)
        if os.path.exists(os.path.join(run_dir, 'result.json')):
            metrics = read_metrics(run_dir)
            row['epochs'] = len(metrics)
            row['test_acc'] = 1 - float(metrics[-1]['test_error'])
            row['result'] = 'pass' if row['test_acc'] >= args.floor else 'FAIL'
        with lock:
            print('%-4s %-36s %5.2fM  test acc %s  %s epochs  %s%s' % (
                'ok' if row['result'] == 'pass' else 'FAIL', name, sizes[name] / 1e6,
                '-' if row['test_acc'] is None else '%.1f%%' % (100 * row['test_acc']),
                row['epochs'] or '-', '-' if row['wall_s'] is None else '%.0f s' % row['wall_s'],
                ('  (%s)' % note) if note else ''), flush=True)
        return row

    rows = {}
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(check, n): n for n in names}
            for future in concurrent.futures.as_completed(futures):
                rows[futures[future]] = future.result()
    except KeyboardInterrupt:
        print('interrupted; run the same command again to continue (finished models are kept, '
              'the interrupted one resumes from its last epoch)', file=sys.stderr)
        return 130
    rows = [rows[n] for n in names]
    failed = [r['model'] for r in rows if r['result'] != 'pass']
    table = format_table(rows, args.floor)
    summary = ('%d models, %d below %.0f%% or failed%s; %.0f s wall for this invocation'
               % (len(rows), len(failed), 100 * args.floor,
                  (': ' + ', '.join(failed)) if failed else '', time.time() - t_start))
    print()
    print(table)
    print(summary)
    with open(os.path.join(out_dir, 'table.md'), 'w') as f:
        f.write(table + '\n\n' + summary + '\n(* resumed: wall time of the last invocation '
                'only)\n')
    with open(os.path.join(out_dir, 'results.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(COLUMNS + ('resumed',))
        for r in rows:
            w.writerow([r['model'], r['params'], '' if r['test_acc'] is None else
                        '%.4f' % r['test_acc'], r['epochs'] or '', '' if r['wall_s'] is None
                        else '%.1f' % r['wall_s'], r['result'], r['resumed']])
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
