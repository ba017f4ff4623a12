"""One predictor for exported models: onnxruntime when it is installed, else MXNet + oneDNN.

    from cmpese.deploy import Predictor
    predictor = Predictor('out/cmpe_se_wrn16_8_1x1')       # what export_model / the tool wrote
    logits = predictor(images)         # raw images: uint8 HWC arrays, a uint8 NHWC batch,
                                       # file paths, PIL images (needs the data config)
    predictor.predict(images, top_k=3) # per image [(class name, probability), ...]
    logits = predictor.logits(batch)   # already normalized float32 (N, 3, H, W)
    predictor.runtime                                       # 'onnxruntime' or 'mxnet'

The data config (:mod:`cmpese.data.config`: input size, mean/std, resize/crop, class
names) is read from ``{prefix}-data.json`` beside the export, else from the ONNX file's
``metadata_props``. With it, ``predictor(images)`` preprocesses raw images exactly as the
training's evaluation did (:func:`cmpese.data.config.preprocess`). Normalized arrays go
through :meth:`Predictor.logits` (or ``predictor(batch, normalized=True)``); an export
without a data config takes normalized arrays only, and ``predictor(batch)`` then means
that. Every input is checked first: a wrong shape, dtype, an empty batch, NaN/inf values,
an input size the export was not made for, or raw pixels (uint8, values 0..255) given as
normalized raise :class:`InputError` (a ``ValueError``) saying what was expected, as do a
``top_k`` outside 1..classes, a ``batch_size`` < 1 and labels that are not one per image.
The export's files are checked before they are used: a symbol that is not an MXNet graph, a
parameter file that is truncated, empty or another model's, an ONNX file onnxruntime cannot
load and an unreadable data config each raise a one-line :class:`cmpese.errors.UserError`
naming the file (:func:`cmpese.deploy.export.check_exported`).

``model`` is an export prefix (``{prefix}-symbol.json`` + ``{prefix}-0000.params``, and
``{prefix}.onnx`` / ``{prefix}.opt.onnx`` if the export wrote them) or an ``.onnx`` file.
``runtime='auto'`` picks the fastest installed runtime that can run it (docs/deploy.md has
the measurements behind the order :data:`RUNTIMES`):

* ``'onnxruntime'``: an ONNX session with every graph optimization (BatchNorm folded into
  convolutions, fused activations, NCHWc layouts); the ONNX file is the export's, or is
  converted from the symbol in a temporary directory when only the symbol was exported;
* ``'mxnet'``: the symbol through MXNet's oneDNN subgraph backend
  (``hybridize(backend='MKLDNN')``: convolution + BatchNorm + ReLU / + sum fusion), one
  cached graph per input shape.

``Predictor.quantize(calibration_images)`` returns an int8 predictor of the same model
(post-training static quantization: onnxruntime's QDQ quantizer, or MXNet's oneDNN
quantization), calibrated on the given images. docs/deploy.md.

The command line that times a model on random images (``python -m cmpese.tools.deploy``,
``cmpese-deploy``) is :mod:`cmpese.cli.deploy`.
"""
import logging
import os
import shutil
import tempfile
import warnings

import numpy as np

from ..errors import UserError

__all__ = ['Predictor', 'RUNTIMES', 'available_runtimes', 'InputError']


class InputError(ValueError):
    """Images a :class:`Predictor` cannot take; the message says what it expects."""

log = logging.getLogger(__name__)

# fastest first (docs/deploy.md: ResNet-50 and the CIFAR nets, batch 1 to 32)
RUNTIMES = ('onnxruntime', 'mxnet')


def available_runtimes():
    """The installed runtimes, in :data:`RUNTIMES` order."""
    out = []
    for runtime in RUNTIMES:
        try:
            __import__('onnxruntime' if runtime == 'onnxruntime' else 'mxnet')
        except ImportError:
            continue
        out.append(runtime)
    return out


