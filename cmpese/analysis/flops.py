"""FLOPs (multiply-adds) of any hybridizable Gluon model or MXNet symbol, counted on the symbol
graph with shape inference; nothing is run.

    from cmpese.analysis.flops import count_flops, format_flops
    count = count_flops(cmpese.get_model('wrn28_10', classes=100), (1, 3, 32, 32))
    format_flops(count.total), count.by_category, count.layers[:3]

One multiply-accumulate counts as one FLOP, as in the Inner-Imaging paper's Table IV (its
ResNet-110 and WRN-28-10 figures are exactly the multiply-adds of their convolutions and
classifier). docs/flops.md has the rules, the table and the arithmetic. The command line
(``python -m cmpese.tools.flops``, ``cmpese-flops``) is :mod:`cmpese.cli.flops`.
"""
import collections
import json

import mxnet as mx
import numpy as np

from ..papers import printed_flops

__all__ = ['count_flops', 'FlopCount', 'format_flops', 'MAC_CATEGORIES', 'CHEAP_CATEGORIES',
           'TABLE_IV_FLOPS', 'paper_table', 'format_paper_table']

# ---------------------------------------------------------------------------------------------
# Operator classes. Every operator of the graph falls in exactly one category.
# ---------------------------------------------------------------------------------------------
MAC_CATEGORIES = ('conv', 'fc', 'matmul')
CHEAP_CATEGORIES = ('pool', 'norm', 'act', 'elemwise', 'reduce', 'other')
ALL_CATEGORIES = MAC_CATEGORIES + CHEAP_CATEGORIES + ('free',)

_CONV = {'Convolution', 'Convolution_v1'}
_DECONV = {'Deconvolution'}
_FC = {'FullyConnected'}
_MATMUL = {'dot', 'batch_dot'}
_POOL = {'Pooling', 'Pooling_v1'}
_ADAPTIVE_POOL = {'_contrib_AdaptiveAvgPooling2D'}
_NORM = {'BatchNorm', 'BatchNorm_v1', '_contrib_SyncBatchNorm', 'SyncBatchNorm', 'LayerNorm',
         'InstanceNorm', 'GroupNorm', 'L2Normalization', 'LRN'}
_ACT = {'Activation', 'relu', 'sigmoid', 'tanh', 'softrelu', 'softsign', 'LeakyReLU',
        'hard_sigmoid', 'softmax', 'log_softmax', 'softmin', 'SoftmaxActivation',
        'SoftmaxOutput', 'Softmax', 'erf', 'exp', 'log', 'sqrt', 'rsqrt', 'square', 'abs',
        'clip', 'reciprocal', 'negative', 'sign', 'relu6', 'gelu'}
_ELEMWISE = {'elemwise_add', 'elemwise_sub', 'elemwise_mul', 'elemwise_div',
             '_plus', '_minus', '_mul', '_div', '_Plus', '_Minus', '_Mul', '_Div', '_mod',
             '_power', '_Power', '_maximum', '_minimum', '_Maximum', '_Minimum', '_hypot',
             '_plus_scalar', '_minus_scalar', '_rminus_scalar', '_mul_scalar', '_div_scalar',
             '_rdiv_scalar', '_power_scalar', '_rpower_scalar', '_maximum_scalar',
             '_minimum_scalar', '_mod_scalar', '_rmod_scalar', '_PlusScalar', '_MinusScalar',
             '_RMinusScalar', '_MulScalar', '_DivScalar', '_RDivScalar',
             'broadcast_add', 'broadcast_sub', 'broadcast_mul', 'broadcast_div',
             'broadcast_plus', 'broadcast_minus', 'broadcast_maximum', 'broadcast_minimum',
             'broadcast_power', 'broadcast_mod', 'broadcast_hypot', 'where'}
_ADD_N = {'add_n', 'ElementWiseSum', '_contrib_add_n'}
_REDUCE = {'sum', 'mean', 'max', 'min', 'prod', 'nansum', 'nanprod', 'norm', 'sum_axis',
           'max_axis', 'min_axis'}
# Data movement and inference-time identities: no arithmetic.
_FREE = {'null', 'Flatten', 'flatten', 'Reshape', 'reshape', 'reshape_like', 'transpose',
         'Concat', 'concat', 'stack', 'slice', 'slice_axis', 'slice_like', 'crop', 'Crop',
         'SliceChannel', 'split', '_split_v2', 'Dropout', 'identity', '_copy', 'BlockGrad',
         'stop_gradient', 'make_loss', 'MakeLoss', 'expand_dims', 'squeeze', 'SwapAxis',
         'swapaxes', 'Pad', 'pad', 'tile', 'repeat', 'broadcast_to', 'broadcast_like',
         'broadcast_axis', 'broadcast_axes', 'Cast', 'cast', 'amp_cast', 'zeros_like',
         'ones_like', '_zeros', '_ones', '_full', '_arange', 'take', 'pick', 'gather_nd',
         'one_hot', 'shape_array', 'size_array', 'reverse', 'flip', 'depth_to_space',
         'space_to_depth', 'UpSampling', '_identity_with_attr_like_rhs', 'argmax', 'argmin',
         'topk', 'sort', 'argsort'}

