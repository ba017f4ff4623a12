"""Look inside a trained network: excitations, inner-imaged maps, class-wise excitation
statistics, Grad-CAM, training curves (the figures of the papers, on the user's data).

How internals are read (one way, for every model): **extra outputs of the network's own
symbol graph**. The graph is the one ``hybridize()`` compiles and ``export()`` writes; it is
taken from the network (``net(mx.sym.var('data'))``, also for a ``SymbolBlock`` imported
from an exported JSON) and :class:`GraphProbe` finds the nodes of every unit in it:

* the **excitation** of a unit is the output of its ``gate`` child block (every unit's last
  step, FC - gate; :class:`cmpese.units.ExcitationUnit`), an ``Activation`` node named
  ``<unit prefix>gate_fwd`` whose output is (N, C);
* the **inner-imaged map** of a CMPE-SE pair-view or InI unit is the data input of the unit's
  first learned convolution that reads a one-channel map (the pair-view filters or the first
  G-filter): (N, 1, rows, cols). Which rows hold identity and which residual signals is fixed
  by the unit (pair-view and InI "simple": residual on top, identity below; the InI fold
  T_alt: identity, residual, identity, ...; non-joint: residual only) and read from the zoo
  name's unit (:func:`row_roles`);
* for units without a map (SE) the squeezed residual, the data input of the unit's first FC.

The probe then builds one ``SymbolBlock`` whose outputs are the requested internal nodes
(``sym.get_internals()[name]``) and which *shares* the network's parameters: no copy of the
weights, no imperative network, no forward hooks, and the numbers are those of the compiled
graph. Grad-CAM cuts the same graph at the last spatial feature map into a head and a tail
(:func:`cut_graph`) and differentiates the tail with respect to the map.

Every plot is a PNG written with matplotlib's Agg backend (no display needed).
"""
import collections
import csv
import itertools
import json
import os
import re

import numpy as np

__all__ = ['GraphProbe', 'UnitNodes', 'row_roles', 'cut_graph', 'grad_cam', 'load_model',
           'load_images', 'ImageSet', 'class_means', 'stage_last_units',
           'plot_excitation_grid', 'plot_inner_maps', 'plot_class_excitations', 'plot_grad_cam',
           'plot_training_curves', 'plot_unit_designs', 'read_metrics', 'check_png']

UnitNodes = collections.namedtuple('UnitNodes', 'label scope excitation channels signal '
                                                'signal_shape kind')
UnitNodes.__doc__ = """One unit found in the graph: ``label`` ('stage2 block1', 'stage2 block1
bridge'), ``scope`` (node-name prefix), ``excitation`` (internal output name, (N, C)),
``channels`` (C), ``signal`` (the internal output the unit scans: the inner-imaged map for
pair-view / InI units, the squeezed residual otherwise), ``signal_shape`` (without the batch)
and ``kind`` ('map' or 'squeeze')."""

ImageSet = collections.namedtuple('ImageSet', 'data images labels class_names source')
ImageSet.__doc__ = """Images ready for the network: ``data`` float32 NCHW normalized,
``images`` uint8 NHWC as shown to the network (for overlays), ``labels`` int (-1 unknown),
``class_names`` (list or None), ``source`` (a description)."""


# ---------------------------------------------------------------------------------------------
# Reading the graph
# ---------------------------------------------------------------------------------------------
def _output_name(nodes, outputs, entry):
    """The get_internals() output name of graph entry [node id, output index, version]."""
    node = nodes[entry[0]]
    if node['op'] == 'null':
        return node['name']
    single = '%s_output' % node['name']
    if entry[1] == 0 and single in outputs:
        return single
    return '%s_output%d' % (node['name'], entry[1])


def _label(scope, net_prefix):
    text = scope[len(net_prefix):] if scope.startswith(net_prefix) else scope
    text = re.sub(r'(unit|channel)_$', '', text).rstrip('_')
    return text.replace('_', ' ')


