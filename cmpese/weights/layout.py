"""Roles: one name per weight of an ImageNet ResNet, whoever wrote the file.

Every reader (timm safetensors, GluonCV .params, cmpese .params) and the target network are
turned into a :class:`Layout`: ``(role, field) -> tensor``, where the role says what the
tensor does, independent of the file's key names::

    input_bn                      BN without scale/shift on the image (pre-activation nets)
    stem.conv, stem.bn            7x7/2 convolution, its BN
    layer{s}.{b}.conv{k}          k-th convolution of block b (0-based) of stage s (1..4)
    layer{s}.{b}.bn{k}            BN on the output of conv{k}: k = 1..L post-activation
                                  (after every conv), k = 1..L-1 pre-activation (before the
                                  next conv; its BN-ReLU-conv chain is the same function)
    layer{s}.{b}.preact           pre-activation only: BN on the block's input
    layer{s}.{b}.downsample.conv  projection shortcut; .downsample.bn its BN (post-act only)
    layer{s}.{b}.se.fc1, .se.fc2  SE excitation FCs, Dense layout (out, in)
    layer{s}.{b}.unit.<name>      any other unit's parameter (cmpese files and targets)
    final_bn                      BN-ReLU before pooling (pre-activation nets)
    fc                            classifier

Fields: conv ``weight`` (O, I, kh, kw); BN ``gamma``, ``beta``, ``running_mean``,
``running_var``; FC ``weight`` (out, in), ``bias``. PyTorch's conv (OIHW) and Linear
(out, in) layouts are MXNet's, so no tensor is transposed; timm's SE FCs are 1x1
convolutions (out, in, 1, 1) and are reshaped to (out, in).

Two key schemes are parsed here: the torchvision one that timm and GluonCV's v1b share
(``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``) and the
``features.*`` one of cmpese's own networks and GluonCV's v2 (``features.5.0.bn1``,
``output``). docs/weights.md has the tables.
"""
import collections
import re

from .report import UnsupportedLayout

__all__ = ['Layout', 'parse_torchvision', 'parse_features', 'target_layout', 'part_of',
           'torchvision_key', 'features_key', 'BN_FIELDS']

BN_FIELDS = ('gamma', 'beta', 'running_mean', 'running_var')
_BLOCK = re.compile(r'^layer(\d+)\.(\d+)\.(.+)$')


def part_of(role):
    """'classifier', 'unit' or 'backbone'."""
    if role == 'fc':
        return 'classifier'
    m = _BLOCK.match(role)
    if m and m.group(3).startswith(('se.', 'unit.')):
        return 'unit'
    return 'backbone'


def _kind(fields):
    """'bn' or 'conv' from the fields one layer holds."""
    return 'bn' if ('gamma' in fields or 'running_mean' in fields) else 'conv'


