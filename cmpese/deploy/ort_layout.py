"""onnxruntime: keep the units' rescale in the blocked NCHWc layout. The one deployment trick.

onnxruntime's CPU optimizer (``ORT_ENABLE_ALL``) runs convolutions in a blocked channel
layout (NCHWc, blocks of 8 or 16 channels by the CPU's vector width) and fuses a plain
ResNet's residual addition and ReLU into the convolution. Its NCHWc pass takes a ``Mul`` only
when both inputs have the same shape, so the units' rescale ``x * s`` (s: N x C x 1 x 1, CMPE-SE
eq. 4) drops back to NCHW: every unit gets reorders of its residual and identity out of the
blocked layout, an unfused Mul, Add and Relu on plain layout, and a reorder back in
(``benchmarks/probe_ort_layout.py --profile`` shows them; docs/benchmarks.md).

:func:`layout_session` removes them in two steps, for one batch size:

1. :func:`spread_gates`, a rewrite of the standard ONNX graph: the excitation's ``Gemm`` s on
   the pooled N x C x 1 x 1 map become 1x1 ``Conv`` s (they stay blocked), and the gate is
   spread to the full map by a nearest ``Resize`` before the ``Mul``, with the batch fixed so
   that onnxruntime can prove the two shapes equal. The whole network then stays blocked;
   the values are those of the original graph (a copy per pixel, the same products).
2. :func:`blocked_mul`, on onnxruntime's own optimized graph of step 1: each ``Upsample`` +
   ``Mul`` pair becomes one broadcasting ``Mul`` on 5-D views of the blocked tensors, x as
   (N, C/b, H, W, b) times the gate as (N, C/b, 1, 1, b), b the block size: the spread map is
   never written.

The optimized graph of step 2 holds onnxruntime's internal NCHWc operators, so it is valid
only for this onnxruntime on this CPU: it is made at load time, in memory, and checked
against the ordinary session on a random batch (relative difference at most ``1e-4``); the
block size is found that way (16, then 8). If a step does not apply or the check fails, the
caller keeps the ordinary session. ``cmpese.deploy.Predictor`` uses it per batch size
(``layout=True``, the default); ``tests/test_deploy.py`` checks the values on every unit.
"""
import logging
import os
import tempfile

import numpy as np

__all__ = ['spread_gates', 'blocked_mul', 'layout_session']

log = logging.getLogger(__name__)

NCHWC = 'com.microsoft.nchwc'
BLOCK_SIZES = (16, 8)       # MLAS's NCHWc block: 16 floats with AVX-512, 8 with AVX2
TOLERANCE = 1e-4


def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _dead_code(graph):
    """Drop the nodes and initializers no graph output needs."""
    needed, kept = {o.name for o in graph.output}, []
    for node in reversed(list(graph.node)):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    live = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)