def row_roles(unit, family, rows):
    """'identity' / 'residual' for each row of an inner-imaged map of ``rows`` rows made by the
    zoo unit ``unit`` (a registry name such as 'cmpe_se_1x1', 'ini_mix_5_d_spa4') in a
    ``family`` backbone; None when the layout is not known. The layout is the unit's own
    (its registered ``inner_map``, :meth:`cmpese.units.UnitSpec.map_rows`)."""
    from ..model_zoo import FAMILIES
    from ..units import lookup_unit
    if not unit:
        return None
    try:
        spec = lookup_unit(unit)
    except ValueError:
        return None
    return spec.map_rows(rows, identity_flow=FAMILIES.get(family, {}).get('identity_flow', True))


class GraphProbe(object):
    """The units of a Gluon network found in its symbol graph, and their internal outputs.

    Parameters
    ----------
    net : HybridBlock
        A zoo network (initialized or loaded) or a ``SymbolBlock`` from an exported model.
    input_shape : tuple
        (N, 3, H, W) used for shape inference (N is ignored when running).
    model : str, optional
        Zoo name, for the rows of inner-imaged maps (:func:`row_roles`).
    ctx : Context
    """

    def __init__(self, net, input_shape=(1, 3, 32, 32), model=None, ctx=None):
        import mxnet as mx
        self.net = net
        self.ctx = ctx or mx.cpu()
        self.input_shape = tuple(input_shape)
        self.model = model
        self.symbol = net(mx.sym.var('data'))
        if isinstance(self.symbol, (list, tuple)):
            self.symbol = self.symbol[0]
        self.params = net.collect_params()
        self._internals = self.symbol.get_internals()
        self._outputs = self._internals.list_outputs()
        _, shapes, _ = self._internals.infer_shape_partial(data=(1,) + self.input_shape[1:])
        self.shapes = dict(zip(self._outputs, shapes))
        graph = json.loads(self.symbol.tojson())
        self.nodes = graph['nodes']
        self.heads = graph['heads']
        self.units = self._find_units()
        self._blocks = {}
        info = None
        if model:
            from ..model_zoo import get_model_info
            try:
                info = get_model_info(model)
            except ValueError:
                info = None
        self.info = info

    # -- discovery --------------------------------------------------------------------------
    def _find_units(self):
        nodes, outputs = self.nodes, set(self._outputs)
        from ..units import gate_children
        suffixes = tuple('%sfwd' % child for child in gate_children())
        gates = [(i, n) for i, n in enumerate(nodes)
                 if n['op'] == 'Activation' and n['name'].endswith(suffixes)]
        names = [n['name'] for n in nodes if n['op'] != 'null']
        prefix = os.path.commonprefix(names)
        prefix = prefix[:prefix.rfind('_') + 1] if '_' in prefix else ''
        units = []
        for i, gate in gates:
            scope = gate['name'][:-len(next(x for x in suffixes if gate['name'].endswith(x)))]
            excitation = '%s_output' % gate['name']
            shape = self.shapes.get(excitation)
            if shape is None or len(shape) != 2:
                continue
            signal, kind = None, None
            for j, n in enumerate(nodes[:i]):
                if not n['name'].startswith(scope) or n['op'] != 'Convolution' or \
                        len(n['inputs']) < 2:
                    continue
                weight = nodes[n['inputs'][1][0]]
                data = _output_name(nodes, outputs, n['inputs'][0])
                dshape = self.shapes.get(data)
                if weight['op'] == 'null' and dshape is not None and len(dshape) == 4 and \
                        dshape[1] == 1:
                    signal, kind = data, 'map'
                    break
            if signal is None:
                for n in nodes[:i]:
                    if n['name'].startswith(scope) and n['op'] == 'FullyConnected':
                        signal, kind = _output_name(nodes, outputs, n['inputs'][0]), 'squeeze'
                        break
            units.append(UnitNodes(_label(scope, prefix), scope, excitation, int(shape[1]),
                                   signal, tuple(self.shapes[signal][1:]) if signal else None,
                                   kind))
        return units

    def roles(self, unit):
        """Row roles of ``unit``'s signal (see :func:`row_roles`); squeezes are 'residual'."""
        if unit.kind == 'squeeze':
            return ['residual']
        rows = unit.signal_shape[-2]
        if self.info is None:
            return None
        return row_roles(self.info.unit, self.info.family, rows)

    def output_layer(self):
        """The internal output name of the network's output (the class scores)."""
        return _output_name(self.nodes, set(self._outputs), self.heads[0])

    def cam_layer(self):
        """The last feature map with a spatial extent: walking back from the output along
        each node's first input, the first 4-D output with H x W > 1 (the input of the global
        pooling)."""
        outputs = set(self._outputs)
        entry = self.heads[0]
        while True:
            name = _output_name(self.nodes, outputs, entry)
            shape = self.shapes.get(name)
            node = self.nodes[entry[0]]
            if shape is not None and len(shape) == 4 and shape[2] * shape[3] > 1:
                return name
            if node['op'] == 'null' or not node['inputs']:
                raise ValueError('no spatial feature map found before the output')
            entry = node['inputs'][0]

    # -- running ----------------------------------------------------------------------------
    def _block(self, names, symbol=None, inputs=('data',)):
        import mxnet as mx
        key = (tuple(names), symbol is not None, tuple(inputs))
        if key not in self._blocks:
            import warnings
            out = symbol if symbol is not None else mx.sym.Group(
                [self._internals[n] for n in names])
            with warnings.catch_warnings():     # "input has no type yet"
                warnings.simplefilter('ignore')
                block = mx.gluon.SymbolBlock(out, [mx.sym.var(i) for i in inputs],
                                             params=self.params)
            block.hybridize(static_alloc=True)
            self._blocks[key] = block
        return self._blocks[key]

    def run(self, names, data, batch_size=64):
        """``{name: numpy array}`` of the internal outputs ``names`` over ``data`` (float32
        NCHW, numpy or NDArray), in batches, in inference mode."""
        import mxnet as mx
        names = list(names)
        missing = [n for n in names if n not in self.shapes]
        if missing:
            raise KeyError('the graph has no outputs %s (GraphProbe.units lists them)' % missing)
        block = self._block(names)
        data = data.asnumpy() if isinstance(data, mx.nd.NDArray) else np.asarray(data)
        parts = collections.defaultdict(list)
        for start in range(0, len(data), batch_size):
            x = mx.nd.array(data[start:start + batch_size], ctx=self.ctx)
            outs = block(x)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for n, o in zip(names, outs):
                parts[n].append(o.asnumpy())
        return {n: np.concatenate(parts[n]) for n in names}

    def excitations(self, data, units=None, batch_size=64):
        """``{label: (N, C) excitations}`` of ``units`` (default every unit)."""
        units = self.units if units is None else units
        out = self.run([u.excitation for u in units], data, batch_size)
        return collections.OrderedDict((u.label, out[u.excitation]) for u in units)

    def unit(self, label):
        """The unit called ``label`` ('stage3 block1'), or by index."""
        if isinstance(label, int):
            return self.units[label]
        for u in self.units:
            if u.label == label:
                return u
        raise KeyError('no unit %r; the units are: %s' % (label, ', '.join(
            u.label for u in self.units)))


