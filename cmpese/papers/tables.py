"""What the rows of ``rows.csv`` mean: the papers, the tables' headers, and why some printed
figures cannot come from the networks the papers describe. The figures the papers' tables
print are all in ``rows.csv``, none here; the one figure printed in running text rather than
in a table (:data:`RES_SE_NET_RATIOS`) is kept here.
"""
import collections

__all__ = ['Paper', 'PAPERS', 'PAPER_NAMES', 'Column', 'Table', 'TABLES', 'column_field',
           'VALUE_FIELDS', 'PARAMS_PAPERS', 'OTHER_NETWORK', 'DEVIATIONS', 'INI_DEVIATIONS',
           'INI_READINGS', 'RES_SE_NET_RATIOS']

Paper = collections.namedtuple('Paper', 'title url name short')
Paper.__doc__ = """One paper: ``title`` (authors and title), ``url``, ``name`` (as the
generated pages name it: 'CMPE-SE'), ``short`` (as :attr:`cmpese.model_zoo.ModelInfo.tables`
names its tables: 'CMPE Table 2')."""

# The papers, by the keys ModelInfo.papers and the rows' ``paper`` column use.
PAPERS = collections.OrderedDict([
    ('senet', Paper('Hu, Shen and Sun, Squeeze-and-Excitation Networks',
                    'https://arxiv.org/abs/1709.01507', 'SENet', 'SENet')),
    ('cmpe', Paper('Hu, Wen, Luo and Dai, Competitive Inner-Imaging Squeeze and Excitation for '
                   'Residual Network (CMPE-SE)', 'https://arxiv.org/abs/1807.08920',
                   'CMPE-SE', 'CMPE')),
    ('ini', Paper('Hu, Wen et al., Inner-Imaging Networks: Put Lenses into Convolutional '
                  'Structure', 'https://arxiv.org/abs/1908.09010', 'InI', 'InI')),
    ('res_se_net', Paper('Varshaneya, Balasubramanian and Gera, Res-SE-Net: Boosting '
                         'Performance of Resnets by Enhancing Bridge-connections',
                         'https://arxiv.org/abs/1902.06066', 'Res-SE-Net', 'Res-SE-Net')),
    ('resnet', Paper('He, Zhang, Ren and Sun, Deep Residual Learning for Image Recognition',
                     'https://arxiv.org/abs/1512.03385', 'ResNet', 'ResNet')),
    ('preact', Paper('He, Zhang, Ren and Sun, Identity Mappings in Deep Residual Networks',
                     'https://arxiv.org/abs/1603.05027', 'pre-act ResNet', 'pre-act ResNet')),
    ('wrn', Paper('Zagoruyko and Komodakis, Wide Residual Networks',
                  'https://arxiv.org/abs/1605.07146', 'WRN', 'WRN')),
    ('allcnn', Paper('Springenberg, Dosovitskiy, Brox and Riedmiller, Striving for Simplicity: '
                     'The All Convolutional Net', 'https://arxiv.org/abs/1412.6806', 'All-CNN',
                     'All-CNN')),
    ('pyramidnet', Paper('Han, Kim and Kim, Deep Pyramidal Residual Networks',
                         'https://arxiv.org/abs/1610.02915', 'PyramidNet', 'PyramidNet')),
])

# paper key -> the name the generated pages give it
PAPER_NAMES = {key: paper.name for key, paper in PAPERS.items()}

Column = collections.namedtuple('Column', 'name dataset mixup metric')
Column.__doc__ = """One printed column: its header, the dataset and mixup setting of the run
behind it, and the metric ('err1' / 'err5': top-1 / top-5 error in %, 'acc1' / 'acc5':
accuracy in %). Its figures are in the rows.csv column :func:`column_field` names."""

Table = collections.namedtuple('Table', 'key paper number title columns')


def column_field(column):
    """The rows.csv column holding ``column``'s figures: the dataset, '_mixup' for a mixup
    run, '_top5' for a top-5 figure ('cifar100_mixup', 'imagenet_top5')."""
    return (column.dataset + ('_mixup' if column.mixup else '')
            + ('_top5' if column.metric in ('err5', 'acc5') else ''))