def _paths(model, epoch):
    """(prefix or None, [existing onnx files, optimized first])."""
    if not isinstance(epoch, (int, np.integer)) or isinstance(epoch, bool) or \
            not 0 <= epoch <= 9999:
        raise ValueError('epoch must be an integer from 0 to 9999 (the NNNN of '
                         '<prefix>-NNNN.params), got %r' % (epoch,))
    if model.endswith('.onnx'):
        if not os.path.isfile(model):
            raise UserError('%s: no such ONNX file; python -m cmpese.tools.export --onnx writes '
                            'one' % model)
        return None, [model]
    symbol, params = '%s-symbol.json' % model, '%s-%04d.params' % (model, epoch)
    if not (os.path.isfile(symbol) and os.path.isfile(params)):
        onnx_files = [p for p in (model + '.opt.onnx', model + '.onnx') if os.path.isfile(p)]
        if onnx_files:
            return None, onnx_files
        if os.path.isfile(symbol) or os.path.isfile(params):
            have, lack = (symbol, params) if os.path.isfile(symbol) else (params, symbol)
            raise UserError('%s: %s exists but %s does not (an export cut short, or another '
                            'epoch); export the model again (python -m cmpese.tools.export '
                            '--model NAME --prefix %s)' % (model, have, lack, model))
        raise UserError('%s: neither %s + %s nor %s.onnx exist; export the model first '
                        '(python -m cmpese.tools.export --model NAME --prefix %s)'
                        % (model, symbol, params, model, model))
    return model, [p for p in (model + '.opt.onnx', model + '.onnx') if os.path.isfile(p)]