# ---------------------------------------------------------------------------------------------
# Grad-CAM (Selvaraju et al.; the InI paper's Fig. 9)
# ---------------------------------------------------------------------------------------------
def cut_graph(symbol, output_name, var_name='cam_feature'):
    """``symbol`` with the node producing internal output ``output_name`` replaced by a
    variable ``var_name``: the tail of the graph from that feature map to the outputs."""
    import mxnet as mx
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    outputs = set(symbol.get_internals().list_outputs())
    target = None
    for i, n in enumerate(nodes):
        if n['op'] != 'null' and _output_name(nodes, outputs, [i, 0, 0]) == output_name:
            target = i
            break
    if target is None:
        raise KeyError('no node outputs %r' % output_name)
    for n in nodes:
        for entry in n['inputs']:
            if entry[0] == target and entry[1] != 0:
                raise ValueError('%s is not the only output of its node; choose another layer'
                                 % output_name)
    nodes[target] = {'op': 'null', 'name': var_name, 'inputs': []}
    graph['arg_nodes'] = [i for i, n in enumerate(nodes) if n['op'] == 'null']
    graph.pop('node_row_ptr', None)
    return mx.sym.load_json(json.dumps(graph))


def grad_cam(probe, data, classes=None, layer=None, batch_size=32):
    """Grad-CAM maps of ``data`` (float32 NCHW) for ``classes`` (per image; default the
    predicted class).

    With A the feature map ``layer`` (default :meth:`GraphProbe.cam_layer`) and y_c the
    score of class c: alpha_k = mean over (i, j) of dy_c / dA_k(i, j); the map is
    ReLU(sum_k alpha_k A_k), at the feature map's resolution. Returns (maps (N, h, w),
    predicted classes (N,), classes used (N,), scores (N, K)).
    """
    import mxnet as mx
    from mxnet import autograd
    layer = layer or probe.cam_layer()
    out_name = probe.output_layer()
    tail_sym = cut_graph(probe.symbol, layer)
    inputs = ['cam_feature'] + (['data'] if 'data' in tail_sym.list_arguments() else [])
    tail = probe._block(['tail', layer], symbol=tail_sym, inputs=inputs)
    data = np.asarray(data.asnumpy() if isinstance(data, mx.nd.NDArray) else data)
    maps, preds, used, scores = [], [], [], []
    for start in range(0, len(data), batch_size):
        chunk = data[start:start + batch_size]
        feats = probe.run([layer, out_name], chunk, batch_size)
        logits = feats[out_name].reshape(len(chunk), -1)
        pred = logits.argmax(axis=1)
        want = pred if classes is None else np.asarray(classes)[start:start + len(chunk)]
        feat = mx.nd.array(feats[layer], ctx=probe.ctx)
        feat.attach_grad()
        extra = [mx.nd.array(chunk, ctx=probe.ctx)] if len(inputs) > 1 else []
        with autograd.record(train_mode=False):
            out = tail(feat, *extra)
            out = out[0] if isinstance(out, (list, tuple)) else out
            picked = mx.nd.pick(out.reshape((len(chunk), -1)),
                                mx.nd.array(want, ctx=probe.ctx), axis=1)
        picked.backward()
        a = feats[layer]
        alpha = feat.grad.asnumpy().mean(axis=(2, 3))                   # (N, K)
        cam = np.maximum(np.einsum('nk,nkhw->nhw', alpha, a), 0)
        maps.append(cam)
        preds.append(pred)
        used.append(np.asarray(want))
        scores.append(logits)
    return (np.concatenate(maps), np.concatenate(preds), np.concatenate(used),
            np.concatenate(scores))


