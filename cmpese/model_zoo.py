"""Model zoo: paper names -> constructors, also registered into GluonCV's model zoo.

Names are the papers' in lower case, the unit first and the variant last
(``cmpe_se_wrn28_10_1x1``); ``classes=`` is a keyword. Other depths and widths are built
by the family builders: :func:`cmpese.models.get_wrn`, :func:`get_preresnet`,
:func:`get_resnet_cifar`, and :func:`get_model` also parses WRN and pre-act ResNet names of
any valid depth and width (``cmpe_se_wrn16_4_1x1``, ``se_preresnet56``) and InI names of
any Table I set (``ini_wrn16_4_mix_3``, ``ini_pyramidnet272_a200_square_5``).

Every name carries its metadata in one :class:`ModelInfo` (:func:`get_model_info`): family,
papers and the paper tables it appears in, input size, default classes and the default
training preset per dataset. The trainers, the presets, the complexity tool and the docs
read it from there; names parsed for other depths and widths get the same metadata. A
unit's paper is the unit's own (``register_unit(..., paper=...)``), the tables are those
of :mod:`cmpese.papers` whose rows name the model, and the Inner-Imaging names listed are
those the papers' rows print.
"""
import collections
import difflib
import functools
import os
import re

from .models import (get_allcnn, get_preresnet, get_pyramidnet, get_resnet_cifar,
                     get_resnet_imagenet, get_wrn)
from .papers import PAPERS, model_tables, row_models
from .units import lookup_unit
from .weights.params import ParamsError, load_params_checked

__all__ = ['get_model', 'get_model_list', 'register_model', 'register_gluoncv',
           'pretrained_path', 'load_parameters_file', 'PretrainedError', 'get_model_info',
           'ModelInfo', 'PAPERS', 'FAMILIES']

_MODELS = {}     # name -> constructor
_INFO = {}       # name -> ModelInfo

# PAPERS (re-exported from cmpese.papers): the papers, by the keys ModelInfo.papers uses.

# family -> backbone paper, input size, default classes; identity_flow=False for a family
# whose units get no identity flow (All-CNN is not residual)
FAMILIES = {
    'wrn': dict(paper='wrn', input_size=32, classes=10),
    'preresnet': dict(paper='preact', input_size=32, classes=10),
    'resnet_cifar': dict(paper='resnet', input_size=32, classes=10),
    'allcnn': dict(paper='allcnn', input_size=32, classes=10, identity_flow=False),
    'pyramidnet': dict(paper='pyramidnet', input_size=32, classes=10),
    'resnet_imagenet': dict(paper='resnet', input_size=224, classes=1000),
}
CIFAR_DATASETS = ('cifar10', 'cifar100', 'svhn', 'digits', 'fashion-mnist', 'mnist')

ModelInfo = collections.namedtuple('ModelInfo', [
    'name', 'family', 'unit', 'papers', 'tables', 'input_size', 'classes', 'presets',
    'description'])
ModelInfo.__doc__ = """What the package knows about one zoo name.

``family`` (a key of :data:`FAMILIES`), ``unit`` (the recalibration unit name, or None;
Res-SE-Net's is its bridge unit), ``papers`` (keys of :data:`PAPERS`: the unit's paper
first, then the backbone's), ``tables`` (the paper tables printing a figure for it, e.g.
'CMPE Table 1'), ``input_size`` (side of the square input), ``classes`` (default output
size), ``presets`` (dataset -> default training preset of :mod:`cmpese.training.presets`),
``description``."""


def _unit_paper(unit, bridge=False):
    """The paper of a model's unit: the one the unit declares at registration; Res-SE-Net's
    for a unit on the bridge connections."""
    if unit is None:
        return None
    if bridge:
        return 'res_se_net'
    return lookup_unit(unit).paper