FlopCount = collections.namedtuple('FlopCount', [
    'total',        # what ``include`` selects (default: the multiply-adds)
    'macs',         # multiply-adds of conv / deconv / FC / dot / batch_dot, biases included
    'other',        # FLOPs of every cheaper operator (pool, norm, act, elemwise, reduce, other)
    'by_op',        # {operator type: FLOPs}, every operator type of the graph
    'by_category',  # {category: FLOPs} over ALL_CATEGORIES
    'included',     # the categories summed into ``total``
    'layers',       # [(node name, op, category, FLOPs, output shape)], graph order
    'params',       # parameters (trainable ones for a Gluon block; all arguments but inputs)
    'input_shapes',  # {input name: shape}
    'unknown_ops',  # operator types not classified here, counted as 'other'
])


def _contracted_length(op, attrs, in_shapes):
    """The summed-over length of a dot or batch_dot. transpose_a swaps the last two axes of
    a batch_dot's lhs and reverses all axes of a dot's."""
    a = in_shapes[0]
    if not _flag(attrs, 'transpose_a'):
        return int(a[-1])
    return int(a[-2] if op == 'batch_dot' else a[0])


def _category(op):
    if op in _CONV or op in _DECONV:
        return 'conv'
    if op in _FC:
        return 'fc'
    if op in _MATMUL:
        return 'matmul'
    if op in _POOL or op in _ADAPTIVE_POOL:
        return 'pool'
    if op in _NORM:
        return 'norm'
    if op in _ACT:
        return 'act'
    if op in _ELEMWISE or op in _ADD_N:
        return 'elemwise'
    if op in _REDUCE:
        return 'reduce'
    if op in _FREE or op.startswith('_backward'):
        return 'free'
    return 'other'


def _flag(attrs, key, default=False):
    value = attrs.get(key)
    if value is None:
        return default
    return str(value).strip().lower() in ('true', '1')


def _tuple(attrs, key):
    value = attrs.get(key)
    if value is None or str(value).strip() in ('', '()', 'None'):
        return ()
    return tuple(int(v) for v in str(value).strip('()[] ').split(',') if v.strip())


def _numel(shape):
    return int(np.prod(shape, dtype=np.int64)) if shape is not None else 0


def _node_flops(op, attrs, in_shapes, out_shape):
    """FLOPs of one operator node. ``in_shapes`` are the shapes of its inputs in order."""
    out = _numel(out_shape)
    if op in _CONV:
        # weight (O, I/groups, *kernel): every output element is a dot product of length
        # I/groups * prod(kernel); + one add per output element for the bias.
        weight = in_shapes[1]
        flops = out * _numel(weight[1:])
        if not _flag(attrs, 'no_bias'):
            flops += out
        return flops
    if op in _DECONV:
        # weight (I, O/groups, *kernel): every input element is scattered into
        # O/groups * prod(kernel) outputs with one multiply-add each; + bias per output.
        weight = in_shapes[1]
        flops = _numel(in_shapes[0]) * _numel(weight[1:])
        if not _flag(attrs, 'no_bias', default=True):
            flops += out
        return flops
    if op in _FC:
        weight = in_shapes[1]           # (num_hidden, in_units)
        flops = out * int(weight[1])
        if not _flag(attrs, 'no_bias'):
            flops += out
        return flops
    if op in _MATMUL:
        return out * _contracted_length(op, attrs, in_shapes)
    if op in _POOL:
        if _flag(attrs, 'global_pool'):
            window = _numel(in_shapes[0][2:])
        else:
            window = _numel(_tuple(attrs, 'kernel'))
        return out * window
    if op in _ADAPTIVE_POOL:
        return _numel(in_shapes[0])
    if op in _ADD_N:
        return out * max(len(in_shapes) - 1, 1)
    if op in _REDUCE:
        return _numel(in_shapes[0])
    if _category(op) == 'free':
        return 0
    return out     # norm, act, elemwise and unknown operators: one FLOP per output element


def _as_symbol(net_or_symbol, input_name):
    if isinstance(net_or_symbol, mx.sym.Symbol):
        return net_or_symbol, None
    if isinstance(net_or_symbol, mx.gluon.HybridBlock):
        # the units' reference operators (global average Pooling, broadcast_mul, mean): what
        # the equations compute, whichever faster operators training traces (units/ops.py)
        from ..units import ops
        with ops.using('reference'):
            out = net_or_symbol(mx.sym.var(input_name))
        if isinstance(out, (list, tuple)):
            out = mx.sym.Group(list(out))
        return out, net_or_symbol
    raise TypeError('count_flops needs an mx.sym.Symbol or a gluon HybridBlock (its graph is '
                    'what is counted), got %s' % type(net_or_symbol).__name__)


