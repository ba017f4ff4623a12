"""The papers' training schedules as named presets.

A preset fills every training value a paper states (or that the paper takes from the
backbone's original paper); each value can be overridden on the command line. Schedules
are given in epochs (``lr_steps`` are the epochs after which the rate is multiplied by
``lr_factor``), as fractions of the run (``lr_steps_frac``), or in iterations
(``lr_steps_iter``/``iterations``, Res-SE-Net's 32k/48k/64k).

Values a paper leaves to its backbone's original paper are marked in ``source``:
weight decay 1e-4 for pre-act ResNet (He et al. 2016b), ResNet, All-CNN and PyramidNet,
5e-4 for WRN (Zagoruyko and Komodakis 2016), and WRN's dropout-free setting.
"""
import copy
import math

__all__ = ['PRESETS', 'preset_names', 'default_preset', 'get_preset', 'lr_steps_in_updates',
           'resolve_epochs']

_CMPE = 'CMPE-SE paper, Settings: SGD, 0.9 Nesterov momentum, batch 128, lr 0.1'
_INI = 'InI paper, Sec. V Training: SGD, 0.9 Nesterov momentum, batch 64, lr 0.1'

PRESETS = {
    'cmpe_preresnet': dict(
        optimizer='nag', momentum=0.9, wd=1e-4, batch_size=128, lr=0.1, epochs=200,
        lr_steps=[100, 150], lr_factor=0.1,
        source=_CMPE + '; 200 epochs, /10 at 100 and 150 (pre-act ResNet). wd 1e-4 from '
               'He et al. 2016b.'),
    'cmpe_wrn': dict(
        optimizer='nag', momentum=0.9, wd=5e-4, batch_size=128, lr=0.1, epochs=200,
        lr_steps=[60, 120, 160], lr_factor=0.2,
        source=_CMPE + '; 200 epochs, /5 at 60, 120 and 160 (WRN). wd 5e-4 from Zagoruyko and '
               'Komodakis 2016.'),
    'cmpe_300': dict(
        optimizer='nag', momentum=0.9, wd=5e-4, batch_size=128, lr=0.1, epochs=300,
        lr_steps=[120, 200, 260], lr_factor=0.2,
        source=_CMPE + '; the 300-epoch runs of Table 3 divide at 120, 200 and 260 (the factor '
               'is the WRN one, 5, as Table 3 is WRN-28-10/40-10). wd 5e-4 (WRN).'),
    'cmpe_svhn': dict(
        optimizer='nag', momentum=0.9, wd=5e-4, batch_size=128, lr=0.01, epochs=160,
        lr_steps=[80, 120], lr_factor=0.1,
        source='CMPE-SE paper: SVHN (train+extra, /255, no augmentation), 160 epochs, lr 0.01 '
               '/10 at 80 and 120. Batch 128 and wd 5e-4 (WRN, Table 3 SVHN column).'),
    'ini_resnet': dict(
        optimizer='nag', momentum=0.9, wd=1e-4, batch_size=64, lr=0.1, epochs=300,
        lr_steps_frac=[0.5, 0.75], lr_factor=0.1,
        source=_INI + '; ResNet: 300 epochs, /10 at 50% and 75%. wd 1e-4 (He et al.).'),
    'ini_wrn': dict(
        optimizer='nag', momentum=0.9, wd=5e-4, batch_size=64, lr=0.1, epochs=200,
        lr_steps=[60, 120, 160], lr_factor=0.2,
        source=_INI + '; WRN: 200 epochs, /5 at 60, 120 and 160. wd 5e-4 (Zagoruyko).'),
    'ini_other': dict(
        optimizer='nag', momentum=0.9, wd=1e-4, batch_size=64, lr=0.1, epochs=200,
        lr_steps_frac=[0.5, 0.75], lr_factor=0.1,
        source=_INI + '; All-CNN and the other backbones (PyramidNet): 200 epochs, /10 at 50% '
               'and 75% (the paper states the 50%/75% rule for ResNet and All-CNN). wd 1e-4.'),
    'ini_svhn': dict(
        optimizer='nag', momentum=0.9, wd=5e-4, batch_size=64, lr=0.01, epochs=80,
        lr_steps_frac=[0.5, 0.75], lr_factor=0.1,
        source='InI paper: SVHN for 80 epochs, batch 64. The rate is not stated; this preset '
               'uses the CMPE-SE paper\'s SVHN rate 0.01 with /10 at 50% and 75%.'),
    'res_se_net': dict(
        optimizer='sgd', momentum=0.9, wd=1e-4, batch_size=128, lr=0.1, iterations=64000,
        lr_steps_iter=[32000, 48000], lr_factor=0.1,
        source='Res-SE-Net paper, Table 3 and Sec. 5: SGD momentum 0.9, wd 1e-4, batch 128, '
               'lr 0.1 /10 at 32k and 48k iterations, 64k iterations (rounded up to whole '
               'epochs).'),
    'digits': dict(
        optimizer='nag', momentum=0.9, wd=1e-4, batch_size=32, lr=0.05, epochs=6,
        lr_steps=[4], lr_factor=0.1, warmup_epochs=1,
        source='Not a paper schedule: a short run for the bundled digits set (the README\'s '
               'main job), CMPE-style Nesterov SGD. At batch 64 and lr 0.1, 6 epochs are 132 '
               'updates and the deep post-activation ResNets (44 to 110 layers) diverged; '
               'He et al. (2016a, Sec. 4.2) warm ResNet-110 up at a low rate. Here: batch 32 '
               '(270 updates), the rate rising linearly from 0 to 0.05 over the first epoch '
               '(docs/training.md has the measured table, benchmarks/check_zoo_digits.py).'),
    'fashion_mnist': dict(
        optimizer='nag', momentum=0.9, wd=1e-4, batch_size=128, lr=0.1, epochs=15,
        lr_steps_frac=[0.5, 0.75], lr_factor=0.1,
        source='Not a paper schedule: Fashion-MNIST / MNIST (60k images, 28x28) sized to a '
               '2-core CPU (docs/results.md). The CIFAR recipe of the papers\' ResNets scaled '
               'down: Nesterov SGD 0.9 (CMPE-SE, InI), batch 128, lr 0.1 /10 at 50% and 75% '
               'of the run (InI paper; He et al.), wd 1e-4 (He et al. 2016), 15 epochs.'),
    # ImageNet (train_imagenet.py). No paper gives an ImageNet weight decay: 1e-4 is the
    # ResNet papers' (He et al. 2016a, 2016b), which all three build on.
    'senet': dict(
        optimizer='sgd', momentum=0.9, wd=1e-4, batch_size=1024, lr=0.6, epochs=100,
        lr_steps=[30, 60, 90], lr_factor=0.1,
        source='SENet paper, Sec. 5.1: synchronous SGD, momentum 0.9, batch 1024, lr 0.6 /10 '
               'every 30 epochs, 100 epochs. wd 1e-4 inherited from the ResNet papers (He et '
               'al. 2016a).'),
    'cmpe_imagenet': dict(
        optimizer='nag', momentum=0.9, wd=1e-4, batch_size=64, lr=0.1, epochs=100,
        lr_steps=[30, 60, 90], lr_factor=0.1,
        source='CMPE-SE paper, Settings (ImageNet): pre-act ResNet-50, 100 epochs, batch 64, lr '
               '0.1 /10 at epochs 30, 60 and 90 (the run ends at 100); SGD with 0.9 Nesterov '
               'momentum. wd 1e-4 inherited from the ResNet papers (He et al. 2016b).'),
    'ini_imagenet': dict(
        optimizer='nag', momentum=0.9, wd=1e-4, batch_size=256, lr=0.1, epochs=100,
        lr_steps=[30, 60, 90], lr_factor=0.1,
        source='InI paper, Sec. V Training (ImageNet): 100 epochs, batch 256, lr 0.1 /10 every '
               '30 epochs; SGD with 0.9 Nesterov momentum, which the paper states for its CIFAR '
               'runs (the ImageNet sentence names no optimizer). wd 1e-4 inherited from the '
               'ResNet papers (He et al. 2016a).'),
}

