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
:mod:`cmpese.units.ops` (``mean`` for the average), which :func:`cmpese.tools.export.export_model`
traces by default. Nothing else in the graph changes.

    python -m cmpese.tools.export --model ini_wrn16_8_mix_5_d --prefix out/m --fold
"""
import copy
import json
import logging

import mxnet as mx
import numpy as np

__all__ = ['fold_symbol', 'fold_exported', 'fold_bank']

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
    out = {'nodes': new_nodes,
           'arg_nodes': [i for i, n in enumerate(new_nodes) if n['op'] == 'null'],
           'heads': [entry(e) for e in graph['heads']]}
    if 'attrs' in graph:
        out['attrs'] = graph['attrs']
    return mx.sym.load_json(json.dumps(out)), arg_params, aux_params, folded


def fold_exported(prefix, epoch=0, out_prefix=None):
    """Fold the exported ``{prefix}-symbol.json`` / ``{prefix}-{epoch:04d}.params`` and write
    the result to ``out_prefix`` (default: in place). Returns the folded convolutions' names."""
    symbol, arg_params, aux_params = mx.model.load_checkpoint(prefix, epoch)
    symbol, arg_params, aux_params, folded = fold_symbol(symbol, arg_params, aux_params)
    out_prefix = out_prefix or prefix
    symbol.save('%s-symbol.json' % out_prefix)
    saved = {'arg:' + k: v for k, v in arg_params.items()}
    saved.update(('aux:' + k, v) for k, v in aux_params.items())
    mx.nd.save('%s-%04d.params' % (out_prefix, epoch), saved)
    log.info('folded %d filter bank(s)', len(folded))
    return folded
