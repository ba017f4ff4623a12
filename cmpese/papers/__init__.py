"""Every figure the papers print, from one data file: ``cmpese/papers/rows.csv``.

Each line of rows.csv is one printed row of one table, in printed order:

* ``paper``, ``table``: a key of :data:`PAPERS` and of :data:`TABLES` (the headers);
* ``label``: the row as the paper labels it; ``model``: the zoo name that builds the network
  (empty when cmpese does not build it);
* ``params``: the printed parameter count in millions, as printed (with its precision: the
  parameter check reads it); ``flops``: the printed FLOPs, a number and M or G (InI Table IV
  and SENet Table 2);
* one column per printed figure column (:data:`VALUE_FIELDS`, named by
  :func:`column_field`: 'cifar10', 'cifar100_mixup', 'imagenet_top5', ...): the figure as
  printed, '-' where the paper prints a dash, empty where the table has no such column;
* ``check``: 'params' on the one row whose printed count the parameter check compares with
  ours (docs/parameters.md, ``python -m cmpese.tools.complexity --paper``); for an InI model
  the aggregation reading that count agrees with instead (:data:`INI_READINGS`);
* ``note``: why a row differs or is not built; a row without a model and without a note is
  :data:`OTHER_NETWORK`.

What reads it: the reproduce bookkeeping (:mod:`cmpese.papers.reproduce`: commands, recorded
results, docs/reproduce.md and docs/model_zoo.md), the parameter check
(:mod:`cmpese.tools.complexity`), the FLOPs comparison (:mod:`cmpese.tools.flops`), and the
model zoo (which InI names exist; :attr:`ModelInfo.tables`). This module only reads the file
and imports nothing else of the package.
"""
import collections
import csv
import difflib
import os
import re

from .tables import (DEVIATIONS, INI_DEVIATIONS, INI_READINGS, OTHER_NETWORK, PAPER_NAMES,
                     PAPERS, PARAMS_PAPERS, RES_SE_NET_RATIOS, TABLES, VALUE_FIELDS, Column,
                     Paper, Table, column_field)

__all__ = ['PAPERS', 'PAPER_NAMES', 'TABLES', 'Paper', 'Table', 'Column', 'Row', 'ROWS',
           'VALUE_FIELDS', 'column_field', 'ROWS_PATH', 'read_rows', 'get_table', 'table_rows',
           'find_row', 'table_ref', 'model_rows', 'model_tables', 'paper_figures',
           'row_models', 'printed_number', 'printed_flops', 'agrees', 'TOLERANCE',
           'PAPER_PARAMS', 'INI_PARAMS', 'DEVIATIONS', 'INI_DEVIATIONS', 'RES_SE_NET_RATIOS',
           'INI_READINGS', 'OTHER_NETWORK']

ROWS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'rows.csv')

Row = collections.namedtuple('Row', 'table label model params values flops note check')
Row.__doc__ = """One printed row. ``model``: the zoo name, or None when cmpese does not build
the network; ``params``: the printed count in millions (a string as printed, or None);
``values``: one printed figure per column of the table (None where the paper prints '-');
``flops``: the printed FLOPs (InI Table IV, SENet Table 2) or None; ``note``; ``check``:
'params', an InI reading, or '' (see the module docstring)."""

_HEADER = ('paper', 'table', 'label', 'model', 'params', 'flops') + VALUE_FIELDS + (
    'check', 'note')
_NUMBER = re.compile(r'^\d+(\.\d+)?$')
_FIGURE = re.compile(r'^\d+(\.\d+)?( \+- \d+(\.\d+)?)?$')
_FLOPS = re.compile(r'^\d+(\.\d+)?[MG]$')