_DEFAULTS = dict(optimizer='nag', momentum=0.9, wd=1e-4, batch_size=128, lr=0.1, epochs=None,
                 iterations=None, lr_steps=None, lr_steps_frac=None, lr_steps_iter=None,
                 lr_factor=0.1, warmup_epochs=0, source='')


def preset_names():
    return sorted(PRESETS)


def get_preset(name):
    """A full copy of preset ``name`` (every key present, missing ones None)."""
    if name not in PRESETS:
        import difflib
        close = difflib.get_close_matches(name, PRESETS, n=3, cutoff=0.3)
        raise ValueError('unknown preset %r.%s Presets: %s' % (
            name, ' Did you mean %s?' % ', '.join(close) if close else '',
            ', '.join(preset_names())))
    out = copy.deepcopy(_DEFAULTS)
    out.update(copy.deepcopy(PRESETS[name]))
    return out


def default_preset(model, dataset):
    """The schedule the papers used for ``model`` on ``dataset``, from the model registry
    (:func:`cmpese.model_zoo.get_model_info`: the paper that introduced the model decides).

    InI models follow the InI paper (ResNet family 300 epochs, WRN, All-CNN/PyramidNet 200,
    SVHN 80), original CIFAR ResNets and Res-SE-Net follow Res-SE-Net, WRN and pre-act
    ResNet follow the CMPE-SE paper; digits takes the short digits run. A dataset the model
    has no preset for is an error naming the ones it has.
    """
    from ..model_zoo import get_model_info
    presets = get_model_info(model).presets
    if dataset not in presets:
        raise ValueError('%s has no default training preset for %s (it has one for %s); pass '
                         '--preset' % (model, dataset, ', '.join(sorted(presets))))
    return presets[dataset]


def resolve_epochs(cfg, iters_per_epoch):
    """Total epochs of the run: ``epochs`` or ``iterations`` rounded up to whole epochs."""
    if cfg.get('epochs'):
        return int(cfg['epochs'])
    if cfg.get('iterations'):
        return int(math.ceil(cfg['iterations'] / float(iters_per_epoch)))
    raise ValueError('the configuration sets neither epochs nor iterations')


def lr_steps_in_updates(cfg, epochs, iters_per_epoch):
    """The schedule's steps as optimizer update counts (for ``MultiFactorScheduler``).

    ``lr_steps`` (epochs), ``lr_steps_frac`` (fractions of ``epochs``) or ``lr_steps_iter``
    (iterations), whichever the configuration sets, in that order of precedence. Steps at
    or beyond the end of the run are dropped; the result is strictly increasing.
    """
    if cfg.get('lr_steps') is not None:
        steps = [int(round(e * iters_per_epoch)) for e in cfg['lr_steps']]
    elif cfg.get('lr_steps_frac') is not None:
        steps = [int(round(f * epochs)) * iters_per_epoch for f in cfg['lr_steps_frac']]
    elif cfg.get('lr_steps_iter') is not None:
        steps = [int(s) for s in cfg['lr_steps_iter']]
    else:
        steps = []
    total = epochs * iters_per_epoch
    out = []
    for s in steps:
        if 0 < s < total and (not out or s > out[-1]):
            out.append(s)
    return out
