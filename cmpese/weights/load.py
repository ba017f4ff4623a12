"""Loading a file's weights into a cmpese ImageNet ResNet by role (:func:`load_pretrained`)."""
import os

import mxnet as mx
import numpy as np

from .layout import Layout, parse_features, part_of, target_layout
from .report import (DepthMismatch, LayoutMismatch, LoadReport, NotAWeightsFile, ShapeMismatch,
                     UnsupportedLayout)

__all__ = ['load_pretrained', 'read_weights', 'detect_source', 'SOURCES']

SOURCES = ('auto', 'timm', 'gluoncv', 'cmpese')
BUILT_DEPTHS = (18, 34, 50, 101, 152)
WHAT_CMPESE = 'a cmpese ImageNet ResNet parameter file (net.save_parameters)'
_PREACT_ONLY = ('preact', 'final_bn', 'input_bn')


def _is_cmpese_keys(keys):
    return any(('.bridge.' in k or '.bn0.' in k or '.conv0.' in k or '.unit.' in k
                or '_stage1_block1_' in k) for k in keys)


def detect_source(path, arrays=None):
    """'timm' (a safetensors file), 'cmpese' or 'gluoncv' (an MXNet .params file, told
    apart by its key names); a one-line :class:`NotAWeightsFile` for anything else."""
    from .gluoncv import is_mxnet_params, load_ndarrays
    from .timm import is_safetensors
    if not os.path.isfile(path):
        raise NotAWeightsFile(path, 'no such file')
    if is_safetensors(path):
        return 'timm'
    if is_mxnet_params(path):
        keys = list(arrays if arrays is not None else load_ndarrays(path))
        return 'cmpese' if _is_cmpese_keys(keys) else 'gluoncv'
    with open(path, 'rb') as f:
        head = f.read(4)
    if head.startswith(b'PK\x03\x04') or head[:1] == b'\x80':
        raise NotAWeightsFile(path, 'a PyTorch checkpoint (torch.save); cmpese reads timm '
                              'weights as safetensors without torch: take the model.safetensors '
                              'of the Hugging Face hub, or save the state_dict with '
                              'safetensors.torch.save_file')
    raise NotAWeightsFile(path, 'neither a safetensors file (timm) nor an MXNet .params file '
                          '(GluonCV, cmpese)%s' % (' (it is empty)' if not head else ''))


def _read_cmpese(path, arrays):
    if any(k.startswith(('arg:', 'aux:')) for k in arrays):
        raise UnsupportedLayout(path, 'an exported cmpese file (arg:/aux: names); load it with '
                                'cmpese.model_zoo.load_parameters_file(net, path) into its model '
                                'and net.save_parameters() it, or use the run\'s best.params')
    layout = Layout('cmpese', path)
    parse_features({k: v.asnumpy() for k, v in arrays.items()}, layout, WHAT_CMPESE)
    return layout.finish(WHAT_CMPESE)


def read_weights(path, source='auto', arch=None):
    """The :class:`~cmpese.weights.layout.Layout` of a weights file: what it holds, by role.
    ``source``: 'auto' (from the file), 'timm' (safetensors), 'gluoncv' or 'cmpese' (.params);
    ``arch``: the GluonCV model name, only needed for an old GluonCV file saved by parameter
    names whose model should not be searched for."""
    from .gluoncv import load_ndarrays, read_gluoncv
    from .timm import read_timm
    if source not in SOURCES:
        raise NotAWeightsFile(path, 'unknown source %r: use one of %s' % (source,
                                                                          ', '.join(SOURCES)))
    if not os.path.isfile(path):
        raise NotAWeightsFile(path, 'no such file')
    arrays = None
    if source == 'auto':
        source = detect_source(path)
    if source == 'timm':
        layout = read_timm(path)
    else:
        arrays = load_ndarrays(path)
        if source == 'gluoncv':
            layout = read_gluoncv(path, arch=arch, arrays=arrays)
        else:
            layout = _read_cmpese(path, arrays)
    if layout.depth not in BUILT_DEPTHS:
        raise DepthMismatch(path, 'holds a %s, a depth cmpese does not build (ImageNet ResNet '
                            'depths: %s)' % (_structure(layout), ', '.join(map(str, BUILT_DEPTHS))))
    return layout


