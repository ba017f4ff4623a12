"""Export a model to MXNet symbol JSON + params (and optionally ONNX), and load it back.

    python -m cmpese.tools.export --model cmpe_se_wrn16_8_1x1 --prefix out/cmpe_se_wrn16_8_1x1 \
        [--params trained.params] [--classes 100] [--onnx]

The exported pair deploys wherever MXNet runs (``SymbolBlock.imports``, ``mx.mod.Module``,
the C++ predictor); ``--onnx`` also writes ``{prefix}.onnx`` for onnxruntime.
"""
import argparse
import contextlib
import logging
import os
import warnings

import mxnet as mx
import numpy as np

__all__ = ['export_model', 'export_onnx', 'load_exported', 'ONNX_OPSET']

# mx2onnx in MXNet 1.9.1 emits opset-13 operators (ReduceMean with an ``axes`` attribute...)
# but stamps the model with, and checks it against, the newest opset the installed onnx
# knows (18+ moved ReduceMean's axes to an input), which the checker then rejects. We make
# both the stamp and the checker use the operators' opset.
ONNX_OPSET = 13


def export_model(net, prefix, input_shape=(1, 3, 32, 32), epoch=0, ctx=None):
    """Hybridize ``net``, run it once on zeros of ``input_shape`` and write
    ``{prefix}-symbol.json`` and ``{prefix}-{epoch:04d}.params``. Returns the two paths."""
    ctx = ctx or mx.cpu()
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    net.hybridize(static_alloc=True, static_shape=True)
    net(mx.nd.zeros(input_shape, ctx=ctx))
    net.export(prefix, epoch=epoch)
    return '%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)


@contextlib.contextmanager
def _onnx_opset(version):
    import onnx.checker
    import onnx.defs
    original = onnx.defs.onnx_opset_version
    checker_opsets = onnx.checker.DEFAULT_CONTEXT.opset_imports
    onnx.defs.onnx_opset_version = lambda: version
    onnx.checker.DEFAULT_CONTEXT.opset_imports = {'': version}
    try:
        yield
    finally:
        onnx.defs.onnx_opset_version = original
        onnx.checker.DEFAULT_CONTEXT.opset_imports = checker_opsets


class _DotNoteFilter(logging.Filter):
    """mx2onnx warns on every ``dot`` that ONNX MatMul differs from MXNet's dot for inputs of
    more than 2 dimensions. It differs only when the right operand has more than 2: the units'
    dots are (N, C, K) by (K, M), where MatMul's broadcasting computes exactly MXNet's dot
    (tests/test_export.py runs the ONNX models in onnxruntime and compares)."""

    def filter(self, record):
        return 'Converting dot operator' not in record.getMessage()


@contextlib.contextmanager
def _quiet_dot_note():
    note = _DotNoteFilter()
    root = logging.getLogger()
    root.addFilter(note)
    try:
        yield
    finally:
        root.removeFilter(note)


def export_onnx(symbol_file, params_file, onnx_file, input_shape=(1, 3, 32, 32),
                dynamic_batch=True):
    """Convert an exported symbol + params to ONNX (batch axis dynamic by default)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError('ONNX export needs the onnx package: pip install "onnx<1.17" '
                          '(and "onnxruntime<1.20" to run it), or pip install cmpese[onnx]')
    kwargs = {}
    if dynamic_batch:
        kwargs = dict(dynamic=True, dynamic_input_shapes=[(None,) + tuple(input_shape[1:])])
    with _onnx_opset(ONNX_OPSET), _quiet_dot_note():
        return mx.onnx.export_model(symbol_file, params_file, [tuple(input_shape)], np.float32,
                                    onnx_file, **kwargs)


def load_exported(prefix, epoch=0, ctx=None, input_name='data'):
    """Load ``{prefix}-symbol.json`` / ``{prefix}-{epoch:04d}.params`` as a SymbolBlock."""
    symbol_file, params_file = '%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)
    for path in (symbol_file, params_file):
        if not os.path.isfile(path):
            raise FileNotFoundError('%s not found: export_model(net, %r) writes it' % (path, prefix))
    with warnings.catch_warnings():  # MXNet warns that the input has no type yet
        warnings.simplefilter('ignore')
        return mx.gluon.SymbolBlock.imports(symbol_file, [input_name], params_file,
                                            ctx=ctx or mx.cpu())


def main(argv=None):
    from ..model_zoo import get_model
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', required=True, help='zoo name, e.g. cmpe_se_wrn28_10_1x1')
    parser.add_argument('--prefix', required=True, help='output path prefix')
    parser.add_argument('--params', help='trained parameters (net.save_parameters file); '
                                         'random initialisation when omitted')
    parser.add_argument('--classes', type=int, default=10)
    parser.add_argument('--input-size', type=int, default=32)
    parser.add_argument('--onnx', action='store_true', help='also write {prefix}.onnx')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    net = get_model(args.model, classes=args.classes)
    if args.params:
        net.load_parameters(args.params)
    else:
        logging.warning('no --params given: exporting randomly initialised weights')
        net.initialize(mx.init.Xavier())
    shape = (1, 3, args.input_size, args.input_size)
    sym, params = export_model(net, args.prefix, shape)
    logging.info('wrote %s and %s', sym, params)
    if args.onnx:
        logging.info('wrote %s', export_onnx(sym, params, args.prefix + '.onnx', shape))


if __name__ == '__main__':
    main()
