"""Model zoo: paper names -> constructors, also registered into GluonCV's model zoo.

Names are the papers' in lower case, the unit first and the variant last
(``cmpe_se_wrn28_10_1x1``); ``classes=`` is a keyword. Other depths and widths are built
by the family builders: :func:`cmpese.models.get_wrn`, :func:`get_preresnet`,
:func:`get_resnet_cifar`, and :func:`get_model` also parses WRN and pre-act ResNet names of
any valid depth and width (``cmpe_se_wrn16_4_1x1``, ``se_preresnet56``) and InI names of
any Table I set (``ini_wrn16_4_mix_3``, ``ini_pyramidnet272_a200_square_5``).
"""
import difflib
import functools
import os
import re

import mxnet as mx

from .models import (get_allcnn, get_preresnet, get_pyramidnet, get_resnet_cifar,
                     get_resnet_imagenet, get_wrn)
from .units import unit_uses_identity

__all__ = ['get_model', 'get_model_list', 'register_model', 'register_gluoncv',
           'pretrained_path']

_MODELS = {}

CMPE_MODES = ('double_fc', '2x1', '1x1')
WRN_CONFIGS = ((16, 8), (22, 10), (28, 10), (40, 10))
PRERESNET_DEPTHS = (20, 56, 110, 164)
RESNET_CIFAR_DEPTHS = (20, 32, 44, 56, 110)

_NO_WEIGHTS = (
    'No published weights exist for {name!r} (the papers released none that cmpese can load, '
    'and this package downloads nothing). Expected a file at {path}. Train it with\n'
    '    python train_cifar.py --model {name} --export\n'
    'and copy the resulting parameters to {path} (or pass root=<dir holding {name}.params>).')


def register_model(name, constructor, doc=None):
    """Add ``name`` to the zoo; ``constructor(**kwargs)`` returns the network."""
    if name in _MODELS:
        raise ValueError('model %r is already registered' % name)
    if doc:
        constructor = functools.update_wrapper(functools.partial(constructor), constructor)
        constructor.__doc__ = doc
    _MODELS[name] = constructor
    return constructor


def _unit_variants():
    """(name prefix, name suffix, unit, paper) for plain, SE and every CMPE-SE mode."""
    yield '', '', None, 'plain'
    yield 'se_', '', 'se', 'SE (Hu et al.)'
    for mode in CMPE_MODES:
        yield 'cmpe_se_', '_' + mode, 'cmpe_se_' + mode, 'CMPE-SE %s (Hu et al., CMPE-SE)' % mode


def _register_cifar_models():
    for prefix, suffix, unit, what in _unit_variants():
        for depth, width in WRN_CONFIGS:
            register_model('%swrn%d_%d%s' % (prefix, depth, width, suffix),
                           functools.partial(get_wrn, depth, width, unit=unit),
                           'WRN-%d-%d, %s units.' % (depth, width, what))
        for depth in PRERESNET_DEPTHS:
            register_model('%spreresnet%d%s' % (prefix, depth, suffix),
                           functools.partial(get_preresnet, depth, unit=unit),
                           'Pre-activation ResNet-%d for CIFAR, %s units.' % (depth, what))
    for depth in RESNET_CIFAR_DEPTHS:
        register_model('resnet%d_cifar' % depth, functools.partial(get_resnet_cifar, depth),
                       'Original CIFAR ResNet-%d (He et al. 2016a), projection bridges.' % depth)
        register_model('se_resnet%d_cifar' % depth,
                       functools.partial(get_resnet_cifar, depth, unit='se'),
                       'SE-ResNet-%d for CIFAR: SE on every residual flow.' % depth)
        register_model('res_se_net%d' % depth,
                       functools.partial(get_resnet_cifar, depth, bridge_unit='se'),
                       'Res-SE-Net-%d: SE on every bridge connection after downsampling.'
                       % depth)