def _default_presets(family, unit_paper):
    """dataset -> preset: the schedule of the paper that introduced the model (the unit's
    paper, else the backbone's as the recalibration papers train it)."""
    if family == 'resnet_imagenet':
        return {'imagenet': {'cmpe': 'cmpe_imagenet', 'ini': 'ini_imagenet'}.get(
            unit_paper, 'senet')}
    ini = unit_paper == 'ini'
    if family == 'wrn':
        cifar = 'ini_wrn' if ini else 'cmpe_wrn'
    elif family in ('allcnn', 'pyramidnet'):
        cifar = 'ini_other'
    elif family == 'resnet_cifar' and not ini:
        cifar = 'res_se_net'
    else:
        cifar = 'ini_resnet' if ini else 'cmpe_preresnet'
    return {'cifar10': cifar, 'cifar100': cifar, 'svhn': 'ini_svhn' if ini else 'cmpe_svhn',
            'digits': 'digits', 'fashion-mnist': 'fashion_mnist', 'mnist': 'fashion_mnist'}


def _make_info(name, family, unit=None, bridge=False, description=''):
    spec = FAMILIES[family]
    paper = _unit_paper(unit, bridge)
    papers = tuple(p for p in (paper, spec['paper']) if p)
    return ModelInfo(name, family, unit, papers, None, spec['input_size'], spec['classes'],
                     _default_presets(family, paper), description)

CMPE_MODES = ('double_fc', '2x1', '1x1')
WRN_CONFIGS = ((16, 8), (22, 10), (28, 10), (40, 10))
PRERESNET_DEPTHS = (20, 56, 110, 164)
RESNET_CIFAR_DEPTHS = (20, 32, 44, 56, 110)

_NO_WEIGHTS = (
    'No published weights exist for {name!r} (the papers released none that cmpese can load, '
    'and this package downloads nothing). Expected a file at {path}. Train it with\n'
    '    python train_cifar.py --model {name} --export\n'
    'and copy the resulting parameters to {path} (or pass root=<dir holding {name}.params>).')


def register_model(name, constructor, doc=None, family=None, unit=None, bridge=False):
    """Add ``name`` to the zoo; ``constructor(**kwargs)`` returns the network.

    ``family`` (a key of :data:`FAMILIES`) and ``unit`` (its unit name; ``bridge=True`` for
    a unit on the bridge connections) give the entry its :class:`ModelInfo`; a user's own
    family may leave them out (then only the constructor is known).
    """
    if name in _MODELS:
        raise ValueError('model %r is already registered' % name)
    if doc:
        constructor = functools.update_wrapper(functools.partial(constructor), constructor)
        constructor.__doc__ = doc
    _MODELS[name] = constructor
    if family is not None:
        _INFO[name] = _make_info(name, family, unit, bridge, doc or '')
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
                           'WRN-%d-%d, %s units.' % (depth, width, what), 'wrn', unit)
        for depth in PRERESNET_DEPTHS:
            register_model('%spreresnet%d%s' % (prefix, depth, suffix),
                           functools.partial(get_preresnet, depth, unit=unit),
                           'Pre-activation ResNet-%d for CIFAR, %s units.' % (depth, what),
                           'preresnet', unit)
    for depth in RESNET_CIFAR_DEPTHS:
        register_model('resnet%d_cifar' % depth, functools.partial(get_resnet_cifar, depth),
                       'Original CIFAR ResNet-%d (He et al. 2016a), projection bridges.' % depth,
                       'resnet_cifar')
        register_model('se_resnet%d_cifar' % depth,
                       functools.partial(get_resnet_cifar, depth, unit='se'),
                       'SE-ResNet-%d for CIFAR: SE on every residual flow.' % depth,
                       'resnet_cifar', 'se')
        register_model('res_se_net%d' % depth,
                       functools.partial(get_resnet_cifar, depth, bridge_unit='se'),
                       'Res-SE-Net-%d: SE on every bridge connection after downsampling.'
                       % depth, 'resnet_cifar', 'se', bridge=True)


