"""Look inside a trained model: excitations, inner-imaged maps, class-wise excitations (SENet
Sec. 7.2), Grad-CAM, training curves. Every command writes one PNG.

    python -m cmpese.visualize excitations --run RUN_DIR --data digits --out exc.png
    python -m cmpese.visualize maps --run RUN_DIR --data digits --units 0,4,8 --out maps.png
    python -m cmpese.visualize classes --run RUN_DIR --data digits:test --count 359 --out cls.png
    python -m cmpese.visualize gradcam --model se_resnet50 --params P --images FOLDER --out cam.png
    python -m cmpese.visualize curves RUN_DIR [RUN_DIR ...] --out curves.png
    python -m cmpese.visualize designs --se RUN --cmpe RUN --ini RUN --data digits --out d.png
    python -m cmpese.visualize units --symbol export/NAME-symbol.json     # what was found

A model is ``--run RUN_DIR`` (a trainer's --save-dir), ``--model NAME --params FILE``, or
``--symbol FILE`` of an exported model; images are ``--data DATASET[:SPLIT]``, ``--images
FOLDER`` or ``--rec FILE``. How the internals of the hybridized graph are read:
docs/visualize.md; the library is :mod:`cmpese.analysis` (probe, images, plots).
"""
import json
import os
import sys

from ..data.datasets import DATASETS
from ..errors import ArgumentParser, UserError, check_output_path
from ..training.cli import float_list

__all__ = ['build_parser', 'main', 'console', 'PROG', 'COMMANDS']

PROG = 'python -m cmpese.visualize'


def _model_args(p):
    g = p.add_argument_group('model (one of --run, --model + --params, --symbol)')
    g.add_argument('--run', dest='run_dir', metavar='RUN_DIR',
                   help='a train_cifar.py / train_imagenet.py --save-dir (config.json, '
                        'best.params)')
    g.add_argument('--model', help='zoo name (with --params; with --symbol it only names the '
                                   'units\' layout)')
    g.add_argument('--params', help='parameter file (best.params, epoch-NNNN.params, or the '
                                    'export\'s -0000.params)')
    g.add_argument('--symbol', help='exported <prefix>-symbol.json')
    g.add_argument('--classes', type=int, help='output classes (default: the run\'s, else the '
                                               'model\'s default)')
    g.add_argument('--model-args', default=None, help='JSON keyword arguments of the builder')


def _image_args(p, count):
    g = p.add_argument_group('images (one of --data, --images, --rec)')
    g.add_argument('--data', help='a dataset split: %s, optionally :train or :test (default '
                                  'test), e.g. fashion-mnist:test' % ', '.join(DATASETS))
    g.add_argument('--data-dir', help='directory of the dataset files (as for train_cifar.py)')
    g.add_argument('--images', help='a folder of images (class sub-folders give the labels)')
    g.add_argument('--rec', help='an im2rec RecordIO file (its .idx beside it, or --rec-idx)')
    g.add_argument('--rec-idx')
    g.add_argument('--count', type=int, default=count, help='images used (%d)' % count)
    g.add_argument('--norm', help='normalize as this dataset\'s training split (default: the '
                                  'run\'s dataset; ImageNet statistics for 224-pixel models)')
    g.add_argument('--mean', type=float_list(3, 'numbers (R,G,B in pixel units)'),
                   help='R,G,B mean in pixel units (overrides --norm)')
    g.add_argument('--std', type=float_list(3, 'numbers (R,G,B in pixel units)', positive=True),
                   help='R,G,B standard deviation in pixel units')
    g.add_argument('--seed', type=int, default=0, help='which images of a split (0)')


