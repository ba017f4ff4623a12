"""Export a model to MXNet symbol JSON + params (and optionally ONNX), and load it back.

    from cmpese.deploy.export import export_model, export_onnx, load_exported
    symbol, params = export_model(net, 'out/cmpe_se_wrn16_8_1x1', (1, 3, 32, 32))
    export_onnx(symbol, params, 'out/cmpe_se_wrn16_8_1x1.onnx', (1, 3, 32, 32))

The exported pair deploys wherever MXNet runs (``SymbolBlock.imports``, ``mx.mod.Module``,
the C++ predictor, :class:`cmpese.deploy.Predictor`); :func:`export_onnx` converts it to
``{prefix}.onnx`` for onnxruntime and, with ``optimized_file``, ``{prefix}.opt.onnx``
(onnxruntime's graph optimizations applied offline: BatchNorm folded into the convolutions
before it, constants folded). ``export_model(..., fold=True)`` collapses every linear filter
bank of the units (CMPE-SE pair-view, InI G-filters: filters, BatchNorm, average of the maps)
into one filter with a bias, and then the whole affine map from a unit's squeezed signals to
its first FC layer into that layer (:mod:`cmpese.deploy.fold`). The command line
(``python -m cmpese.tools.export``, ``cmpese-export``: ``--onnx``, ``--onnx-optimized``,
``--fold``) is :mod:`cmpese.cli.export`. docs/export.md, docs/deploy.md.
"""
import contextlib
import json
import logging
import os
import re
import warnings

import mxnet as mx
import numpy as np

from ..errors import UserError, check_output_path

__all__ = ['export_model', 'export_onnx', 'clean_onnx', 'optimize_onnx', 'load_exported',
           'need_onnx', 'set_onnx_data_config', 'onnx_data_config', 'run_data_config',
           'check_exported', 'remove_stale_exports', 'ONNX_OPSET']

# mx2onnx in MXNet 1.9.1 emits opset-13 operators (ReduceMean with an ``axes`` attribute...)
# but stamps the model with, and checks it against, the newest opset the installed onnx
# knows (18+ moved ReduceMean's axes to an input), which the checker then rejects. We make
# both the stamp and the checker use the operators' opset.
ONNX_OPSET = 13

log = logging.getLogger(__name__)


def _tmp_name(path):
    """The temporary name ``path`` is written under before it is moved into place
    (``<path>.tmp-<pid>``: what :func:`cmpese.training.checkpoint.remove_stale_temps`
    clears after a killed run)."""
    from ..training.checkpoint import TMP_MARK
    return '%s%s%d' % (path, TMP_MARK, os.getpid())


def _publish(pairs):
    """Flush each (tmp, final) file to disk, then move every one into place. A kill before
    the moves leaves only temporary names; a final name never holds a partial file."""
    for tmp, _ in pairs:
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
    for tmp, final in pairs:
        os.replace(tmp, final)


def _check_output_dir(path, flag='--prefix', create=True):
    """:func:`cmpese.errors.check_output_path` for an output file, and for a ``--prefix``
    one more rule: it must not end in a separator (a prefix names files, ``out/model`` for
    ``out/model-symbol.json``). Makes the folder when ``create``."""
    path = os.fspath(path)
    if flag == '--prefix' and not os.path.basename(path):
        raise UserError('%s %s ends in a directory separator: a prefix names the files '
                        '(%s gives %s-symbol.json); add a name after it'
                        % (flag, path, os.path.join(path, 'model'), os.path.join(path, 'model')))
    return check_output_path(path, flag, create=create)