def _se_resnet_biased(depth, unit_kwargs=None, **kwargs):
    """SE-ResNet-``depth`` whose SE FCs have biases (``use_bias=True`` unless the caller's
    ``unit_kwargs`` say otherwise): timm's ``seresnet<depth>`` computed the same way."""
    options = dict({'use_bias': True}, **(unit_kwargs or {}))
    return get_resnet_imagenet(depth, unit='se', unit_kwargs=options, **kwargs)


def _register_other_families():
    """All-CNN, PyramidNet-272 (alpha 200) and the ImageNet ResNets (InI Tables II, IV, V;
    CMPE Table 4)."""
    register_model('allcnn', get_allcnn, 'All-CNN-C (Springenberg et al.) with BN.', 'allcnn')
    register_model('se_allcnn', functools.partial(get_allcnn, unit='se'),
                   'SE-All-CNN: an SE unit after every feature convolution.', 'allcnn', 'se')
    register_model('pyramidnet272_a200', functools.partial(get_pyramidnet, 272, 200),
                   'PyramidNet-272, alpha 200, bottleneck (Han, Kim and Kim).', 'pyramidnet')
    for depth in (50, 101):
        build = functools.partial(get_resnet_imagenet, depth)
        register_model('resnet%d' % depth, build, 'ResNet-%d for ImageNet (v1).' % depth,
                       'resnet_imagenet')
        register_model('se_resnet%d' % depth, functools.partial(build, unit='se'),
                       'SE-ResNet-%d for ImageNet.' % depth, 'resnet_imagenet', 'se')
        register_model('se_resnet%d_timm' % depth, functools.partial(_se_resnet_biased, depth),
                       'SE-ResNet-%d for ImageNet with biases in the SE FCs, as timm\'s '
                       'seresnet%d and the SENet authors\' Caffe models: their weights load '
                       'with cmpese.load_pretrained (docs/units.md).' % (depth, depth),
                       'resnet_imagenet', 'se')
        for mode in ('double_fc', '1x1'):
            register_model('cmpe_se_resnet%d_%s' % (depth, mode),
                           functools.partial(build, unit='cmpe_se_' + mode, version=2),
                           'CMPE-SE-ResNet-%d %s on the pre-activation ResNet the CMPE paper '
                           'trains on ImageNet.' % (depth, mode), 'resnet_imagenet',
                           'cmpe_se_' + mode)


# The Inner-Imaging names of the ImageNet ResNets and All-CNN (the others are parsed by name).
# Pre-act ResNet-110's first stage has C = 16, whose 2 x 16 map takes no 3x3 G-filter, so its
# square-1 rows cannot be built by the paper's map rule (docs/inner_imaging.md); 60 of
# PyramidNet-272's 90 block widths are not multiples of 16, so its rows use rounding='floor'
# (cmpese.models.pyramidnet).
_INI_OTHER = re.compile(r'^ini_(?:(?P<allcnn>allcnn)|resnet(?P<depth>\d+))_(?P<gset>.+?)'
                        r'(?P<spa>_spa\d*)?$')