def _structure(layout):
    return 'ResNet-%d (%s blocks %s)' % (layout.depth,
                                         'bottleneck' if layout.bottleneck else 'basic',
                                         '-'.join(map(str, layout.stage_blocks)))


def _source_description(layout):
    from .timm import timm_name
    if layout.origin == 'timm':
        return 'timm %s layout, %s' % (timm_name(layout), layout.describe())
    if layout.origin == 'gluoncv':
        return 'GluonCV %s, %s' % (layout.arch, layout.describe())
    return 'cmpese %s' % layout.describe()


def _block(role):
    parts = role.split('.')
    return int(parts[0][len('layer'):]), int(parts[1])


def _backbone_skip_reason(role, src, dst):
    """Why a backbone tensor of the file has no place in a model of the other version."""
    last = 'bn%d' % (3 if src.bottleneck else 2)
    if dst.version == 2 and role.endswith('.' + last):
        return ('BN after the block\'s last convolution: a pre-activation model has none '
                '(its next block\'s input BN is new)')
    if dst.version == 2 and role.endswith('.downsample.bn'):
        return 'projection BN: a pre-activation model projects by a bare 1x1 convolution'
    if dst.version == 1 and role.split('.')[-1] in _PREACT_ONLY + ('input_bn',):
        return 'pre-activation BN: a post-activation model has none'
    return None