def read_rows(path=ROWS_PATH):
    """The rows of ``path`` (rows.csv) as :class:`Row` tuples, in file order. A malformed
    line raises ValueError naming the file, the line and what is wrong."""
    rows, checked, labels = [], {}, set()
    with open(path, newline='') as f:
        reader = csv.reader(f)
        header = tuple(next(reader, ()))
        if header != _HEADER:
            raise ValueError('%s: the header must be %s' % (path, ','.join(_HEADER)))
        for line, cells in enumerate(reader, 2):
            def bad(what):
                return ValueError('%s line %d: %s' % (path, line, what))
            if len(cells) != len(_HEADER):
                raise bad('%d cells, expected %d' % (len(cells), len(_HEADER)))
            cell = dict(zip(_HEADER, cells))
            table = TABLES.get(cell['table'])
            if table is None:
                raise bad('unknown table %r (tables.py: TABLES)' % cell['table'])
            if cell['paper'] != table.paper:
                raise bad('table %s is the %s paper\'s, not %r' % (table.key, table.paper,
                                                                  cell['paper']))
            if (table.key, cell['label']) in labels:
                raise bad('a second row %r in %s' % (cell['label'], table.key))
            labels.add((table.key, cell['label']))
            fields = [column_field(c) for c in table.columns]
            for name in VALUE_FIELDS:
                value = cell[name]
                if name not in fields and value:
                    raise bad('%s has no %s column' % (table.key, name))
                if name in fields and not (value == '-' or _FIGURE.match(value)):
                    raise bad('%s: %r is not a figure (or "-")' % (name, value))
            if cell['params'] and not _NUMBER.match(cell['params']):
                raise bad('params %r is not a number of millions' % cell['params'])
            if cell['flops'] and not _FLOPS.match(cell['flops']):
                raise bad('flops %r is not a number followed by M or G' % cell['flops'])
            check, model = cell['check'], cell['model'] or None
            if check:
                if check not in ('params',) + INI_READINGS:
                    raise bad('check %r: use params or one of %s' % (check,
                                                                    ', '.join(INI_READINGS)))
                if not (model and cell['params'] and table.paper in PARAMS_PAPERS):
                    raise bad('check needs a model and a printed count in a table of %s'
                              % ' or '.join(PARAMS_PAPERS))
                if model in checked:
                    raise bad('%s is checked on line %d already' % (model, checked[model]))
                checked[model] = line
            values = tuple(None if cell[n] == '-' else cell[n] for n in fields)
            note = cell['note'] or ('' if model else OTHER_NETWORK)
            rows.append(Row(table.key, cell['label'], model, cell['params'] or None, values,
                            cell['flops'] or None, note, check))
    unchecked = sorted({r.model for r in rows if r.model and r.params and
                        TABLES[r.table].paper in PARAMS_PAPERS} - set(checked))
    if unchecked:
        raise ValueError('%s: no row of %s has check set (each model with a printed count '
                         'has one)' % (path, ', '.join(unchecked)))
    return tuple(rows)


ROWS = read_rows()


def get_table(key):
    """The :class:`Table` ``key``; KeyError with the closest keys."""
    if key not in TABLES:
        close = difflib.get_close_matches(str(key), list(TABLES), n=3, cutoff=0.3)
        raise KeyError('unknown table %r.%s Tables: %s' % (
            key, ' Did you mean %s?' % ', '.join(close) if close else '', ', '.join(TABLES)))
    return TABLES[key]


def table_rows(key=None):
    """The rows of table ``key`` (every row when None), in printed order."""
    if key is not None:
        get_table(key)
    return [r for r in ROWS if key is None or r.table == key]


def _norm(text):
    text = str(text).lower().replace('\u00d7', 'x').replace('pair-view', '').replace('(ours)', '')
    return re.sub(r'[^a-z0-9*+]', '', text)


def find_row(table, row):
    """The row of ``table`` whose label (or zoo model name) is ``row``, compared without case,
    spaces, dashes or underscores ("CMPE-SE-WRN-28-10 1x1", "cmpe_se_wrn28_10_1x1")."""
    rows = table_rows(table)
    key = _norm(row)
    found = [r for r in rows if _norm(r.label) == key]
    if not found:
        found = [r for r in rows if r.model and _norm(r.model) == key]
    if len(found) == 1:
        return found[0]
    labels = [r.label for r in rows]
    close = difflib.get_close_matches(row, labels, n=3, cutoff=0.4)
    raise KeyError('table %s has no row %r.%s Its rows: %s' % (
        table, row, ' Did you mean %s?' % ' or '.join(repr(c) for c in close) if close else '',
        '; '.join(labels)))


def table_ref(key, short=False):
    """'CMPE-SE Table 2' (``short``: 'CMPE Table 2') for table key 'cmpe-2'."""
    t = TABLES[key]
    paper = PAPERS[t.paper]
    return '%s Table %s' % (paper.short if short else paper.name, t.number)


def model_rows(name):
    """Every row that names zoo model ``name``, in printed order."""
    return [r for r in ROWS if r.model == name]


