"""The one checked loader of a cmpese ``.params`` file into a network.

Every place that reads trained parameters into a network goes through
:func:`load_params_checked`: ``get_model(..., pretrained=True)``
(:func:`cmpese.model_zoo.load_parameters_file`), the export, evaluate and visualize command
lines. It reads the file once, checks it against the network and then loads it, so a wrong
file is one line that names the file and the mismatch (no MXNet traceback, no partly loaded
network):

* not an MXNet parameter file, or one without named parameters;
* another class count (the classifier's shape; the message says which ``classes`` to pass);
* parameters missing, unexpected or of another shape (how many, and the first of each).

Both files cmpese writes are read: ``save_parameters`` (``best.params``, ``epoch-NNNN.params``:
structural names) and ``export`` (``<prefix>-0000.params``: ``arg:`` / ``aux:`` names under
the exporting instance's prefix). Files of other libraries (timm, GluonCV) are mapped by
role in :func:`cmpese.weights.load_pretrained`.
"""
import os
import re

from ..errors import UserError

__all__ = ['load_params_checked', 'ParamsError', 'error_line']

# the exporting instance's name prefix of an exported file ('arg:preactcifarnet3_conv0_...')
_INSTANCE_PREFIX = re.compile(r'^(arg:|aux:)?[a-z_]*?\d+_')


class ParamsError(UserError, ValueError):
    """A parameter file that cannot be loaded into the network; the message (one line) names
    the file and what does not match. A :class:`cmpese.errors.UserError` (a command line
    prints it and exits 2) and a ``ValueError``. ``cmpese.model_zoo.PretrainedError`` is this
    class."""


def error_line(err, limit=120):
    """One line of an exception: MXNet's errors start with a C++ traceback, so the last line
    that names an error, else the first line."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    named = [line for line in lines if 'Error' in line or 'Check failed' in line]
    text = (named[-1] if named else lines[0]) if lines else type(err).__name__
    return text[:limit]


def load_params_checked(net, path, ctx=None, flag=None, classes_option='classes=%d',
                        hint='Was it saved from another model or with other options?'):
    """Load the parameter file ``path`` into ``net`` after checking it (module docstring);
    returns ``net``. Raises :class:`ParamsError` (one line).

    ``flag`` names the command-line option that gave the file (``'--params'``): the message
    then starts with ``--params <path>``. ``classes_option`` is how the caller passes a class
    count (``'classes=%d'`` for ``get_model``, ``'--classes %d'`` on a command line), for the
    message about a classifier of another size. ``hint`` ends the message about other
    mismatches.
    """
    import mxnet as mx
    ctx = ctx or mx.cpu()
    name = '%s %s' % (flag, path) if flag else str(path)
    if not os.path.isfile(path):
        raise ParamsError('%s: no such file; a training run writes best.params and '
                          'epoch-NNNN.params in its --save-dir, an export <prefix>-0000.params'
                          % name)
    try:
        loaded = mx.nd.load(str(path))
    except (mx.base.MXNetError, OSError, ValueError) as err:
        raise ParamsError(
            '%s is not an MXNet parameter file (%s). Expected the .params file written by '
            'net.save_parameters() or train_cifar.py (best.params, or the exported '
            '<name>-0000.params).' % (name, error_line(err))) from None
    if not isinstance(loaded, dict) or not loaded:
        raise ParamsError('%s holds no named parameters; expected the .params file written '
                          'by net.save_parameters() or train_cifar.py.' % name)
    if any(k.startswith(('arg:', 'aux:')) for k in loaded):
        found = {_INSTANCE_PREFIX.sub('', k): v for k, v in loaded.items()}
        wanted = {_INSTANCE_PREFIX.sub('', p.name): p for p in net.collect_params().values()}
    else:
        found = loaded
        # structural names, as save_parameters writes them (Gluon has no public accessor)
        wanted = net._collect_params_with_prefix()
    missing = sorted(set(wanted) - set(found))
    extra = sorted(set(found) - set(wanted))
    shapes = [(k, tuple(found[k].shape), tuple(p.shape)) for k, p in wanted.items()
              if k in found and p.shape is not None and 0 not in p.shape
              and tuple(found[k].shape) != tuple(p.shape)]
    out = [k for k in wanted if k.startswith('output') and k.endswith('weight')]
    if shapes and out and any(k == out[0] for k, _, _ in shapes):
        k, theirs, ours = next(r for r in shapes if r[0] == out[0])
        raise ParamsError('%s was trained for %d classes and this model has %d: pass %s.'
                          % (name, theirs[0], ours[0], classes_option % theirs[0]))
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append('%d parameters missing (e.g. %s)' % (len(missing), missing[0]))
        if extra:
            parts.append('%d unexpected (e.g. %s)' % (len(extra), extra[0]))
        if shapes:
            parts.append('%d of another shape (e.g. %s: file %s, model %s)' % ((len(shapes),)
                                                                             + shapes[0]))
        raise ParamsError('%s does not fit this model: %s. %s' % (name, '; '.join(parts), hint))
    for k, p in wanted.items():
        p._load_init(found[k], ctx)
    return net
