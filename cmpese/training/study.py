"""A multi-seed study: models x seeds under one recipe, recorded run by run, and what each unit
buys against the plain backbone (mean, standard deviation, Welch 95% interval), with its cost.

A study lives in one directory::

    study.json          the plan: dataset, models, seeds, the trainer's arguments, the baseline
    runs/<model>-s<seed>/   one train_cifar run each (checkpoints, metrics.csv, train.log)
    runs.csv            one row per finished run, written as each run ends
    summary.csv, summary.md, accuracy-vs-cost.png   the aggregate (rewritten after every run)

Each run is the trainer in a child process (``python -m cmpese.cli.train_cifar``), so a study
trains exactly what ``train_cifar.py`` trains. A killed study starts again where it stopped:
finished runs are read from ``runs.csv``, an unfinished one continues from its last intact
checkpoint with ``--resume`` (bit for bit, as the trainer guarantees), and a run directory with
no checkpoint yet starts over. Models and seeds may be added to a study later; its recipe (the
dataset and the trainer's arguments) may not change.

The accuracy of a run is its test accuracy after the last epoch (not the best epoch: choosing
an epoch on the test set would flatter every model).
"""
import csv
import io
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from ..errors import UserError

__all__ = ['Study', 'mean_std', 'welch_interval', 'summarize', 'RUN_COLUMNS',
           'SUMMARY_COLUMNS', 'format_markdown', 'plot_accuracy_cost', 'TRAINER']

log = logging.getLogger('cmpese.study')

TRAINER = 'cmpese.cli.train_cifar'     # run as ``python -m TRAINER``

RUN_COLUMNS = ('model', 'seed', 'test_accuracy', 'test_error', 'test_loss', 'epochs',
               'epoch_seconds', 'images_per_sec', 'wall_seconds', 'load_average', 'run_dir')
SUMMARY_COLUMNS = ('model', 'seeds', 'mean_accuracy', 'std_accuracy', 'diff', 'diff_low',
                   'diff_high', 'welch_df', 'params', 'macs', 'epoch_seconds')


# ---------------------------------------------------------------- statistics