def _register_ini_models():
    """Every Inner-Imaging name that a row of the papers' tables prints (cmpese.papers);
    any other Table I set is parsed by name."""
    for name in row_models('ini_'):
        m = _INI_OTHER.match(name)
        if m is not None:
            gset, spa = m.group('gset'), m.group('spa') or ''
            unit = 'ini_%s%s' % (gset, spa)
            if m.group('allcnn'):
                register_model(name, functools.partial(get_allcnn, unit=unit),
                               'InI-All-CNN-%s (non-joint: no identity flow).'
                               % gset.replace('_', '-'), 'allcnn', unit)
            else:
                depth = int(m.group('depth'))
                register_model(name, functools.partial(get_resnet_imagenet, depth, unit=unit),
                               'InI-ResNet-%d-%s%s (InI Table V).'
                               % (depth, gset.replace('_', '-'), spa), 'resnet_imagenet', unit)
            continue
        constructor, info = _parse_name(name)
        if constructor is None:
            raise ValueError('cmpese/papers/rows.csv names %r, which the zoo cannot build'
                             % name)
        gset = info.unit[len('ini_'):]
        if info.family == 'pyramidnet':
            doc = ('InI-PyramidNet-272-%s (InI Table IV), alpha 200; widths that t = 16 does '
                   'not divide use floor(C/16) and a zero-padded fold (rounding=\'floor\').'
                   % gset.replace('_', '-'))
        else:
            backbone = name[len('ini_'):-len(gset) - 1]
            doc = 'InI-%s-%s (Inner-Imaging, Table I set %s).' % (
                backbone, gset.replace('_', '-'), gset.replace('_', '-'))
        register_model(name, constructor, doc, info.family, info.unit)


_register_cifar_models()


_NAME_PATTERN = re.compile(
    r'^(?P<unit>se_|cmpe_se_)?(?:(?P<wrn>wrn(?P<wd>\d+)_(?P<wk>\d+))|(?P<pre>preresnet(?P<pd>\d+)))'
    r'(?:_(?P<mode>double_fc|2x1|1x1))?$')


_INI_PATTERN = re.compile(
    r'^ini_(?:(?P<wrn>wrn(?P<wd>\d+)_(?P<wk>\d+))|(?P<pre>preresnet(?P<pd>\d+))'
    r'|(?P<pyr>pyramidnet(?P<yd>\d+)_a(?P<ya>\d+)))_(?P<gset>.+)$')


def _parse_name(name):
    """``(constructor, ModelInfo)`` for a WRN / pre-act ResNet / PyramidNet name of a depth,
    width or G-filter set the list does not hold (``cmpe_se_wrn16_4_1x1``, ``se_preresnet56``,
    ``ini_wrn16_4_mix_3``), or ``(None, None)``."""
    m = _INI_PATTERN.match(name)
    if m is not None:
        unit = 'ini_' + m.group('gset')
        try:
            lookup_unit(unit)      # a registered set, possibly with _spa / _spa<tau>
        except ValueError:
            return None, None
        if m.group('wrn'):
            build = functools.partial(get_wrn, int(m.group('wd')), int(m.group('wk')),
                                      unit=unit)
            family = 'wrn'
        elif m.group('pyr'):
            build = functools.partial(get_pyramidnet, int(m.group('yd')), int(m.group('ya')),
                                      unit=unit, rounding='floor')
            family = 'pyramidnet'
        else:
            build = functools.partial(get_preresnet, int(m.group('pd')), unit=unit)
            family = 'preresnet'
        return build, _make_info(name, family, unit)
    m = _NAME_PATTERN.match(name)
    if m is None or (m.group('unit') == 'cmpe_se_') != bool(m.group('mode')):
        return None, None
    unit = {None: None, 'se_': 'se'}.get(m.group('unit'), 'cmpe_se_%s' % m.group('mode'))
    if m.group('wrn'):
        return (functools.partial(get_wrn, int(m.group('wd')), int(m.group('wk')), unit=unit),
                _make_info(name, 'wrn', unit))
    return (functools.partial(get_preresnet, int(m.group('pd')), unit=unit),
            _make_info(name, 'preresnet', unit))


def get_model_info(name):
    """The :class:`ModelInfo` of a zoo name (listed or parsed); ValueError for an unknown
    name (with the closest ones)."""
    if not isinstance(name, str):
        raise TypeError('model name must be a string, got %r' % (name,))
    key = name.lower()
    info = _INFO.get(key)
    if info is None:
        if key in _MODELS:
            raise ValueError('model %r was registered without metadata (register_model(..., '
                             'family=..., unit=...))' % name)
        info = _parse_name(key)[1]
        if info is None:
            raise _unknown(name)
    if info.tables is None:
        info = info._replace(tables=model_tables(key))
        if key in _INFO:
            _INFO[key] = info
    return info


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