def model_tables(name):
    """The tables printing a figure for zoo model ``name``, as 'CMPE Table 2', in the order
    of :data:`TABLES` (the :attr:`cmpese.model_zoo.ModelInfo.tables` of the name)."""
    out = []
    for r in model_rows(name):
        ref = table_ref(r.table, short=True)
        if ref not in out:
            out.append(ref)
    return tuple(out)


def paper_figures(name):
    """(printed params, printed FLOPs) of zoo model ``name``: lists of (figure, table key),
    one per distinct figure, in printed order."""
    params, flops = [], []
    for r in model_rows(name):
        if r.params and not any(float(p) == float(r.params) for p, _ in params):
            params.append((r.params, r.table))
        if r.flops and not any(f == r.flops for f, _ in flops):
            flops.append((r.flops, r.table))
    return params, flops


def row_models(prefix=''):
    """The zoo names the rows name (starting with ``prefix``), once each, in printed order:
    the zoo registers these InI names because a paper prints them."""
    out = []
    for r in ROWS:
        if r.model and r.model.startswith(prefix) and r.model not in out:
            out.append(r.model)
    return out


def printed_number(text):
    """A printed count as a number: '12.5M' -> 12.5e6, '2.25G' -> 2.25e9."""
    units = {'K': 1e3, 'M': 1e6, 'G': 1e9}
    return float(text[:-1]) * units[text[-1]]


def printed_flops(table, labels):
    """{row label: printed FLOPs as a number} for the rows of ``table`` labelled ``labels``
    (in printed order); KeyError for a label the table lacks or a row without FLOPs."""
    rows = {r.label: r for r in table_rows(table)}
    missing = [l for l in labels if l not in rows or not rows[l].flops]
    if missing:
        raise KeyError('%s prints no FLOPs for %s' % (table, ', '.join(missing)))
    return collections.OrderedDict((r.label, printed_number(r.flops)) for r in table_rows(table)
                                   if r.label in labels)


# ---------------------------------------------------------------------------------------------
# The parameter check (docs/parameters.md)
# ---------------------------------------------------------------------------------------------
TOLERANCE = 0.01


def agrees(ours, printed):
    """Whether a count of ``ours`` parameters agrees with a figure printed as ``printed`` M:
    within 1% of it, or rounding to it at the precision it is printed with ("1.7M" covers
    1.65M-1.75M: He et al.'s ResNet-110, 1.73M, is printed so in every paper)."""
    paper = float(printed) * 1e6
    decimals = len(printed.split('.')[1]) if '.' in printed else 0
    half_unit = 0.5 * 10 ** (6 - decimals)
    return abs(ours - paper) <= max(TOLERANCE * paper, half_unit)


def _join_tables(tables):
    """'CMPE Table 1, InI Tables II and IV' for Table tuples in order."""
    groups = collections.OrderedDict()
    for t in tables:
        groups.setdefault(t.paper, []).append(t.number)
    parts = []
    for paper, numbers in groups.items():
        if len(numbers) == 1:
            parts.append('%s Table %s' % (PAPERS[paper].short, numbers[0]))
        else:
            parts.append('%s Tables %s and %s' % (PAPERS[paper].short, ', '.join(numbers[:-1]),
                                                  numbers[-1]))
    return ', '.join(parts)


def _params_source(name, printed):
    """Where the count ``printed`` of ``name`` is printed: the tables printing the same count
    ('CMPE Table 1, InI Tables II and IV'), then, in brackets, those printing it at another
    precision ('<count>M in Table 2')."""
    rows = [r for r in model_rows(name) if r.params and TABLES[r.table].paper in PARAMS_PAPERS]
    same = [TABLES[r.table] for r in rows if float(r.params) == float(printed)]
    text = _join_tables(same)
    others = ['%sM in %s' % (r.params, ('Table %s' % TABLES[r.table].number)
                             if TABLES[r.table].paper == same[0].paper
                             else table_ref(r.table, short=True))
              for r in rows if float(r.params) != float(printed)]
    return text + (' (%s)' % '; '.join(others) if others else '')


# (zoo name, the printed count in M, where it is printed) for every model but the InI ones,
# and (zoo name, printed, where, the aggregation reading it agrees with) for the InI ones:
# the rows.csv rows marked ``check``.
PAPER_PARAMS = [(r.model, r.params, _params_source(r.model, r.params))
                for r in ROWS if r.check == 'params']
INI_PARAMS = [(r.model, r.params, _params_source(r.model, r.params), r.check)
              for r in ROWS if r.check in INI_READINGS]