def build_parser(prog=PROG):
    parser = ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True

    p = sub.add_parser('units', help='list the units found in the graph and their internal '
                                     'outputs')
    _model_args(p)

    p = sub.add_parser('excitations', help='the excitation of every unit, across depth '
                                           '(CMPE-SE Fig. 5)')
    _model_args(p)
    _image_args(p, 64)
    p.add_argument('--image-index', type=int,
                   help='one image\'s excitations (default: the mean over the images)')
    p.add_argument('--out', required=True, help='PNG to write')

    p = sub.add_parser('maps', help='inner-imaged maps (identity / residual rows) with the '
                                    'excitation beneath (CMPE-SE Fig. 5)')
    _model_args(p)
    _image_args(p, 1)
    p.add_argument('--units', help='comma-separated unit indices or labels (default: four '
                                   'spread over the depth)')
    p.add_argument('--image-index', type=int, default=0)
    p.add_argument('--width', type=int, help='show the first WIDTH columns (Fig. 5: 40)')
    p.add_argument('--out', required=True)

    p = sub.add_parser('classes', help='excitations per class at chosen blocks (SENet '
                                       'Sec. 7.2)')
    _model_args(p)
    _image_args(p, 500)
    p.add_argument('--units', help='unit indices or labels (default: the last of each stage)')
    p.add_argument('--channels', type=int, default=50, help='channels plotted (50, sampled '
                                                            'uniformly)')
    p.add_argument('--out', required=True)

    p = sub.add_parser('gradcam', help='Grad-CAM heat maps over the images (InI Fig. 9)')
    _model_args(p)
    _image_args(p, 12)
    p.add_argument('--layer', help='internal output to explain (default: the last spatial '
                                   'feature map); `units` lists names')
    p.add_argument('--target', choices=('predicted', 'label'), default='predicted',
                   help='explain the predicted class or the true label')
    p.add_argument('--out', required=True)

    p = sub.add_parser('curves', help='training curves of several runs on one plot (CMPE-SE '
                                      'Fig. 4)')
    p.add_argument('runs', nargs='+', help='run directories (or metrics.csv files)')
    p.add_argument('--labels', help='comma-separated legend labels (default: each run\'s '
                                    'model)')
    p.add_argument('--title', default='')
    p.add_argument('--out', required=True)

    p = sub.add_parser('designs', help='SE, CMPE-SE pair-view and InI side by side, from '
                                       'three trained runs (the README picture)')
    p.add_argument('--se', required=True, metavar='RUN_DIR')
    p.add_argument('--cmpe', required=True, metavar='RUN_DIR')
    p.add_argument('--ini', required=True, metavar='RUN_DIR')
    p.add_argument('--unit', default='stage3 block1', help='which unit of each (label)')
    _image_args(p, 1)
    p.add_argument('--image-index', type=int, default=0)
    p.add_argument('--out', required=True)
    return parser


def _load(args):
    from ..analysis.probe import GraphProbe, load_model
    model_args = None
    if args.model_args:
        try:
            model_args = json.loads(args.model_args)
        except ValueError as err:
            raise UserError('--model-args must be JSON, e.g. \'{"drop_rate": 0.3}\' (%s)' % err)
        if not isinstance(model_args, dict):
            raise UserError('--model-args must be a JSON object, e.g. \'{"drop_rate": 0.3}\', '
                            'got %s' % args.model_args)
    net, meta = load_model(model=args.model, params=args.params, symbol=args.symbol,
                           run_dir=args.run_dir, classes=args.classes, model_args=model_args)
    size = meta['input_size'] or (224 if (getattr(args, 'rec', None)) else 32)
    return GraphProbe(net, (1, 3, size, size), model=meta['model']), meta, size


def _images(args, meta, size):
    from ..analysis.images import load_images
    if (args.mean is None) != (args.std is None):
        raise UserError('--mean and --std go together')
    mean, std = args.mean, args.std
    cfg = None if mean is not None or args.norm else _data_config(args)
    if cfg is not None:     # the model's own preprocessing (its data config)
        mean, std = cfg.mean, cfg.std
    norm = args.norm or (None if args.data else meta.get('dataset'))
    images = load_images(data=args.data, folder=args.images, rec=args.rec, rec_idx=args.rec_idx,
                         count=args.count, input_size=size, mean=mean, std=std,
                         data_dir=args.data_dir, norm=norm, seed=args.seed)
    if args.data and meta.get('dataset') and args.data.split(':')[0] != meta['dataset']:
        sys.stderr.write('note: the model was trained on %s, the images are %s\n'
                         % (meta['dataset'], images.source))
    return images


def _data_config(args):
    """The data config of the model (a run's data_config.json, an export's
    ``<prefix>-data.json``, or the run directory of --params), or None."""
    import os
    from ..data.config import DATA_CONFIG_FILE, load_data_config
    from ..deploy.export import run_data_config
    from ..evaluate import export_data_config
    run_dir = getattr(args, 'run_dir', None)
    if run_dir and os.path.isfile(os.path.join(run_dir, DATA_CONFIG_FILE)):
        return load_data_config(os.path.join(run_dir, DATA_CONFIG_FILE))
    symbol = getattr(args, 'symbol', None)
    if symbol and export_data_config(symbol) is not None:
        return export_data_config(symbol)
    params = getattr(args, 'params', None)
    if params and os.path.isfile(params):
        return run_data_config(params)
    return None


