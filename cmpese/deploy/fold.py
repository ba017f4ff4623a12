"""Inference folding: a linear filter bank of a unit collapses into one filter with a bias.

The CMPE-SE pair-view (eq. 11 / 13) and every InI G-filter shape (eq. 5-7) compute, on an
inner-imaged map v, eps convolutions with one shape each, a BatchNorm, and the average of
the eps maps::

    g = 1/eps * sum_k [ gamma_k * (w_k * v + b_k - mu_k) / sqrt(var_k + e) + beta_k ]

At inference the BatchNorm statistics are fixed, so with a_k = gamma_k / sqrt(var_k + e)
this is one convolution of the same shape, stride, padding and dilation::

    g = w' * v + b',   w' = 1/eps * sum_k a_k w_k,   b' = 1/eps * sum_k [a_k (b_k - mu_k) + beta_k]

:func:`fold_symbol` finds that pattern in an inference graph -- a ``Convolution`` (one group)
whose only consumer is a ``BatchNorm`` over axis 1 whose only consumer is a ``mean`` over
axis 1 with ``keepdims`` -- and replaces the three nodes by a one-filter ``Convolution`` with
a bias, computed in float64. It looks at operators and attributes only, not at names, so it
folds any unit built that way; it needs the reference operators of
:mod:`cmpese.units.ops` (``mean`` for the average), which :func:`cmpese.deploy.export.export_model`
traces by default. Nothing else in the graph changes.

A second, larger step follows from the same linearity: everything between the unit's
squeezed signals and its first FC layer (the stacking or alternate fold into an inner-imaged
map, the folded banks, zero padding, concatenation, flattening) is an affine map of those
signals, so the FC layer can absorb it. :func:`collapse_linear` finds, for every
``FullyConnected`` node, the affine subgraph feeding it (operators of :data:`AFFINE_OPS`, with
constant weights), measures the map (its value at 0 and on every unit vector, in float64),
and replaces the subgraph and the FC by one FC over the concatenated signals, with a bias.
A pair-view or InI unit then costs at inference what its two squeezes and two FC layers cost.

    python -m cmpese.tools.export --model ini_wrn16_8_mix_5_d --prefix out/m --fold
"""
import copy
import json
import logging
import warnings

import mxnet as mx
import numpy as np

__all__ = ['fold_symbol', 'collapse_linear', 'fold_exported', 'fold_bank', 'AFFINE_OPS']

log = logging.getLogger(__name__)


def fold_bank(weight, bias, gamma, beta, mean, var, bn_eps, fix_gamma=False):
    """(w', b') of one bank: ``weight`` (eps, C_in, kh, kw), ``bias`` (eps,) or None, the BN's
    ``gamma``, ``beta``, running ``mean`` and ``var`` (eps,), epsilon ``bn_eps``; float64
    arithmetic, float32 results of shapes (1, C_in, kh, kw) and (1,)."""
    weight = np.asarray(weight, np.float64)
    eps = weight.shape[0]
    a = (np.ones(eps) if fix_gamma else np.asarray(gamma, np.float64)) / np.sqrt(
        np.asarray(var, np.float64) + bn_eps)
    b = np.zeros(eps) if bias is None else np.asarray(bias, np.float64)
    w_folded = np.tensordot(a, weight, axes=(0, 0))[None] / eps
    b_folded = np.array([(a * (b - np.asarray(mean, np.float64)) + np.asarray(beta, np.float64))
                         .sum() / eps])
    return w_folded.astype(np.float32), b_folded.astype(np.float32)


def _attrs(node):
    return node.get('attrs', node.get('param', {}))


def _true(value, default=False):
    if value is None:
        return default
    return str(value).strip().lower() in ('true', '1')


def _axis_is_channels(value):
    return str(value).strip('()[], ') == '1'


def _symbol(nodes, heads, attrs=None):
    """The symbol of an NNVM JSON node list (arg_nodes: its variables) with these heads."""
    graph = {'nodes': nodes, 'arg_nodes': [i for i, n in enumerate(nodes) if n['op'] == 'null'],
             'heads': heads}
    if attrs is not None:
        graph['attrs'] = attrs
    return mx.sym.load_json(json.dumps(graph))