class Predictor(object):
    """Inference on an exported model in the fastest installed runtime (module docstring).

    Parameters
    ----------
    model : str
        Export prefix or ``.onnx`` file.
    runtime : {'auto', 'onnxruntime', 'mxnet'}
    epoch : int
        Epoch number of the params file (``export_model``'s, default 0).
    threads : int, optional
        Compute threads (onnxruntime's intra-op threads; MXNet's are set by OMP_NUM_THREADS
        before it is imported). Default: the runtime's own (every core).
    input_shape : tuple, optional
        (C, H, W) the converter traces when the ONNX file has to be made from the symbol
        (default (3, 32, 32)); the batch axis stays dynamic.
    layout : bool
        onnxruntime only: run the units' rescale in onnxruntime's blocked layout
        (:mod:`cmpese.deploy.ort_layout`), one session per batch size made at its first call
        and checked against the ordinary session; models without units, and graphs the pass
        does not take, run the ordinary session. Default True.
    data_config : DataConfig, optional
        What the model expects of an image; default: ``{prefix}-data.json`` beside the
        export, else the ONNX ``metadata_props``, else none (normalized arrays only).
    """

    def __init__(self, model, runtime='auto', epoch=0, threads=None, input_shape=None,
                 layout=True, data_config=None):
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError('model must be an export prefix or an .onnx path (str), got %r'
                            % (model,))
        model = os.fspath(model)
        integer = isinstance(threads, (int, np.integer)) and not isinstance(threads, bool)
        if threads is not None and not (integer and threads >= 1):
            raise ValueError('threads must be a positive integer, or None for the runtime\'s '
                             'default, got %r' % (threads,))
        self.model, self.epoch, self.threads = model, epoch, threads
        self.layout = bool(layout)
        self._layout_sessions = {}
        prefix, onnx_files = _paths(model, epoch)
        installed = available_runtimes()
        if runtime == 'auto':
            candidates = [r for r in installed if r != 'mxnet' or prefix]
            if 'onnxruntime' in candidates and not onnx_files and not _has_onnx():
                candidates.remove('onnxruntime')
            if not candidates:
                raise UserError('%s: no installed runtime can run it (installed: %s); pip '
                                'install "onnxruntime<1.20"' % (model, ', '.join(installed)))
            runtime = candidates[0]
        elif runtime not in RUNTIMES:
            raise UserError('runtime must be auto, %s; got %r' % (', '.join(RUNTIMES), runtime))
        elif runtime not in installed:
            raise UserError('runtime %s is not installed: pip install "%s"'
                            % (runtime, 'onnxruntime<1.20' if runtime == 'onnxruntime'
                               else 'mxnet==1.9.1'))
        self.runtime = runtime
        self._tmp = None
        if runtime == 'onnxruntime':
            if not onnx_files:
                onnx_files = [self._convert(prefix, input_shape or (3, 32, 32))]
            self.onnx_file = onnx_files[0]
            # the layout pass rewrites the standard graph, not onnxruntime's fused .opt.onnx
            self._layout_source = ([f for f in onnx_files if not f.endswith('.opt.onnx')]
                                   or onnx_files)[0]
            self._session = _ort_session(self.onnx_file, threads)
            self._input = self._session.get_inputs()[0].name
        else:
            if prefix is None:
                if model.endswith('.onnx'):
                    raise UserError('%s: the mxnet runtime needs the exported symbol and '
                                    'params, not only ONNX' % model)
                missing = [p for p in ('%s-symbol.json' % model, '%s-%04d.params'
                                       % (model, epoch)) if not os.path.isfile(p)]
                raise UserError('%s: the mxnet runtime needs the exported symbol and params; '
                                '%s does not exist (only ONNX does)' % (model, missing[0]))
            self._net = _mxnet_block(prefix, epoch)
        self.data_config = data_config if data_config is not None else _find_data_config(
            model, onnx_files)
        self.input_size = self._input_size(onnx_files)

    def _input_size(self, onnx_files):
        """(H, W) the export was made for, or None when nothing records it."""
        if self.data_config is not None:
            return (self.data_config.input_size,) * 2
        shape = None
        if self.runtime == 'onnxruntime':
            shape = self._session.get_inputs()[0].shape
        elif onnx_files:
            try:
                shape = _ort_session(onnx_files[0], 1).get_inputs()[0].shape
            except Exception:
                shape = None
        if shape and len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]):
            return tuple(shape[2:])
        return None

    @property
    def classes(self):
        """The class names of the data config, or None."""
        return self.data_config.classes if self.data_config is not None else None

    @classmethod
    def from_block(cls, net, input_shape=(1, 3, 32, 32), runtime='auto', fold=True,
                   threads=None, layout=True, data_config=None):
        """A predictor of an in-memory Gluon model: exported (reference operators, folded by
        default) and converted to ONNX in a temporary directory, removed by :meth:`close`.
        For inference inside a training process, where ``net(x)`` runs the training graph.
        With ``data_config`` it takes raw images as an export with one does."""
        from .export import export_model, export_onnx
        tmp = tempfile.mkdtemp(prefix='cmpese-deploy-')
        prefix = os.path.join(tmp, 'model')
        sym, params = export_model(net, prefix, tuple(input_shape), fold=fold,
                                   data_config=data_config)
        if runtime in ('auto', 'onnxruntime') and 'onnxruntime' in available_runtimes():
            export_onnx(sym, params, prefix + '.onnx', tuple(input_shape),
                        data_config=data_config)
        predictor = cls(prefix, runtime, threads=threads, layout=layout,
                        data_config=data_config)
        predictor._tmp = tmp
        return predictor

    def _convert(self, prefix, input_shape):
        from .export import export_onnx
        self._tmp = tempfile.mkdtemp(prefix='cmpese-deploy-')
        path = os.path.join(self._tmp, os.path.basename(prefix) + '.onnx')
        try:
            return export_onnx('%s-symbol.json' % prefix, '%s-%04d.params'
                               % (prefix, self.epoch), path, (1,) + tuple(input_shape))
        except BaseException:        # a damaged export: leave no temporary directory
            self.close()
            raise

    def __call__(self, images, normalized=None):
        """Logits (N, classes), float32 numpy, of ``images``.

        ``normalized=False`` (the default when the export has a data config): raw images,
        uint8 (H, W[, C]) arrays, a uint8 (N, H, W, C) batch, file paths or PIL images (one
        or a list), preprocessed as the training's evaluation. ``normalized=True`` (the
        default without a data config; :meth:`logits`): float (N, 3, H, W) arrays already
        normalized. Raises :class:`InputError` (a ValueError) for input it cannot take."""
        return self._run(self._prepare(images, normalized))

    def logits(self, batch):
        """Logits of an already normalized float (N, 3, H, W) batch (the explicit path)."""
        return self._run(self._prepare(batch, True))

    def _prepare(self, images, normalized):
        if normalized is None:
            normalized = self.data_config is None
        if normalized:
            return _check_normalized(images, self.input_size)
        if self.data_config is None:
            raise InputError('%s has no data config (no %s, none in the ONNX metadata): it '
                             'takes normalized float32 (N, 3, H, W) arrays only '
                             '(predictor.logits(batch)); re-export with a data config '
                             '(python -m cmpese.tools.export --data-config / --dataset)'
                             % (self.model, _config_file(self.model)))
        from ..data.config import preprocess
        arr = images.asnumpy() if hasattr(images, 'asnumpy') else images
        if isinstance(arr, np.ndarray) and arr.dtype != np.uint8 and arr.ndim == 4 and \
                arr.shape[1] == 3:
            raise InputError('raw images must be uint8 (H, W, C) arrays (or a (N, H, W, C) '
                             'batch), got a %s %s array: an array already normalized goes '
                             'through predictor.logits(batch) or normalized=True'
                             % (arr.dtype, arr.shape))
        try:
            return preprocess(images, self.data_config)
        except InputError:
            raise
        except ValueError as err:
            raise InputError(str(err))

    def _run(self, x):
        if self.runtime == 'onnxruntime':
            session = self._session_for(x) if self.layout else self._session
            return session.run(None, {self._input: x})[0]
        import mxnet as mx
        try:
            return self._net(mx.nd.array(x, dtype='float32')).asnumpy()
        except mx.base.MXNetError as err:
            raise InputError('%s cannot take a batch of shape %s: %s' % (
                self.model, x.shape, str(err).strip().splitlines()[0][:200]))

    def _session_for(self, x):
        """The blocked-layout session for this batch size, made at its first call, or the
        ordinary session."""
        key = x.shape
        if key not in self._layout_sessions:
            from .ort_layout import layout_session
            try:
                session, how = layout_session(self._layout_source, x.shape[0], self._session,
                                              x.shape[1:], self.threads)
            except Exception as err:  # a graph the pass cannot read: the ordinary session
                session, how = None, 'layout pass skipped (%s: %s)' % (type(err).__name__, err)
            log.debug('%s, batch %d: %s', self.model, x.shape[0], how)
            self._layout_sessions[key] = session or self._session
        return self._layout_sessions[key]

    def _batched_logits(self, images, normalized=None, batch_size=32):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or \
                batch_size < 1:
            raise InputError('batch_size must be a positive integer, got %r' % (batch_size,))
        x = self._prepare(images, normalized)
        return np.concatenate([self._run(x[i:i + batch_size])
                               for i in range(0, len(x), batch_size)])

    def predict(self, images, top_k=None, batch_size=32, normalized=None):
        """Per image, the ``top_k`` most probable classes as ``[(class name, probability),
        ...]``, most probable first (softmax of the logits). Class names come from the data
        config ('0', '1', ... without one). ``images`` as in :meth:`__call__`. ``top_k``: 1 to
        the class count (default 5, or every class when there are fewer); another value
        raises :class:`InputError`."""
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(
                top_k, (int, np.integer)) or top_k < 1):
            raise InputError('top_k must be a positive integer (at most the class count), '
                             'got %r' % (top_k,))
        logits = self._batched_logits(images, normalized, batch_size)
        z = logits - logits.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        names = self.classes
        if names is None or len(names) != prob.shape[1]:
            names = [str(i) for i in range(prob.shape[1])]
        if top_k is not None and top_k > prob.shape[1]:
            raise InputError('top_k %d is more than the model\'s %d classes: give top_k from 1 '
                             'to %d' % (top_k, prob.shape[1], prob.shape[1]))
        k = min(5, prob.shape[1]) if top_k is None else int(top_k)
        order = np.argsort(-prob, axis=1, kind='stable')[:, :k]
        return [[(names[j], float(p[j])) for j in row] for row, p in zip(order, prob)]

    def accuracy(self, images, labels, batch_size=32, normalized=None):
        """Top-1 accuracy on ``images`` (as in :meth:`__call__`) and integer ``labels``."""
        pred = self._batched_logits(images, normalized, batch_size).argmax(axis=1)
        labels = np.asarray(labels)
        if labels.size != len(pred) or (labels.ndim > 1 and labels.size != labels.shape[0]):
            raise InputError('labels must be one integer per image: %d images, labels of shape '
                             '%s' % (len(pred), labels.shape))
        return float((pred == labels.reshape(-1).astype(pred.dtype)).mean())

    def quantize(self, calibration, out=None, runtime=None, normalized=None):
        """An int8 Predictor of this model, calibrated on ``calibration`` images (raw or
        normalized, as in :meth:`__call__`; a few hundred are plenty). onnxruntime: static
        QDQ quantization (per-channel int8 weights, uint8 activations, min-max calibration)
        written to ``out`` (default next to
        the ONNX file, ``*.int8.onnx``); mxnet: oneDNN quantization of the symbol (naive
        min-max calibration), exported to ``out`` as a prefix."""
        runtime = runtime or self.runtime
        calibration = self._prepare(calibration, normalized)
        if runtime == 'onnxruntime':
            src = self.onnx_file if self.runtime == 'onnxruntime' else self._convert(
                self.model, calibration.shape[1:])
            out = out or os.path.splitext(src.replace('.opt.onnx', '.onnx'))[0] + '.int8.onnx'
            _ort_quantize(src, out, calibration)
            return Predictor(out, 'onnxruntime', threads=self.threads, layout=self.layout,
                             data_config=self.data_config)
        prefix, _ = _paths(self.model, self.epoch)
        if prefix is None:
            raise UserError('mxnet int8 quantization needs the exported symbol and params')
        out = out or prefix + '-int8'
        _mxnet_quantize(prefix, self.epoch, out, calibration)
        return Predictor(out, 'mxnet', data_config=self.data_config)

    def close(self):
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self):
        return 'Predictor(%r, runtime=%r)' % (self.model, self.runtime)