def _pick_units(probe, text, default):
    if not text:
        return default
    out = []
    for item in text.split(','):
        item = item.strip()
        try:
            out.append(probe.unit(int(item)) if item.lstrip('-').isdigit() else probe.unit(item))
        except (KeyError, IndexError):
            raise UserError('--units %s: no unit %r; the model has %d units: %s' % (
                text, item, len(probe.units), ', '.join(u.label for u in probe.units)))
    return out


def _need_units(probe, meta):
    if not probe.units:
        raise UserError('%s has no recalibration units (nothing named <unit>gate_ in its '
                        'graph); Grad-CAM and curves work for any model' % (
                            meta['model'] or meta['source']))


def _spread(units, n=4):
    import numpy as np
    idx = np.unique(np.linspace(0, len(units) - 1, min(n, len(units))).round().astype(int))
    return [units[i] for i in idx]


def _cmd_units(args):
    probe, meta, _ = _load(args)
    print('%s: %d units; Grad-CAM layer %s; output %s' % (
        meta['model'] or meta['source'], len(probe.units), probe.cam_layer(),
        probe.output_layer()))
    for i, u in enumerate(probe.units):
        roles = probe.roles(u)
        print('%3d  %-24s C=%-5d excitation %s' % (i, u.label, u.channels, u.excitation))
        print('     %-24s %s %s %s%s' % ('', u.kind, 'x'.join(map(str, u.signal_shape or ())),
                                         u.signal, '  rows: ' + ' '.join(roles) if roles and
                                         u.kind == 'map' else ''))
    return 0


def _title(meta, images, extra=''):
    return '%s on %s%s' % (meta['model'] or os.path.basename(meta['source'] or ''),
                           images.source, extra)


def _cmd_excitations(args):
    from ..analysis.plots import plot_excitation_grid
    probe, meta, size = _load(args)
    _need_units(probe, meta)
    images = _images(args, meta, size)
    ex = probe.excitations(images.data)
    if args.image_index is not None:
        if not 0 <= args.image_index < len(images.data):
            raise UserError('--image-index %d: only %d images' % (args.image_index,
                                                                   len(images.data)))
        vectors = {k: v[args.image_index] for k, v in ex.items()}
        what = ', image %d' % args.image_index
    else:
        vectors = {k: v.mean(axis=0) for k, v in ex.items()}
        what = ', mean over %d images' % len(images.data)
    import collections
    vectors = collections.OrderedDict((k, vectors[k]) for k in ex)
    print(plot_excitation_grid(vectors, args.out, title='excitations: ' + _title(meta, images,
                                                                                  what)))
    return 0


def _map_panels(probe, units, images, index):
    names = [u.signal for u in units] + [u.excitation for u in units]
    out = probe.run(names, images.data[index:index + 1])
    panels = []
    for u in units:
        m = out[u.signal][0]
        m = m.reshape(m.shape[-2], m.shape[-1]) if u.kind == 'map' else m.reshape(1, -1)
        panels.append(dict(label=u.label, map=m, roles=probe.roles(u) if u.kind == 'map' or
                           m.shape[0] == 1 else None, excitation=out[u.excitation][0]))
    return panels


def _cmd_maps(args):
    from ..analysis.plots import plot_inner_maps
    probe, meta, size = _load(args)
    _need_units(probe, meta)
    mapped = [u for u in probe.units if u.kind == 'map']
    if not mapped:
        raise UserError('%s has no inner-imaged maps (only CMPE-SE pair-view and InI units have '
                        'them); `excitations` shows its units' % meta['model'])
    units = _pick_units(probe, args.units, _spread(mapped))
    images = _images(args, meta, size)
    if not 0 <= args.image_index < len(images.data):
        raise UserError('--image-index %d: only %d images' % (args.image_index, len(images.data)))
    panels = _map_panels(probe, units, images, args.image_index)
    label = images.labels[args.image_index]
    print(plot_inner_maps(panels, args.out, width=args.width, title=_title(
        meta, images, ', image %d%s' % (args.image_index, ' (class %s)' % (
            images.class_names[label] if images.class_names and label >= 0 else label)
            if label >= 0 else ''))))
    return 0


def _cmd_classes(args):
    import collections
    from ..analysis.plots import plot_class_excitations
    from ..analysis.probe import class_means, stage_last_units
    probe, meta, size = _load(args)
    _need_units(probe, meta)
    units = _pick_units(probe, args.units, stage_last_units(probe.units))
    images = _images(args, meta, size)
    if (images.labels < 0).all():
        raise UserError('the images have no labels (use --data, a folder of class '
                        'sub-folders, or a RecordIO file)')
    ex = probe.excitations(images.data, units)
    stats = collections.OrderedDict((k, class_means(v, images.labels)) for k, v in ex.items())
    print(plot_class_excitations(stats, images.class_names, args.out,
                                 max_channels=args.channels, title='excitation by class: '
                                 + _title(meta, images, ' (%d images)' % len(images.data))))
    return 0


