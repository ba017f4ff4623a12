"""GluonCV ResNet ``.params`` files (MXNet's NDArray format).

Read:

* ``resnet{18,34,50,101,152}_v1b``: the same graph as cmpese's post-activation ResNets
  (``version=1``: stride on the 3x3, projection 1x1 conv + BN, no convolution biases). Keys
  in the torchvision scheme with MXNet's BN names: ``conv1.weight``, ``bn1.gamma``,
  ``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight``, ``fc.weight``.
* ``resnet*_v2`` and ``se_resnet*_v2``: the pre-activation graph of cmpese's ``version=2``
  nets (the CMPE-SE zoo names), keys ``features.0`` (input BN), ``features.1`` (stem conv),
  ``features.5.0.bn1`` (block input BN) ... ``features.9`` (final BN), ``output``; the SE
  FCs ``se.0`` / ``se.2`` have no biases, like cmpese's.

* ``resnet18/34_v1`` and ``se_resnet18/34_v1``: basic blocks, the same graph as v1b
  (``features.4.0.body.0``, ``downsample.0``/``.1``, SE ``se.0``/``se.2`` without biases).

Refused, with the reason:

* ``resnet50/101/152_v1`` and ``se_resnet50/101/152_v1``: the stride sits on the first 1x1
  convolution and the 1x1 convolutions have biases, so no cmpese network computes that
  function;
* ``*_v1c/d/e/s`` (deep 3x3 stem, average-pooling projections) and ``*_v1b_gn``
  (GroupNorm).

Files saved by ``save_parameters`` (structural names) are parsed directly; older files saved
with parameter names (``layers1_conv0_weight``) or exported (``arg:resnetv1b0_...``) are
translated by building the GluonCV network they fit (``gluoncv.model_zoo.get_model(name,
pretrained=False)``), which needs GluonCV installed.
"""
import collections
import re

import mxnet as mx
import numpy as np

from .layout import (Layout, parse_features, parse_torchvision, target_layout,
                     torchvision_key, features_key)
from .report import NotAWeightsFile, UnsupportedLayout

__all__ = ['read_gluoncv', 'gluoncv_state', 'is_mxnet_params', 'load_ndarrays', 'GLUONCV_ARCHS',
           'REFUSED']

WHAT_V1B = 'a GluonCV ResNet v1b (resnet18/34/50/101/152_v1b)'
WHAT_V1 = 'a GluonCV ResNet v1 with basic blocks (resnet18/34_v1, se_resnet18/34_v1)'
WHAT_V2 = 'a GluonCV ResNet v2 / SE-ResNet v2 (resnet50_v2, se_resnet50_v2, ...)'
_MAGIC = b'\x12\x01\x00\x00\x00\x00\x00\x00'
_EXPORT_PREFIX = re.compile(r'^(?:arg:|aux:)([a-z0-9_]*?\d+_)?')

DEPTHS = (18, 34, 50, 101, 152)
GLUONCV_ARCHS = (['resnet%d_v1b' % d for d in DEPTHS] + ['resnet%d_v2' % d for d in DEPTHS] +
                 ['se_resnet%d_v2' % d for d in DEPTHS] +
                 ['%sresnet%d_v1' % (se, d) for se in ('', 'se_') for d in (18, 34)])
REFUSED = collections.OrderedDict(
    [('%sresnet%d_v1' % (se, d), 'v1') for se in ('', 'se_') for d in (50, 101, 152)] +
    [('resnet%d_v1%s' % (d, v), 'deep') for v in 'cdes' for d in (50, 101, 152)] +
    [('resnet%d_v1b_gn' % d, 'gn') for d in (50, 101)])


def _v1_reason(name):
    return ('GluonCV\'s %s puts the stride on the first 1x1 convolution and has biases on its '
            '1x1 convolutions; cmpese\'s post-activation ResNets are the v1b layout (stride on '
            'the 3x3, no biases), so no cmpese network computes that function. Use %s weights '
            '(or %s for the pre-activation nets)'
            % (name, re.sub(r'^(se_)?(resnet\d+)_v1$', r'\2_v1b', name),
               re.sub(r'_v1$', '_v2', name)))


def _refusal(name):
    kind = REFUSED[name]
    if kind == 'v1':
        return _v1_reason(name)
    if kind == 'deep':
        return ('GluonCV\'s %s has a deep stem of three 3x3 convolutions%s; cmpese builds the '
                '7x7 stem of %s' % (name, ' and average-pooling projections'
                                    if name[-1] in 'de' else '',
                                    re.sub(r'_v1.$', '_v1b', name)))
    return ('GluonCV\'s %s uses GroupNorm; cmpese\'s ResNets use BatchNorm (use %s)'
            % (name, name[:-3]))


def is_mxnet_params(path):
    """Whether the file starts with MXNet's NDArray-list magic number."""
    try:
        with open(path, 'rb') as f:
            return f.read(8) == _MAGIC
    except OSError:
        return False


def load_ndarrays(path):
    """``name -> NDArray`` of an MXNet .params file, or a one-line :class:`NotAWeightsFile`."""
    if not is_mxnet_params(path):
        raise NotAWeightsFile(path, 'not an MXNet .params file (no NDArray-file header)')
    try:
        loaded = mx.nd.load(path)
    except (mx.base.MXNetError, OSError, ValueError) as err:
        lines = [l for l in str(err).strip().splitlines() if 'Error' in l] or ['']
        raise NotAWeightsFile(path, 'a damaged MXNet .params file (%s)' % lines[-1][:160])
    if not isinstance(loaded, dict) or not loaded:
        raise NotAWeightsFile(path, 'holds no named parameters (expected the file of '
                              'save_parameters)')
    return loaded