# ---------------------------------------------------------------------------------------------
# Models and images
# ---------------------------------------------------------------------------------------------
def _latest_params(run_dir):
    best = os.path.join(run_dir, 'best.params')
    if os.path.isfile(best):
        return best
    epochs = sorted(f for f in os.listdir(run_dir) if re.match(r'^epoch-\d+\.params$', f))
    return os.path.join(run_dir, epochs[-1]) if epochs else None


def load_model(model=None, params=None, symbol=None, run_dir=None, classes=None,
               model_args=None, ctx=None):
    """The network and what is known about it: ``(net, meta)`` with meta keys model, dataset,
    classes, input_size, source.

    One of: ``run_dir`` (a trainer's --save-dir: config.json names the model, dataset and
    model arguments; best.params, else the last epoch's parameters), ``model`` + ``params``
    (a zoo name and a parameter file), or ``symbol`` (+ ``params``, default the
    ``-0000.params`` beside it) of an exported model (``model`` then only names its units'
    layout). Errors are :class:`cmpese.errors.UserError` naming the flag.
    """
    import mxnet as mx
    from ..errors import UserError
    from ..model_zoo import get_model, get_model_info
    ctx = ctx or mx.cpu()
    meta = dict(model=model, dataset=None, classes=classes, input_size=None, source=None)
    if run_dir:
        cfg_path = os.path.join(run_dir, 'config.json')
        if not os.path.isfile(cfg_path):
            raise UserError('--run %s: no config.json there; expected the --save-dir of a '
                            'train_cifar.py / train_imagenet.py run' % run_dir)
        with open(cfg_path) as f:
            cfg = json.load(f)
        model = cfg.get('model')
        meta.update(model=model, dataset=cfg.get('dataset') or 'imagenet')
        classes = classes or cfg.get('classes')
        model_args = model_args if model_args is not None else json.loads(
            cfg.get('model_args') or '{}')
        params = params or _latest_params(run_dir)
        if params is None:
            raise UserError('--run %s: no best.params or epoch-NNNN.params yet (has the run '
                            'finished an epoch?)' % run_dir)
    if symbol:
        if not os.path.isfile(symbol):
            raise UserError('--symbol %s does not exist; an exported model is '
                            '<prefix>-symbol.json (train_cifar.py --export writes it)' % symbol)
        params = params or symbol.replace('-symbol.json', '-0000.params')
        if not os.path.isfile(params):
            raise UserError('--params %s does not exist; give the .params written beside %s'
                            % (params, symbol))
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            net = mx.gluon.SymbolBlock.imports(symbol, ['data'], params, ctx=ctx)
        if model is None:       # train_cifar.py --export names the files after the model
            guess = os.path.basename(symbol)[:-len('-symbol.json')]
            try:
                get_model_info(guess)
                model = guess
            except ValueError:
                model = None
        meta.update(model=model, source='%s (%s)' % (symbol, params))
        meta['input_size'] = get_model_info(model).input_size if model else None
        return net, meta
    if not model:
        raise UserError('give --run RUN_DIR, --model NAME with --params FILE, or --symbol FILE '
                        'of an exported model')
    try:
        info = get_model_info(model)
    except ValueError as err:
        raise UserError('--model: %s' % str(err).strip('"'))
    if not params:
        raise UserError('--params is required with --model (a run writes best.params in its '
                        '--save-dir)')
    if not os.path.isfile(params):
        raise UserError('--params %s does not exist' % params)
    classes = classes or info.classes
    net = get_model(model, classes=classes, **(model_args or {}))
    try:
        net.load_parameters(params, ctx=ctx)
    except (AssertionError, mx.base.MXNetError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:200]
        raise UserError('--params %s does not fit --model %s with %d classes (%s); pass the '
                        '--classes and --model-args the run was trained with, or --run RUN_DIR'
                        % (params, model, classes, first))
    net.hybridize(static_alloc=True, static_shape=True)
    meta.update(model=model, classes=classes, input_size=info.input_size,
                source='%s (%s)' % (model, params))
    return net, meta