def _plan(src, dst, path, backbone_only, report):
    """``[(param, array)]`` to copy; fills ``report``; raises for a file that does not fit."""
    if (src.bottleneck, src.stage_blocks) != (dst.bottleneck, dst.stage_blocks):
        raise DepthMismatch(path, 'holds a %s and the model is a %s: build the model of the '
                            'file\'s depth, or take the weights of a %s'
                            % (_structure(src), _structure(dst), 'ResNet-%d' % dst.depth))
    if src.version != dst.version and not backbone_only:
        raise LayoutMismatch(path, 'holds a %s ResNet and the model is %s, so the network '
                             'cannot compute the file\'s function: pass backbone_only=True '
                             '(--backbone-only) to initialize its backbone (the convolutions '
                             'and the BNs between them), or build the model with version=%d'
                             % ('post-activation' if src.version == 1 else 'pre-activation',
                                'pre-activation (version=2, as the cmpe_se_* zoo names)'
                                if dst.version == 2 else 'post-activation (version=1)',
                                src.version))
    unit_kind = dst.unit_description() or 'no'
    copies, used = [], set()

    def take(role, field, param, key, part):
        value = src.get(role, field)
        if tuple(value.shape) != tuple(param.shape):
            raise ShapeMismatch(path, '%s has shape %s and the model\'s %s (%s) has %s: the file '
                                'is not a %s%s' % (src.keys[(role, field)], tuple(value.shape),
                                                   key, role, tuple(param.shape),
                                                   _structure(dst), _se_hint(role, src)))
        copies.append((param, value))
        used.add((role, field))
        report.add_loaded(key, src.keys[(role, field)], param.shape, part)

    for (role, field), param in dst.entries.items():
        key = dst.keys[(role, field)]
        part = part_of(role)
        present = src.get(role, field) is not None
        if part == 'classifier':
            if backbone_only:
                report.add_new(key, param.shape, 'classifier: backbone only (left as '
                               'initialized; fine-tuning trains it)')
            elif src.classes is None:
                report.add_new(key, param.shape, 'classifier: the file has none')
            elif src.classes != dst.classes:
                report.add_new(key, param.shape, 'classifier for %d classes; the file\'s has %d'
                               % (dst.classes, src.classes))
            elif present:
                take(role, field, param, key, part)
            else:
                report.add_new(key, param.shape, 'classifier %s: the file has none' % field)
        elif part == 'unit':
            name = dst.units.get(_block(role))
            label = 'SE' if name == 'se' else name
            if backbone_only:
                report.add_new(key, param.shape, '%s unit: backbone only (left as initialized)'
                               % label)
            elif '.unit.' in role and present and \
                    _unit_signature(src, _block(role)) != _unit_signature(dst, _block(role)):
                report.add_new(key, param.shape, '%s unit: the file\'s unit here is another '
                               'one (left as initialized)' % label)
            elif present:
                take(role, field, param, key, part)
            elif '.se.' in role and src.has_role(role) and field == 'bias':
                copies.append((param, np.zeros(param.shape, np.float32)))
                report.add_new(key, param.shape, 'SE FC bias: the file\'s SE units have none; '
                               'set to 0 (the same function)')
            else:
                report.add_new(key, param.shape, '%s unit: not in the file (left as '
                               'initialized)' % label)
        else:
            if present:
                take(role, field, param, key, part)
            elif src.version != dst.version and _backbone_skip_reason(role, dst, src):
                report.add_new(key, param.shape, '%s: the file has none (left as initialized)'
                               % _backbone_skip_reason(role, dst, src).split(':')[0])
            else:
                raise UnsupportedLayout(path, 'has no %s.%s, which the model\'s %s needs: an '
                                        'incomplete file, or not a %s' % (role, field, key,
                                                                          _structure(dst)))

    for (role, field), value in src.entries.items():
        if (role, field) in used:
            continue
        key = src.keys[(role, field)]
        part = part_of(role)
        if part == 'classifier':
            reason = ('classifier: backbone only' if backbone_only else
                      'classifier for %d classes; the model has %s' % (
                          src.classes, dst.classes if dst.classes is not None else 'none'))
        elif part == 'unit':
            block = _block(role)
            mine = dst.units.get(block)
            if backbone_only:
                reason = 'unit: backbone only'
            elif mine is None:
                reason = 'unit: the model has none here'
            elif '.unit.' in role and mine != 'se' and \
                    _unit_signature(src, block) != _unit_signature(dst, block):
                reason = 'unit: the model\'s unit here is another %s' % mine
            elif '.se.' in role and mine == 'se' and field == 'bias':
                if np.any(value != 0):
                    raise LayoutMismatch(path, 'the file\'s SE units have biases (timm\'s '
                                         'SEModule) and the model\'s have none: build it with '
                                         'unit_kwargs={\'use_bias\': True} (--model-args '
                                         '\'{"unit_kwargs": {"use_bias": true}}\'), or pass '
                                         'backbone_only=True')
                reason = 'SE FC bias, all zero: dropped (the same function)'
            else:
                reason = 'unit: the model\'s units here are %s' % (
                    'SE' if mine == 'se' else mine)
        else:
            reason = _backbone_skip_reason(role, src, dst)
            if reason is None:
                raise UnsupportedLayout(path, '%s has no place in the model (a %s): not the same '
                                        'network' % (key, dst.describe()))
        report.add_skipped(key, value.shape, reason)
    for key, shape, reason in src.ignored:
        report.add_skipped(key, shape, reason)
    if src.version != dst.version:
        report.notes.append(
            'post-activation file into a pre-activation model: the convolutions and the BNs '
            'between them keep their roles; each block\'s input BN and the final BN are new; '
            'the BN after each block\'s last convolution and the projection BNs are skipped. '
            'Fine-tune before use.' if src.version == 1 else
            'pre-activation file into a post-activation model: the convolutions and the BNs '
            'between them keep their roles; the BN after each block\'s last convolution and '
            'the projection BNs are new. Fine-tune before use.')
    return copies, unit_kind