def spread_gates(model, batch, spread_map=True):
    """Step 1 (a standard ONNX graph in, a standard ONNX graph out): returns (model, number of
    rescales spread). The model's batch axis is fixed to ``batch``. ``spread_map=False``
    (for ``benchmarks/probe_ort_layout.py``) only turns the excitation into 1x1 convolutions
    and multiplies by the N x C x 1 x 1 gate, batch left as it is."""
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    if spread_map:
        dim = g.input[0].type.tensor_type.shape.dim[0]
        dim.ClearField('dim_param')
        dim.dim_value = batch
    inferred = onnx.shape_inference.infer_shapes(m).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.value_info) + list(inferred.input) + list(inferred.output)}
    inits = {i.name: i for i in g.initializer}
    twin = {n.output[0]: n.output[0] for n in g.node if n.op_type == 'GlobalAveragePool'}
    gates, nodes, spread = {}, [], 0

    def add_twin(node, op, inputs, **attrs):    # the 4-D node, and Flatten for 2-D users
        out = node.output[0] + '_nchw'
        nodes.append(helper.make_node(op, inputs, [out], name=node.name + '_nchw', **attrs))
        nodes.append(helper.make_node('Flatten', [out], [node.output[0]], axis=1,
                                      name=node.name))
        twin[node.output[0]] = out

    for node in g.node:
        op, ins = node.op_type, list(node.input)
        if node.domain not in ('', 'ai.onnx'):
            nodes.append(node)
        elif op == 'Flatten' and ins[0] in twin and _attrs(node).get('axis', 1) == 1:
            twin[node.output[0]] = twin[ins[0]]
            nodes.append(node)
        elif op == 'Gemm' and ins[0] in twin and ins[1] in inits and \
                (len(ins) < 3 or ins[2] in inits):
            a = _attrs(node)
            if a.get('transA', 0) or a.get('alpha', 1.0) != 1.0 or a.get('beta', 1.0) != 1.0:
                nodes.append(node)
                continue
            w = numpy_helper.to_array(inits[ins[1]])
            w = w if a.get('transB', 0) else w.T
            name = node.output[0] + '_1x1_weight'
            g.initializer.append(numpy_helper.from_array(
                np.ascontiguousarray(w).reshape(w.shape + (1, 1)), name))
            bias = []
            if len(ins) > 2 and ins[2]:
                b = numpy_helper.to_array(inits[ins[2]]).reshape(-1)
                b = np.broadcast_to(b, (w.shape[0],)) if b.size == 1 else b
                bias = [node.output[0] + '_1x1_bias']
                g.initializer.append(numpy_helper.from_array(
                    np.ascontiguousarray(b, dtype=w.dtype), bias[0]))
            add_twin(node, 'Conv', [twin[ins[0]], name] + bias, kernel_shape=[1, 1])
        elif op in ('Relu', 'Sigmoid') and ins[0] in twin:
            add_twin(node, op, [twin[ins[0]]])
        elif op == 'Concat' and _attrs(node).get('axis') == 1 and all(i in twin for i in ins):
            add_twin(node, op, [twin[i] for i in ins], axis=1)      # CMPE-SE's joint squeeze
        elif op in ('Reshape', 'Unsqueeze') and ins[0] in twin and \
                len(shapes.get(node.output[0], ())) == 4 and \
                shapes[node.output[0]][2:] == [1, 1]:
            gates[node.output[0]] = twin[ins[0]]
            nodes.append(node)
        elif op == 'Mul' and len(ins) == 2 and (ins[0] in gates) != (ins[1] in gates):
            x, gate = (ins[1], ins[0]) if ins[0] in gates else (ins[0], ins[1])
            if not spread_map:
                nodes.append(helper.make_node('Mul', [x, gates[gate]], list(node.output),
                                              name=node.name))
                spread += 1
                continue
            hw = shapes.get(x, [])[2:]
            if len(hw) != 2 or not all(hw):
                nodes.append(node)
                continue
            scales = 'spread_scales_%dx%d' % tuple(hw)
            if scales not in inits:
                inits[scales] = numpy_helper.from_array(
                    np.array([1, 1] + hw, dtype=np.float32), scales)
                g.initializer.append(inits[scales])
            full = node.output[0] + '_gate_map'
            nodes.append(helper.make_node(
                'Resize', [gates[gate], '', scales], [full], name=node.name + '_spread',
                mode='nearest', nearest_mode='floor', coordinate_transformation_mode='asymmetric'))
            nodes.append(helper.make_node('Mul', [x, full], list(node.output), name=node.name))
            spread += 1
        else:
            nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    _dead_code(g)
    del g.value_info[:]
    onnx.checker.check_model(m)
    return m, spread