# Inner-Imaging rows of the InI paper's Tables II-IV (any other Table I set is parsed by name).
# Pre-act ResNet-110's first stage has C = 16, whose 2 x 16 map takes no 3x3 G-filter, so its
# square-1 rows cannot be built by the paper's map rule (docs/inner_imaging.md).
INI_TABLE_SETS = {
    'wrn16_8': ('simple_3', 'square_1', 'square_3', 'square_3_d', 'mix_5', 'mix_5_d'),
    'wrn22_10': ('simple_3', 'square_1', 'square_3', 'square_3_d', 'mix_5', 'mix_5_d'),
    'wrn28_10': ('square_1_nojoint', 'simple_1', 'simple_3', 'square_1', 'square_3',
                 'square_3_d', 'mix_5', 'mix_5_d'),
    'preresnet110': ('simple_1', 'simple_3', 'square_3', 'square_3_d'),
    'preresnet164': ('square_1_nojoint', 'simple_1', 'simple_3', 'square_1', 'square_3',
                     'square_3_d', 'mix_5', 'mix_5_d'),
}

# InI Table IV's PyramidNet rows; 60 of PyramidNet-272's 90 block widths are not multiples of
# 16, so these use rounding='floor' (cmpese.models.pyramidnet, docs/inner_imaging.md).
INI_PYRAMIDNET_SETS = ('square_3', 'mix_5', 'mix_5_d')


def _register_other_families():
    """All-CNN, PyramidNet-272 (alpha 200) and the ImageNet ResNets (InI Tables II, IV, V;
    CMPE Table 4)."""
    register_model('allcnn', get_allcnn, 'All-CNN-C (Springenberg et al.) with BN.')
    register_model('se_allcnn', functools.partial(get_allcnn, unit='se'),
                   'SE-All-CNN: an SE unit after every feature convolution.')
    for gset in ('square_1', 'square_3'):
        register_model('ini_allcnn_%s' % gset, functools.partial(get_allcnn, unit='ini_' + gset),
                       'InI-All-CNN-%s (non-joint: no identity flow).' % gset.replace('_', '-'))
    register_model('pyramidnet272_a200', functools.partial(get_pyramidnet, 272, 200),
                   'PyramidNet-272, alpha 200, bottleneck (Han, Kim and Kim).')
    for gset in INI_PYRAMIDNET_SETS:
        name = 'ini_pyramidnet272_a200_%s' % gset
        register_model(name, _parse_name(name),
                       'InI-PyramidNet-272-%s (InI Table IV), alpha 200; widths that t = 16 does '
                       'not divide use floor(C/16) and a zero-padded fold (rounding=\'floor\').'
                       % gset.replace('_', '-'))
    for depth in (50, 101):
        build = functools.partial(get_resnet_imagenet, depth)
        register_model('resnet%d' % depth, build, 'ResNet-%d for ImageNet (v1).' % depth)
        register_model('se_resnet%d' % depth, functools.partial(build, unit='se'),
                       'SE-ResNet-%d for ImageNet.' % depth)
        for mode in ('double_fc', '1x1'):
            register_model('cmpe_se_resnet%d_%s' % (depth, mode),
                           functools.partial(build, unit='cmpe_se_' + mode, version=2),
                           'CMPE-SE-ResNet-%d %s on the pre-activation ResNet the CMPE paper '
                           'trains on ImageNet.' % (depth, mode))
        for suffix in ('', '_spa', '_spa4'):
            register_model('ini_resnet%d_mix_5_d%s' % (depth, suffix),
                           functools.partial(build, unit='ini_mix_5_d' + suffix),
                           'InI-ResNet-%d-mix-5-d%s (InI Table V).' % (depth, suffix))


def _register_ini_models():
    for backbone, gsets in INI_TABLE_SETS.items():
        for gset in gsets:
            name = 'ini_%s_%s' % (backbone, gset)
            register_model(name, _parse_name(name), 'InI-%s-%s (Inner-Imaging, Table I set %s).'
                           % (backbone, gset.replace('_', '-'), gset.replace('_', '-')))


_register_cifar_models()


_NAME_PATTERN = re.compile(
    r'^(?P<unit>se_|cmpe_se_)?(?:(?P<wrn>wrn(?P<wd>\d+)_(?P<wk>\d+))|(?P<pre>preresnet(?P<pd>\d+)))'
    r'(?:_(?P<mode>double_fc|2x1|1x1))?$')


_INI_PATTERN = re.compile(
    r'^ini_(?:(?P<wrn>wrn(?P<wd>\d+)_(?P<wk>\d+))|(?P<pre>preresnet(?P<pd>\d+))'
    r'|(?P<pyr>pyramidnet(?P<yd>\d+)_a(?P<ya>\d+)))_(?P<gset>.+)$')


