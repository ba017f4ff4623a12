"""Pretrained weights from other libraries, mapped by role into cmpese's ImageNet ResNets.

The zoo (:mod:`cmpese.model_zoo`) builds networks; this package reads other people's files
(as GluonCV keeps its weights apart from its zoo in ``model_store.py``):

* timm ResNet / SE-ResNet checkpoints in safetensors (:mod:`cmpese.weights.timm`, numpy only,
  no torch): resnet18/34/50/101/152, seresnet50/101/152;
* GluonCV ``.params`` (:mod:`cmpese.weights.gluoncv`): resnet*_v1b (cmpese's post-activation
  nets), resnet*_v2 and se_resnet*_v2 (cmpese's pre-activation nets); the v1 layout and the
  deep-stem variants are refused with the reason;
* cmpese's own ``.params`` of an ImageNet ResNet (e.g. a trained se_resnet50, to start a
  CMPE-SE or InI model from its backbone).

    import cmpese
    from cmpese.weights import load_pretrained
    net = cmpese.get_model('cmpe_se_resnet50_1x1', classes=10)
    net.initialize(ctx=ctx)
    report = load_pretrained(net, 'resnet50.safetensors', backbone_only=True)
    print(report)          # loaded / new / skipped, with the reasons

The command line is ``python -m cmpese.tools.convert`` (:mod:`cmpese.cli.convert`);
docs/weights.md has the key tables, what is refused and a fine-tuning recipe.
"""
from .gluoncv import gluoncv_state, read_gluoncv
from .layout import Layout, target_layout
from .load import SOURCES, detect_source, load_pretrained, read_weights
from .report import (DepthMismatch, LayoutMismatch, LoadReport, NotAWeightsFile, ShapeMismatch,
                     UnsupportedLayout, WeightsError)
from .timm import read_timm, save_timm, timm_state

__all__ = ['load_pretrained', 'read_weights', 'detect_source', 'SOURCES', 'LoadReport',
           'WeightsError', 'NotAWeightsFile', 'UnsupportedLayout', 'DepthMismatch',
           'ShapeMismatch', 'LayoutMismatch', 'Layout', 'target_layout', 'read_timm',
           'timm_state', 'save_timm', 'read_gluoncv', 'gluoncv_state']
