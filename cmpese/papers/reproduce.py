"""Which command reproduces which row of which paper table, and what our runs measured.

The rows are those of :mod:`cmpese.papers` (``cmpese/papers/rows.csv``: every result row of
the CMPE-SE paper's Tables 1-4, the Inner-Imaging paper's Tables II-V, the Res-SE-Net paper's
CIFAR Tables 1, 2, 4 and 5, and the SENet paper's ResNet-50/101 rows (Table 2) with its CIFAR
Tables 4 and 5). From them come

* the command that trains a row's model as the table's paper did (:func:`row_runs`,
  :func:`format_command`): ``train_cifar.py`` or ``train_imagenet.py`` with the model, the
  dataset, the paper's schedule preset, mixup for the mixup columns, SVHN's train+extra;
* ``docs/reproduce.md`` (:func:`reproduce_markdown`): the paper's figure, our parameter
  count, and the figure measured by a run of this package, empty until a run is recorded;
* ``docs/model_zoo.md`` (:func:`model_zoo_markdown`): every zoo name with its paper rows,
  parameters and FLOPs measured here beside the printed ones, and its default presets.

A finished run is recorded with :func:`record_result` (``python -m cmpese.reproduce --collect
RUN_DIR``) into a JSON file (:func:`default_results_path`); it is matched to the rows trained
by the same model, dataset, mixup and preset, and every schedule value that differs from the
row's command (say, ``--epochs 1``) is kept with it and shown beside the number.
"""
import collections
import datetime
import functools
import importlib
import json
import os
import re
import shlex

from . import (PAPER_NAMES, PAPERS, ROWS, TABLES, Column, Row, Table, _norm, find_row,
               get_table, paper_figures, table_ref, table_rows)

__all__ = ['TABLES', 'ROWS', 'Table', 'Column', 'Row', 'Run', 'get_table', 'table_rows',
           'find_row', 'row_runs', 'row_preset', 'format_command', 'trainer_path',
           'record_result', 'load_results', 'default_results_path', 'measured_cells',
           'format_list', 'reproduce_markdown', 'model_zoo_markdown', 'write_docs',
           'repo_root', 'model_complexity', 'paper_figures', 'IMAGENET_FILES', 'PAPER_NAMES']

Run = collections.namedtuple('Run', 'key dataset mixup columns preset argv save_dir')
Run.__doc__ = """One training run behind one or more columns of a row (top-1 and top-5 come
from the same run)."""

# Where each paper's models take their schedule from, per backbone family (a comparison row
# is trained as the paper that prints it trained its own models). 'cmpe-3' trained its
# CMPE-SE-WRNs for 300 epochs; the SENet CIFAR tables follow each backbone's own authors
# (He et al.'s 64k iterations, which the res_se_net preset is; Zagoruyko's WRN schedule, which
# cmpe_wrn is).
_FAMILY_PRESETS = {
    'cmpe': {'wrn': 'cmpe_wrn', 'preresnet': 'cmpe_preresnet', 'resnet_cifar': 'res_se_net'},
    'ini': {'wrn': 'ini_wrn', 'preresnet': 'ini_resnet', 'resnet_cifar': 'ini_resnet',
            'allcnn': 'ini_other', 'pyramidnet': 'ini_other'},
    'res_se_net': {'resnet_cifar': 'res_se_net'},
    'senet': {'preresnet': 'res_se_net', 'wrn': 'cmpe_wrn'},
}
_TABLE_PRESETS = {'cmpe-3': {'wrn': 'cmpe_300'}}
_DATASET_PRESETS = {
    'cmpe': {'svhn': 'cmpe_svhn', 'imagenet': 'cmpe_imagenet'},
    'ini': {'svhn': 'ini_svhn', 'imagenet': 'ini_imagenet'},
    'senet': {'imagenet': 'senet'},
}

IMAGENET_FILES = ('train.rec', 'train.idx', 'val.rec', 'val.idx')
DOCS_DATA_DIR = 'data'      # the data directory the generated docs' commands name