class Layout(object):
    """``(role, field) -> tensor`` of one network or file, with what it is built of.

    After :meth:`finish`: ``version`` (1 post-activation, 2 pre-activation), ``bottleneck``,
    ``stage_blocks``, ``depth``, ``classes`` (None without a classifier), ``units``
    ((stage, block) -> 'se' or the unit's description), ``se_bias``.
    """

    def __init__(self, origin, path=None):
        self.origin = origin
        self.path = path
        self.entries = collections.OrderedDict()
        self.keys = {}
        self.ignored = []           # (key, shape, reason): tensors that hold no weight
        self.notes = []
        self.unit_names = {}        # (stage, block) -> description of a non-SE unit
        self.version = self.bottleneck = self.stage_blocks = self.depth = None
        self.classes = None
        self.units = {}
        self.se_bias = False

    def add(self, role, field, key, value):
        if (role, field) in self.entries:
            raise UnsupportedLayout(self.path, '%s and %s both map to %s.%s; not a ResNet '
                                    'cmpese knows' % (self.keys[(role, field)], key, role, field))
        self.entries[(role, field)] = value
        self.keys[(role, field)] = key

    def get(self, role, field):
        return self.entries.get((role, field))

    def has_role(self, role):
        return any(r == role for r, _ in self.entries)

    def roles(self):
        return list(collections.OrderedDict((r, None) for r, _ in self.entries))

    def finish(self, what):
        """Check the layout is a whole ResNet and read its structure; ``what`` names the
        kind of file in messages."""
        blocks = collections.OrderedDict()
        for role, field in self.entries:
            m = _BLOCK.match(role)
            if m:
                blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        if not blocks or not self.has_role('stem.conv'):
            raise UnsupportedLayout(self.path, 'no stem convolution and residual stages found: '
                                    'not %s' % what)
        stages = sorted(blocks)
        if stages != list(range(1, len(stages) + 1)) or any(
                sorted(blocks[s]) != list(range(len(blocks[s]))) for s in stages):
            raise UnsupportedLayout(self.path, 'stages or blocks are not numbered 1.., 0.. '
                                    'without gaps (a truncated or edited file?)')
        self.stage_blocks = [len(blocks[s]) for s in stages]
        self.bottleneck = self.has_role('layer1.0.conv3')
        self.version = 2 if any(r.endswith('.preact') for r, _ in self.entries) else 1
        self.depth = 2 + sum(self.stage_blocks) * (3 if self.bottleneck else 2)
        fc = self.get('fc', 'weight')
        self.classes = int(fc.shape[0]) if fc is not None else None
        for role, field in self.entries:
            m = _BLOCK.match(role)
            if m and part_of(role) == 'unit':
                key = (int(m.group(1)), int(m.group(2)))
                self.units[key] = 'se' if m.group(3).startswith('se.') else \
                    self.unit_names.get(key, 'non-SE')
                if m.group(3).startswith('se.') and field == 'bias':
                    self.se_bias = True
        for role in self.roles():
            if part_of(role) == 'backbone' and (role.endswith(('bn', '.preact'))
                                                or re.search(r'\.bn\d+$', role)):
                missing = [f for f in BN_FIELDS if (role, f) not in self.entries]
                if missing:
                    raise UnsupportedLayout(
                        self.path, '%s has no %s: a normalization without BatchNorm\'s running '
                        'statistics (GroupNorm?) is not a BatchNorm ResNet' % (
                            self.keys[(role, next(f for r, f in self.entries if r == role))],
                            ', '.join(missing)))
        return self

    def unit_description(self):
        kinds = sorted(set(self.units.values()))
        if not kinds:
            return None
        return ', '.join('SE units%s' % (' with biases' if self.se_bias else ' without biases')
                         if k == 'se' else '%s units' % k for k in kinds)

    def describe(self):
        """'ResNet-50 (post-activation, bottleneck blocks 3-4-6-3, SE units, 1000 classes)'."""
        parts = ['post-activation' if self.version == 1 else 'pre-activation',
                 '%s blocks %s' % ('bottleneck' if self.bottleneck else 'basic',
                                   '-'.join(map(str, self.stage_blocks)))]
        units = self.unit_description()
        if units:
            parts.append(units)
        parts.append('%d classes' % self.classes if self.classes is not None
                     else 'no classifier')
        return 'ResNet-%d (%s)' % (self.depth, ', '.join(parts))


# -- the torchvision scheme (timm, GluonCV v1b) --------------------------------------------

_TV_STEM = re.compile(r'^(conv1|bn1)\.([a-z_]+)$')
_TV_BLOCK = re.compile(r'^layer(\d+)\.(\d+)\.(conv\d+|bn\d+|downsample\.[01]|se\.fc[12])'
                       r'\.([a-z_]+)$')
_TV_FC = re.compile(r'^fc\.(weight|bias)$')


def _tv_refusal(key):
    """Why a key of a torchvision-scheme file is not part of a ResNet cmpese builds, when a
    known variant explains it."""
    if re.match(r'^conv1\.\d+\.', key):
        return ('%s: a deep stem of three 3x3 convolutions (ResNet-C/D/S, timm resnet*d / '
                'GluonCV *_v1c/d/e/s); cmpese builds the 7x7 stem (timm resnet50, GluonCV '
                'resnet50_v1b)' % key)
    if re.match(r'^layer\d+\.\d+\.downsample\.2\.', key):
        return ('%s: an average-pooling projection shortcut (ResNet-D, timm resnet*d / GluonCV '
                '*_v1d); cmpese projects with a strided 1x1 convolution' % key)
    if re.match(r'^layer\d+\.\d+\.se\.', key):
        return ('%s: an SE module with more than fc1/fc2 (normalization or another excitation); '
                'cmpese\'s SE is FC-ReLU-FC-sigmoid' % key)
    return None