def _resolve_include(include):
    if include in (None, 'macs'):
        return MAC_CATEGORIES
    if include == 'all':
        return MAC_CATEGORIES + CHEAP_CATEGORIES
    if isinstance(include, str):
        include = (include,)
    include = tuple(include)
    bad = [c for c in include if c not in ALL_CATEGORIES]
    if bad:
        raise ValueError('unknown FLOP categories %s; choose from %s, or "macs" / "all"'
                         % (bad, ', '.join(ALL_CATEGORIES)))
    return include


def count_flops(net_or_symbol, input_shape=(1, 3, 32, 32), include='macs', input_name='data'):
    """Count the FLOPs of a model on its symbol graph (shape inference only, nothing runs).

    Parameters
    ----------
    net_or_symbol : gluon.HybridBlock or mx.sym.Symbol
        A block is called on ``mx.sym.var(input_name)`` to get its graph (it need not be
        initialized or hybridized), with the units' reference operators
        (:mod:`cmpese.units.ops`): their squeeze is a global average Pooling, their rescale a
        broadcast_mul, their eps-map average a mean, counted as such.
    input_shape : tuple or dict
        Shape of the input (batch included), or ``{input name: shape}`` for several inputs.
    include : 'macs', 'all' or iterable of categories
        What ``total`` sums. 'macs' (default) = ``('conv', 'fc', 'matmul')``;
        'all' adds ``('pool', 'norm', 'act', 'elemwise', 'reduce', 'other')``.
    input_name : str
        Name of the input variable when ``input_shape`` is a tuple.

    What is counted (one multiply-accumulate = 1 FLOP):

    * ``conv`` -- Convolution: output elements x prod(kernel) x in_channels / groups, plus one
      per output element when it has a bias. Deconvolution: input elements x prod(kernel) x
      out_channels / groups, plus the bias likewise.
    * ``fc`` -- FullyConnected: output elements x in_units, plus one per output for the bias.
    * ``matmul`` -- dot / batch_dot: output elements x the contracted length.
    * ``pool`` -- Pooling (max or average): output elements x window size (global pooling:
      the input's spatial size); adaptive average pooling: input elements.
    * ``norm`` (BatchNorm, LayerNorm, ...), ``act`` (Activation, relu, sigmoid, softmax,
      ...), ``elemwise`` (elemwise_*, broadcast_*, scalar arithmetic; add_n: inputs - 1):
      one FLOP per output element.
    * ``reduce`` -- sum / mean / max / norm ...: one FLOP per input element.
    * ``other`` -- operators this module does not know: one FLOP per output element, and
      their types are listed in ``unknown_ops``.
    * ``free`` -- reshapes, concatenation, slicing, Dropout (identity at inference),
      Flatten, Pad, casts...: 0.

    Returns
    -------
    FlopCount
        ``total`` (the categories of ``include``), ``macs`` (conv + fc + matmul), ``other``
        (every cheap category), ``by_op``, ``by_category``, ``layers`` (per node),
        ``params``, ``input_shapes``, ``unknown_ops``.
    """
    included = _resolve_include(include)
    if isinstance(input_shape, dict):
        input_shapes = {k: tuple(v) for k, v in input_shape.items()}
        input_name = next(iter(input_shapes)) if len(input_shapes) == 1 else input_name
    else:
        input_shapes = {input_name: tuple(input_shape)}
    sym, block = _as_symbol(net_or_symbol, input_name)
    missing = [k for k in input_shapes if k not in sym.list_arguments()]
    if missing:
        raise ValueError('the graph has no input named %s; its arguments are %s...'
                         % (missing, sym.list_arguments()[:5]))

    internals = sym.get_internals()
    arg_shapes, out_shapes, _ = internals.infer_shape_partial(**input_shapes)
    shapes = dict(zip(internals.list_outputs(), out_shapes))
    shapes.update(zip(internals.list_arguments(), arg_shapes))
    nodes = json.loads(sym.tojson())['nodes']

    def entry_shape(nid, index):
        node = nodes[nid]
        if node['op'] == 'null':
            return shapes.get(node['name'])
        for key in ('%s_output' % node['name'] if index == 0 else None,
                    '%s_output%d' % (node['name'], index)):
            if key is not None and key in shapes:
                return shapes[key]
        return None

    by_op = collections.OrderedDict()
    by_category = collections.OrderedDict((c, 0) for c in ALL_CATEGORIES)
    layers, unknown = [], []
    for nid, node in enumerate(nodes):
        op = node['op']
        if op == 'null':
            continue
        attrs = node.get('attrs', node.get('param', node.get('attr', {}))) or {}
        in_shapes = [entry_shape(i[0], i[1]) for i in node['inputs']]
        out_shape = entry_shape(nid, 0)
        category = _category(op)
        needed = in_shapes + [out_shape] if category != 'free' else []
        if any(s is None or len(s) == 0 or 0 in s for s in needed):   # () = not inferred
            raise ValueError('cannot infer the shapes around %s node %r from input shapes %s'
                             % (op, node['name'], input_shapes))
        flops = _node_flops(op, attrs, in_shapes, out_shape)
        if category == 'other' and op not in unknown:
            unknown.append(op)
        by_op[op] = by_op.get(op, 0) + flops
        by_category[category] += flops
        layers.append((node['name'], op, category, flops, out_shape))

    arg_shape = dict(zip(sym.list_arguments(), arg_shapes))
    if block is not None:
        names = [n for n, p in block.collect_params().items() if p.grad_req != 'null']
    else:
        names = [n for n in sym.list_arguments() if n not in input_shapes]
    params = int(sum(_numel(arg_shape[n]) for n in names if n in arg_shape))

    macs = sum(by_category[c] for c in MAC_CATEGORIES)
    other = sum(by_category[c] for c in CHEAP_CATEGORIES)
    total = sum(by_category[c] for c in included)
    return FlopCount(total, macs, other, dict(by_op), dict(by_category), included, layers,
                     params, input_shapes, unknown)