def _config_file(model):
    from ..data.config import export_config_path
    prefix = model
    for ext in ('.int8.onnx', '.opt.onnx', '.onnx'):
        if prefix.endswith(ext):
            prefix = prefix[:-len(ext)]
            break
    return export_config_path(prefix)


def _find_data_config(model, onnx_files):
    """``{prefix}-data.json`` beside the export, else the first ONNX file's metadata."""
    from ..data.config import load_data_config
    path = _config_file(model)
    if os.path.isfile(path):
        return load_data_config(path)
    for onnx_file in onnx_files:
        try:
            from .export import onnx_data_config
            cfg = onnx_data_config(onnx_file)
        except ImportError:
            return None
        except Exception as err:
            raise UserError('%s: its data config metadata is unreadable (%s)' % (onnx_file, err))
        if cfg is not None:
            return cfg
    return None


def _check_normalized(x, size=None):
    """A normalized batch as C-contiguous float32 (N, 3, H, W), or :class:`InputError`."""
    from ..data.config import looks_unnormalized
    if hasattr(x, 'asnumpy'):
        x = x.asnumpy()
    if not isinstance(x, np.ndarray):
        if isinstance(x, (str, bytes, os.PathLike)) or hasattr(x, 'convert'):
            raise InputError('normalized input must be a float32 (N, 3, H, W) array, got %s; '
                             'raw images go through predictor(images) with a data config'
                             % type(x).__name__)
        try:
            x = np.asarray(x)
        except Exception:
            raise InputError('expected a float32 (N, 3, H, W) array, got %s' % type(x).__name__)
    expected = 'float32 (N, 3, %s)' % ('%d, %d' % size if size else 'H, W')
    if x.size == 0:
        raise InputError('empty batch (shape %s): expected %s with N >= 1' % (x.shape, expected))
    if x.dtype == np.uint8:
        raise InputError('a uint8 array given as normalized input looks like raw pixels: '
                         'expected %s normalized ((pixel - mean) / std); pass raw images '
                         'without normalized=True (the export needs a data config)' % expected)
    if x.dtype.kind not in 'f':
        raise InputError('expected %s, got dtype %s' % (expected, x.dtype))
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError('expected %s, got shape %s' % (expected, x.shape))
    if size and tuple(x.shape[2:]) != tuple(size):
        raise InputError('the export was made for %dx%d inputs, got %dx%d: expected %s'
                         % (size[0], size[1], x.shape[2], x.shape[3], expected))
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise InputError('%d non-finite value(s) (NaN or inf) in the batch: expected finite '
                         '%s' % (bad, expected))
    if looks_unnormalized(x):
        raise InputError('values span %g..%g with nothing below 0, as raw pixels do: expected '
                         '%s normalized ((pixel - mean) / std); pass raw uint8 images without '
                         'normalized=True' % (float(x.min()), float(x.max()), expected))
    return np.ascontiguousarray(x, dtype=np.float32)