def _resize_crop(img, size, resize=None):
    """PIL image -> uint8 (size, size, 3): short side to ``resize`` (default size), centre
    crop."""
    from PIL import Image
    img = img.convert('RGB')
    resize = resize or size
    w, h = img.size
    scale = float(resize) / min(w, h)
    img = img.resize((max(size, int(round(w * scale))), max(size, int(round(h * scale)))),
                     Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


_IMAGE_EXT = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.ppm', '.tif', '.tiff', '.webp')


def _normalize(images, mean, std):
    x = (images.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return x.transpose(0, 3, 1, 2).copy()


def load_images(data=None, folder=None, rec=None, rec_idx=None, count=64, input_size=32,
                mean=None, std=None, data_dir=None, norm=None, seed=0):
    """An :class:`ImageSet` from a dataset split (``data`` = 'digits', 'cifar10:test',
    'svhn:train' ...), a folder of images (class sub-folders give labels), or an im2rec
    RecordIO file (short side to input_size x 256/224, centre crop).

    Normalization: ``mean`` / ``std`` (pixel units) when given, else the training-split
    statistics of dataset ``norm`` (as train_cifar.py normalizes; a split's own dataset by
    default), else ImageNet's for 224-pixel inputs. ``count`` images are taken (a dataset split
    is sampled evenly over its classes, deterministically from ``seed``).
    """
    from ..errors import UserError
    from ..data import DATASETS, load_dataset, normalization
    images, labels, names, source = None, None, None, None
    if sum(x is not None for x in (data, folder, rec)) != 1:
        raise UserError('give one of --data DATASET[:SPLIT], --images FOLDER, --rec FILE')
    if data is not None:
        name, _, split = data.partition(':')
        split = split or 'test'
        if name not in DATASETS:
            raise UserError('--data %s: unknown dataset %r; choose one of %s (optionally '
                            'followed by :train or :test)' % (data, name, ', '.join(DATASETS)))
        x, y = load_dataset(name, split, data_dir)
        rng = np.random.RandomState(seed)
        order = rng.permutation(len(y))
        # round-robin over classes, so that every class is represented
        by_class = [order[y[order] == c] for c in np.unique(y)]
        pick = [idx for group in itertools.zip_longest(*by_class) for idx in group
                if idx is not None]
        pick = np.array(pick[:count] if count else pick)
        images, labels = x[pick], np.asarray(y)[pick].astype(np.int64)
        names = [str(c) for c in range(DATASETS[name]['classes'])]
        norm = norm or name
        source = '%s %s split' % (name, split)
    elif folder is not None:
        if not os.path.isdir(folder):
            raise UserError('--images %s is not a folder' % folder)
        subdirs = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
        files = []
        if subdirs:
            for c, d in enumerate(subdirs):
                files += [(os.path.join(folder, d, f), c) for f in sorted(os.listdir(
                    os.path.join(folder, d))) if f.lower().endswith(_IMAGE_EXT)]
            names = subdirs
        else:
            files = [(os.path.join(folder, f), -1) for f in sorted(os.listdir(folder))
                     if f.lower().endswith(_IMAGE_EXT)]
        if not files:
            raise UserError('--images %s holds no image files (%s)' % (folder,
                                                                      ', '.join(_IMAGE_EXT)))
        from PIL import Image
        files = files[:count] if count else files
        resize = int(round(input_size * 256.0 / 224.0)) if input_size >= 64 else input_size
        images = np.stack([_resize_crop(Image.open(p), input_size, resize) for p, _ in files])
        labels = np.array([c for _, c in files], np.int64)
        source = 'images in %s' % folder
    else:
        from ..data.imagenet import IMAGENET_MEAN, IMAGENET_STD, RecordLoader, read_synset
        loader = RecordLoader(rec, rec_idx, batch_size=min(count or 64, 64), train=False,
                              input_size=input_size, mean=(0, 0, 0), std=(1, 1, 1),
                              flag='--rec')
        got, labs = [], []
        for batch, label, pad in loader.epoch(0):
            n = batch.shape[0] - pad
            got.append(batch.asnumpy()[:n])
            labs.append(label.asnumpy()[:n])
            if count and sum(len(g) for g in got) >= count:
                break
        raw = np.concatenate(got)[:count or None]
        images = np.clip(np.round(raw.transpose(0, 2, 3, 1)), 0, 255).astype(np.uint8)
        labels = np.concatenate(labs)[:len(images)].astype(np.int64)
        names = read_synset(os.path.join(os.path.dirname(rec), 'synset.txt'))
        source = 'records of %s' % rec
        if mean is None and norm is None:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
    if mean is None:
        if norm is None and input_size >= 64:
            from ..data.imagenet import IMAGENET_MEAN, IMAGENET_STD
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        elif norm is None:
            raise UserError('how were the training images normalized? pass --norm DATASET '
                            '(e.g. --norm cifar10) or --mean R,G,B --std R,G,B')
        elif norm == 'imagenet':
            from ..data.imagenet import IMAGENET_MEAN, IMAGENET_STD
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        else:
            if norm not in DATASETS:
                raise UserError('--norm %s: choose one of %s or imagenet'
                                % (norm, ', '.join(DATASETS)))
            train = load_dataset(norm, 'train', data_dir)[0] \
                if DATASETS[norm]['norm'] != 'scale' else None
            mean, std = normalization(norm, train)
    return ImageSet(_normalize(images, mean, std), images, labels, names, source)


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def class_means(values, labels):
    """``(classes, per-class means (K, C), all-image mean (C,))`` of (N, C) ``values``."""
    values = np.asarray(values)
    labels = np.asarray(labels)
    classes = [c for c in np.unique(labels) if c >= 0]
    means = np.stack([values[labels == c].mean(axis=0) for c in classes]) if classes else \
        np.zeros((0, values.shape[1]))
    return classes, means, values.mean(axis=0)


def stage_last_units(units):
    """The last unit of every stage ('stageN ...' labels), as the SENet paper's Sec. 7.2 picks
    the last SE block of each stage, immediately before downsampling; for labels without a
    stage, up to four units spread over the depth."""
    last = collections.OrderedDict()
    for u in units:
        m = re.match(r'^(stage\d+)\b', u.label)
        if m and 'bridge' not in u.label:
            last[m.group(1)] = u
    if last:
        return list(last.values())
    idx = np.unique(np.linspace(0, len(units) - 1, min(4, len(units))).round().astype(int))
    return [units[i] for i in idx]


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
        ax.imshow(_scaled(m, roles)[:, :cols], aspect='auto', cmap='RdBu_r', vmin=-1, vmax=1,
                  interpolation='nearest')
        ax.set_yticks(range(m.shape[0]))
        ax.set_yticklabels(roles if roles else ['row %d' % r for r in range(m.shape[0])],
                           fontsize=7 if m.shape[0] > 4 else 8)
        ax.set_xticks([])
        ax.set_title('%s: inner-imaged map %d x %d%s' % (
            p['label'], m.shape[0], m.shape[1],
            '' if cols == m.shape[1] else ' (first %d columns)' % cols), fontsize=9, loc='left')
        ax2 = fig.add_subplot(inner[1])
        ax2.imshow(np.ma.masked_invalid(e[:, :cols]), aspect='auto', cmap='Oranges', vmin=0,
                   vmax=1, interpolation='nearest')
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
        ax.set_xlabel('channel index (%d of %d, uniformly sampled)' % (len(pick), c),
                      fontsize=8)
        ax.set_ylabel('activation', fontsize=8)
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
        ax.imshow(cam, cmap='jet', alpha=alpha, vmin=0, vmax=1, interpolation='bilinear')
        ax.set_xticks([])
        ax.set_yticks([])
        if titles:
            ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def read_metrics(path):
    """Rows of a trainer's metrics.csv as dicts of floats (empty cells None)."""
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append({k: (float(v) if v not in ('', None) and k != 'mixup' else
                             (v == 'True' if k == 'mixup' else None)) for k, v in r.items()})
    return rows


def plot_training_curves(runs, path, title=''):
    """Several runs on one plot (the CMPE-SE paper's Fig. 4): training loss and test top-1
    error per epoch. ``runs``: list of (label, metrics rows)."""
    fig = _figure(11, 4)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    import matplotlib.cm as cm
    colours = cm.get_cmap('tab10')
    for i, (label, rows) in enumerate(runs):
        epochs = [r['epoch'] for r in rows]
        ax1.plot(epochs, [r['train_loss'] for r in rows], '-', color=colours(i % 10),
                 label=label)
        ax2.plot(epochs, [100 * r['test_error'] for r in rows], '-', color=colours(i % 10),
                 label=label)
        ax2.plot(epochs, [100 * r['train_error'] for r in rows], ':', color=colours(i % 10))
    ax1.set_ylabel('training loss')
    ax2.set_ylabel('top-1 error (%): test solid, train dotted')
    for ax in (ax1, ax2):
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
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
        ax.imshow(_scaled(m, roles), aspect='auto', cmap='RdBu_r', vmin=-1, vmax=1,
                  interpolation='nearest')
        ax.set_yticks(range(m.shape[0]))
        ax.set_yticklabels(roles if roles else ['row %d' % r for r in range(m.shape[0])],
                           fontsize=7)
        ax.set_xticks([])
        ax.set_title('%s\n%s, %s (%d x %d)' % (d['name'], d['label'], d['caption'],
                                                 m.shape[0], m.shape[1]), fontsize=9)
        ax2 = fig.add_subplot(inner[1])
        ax2.imshow(np.ma.masked_invalid(e), aspect='auto', cmap='Oranges', vmin=0, vmax=1,
                   interpolation='nearest')
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