def format_flops(n):
    """253155684 -> '253.2M', 5243386368 -> '5.243G' (the precision Table IV prints)."""
    n = float(n)
    if abs(n) >= 1e9:
        return '%.3fG' % (n / 1e9)
    if abs(n) >= 1e6:
        return '%.1fM' % (n / 1e6)
    if abs(n) >= 1e3:
        return '%.1fK' % (n / 1e3)
    return '%d' % n


# ---------------------------------------------------------------------------------------------
# Table IV comparison
# ---------------------------------------------------------------------------------------------
def _table_iv_models():
    """(Table IV row, label of our model, builder(classes)) for the rows we compare."""
    from ..model_zoo import get_model
    from ..models import get_preresnet
    return [
        ('original ResNet-110', 'resnet110_cifar',
         lambda c: get_model('resnet110_cifar', classes=c)),
        ('pre-act ResNet-164', 'preresnet164',
         lambda c: get_model('preresnet164', classes=c)),
        ('pre-act ResNet-164', 'get_preresnet(164, bottleneck=False)',
         lambda c: get_preresnet(164, bottleneck=False, classes=c)),
        ('Wide ResNet-28-10', 'wrn28_10', lambda c: get_model('wrn28_10', classes=c)),
    ] + [
        ('InI-ResNet-164-%s' % g.replace('_', '-'), label, build)
        for g in ('simple_3', 'square_3')
        for label, build in (
            ('ini_preresnet164_%s' % g,
             lambda c, g=g: get_model('ini_preresnet164_%s' % g, classes=c)),
            ("get_preresnet(164, bottleneck=False, unit='ini_%s')" % g,
             lambda c, g=g: get_preresnet(164, bottleneck=False, unit='ini_' + g, classes=c)))
    ] + [
        ('InI-WRN-28-10-%s' % g.replace('_', '-'), 'ini_wrn28_10_%s' % g,
         lambda c, g=g: get_model('ini_wrn28_10_%s' % g, classes=c))
        for g in ('simple_3', 'square_3', 'mix_5', 'mix_5_d')
    ]


# Inner-Imaging paper (Hu, Wen et al.), Table IV, "FLOPs" column (recorded on CIFAR-100), of
# the rows compared above: {row label: FLOPs}, read from cmpese/papers/rows.csv.
TABLE_IV_FLOPS = printed_flops('ini-4', [row for row, _, _ in _table_iv_models()])


def paper_table(classes=100, input_size=32):
    """Rows (Table IV row, our model, paper FLOPs, our MACs, params, relative difference)."""
    rows = []
    for row, label, build in _table_iv_models():
        result = count_flops(build(classes), (1, 3, input_size, input_size))
        paper = TABLE_IV_FLOPS[row]
        rows.append((row, label, paper, result.total, result.params, result.total / paper - 1))
    return rows


def format_paper_table(rows):
    out = ['| Table IV row | our model | paper FLOPs | our MACs | difference | within 2% |',
           '|---|---|---|---|---|---|']
    for row, label, paper, ours, _, diff in rows:
        out.append('| %s | `%s` | %s | %s (%s) | %+.2f%% | %s |' % (
            row, label, format_flops(paper), format_flops(ours), format(ours, ','), 100 * diff,
            'yes' if abs(diff) <= 0.02 else 'no'))
    return '\n'.join(out)