def _matches(nodes, consumers, mid):
    """(conv id, bn id) when node ``mid`` is the mean of a bank, else None."""
    m = nodes[mid]
    am = _attrs(m)
    if m['op'] != 'mean' or not _axis_is_channels(am.get('axis')) or \
            not _true(am.get('keepdims')) or _true(am.get('exclude')):
        return None
    bid, bout = m['inputs'][0][:2]
    b = nodes[bid]
    ab = _attrs(b)
    if b['op'] != 'BatchNorm' or bout != 0 or int(ab.get('axis', 1)) != 1 or \
            _true(ab.get('output_mean_var')) or consumers.get((bid, 0), 0) != 1 or \
            any(consumers.get((bid, k), 0) for k in (1, 2)):
        return None
    cid, cout = b['inputs'][0][:2]
    c = nodes[cid]
    ac = _attrs(c)
    if c['op'] != 'Convolution' or cout != 0 or int(ac.get('num_group', 1)) != 1 or \
            consumers.get((cid, 0), 0) != 1 or ac.get('layout', 'NCHW') not in ('NCHW', 'None'):
        return None
    return cid, bid


def fold_symbol(symbol, arg_params, aux_params):
    """Fold every filter bank of an inference graph.

    Returns ``(symbol, arg_params, aux_params, folded)``: the new graph, its parameter dicts
    (new dicts; the bank's old parameters dropped, ``<conv name>_folded_weight`` / ``_bias``
    added) and the names of the folded convolutions."""
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    consumers = {}
    for node in nodes:
        for entry in node['inputs']:
            key = (entry[0], entry[1])
            consumers[key] = consumers.get(key, 0) + 1
    for entry in graph['heads']:
        key = (entry[0], entry[1])
        consumers[key] = consumers.get(key, 0) + 1
    params = dict(arg_params)
    params.update(aux_params)
    banks = {}                     # conv id -> (bn id, mean id)
    for mid in range(len(nodes)):
        found = _matches(nodes, consumers, mid)
        if found:
            banks[found[0]] = (found[1], mid)
    if not banks:
        return symbol, dict(arg_params), dict(aux_params), []

    def value(nid):
        return params[nodes[nid]['name']].asnumpy()

    arg_params, aux_params = dict(arg_params), dict(aux_params)
    dropped = set()                # node ids left out of the new graph
    redirect = {}                  # (old id, output) -> old conv id standing in for it
    replacements = {}              # conv id -> (weight name, bias name)
    folded = []
    for cid, (bid, mid) in banks.items():
        c, b = nodes[cid], nodes[bid]
        ab = _attrs(b)
        names = [nodes[e[0]]['name'] for e in c['inputs'][1:]] + \
                [nodes[e[0]]['name'] for e in b['inputs'][1:]]
        has_bias = not _true(_attrs(c).get('no_bias'))
        weight = value(c['inputs'][1][0])
        bias = value(c['inputs'][2][0]) if has_bias else None
        gamma, beta, mean, var = (value(e[0]) for e in b['inputs'][1:5])
        w, bb = fold_bank(weight, bias, gamma, beta, mean, var, float(ab.get('eps', 1e-3)),
                          fix_gamma=_true(ab.get('fix_gamma'), default=True))
        wname, bname = c['name'] + '_folded_weight', c['name'] + '_folded_bias'
        arg_params[wname], arg_params[bname] = mx.nd.array(w), mx.nd.array(bb)
        replacements[cid] = (wname, bname)
        redirect[(mid, 0)] = cid
        dropped.update((bid, mid))
        for e, name in zip(c['inputs'][1:] + b['inputs'][1:], names):
            if consumers.get((e[0], 0), 0) == 1:      # the parameter is this bank's alone
                dropped.add(e[0])
                arg_params.pop(name, None)
                aux_params.pop(name, None)
        folded.append(c['name'])

    new_nodes, new_id = [], {}

    def emit(node):
        new_nodes.append(node)
        return len(new_nodes) - 1

    def entry(e):
        old = redirect.get((e[0], e[1]), None)
        if old is not None:
            return [new_id[old], 0, 0]
        return [new_id[e[0]], e[1], e[2] if len(e) > 2 else 0]

    for nid, node in enumerate(nodes):
        if nid in dropped:
            continue
        if nid in replacements:
            wname, bname = replacements[nid]
            wid = emit({'op': 'null', 'name': wname, 'inputs': []})
            bid_ = emit({'op': 'null', 'name': bname, 'inputs': []})
            conv = copy.deepcopy(node)
            attrs = dict(_attrs(node))
            attrs.update(num_filter='1', no_bias='False')
            conv.pop('param', None)
            conv['attrs'] = attrs
            conv['inputs'] = [entry(node['inputs'][0]), [wid, 0, 0], [bid_, 0, 0]]
            new_id[nid] = emit(conv)
            continue
        node = copy.deepcopy(node)
        node['inputs'] = [entry(e) for e in node['inputs']]
        new_id[nid] = emit(node)
    return (_symbol(new_nodes, [entry(e) for e in graph['heads']], graph.get('attrs')),
            arg_params, aux_params, folded)