_CMPE_CIFAR = (Column('C10', 'cifar10', False, 'err1'),
               Column('C10 mixup', 'cifar10', True, 'err1'),
               Column('C100', 'cifar100', False, 'err1'),
               Column('C100 mixup', 'cifar100', True, 'err1'))
_IMAGENET = (Column('top-1', 'imagenet', False, 'err1'), Column('top-5', 'imagenet', False, 'err5'))
_INI_CIFAR = (Column('CIFAR-10', 'cifar10', False, 'err1'),
              Column('CIFAR-100', 'cifar100', False, 'err1'))
_RSN = (Column('C10 top-1 acc', 'cifar10', False, 'acc1'),
        Column('C10 top-5 acc', 'cifar10', False, 'acc5'),
        Column('C100 top-1 acc', 'cifar100', False, 'acc1'),
        Column('C100 top-5 acc', 'cifar100', False, 'acc5'))

# Every table rows.csv holds rows of, in the order the pages list them. ``number`` as the
# paper prints it.
TABLES = collections.OrderedDict((t.key, t) for t in [
    Table('cmpe-1', 'cmpe', '1', 'Error rates (%) of pre-act ResNets on CIFAR-10 and CIFAR-100',
          _CMPE_CIFAR),
    Table('cmpe-2', 'cmpe', '2', 'Error rates (%) of Wide Residual Networks on CIFAR-10 and '
          'CIFAR-100', _CMPE_CIFAR),
    Table('cmpe-3', 'cmpe', '3', 'Error rates (%) of different methods on CIFAR-10, CIFAR-100 '
          'and SVHN (the CMPE-SE rows trained for 300 epochs)',
          _CMPE_CIFAR + (Column('SVHN', 'svhn', False, 'err1'),)),
    Table('cmpe-4', 'cmpe', '4', 'Single crop error rates (%) on ImageNet', _IMAGENET),
    Table('ini-2', 'ini', 'II', 'Test error ((mean +- std) %, 5 runs) of All-CNN, ResNet, '
          'SE-ResNet and InI-models on CIFAR-10 and CIFAR-100', _INI_CIFAR),
    Table('ini-3', 'ini', 'III', 'Test error ((mean +- std) %, 5 runs) of WRN, SE-WRN and '
          'InI-models on CIFAR-10 and CIFAR-100', _INI_CIFAR),
    Table('ini-4', 'ini', 'IV', 'Test error ((mean +- std) %, 5 runs) of InI-models and the '
          'state of the art on CIFAR and SVHN (FLOPs on CIFAR-100)',
          _INI_CIFAR + (Column('SVHN', 'svhn', False, 'err1'),)),
    Table('ini-5', 'ini', 'V', 'Single crop error rates (%) on ImageNet', _IMAGENET),
    Table('res-se-net-1', 'res_se_net', '1', 'Performance (accuracy %) of baseline ResNets', _RSN),
    Table('res-se-net-2', 'res_se_net', '2', 'Performance (accuracy %) of baseline ResNets '
          'without bridge-connections', _RSN),
    Table('res-se-net-4', 'res_se_net', '4', 'Performance (accuracy %) of baseline SE-ResNets',
          _RSN),
    Table('res-se-net-5', 'res_se_net', '5', 'Performance (accuracy %) of Res-SE-Net', _RSN),
    Table('senet-2', 'senet', '2', 'Single-crop error rates (%) on the ImageNet validation set '
          '(the re-implementation and SENet columns; ResNet-50/101 rows)', _IMAGENET),
    Table('senet-4', 'senet', '4', 'Classification error (%) on CIFAR-10',
          (Column('CIFAR-10', 'cifar10', False, 'err1'),)),
    Table('senet-5', 'senet', '5', 'Classification error (%) on CIFAR-100',
          (Column('CIFAR-100', 'cifar100', False, 'err1'),)),
])

