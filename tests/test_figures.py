"""What a reader of the package's figures relies on (issue 19, item 7), read off the matplotlib
figures themselves rather than off the PNG pixels:

* every image whose colour encodes a value has a colorbar, with the quantity named;
* one word for one thing: the gate's output is the "excitation" everywhere, never
  "activation";
* the channel axis of the class-wise plot is numbered by channel index, not by the position
  of the sampled channel;
* ``visualize curves`` labels each run by its run directory, so that two runs of one model
  are told apart;
* a unit whose gate is the same on every channel is marked as dead, with the constant.
"""
import os

import numpy as np
import pytest

from cmpese.analysis import plots
from cmpese.errors import run as run_cli
from cmpese.cli import visualize as cli_visualize


@pytest.fixture
def figures(monkeypatch):
    """The figures the plotters would save, instead of PNGs."""
    saved = []

    def keep(fig, path, dpi=100):
        saved.append(fig)
        return path
    monkeypatch.setattr(plots, '_save', keep)
    return saved


def _texts(fig):
    """Every string a reader sees on ``fig``: titles, axis labels, tick labels, legends,
    colorbar labels, the suptitle."""
    out = []
    for t in fig.findobj(lambda a: hasattr(a, 'get_text')):
        s = t.get_text()
        if s:
            out.append(s)
    return out


def _images(fig):
    return [im for ax in fig.axes for im in ax.get_images()]


def _colorbar_labels(fig):
    """The labels of the colorbars of ``fig``, by the image each belongs to."""
    found = {}
    for im in _images(fig):
        if im.colorbar is not None:
            found[id(im)] = im.colorbar.ax.get_ylabel()
    return found


def _excitations(rng, n=3, c=24):
    return {'stage%d block1' % (i + 1): rng.uniform(size=c) for i in range(n)}


def test_excitation_grid_has_a_named_colorbar_and_marks_a_dead_unit(figures):
    rng = np.random.RandomState(0)
    exc = _excitations(rng)
    exc['stage3 block2'] = np.full(24, 0.5)            # a gate that no longer selects
    plots.plot_excitation_grid(exc, 'unused.png')
    fig, = figures
    bars = _colorbar_labels(fig)
    assert len(bars) == len(_images(fig)) == 1
    assert list(bars.values()) == ['excitation']
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows[:3] == ['stage1 block1', 'stage2 block1', 'stage3 block1']
    assert rows[3] == 'stage3 block2 (dead unit: constant gate 0.50)'
    assert ax.get_xlabel() == 'channel'


def test_a_live_unit_is_not_marked_dead(figures):
    exc = {'a': np.linspace(0.2, 0.21, 16)}     # nearly flat, but it does vary
    plots.plot_excitation_grid(exc, 'unused.png')
    assert 'dead' not in ' '.join(_texts(figures[0]))


@pytest.mark.parametrize('folded', [False, True])
def test_inner_maps_colour_every_image_with_a_colorbar(figures, folded):
    rng = np.random.RandomState(1)
    c = 16
    if folded:     # an InI fold: identity rows over residual rows, 4 columns
        panel = dict(label='stage1 block1', map=rng.normal(size=(8, 4)),
                     roles=['identity'] * 4 + ['residual'] * 4, excitation=rng.uniform(size=c))
    else:          # a pair view: one column per channel
        panel = dict(label='stage1 block1', map=rng.normal(size=(2, c)),
                     roles=['residual', 'identity'], excitation=rng.uniform(size=c))
    plots.plot_inner_maps([panel, dict(panel, label='stage2 block1')], 'unused.png')
    fig, = figures
    images = _images(fig)
    bars = _colorbar_labels(fig)
    assert len(images) == 4 and len(bars) == 4            # map + excitation, per panel
    assert sorted(bars.values()) == ['excitation', 'excitation', 'scaled value',
                                     'scaled value']
    assert not [t for t in _texts(fig) if 'activation' in t.lower()]
    xlabels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert xlabels == ['column' if folded else 'channel'] * 2


