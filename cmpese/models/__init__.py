"""Backbone families; each family is one file with one residual block parameterized by a
recalibration unit and a ``get_xxx(depth, ...)`` builder."""
from .preresnet import PreActBlock, PreActCIFARNet, get_preresnet
from .resnet_cifar import BasicBlock, ResNetCIFAR, get_resnet_cifar
from .wrn import get_wrn

__all__ = ['PreActBlock', 'PreActCIFARNet', 'get_preresnet', 'BasicBlock', 'ResNetCIFAR',
           'get_resnet_cifar', 'get_wrn']