# The value columns of rows.csv, in file order.
VALUE_FIELDS = ('cifar10', 'cifar10_top5', 'cifar10_mixup', 'cifar100', 'cifar100_top5',
                'cifar100_mixup', 'svhn', 'imagenet', 'imagenet_top5')

# The papers whose tables print parameter counts. SENet Table 2 prints none: the 25.6M and
# 28.1M its rows carry are the SENet paper's Tables 10 and 13; Res-SE-Net prints none.
PARAMS_PAPERS = ('cmpe', 'ini')

# The note of a row without a model that gives no note of its own.
OTHER_NETWORK = 'another paper\'s network; cmpese does not build it'

# Rows whose printed parameter count cannot come from the architecture the paper describes;
# docs/parameters.md shows the arithmetic for each (zoo name -> why).
_R164 = ('pre-act ResNet-164 is 1,703,258 parameters and its 54 units (18 per stage at '
         'C = 64, 128, 256, t = 16) add exactly the weights counted in docs/parameters.md; '
         'the printed figure leaves more for the units than the paper\'s own equations give '
         '(and the InI paper prints 1.95M for the same 1x1 joint unit that CMPE prints as 2.04M)')
DEVIATIONS = {name: _R164 for name in (
    'se_preresnet164', 'cmpe_se_preresnet164_double_fc', 'cmpe_se_preresnet164_2x1',
    'cmpe_se_preresnet164_1x1')}
_ALLCNN = ('All-CNN-C has 1,368,480 convolution weights (Springenberg et al. print "1.3M"); '
           'with BN it is 1,370,996, and SE units after all 8 feature convolutions at t=16 add '
           '26,496, not the printed 0.05M (t=8 would)')
DEVIATIONS.update(allcnn=_ALLCNN, se_allcnn=_ALLCNN)

# The aggregation readings an InI row's printed count can agree with (rows.csv ``check``):
# 'concat' = eq. 10-11 as written, 'overlay' = zero-filled element-wise average, 'both', or
# 'neither' (docs/inner_imaging.md explains).
INI_READINGS = ('concat', 'overlay', 'both', 'neither')

# Why the 'neither' rows cannot come from the architecture the paper describes; the
# arithmetic is in docs/parameters.md and tests/test_parameters.py checks it.
INI_DEVIATIONS = {
    'ini_preresnet164_simple_1': 'the same ~0.05M excess as the papers\' SE-ResNet-164',
    'ini_preresnet164_square_1': 'the same ~0.05M excess as the papers\' SE-ResNet-164',
    'ini_allcnn_square_1': 'All-CNN is printed 0.07M below its architecture',
    'ini_allcnn_square_3': 'All-CNN is printed 0.07M below its architecture',
}
for _name in ('ini_resnet50_mix_5_d', 'ini_resnet101_mix_5_d'):
    INI_DEVIATIONS[_name] = ('between the residual-alone count and the least joint count '
                             '(C^g >= 2C whenever the set holds a 1x1 G-filter)')
for _name in ('ini_resnet50_mix_5_d_spa', 'ini_resnet50_mix_5_d_spa4',
              'ini_resnet101_mix_5_d_spa', 'ini_resnet101_mix_5_d_spa4'):
    INI_DEVIATIONS[_name] = ('as without spa; the printed spatial increments fit no per-block '
                             'map (CBAM\'s costs 100 parameters per map and block)')
for _name in ('ini_pyramidnet272_a200_square_3', 'ini_pyramidnet272_a200_mix_5',
              'ini_pyramidnet272_a200_mix_5_d'):
    INI_DEVIATIONS[_name] = ('the printed increment over PyramidNet-272 is below what SE '
                             'units alone add (+3.04M); with the set\'s 1x1 G-filter C^g >= 2C, '
                             'so the units add >= 4.56M')

# Res-SE-Net paper, Sec. 6: "Res-SE-Net-44 has 61.75% and 62.06% lesser number of parameters
# compared to Resnet-110 and SE-Resnet-110" (the paper's only parameter figures).
RES_SE_NET_RATIOS = [
    ('res_se_net44', 'resnet110_cifar', 61.75),
    ('res_se_net44', 'se_resnet110_cifar', 62.06),
]