def _parse_name(name):
    """Constructor for a WRN / pre-act ResNet name of a depth, width or G-filter set the list
    does not hold (``cmpe_se_wrn16_4_1x1``, ``se_preresnet56``, ``ini_wrn16_4_mix_3``), or
    None."""
    m = _INI_PATTERN.match(name)
    if m is not None:
        unit = 'ini_' + m.group('gset')
        try:
            unit_uses_identity(unit)      # a registered set, possibly with _spa / _spa<tau>
        except ValueError:
            return None
        if m.group('wrn'):
            return functools.partial(get_wrn, int(m.group('wd')), int(m.group('wk')), unit=unit)
        if m.group('pyr'):
            return functools.partial(get_pyramidnet, int(m.group('yd')), int(m.group('ya')),
                                     unit=unit, rounding='floor')
        return functools.partial(get_preresnet, int(m.group('pd')), unit=unit)
    m = _NAME_PATTERN.match(name)
    if m is None or (m.group('unit') == 'cmpe_se_') != bool(m.group('mode')):
        return None
    unit = {None: None, 'se_': 'se'}.get(m.group('unit'), 'cmpe_se_%s' % m.group('mode'))
    if m.group('wrn'):
        return functools.partial(get_wrn, int(m.group('wd')), int(m.group('wk')), unit=unit)
    return functools.partial(get_preresnet, int(m.group('pd')), unit=unit)


def get_model_list():
    """Every model name of the zoo, sorted."""
    return sorted(_MODELS)


def _unknown(name):
    close = difflib.get_close_matches(name, list(_MODELS), n=5, cutoff=0.6)
    msg = 'unknown model %r.' % name
    if close:
        msg += ' Closest names: %s.' % ', '.join(close)
    msg += ' cmpese.get_model_list() lists all %d names.' % len(_MODELS)
    return ValueError(msg)


def pretrained_path(name, root=None):
    root = root or os.environ.get('CMPESE_HOME', os.path.join('~', '.mxnet', 'models'))
    return os.path.join(os.path.expanduser(root), '%s.params' % name)


def get_model(name, classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    """Build the zoo model ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`get_model_list`, e.g. 'cmpe_se_wrn28_10_1x1'.
    classes : int, optional
        Size of the output layer; the family's default when omitted (10 for CIFAR models,
        1000 for the ImageNet ResNets).
    pretrained : bool
        Load ``{root}/{name}.params``. No weights are published for these models, so the file
        must come from your own training run (``train_cifar.py --export``).
    root : str, optional
        Directory of pretrained parameters; default ``$CMPESE_HOME`` or ``~/.mxnet/models``.
    ctx : Context, optional
        Where to load pretrained parameters.
    **kwargs
        Passed to the family builder: ``reduction``, ``drop_rate``, ``unit_kwargs``...
    """
    if not isinstance(name, str):
        raise TypeError('model name must be a string, got %r' % (name,))
    key = name.lower()
    constructor = _MODELS.get(key) or _parse_name(key)
    if constructor is None:
        raise _unknown(name)
    if classes is not None:
        kwargs['classes'] = classes
    net = constructor(**kwargs)
    if pretrained:
        path = pretrained_path(key, root)
        if not os.path.isfile(path):
            raise FileNotFoundError(_NO_WEIGHTS.format(name=key, path=path))
        net.load_parameters(path, ctx=ctx or mx.cpu())
    return net


def register_gluoncv():
    """Register every cmpese name into ``gluoncv.model_zoo`` so that
    ``gluoncv.model_zoo.get_model(name)`` builds our models. Called by ``import cmpese``."""
    try:
        from gluoncv.model_zoo import model_zoo as gcv_zoo
    except ImportError:  # GluonCV is optional at run time
        return False
    for name in _MODELS:
        existing = gcv_zoo._models.get(name)
        if existing is not None and getattr(existing, '_cmpese', False) is False:
            raise RuntimeError('GluonCV already has a model named %r; cmpese will not shadow it'
                               % name)
        gcv_zoo._models[name] = _gluoncv_entry(name)
    return True


def _gluoncv_entry(name):
    def build(**kwargs):
        return get_model(name, **kwargs)
    build.__name__ = name
    build.__doc__ = _MODELS[name].__doc__
    build._cmpese = True
    return build


_register_ini_models()
_register_other_families()
