"""Helpers for tests that build real models: initializers, inputs, BN calibration, the papers' hand
counts of unit weights, and the checks every backbone family runs."""
import mxnet as mx
import numpy as np

HE_INIT = mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)


def init_net(net, seed=0):
    mx.random.seed(seed)
    np.random.seed(seed)
    net.initialize(HE_INIT)
    return net


def nparams(net):
    return int(sum(np.prod(p.shape) for p in net.collect_params().values()
                   if p.grad_req != 'null'))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def random_input(shape=(2, 3, 32, 32), seed=0):
    return mx.nd.array(np.random.RandomState(seed).normal(size=shape).astype(np.float32))


def calibrate_bn(net, steps=2, batch=8, shape=(3, 32, 32)):
    """Put BN running statistics where training would (they move in the backward pass in
    MXNet 1.x). Untrained nets with the default statistics (mean 0, var 1) have activations
    that grow with depth to ~1e5, where any change of summation order is amplified. With
    momentum 0 the running statistics are those of the last batch, so two steps do."""
    from mxnet import autograd
    bns = []
    net.apply(lambda b: bns.append(b) if isinstance(b, mx.gluon.nn.BatchNorm) else None)
    saved = [b._kwargs['momentum'] for b in bns]
    for b in bns:
        b._kwargs['momentum'] = 0.0
    net.hybridize(static_alloc=True, static_shape=True)
    for i in range(steps):
        with autograd.record(train_mode=True):
            out = net(random_input((batch,) + shape, seed=100 + i))
        out.backward()
    mx.nd.waitall()
    for b, m in zip(bns, saved):
        b._kwargs['momentum'] = m
    net.hybridize(static_alloc=True, static_shape=True)   # rebuild the graph with them
    return net


class PositiveUniform(mx.init.Initializer):
    """Positive weights averaging 1/fan_in: activations keep their scale, gates stay unsaturated."""

    def _init_weight(self, name, arr):
        fan_in = int(np.prod(arr.shape[1:]))
        arr[:] = mx.nd.random.uniform(0.1 / fan_in, 1.9 / fan_in, shape=arr.shape)


T = 16


