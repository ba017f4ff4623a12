"""Every figure of the package: excitations across depth, inner-imaged maps, class-wise
excitations, Grad-CAM, training curves (one plotter for a run's training-curve.png and for
``python -m cmpese.visualize curves``), the unit designs side by side.

Every plot is a PNG written with matplotlib's Agg backend (no display needed), atomically
(:func:`cmpese.training.checkpoint.atomic_write`): a killed writer leaves the old file.
"""
import collections
import csv
import os

import numpy as np

__all__ = ['plot_excitation_grid', 'plot_inner_maps', 'plot_class_excitations',
           'plot_grad_cam', 'plot_training_curves', 'plot_unit_designs', 'read_metrics',
           'check_png']

# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------
def _figure(width, height):
    import matplotlib
    matplotlib.use('Agg', force=False)
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, dpi=100):
    from ..training.checkpoint import atomic_write
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format='png', dpi=dpi))
    return path


def plot_excitation_grid(excitations, path, title='', cmap='viridis'):
    """Every unit's excitation across depth (the CMPE-SE paper's Fig. 5 strips, for all
    units): one row per unit, channels along x, colour = excitation in [0, 1].
    ``excitations``: ordered {label: (C,) vector}."""
    labels = list(excitations)
    width = max(len(v) for v in excitations.values())
    grid = np.full((len(labels), width), np.nan)
    for i, v in enumerate(excitations.values()):
        grid[i, :len(v)] = v
        v = np.asarray(v, dtype=np.float64)
        if v.size > 1 and np.ptp(v) < 1e-6:   # the same gate on every channel
            labels[i] = '%s (dead unit: constant gate %.2f)' % (labels[i], float(v[0]))
    fig = _figure(min(14, 4 + width / 12.0), 1.2 + 0.28 * len(labels))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.ma.masked_invalid(grid), aspect='auto', cmap=cmap, vmin=0, vmax=1,
                   interpolation='nearest')
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel('channel')
    ax.set_title(title or 'excitation of every unit (rows: depth)', fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label='excitation')
    fig.tight_layout()
    return _save(fig, path)


def _scaled(m, roles):
    """``m`` with the rows of each role (identity / residual) divided by their largest
    magnitude, so that both flows are visible whatever their scales (in [-1, 1])."""
    m = np.asarray(m, np.float64).copy()
    groups = collections.defaultdict(list)
    for r in range(m.shape[0]):
        groups[roles[r] if roles else 'all'].append(r)
    for rows in groups.values():
        top = np.abs(m[rows]).max()
        if top > 0:
            m[rows] /= top
    return m


def plot_inner_maps(panels, path, title='', width=None):
    """Inner-imaged maps with the excitation beneath (the CMPE-SE paper's Fig. 5).

    ``panels``: list of dicts with ``label``, ``map`` (rows, cols), ``roles`` (row names or
    None), ``excitation`` (C,). Pair-view maps (2 x C) are aligned with the excitation
    channel by channel; InI folds (rows x cols) show the excitation folded like the map's
    residual rows. ``width`` shows only the first ``width`` columns (Fig. 5 shows 40).
    """
    import matplotlib.gridspec as gridspec
    n = len(panels)
    fig = _figure(11, 2.3 * n + 0.6)
    outer = gridspec.GridSpec(n, 1, figure=fig, hspace=0.7)
    for i, p in enumerate(panels):
        m = np.asarray(p['map'])
        exc = np.asarray(p['excitation'])
        cols = m.shape[1] if width is None else min(width, m.shape[1])
        if m.shape[1] == exc.size:          # pair-view / simple: one column per channel
            e = exc[None, :]
        else:                               # folded: the excitation in the residual fold
            per_row = m.shape[1]
            e = np.full((int(np.ceil(exc.size / float(per_row))), per_row), np.nan)
            e.flat[:exc.size] = exc
        inner = gridspec.GridSpecFromSubplotSpec(
            2, 1, subplot_spec=outer[i], height_ratios=[m.shape[0], max(1, e.shape[0])],
            hspace=0.25)
        ax = fig.add_subplot(inner[0])
        roles = p.get('roles')
        im = ax.imshow(_scaled(m, roles)[:, :cols], aspect='auto', cmap='RdBu_r', vmin=-1,
                       vmax=1, interpolation='nearest')
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01).set_label('scaled value', fontsize=7)
        ax.set_yticks(range(m.shape[0]))
        ax.set_yticklabels(roles if roles else ['row %d' % r for r in range(m.shape[0])],
                           fontsize=7 if m.shape[0] > 4 else 8)
        ax.set_xticks([])
        ax.set_title('%s: inner-imaged map %d x %d%s' % (
            p['label'], m.shape[0], m.shape[1],
            '' if cols == m.shape[1] else ' (first %d columns)' % cols), fontsize=9, loc='left')
        ax2 = fig.add_subplot(inner[1])
        im2 = ax2.imshow(np.ma.masked_invalid(e[:, :cols]), aspect='auto', cmap='Oranges',
                         vmin=0, vmax=1, interpolation='nearest')
        fig.colorbar(im2, ax=ax2, fraction=0.02, pad=0.01).set_label('excitation', fontsize=7)
        ax2.set_yticks([0] if e.shape[0] == 1 else [])
        ax2.set_yticklabels(['excitation'] if e.shape[0] == 1 else [], fontsize=8)
        if e.shape[0] > 1:
            ax2.set_ylabel('excitation', fontsize=7)
        ax2.set_xlabel('channel' if m.shape[1] == exc.size else 'column', fontsize=8)
    fig.suptitle((title + '\n' if title else '') + 'maps: blue < 0 < red, identity and residual '
                 'rows each scaled to their own range; excitation: white 0 to dark orange 1',
                 fontsize=9)
    fig.subplots_adjust(left=0.1, right=0.98, top=1 - 0.75 / (2.3 * n + 0.6), bottom=0.06)
    return _save(fig, path)