# operators that are affine in their data inputs when their other inputs are constants
# (parameters) and BatchNorm uses its running statistics (inference)
AFFINE_OPS = {'Reshape', 'reshape', 'Flatten', 'flatten', 'Concat', 'concat', 'stack',
              'expand_dims', 'squeeze', 'transpose', 'SwapAxis', 'swapaxes', 'slice_axis',
              'slice', 'Pad', 'pad', 'Convolution', 'BatchNorm', 'mean', 'sum',
              '_mul_scalar', '_div_scalar', '_plus_scalar', '_minus_scalar', 'elemwise_add',
              'elemwise_sub', '_plus', '_minus', 'add_n', 'ElementWiseSum', 'Dropout',
              'identity', '_copy', 'BlockGrad'}
# operators whose presence makes collapsing worth it (reshapes alone are free)
_WORTH = {'Convolution', 'BatchNorm', 'mean', 'sum', 'Pad', 'pad', 'stack', 'transpose'}
# data inputs of the affine operators with parameters (the others are constants)
_DATA_INPUTS = {'Convolution': 1, 'BatchNorm': 1}
MAX_SIGNALS = 16384      # probes per collapsed map (its input width)
_VERSION_ATTRS = json.loads(mx.sym.var('x').tojson())['attrs']   # this MXNet's JSON version


def _affine_subgraph(nodes, consumers, fid):
    """(subgraph node ids, leaf entries) of the affine map feeding FC ``fid``'s data, or
    None when there is nothing worth collapsing or an inner node is used elsewhere."""
    inner, leaves, stack = set(), [], [tuple(nodes[fid]['inputs'][0][:2])]
    while stack:
        nid, out = stack.pop()
        node = nodes[nid]
        attrs = _attrs(node)
        affine = node['op'] in AFFINE_OPS and out == 0 and not (
            node['op'] in ('Pad', 'pad') and (attrs.get('mode', 'constant') != 'constant' or
                                              float(attrs.get('constant_value', 0)) != 0)) \
            and not (node['op'] == 'Dropout' and attrs.get('mode') == 'always')
        if not affine:
            if (nid, out) not in leaves:
                leaves.append((nid, out))
            continue
        if nid in inner:
            continue
        inner.add(nid)
        data = node['inputs'][:_DATA_INPUTS.get(node['op'], len(node['inputs']))]
        for entry in node['inputs'][len(data):]:          # parameters: constants only
            if nodes[entry[0]]['op'] != 'null':
                return None
        stack.extend(tuple(e[:2]) for e in data)
    if not inner & {i for i, n in enumerate(nodes) if n['op'] in _WORTH}:
        return None
    users = {i for i in inner | {fid}}
    for i, node in enumerate(nodes):
        if i not in users and any(e[0] in inner for e in node['inputs']):
            return None
    if any(nodes[l]['op'] == 'null' for l, _ in leaves):    # a graph input: not a unit
        return None
    return inner, leaves


