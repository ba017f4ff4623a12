"""Tools around the models, each also a command line:

* ``cmpese.tools.complexity``: parameter counts, and the papers' printed counts beside ours;
* ``cmpese.tools.export``: symbol JSON + params, ONNX, and loading an export back.
"""