def plot_class_excitations(per_block, class_names, path, title='', max_channels=50):
    """The SENet paper's Sec. 7.2 analysis (its Fig. 7): at each chosen block, the mean
    excitation per channel for every class (one line each) and over all images (black).

    ``per_block``: ordered {label: (classes, means (K, C), overall (C,))}; channels are
    sampled uniformly to at most ``max_channels`` (the paper plots fifty).
    """
    import matplotlib.cm as cm
    n = len(per_block)
    cols = min(n, 2)
    rows = int(np.ceil(n / float(cols)))
    fig = _figure(6.0 * cols, 3.0 * rows + 0.5)
    for i, (label, (classes, means, overall)) in enumerate(per_block.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        c = overall.size
        pick = np.unique(np.linspace(0, c - 1, min(max_channels, c)).round().astype(int))
        colours = cm.get_cmap('tab10' if len(classes) <= 10 else 'tab20')
        for k, cls in enumerate(classes):
            name = class_names[cls] if class_names and cls < len(class_names) else str(cls)
            ax.plot(range(len(pick)), means[k, pick], '-', lw=1.0, color=colours(k % 20),
                    label=name)
        ax.plot(range(len(pick)), overall[pick], 'k--', lw=2.0, label='all')
        ax.set_title(label, fontsize=9)
        ax.set_ylim(0, 1.02)
        ticks = np.unique(np.linspace(0, len(pick) - 1, min(6, len(pick))).round().astype(int))
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(pick[t]) for t in ticks], fontsize=7)
        ax.set_xlabel('channel (%d of %d, uniformly sampled)' % (len(pick), c), fontsize=8)
        ax.set_ylabel('excitation', fontsize=8)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=6, ncol=2, loc='lower left')
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _upsample(cam, size):
    """(h, w) -> (size, size), bilinear (MXNet's BilinearResize2D)."""
    import mxnet as mx
    x = mx.nd.array(cam[None, None].astype(np.float32))
    return mx.nd.contrib.BilinearResize2D(x, height=size, width=size).asnumpy()[0, 0]


def plot_grad_cam(images, maps, path, titles=None, title='', columns=6, alpha=0.5):
    """Grad-CAM heat maps (normalized per image) over ``images`` (uint8 NHWC)."""
    n = len(images)
    cols = min(columns, n)
    rows = int(np.ceil(n / float(cols)))
    fig = _figure(2.0 * cols, 2.2 * rows + (0.4 if title else 0))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        img = images[i]
        cam = _upsample(maps[i], img.shape[0])
        top = cam.max()
        cam = cam / top if top > 0 else cam
        ax.imshow(img, interpolation='bilinear')
        im = ax.imshow(cam, cmap='jet', alpha=alpha, vmin=0, vmax=1, interpolation='bilinear')
        ax.set_xticks([])
        ax.set_yticks([])
        if titles:
            ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.colorbar(im, ax=fig.axes, fraction=0.02, pad=0.01).set_label(
        'Grad-CAM (per image, 0 to its maximum)', fontsize=7)
    return _save(fig, path)