def _measure(nodes, inner, leaves, head, params, leaf_shapes):
    """Float64 (A, c) with ``head``'s flattened value = A . concat(flattened leaves) + c."""
    sub, leaf_id, node_id = [], {}, {}
    for k, leaf in enumerate(leaves):
        leaf_id[leaf] = len(sub)
        sub.append({'op': 'null', 'name': '_leaf%d' % k, 'inputs': []})

    def entry(e):
        key = tuple(e[:2])
        if key in leaf_id:
            return [leaf_id[key], 0, 0]
        if e[0] not in node_id:                     # a parameter of an inner node
            node_id[e[0]] = len(sub)
            sub.append(copy.deepcopy(nodes[e[0]]))
        return [node_id[e[0]], e[1], 0]

    for i in sorted(inner):                         # the JSON lists nodes in graph order
        node = copy.deepcopy(nodes[i])
        node['inputs'] = [entry(e) for e in nodes[i]['inputs']]
        node_id[i] = len(sub)
        sub.append(node)
    symbol = _symbol(sub, [entry(head)], _VERSION_ATTRS)
    sizes = [int(np.prod(shape)) for shape in leaf_shapes]
    total = sum(sizes)
    probes = np.zeros((total + 1, total))
    probes[1:] = np.eye(total)
    feed, start = {}, 0
    for k, (shape, size) in enumerate(zip(leaf_shapes, sizes)):
        feed['_leaf%d' % k] = mx.nd.array(probes[:, start:start + size].reshape(
            (total + 1,) + tuple(shape)), dtype='float64')
        start += size
    # a SymbolBlock (Gluon's cached graph) in float64: plain kernels, no oneDNN subgraph pass
    names = ['_leaf%d' % k for k in range(len(leaves))]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        block = mx.gluon.SymbolBlock(symbol, [mx.sym.var(n) for n in names])
    block.collect_params().load_dict({n: params[n].astype('float64')
                                      for n in block.collect_params() if n in params},
                                     ctx=mx.cpu(), cast_dtype=True, dtype_source='saved')
    out = block(*[feed[n] for n in names]).asnumpy().reshape(total + 1, -1)
    return (out[1:] - out[0]).T, out[0]