def test_unit_designs_name_the_excitation_and_its_colorbar(figures):
    rng = np.random.RandomState(2)
    designs = [dict(name=n, label='stage2 block1', caption='c', map=rng.normal(size=(2, 8)),
                    roles=['residual', 'identity'], excitation=rng.uniform(size=8))
               for n in ('SE', 'CMPE-SE 1x1', 'InI')]
    plots.plot_unit_designs(designs, 'unused.png')
    fig, = figures
    assert len(_colorbar_labels(fig)) == len(_images(fig)) == 6
    assert not [t for t in _texts(fig) if 'activation' in t.lower()]
    assert sum(t.startswith('excitation (8 channels') for t in _texts(fig)) == 3


def test_class_excitations_number_the_sampled_channels_by_channel(figures):
    rng = np.random.RandomState(3)
    c = 200                                    # more than the 50 the paper plots
    means = rng.uniform(size=(3, c))
    plots.plot_class_excitations({'stage3 block1': ([0, 1, 2], means, means.mean(0))},
                                 ['zero', 'one', 'two'], 'unused.png')
    fig, = figures
    ax = fig.axes[0]
    pick = np.unique(np.linspace(0, c - 1, 50).round().astype(int))
    ticks = [int(t) for t in ax.get_xticks()]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    # each tick sits at a plotted position and reads the channel plotted there
    assert labels == [str(pick[t]) for t in ticks]
    assert labels[-1] == str(c - 1) and labels[0] == '0'
    assert ax.get_xlabel() == 'channel (50 of 200, uniformly sampled)'
    assert ax.get_ylabel() == 'excitation'
    # the black dashed line is the mean over all images, at the sampled channels
    line = [l for l in ax.get_lines() if l.get_label() == 'all'][0]
    np.testing.assert_allclose(line.get_ydata(), means.mean(0)[pick])
    assert [l.get_label() for l in ax.get_lines()] == ['zero', 'one', 'two', 'all']


def test_grad_cam_has_a_colorbar(figures):
    rng = np.random.RandomState(4)
    images = rng.randint(0, 256, size=(3, 32, 32, 3)).astype(np.uint8)
    maps = rng.uniform(size=(3, 8, 8)).astype(np.float32)
    plots.plot_grad_cam(images, maps, 'unused.png', titles=['a', 'b', 'c'])
    fig, = figures
    heat = [im for im in _images(fig) if im.get_cmap().name == 'jet']
    assert len(heat) == 3
    bars = [im.colorbar for im in heat if im.colorbar is not None]
    assert len(bars) == 1          # one shared bar: every map is on the same 0-1 scale
    assert bars[0].ax.get_ylabel() == 'Grad-CAM (per image, 0 to its maximum)'
    assert all(im.get_clim() == (0, 1) for im in heat)


def _metrics(folder, errors):
    os.makedirs(folder)
    with open(os.path.join(folder, 'metrics.csv'), 'w') as f:
        f.write('epoch,lr,train_loss,train_error,test_loss,test_error,seconds,mixup\n')
        for e, err in enumerate(errors, 1):
            f.write('%d,0.1,1.0,%.3f,1.1,%.3f,2.0,False\n' % (e, err + 0.01, err))


def test_curves_label_runs_by_their_directory(tmp_path, figures, capsys, monkeypatch):
    """Two seeds of one model: the default legend tells them apart by run directory."""
    monkeypatch.chdir(tmp_path)
    _metrics('runs/se_preresnet20-s0', [0.5, 0.3])
    _metrics('runs/se_preresnet20-s1', [0.6, 0.4])
    assert run_cli(cli_visualize.main, ['curves', 'runs/se_preresnet20-s0',
                                        'runs/se_preresnet20-s1', '--out', 'c.png']) == 0
    fig, = figures
    for ax in fig.axes:
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == [os.path.join('runs', 'se_preresnet20-s0'),
                          os.path.join('runs', 'se_preresnet20-s1')]
    error_ax = fig.axes[1]
    solid = [l for l in error_ax.get_lines() if l.get_linestyle() == '-']
    np.testing.assert_allclose(solid[0].get_ydata(), [50.0, 30.0])
    np.testing.assert_allclose(solid[1].get_ydata(), [60.0, 40.0])
    # --labels overrides, one per run
    figures.clear()
    assert run_cli(cli_visualize.main, ['curves', 'runs/se_preresnet20-s0',
                                        'runs/se_preresnet20-s1', '--labels', 'a,b',
                                        '--out', 'c.png']) == 0
    assert [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()] == ['a', 'b']