def parse_torchvision(named, layout, what, bn_names=('weight', 'bias')):
    """Fill ``layout`` from ``named`` (key -> array) in the torchvision scheme.
    ``bn_names``: the file's names of BN scale and shift (timm 'weight'/'bias', GluonCV
    'gamma'/'beta'). ``num_batches_tracked`` is recorded in ``layout.ignored``."""
    bn_map = {bn_names[0]: 'gamma', bn_names[1]: 'beta', 'running_mean': 'running_mean',
              'running_var': 'running_var'}

    def bn(role, key, field, value):
        if field == 'num_batches_tracked':
            layout.ignored.append((key, tuple(value.shape), 'PyTorch\'s count of BN updates; '
                                   'MXNet keeps none'))
        elif field in bn_map:
            layout.add(role, bn_map[field], key, value)
        else:
            raise UnsupportedLayout(layout.path, '%s: unknown BatchNorm field; not %s'
                                    % (key, what))

    def conv(role, key, field, value):
        if field != 'weight':
            raise UnsupportedLayout(layout.path, '%s: a convolution with a %s; cmpese\'s '
                                    'convolutions have none, so this is not %s'
                                    % (key, field, what))
        if len(value.shape) != 4:
            raise UnsupportedLayout(layout.path, '%s has shape %s, expected a 4-D '
                                    'convolution kernel' % (key, tuple(value.shape)))
        layout.add(role, 'weight', key, value)

    for key, value in named.items():
        m = _TV_STEM.match(key)
        if m:
            (conv if m.group(1) == 'conv1' else bn)(
                'stem.conv' if m.group(1) == 'conv1' else 'stem.bn', key, m.group(2), value)
            continue
        m = _TV_BLOCK.match(key)
        if m:
            s, b, layer, field = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
            head = 'layer%d.%d.' % (s, b)
            if layer.startswith('conv'):
                conv(head + layer, key, field, value)
            elif layer.startswith('bn'):
                bn(head + layer, key, field, value)
            elif layer == 'downsample.0':
                conv(head + 'downsample.conv', key, field, value)
            elif layer == 'downsample.1':
                bn(head + 'downsample.bn', key, field, value)
            else:                                   # se.fc1 / se.fc2
                if field not in ('weight', 'bias'):
                    raise UnsupportedLayout(layout.path, '%s: unknown SE field' % key)
                if field == 'weight' and len(value.shape) == 4:
                    if tuple(value.shape[2:]) != (1, 1):
                        raise UnsupportedLayout(layout.path, '%s has shape %s: not a 1x1 '
                                                'excitation layer' % (key, tuple(value.shape)))
                    value = value.reshape(value.shape[:2])
                layout.add(head + layer, field, key, value)
            continue
        m = _TV_FC.match(key)
        if m:
            layout.add('fc', m.group(1), key, value)
            continue
        raise UnsupportedLayout(layout.path, _tv_refusal(key) or '%s is not part of %s'
                                % (key, what))
    return layout


def torchvision_key(role, field, bn_names=('weight', 'bias')):
    """The torchvision-scheme key of ``(role, field)`` (inverse of :func:`parse_torchvision`);
    None for roles the scheme has no place for."""
    if field in ('gamma', 'beta'):
        field = bn_names[0] if field == 'gamma' else bn_names[1]
    if role == 'fc':
        return 'fc.' + field
    if role in ('stem.conv', 'stem.bn'):
        return '%s.%s' % ('conv1' if role == 'stem.conv' else 'bn1', field)
    m = _BLOCK.match(role)
    if not m:
        return None
    layer = m.group(3)
    layer = {'downsample.conv': 'downsample.0', 'downsample.bn': 'downsample.1'}.get(layer,
                                                                                    layer)
    if not re.match(r'^(conv\d+|bn\d+|downsample\.[01]|se\.fc[12])$', layer):
        return None
    return 'layer%s.%s.%s.%s' % (m.group(1), m.group(2), layer, field)


# -- the features.* scheme (cmpese, GluonCV v2) --------------------------------------------

_TOP = re.compile(r'^features\.(\d+)\.(.+)$')
_OUT = re.compile(r'^output\.(weight|bias)$')
_SUB = re.compile(r'^(?:(body)\.(\d+)|(bridge|downsample)\.([01])|(bn|conv)(\d+)|(downsample)|'
                  r'(se)\.(\d+)|(unit)\.(.+))\.([a-z_]+)$')


