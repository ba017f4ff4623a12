"""Backbone families; each family is one file with one residual block parameterized by a
recalibration unit and a ``get_xxx(depth, ...)`` builder."""
from .allcnn import AllCNN, AllCNNBlock, get_allcnn
from .preresnet import PreActBlock, PreActCIFARNet, get_preresnet
from .pyramidnet import PyramidBlock, PyramidNet, get_pyramidnet, pyramid_widths
from .resnet_cifar import BasicBlock, PostActBlock, ResNetCIFAR, get_resnet_cifar
from .resnet_imagenet import ResNetImageNet, get_resnet_imagenet
from .wrn import get_wrn

__all__ = ['PreActBlock', 'PreActCIFARNet', 'get_preresnet', 'BasicBlock', 'ResNetCIFAR',
           'get_resnet_cifar', 'get_wrn', 'PostActBlock', 'AllCNN', 'AllCNNBlock', 'get_allcnn',
           'PyramidBlock', 'PyramidNet', 'get_pyramidnet', 'pyramid_widths', 'ResNetImageNet',
           'get_resnet_imagenet']