def mean_std(values):
    """``(mean, std)`` of ``values``; the standard deviation is the sample one (n - 1), None
    for fewer than two values."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        raise ValueError('no values')
    std = float(values.std(ddof=1)) if values.size > 1 else None
    return float(values.mean()), std


def welch_interval(a, b, confidence=0.95):
    """Difference of means ``mean(a) - mean(b)`` with its Welch confidence interval.

    Returns ``(diff, low, high, df)``: the standard error ``se = sqrt(s_a^2/n_a + s_b^2/n_b)``
    (sample variances), the Welch-Satterthwaite degrees of freedom
    ``df = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))`` and
    ``diff -/+ t_{(1+confidence)/2, df} * se``. With fewer than two values on either side the
    interval is ``None, None, None``. Two samples without spread give a zero-width interval.
    """
    from scipy import stats
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return diff, None, None, None
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff, float('inf')
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df)) * se
    return diff, diff - half, diff + half, float(df)


def summarize(runs, baseline, costs=None, models=None):
    """One summary row per model from ``runs`` (dicts with 'model', 'seed', 'test_accuracy',
    'epoch_seconds'): seeds, mean and std accuracy, the difference from ``baseline`` with its
    Welch 95% interval, and the cost (``costs[model] = (params, macs)``; median seconds per
    epoch over the model's runs). ``models`` fixes the order (default: first appearance)."""
    by_model = {}
    for r in runs:
        by_model.setdefault(r['model'], []).append(r)
    order = [m for m in (models or by_model) if m in by_model]
    base = [float(r['test_accuracy']) for r in by_model.get(baseline, [])]
    rows = []
    for model in order:
        acc = [float(r['test_accuracy']) for r in by_model[model]]
        mean, std = mean_std(acc)
        if model == baseline or not base:
            diff = low = high = df = None
        else:
            diff, low, high, df = welch_interval(acc, base)
        params, macs = (costs or {}).get(model, (None, None))
        secs = [float(r['epoch_seconds']) for r in by_model[model] if r.get('epoch_seconds')]
        rows.append(dict(model=model, seeds=len(acc), mean_accuracy=mean, std_accuracy=std,
                         diff=diff, diff_low=low, diff_high=high, welch_df=df, params=params,
                         macs=macs, epoch_seconds=float(np.median(secs)) if secs else None))
    return rows


def _pct(x, digits=2, sign=False):
    if x is None:
        return 'n/a'
    return ('%+.*f' if sign else '%.*f') % (digits, 100.0 * x)


def format_markdown(rows, baseline):
    """The summary as a markdown table (accuracies in %, differences in points)."""
    head = ('| model | seeds | test accuracy (%%), mean ± std | vs %s (points), 95%% CI (Welch) '
            '| params | MACs | s / epoch |' % baseline)
    out = [head, '|---|---|---|---|---|---|---|']
    for r in rows:
        if r['model'] == baseline:
            diff = 'baseline'
        elif r['diff_low'] is None:
            diff = '%s (one seed: no interval)' % _pct(r['diff'], sign=True)
        else:
            diff = '%s [%s, %s]' % (_pct(r['diff'], sign=True), _pct(r['diff_low'], sign=True),
                                    _pct(r['diff_high'], sign=True))
        acc = '%s ± %s' % (_pct(r['mean_accuracy']), _pct(r['std_accuracy']))
        out.append('| %s | %d | %s | %s | %s | %s | %s |' % (
            r['model'], r['seeds'], acc, diff,
            '{:,}'.format(r['params']) if r['params'] is not None else 'n/a',
            '%.1fM' % (r['macs'] / 1e6) if r['macs'] is not None else 'n/a',
            '%.0f' % r['epoch_seconds'] if r['epoch_seconds'] is not None else 'n/a'))
    return '\n'.join(out) + '\n'


def plot_accuracy_cost(path, rows, baseline, title=''):
    """Two panels: mean test accuracy (error bars: one standard deviation over the seeds)
    against multiply-adds and against measured seconds per epoch; the baseline's mean is a
    dashed line."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    from matplotlib.figure import Figure
    from .checkpoint import atomic_write
    fig = Figure(figsize=(10, 4.2))
    panels = ((fig.add_subplot(1, 2, 1), 'macs', 1e-6, 'multiply-adds per image (M)'),
              (fig.add_subplot(1, 2, 2), 'epoch_seconds', 1.0, 'training time per epoch (s)'))
    base = [r for r in rows if r['model'] == baseline]
    for ax, key, scale, label in panels:
        for i, r in enumerate(rows):
            if r[key] is None:
                continue
            ax.errorbar(r[key] * scale, 100 * r['mean_accuracy'],
                        yerr=100 * r['std_accuracy'] if r['std_accuracy'] else None,
                        fmt='o', capsize=4, color='C%d' % (i % 10), label=r['model'])
        if base:
            ax.axhline(100 * base[0]['mean_accuracy'], color='grey', ls='--', lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel('test accuracy (%)')
        ax.grid(alpha=0.3)
    panels[0][0].legend(fontsize=7, loc='lower right')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format='png', dpi=100))


# ---------------------------------------------------------------- the study

def _write_text(path, text):
    from .checkpoint import atomic_write

    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
    atomic_write(path, write)


def _csv_text(rows, columns):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction='ignore', lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ('' if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def _git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=here,
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(['git', 'status', '--porcelain', '--', '.'], cwd=os.path.dirname(
            os.path.dirname(here)), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode:
        return None
    return out.stdout.strip() + ('+changes' if dirty.stdout.strip() else '')


class Study(object):
    """Models x seeds under one recipe in directory ``out`` (see the module docstring).

    ``train_args``: the trainer's arguments shared by every run (``--epochs 15``,
    ``--data-dir D``...); ``python``: the interpreter for the runs (default this one).
    """

    def __init__(self, out, dataset, models, seeds, train_args=(), baseline=None,
                 python=None):
        self.out = out
        self.dataset = dataset
        self.models = list(models)
        self.seeds = [int(s) for s in seeds]
        self.train_args = list(train_args)
        self.baseline = baseline or self.models[0]
        self.python = python or sys.executable
        self.child = None

    # -- files
    @property
    def plan_path(self):
        return os.path.join(self.out, 'study.json')

    @property
    def runs_path(self):
        return os.path.join(self.out, 'runs.csv')

    def run_dir(self, model, seed):
        return os.path.join(self.out, 'runs', '%s-s%d' % (model, seed))

    def check_plan(self):
        """Write ``study.json``, or check it against this study: the recipe may not change,
        models and seeds may be added (they are merged into the plan)."""
        plan = self.plan()
        os.makedirs(self.out, exist_ok=True)
        _write_text(self.plan_path, json.dumps(plan, indent=1) + '\n')
        return plan

    def plan(self):
        """The plan of this study merged into the one in ``study.json`` (if any), checked as
        :meth:`check_plan` checks it; writes nothing."""
        plan = dict(dataset=self.dataset, train_args=self.train_args, models=self.models,
                    seeds=self.seeds, baseline=self.baseline)
        if os.path.exists(self.plan_path):
            try:
                with open(self.plan_path) as f:
                    old = json.load(f)
            except (OSError, ValueError) as err:
                raise UserError('%s cannot be read (%s); it is the plan of the study in --out '
                                '%s: restore it or choose another --out' % (
                                    self.plan_path, err, self.out))
            for key in ('dataset', 'train_args'):
                if old.get(key) != plan[key]:
                    raise UserError(
                        '--out %s holds a study with %s %s, not %s: a study keeps one recipe; '
                        'choose another --out for a new one' % (
                            self.out, key.replace('_', ' '), old.get(key), plan[key]))
            plan['models'] = old['models'] + [m for m in self.models if m not in old['models']]
            plan['seeds'] = old['seeds'] + [s for s in self.seeds if s not in old['seeds']]
            plan['baseline'] = self.baseline if self.baseline in plan['models'] else \
                old.get('baseline')
        return plan

    def finished(self):
        """The rows of ``runs.csv`` (finished runs), checked: a file that is not one (binary,
        columns missing, a line cut short, a seed or accuracy that is not a number) is a
        :class:`UserError` naming it and the line."""
        if not os.path.exists(self.runs_path):
            return []
        fix = 'restore it or choose another --out'
        try:
            with open(self.runs_path, newline='') as f:
                reader = csv.DictReader(f)
                missing = [c for c in ('model', 'seed', 'test_accuracy')
                           if c not in (reader.fieldnames or [])]
                if missing:
                    raise UserError('%s is not the runs.csv of a study (no %s column); %s'
                                    % (self.runs_path, ', '.join(missing), fix))
                rows = []
                for r in reader:
                    try:
                        if None in r or not r['model'] or int(r['seed']) < 0 or \
                                not 0 <= float(r['test_accuracy']) <= 1:
                            raise ValueError
                        float(r.get('epoch_seconds') or 0)
                    except (TypeError, ValueError):
                        raise UserError('%s line %d is damaged (model %r, seed %r, test '
                                        'accuracy %r); %s' % (
                                            self.runs_path, reader.line_num, r.get('model'),
                                            r.get('seed'), r.get('test_accuracy'), fix))
                    rows.append(r)
                return rows
        except (UnicodeDecodeError, csv.Error) as err:
            raise UserError('%s is not a text CSV file (%s); %s'
                            % (self.runs_path, str(err)[:80], fix))

    def _record(self, row):
        rows = [r for r in self.finished()
                if not (r['model'] == row['model'] and int(r['seed']) == row['seed'])]
        rows.append(row)
        _write_text(self.runs_path, _csv_text(rows, RUN_COLUMNS))

    # -- one run
    def command(self, model, seed, resume=False):
        cmd = [self.python, '-m', TRAINER, '--model', model, '--dataset', self.dataset,
               '--seed', str(seed), '--save-dir', self.run_dir(model, seed), '--no-progress']
        cmd += self.train_args
        if resume:
            cmd.append('--resume')
        return cmd

    def train(self, model, seed):
        """Train (or continue) one run in a child process; return its ``runs.csv`` row."""
        from .checkpoint import RECORD
        run_dir = self.run_dir(model, seed)
        resume = os.path.exists(os.path.join(run_dir, RECORD))
        if os.path.isdir(run_dir) and not resume:
            shutil.rmtree(run_dir)      # started, but killed before its first checkpoint
        os.makedirs(os.path.dirname(run_dir), exist_ok=True)
        cmd = self.command(model, seed, resume)
        log.info('%s %s seed %d: %s', 'continue' if resume else 'start', model, seed,
                 ' '.join(cmd[1:]))
        tic = time.time()
        with open(run_dir + '.console.log', 'a') as console:
            self.child = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT)
            try:
                code = self.child.wait()
            finally:
                if self.child.poll() is None:
                    self.child.terminate()
                    self.child.wait()
                self.child = None
        if code != 0:
            raise UserError('%s seed %d failed (exit %d); its output is in %s.console.log. Fix '
                            'the cause and run the study again: it continues where it stopped'
                            % (model, seed, code, run_dir))
        return self._result(model, seed, time.time() - tic)

    def _result(self, model, seed, wall):
        with open(os.path.join(self.run_dir(model, seed), 'metrics.csv')) as f:
            history = list(csv.DictReader(f))
        last = history[-1]
        secs = [float(r['time']) for r in history if r.get('time')]
        ips = [float(r['images_per_sec']) for r in history if r.get('images_per_sec')]
        return dict(model=model, seed=seed, test_accuracy=1.0 - float(last['test_error']),
                    test_error=float(last['test_error']), test_loss=float(last['test_loss']),
                    epochs=int(last['epoch']), epoch_seconds=float(np.median(secs)),
                    images_per_sec=float(np.median(ips)) if ips else None,
                    wall_seconds=round(wall, 1), load_average=round(os.getloadavg()[2], 2),
                    run_dir=os.path.relpath(self.run_dir(model, seed), self.out))

    # -- costs and the report
    def costs(self, models):
        """``model -> (params, multiply-adds)`` at the dataset's input size."""
        import mxnet as mx
        from ..data.datasets import DATASETS
        from ..model_zoo import get_model
        from ..analysis.complexity import count_params
        from ..analysis.flops import count_flops
        size = DATASETS[self.dataset].get('size', 32)
        classes = DATASETS[self.dataset]['classes']
        out = {}
        for model in models:
            net = get_model(model, classes=classes)
            net.initialize(mx.init.Xavier())
            shape = (1, 3, size, size)
            out[model] = (count_params(net, input_shape=shape),
                          int(count_flops(net, input_shape=shape).total))
        return out

    def report(self, plan=None):
        """Rewrite summary.csv, summary.md and accuracy-vs-cost.png from ``runs.csv``;
        return the summary rows."""
        plan = plan or self.check_plan()
        runs = self.finished()
        if not runs:
            return []
        models = [m for m in plan['models'] if any(r['model'] == m for r in runs)]
        rows = summarize(runs, plan['baseline'], self.costs(models), models)
        _write_text(os.path.join(self.out, 'summary.csv'), _csv_text(rows, SUMMARY_COLUMNS))
        total = sum(float(r['wall_seconds']) for r in runs)
        header = ('Study of %s on %s: %d finished runs, %.1f h of training; trainer arguments: '
                  '%s; baseline %s.\n\n' % (', '.join(models), self.dataset, len(runs),
                                          total / 3600.0, ' '.join(plan['train_args']) or
                                          '(the preset\'s)', plan['baseline']))
        _write_text(os.path.join(self.out, 'summary.md'),
                    header + format_markdown(rows, plan['baseline']))
        plot_accuracy_cost(os.path.join(self.out, 'accuracy-vs-cost.png'), rows,
                           plan['baseline'], title='%s, %s seeds' % (
                               self.dataset, '/'.join(str(s) for s in plan['seeds'])))
        return rows

    def run(self):
        """Every planned run not yet in ``runs.csv``, seed by seed (so that every model has
        its first seed before any has its second); the report after each."""
        plan = self.check_plan()
        done = {(r['model'], int(r['seed'])) for r in self.finished()}
        log.info('study in %s (commit %s): %d of %d runs finished', self.out, _git_commit(),
                 len(done), len(plan['models']) * len(plan['seeds']))
        for seed in plan['seeds']:
            for model in plan['models']:
                if (model, seed) in done:
                    continue
                row = self.train(model, seed)
                self._record(row)
                log.info('%s seed %d: test accuracy %.2f%%, %.0f s/epoch', model, seed,
                         100 * row['test_accuracy'], row['epoch_seconds'])
                self.report(plan)
        return self.report(plan)