def repo_root():
    """The directory holding train_cifar.py next to the cmpese package (a source checkout),
    else the current directory."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return here if os.path.isfile(os.path.join(here, 'train_cifar.py')) else os.getcwd()


def trainer_path(dataset):
    """train_imagenet.py for ImageNet rows, train_cifar.py otherwise (in :func:`repo_root`)."""
    return os.path.join(repo_root(), 'train_imagenet.py' if dataset == 'imagenet'
                        else 'train_cifar.py')


def row_preset(row, dataset):
    """The schedule preset the row's paper trained ``dataset`` with (see _FAMILY_PRESETS)."""
    from ..model_zoo import get_model_info
    paper = TABLES[row.table].paper
    by_dataset = _DATASET_PRESETS.get(paper, {})
    if dataset in by_dataset:
        return by_dataset[dataset]
    info = get_model_info(row.model)
    preset = _TABLE_PRESETS.get(row.table, {}).get(info.family) or \
        _FAMILY_PRESETS.get(paper, {}).get(info.family)
    return preset or info.presets[dataset]


def _slug(text):
    return re.sub(r'[^a-z0-9_.+-]+', '_', text.lower()).strip('_')


def row_runs(row, columns=None, save_root='runs/reproduce', data_dir=None, python='python',
             trainer_dir=None):
    """The training runs behind ``row`` (one per dataset and mixup setting among the columns
    the paper prints a figure for), each with its command line ``argv``.

    ``columns`` restricts them to those column names; ``data_dir`` is passed as --data-dir
    (CIFAR / SVHN) or holds imagenet/{train,val}.{rec,idx}; ``trainer_dir`` prefixes the
    trainer script (default: none, i.e. run from the repository).
    """
    if row.model is None:
        return []
    table = TABLES[row.table]
    wanted = None if columns is None else {_norm(c) for c in columns}
    runs = collections.OrderedDict()
    for column, value in zip(table.columns, row.values):
        if value is None or (wanted is not None and _norm(column.name) not in wanted):
            continue
        key = (column.dataset, column.mixup)
        if key in runs:
            runs[key][2].append(column.name)
            continue
        runs[key] = [column.dataset, column.mixup, [column.name]]
    out = []
    for (dataset, mixup), (_, _, names) in runs.items():
        preset = row_preset(row, dataset)
        save_dir = '/'.join([save_root, row.table, _slug('%s-%s%s' % (
            row.model, dataset, '-mixup' if mixup else ''))])
        script = 'train_imagenet.py' if dataset == 'imagenet' else 'train_cifar.py'
        if trainer_dir:
            script = os.path.join(trainer_dir, script)
        argv = [python, script, '--model', row.model]
        if dataset == 'imagenet':
            base = os.path.join(data_dir or DOCS_DATA_DIR, 'imagenet')
            argv += ['--preset', preset]
            for flag, name in zip(('--rec-train', '--rec-train-idx', '--rec-val', '--rec-val-idx'),
                                  IMAGENET_FILES):
                argv += [flag, os.path.join(base, name)]
        else:
            argv += ['--dataset', dataset, '--preset', preset]
            if mixup:
                argv.append('--mixup')
            if dataset == 'svhn':    # both papers train on all 604,388 SVHN training digits
                argv.append('--svhn-extra')
            if data_dir:
                argv += ['--data-dir', data_dir]
        argv += ['--save-dir', save_dir]
        out.append(Run('%s%s' % (dataset, ' mixup' if mixup else ''), dataset, mixup,
                       tuple(names), preset, argv, save_dir))
    return out


def format_command(argv):
    """A shell command line for ``argv`` (quoted where needed)."""
    return ' '.join(shlex.quote(a) for a in argv)


# ---------------------------------------------------------------------------------------------
# Recording results
# ---------------------------------------------------------------------------------------------
def default_results_path():
    """``$CMPESE_RESULTS``, else results/reproduce.json in :func:`repo_root`."""
    return os.environ.get('CMPESE_RESULTS') or os.path.join(repo_root(), 'results',
                                                           'reproduce.json')