def remove_stale_exports(prefix):
    """Remove the temporary files an export to ``prefix`` left when it was killed
    (``<prefix>.tmp-<pid>-symbol.json``, ``-NNNN.params``, ``<prefix>-data.json.tmp-<pid>``,
    ``<prefix>.onnx.tmp-<pid>``...) whose process no longer runs; returns their paths."""
    from ..training.checkpoint import TMP_MARK, pid_alive
    folder, base = os.path.split(os.path.abspath(prefix))
    mark = re.escape(TMP_MARK)
    pattern = re.compile(r'^%s(?:%s(\d+)-(?:symbol\.json|\d{4}\.params)|'
                         r'(?:-data\.json|\.onnx|\.opt\.onnx)%s(\d+))$'
                         % (re.escape(base), mark, mark))
    removed = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        m = pattern.match(name)
        path = os.path.join(folder, name)
        if m and os.path.isfile(path) and not pid_alive(int(m.group(1) or m.group(2))):
            os.remove(path)
            removed.append(path)
    return removed


def export_model(net, prefix, input_shape=(1, 3, 32, 32), epoch=0, ctx=None, ops='reference',
                 fold=False, data_config=None):
    """Write ``{prefix}-symbol.json`` and ``{prefix}-{epoch:04d}.params``; return the paths.

    The graph is traced with the units' ``ops`` profile (:mod:`cmpese.units.ops`; default
    ``'reference'``: global average Pooling, broadcast_mul, mean, which ONNX and oneDNN's
    subgraph passes know natively and which inference runs fastest with), on zeros of
    ``input_shape``. ``fold=True`` then collapses the units' linear filter banks, and the
    affine maps between their squeezed signals and their first FC layer, in the written
    files (:func:`cmpese.deploy.fold.fold_exported`). ``net`` is left hybridized with
    its cached graph cleared, so its next call traces the current default operators again.

    The files are written under temporary names (``*.tmp-<pid>``) and moved into place
    only when complete: a kill during the export never leaves a partial file under a final
    name. ``data_config`` (a :class:`cmpese.data.config.DataConfig`) is written beside them
    as ``{prefix}-data.json``.
    """
    from ..units import ops as unit_ops
    ctx = ctx or mx.cpu()
    _check_output_dir(prefix)
    for path in remove_stale_exports(prefix):
        log.info('removed %s, left by an export that was cut short', path)
    files = '%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)
    tmp_prefix = _tmp_name(prefix)
    tmp_files = '%s-symbol.json' % tmp_prefix, '%s-%04d.params' % (tmp_prefix, epoch)
    try:
        with unit_ops.using(ops):
            net.hybridize(static_alloc=True, static_shape=True)  # clears a graph traced before
            net(mx.nd.zeros(input_shape, ctx=ctx))
            net.export(tmp_prefix, epoch=epoch)
        net.hybridize(static_alloc=True, static_shape=True)
        if fold:
            from .fold import fold_exported
            fold_exported(tmp_prefix, epoch, input_shape=input_shape)
        _publish(list(zip(tmp_files, files)))
    finally:
        for tmp in tmp_files:
            if os.path.exists(tmp):
                os.remove(tmp)
    if data_config is not None:
        from ..data.config import export_config_path, save_data_config
        save_data_config(export_config_path(prefix), data_config)
    return files


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


class _ConverterNotes(logging.Filter):
    """mx2onnx logs one INFO line per graph node ("Converting idx: ...") and a few more per
    model on the root logger; none is of use to a user of the exporter. Its warning that
    ONNX MatMul differs from MXNet's ``dot`` for operands of more than 2 dimensions does
    not apply to the units (the reference operators have no ``dot``; the training ones
    multiply (N, C, K) by a 2-D (K, M), where MatMul's broadcasting is MXNet's dot), so it
    is dropped too. Every other warning passes."""

    def filter(self, record):
        if 'Converting dot operator' in record.getMessage():
            return False
        return not (record.levelno < logging.WARNING and 'mx2onnx' in record.pathname)


@contextlib.contextmanager
def _quiet_converter():
    notes = _ConverterNotes()
    root = logging.getLogger()
    root.addFilter(notes)
    try:
        yield
    finally:
        root.removeFilter(notes)


