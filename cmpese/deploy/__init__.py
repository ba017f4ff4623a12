"""Running a trained model outside training: export, fold, the predictor and its runtimes.

* :mod:`cmpese.deploy.export`: symbol JSON + params (the units' reference operators), clean
  ONNX, onnxruntime's offline-optimized graph, loading an export back;
* :mod:`cmpese.deploy.fold`: the units' linear filter banks, and the affine maps before their
  FC layers, collapsed in an exported graph (same outputs, fewer operators);
* :mod:`cmpese.deploy.predictor`: :class:`Predictor`, one inference API over onnxruntime and
  MXNet + oneDNN (int8 by :meth:`Predictor.quantize`);
* :mod:`cmpese.deploy.ort_layout`: the one deployment speed trick, the units' rescale kept in
  onnxruntime's blocked layout (made and checked by the predictor per batch size).

A new runtime is a name in :data:`cmpese.deploy.predictor.RUNTIMES` (fastest first) and a
branch in ``Predictor.__init__`` / ``__call__``. The command lines are
:mod:`cmpese.cli.export` and :mod:`cmpese.cli.deploy`. docs/export.md, docs/deploy.md.
"""
from .predictor import RUNTIMES, Predictor, available_runtimes

__all__ = ['Predictor', 'RUNTIMES', 'available_runtimes']