# The checked loader is cmpese.weights.params (the zoo builds networks, weights/ reads files
# into them); these names stay for the zoo's users.
PretrainedError = ParamsError


def load_parameters_file(net, path, ctx=None):
    """Load ``path`` into ``net`` after checking it: a file written by ``save_parameters``
    (``best.params``, structural names) or by ``export`` (``-0000.params``, ``arg:``/``aux:``
    names under the exporting instance's prefix). Raises :class:`PretrainedError` naming the
    file and what does not match (garbage, missing or extra parameters, shapes, classes):
    :func:`cmpese.weights.params.load_params_checked`."""
    return load_params_checked(net, path, ctx)


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
    constructor = _MODELS.get(key) or _parse_name(key)[0]
    if constructor is None:
        raise _unknown(name)
    if classes is not None:
        kwargs['classes'] = classes
    net = constructor(**kwargs)
    if pretrained:
        path = pretrained_path(key, root)
        if not os.path.isfile(path):
            raise FileNotFoundError(_NO_WEIGHTS.format(name=key, path=path))
        load_parameters_file(net, path, ctx)
    return net


def register_gluoncv():
    """Register every cmpese name into ``gluoncv.model_zoo`` so that
    ``gluoncv.model_zoo.get_model(name)`` builds our models. Called by ``import cmpese``.

    GluonCV's ``get_model`` is wrapped (:func:`_gluoncv_get_model`) so that it also builds
    the names :func:`get_model` parses (other depths, widths and Table I sets), and an
    unknown name close to a cmpese one gets one line with the closest names instead of
    GluonCV's whole model list; every other call is GluonCV's own."""
    try:
        import gluoncv.model_zoo as gcv_package
        from gluoncv.model_zoo import model_zoo as gcv_zoo
    except ImportError:  # GluonCV is optional at run time
        return False
    for name in _MODELS:
        existing = gcv_zoo._models.get(name)
        if existing is not None and getattr(existing, '_cmpese', False) is False:
            raise RuntimeError('GluonCV already has a model named %r; cmpese will not shadow it'
                               % name)
        gcv_zoo._models[name] = _gluoncv_entry(name)
    for module in (gcv_zoo, gcv_package):
        if not getattr(module.get_model, '_cmpese', False):
            module.get_model = _gluoncv_get_model(module.get_model, gcv_zoo._models)
    return True


def _gluoncv_get_model(original, models):
    """GluonCV's ``get_model`` that knows cmpese's parsed names and suggests cmpese's
    closest names for an unknown one (:func:`register_gluoncv`)."""
    @functools.wraps(original)
    def get_model_gluoncv(name, **kwargs):
        key = name.lower() if isinstance(name, str) else name
        if not isinstance(key, str) or key in models:
            return original(name, **kwargs)
        if _parse_name(key)[0] is not None:
            return get_model(key, **kwargs)
        close = difflib.get_close_matches(key, list(models), n=5, cutoff=0.6)
        if not any(c in _MODELS for c in close):
            return original(name, **kwargs)      # not a cmpese-like name: GluonCV's message
        raise ValueError('unknown model %r. Closest names: %s. cmpese.get_model_list() lists '
                         "cmpese's %d names, gluoncv.model_zoo.get_model_list() all %d."
                         % (name, ', '.join(close), len(_MODELS), len(models)))
    get_model_gluoncv._cmpese = True
    return get_model_gluoncv


def _gluoncv_entry(name):
    def build(**kwargs):
        return get_model(name, **kwargs)
    build.__name__ = name
    build.__doc__ = _MODELS[name].__doc__
    build._cmpese = True
    return build


_register_ini_models()
_register_other_families()
