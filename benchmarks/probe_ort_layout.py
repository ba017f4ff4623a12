#!/usr/bin/env python
"""Does onnxruntime's NCHWc layout explain the SE unit's deployed cost? A probe, not a tool.

onnxruntime (``ORT_ENABLE_ALL``) runs convolutions in a blocked channel layout (NCHWc) and
fuses a plain ResNet's residual addition and ReLU into the convolution. Its NCHWc pass takes a
``Mul`` only when both inputs have the same shape, so the SE rescale ``x * s`` (s of shape
N x C x 1 x 1) drops back to NCHW: each SE block gets reorders of its residual and identity,
an unfused Mul, Add and Relu, and a reorder back. This script exports ResNet-50 and
SE-ResNet-50 (folded, as the predictor runs them) and times, side by side in interleaved
rounds, four onnxruntime graphs of the SE model:

* ``as exported``: what ``cmpese.deploy.export`` writes (``GlobalAveragePool`` -> ``Gemm``s ->
  ``Reshape`` -> ``Mul``);
* ``fc as conv``: the excitation's ``Gemm``s on the pooled N x C x 1 x 1 map as 1x1 ``Conv``s
  (they stay in NCHWc; the Mul still broadcasts);
* ``all nchwc``: also the gate spread to the full map by a nearest ``Resize`` (NCHWc has one)
  and a fixed batch, so that the Mul has equal shapes: no reorder is left in the graph;
* ``blocked``: what the predictor runs, ``cmpese.deploy.ort_layout.layout_session``: the
  ``all nchwc`` graph optimized, then each Upsample + Mul one broadcasting Mul on 5-D views
  of the blocked tensors.

The second and third are made by ``ort_layout.spread_gates``.

It prints the op counts of onnxruntime's optimized graph and ms per batch with the ratio to the
plain ResNet-50. All give the same outputs (checked). Results: docs/benchmarks.md.

    python benchmarks/probe_ort_layout.py --batch 1 --env OMP_NUM_THREADS=2
    python benchmarks/probe_ort_layout.py --plain preresnet164 --se se_preresnet164 \
        --size 32 --classes 10 --batch 32
"""
import argparse
import collections
import os
import sys
import tempfile

import harness

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, _ROOT)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--plain', default='resnet50', help='the plain model (resnet50)')
    p.add_argument('--se', default='se_resnet50', help='its SE model (se_resnet50)')
    p.add_argument('--size', type=int, default=224, help='input size (224)')
    p.add_argument('--classes', type=int, default=1000)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--min-time', type=float, default=1.0, help='seconds per timing (1.0)')
    p.add_argument('--threads', type=int, default=2, help='onnxruntime intra-op threads (2)')
    p.add_argument('--profile', action='store_true',
                   help="also print onnxruntime's own per-operator kernel time of each graph")
    p.add_argument('--env', action='append', default=[], metavar='KEY=VALUE')
    return p.parse_args(argv)


def kernel_times(path, x, threads, runs=20):
    """{op type: (ms per run, calls per run)} from onnxruntime's profiler."""
    import json
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    sess.run(None, {'data': x})
    for _ in range(runs):
        sess.run(None, {'data': x})
    with open(sess.end_profiling()) as f:
        events = [e for e in json.load(f) if e.get('cat') == 'Node'
                  and e['name'].endswith('_kernel_time')]
    total, calls = collections.Counter(), collections.Counter()
    for e in events:
        total[e['args']['op_name']] += e['dur']
        calls[e['args']['op_name']] += 1
    return {op: (us / (runs + 1) / 1e3, calls[op] // (runs + 1)) for op, us in total.items()}


def main(argv=None):
    args = parse_args(argv)
    harness.apply_env(args.env)
    import numpy as np
    import mxnet as mx
    import onnx
    import onnxruntime as ort
    from cmpese.model_zoo import get_model
    from cmpese.deploy import ort_layout

    tmp = tempfile.mkdtemp(prefix='probe_ort_')
    files = {}
    shape = (1, 3, args.size, args.size)
    for name in (args.plain, args.se):
        mx.random.seed(0)
        net = get_model(name, classes=args.classes)
        net.initialize(mx.init.Xavier())
        net(mx.nd.zeros(shape))
        files[name] = harness.export_pair(net, os.path.join(tmp, name), shape, fold=True)[2]
    files['plain'] = files.pop(args.plain)
    se = onnx.load(files[args.se])
    for label, spread in (('fc as conv', False), ('all nchwc', True)):
        files[label] = os.path.join(tmp, label.replace(' ', '_') + '.onnx')
        onnx.save(ort_layout.spread_gates(se, args.batch, spread_map=spread)[0], files[label])
    files['as exported'] = files.pop(args.se)

    x = np.random.RandomState(0).rand(args.batch, 3, args.size, args.size).astype('float32')
    sessions, outputs = {}, {}
    for label, path in files.items():
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = path + '.opt'
        so.log_severity_level = 3
        sessions[label] = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
        outputs[label] = sessions[label].run(None, {'data': x})[0]
        ops = collections.Counter(n.op_type for n in onnx.load(path + '.opt').graph.node)
        print('%-12s optimized graph: %s' % (label, ', '.join(
            '%s %d' % kv for kv in sorted(ops.items(), key=lambda kv: -kv[1]))))
    # the predictor's session: steps 1 and 2 of cmpese.deploy.ort_layout, checked there
    sessions['blocked'], how = ort_layout.layout_session(
        files['as exported'], args.batch, sessions['as exported'], x.shape[1:], args.threads)
    assert sessions['blocked'] is not None, how
    print('%-12s %s' % ('blocked', how))
    outputs['blocked'] = sessions['blocked'].run(None, {'data': x})[0]
    ref = outputs['as exported']
    for label in ('fc as conv', 'all nchwc', 'blocked'):
        err = float(np.abs(outputs[label] - ref).max() / np.abs(ref).max())
        print('%-12s max |difference| / max |output| vs as exported: %.1e' % (label, err))
        assert err < 1e-4, label

    def measure(label):
        def call():
            sessions[label].run(None, {'data': x})
        call()
        return 1e3 * harness.time_for(call, args.min_time)
    times = harness.interleaved_rounds(measure, list(sessions), args.rounds, warmup=1,
                                       label='probe')
    base = harness.median(times['plain'])
    print('%s\nbatch %d, %d onnxruntime threads, median of %d rounds'
          % (harness.environment_line(), args.batch, args.threads, args.rounds))
    for label in ('plain', 'as exported', 'fc as conv', 'all nchwc', 'blocked'):
        ms = harness.median(times[label])
        print('%-36s %8.2f ms  %.3fx' % (args.plain if label == 'plain' else
                                         '%s, %s' % (args.se, label), ms, ms / base))
    if args.profile:
        print('kernel time per run (ms, calls), onnxruntime profiler:')
        for label in ('plain', 'as exported', 'fc as conv', 'all nchwc'):
            ops = kernel_times(files[label], x, args.threads)
            print('  %-12s total %.1f: %s' % (label, sum(v[0] for v in ops.values()), ', '.join(
                '%s %.2f (%d)' % (op, ms, n) for op, (ms, n) in
                sorted(ops.items(), key=lambda kv: -kv[1][0]))))


if __name__ == '__main__':
    main()