def parse_features(named, layout, what, se_unit=None):
    """Fill ``layout`` from ``named`` (structural name -> array or Parameter) in the
    ``features.*`` scheme of cmpese's ImageNet ResNets (post-activation ``body.j`` /
    ``bridge``, pre-activation ``bn0``/``conv0``/``downsample``, ``unit.*``) and GluonCV's
    ResNetV2 (``bn1``/``conv1``/``downsample``, ``se.0``/``se.2``).

    ``se_unit(top, block, local_names)`` says whether the unit of block ``block`` of the
    stage at ``features.<top>`` is an SE unit (its ``fc1``/``fc2`` become ``se.fc1``/
    ``se.fc2``); default: the unit holds exactly fc1/fc2 weights (and biases). Returns
    ``{(stage, block): (top, block)}``.
    """
    tops = collections.OrderedDict()
    for key, value in named.items():
        m = _OUT.match(key)
        if m:
            layout.add('fc', m.group(1), key, value)
            continue
        m = _TOP.match(key)
        if not m:
            raise UnsupportedLayout(layout.path, '%s is not part of %s' % (key, what))
        tops.setdefault(int(m.group(1)), []).append((m.group(2), key, value))
    stage_tops = [i for i in sorted(tops) if tops[i][0][0].split('.', 1)[0].isdigit()]
    plain = [i for i in sorted(tops) if i not in stage_tops]
    if not stage_tops:
        raise UnsupportedLayout(layout.path, 'no residual stages (features.N.0.*): not %s'
                                % what)
    # stem (and input BN) before the stages, final BN after them
    before = [i for i in plain if i < stage_tops[0]]
    after = [i for i in plain if i > stage_tops[-1]]
    if any(stage_tops[0] < i < stage_tops[-1] for i in plain):
        raise UnsupportedLayout(layout.path, 'a layer with weights between the stages: not %s'
                                % what)
    kinds = [(_kind({rest for rest, _, _ in tops[i]}), i) for i in before]
    pattern = [k for k, _ in kinds]
    if pattern == ['conv', 'bn']:
        names = ['stem.conv', 'stem.bn']
    elif pattern == ['bn', 'conv', 'bn']:
        names = ['input_bn', 'stem.conv', 'stem.bn']
    else:
        raise UnsupportedLayout(layout.path, 'a stem of %s before the stages; cmpese\'s is '
                                '(input BN,) 7x7 conv, BN' % (' - '.join(pattern) or 'nothing'))
    after_kinds = [_kind({rest for rest, _, _ in tops[i]}) for i in after]
    if after_kinds not in ([], ['bn']):
        raise UnsupportedLayout(layout.path, '%s after the stages; cmpese\'s nets end in '
                                '(BN,) pooling, FC' % ' - '.join(after_kinds))
    for role, i in list(zip(names, before)) + [('final_bn', i) for i in after]:
        for field, key, value in tops[i]:
            if role == 'stem.conv' and field != 'weight':
                raise UnsupportedLayout(layout.path, '%s: a stem convolution with a %s'
                                        % (key, field))
            layout.add(role, field, key, value)
    paths = {}
    for s, top in enumerate(stage_tops, 1):
        blocks = collections.OrderedDict()
        for rest, key, value in tops[top]:
            b, sub = rest.split('.', 1)
            blocks.setdefault(int(b), []).append((sub, key, value))
        for b, items in blocks.items():
            paths[(s, b)] = (top, b)
            _parse_block(items, layout, 'layer%d.%d.' % (s, b), top, b, what, se_unit)
    return paths


