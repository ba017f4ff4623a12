"""timm ResNet / SE-ResNet checkpoints in safetensors, read with the ``safetensors`` package's
numpy API (no torch).

timm's ``ResNet`` (timm/models/resnet.py) names its weights ``conv1``, ``bn1``,
``layer{s}.{b}.conv{k}`` / ``bn{k}`` (k = 1..3 bottleneck, 1..2 basic; the stride on the
3x3 ``conv2``, as in cmpese's post-activation blocks and GluonCV's v1b),
``layer{s}.{b}.downsample.0`` (1x1 strided conv) / ``downsample.1`` (BN), ``fc``; an SE
ResNet (``seresnet50``: ``attn_layer='se'``) adds ``layer{s}.{b}.se.fc1`` / ``se.fc2``,
timm's ``SEModule`` (timm/layers/squeeze_excite.py): 1x1 convolutions *with* biases, width
``make_divisible(C / 16, 8)``, applied after ``bn3`` and before the addition, as cmpese's
units are. BatchNorm is PyTorch's: ``weight`` (gamma), ``bias`` (beta), ``running_mean``,
``running_var`` and ``num_batches_tracked`` (a step counter, skipped). Depths 18, 34, 50,
101 and 152 map; resnet26 ([2, 2, 2, 2] bottleneck blocks) is a depth cmpese does not
build.
"""
import collections

import numpy as np

from .layout import Layout, parse_torchvision, target_layout, torchvision_key, BN_FIELDS
from .report import NotAWeightsFile, UnsupportedLayout

__all__ = ['read_timm', 'timm_state', 'save_timm', 'is_safetensors', 'timm_name']

WHAT = 'a timm ResNet / SE-ResNet with the 7x7 stem (resnet18/34/50/101/152, seresnet*)'


def is_safetensors(path):
    """Whether the file starts like a safetensors file: an 8-byte little-endian header
    length (under 100 MB, safetensors' own limit), then the JSON header's '{'. A file cut
    inside its header still counts (and is then reported as damaged)."""
    try:
        with open(path, 'rb') as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9 or head[8:9] != b'{':
        return False
    return 0 < int.from_bytes(head[:8], 'little') <= 100 * 1000 * 1000


def timm_name(layout):
    """timm's model name for a layout ('seresnet50'), for messages."""
    return '%sresnet%d' % ('se' if 'se' in layout.units.values() else '', layout.depth)


def _load(path):
    try:
        from safetensors.numpy import load_file
    except ImportError:     # pragma: no cover - pinned in requirements.txt
        raise NotAWeightsFile(path, 'reading safetensors needs the safetensors package: '
                              'pip install safetensors (requirements.txt pins it)')
    if not is_safetensors(path):
        raise NotAWeightsFile(path, 'not a safetensors file (it does not start with a '
                              'safetensors header). timm weights are read as safetensors: '
                              'use the model.safetensors of the Hugging Face hub, or save a '
                              'state_dict with safetensors.torch.save_file')
    try:
        return load_file(path)
    except TypeError as err:
        if 'bfloat16' in str(err):
            raise NotAWeightsFile(path, 'holds bfloat16 tensors, which numpy cannot read; '
                                  'save the checkpoint in float32 or float16')
        raise NotAWeightsFile(path, 'cannot be read as safetensors (%s)' % err)
    except Exception as err:      # safetensors' SafetensorError (a damaged file)
        raise NotAWeightsFile(path, 'a damaged safetensors file (%s)'
                              % str(err).strip().splitlines()[0][:160])


def read_timm(path):
    """The :class:`~cmpese.weights.layout.Layout` of a timm safetensors checkpoint."""
    tensors = _load(path)
    if not tensors:
        raise NotAWeightsFile(path, 'holds no tensors')
    if all(k.startswith('module.') for k in tensors):      # saved from DataParallel
        tensors = {k[len('module.'):]: v for k, v in tensors.items()}
    layout = Layout('timm', path)
    parse_torchvision(collections.OrderedDict(sorted(tensors.items())), layout, WHAT)
    layout.finish(WHAT)
    dtypes = sorted({str(v.dtype) for (role, field), v in layout.entries.items()})
    if dtypes != ['float32']:
        layout.notes.append('file tensors are %s, cast to the target\'s float32'
                            % '/'.join(dtypes))
    return layout


def timm_state(net):
    """The weights of a cmpese post-activation ImageNet ResNet (plain or with SE units) as
    timm names them: ``key -> numpy array`` (SE FCs as (out, in, 1, 1) 1x1 convolutions,
    BN ``num_batches_tracked`` = 0). The inverse of :func:`read_timm`'s key map."""
    layout = target_layout(net)
    if layout.version != 1:
        raise UnsupportedLayout(None, 'timm\'s ResNet is post-activation; this network is '
                                'pre-activation (version=2)')
    if any(kind != 'se' for kind in layout.units.values()):
        raise UnsupportedLayout(None, 'timm\'s ResNet holds SE units only; this network has %s'
                                % layout.unit_description())
    state = collections.OrderedDict()
    for (role, field), param in layout.entries.items():
        key = torchvision_key(role, field)
        value = param.data().asnumpy()
        if '.se.' in role and field == 'weight':
            value = value.reshape(value.shape + (1, 1))
        state[key] = np.ascontiguousarray(value)
        if field == BN_FIELDS[-1]:
            state[key.rsplit('.', 1)[0] + '.num_batches_tracked'] = np.zeros((), np.int64)
    return state


def save_timm(net, path):
    """Write :func:`timm_state` as a safetensors file (``{'format': 'pt'}`` metadata, as
    timm's hub files carry)."""
    from safetensors.numpy import save_file
    save_file(dict(timm_state(net)), path, metadata={'format': 'pt'})
    return path