def load_results(path=None):
    """The recorded results (a list of dicts); [] when the file does not exist yet."""
    from ..errors import UserError
    path = path or default_results_path()
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as err:
        raise UserError('%s is not valid JSON (%s); restore it from version control or '
                        'delete it and collect the runs again' % (path, err))
    if not isinstance(data, dict) or not isinstance(data.get('results', []), list):
        raise UserError('%s is not a results file (expected {"results": [...]}); restore it '
                        'from version control or delete it and collect the runs again' % path)
    return list(data.get('results', []))


def _save_results(results, path):
    from ..errors import UserError
    from ..training.checkpoint import atomic_write
    text = json.dumps({'results': results}, indent=1, sort_keys=True) + '\n'

    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write(path, write)
    except OSError as err:
        raise UserError('the results file %s cannot be written (%s); choose a writable path '
                        '(--results or $CMPESE_RESULTS)' % (path, err.strerror or err))


_SCHEDULE_KEYS = ('optimizer', 'momentum', 'wd', 'batch_size', 'lr', 'epochs', 'iterations',
                  'lr_steps', 'lr_steps_frac', 'lr_steps_iter', 'lr_factor', 'mixup_alpha',
                  'mixup_off_epochs', 'svhn_extra', 'model_args')


_SCHEDULE_KEYS = ('optimizer', 'momentum', 'wd', 'batch_size', 'lr', 'epochs', 'iterations',
                  'lr_steps', 'lr_steps_frac', 'lr_steps_iter', 'lr_factor', 'mixup_alpha',
                  'mixup_off_epochs', 'svhn_extra', 'model_args')

@functools.lru_cache(maxsize=None)
def _trainer_parser(dataset):
    """The argument parser of the trainer that runs ``dataset``: ``build_parser`` of
    :mod:`cmpese.cli.train_imagenet` for ImageNet, of :mod:`cmpese.cli.train_cifar`
    otherwise (the root train_*.py scripts are shims over them)."""
    kind = 'imagenet' if dataset == 'imagenet' else 'cifar'
    return importlib.import_module('cmpese.cli.train_%s' % kind).build_parser()


def expected_config(run):
    """The configuration the trainer resolves for ``run``'s command."""
    from ..training.cli import explicit_keys, resolve_config
    parser = _trainer_parser(run.dataset)
    argv = run.argv[2:]
    args = parser.parse_args(argv)
    return resolve_config(args, explicit_keys(parser, argv))


def _deviations(cfg, run):
    """'key: run value (row: command value)' for every schedule value that differs."""
    expected = expected_config(run)
    out = []
    for key in _SCHEDULE_KEYS:
        if key not in expected and key not in cfg:
            continue
        a, b = cfg.get(key), expected.get(key)
        if key == 'model_args':
            a, b = json.loads(a or '{}'), json.loads(b or '{}')
        if a != b and not (a in (None, False, '') and b in (None, False, '')):
            out.append('%s %s (the row: %s)' % (key, a, b))
    return out


def _run_matches(cfg):
    dataset = cfg.get('dataset') or 'imagenet'
    out = []
    for row in ROWS:
        if row.model != cfg.get('model'):
            continue
        for run in row_runs(row):
            if run.dataset == dataset and run.mixup == bool(cfg.get('mixup')) and \
                    run.preset == cfg.get('preset'):
                out.append((row, run))
    return out