def _unit_signature(layout, block):
    head = 'layer%d.%d.' % block
    return sorted((role, field, tuple(v.shape)) for (role, field), v in layout.entries.items()
                  if role.startswith(head) and part_of(role) == 'unit')


def _se_hint(role, src):
    if '.se.' in role and src.origin == 'timm':
        return (' (timm rounds its SE width up to a multiple of 8, so the SE units of '
                'seresnet18/34 do not map; pass backbone_only=True)')
    return ''


def _copy(net, copies, ctx, init):
    """Set every ``(param, array)`` of ``copies``; a parameter not yet initialized is
    initialized with its array (as Gluon's own load does), any other uninitialized one with
    ``init``. Returns how many were uninitialized."""
    uninitialized = {id(p) for p in net.collect_params().values()
                     if p._data is None and not p._deferred_init}
    ctx = ctx or mx.cpu()
    for param, value in copies:
        data = mx.nd.array(value, dtype=param.dtype)
        if id(param) in uninitialized:
            param._load_init(data, ctx)
        else:
            param.set_data(data)
    rest = [p for p in net.collect_params().values() if p._data is None and not p._deferred_init]
    if rest:
        init = init or mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)
        for p in rest:
            p.initialize(default_init=init, ctx=ctx)
    return len(uninitialized)


def load_pretrained(net, path, source='auto', backbone_only=False, arch=None, ctx=None,
                    init=None):
    """Copy the weights of ``path`` into ``net`` (a cmpese ImageNet ResNet) by role, and
    return the :class:`~cmpese.weights.report.LoadReport` of what was loaded, what is new
    in ``net`` and what of the file was skipped, and why.

    Parameters
    ----------
    net : cmpese.models.resnet_imagenet.ResNetImageNet
        Plain, SE, CMPE-SE or InI; post- (``version=1``) or pre-activation (``version=2``).
        Parameters not yet initialized are initialized first with ``init`` (default He /
        MSRA gaussian, as the trainers) on ``ctx`` (default CPU); initialized ones keep
        their contexts.
    path : str
        A timm safetensors checkpoint, a GluonCV ``.params`` (resnet*_v1b, resnet*_v2,
        se_resnet*_v2) or a cmpese ``.params`` of an ImageNet ResNet (``save_parameters``).
    source : {'auto', 'timm', 'gluoncv', 'cmpese'}
    backbone_only : bool
        Load the stem and the residual stages only; the units and the classifier stay as
        initialized. Needed to load a post-activation file into a pre-activation model.
    arch : str, optional
        The GluonCV model name of an old GluonCV file saved by parameter names (otherwise
        searched for).

    Raises a :class:`~cmpese.weights.report.WeightsError` (a :class:`cmpese.errors.UserError`,
    one line) for a file that does not fit: not a weights file or damaged, another network,
    another depth, a shape that differs, SE biases the model cannot hold.
    """
    dst = target_layout(net)
    src = read_weights(path, source, arch)
    report = LoadReport(path, src.origin, _source_description(src),
                        'cmpese %s' % dst.describe(), backbone_only)
    copies, _ = _plan(src, dst, path, backbone_only, report)
    report.notes.extend(src.notes)
    if not backbone_only and any(k == 'se' for k in dst.units.values()):
        odd = [u for u in getattr(dst, 'se_units', [])
               if u._pool != 'avg' or getattr(u.gate, '_act_type', 'sigmoid') != 'sigmoid']
        if odd and any(e.part == 'unit' for e in report.loaded):
            report.notes.append('the model\'s SE units squeeze by %s / gate by %s; the file\'s '
                                'were trained with average pooling and a sigmoid'
                                % (odd[0]._pool, odd[0].gate._act_type))
    fresh = _copy(net, copies, ctx, init)
    if fresh:
        report.notes.append('%d parameters of the model were not initialized: the loaded ones '
                            'took the file\'s values, the new ones were initialized' % fresh)
    return report