def _gluoncv_net(name):
    from gluoncv.model_zoo import get_model
    return get_model(name, pretrained=False)


def _translate_legacy(path, arrays, arch):
    """Keys saved by parameter name (no dots) or exported (``arg:``/``aux:``) -> structural
    names, through the GluonCV network whose parameter names they are."""
    names = {}
    for key in arrays:
        stripped = _EXPORT_PREFIX.sub('', key) if key.startswith(('arg:', 'aux:')) else key
        names[stripped] = key
    wanted = set(names)
    try:
        import gluoncv  # noqa: F401
    except ImportError:   # pragma: no cover - gluoncv is a dependency of cmpese
        raise NotAWeightsFile(path, 'saved with parameter names (not save_parameters): '
                              'reading it needs GluonCV installed')
    candidates = [arch] if arch else GLUONCV_ARCHS + list(REFUSED)
    for name in candidates:
        try:
            net = _gluoncv_net(name)
        except (ValueError, KeyError):
            raise UnsupportedLayout(path, 'unknown GluonCV model %r' % name)
        params = net._collect_params_with_prefix()
        legacy = {p.name[len(net.prefix):]: k for k, p in params.items()}
        if set(legacy) == wanted:
            if name in REFUSED:
                raise UnsupportedLayout(path, _refusal(name))
            return name, collections.OrderedDict(
                (legacy[n], arrays[names[n]]) for n in legacy)
    raise UnsupportedLayout(path, 'its parameter names (e.g. %s) are those of no GluonCV ResNet '
                            'cmpese reads (%s)%s' % (sorted(wanted)[0], ', '.join(
                                GLUONCV_ARCHS[:3]) + ', ...', '' if arch is None else
                                ' and not those of %s' % arch))


def _block_count(keys, pattern):
    return len({m.group(1) for m in (re.match(pattern, k) for k in keys) if m})


def read_gluoncv(path, arch=None, arrays=None):
    """The :class:`~cmpese.weights.layout.Layout` of a GluonCV ResNet .params file.
    ``arch`` (a GluonCV name) is needed only to skip the search for a file saved with
    parameter names; ``arrays`` the already loaded NDArrays."""
    if arch in REFUSED:
        raise UnsupportedLayout(path, _refusal(arch))
    arrays = load_ndarrays(path) if arrays is None else arrays
    if not any('.' in k for k in arrays) or any(k.startswith(('arg:', 'aux:')) for k in arrays):
        arch, arrays = _translate_legacy(path, arrays, arch)
    keys = list(arrays)
    named = collections.OrderedDict((k, v.asnumpy()) for k, v in arrays.items())
    if any(k.startswith('features.') for k in keys):
        if any('.bridge.' in k or '.bn0.' in k or '.unit.' in k for k in keys):
            raise UnsupportedLayout(path, 'a cmpese parameter file, not GluonCV\'s: load it '
                                    'with source=\'cmpese\'')
        v1 = any('.body.' in k for k in keys)
        if v1 and any('.body.6.' in k for k in keys):        # a v1 bottleneck
            blocks = _block_count(keys, r'^features\.(\d+\.\d+)\.body\.')
            name = '%sresnet%d_v1' % ('se_' if any('.se.' in k for k in keys) else '',
                                      2 + blocks * 3)
            raise UnsupportedLayout(path, _v1_reason(name))
        what = WHAT_V1 if v1 else WHAT_V2
        layout = Layout('gluoncv', path)
        parse_features(named, layout, what)
        layout.finish(what)
        if layout.version != (1 if v1 else 2):
            raise UnsupportedLayout(path, 'not %s' % what)
        layout.arch = arch or '%sresnet%d_v%d' % ('se_' if layout.units else '', layout.depth,
                                                  layout.version)
        return layout
    layout = Layout('gluoncv', path)
    parse_torchvision(named, layout, WHAT_V1B, bn_names=('gamma', 'beta'))
    layout.finish(WHAT_V1B)
    if layout.units:
        raise UnsupportedLayout(path, 'GluonCV\'s v1b ResNets have no SE units')
    layout.arch = arch or 'resnet%d_v1b' % layout.depth
    return layout


def gluoncv_state(net):
    """The weights of a cmpese ImageNet ResNet under GluonCV's structural names: a
    post-activation plain net as ``resnet<d>_v1b``, a pre-activation one (plain or SE) as
    ``resnet<d>_v2`` / ``se_resnet<d>_v2``. ``key -> numpy array``; the inverse of
    :func:`read_gluoncv`'s map (copy it into the GluonCV network, then ``save_parameters``)."""
    layout = target_layout(net)
    if layout.version == 1 and layout.units:
        raise UnsupportedLayout(None, 'GluonCV\'s v1b ResNets have no units, and its SE-ResNet '
                                'v1 is another layout (stride on the 1x1)')
    if layout.version == 2 and any(k != 'se' for k in layout.units.values()):
        raise UnsupportedLayout(None, 'GluonCV\'s ResNet v2 holds SE units only; this network '
                                'has %s' % layout.unit_description())
    state = collections.OrderedDict()
    for (role, field), param in layout.entries.items():
        key = (torchvision_key(role, field, ('gamma', 'beta')) if layout.version == 1
               else features_key(role, field, 'gluoncv'))
        state[key] = np.ascontiguousarray(param.data().asnumpy())
    return state