def collapse_linear(symbol, arg_params, aux_params, input_shape):
    """Replace every FC layer fed by an affine subgraph worth collapsing (module docstring)
    by one FC over the subgraph's concatenated inputs. ``input_shape`` is the graph input's
    shape (batch 1 is enough). Returns ``(symbol, arg_params, aux_params, collapsed)``, the
    last the names of the FC layers rewritten."""
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    consumers = {}
    for node in nodes:
        for e in node['inputs']:
            consumers[(e[0], e[1])] = consumers.get((e[0], e[1]), 0) + 1
    found = {}
    for fid, node in enumerate(nodes):
        if node['op'] == 'FullyConnected' and _true(_attrs(node).get('flatten'), True):
            sub = _affine_subgraph(nodes, consumers, fid)
            if sub:
                found[fid] = sub
    if not found:
        return symbol, dict(arg_params), dict(aux_params), []
    internals = symbol.get_internals()
    input_name = symbol.list_inputs()[0]
    _, out_shapes, _ = internals.infer_shape_partial(**{input_name: tuple(input_shape)})
    shapes = dict(zip(internals.list_outputs(), out_shapes))

    def entry_shape(nid, out):
        node = nodes[nid]
        names = ['%s_output' % node['name']] if out == 0 else []
        names.append('%s_output%d' % (node['name'], out))
        for name in names:
            if name in shapes:
                return shapes[name]
        raise ValueError('no inferred shape for %s' % node['name'])

    params = dict(arg_params)
    params.update(aux_params)
    arg_params, aux_params = dict(arg_params), dict(aux_params)
    replaced, collapsed, dropped = {}, [], set()
    for fid, (inner, leaves) in found.items():
        leaf_shapes = [entry_shape(*leaf)[1:] for leaf in leaves]
        if sum(int(np.prod(s)) for s in leaf_shapes) > MAX_SIGNALS:
            continue
        fc = nodes[fid]
        a, c = _measure(nodes, inner, leaves, tuple(fc['inputs'][0][:2]), params, leaf_shapes)
        w = params[nodes[fc['inputs'][1][0]]['name']].asnumpy().astype(np.float64)
        bias = np.zeros(w.shape[0]) if _true(_attrs(fc).get('no_bias')) else \
            params[nodes[fc['inputs'][2][0]]['name']].asnumpy().astype(np.float64)
        wname, bname = fc['name'] + '_collapsed_weight', fc['name'] + '_collapsed_bias'
        arg_params[wname] = mx.nd.array(w.dot(a), dtype='float32')
        arg_params[bname] = mx.nd.array(w.dot(c) + bias, dtype='float32')
        replaced[fid] = (leaves, wname, bname)
        collapsed.append(fc['name'])
        dropped |= inner
    # the rewritten graph: the FC's new inputs are Flatten(leaf) ... Concat
    new_nodes, new_id = [], {}

    def emit(node):
        new_nodes.append(node)
        return len(new_nodes) - 1

    def entry(e):
        return [new_id[e[0]], e[1], 0]

    for nid, node in enumerate(nodes):
        if nid in dropped:
            continue
        node = copy.deepcopy(node)
        if nid in replaced:
            leaves, wname, bname = replaced[nid]
            flat = [emit({'op': 'Flatten', 'name': '%s_signals%d' % (node['name'], k),
                          'inputs': [entry(leaf)]}) for k, leaf in enumerate(leaves)]
            data = flat[0] if len(flat) == 1 else emit(
                {'op': 'Concat', 'name': node['name'] + '_signals',
                 'attrs': {'dim': '1', 'num_args': str(len(flat))},
                 'inputs': [[f, 0, 0] for f in flat]})
            wid = emit({'op': 'null', 'name': wname, 'inputs': []})
            bid = emit({'op': 'null', 'name': bname, 'inputs': []})
            attrs = dict(_attrs(node))
            attrs['no_bias'] = 'False'
            node.pop('param', None)
            node['attrs'] = attrs
            node['inputs'] = [[data, 0, 0], [wid, 0, 0], [bid, 0, 0]]
        else:
            node['inputs'] = [entry(e) for e in node['inputs']]
        new_id[nid] = emit(node)
    folded = _symbol(new_nodes, [entry(e) for e in graph['heads']], graph.get('attrs'))
    folded = mx.sym.load_json(folded.tojson())         # drop what became unreachable
    used = set(folded.list_inputs())
    arg_params = {k: v for k, v in arg_params.items() if k in used}
    aux_params = {k: v for k, v in aux_params.items() if k in used}
    return folded, arg_params, aux_params, collapsed


def fold_exported(prefix, epoch=0, out_prefix=None, input_shape=None):
    """Fold the exported ``{prefix}-symbol.json`` / ``{prefix}-{epoch:04d}.params`` and write
    the result to ``out_prefix`` (default: in place): every filter bank into one filter
    (:func:`fold_symbol`), then, given the graph's ``input_shape``, every affine map before
    an FC layer into that layer (:func:`collapse_linear`). Returns the names of the folded
    convolutions and of the rewritten FC layers."""
    symbol, arg_params, aux_params = mx.model.load_checkpoint(prefix, epoch)
    symbol, arg_params, aux_params, folded = fold_symbol(symbol, arg_params, aux_params)
    collapsed = []
    if input_shape is not None:
        symbol, arg_params, aux_params, collapsed = collapse_linear(
            symbol, arg_params, aux_params, input_shape)
    out_prefix = out_prefix or prefix
    symbol.save('%s-symbol.json' % out_prefix)
    saved = {'arg:' + k: v for k, v in arg_params.items()}
    saved.update(('aux:' + k, v) for k, v in aux_params.items())
    mx.nd.save('%s-%04d.params' % (out_prefix, epoch), saved)
    log.info('folded %d filter bank(s) into one filter each%s', len(folded),
             ', %d affine map(s) into the FC layer after them' % len(collapsed)
             if input_shape is not None else '')
    return folded + collapsed