def _cmd_gradcam(args):
    from ..analysis.plots import plot_grad_cam
    from ..analysis.probe import grad_cam
    probe, meta, size = _load(args)
    images = _images(args, meta, size)
    if args.target == 'label' and (images.labels < 0).any():
        raise UserError('--target label: the images have no labels')
    try:
        maps, pred, used, _ = grad_cam(probe, images.data, layer=args.layer,
                                       classes=images.labels if args.target == 'label' else None)
    except KeyError as err:
        raise UserError('--layer: %s (`python -m cmpese.visualize units ...` lists the graph)'
                        % err)
    names = images.class_names

    def name(c):
        return names[c] if names and 0 <= c < len(names) else str(c)
    titles = ['%s%s' % ('pred %s' % name(p), ' / true %s' % name(t) if t >= 0 else '')
              for p, t in zip(pred, images.labels)]
    print(plot_grad_cam(images.images, maps, args.out, titles=titles, title='Grad-CAM (%s, '
                        'layer %s): %s' % (args.target, args.layer or probe.cam_layer(),
                                           _title(meta, images))))
    return 0


def _cmd_curves(args):
    from ..analysis.plots import plot_training_curves, read_metrics
    runs = []
    labels = args.labels.split(',') if args.labels else None
    if labels and len(labels) != len(args.runs):
        raise UserError('--labels names %d runs, %d were given' % (len(labels), len(args.runs)))
    for i, path in enumerate(args.runs):
        csv_path = os.path.join(path, 'metrics.csv') if os.path.isdir(path) else path
        if not os.path.isfile(csv_path):
            raise UserError('%s: no metrics.csv (a trainer writes it in its --save-dir after '
                            'every epoch)' % path)
        label = labels[i] if labels else None
        if label is None:      # the run directory: unique where model names are not
            label = os.path.relpath(os.path.dirname(os.path.abspath(csv_path)))
        rows = read_metrics(csv_path)
        if not rows:
            raise UserError('%s holds no epoch yet' % csv_path)
        runs.append((label, rows))
    print(plot_training_curves(runs, args.out, title=args.title))
    return 0


def _cmd_designs(args):
    from ..analysis.plots import plot_unit_designs
    from ..analysis.probe import GraphProbe, load_model
    designs = []
    images = None
    for flag, run_dir, caption in (('--se', args.se, 'squeezed residual'),
                                   ('--cmpe', args.cmpe, 'pair-view stack'),
                                   ('--ini', args.ini, 'inner-imaged fold')):
        net, meta = load_model(run_dir=run_dir, run_flag=flag)
        probe = GraphProbe(net, (1, 3, meta['input_size'] or 32, meta['input_size'] or 32),
                           model=meta['model'])
        if images is None:
            images = _images(args, meta, meta['input_size'] or 32)
        try:
            unit = probe.unit(args.unit)
        except KeyError as err:
            raise UserError('--unit %s (%s %s): %s' % (args.unit, flag, run_dir,
                                                       str(err).strip('"')))
        panel = _map_panels(probe, [unit], images, args.image_index)[0]
        panel.update(name=meta['model'], caption=caption)
        designs.append(panel)
    label = images.labels[args.image_index]
    print(plot_unit_designs(designs, args.out, title='What each unit looks at, and the '
                            'excitation it gives (%s, image %d%s)' % (
                                images.source, args.image_index,
                                ', class %d' % label if label >= 0 else '')))
    return 0


COMMANDS = {'units': _cmd_units, 'excitations': _cmd_excitations, 'maps': _cmd_maps,
            'classes': _cmd_classes, 'gradcam': _cmd_gradcam, 'curves': _cmd_curves,
            'designs': _cmd_designs}


# flags that must be at least 1 (or 0), checked before any work
_AT_LEAST = (('classes', 1, ''), ('width', 1, ''), ('channels', 1, ''),
             ('count', 0, ' (0: every image)'))


def main(argv=None, prog=PROG):
    args = build_parser(prog).parse_args(argv)
    for flag, low, note in _AT_LEAST:
        value = getattr(args, flag, None)
        if value is not None and value < low:
            raise UserError('--%s must be an integer >= %d%s, got %d' % (flag, low, note, value))
    if getattr(args, 'out', None):
        check_output_path(args.out, '--out')
    return COMMANDS[args.command](args)


def console(prog='cmpese-visualize'):
    """The ``cmpese-visualize`` console script."""
    from . import console as run_console
    return run_console(main, prog)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.visualize'))