def record_result(run_dir, results_path=None, table=None, row=None):
    """Record the finished run in ``run_dir`` against the table rows it reproduces.

    The run's config.json says what was trained (model, dataset, mixup, preset) and its
    result.json what it measured (the last epoch's top-1 / top-5 test error, the best one).
    Every row whose command trains the same is matched (``table`` / ``row`` narrow them);
    schedule values that differ from the row's command are recorded as ``deviations``.
    Returns the entries written; an existing entry of the same run directory and row is
    replaced. Raises :class:`cmpese.errors.UserError` for an unfinished run, a run that no
    row trains, or a missing file.
    """
    from ..errors import UserError
    from ..training.checkpoint import read_json
    results_path = results_path or default_results_path()
    run_dir = os.path.abspath(run_dir)
    cfg_path = os.path.join(run_dir, 'config.json')
    res_path = os.path.join(run_dir, 'result.json')
    if not os.path.isfile(cfg_path):
        raise UserError('--collect %s: no config.json there; expected the --save-dir of a '
                        'train_cifar.py / train_imagenet.py run' % run_dir)
    if not os.path.isfile(res_path):
        raise UserError('--collect %s: no result.json, so the run has not finished; continue '
                        'it with the same command and --resume, then collect it' % run_dir)
    try:
        cfg = read_json(cfg_path, 'run configuration')
        state = read_json(res_path, 'run result')
    except UserError as err:
        raise UserError('--collect %s: %s; restore it from a copy (nothing was recorded)'
                        % (run_dir, err))
    if not isinstance(state.get('history', []), list):
        raise UserError('--collect %s: result.json has no list of epochs (history); restore it '
                        'from a copy (nothing was recorded)' % run_dir)
    history = state.get('history') or []
    if not history:
        raise UserError('--collect %s: result.json holds no epoch; the run trained nothing'
                        % run_dir)
    matches = _run_matches(cfg)
    if table is not None:
        matches = [(r, u) for r, u in matches if r.table == table]
    if row is not None:
        matches = [(r, u) for r, u in matches if _norm(r.label) == _norm(row)]
    if not matches:
        rows = ['%s "%s"' % (r.table, r.label) for r in ROWS if r.model == cfg.get('model')]
        raise UserError(
            '--collect %s: no table row trains %s on %s with preset %s%s; %s' % (
                run_dir, cfg.get('model'), cfg.get('dataset', 'imagenet'), cfg.get('preset'),
                ' and mixup' if cfg.get('mixup') else '',
                ('the rows of this model: %s (python -m cmpese.reproduce --table T --row R '
                 'prints their commands)' % ', '.join(rows)) if rows else
                'this model is in no table row'))
    last = history[-1]
    results = [e for e in load_results(results_path)]
    written = []
    for r, run in matches:
        entry = dict(
            table=r.table, row=r.label, run=run.key, model=cfg.get('model'),
            dataset=run.dataset, mixup=run.mixup, preset=cfg.get('preset'),
            run_dir=run_dir, epochs=len(history), seed=cfg.get('seed'),
            top1_error=last.get('test_error'), top5_error=last.get('test_top5_error'),
            best_top1_error=state.get('best_error'), best_epoch=state.get('best_epoch'),
            deviations=_deviations(cfg, run),
            recorded=datetime.datetime.now().replace(microsecond=0).isoformat())
        results = [e for e in results if not (e.get('run_dir') == run_dir and
                                               e.get('table') == r.table and
                                               e.get('row') == r.label)]
        results.append(entry)
        written.append(entry)
    _save_results(results, results_path)
    return written


def _metric_value(entry, metric):
    err = entry.get('top5_error') if metric in ('err5', 'acc5') else entry.get('top1_error')
    if err is None:
        return None
    return 100.0 * (1.0 - err) if metric.startswith('acc') else 100.0 * err


def measured_cells(row, results):
    """{column name: text} of the row's measured figures: the mean (and std, n) over the
    recorded full-schedule runs, else the runs with deviations marked with a dagger."""
    import numpy as np
    table = TABLES[row.table]
    out = {}
    for column in table.columns:
        entries = [e for e in results if e.get('table') == row.table and e.get('row') == row.label
                   and e.get('dataset') == column.dataset and bool(e.get('mixup')) == column.mixup]
        full = [e for e in entries if not e.get('deviations')]
        chosen = full or entries
        values = [v for v in (_metric_value(e, column.metric) for e in chosen) if v is not None]
        if not values:
            continue
        text = '%.2f' % np.mean(values)
        if len(values) > 1:
            text += ' +- %.2f (n=%d)' % (np.std(values), len(values))
        if not full:
            text += ' \u2020'
        out[column.name] = text
    return out


