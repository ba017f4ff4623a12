"""Measuring and looking inside a built or trained model (nothing here trains).

* :mod:`cmpese.analysis.complexity`: parameter counts, and the papers' printed counts beside
  ours;
* :mod:`cmpese.analysis.flops`: multiply-adds counted on the symbol graph, and InI Table IV's
  FLOPs beside ours;
* :mod:`cmpese.analysis.probe`: :class:`GraphProbe`, the units read from the network's own
  symbol graph as extra outputs; Grad-CAM on a cut graph; :func:`load_model`;
* :mod:`cmpese.analysis.images`: images from a dataset split, a folder or a RecordIO file,
  normalized as the network was trained;
* :mod:`cmpese.analysis.plots`: every figure, the training curves included (the trainers
  draw theirs with it).

The command lines are :mod:`cmpese.cli.complexity`, :mod:`cmpese.cli.flops` and
:mod:`cmpese.cli.visualize`; evaluation (which scores with the fit loop's evaluator) is
:mod:`cmpese.evaluate`. Importing this package imports none of its modules.
"""