def _has_onnx():
    try:
        import onnx  # noqa: F401
        return True
    except ImportError:
        return False


def _ort_session(path, threads=None):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    except Exception as err:   # InvalidProtobuf, Fail, ...: the file, not the code
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError('%s is not a loadable ONNX model (%s: %s); export it again with '
                        'python -m cmpese.tools.export --onnx'
                        % (path, type(err).__name__, text[:160]))


def _symbol_block(prefix, epoch):
    """The exported symbol and params as a SymbolBlock. BatchNorms with ``fix_gamma`` get a
    stored gamma of ones: MXNet computes them with 1, but oneDNN's BN folding (int8, and
    conv + BN fusion) reads the stored value, as mx2onnx does (cmpese.deploy.export)."""
    import mxnet as mx
    from .export import _load, _unit_gammas
    symbol, arg_params, aux_params = _load('%s-symbol.json' % prefix,
                                           '%s-%04d.params' % (prefix, epoch))
    _unit_gammas(symbol, arg_params)
    with warnings.catch_warnings():   # "the input has no type yet"
        warnings.simplefilter('ignore')
        net = mx.gluon.SymbolBlock(symbol, mx.sym.var('data'))
    net.collect_params().load_dict(dict(arg_params, **aux_params), ctx=mx.cpu(),
                                   ignore_extra=True, cast_dtype=True,
                                   dtype_source='saved')
    return net