def read_metrics(path):
    """Rows of a trainer's metrics.csv as dicts of floats (empty cells None). A file that is
    not one (binary, no ``epoch`` column, a line cut short, a cell that is not a number) is a
    :class:`cmpese.errors.UserError` naming the file and the line."""
    from ..errors import UserError
    fix = ('a trainer writes it after every epoch; restore the file or run the trainer again '
           'with --resume')
    rows = []
    try:
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            if 'epoch' not in (reader.fieldnames or []):
                raise UserError('%s is not a trainer\'s metrics.csv (no epoch column); %s'
                                % (path, fix))
            for r in reader:
                line = reader.line_num
                if None in r or None in r.values():
                    raise UserError('%s line %d has %s cells than its header: the file is '
                                    'damaged; %s' % (path, line, 'more' if None in r else
                                                     'fewer', fix))
                try:
                    rows.append({k: (float(v) if v != '' and k != 'mixup' else
                                     (v == 'True' if k == 'mixup' else None))
                                 for k, v in r.items()})
                except ValueError:
                    bad = next(k for k, v in r.items() if k != 'mixup' and v != '' and
                               not _is_number(v))
                    raise UserError('%s line %d: %s is %r, not a number: the file is damaged; '
                                    '%s' % (path, line, bad, r[bad][:20], fix))
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError('%s is not a text CSV file (%s); %s' % (path, str(err)[:80], fix))
    return rows


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def plot_training_curves(runs, path, title=''):
    """Loss and top-1 error against epoch, test solid and train dashed (the CMPE-SE paper's
    Fig. 4), for one run or several on one plot (a colour per run). The one curve plotter:
    a trainer draws its ``training-curve.png`` with it after every epoch
    (:func:`cmpese.training.report.plot_curves`), ``python -m cmpese.visualize curves``
    several runs.

    ``runs``: list of ``(label, rows)``; ``rows`` as :func:`read_metrics` returns them, or a
    run's history (``epoch``, ``train_loss``, ``test_loss``, ``train_error``, ``test_error``;
    missing values are left out). With one run and no label the legend names test and train.
    """
    import matplotlib.cm as cm
    fig = _figure(11, 4)
    axes = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    colours = cm.get_cmap('tab10')
    for i, (label, rows) in enumerate(runs):
        colour = colours(i % 10)
        for ax, key, scale in zip(axes, ('loss', 'error'), (1.0, 100.0)):
            for split, style in (('test', '-'), ('train', '--')):
                points = [(r['epoch'], r.get(split + '_' + key)) for r in rows
                          if r.get(split + '_' + key) is not None]
                if not points:
                    continue
                name = (label if split == 'test' else None) if label else split
                ax.plot([e for e, _ in points], [scale * v for _, v in points], style,
                        color=colour, label=name)
    axes[0].set_ylabel('loss: test solid, train dashed')
    axes[1].set_ylabel('top-1 error (%): test solid, train dashed')
    for ax in axes:
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_unit_designs(designs, path, title=''):
    """The three unit designs side by side, drawn from trained networks: for each (name,
    probe-derived panel) the signals the unit looks at (SE: the squeezed residual; CMPE-SE
    pair-view: residual over identity; InI: the T_alt fold) and, beneath, the excitation it
    produces. ``designs``: list of dicts with ``name``, ``label``, ``map`` (rows, cols),
    ``roles``, ``excitation`` (C,), ``caption``."""
    import matplotlib.gridspec as gridspec
    n = len(designs)
    fig = _figure(4.6 * n, 4.6)
    outer = gridspec.GridSpec(1, n, figure=fig, wspace=0.35)
    for i, d in enumerate(designs):
        m = np.asarray(d['map'])
        exc = np.asarray(d['excitation'])
        if m.shape[1] == exc.size:
            e = exc[None, :]
        else:
            e = np.full((int(np.ceil(exc.size / float(m.shape[1]))), m.shape[1]), np.nan)
            e.flat[:exc.size] = exc
        inner = gridspec.GridSpecFromSubplotSpec(
            2, 1, subplot_spec=outer[i], height_ratios=[max(m.shape[0], 2), max(e.shape[0], 2)],
            hspace=0.45)
        ax = fig.add_subplot(inner[0])
        roles = d.get('roles')
        im = ax.imshow(_scaled(m, roles), aspect='auto', cmap='RdBu_r', vmin=-1, vmax=1,
                       interpolation='nearest')
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02).set_label('scaled value', fontsize=7)
        ax.set_yticks(range(m.shape[0]))
        ax.set_yticklabels(roles if roles else ['row %d' % r for r in range(m.shape[0])],
                           fontsize=7)
        ax.set_xticks([])
        ax.set_title('%s\n%s, %s (%d x %d)' % (d['name'], d['label'], d['caption'],
                                                 m.shape[0], m.shape[1]), fontsize=9)
        ax2 = fig.add_subplot(inner[1])
        im2 = ax2.imshow(np.ma.masked_invalid(e), aspect='auto', cmap='Oranges', vmin=0,
                         vmax=1, interpolation='nearest')
        fig.colorbar(im2, ax=ax2, fraction=0.04, pad=0.02).set_label('excitation', fontsize=7)
        ax2.set_yticks([])
        ax2.set_xticks([])
        ax2.set_title('excitation (%d channels%s)' % (
            exc.size, '' if e.shape[0] == 1 else ', folded like the map'), fontsize=8)
    fig.suptitle((title + '\n' if title else '') + 'signals: blue < 0 < red (identity and '
                 'residual rows each scaled to their own range); excitation: white 0 to dark '
                 'orange 1', fontsize=9)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.78, bottom=0.04)
    return _save(fig, path)


def check_png(path):
    """(width, height, distinct colours, pixel std) of a PNG, for tests and a quick look."""
    from PIL import Image
    img = np.asarray(Image.open(path).convert('RGB'))
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    return img.shape[1], img.shape[0], colours, float(img.std())