def need_onnx():
    """Raise a one-line :class:`cmpese.errors.UserError` when the onnx package is missing."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UserError('ONNX export needs the onnx package: pip install "onnx<1.17" (and '
                        '"onnxruntime<1.20" to run it), or pip install cmpese[onnx]')


def clean_onnx(onnx_file, data_config=None):
    """Take the initializers out of the graph inputs (mx2onnx lists every weight as an input,
    so that onnxruntime warns per weight and cannot fold constants or BatchNorm), check the
    model with ``onnx.checker`` (full check, shape inference included) and save it in place.
    ``data_config`` goes into the model's ``metadata_props`` (key
    :data:`cmpese.data.config.ONNX_METADATA_KEY`, JSON text). Returns the number of inputs
    removed."""
    import onnx
    model = onnx.load(onnx_file)
    if data_config is not None:
        set_onnx_data_config(model, data_config)
    weights = {init.name for init in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in weights]
    removed = len(model.graph.input) - len(keep)
    del model.graph.input[:]
    model.graph.input.extend(keep)
    # an FC layer without bias becomes a Gemm with a scalar zero as its bias C; onnxruntime's
    # optimizer merges those equal constants into one shared initializer, on which its
    # int8 quantizer then fails ("cannot reshape array of size 16 into shape ()"): C is
    # optional, so drop it
    from onnx import numpy_helper
    values = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == 'Gemm' and len(node.input) == 3 and node.input[2] in values and \
                not numpy_helper.to_array(values[node.input[2]]).any():
            del node.input[2]
    # constants mx2onnx creates and then does not use (the axis of a split...): onnxruntime
    # warns about each one
    used = {name for node in model.graph.node for name in node.input}
    used.update(o.name for o in model.graph.output)
    kept = [init for init in model.graph.initializer if init.name in used]
    if len(kept) < len(model.graph.initializer):
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept)
    with _onnx_opset(ONNX_OPSET):
        onnx.checker.check_model(model, full_check=True)
    onnx.save(model, onnx_file)
    return removed


def set_onnx_data_config(model, data_config):
    """Put ``data_config`` into the ONNX ``model``'s ``metadata_props`` (replacing one there)."""
    from ..data.config import ONNX_METADATA_KEY
    kept = [p for p in model.metadata_props if p.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, json.dumps(dict(data_config), sort_keys=True)
    return model


def onnx_data_config(model):
    """The data config in an ONNX model's (or file's) ``metadata_props``, or None."""
    from ..data.config import ONNX_METADATA_KEY, _make, _FIELDS
    if isinstance(model, str):
        import onnx
        model = onnx.load(model, load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == ONNX_METADATA_KEY:
            raw = json.loads(prop.value)
            return _make(**{k: raw[k] for k in _FIELDS})
    return None


def optimize_onnx(onnx_file, optimized_file=None):
    """Save onnxruntime's offline-optimized graph of ``onnx_file`` (level ORT_ENABLE_EXTENDED:
    constant folding, Conv + BatchNorm / Add / Mul fusion, Gemm + activation fusion...; the
    hardware-specific layout passes of ORT_ENABLE_ALL are left for load time) to
    ``optimized_file`` (default ``{name}.opt.onnx``). It runs in onnxruntime only (fused
    operators of its ``com.microsoft`` domain). Returns the path."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError('the optimized ONNX model is written by onnxruntime: pip install '
                        '"onnxruntime<1.20"')
    optimized_file = optimized_file or os.path.splitext(onnx_file)[0] + '.opt.onnx'
    tmp = _tmp_name(optimized_file)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = tmp
    try:
        ort.InferenceSession(onnx_file, options, providers=['CPUExecutionProvider'])
        _publish([(tmp, optimized_file)])
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return optimized_file


def _named(path, flag):
    return '%s %s' % (flag, path) if flag else str(path)


def _params_reason(path, err):
    """Why ``mx.nd.load`` refused ``path``, in a few words (0 bytes said as such)."""
    from ..weights.params import error_line
    if os.path.getsize(path) == 0:
        return 'it is empty (0 bytes), as an export cut short leaves it'
    return error_line(err, 100).replace('Traceback', 'traceback')


def _shape_problem(symbol, arg_params, aux_params, sizes):
    """None when the parameters' shapes are those the symbol infers for an image of one of
    ``sizes`` (every zoo network ends in global pooling, so its parameters do not depend on
    the size), else a few words on the first that is not."""
    from ..weights.params import error_line
    reason = None
    for size in sizes:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                _, _, aux = symbol.infer_shape(data=(1, 3, size, size),
                                               **{k: v.shape for k, v in arg_params.items()})
        except mx.base.MXNetError as err:
            reason = reason or error_line(err, 120)
            continue
        if aux is None:
            return None                     # nothing to compare against
        for name, shape in zip(symbol.list_auxiliary_states(), aux):
            if tuple(aux_params[name].shape) != tuple(shape):
                return 'shapes that do not fit it (%s: file %s, symbol %s)' % (
                    name, tuple(aux_params[name].shape), tuple(shape))
        return None
    return 'shapes that do not fit it (%s)' % reason


def check_exported(symbol_file, params_file, symbol_flag=None, params_flag=None,
                   input_size=None):
    """Read an export's ``<prefix>-symbol.json`` and ``<prefix>-NNNN.params`` and check that
    they are what an export writes and belong together; returns ``(symbol, arg_params,
    aux_params)``. Every fault is one line (:class:`cmpese.errors.UserError`) naming the file
    (with ``symbol_flag`` / ``params_flag``, the flag that gave it) and what to do: a missing
    file, a symbol that is not JSON or not an MXNet graph, a parameter file that is truncated,
    empty or not an export's (no ``arg:`` / ``aux:`` names), or parameters of another model
    (names the symbol lacks or needs, shapes that do not fit it for an ``input_size``
    image; default: 32 or 224)."""
    sym_name, par_name = _named(symbol_file, symbol_flag), _named(params_file, params_flag)
    again = 'export the model again (python -m cmpese.tools.export)'
    for name, path in ((sym_name, symbol_file), (par_name, params_file)):
        if not os.path.isfile(path):
            raise UserError('%s: no such file; an export writes <prefix>-symbol.json and '
                            '<prefix>-0000.params side by side' % name)
    try:
        with open(symbol_file) as f:
            graph = json.load(f)
        if not isinstance(graph, dict) or not isinstance(graph.get('nodes'), list) or \
                not all(isinstance(n, dict) and 'op' in n for n in graph['nodes']):
            raise ValueError('no "nodes" list of operators')
        symbol = mx.sym.load(symbol_file)
    except (OSError, ValueError, UnicodeDecodeError, mx.base.MXNetError) as err:
        from ..weights.params import error_line
        raise UserError('%s is not an MXNet symbol JSON (%s); give the <prefix>-symbol.json '
                        'an export wrote, or %s' % (sym_name, error_line(err, 100), again))
    try:
        loaded = mx.nd.load(params_file)
    except (OSError, ValueError, mx.base.MXNetError) as err:
        raise UserError('%s is not a complete MXNet parameter file (%s); %s'
                        % (par_name, _params_reason(params_file, err), again))
    if not isinstance(loaded, dict) or not loaded or \
            not all(k.startswith(('arg:', 'aux:')) for k in loaded):
        raise UserError('%s is not the parameter file of an export (no arg:/aux: names); give '
                        'the <prefix>-0000.params written with %s (a training run\'s '
                        'best.params goes with --model NAME instead)' % (par_name, sym_name))
    arg_params, aux_params = {}, {}
    for key, value in loaded.items():
        kind, name = key.split(':', 1)
        (arg_params if kind == 'arg' else aux_params)[name] = value
    wanted = {n for n in symbol.list_arguments() if n != 'data'}
    wanted_aux = set(symbol.list_auxiliary_states())
    missing = sorted((wanted - set(arg_params)) | (wanted_aux - set(aux_params)))
    extra = sorted((set(arg_params) - wanted) | (set(aux_params) - wanted_aux))
    parts = []
    if missing:
        parts.append('%d parameters of the symbol missing (e.g. %s)' % (len(missing), missing[0]))
    if extra:
        parts.append('%d not in the symbol (e.g. %s)' % (len(extra), extra[0]))
    problem = '; '.join(parts) or _shape_problem(symbol, arg_params, aux_params,
                                                 [input_size] if input_size else [32, 224])
    if problem:
        raise UserError('%s does not belong to %s: %s; give the .params exported with it, or '
                        '%s' % (par_name, sym_name, problem, again))
    return symbol, arg_params, aux_params


def _load(symbol_file, params_file):
    return check_exported(symbol_file, params_file)


def _unit_gammas(symbol, params):
    """A BatchNorm with ``fix_gamma`` (Gluon's ``scale=False``, and the symbol API's default)
    multiplies by 1 whatever its stored gamma holds; mx2onnx copies the stored gamma into
    ONNX BatchNormalization's scale. Give those BNs a gamma of ones (in ``params``)."""
    nodes = json.loads(symbol.tojson())['nodes']
    for node in nodes:
        attrs = node.get('attrs', node.get('param', {}))
        if node['op'] == 'BatchNorm' and \
                str(attrs.get('fix_gamma', 'True')).lower() in ('true', '1'):
            gamma = nodes[node['inputs'][1][0]]['name']
            if gamma in params:
                params[gamma] = mx.nd.ones_like(params[gamma])


def export_onnx(symbol_file, params_file, onnx_file, input_shape=(1, 3, 32, 32),
                dynamic_batch=True, optimized_file=None, data_config=None):
    """Convert an exported symbol + params to ONNX (batch axis dynamic by default), cleaned
    and checked by :func:`clean_onnx`; ``optimized_file`` (a path, or True for
    ``{name}.opt.onnx``) also saves :func:`optimize_onnx`'s model. ``data_config`` goes
    into ``metadata_props`` of both. Written under a temporary name and moved into place
    when complete. Returns the ONNX path."""
    need_onnx()
    _check_output_dir(onnx_file, '--prefix')
    kwargs = {}
    if dynamic_batch:
        kwargs = dict(dynamic=True, dynamic_input_shapes=[(None,) + tuple(input_shape[1:])])
    symbol, arg_params, aux_params = _load(symbol_file, params_file)
    params = dict(arg_params, **aux_params)
    _unit_gammas(symbol, params)
    tmp = _tmp_name(onnx_file)
    try:
        with _onnx_opset(ONNX_OPSET), _quiet_converter():
            mx.onnx.export_model(symbol, params, [tuple(input_shape)], np.float32, tmp,
                                 **kwargs)
        clean_onnx(tmp, data_config)
        _publish([(tmp, onnx_file)])
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if optimized_file:
        optimize_onnx(onnx_file, None if optimized_file is True else optimized_file)
    return onnx_file


def run_data_config(params_file):
    """The ``data_config.json`` of the run directory a params file comes from (the file's
    folder or the one above it: ``run/best.params``, ``run/checkpoints/...``,
    ``run/export/<model>-0000.params`` has its ``-data.json`` beside it), or None."""
    from ..data.config import DATA_CONFIG_FILE, export_config_path, load_data_config
    folder = os.path.dirname(os.path.abspath(params_file))
    m = re.match(r'(.*)-\d{4}\.params$', params_file)
    candidates = [export_config_path(m.group(1))] if m else []
    candidates += [os.path.join(folder, DATA_CONFIG_FILE),
                   os.path.join(os.path.dirname(folder), DATA_CONFIG_FILE)]
    for path in candidates:
        if os.path.isfile(path):
            return load_data_config(path)
    return None


def load_exported(prefix, epoch=0, ctx=None, input_name='data'):
    """Load ``{prefix}-symbol.json`` / ``{prefix}-{epoch:04d}.params`` as a SymbolBlock."""
    symbol_file, params_file = '%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)
    for path in (symbol_file, params_file):
        if not os.path.isfile(path):
            raise FileNotFoundError('%s not found: export_model(net, %r) writes it'
                                    % (path, prefix))
    check_exported(symbol_file, params_file)     # one line for a damaged or foreign file
    with warnings.catch_warnings():  # MXNet warns that the input has no type yet
        warnings.simplefilter('ignore')
        return mx.gluon.SymbolBlock.imports(symbol_file, [input_name], params_file,
                                            ctx=ctx or mx.cpu())
