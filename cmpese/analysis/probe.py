"""The graph probe: the units of a network read from its own symbol graph, and Grad-CAM.

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

Also here: :func:`load_model`, the network to probe (a run directory, a zoo name with a
parameter file, or an exported symbol), and the statistics the figures show
(:func:`class_means`, :func:`stage_last_units`). Images come from
:mod:`cmpese.analysis.images`, figures from :mod:`cmpese.analysis.plots`; the command line is
``python -m cmpese.visualize`` (:mod:`cmpese.cli.visualize`). docs/visualize.md.
"""
import collections
import json
import os
import re

import numpy as np

__all__ = ['GraphProbe', 'UnitNodes', 'row_roles', 'cut_graph', 'grad_cam', 'load_model',
           'class_means', 'stage_last_units']

UnitNodes = collections.namedtuple('UnitNodes', 'label scope excitation channels signal '
                                                'signal_shape kind')
UnitNodes.__doc__ = """One unit found in the graph: ``label`` ('stage2 block1', 'stage2 block1
bridge'), ``scope`` (node-name prefix), ``excitation`` (internal output name, (N, C)),
``channels`` (C), ``signal`` (the internal output the unit scans: the inner-imaged map for
pair-view / InI units, the squeezed residual otherwise), ``signal_shape`` (without the batch)
and ``kind`` ('map' or 'squeeze')."""



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
# The network to probe
# ---------------------------------------------------------------------------------------------
def _latest_params(run_dir):
    best = os.path.join(run_dir, 'best.params')
    if os.path.isfile(best):
        return best
    epochs = sorted(f for f in os.listdir(run_dir) if re.match(r'^epoch-\d+\.params$', f))
    return os.path.join(run_dir, epochs[-1]) if epochs else None


def load_model(model=None, params=None, symbol=None, run_dir=None, classes=None,
               model_args=None, ctx=None, run_flag='--run'):
    """The network and what is known about it: ``(net, meta)`` with meta keys model, dataset,
    classes, input_size, source.

    One of: ``run_dir`` (a trainer's --save-dir: config.json names the model, dataset and
    model arguments; best.params, else the last epoch's parameters), ``model`` + ``params``
    (a zoo name and a parameter file), or ``symbol`` (+ ``params``, default the
    ``-0000.params`` beside it) of an exported model (``model`` then only names its units'
    layout). Errors are :class:`cmpese.errors.UserError` naming the flag (``run_flag``: the
    one that gave ``run_dir``).
    """
    import mxnet as mx
    from ..errors import UserError
    from ..model_zoo import get_model, get_model_info
    from ..deploy.export import check_exported
    from ..training.checkpoint import read_json
    from ..weights.params import load_params_checked
    ctx = ctx or mx.cpu()
    params_flag = '--params' if params else None     # else the file comes from --run
    meta = dict(model=model, dataset=None, classes=classes, input_size=None, source=None)
    if run_dir:
        cfg_path = os.path.join(run_dir, 'config.json')
        if not os.path.isfile(cfg_path):
            raise UserError('%s %s: no config.json there; expected the --save-dir of a '
                            'train_cifar.py / train_imagenet.py run' % (run_flag, run_dir))
        try:
            cfg = read_json(cfg_path, 'run configuration')
        except UserError as err:
            raise UserError('%s %s: %s; restore it, or give --model NAME --params FILE'
                            % (run_flag, run_dir, err))
        model = cfg.get('model')
        if not model or not isinstance(model, str):
            raise UserError('%s %s: config.json names no model (model: %r); it is not a '
                            'trainer\'s config.json: restore it, or give --model NAME --params '
                            'FILE' % (run_flag, run_dir, model))
        meta.update(model=model, dataset=cfg.get('dataset') or 'imagenet')
        classes = classes or cfg.get('classes')
        if model_args is None:
            try:
                model_args = json.loads(cfg.get('model_args') or '{}')
            except (TypeError, ValueError):
                model_args = None
            if not isinstance(model_args, dict):
                raise UserError('%s %s: config.json has model_args %r, not a JSON object; '
                                'pass the run\'s --model-args'
                                % (run_flag, run_dir, cfg.get('model_args')))
        params = params or _latest_params(run_dir)
        if params is None:
            raise UserError('%s %s: no best.params or epoch-NNNN.params yet (has the run '
                            'finished an epoch?)' % (run_flag, run_dir))
    if symbol:
        if not os.path.isfile(symbol):
            raise UserError('--symbol %s does not exist; an exported model is '
                            '<prefix>-symbol.json (train_cifar.py --export writes it)' % symbol)
        params = params or symbol.replace('-symbol.json', '-0000.params')
        if not os.path.isfile(params):
            raise UserError('--params %s does not exist; give the .params written beside %s'
                            % (params, symbol))
        check_exported(symbol, params, '--symbol', params_flag or '--params')
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
        where = '%s %s: config.json' % (run_flag, run_dir) if run_dir else '--model'
        raise UserError('%s: %s' % (where, str(err).strip('"')))
    if not params:
        raise UserError('--params is required with --model (a run writes best.params in its '
                        '--save-dir)')
    if not os.path.isfile(params):
        raise UserError('--params %s does not exist' % params)
    classes = classes or info.classes
    net = get_model(model, classes=classes, **(model_args or {}))
    load_params_checked(net, params, ctx, flag=params_flag, classes_option='--classes %d',
                        hint='Pass the --model, --classes and --model-args the run was trained '
                             'with, or --run RUN_DIR.')
    net.hybridize(static_alloc=True, static_shape=True)
    meta.update(model=model, classes=classes, input_size=info.input_size,
                source='%s (%s)' % (model, params))
    return net, meta


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