def _mxnet_block(prefix, epoch):
    """The exported symbol as a SymbolBlock on oneDNN's subgraph backend."""
    import mxnet as mx
    net = _symbol_block(prefix, epoch)
    if mx.runtime.Features().is_enabled('MKLDNN'):
        # skip_infer: MXNet 1.9.1's optimize_for runs its subgraph properties one after the
        # other and, before each, infers shapes by matching the given parameters *by
        # position* against the inputs of the graph the previous property produced. When a
        # fusion changes the depth-first order of the inputs (in a pre-act block with a unit,
        # conv0 + BN + ReLU fused ahead of the projection), shapes land on the wrong inputs:
        # "Shape inconsistent, Provided = [32], inferred shape=(32,16,3,3)" in
        # sg_mkldnn_conv_bn_act. The fusions are chosen by operator type and need no shapes;
        # skipping the inference gives the same fused graph (docs/deploy.md).
        net.hybridize(backend='MKLDNN', static_alloc=True, static_shape=True, skip_infer=True)
    else:  # a build without oneDNN (e.g. CUDA): the plain cached graph
        net.hybridize(static_alloc=True, static_shape=True)
    return net


class _Images(object):
    """onnxruntime's CalibrationDataReader over a numpy array, 16 images per batch."""

    def __init__(self, name, images, batch=16):
        self.batches = iter([{name: images[i:i + batch]} for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self.batches, None)


def _ort_quantize(src, out, calibration):
    import onnx
    name = onnx.load(src).graph.input[0].name
    # the quantizer warns on the root logger about every BatchNorm it leaves in float
    # ("Axis 1 is out-of-range for weight ...gamma"): the pre-activation BNs, not an error
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        _ort_quantize_files(src, out, name, calibration)
    finally:
        root.setLevel(level)
    return out


def _ort_quantize_files(src, out, name, calibration):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, 'prepared.onnx')
        quant_pre_process(src, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, out, _Images(name, calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)


def _mxnet_quantize(prefix, epoch, out, calibration):
    import mxnet as mx
    from mxnet.contrib import quantization
    net = _symbol_block(prefix, epoch)
    # a DataIter: 1.9.1's wrapper of a gluon DataLoader fails on loaders of images only
    data = mx.io.NDArrayIter(data={'data': calibration}, batch_size=16)
    quantized = quantization.quantize_net(net, quantized_dtype='auto', calib_data=data,
                                          calib_mode='naive', num_calib_examples=len(calibration),
                                          ctx=mx.cpu(), logger=logging.getLogger('quantize'))
    quantized.hybridize(static_alloc=True, static_shape=True)
    quantized(mx.nd.array(calibration[:1]))
    quantized.export(out, epoch=0)
    return out