def blocked_mul(model, block):
    """Step 2, on onnxruntime's optimized graph of a :func:`spread_gates` model: returns
    (model, number of ``Upsample`` + ``Mul`` pairs made one 5-D broadcasting ``Mul``)."""
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    producer = {o: n for n in g.node for o in n.output}
    users = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    spreads = {n.output[0]: n.input[0] for n in g.node
               if n.op_type == 'Upsample' and n.domain == NCHWC and
               all(u.op_type == 'Mul' for u in users.get(n.output[0], ()))}
    shapes = {'x': [0, -1, 0, 0, block], 'gate': [0, -1, 1, 1, block], 'back': [0, -1, 0, 0]}
    names = {}
    for key, value in shapes.items():
        names[key] = 'blocked_mul_%s_%d' % (key, block)
        g.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.int64),
                                                     names[key]))
    nodes, done = [], 0
    for n in g.node:
        if n.output[0] in spreads:
            continue
        if n.op_type == 'Mul' and n.domain in ('', 'ai.onnx') and \
                any(i in spreads for i in n.input):
            x, full = (n.input[1], n.input[0]) if n.input[0] in spreads else n.input
            if full not in spreads or x not in producer or producer[x].domain != NCHWC or \
                    producer[x].op_type.startswith('Reorder'):
                return m, 0     # a layout this pass does not know: leave the graph alone
            tag = n.output[0]
            nodes += [helper.make_node('Reshape', [x, names['x']], [tag + '_x5']),
                      helper.make_node('Reshape', [spreads[full], names['gate']], [tag + '_g5']),
                      helper.make_node('Mul', [tag + '_x5', tag + '_g5'], [tag + '_y5']),
                      helper.make_node('Reshape', [tag + '_y5', names['back']], list(n.output))]
            done += 1
            continue
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    _dead_code(g)
    return m, done


def _options(threads, level):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
    return options


def layout_session(onnx_file, batch, reference, input_shape, threads=None):
    """An onnxruntime session of ``onnx_file`` for batches of ``batch`` with the units'
    rescale in the blocked layout, checked against ``reference`` (the ordinary session) on a
    random batch of ``input_shape`` (C, H, W); None when the model has no unit rescale the
    passes can take or the check fails. Returns (session, description)."""
    import onnx
    import onnxruntime as ort
    level = ort.GraphOptimizationLevel
    model, spread = spread_gates(onnx.load(onnx_file), batch)
    if not spread:
        return None, 'no unit rescale to keep blocked'
    x = np.random.RandomState(0).uniform(-1, 1, (batch,) + tuple(input_shape)).astype(
        np.float32)
    name = reference.get_inputs()[0].name
    want = reference.run(None, {name: x})[0]
    scale = max(float(np.abs(want).max()), 1e-12)

    def agrees(session):
        got = session.run(None, {name: x})[0]
        return got.shape == want.shape and float(np.abs(got - want).max()) / scale <= TOLERANCE

    with tempfile.TemporaryDirectory(prefix='cmpese-ort-layout-') as tmp:
        spread_file = os.path.join(tmp, 'spread.onnx')
        optimized_file = os.path.join(tmp, 'spread.ort.onnx')
        onnx.save(model, spread_file)
        options = _options(threads, level.ORT_ENABLE_ALL)
        options.optimized_model_filepath = optimized_file
        spread_session = ort.InferenceSession(spread_file, options,
                                              providers=['CPUExecutionProvider'])
        optimized = onnx.load(optimized_file)
        for block in BLOCK_SIZES:
            patched, done = blocked_mul(optimized, block)
            if not done:
                break
            try:
                session = ort.InferenceSession(patched.SerializeToString(),
                                               _options(threads, level.ORT_DISABLE_ALL),
                                               providers=['CPUExecutionProvider'])
            except Exception as err:  # onnxruntime refused the patched graph
                log.debug('blocked Mul with block %d refused: %s', block, err)
                continue
            if agrees(session):
                return session, '%d rescales blocked (block %d)' % (done, block)
        if agrees(spread_session):
            return spread_session, '%d rescales spread' % spread
    return None, 'the blocked graphs did not match the ordinary session'