def _parse_block(items, layout, head, top, b, what, se_unit):
    body = collections.OrderedDict()      # j -> [(field, key, value)]
    numbered = {}                         # ('bn'|'conv', k) -> [(field, key, value)]
    unit = []
    for sub, key, value in items:
        m = _SUB.match(sub)
        if not m:
            raise UnsupportedLayout(layout.path, '%s is not part of %s' % (key, what))
        field = m.group(12)
        if m.group(1):
            body.setdefault(int(m.group(2)), []).append((field, key, value))
        elif m.group(3):
            role = head + ('downsample.conv' if m.group(4) == '0' else 'downsample.bn')
            if m.group(4) == '0' and field != 'weight':
                raise UnsupportedLayout(layout.path, '%s: a projection convolution with a %s'
                                        % (key, field))
            layout.add(role, field, key, value)
        elif m.group(5):
            numbered.setdefault((m.group(5), int(m.group(6))), []).append((field, key, value))
        elif m.group(7):
            if field != 'weight':
                raise UnsupportedLayout(layout.path, '%s: a projection convolution with a %s'
                                        % (key, field))
            layout.add(head + 'downsample.conv', field, key, value)
        elif m.group(8):
            j = int(m.group(9))
            if j not in (0, 2):
                raise UnsupportedLayout(layout.path, '%s: not an FC-ReLU-FC SE unit' % key)
            layout.add(head + ('se.fc1' if j == 0 else 'se.fc2'), field, key, value)
        else:
            unit.append((m.group(11) + '.' + field, key, value))
    if body:
        convs = [j for j in body if _kind({f for f, _, _ in body[j]}) == 'conv']
        bns = [j for j in body if j not in convs]
        for role_kind, js in (('conv', convs), ('bn', bns)):
            for k, j in enumerate(js, 1):
                for field, key, value in body[j]:
                    if role_kind == 'conv' and field != 'weight':
                        raise UnsupportedLayout(layout.path, '%s: a convolution with a %s; '
                                                'cmpese\'s have none, so not %s'
                                                % (key, field, what))
                    layout.add('%s%s%d' % (head, role_kind, k), field, key, value)
    if numbered:
        base = min(k for kind, k in numbered if kind == 'conv')
        for (kind, k), fields in sorted(numbered.items()):
            if kind == 'conv':
                role = '%sconv%d' % (head, k - base + 1)
            elif k == base:
                role = head + 'preact'
            else:
                role = '%sbn%d' % (head, k - base)
            for field, key, value in fields:
                layout.add(role, field, key, value)
    if unit:
        local = {name for name, _, _ in unit}
        is_se = se_unit(top, b, local) if se_unit is not None else (
            {'fc1.weight', 'fc2.weight'} <= local <= {'fc1.weight', 'fc2.weight', 'fc1.bias',
                                                       'fc2.bias'})
        for name, key, value in unit:
            if is_se:
                role = head + 'se.' + name.split('.')[0]
            else:
                role = head + 'unit.' + name.rsplit('.', 1)[0]
            layout.add(role, name.rsplit('.', 1)[1], key, value)


def features_key(role, field, flavour):
    """The ``features.*`` key of ``(role, field)`` in GluonCV's ResNetV2 (``flavour='gluoncv'``);
    inverse of :func:`parse_features` for that scheme (4 stages at features.5-8)."""
    assert flavour == 'gluoncv'
    fixed = {'input_bn': 'features.0', 'stem.conv': 'features.1', 'stem.bn': 'features.2',
             'final_bn': 'features.9', 'fc': 'output'}
    if role in fixed:
        return '%s.%s' % (fixed[role], field)
    m = _BLOCK.match(role)
    if not m:
        return None
    layer = m.group(3)
    k = re.match(r'^(conv|bn)(\d+)$', layer)
    if k:
        layer = 'conv%s' % k.group(2) if k.group(1) == 'conv' else 'bn%d' % (int(k.group(2)) + 1)
    else:
        layer = {'preact': 'bn1', 'downsample.conv': 'downsample', 'se.fc1': 'se.0',
                 'se.fc2': 'se.2'}.get(layer)
        if layer is None:
            return None
    return 'features.%d.%s.%s.%s' % (4 + int(m.group(1)), m.group(2), layer, field)


# -- the target network --------------------------------------------------------------------

def target_layout(net):
    """The :class:`Layout` of a cmpese ImageNet ResNet (its Parameters, by structural name).
    Its SE units (:class:`cmpese.units.se.SEUnit`) get the ``se.*`` roles; any other unit
    keeps its own names under ``unit.*``."""
    from ..models.resnet_imagenet import ResNetImageNet
    from ..units.se import SEUnit
    if not isinstance(net, ResNetImageNet):
        raise UnsupportedLayout(None, 'load_pretrained maps ImageNet ResNets '
                                '(cmpese.models.resnet_imagenet: resnet50, se_resnet50, '
                                'cmpe_se_resnet50_1x1, ini_resnet50_*, ...); got a %s'
                                % type(net).__name__)
    layout = Layout('target')

    def unit_of(top, b):
        return net.features[top][b].unit

    def se_unit(top, b, local):
        return isinstance(unit_of(top, b), SEUnit)

    paths = parse_features(net._collect_params_with_prefix(), layout, 'a cmpese ResNet',
                           se_unit=se_unit)
    for key, (top, b) in paths.items():
        unit = unit_of(top, b)
        if unit is not None and not isinstance(unit, SEUnit):
            layout.unit_names[key] = type(unit).__name__
    layout.finish('a cmpese ResNet')
    layout.se_units = [unit_of(*paths[k]) for k in sorted(layout.units)
                       if layout.units[k] == 'se']
    return layout