def unit_params(unit, c, t=T, inner=None):
    """Hand count of one unit's weights for C channels (docs/units.md). A bottleneck block
    passes its ``inner`` width, from which the pair-view filter count eps = floor(inner / t)
    comes (the CMPE-SE authors' code); otherwise eps = C / t."""
    eps = max(1, (inner or c) // t)
    return {None: 0, 'se': 2 * c * c // t, 'cmpe_se_double_fc': 4 * c * c // t,
            'cmpe_se_2x1': 2 * c * c // t + 2 * eps + 2 * eps,
            'cmpe_se_1x1': 3 * c * c // t + eps + 2 * eps}[unit]


def unreached_parameters(net, size=32, batch=8, min_grad=0.0, skip=()):
    """One hybridized NAG step on |random| images; names of the parameters that got no
    gradient, or (with a gradient above ``min_grad``) were not moved by the step. Parameter
    names ending in any of ``skip`` only need finite gradients."""
    from mxnet import autograd, gluon
    net.hybridize(static_alloc=True, static_shape=True)
    x = random_input((batch, 3, size, size), seed=2).abs()
    y = mx.nd.array(np.arange(batch) % 10)
    params = {k: p for k, p in net.collect_params().items() if p.grad_req != 'null'}
    before = {k: p.data().asnumpy().copy() for k, p in params.items()}
    trainer = gluon.Trainer(net.collect_params(), 'nag', {'learning_rate': 0.1, 'momentum': 0.9})
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
    loss.backward()
    trainer.step(batch)
    missing = []
    for k, p in params.items():
        g = np.abs(p.grad().asnumpy())
        assert np.isfinite(g).all(), k
        if k.endswith(tuple(skip)):
            continue
        if not g.sum() > 0 or (g.max() > min_grad and
                               np.array_equal(p.data().asnumpy(), before[k])):
            missing.append(k)
    return missing


# ------------------------------------------------------------- checks shared by the families
# (tests/test_allcnn.py, test_pyramidnet.py, test_resnet_imagenet.py)

UNITS = [None, 'se', 'cmpe_se_double_fc', 'cmpe_se_1x1']


def unit_class(unit):
    from cmpese.units import DoubleFCUnit, PairViewUnit, SEUnit
    return {'se': SEUnit, 'cmpe_se_double_fc': DoubleFCUnit, 'cmpe_se_1x1': PairViewUnit}[unit]


def blocks_of(net, cls):
    """Every child block of ``net`` (recursively) that is a ``cls``."""
    found = []
    net.apply(lambda b: found.append(b) if isinstance(b, cls) else None)
    return found


def agrees(ours, paper_millions):
    return abs(ours / (paper_millions * 1e6) - 1) <= 0.01


def small_pyramidnet(unit=None, **kwargs):
    """Bottleneck PyramidNet-20 (2 blocks per stage) widening by 4 per block: widths 20 ... 40,
    block outputs 80 ... 160, all divisible by t = 16."""
    from cmpese.models import get_pyramidnet
    return get_pyramidnet(20, 24, unit=unit, **kwargs)


def cases(families):
    """(name, build, size, unit) per family and unit, and their test ids."""
    out = [(name, build, size, unit) for name, build, size, units in families for unit in units]
    return out, ['%s-%s' % (name, unit or 'plain') for name, _, _, unit in out]


def check_forward_and_hybridize(build, size, unit):
    net = calibrate_bn(init_net(build(unit, 7)), steps=3, shape=(3, size, size))
    x = random_input((2, 3, size, size))
    imperative = net(x).asnumpy()
    assert imperative.shape == (2, 7) and np.isfinite(imperative).all()
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(x).asnumpy(), imperative, rtol=1e-4,
                               atol=1e-5 * np.abs(imperative).max())
    if unit is not None:
        found = blocks_of(net, unit_class(unit))
        assert found and all(type(u) is unit_class(unit) for u in found)


def check_training_step(name, build, size, unit):
    """As tests/test_models.py: with all-positive weights and inputs no ReLU is dead for a
    whole batch, so a parameter without gradient is one the graph does not connect.

    A reached parameter may still get a tiny gradient: a BN whose output only feeds a
    convolution and a training-mode BN (PyramidNet's first BN in a block) moves the loss only
    through differences between its channels, ~1e-8 with near-identical positive filters, which
    a float32 step does not resolve around gamma = 1. So "reached" is a nonzero gradient, and
    the step (lr 0.1, batch 8) must move every parameter with a gradient above 1e-4.

    All-CNN has no identity path: positive weights make every channel of every layer nearly the
    same function of the input, and the class scores come out equal to 1e-5. Its convolutions
    get He's random-sign initialization instead (BN in training mode leaves no channel dead
    over a batch); its units keep the positive one, as an FC-ReLU without BN needs it.
    """
    net = build(unit, 10)
    if name == 'allcnn':
        net.initialize(HE_INIT)
        net.collect_params('.*unit.*').initialize(PositiveUniform(), force_reinit=True)
    else:
        net.initialize(PositiveUniform())
    missing = unreached_parameters(
        net, size=min(size, 32), min_grad=1e-4,
        skip=('pairview_weight',) if unit == 'cmpe_se_1x1' else ())  # docs/units.md
    assert not missing, 'no gradient reached, or the step did not move, %s' % missing


def check_export_round_trip(name, build, size, tmp_path):
    from cmpese.tools.export import export_model, export_onnx, load_exported
    net = calibrate_bn(init_net(build()), steps=3, shape=(3, size, size))
    x = random_input((3, 3, size, size), seed=5)
    prefix = str(tmp_path / name)
    from cmpese.units import ops
    export_model(net, prefix, (3, 3, size, size))
    trained_ops = net(x).asnumpy()
    # the export traces the reference operators (cmpese.units.ops): compare like with like,
    # and the training operators within float rounding of a deep net
    with ops.using('reference'):
        net.hybridize(static_alloc=True, static_shape=True)
        reference = net(x).asnumpy()
    np.testing.assert_allclose(trained_ops, reference, rtol=1e-4,
                               atol=1e-4 * np.abs(reference).max())
    np.testing.assert_allclose(load_exported(prefix)(x).asnumpy(), reference, rtol=1e-5,
                               atol=1e-5)
    sym, arg, aux = mx.model.load_checkpoint(prefix, 0)
    mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[('data', x.shape)], for_training=False)
    mod.set_params(arg, aux)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    # Module applies oneDNN's subgraph fusions (docs/export.md): sums run in another order
    np.testing.assert_allclose(mod.get_outputs()[0].asnumpy(), reference, rtol=1e-4,
                               atol=1e-4 * np.abs(reference).max())
    try:
        import onnxruntime as ort
    except ImportError:
        return
    path = export_onnx(prefix + '-symbol.json', prefix + '-0000.params', prefix + '.onnx',
                       input_shape=(3, 3, size, size))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    out = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())