# ---------------------------------------------------------------------------------------------
# Listing and pages
# ---------------------------------------------------------------------------------------------
def _presets_text(row):
    if row.model is None:
        return ''
    seen = []
    for run in row_runs(row):
        if run.preset not in seen:
            seen.append(run.preset)
    return '/'.join(seen)


def format_list(table=None, results=None):
    """Plain-text listing of every row (or one table's): model, presets, printed parameters,
    printed figures, and the measured ones where recorded (in brackets)."""
    results = results or []
    lines = []
    for key, t in TABLES.items():
        if table is not None and key != table:
            continue
        rows = table_rows(key)
        lines.append('%s  %s paper, Table %s: %s' % (key, PAPER_NAMES[t.paper], t.number,
                                                     t.title))
        header = ['row', 'model', 'preset', 'params'] + [c.name for c in t.columns]
        body = []
        for r in rows:
            measured = measured_cells(r, results)
            cells = [r.label, r.model or '-', _presets_text(r) or '-',
                     (r.params + 'M') if r.params else '-']
            for c, v in zip(t.columns, r.values):
                cell = v or '-'
                if c.name in measured:
                    cell += ' [%s]' % measured[c.name]
                cells.append(cell)
            body.append(cells)
        widths = [max(len(x[i]) for x in [header] + body) for i in range(len(header))]
        for cells in [header] + body:
            lines.append('  ' + '  '.join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
        lines.append('')
    lines.append('[...]: measured by a recorded run of this package; a dagger marks a run '
                 'whose schedule differs from the row\'s command.')
    return '\n'.join(lines)


@functools.lru_cache(maxsize=None)
def model_complexity(name):
    """(parameters, multiply-adds) of zoo model ``name`` at its default classes and input
    size, counted on its symbol graph (cmpese.tools.flops)."""
    from ..model_zoo import get_model, get_model_info
    from ..analysis.flops import count_flops
    size = get_model_info(name).input_size
    result = count_flops(get_model(name), (1, 3, size, size))
    return int(result.params), int(result.total)


def _millions(n):
    return '%.2fM' % (n / 1e6)


def _cell(text):
    return str(text).replace('|', '\\|').replace('+-', '\u00b1')


GENERATED = ('<!-- Generated by `python -m cmpese.reproduce --write-docs` from '
             'cmpese/papers/rows.csv; do not edit by hand. -->')


def reproduce_markdown(results=None, complexity=None):
    """docs/reproduce.md: every table, the paper's figures, our parameter counts, the
    measured figures (empty until recorded) and the commands."""
    complexity = complexity or model_complexity
    results = results or []
    out = [GENERATED, '', '# Reproducing the papers\' tables', '',
           'Every result row of the CMPE-SE paper (Tables 1-4), the Inner-Imaging paper '
           '(Tables II-V), the Res-SE-Net paper (Tables 1, 2, 4, 5) and the SENet paper\'s '
           'ResNet-50/101 rows (Table 2) and CIFAR Tables 4-5, with the zoo model that builds '
           'it and the command that trains it as the paper did. Columns:', '',
           '* *paper params*: the count the paper prints (M); *ours*: the model\'s parameters '
           'as built here, for 10 classes on CIFAR and 1000 on ImageNet (docs/parameters.md '
           'compares every printed count);',
           '* *paper*: the figure as printed (InI: mean \u00b1 std over 5 runs; Res-SE-Net: '
           'accuracy, the others error, in %);',
           '* *measured*: the final-epoch test figure of runs of this package recorded with '
           '`python -m cmpese.reproduce --collect RUN_DIR` (mean \u00b1 std, n, over several '
           'runs). Empty until a run is recorded: a paper\'s number never goes there. A '
           '\u2020 marks a run whose schedule differs from the row\'s command.', '',
           'Print one row\'s commands, or run them and record the results:', '',
           '```bash', 'python -m cmpese.reproduce --list',
           'python -m cmpese.reproduce --table cmpe-2 --row "CMPE-SE-WRN-28-10 1x1"',
           'python -m cmpese.reproduce --table cmpe-2 --row "CMPE-SE-WRN-28-10 1x1" '
           '--column C10 --run',
           'python -m cmpese.reproduce --collect '
           'runs/reproduce/cmpe-2/cmpe_se_wrn28_10_1x1-cifar10',
           'python -m cmpese.reproduce --write-docs     # regenerates this page and '
           'docs/model_zoo.md', '```', '',
           'Commands name `--data-dir` only when given (`--data-dir DIR`); ImageNet commands '
           'read `data/imagenet/{train,val}.{rec,idx}` (im2rec output; `--data-dir DIR` '
           'changes `data`). Rows whose network cmpese does not build (the other papers\' '
           'comparisons) have no model and no command.', '']
    for key, t in TABLES.items():
        out += ['## %s: %s paper, Table %s' % (key, PAPER_NAMES[t.paper], t.number), '',
                t.title.replace('+-', '\u00b1') + '.', '']
        cols = ['row', 'model', 'preset', 'paper params', 'ours']
        for c in t.columns:
            cols += [c.name, 'measured']
        out.append('| ' + ' | '.join(cols) + ' |')
        out.append('|' + '---|' * len(cols))
        notes = []
        for r in table_rows(key):
            measured = measured_cells(r, results)
            ours = _millions(complexity(r.model)[0]) if r.model else ''
            label = r.label
            if r.note:
                notes.append(r.note)
                label += ' [%d]' % len(notes)
            cells = [label, '`%s`' % r.model if r.model else '', _presets_text(r),
                     (r.params + 'M') if r.params else '', ours]
            for c, v in zip(t.columns, r.values):
                cells += [v or '\u2013', measured.get(c.name, '')]
            out.append('| ' + ' | '.join(_cell(x) for x in cells) + ' |')
        if notes:
            out.append('')
            out += ['[%d] %s.' % (i + 1, n) for i, n in enumerate(notes)]
        commands = [(r, run) for r in table_rows(key) for run in row_runs(r)]
        if commands:
            out += ['', '<details><summary>commands (%d)</summary>' % len(commands), '',
                    '```bash']
            for r, run in commands:
                out.append('# %s, %s' % (r.label, ' / '.join(run.columns)))
                out.append(format_command(run.argv))
            out += ['```', '', '</details>']
        out.append('')
    return '\n'.join(out).rstrip() + '\n'


_DATASET_ORDER = ('cifar10', 'cifar100', 'svhn', 'digits', 'imagenet')


def model_zoo_markdown(names=None, complexity=None):
    """docs/model_zoo.md: every zoo name, the paper rows it appears in, parameters and FLOPs
    measured by the package beside the printed ones, and the default presets."""
    from ..model_zoo import FAMILIES, get_model_info, get_model_list
    from ..analysis.flops import format_flops
    complexity = complexity or model_complexity
    names = get_model_list() if names is None else names
    out = [GENERATED, '', '# Model zoo', '',
           'Every name of `cmpese.get_model_list()` (also `gluoncv.model_zoo.get_model(name)` '
           'after `import cmpese`). *params* and *FLOPs* are measured by this package on the '
           'model\'s symbol graph (`cmpese.tools.flops`: one multiply-add = one FLOP) at the '
           'family\'s default classes (10 for CIFAR, 1000 for ImageNet) and input size; '
           '*printed* are the papers\' figures for the same network, with the table that '
           'prints them (InI Table IV counts FLOPs at 100 classes: docs/flops.md compares them '
           'exactly; docs/parameters.md explains every printed count that differs). *rows* '
           'are the paper table rows the model reproduces (docs/reproduce.md); *presets* the '
           'default training schedule per dataset (`--preset`, cmpese.training.presets). '
           'Other depths, widths and G-filter sets are parsed by name (README).', '']
    by_family = collections.OrderedDict((f, []) for f in FAMILIES)
    for name in names:
        by_family.setdefault(get_model_info(name).family, []).append(name)
    titles = {'wrn': 'Wide ResNets (CIFAR)', 'preresnet': 'Pre-activation ResNets (CIFAR)',
              'resnet_cifar': 'Original ResNets (CIFAR) and Res-SE-Net',
              'allcnn': 'All-CNN (CIFAR)', 'pyramidnet': 'PyramidNet (CIFAR)',
              'resnet_imagenet': 'ResNets (ImageNet)'}
    for family, members in by_family.items():
        if not members:
            continue
        out += ['## %s' % titles.get(family, family), '',
                '| model | unit | papers | rows | params | printed | FLOPs | printed | presets |',
                '|---|---|---|---|---|---|---|---|---|']
        for name in members:
            info = get_model_info(name)
            params, flops = complexity(name)
            pp, pf = paper_figures(name)
            rows = ['%s "%s"' % (table_ref(r.table), r.label) for r in ROWS if r.model == name]
            presets = collections.OrderedDict()
            for dataset, preset in sorted(info.presets.items(), key=lambda kv: (
                    _DATASET_ORDER.index(kv[0]) if kv[0] in _DATASET_ORDER else 99, kv[0])):
                presets.setdefault(preset, []).append(dataset)
            cells = ['`%s`' % name, info.unit or '', ', '.join(
                PAPER_NAMES.get(p, p) for p in info.papers),
                '; '.join(rows), _millions(params),
                ', '.join('%sM (%s)' % (p, table_ref(t)) for p, t in pp),
                format_flops(flops), ', '.join('%s (%s)' % (f, table_ref(t)) for f, t in pf),
                '; '.join('%s: %s' % (p, ', '.join(d)) for p, d in presets.items())]
            out.append('| ' + ' | '.join(_cell(c) for c in cells) + ' |')
        out.append('')
    out += ['Papers:', '']
    out += ['* %s: %s, %s' % (PAPER_NAMES.get(k, k), v[0], v[1])
            for k, v in PAPERS.items()]
    out.append('')
    return '\n'.join(out).rstrip() + '\n'


def write_docs(docs_dir=None, results_path=None):
    """Write docs/reproduce.md and docs/model_zoo.md (atomically); returns their paths. A
    ``docs_dir`` that is not an existing directory is a one-line
    :class:`cmpese.errors.UserError`, before anything is computed."""
    from ..errors import UserError
    from ..training.checkpoint import atomic_write
    docs_dir = docs_dir or os.path.join(repo_root(), 'docs')
    if not os.path.isdir(docs_dir):
        raise UserError('--write-docs %s: %s; give an existing directory' % (
            docs_dir, 'is a file, not a directory' if os.path.exists(docs_dir) else
            'no such directory'))
    results = load_results(results_path)
    paths = []
    for name, text in (('reproduce.md', reproduce_markdown(results)),
                       ('model_zoo.md', model_zoo_markdown())):
        path = os.path.join(docs_dir, name)

        def write(tmp, text=text):
            with open(tmp, 'w') as f:
                f.write(text)
        try:
            atomic_write(path, write)
        except OSError as err:
            raise UserError('--write-docs %s: cannot write %s (%s)'
                            % (docs_dir, path, err.strerror or err))
        paths.append(path)
    return paths


def complexity_from_page(text):
    """``{model: (params, FLOPs or None)}`` read back from a generated docs/model_zoo.md or
    docs/reproduce.md (the figures as printed there: '36.88M', format_flops' '5.244G'), for
    checking a page without measuring every model again."""
    units = {'K': 1e3, 'M': 1e6, 'G': 1e9}
    out = {}
    header = None
    for line in text.splitlines():
        if not line.startswith('|'):
            header = None if not line.strip() else header
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if cells and cells[0] in ('model', 'row'):
            header = cells
            continue
        if header is None or set(cells[0]) <= set('-'):
            continue
        row = dict(zip(header, cells))
        name = (row.get('model') or '').strip('`')
        if not name:
            continue
        params = row.get('params') if 'FLOPs' in header else row.get('ours')
        flops = row.get('FLOPs')
        value = lambda t: float(t[:-1]) * units[t[-1]] if t and t[-1] in units else None
        out[name] = (value(params), value(flops) if flops is not None else None)
    return out
