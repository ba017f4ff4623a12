"""Model complexity: parameter counts.

    from cmpese.analysis.complexity import count_params, model_params
    count_params(net)                          # weights, biases, BN scales and shifts
    model_params('cmpe_se_wrn28_10_1x1')       # a zoo model at its classes and input size

The printed counts are those of cmpese/papers/rows.csv (:data:`cmpese.papers.PAPER_PARAMS`).
The command line (``python -m cmpese.tools.complexity``, ``cmpese-complexity``, ``--paper``
for every printed count beside ours) is :mod:`cmpese.cli.complexity`.
"""
import mxnet as mx
import numpy as np

__all__ = ['count_params', 'model_params', 'paper_table', 'format_paper_table', 'ini_paper_table',
           'format_ini_table']


def count_params(net, trainable_only=True, input_shape=(1, 3, 32, 32)):
    """Number of parameters of ``net``.

    Counts what the papers count: weights, biases and BN scales/shifts; BN running
    statistics (``grad_req='null'``) are left out unless ``trainable_only=False``.
    Parameters whose shapes are still deferred are inferred by one forward pass on zeros of
    ``input_shape``.
    """
    params = net.collect_params()
    if any(0 in p.shape for p in params.values() if p.shape is not None) or \
            any(p.shape is None for p in params.values()):
        if not all(p._data is not None or p._deferred_init for p in params.values()):
            net.initialize(mx.init.Xavier(), force_reinit=False)
        net(mx.nd.zeros(input_shape))
    return int(sum(np.prod(p.shape) for p in params.values()
                   if not trainable_only or p.grad_req != 'null'))


def paper_table():
    """Rows (name, printed figure, ours, relative difference, agrees, source, note) for every
    parameter count the papers print, plus the Res-SE-Net ratio statements."""
    from ..model_zoo import get_model
    from ..papers import DEVIATIONS, PAPER_PARAMS, RES_SE_NET_RATIOS, agrees
    rows = []
    for name, paper, source in PAPER_PARAMS:
        ours = count_params(get_model(name))
        rows.append((name, paper, ours, ours / (float(paper) * 1e6) - 1, agrees(ours, paper),
                     source, DEVIATIONS.get(name, '')))
    ratios = []
    for small, big, paper in RES_SE_NET_RATIOS:
        ours = 100.0 * (1 - count_params(get_model(small)) / count_params(get_model(big)))
        ratios.append((small, big, paper, ours))
    return rows, ratios


def _aggregation(net):
    """The aggregation reading(s) of the InI units in ``net`` ('concat', 'overlay')."""
    from ..units import InnerImagingUnit
    found = set()
    net.apply(lambda b: found.add(b.aggregate) if isinstance(b, InnerImagingUnit) else None)
    return '/'.join(sorted(found))


def ini_paper_table():
    """Rows (name, printed, concat count, overlay count, readings that agree, recorded
    reading, source, why neither agrees, the reading the zoo name builds) for the InI
    paper's Inner-Imaging rows."""
    from ..model_zoo import get_model
    from ..papers import INI_DEVIATIONS, INI_PARAMS, agrees
    rows = []
    for name, printed, source, recorded in INI_PARAMS:
        net = get_model(name)
        default = _aggregation(net)
        counts = {default: count_params(net)}
        for reading in ('concat', 'overlay'):
            if reading not in counts:
                counts[reading] = count_params(get_model(name, unit_kwargs={'aggregate': reading}))
        concat, overlay = counts['concat'], counts['overlay']
        fits = {('concat', 'overlay'): 'both', ('concat',): 'concat',
                ('overlay',): 'overlay', (): 'neither'}[tuple(
                    k for k, n in (('concat', concat), ('overlay', overlay)) if agrees(n, printed))]
        rows.append((name, printed, concat, overlay, fits, recorded, source,
                     INI_DEVIATIONS.get(name, ''), default))
    return rows


def format_ini_table(rows):
    out = ['| model | paper | concat (eq. 10-11) | overlay | zoo default | agrees with | '
           'printed in |', '|---|---|---|---|---|---|---|']
    for name, printed, concat, overlay, fits, _, source, why, default in rows:
        p = float(printed)
        out.append('| `%s` | %sM | %.3fM (%+.2f%%) | %.3fM (%+.2f%%) | %s | %s | %s |' % (
            name, printed, concat / 1e6, 100 * (concat / 1e6 / p - 1), overlay / 1e6,
            100 * (overlay / 1e6 / p - 1), default, fits + (': ' + why if why else ''),
            source))
    return '\n'.join(out)


def format_paper_table(rows, ratios):
    out = ['| model | paper | ours | difference | agrees | printed in |',
           '|---|---|---|---|---|---|']
    for name, paper, ours, diff, ok, source, note in rows:
        out.append('| `%s` | %sM | %s (%.3fM) | %+.2f%% | %s | %s |' % (
            name, paper, format(ours, ','), ours / 1e6, 100 * diff,
            'yes' if ok else ('no, see below' if note else 'NO'), source))
    out += ['', '| statement (Res-SE-Net Sec. 6) | paper | ours |', '|---|---|---|']
    for small, big, paper, ours in ratios:
        out.append('| `%s` has fewer parameters than `%s` by | %.2f%% | %.2f%% |'
                   % (small, big, paper, ours))
    return '\n'.join(out)


def model_params(name, classes=None, **kwargs):
    """Parameters of the zoo model ``name`` with its registry defaults (classes, input size;
    :func:`cmpese.model_zoo.get_model_info`) unless ``classes`` is given."""
    from ..model_zoo import get_model, get_model_info
    info = get_model_info(name)
    net = get_model(name, classes=classes or info.classes, **kwargs)
    return count_params(net, input_shape=(1, 3, info.input_size, info.input_size))
