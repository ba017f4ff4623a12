"""The old home of the tools, kept as aliases so that every documented command and import
works as written. Each module here only forwards; the code lives by purpose:

    cmpese.tools.<name>   library                          command line (python -m ...)
    export                cmpese.deploy.export             cmpese.cli.export
    deploy                cmpese.deploy.predictor          cmpese.cli.deploy
    fold, ort_layout      cmpese.deploy.fold, .ort_layout  -
    complexity            cmpese.analysis.complexity       cmpese.cli.complexity
    flops                 cmpese.analysis.flops            cmpese.cli.flops
    visualize             cmpese.analysis.probe, .images,  cmpese.cli.visualize
                          .plots                           (python -m cmpese.visualize)
    convert               cmpese.weights                   cmpese.cli.convert
    reproduce             cmpese.papers.reproduce          cmpese.cli.reproduce
    paper_tables          cmpese.papers                    -

``python -m cmpese.tools.<name>`` runs the command line through :func:`cmpese.errors.run`.
New code imports from the new homes (docs/architecture.md); nothing in the package imports
from here.
"""
