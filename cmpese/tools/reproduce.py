"""Which command reproduces which row of which paper table, and what our runs measured.

Every result row the papers print is transcribed here, once: the CMPE-SE paper's Tables 1-4,
the Inner-Imaging paper's Tables II-V, the Res-SE-Net paper's CIFAR Tables 1, 2, 4 and 5, and
the SENet paper's ResNet-50/101 rows (Table 2) with its CIFAR Tables 4 and 5. A row names the
zoo model that builds it (None for the other papers' networks that cmpese does not build), the
printed parameter count and the printed figures, column by column, exactly as printed.

From the same rows come

* the command that trains a row's model as the table's paper did (:func:`row_runs`,
  :func:`format_command`): ``train_cifar.py`` or ``train_imagenet.py`` with the model, the
  dataset, the paper's schedule preset, mixup for the mixup columns, SVHN's train+extra;
* ``docs/reproduce.md`` (:func:`reproduce_markdown`): the paper's figure, our parameter
  count, and the figure measured by a run of this package, empty until a run is recorded;
* ``docs/model_zoo.md`` (:func:`model_zoo_markdown`): every zoo name with its paper rows,
  parameters and FLOPs measured here beside the printed ones, and its default presets.

A finished run is recorded with :func:`record_result` (``python -m cmpese.reproduce --collect
RUN_DIR``) into a JSON file (:func:`default_results_path`); it is matched to the rows trained
by the same model, dataset, mixup and preset, and every schedule value that differs from the
row's command (say, ``--epochs 1``) is kept with it and shown beside the number.
"""
import collections
import datetime
import difflib
import functools
import json
import os
import re
import shlex

__all__ = ['TABLES', 'ROWS', 'Table', 'Column', 'Row', 'Run', 'get_table', 'table_rows',
           'find_row', 'row_runs', 'row_preset', 'format_command', 'trainer_path',
           'record_result', 'load_results', 'default_results_path', 'measured_cells',
           'format_list', 'reproduce_markdown', 'model_zoo_markdown', 'write_docs',
           'repo_root', 'model_complexity', 'paper_figures', 'IMAGENET_FILES']

Column = collections.namedtuple('Column', 'name dataset mixup metric')
Column.__doc__ = """One printed column: its header, the dataset and mixup setting of the run
behind it, and the metric ('err1' / 'err5': top-1 / top-5 error in %, 'acc1' / 'acc5':
accuracy in %)."""

Table = collections.namedtuple('Table', 'key paper number title columns')
Row = collections.namedtuple('Row', 'table label model params values flops note')
Row.__doc__ = """One printed row. ``model``: the zoo name, or None when cmpese does not build
the network; ``params``: the printed count in millions (a string as printed, or None);
``values``: one printed figure per column of the table (None where the paper prints '-');
``flops``: the printed FLOPs (InI Table IV, SENet Table 2) or None; ``note``."""

Run = collections.namedtuple('Run', 'key dataset mixup columns preset argv save_dir')
Run.__doc__ = """One training run behind one or more columns of a row (top-1 and top-5 come
from the same run)."""

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

PAPER_NAMES = {'cmpe': 'CMPE-SE', 'ini': 'InI', 'res_se_net': 'Res-SE-Net', 'senet': 'SENet'}

_ORIG = 'quoted from He et al. 2016a'
_OTHER = 'another paper\'s network; cmpese does not build it'
_NO110_SQ1 = ('not built: pre-act ResNet-110\'s first stage has C = 16, whose %s map takes '
              'no 3x3 G-filter (docs/inner_imaging.md)')


def _rows(table, spec, note=''):
    """Rows of ``table`` from (label, model, params, values..., [flops]) tuples."""
    width = len(TABLES[table].columns)
    out = []
    for entry in spec:
        label, model, params = entry[:3]
        values = tuple(None if v in ('-', None) else v for v in entry[3:3 + width])
        rest = entry[3 + width:]
        flops = rest[0] if rest else None
        row_note = rest[1] if len(rest) > 1 else (note if model is None else '')
        if len(values) != width:
            raise AssertionError('%s %s: %d values for %d columns' % (table, label,
                                                                      len(values), width))
        out.append(Row(table, label, model, params, values, flops, row_note))
    return out


# Figures as printed ('-' where the paper prints a dash). CMPE-SE paper (Hu, Wen, Luo, Dai).
ROWS = (
    _rows('cmpe-1', [
        ('ResNet-110', 'preresnet110', '1.7', '6.37', '-', '-', '23.98'),
        ('ResNet-164', 'preresnet164', '1.7', '5.46', '4.15', '24.33', '20.84'),
        ('SE-ResNet-110', 'se_preresnet110', '1.75', '5.68', '-', '25.82', '-'),
        ('SE-ResNet-164', 'se_preresnet164', '1.95', '4.85', '4.07', '22.61', '19.89'),
        ('CMPE-SE-ResNet-110 1x1', 'cmpe_se_preresnet110_1x1', '1.76', '5.45', '4.30', '25.35',
         '22.92'),
        ('CMPE-SE-ResNet-164 double FC', 'cmpe_se_preresnet164_double_fc', '2.12', '4.72', '3.82',
         '22.38', '19.58'),
        ('CMPE-SE-ResNet-164 2x1', 'cmpe_se_preresnet164_2x1', '1.95', '4.59', '3.76', '22.41',
         '19.69'),
        ('CMPE-SE-ResNet-164 1x1', 'cmpe_se_preresnet164_1x1', '2.04', '4.57', '3.78', '22.35',
         '19.46'),
    ])
    + _rows('cmpe-2', [
        ('WRN-22-10', 'wrn22_10', '26.8', '4.44', '-', '20.75', '17.88'),
        ('WRN-28-10', 'wrn28_10', '36.5', '4.17', '2.70', '20.50', '17.50'),
        ('SE-WRN-22-10', 'se_wrn22_10', '27.0', '4.09', '-', '19.52', '17.06'),
        ('SE-WRN-28-10', 'se_wrn28_10', '36.8', '3.88', '2.68', '19.05', '16.77'),
        ('CMPE-SE-WRN-16-8 1x1', 'cmpe_se_wrn16_8_1x1', '11.1', '4.20', '3.18', '19.77', '17.26'),
        ('CMPE-SE-WRN-22-10 1x1', 'cmpe_se_wrn22_10_1x1', '27.1', '3.75', '2.86', '18.86',
         '16.82'),
        ('CMPE-SE-WRN-28-10 double FC', 'cmpe_se_wrn28_10_double_fc', '37.0', '3.66', '2.62',
         '18.69', '16.23'),
        ('CMPE-SE-WRN-28-10 2x1', 'cmpe_se_wrn28_10_2x1', '36.8', '3.73', '2.65', '18.71',
         '16.18'),
        ('CMPE-SE-WRN-28-10 1x1', 'cmpe_se_wrn28_10_1x1', '36.9', '3.58', '2.58', '18.55',
         '16.13'),
    ])
    + _rows('cmpe-3', [
        ('original ResNet-110', 'resnet110_cifar', '1.7', '6.43', '-', '25.16', '-', '-', None,
         _ORIG),
        ('pre-act ResNet-18', None, '11.7', '-', '4.20', '-', '21.10', '-'),
        ('Stochastic Depth-110', None, '1.7', '5.23', '-', '24.58', '-', '1.75'),
        ('FractalNet-21', None, '38.6', '4.60', '-', '23.73', '-', '1.87'),
        ('DenseNet-100', None, '27.2', '3.74', '-', '19.25', '-', '1.59'),
        ('DenseNet-BC-190', None, '25.6', '3.46', '2.70', '17.18', '16.80', '-'),
        ('ResNeXt-29', None, '34.4', '3.65', '-', '17.77', '-', '-'),
        ('PyramidNet-110 (alpha = 270)', None, '28.3', '3.73', '-', '18.25', '-', '-'),
        ('PyramidNet-164 (alpha = 270) bottleneck', None, '27.0', '3.48', '-', '17.01', '-', '-'),
        ('CliqueNet-30', None, '10.02', '5.06', '-', '21.83', '-', '1.64'),
        ('CMPE-SE-WRN-28-10 double FC', 'cmpe_se_wrn28_10_double_fc', '37.04', '3.60', '2.60',
         '18.49', '15.90', '1.61'),
        ('CMPE-SE-WRN-28-10 1x1', 'cmpe_se_wrn28_10_1x1', '36.92', '3.55', '2.54', '18.42',
         '15.94', '1.59'),
        ('CMPE-SE-WRN-40-10 1x1', 'cmpe_se_wrn40_10_1x1', '56.50', '3.52', '2.45', '18.54',
         '15.62', '-'),
    ], note=_OTHER)
    + _rows('cmpe-4', [
        ('ResNet-18', None, None, '30.43', '10.76'),
        ('ResNet-34', None, None, '26.73', '8.74'),
        ('ResNet-50', 'resnet50', None, '24.01', '7.02', None,
         'the paper names the pre-activation ResNet-50 (He et al. 2016b); the zoo\'s resnet50 '
         'is the original (v1); get_resnet_imagenet(50, version=2) builds the pre-act one'),
        ('DenseNet-121', None, None, '25.02', '7.71'),
        ('CliqueNet', None, None, '24.98', '7.48'),
        ('SE-ResNet-50', 'se_resnet50', None, '23.29', '6.62'),
        ('SE-CliqueNet', None, None, '24.01', '7.15'),
        ('CMPE-SE-ResNet-50 double FC', 'cmpe_se_resnet50_double_fc', None, '23.06', '6.46'),
        ('CMPE-SE-ResNet-50 1x1', 'cmpe_se_resnet50_1x1', None, '22.97', '6.41'),
    ], note=_OTHER)
    # Inner-Imaging paper (Hu, Wen et al.)
    + _rows('ini-2', [
        ('All-CNN', 'allcnn', '1.30', '7.25', '33.71'),
        ('SE-All-CNN', 'se_allcnn', '1.35', '6.55 +- 0.14', '32.83 +- 0.21'),
        ('InI-All-CNN-square-1', 'ini_allcnn_square_1', '1.35', '6.15 +- 0.13', '32.15 +- 0.17'),
        ('InI-All-CNN-square-3', 'ini_allcnn_square_3', '1.36', '6.06 +- 0.12', '32.02 +- 0.16'),
        ('ResNet-110', 'preresnet110', '1.70', '6.37', '-'),
        ('ResNet-164', 'preresnet164', '1.70', '5.46', '24.33'),
        ('SE-ResNet-110', 'se_preresnet110', '1.75', '5.65 +- 0.15', '25.79 +- 0.15'),
        ('SE-ResNet-164', 'se_preresnet164', '1.95', '4.79 +- 0.16', '22.47 +- 0.20'),
        ('InI-ResNet-110-square-1*', None, '1.70', '5.46 +- 0.10', '25.21 +- 0.17', None,
         _NO110_SQ1 % '1 x 16'),
        ('InI-ResNet-110-simple-1', 'ini_preresnet110_simple_1', '1.75', '5.35 +- 0.17',
         '25.12 +- 0.08'),
        ('InI-ResNet-110-simple-3', 'ini_preresnet110_simple_3', '1.77', '5.23 +- 0.13',
         '24.96 +- 0.21'),
        ('InI-ResNet-110-square-1', None, '1.76', '5.20 +- 0.12', '24.93 +- 0.15', None,
         _NO110_SQ1 % '2 x 16'),
        ('InI-ResNet-110-square-3', 'ini_preresnet110_square_3', '1.77', '5.16 +- 0.14',
         '24.87 +- 0.11'),
        ('InI-ResNet-110-square-3-d', 'ini_preresnet110_square_3_d', '1.77', '5.11 +- 0.10',
         '24.83 +- 0.09'),
        ('InI-ResNet-164-square-1*', 'ini_preresnet164_square_1_nojoint', '1.88',
         '4.59 +- 0.09', '22.14 +- 0.17'),
        ('InI-ResNet-164-simple-1', 'ini_preresnet164_simple_1', '1.95', '4.53 +- 0.12',
         '21.78 +- 0.19'),
        ('InI-ResNet-164-simple-3', 'ini_preresnet164_simple_3', '2.02', '4.30 +- 0.14',
         '21.66 +- 0.11'),
        ('InI-ResNet-164-square-1', 'ini_preresnet164_square_1', '1.99', '4.34 +- 0.14',
         '21.59 +- 0.16'),
        ('InI-ResNet-164-square-3', 'ini_preresnet164_square_3', '2.02', '4.24 +- 0.10',
         '21.48 +- 0.18'),
        ('InI-ResNet-164-square-3-d', 'ini_preresnet164_square_3_d', '2.02', '4.15 +- 0.08',
         '21.44 +- 0.15'),
        ('InI-ResNet-164-mix-5', 'ini_preresnet164_mix_5', '2.04', '4.15 +- 0.09',
         '21.33 +- 0.17'),
        ('InI-ResNet-164-mix-5-d', 'ini_preresnet164_mix_5_d', '2.04', '4.11 +- 0.13',
         '21.31 +- 0.13'),
    ])
    + _rows('ini-3', [
        ('WRN-22-10', 'wrn22_10', '26.80', '4.44', '20.75'),
        ('WRN-28-10', 'wrn28_10', '36.50', '4.17', '20.50'),
        ('SE-WRN-16-8', 'se_wrn16_8', '11.10', '4.58 +- 0.12', '20.94 +- 0.17'),
        ('SE-WRN-22-10', 'se_wrn22_10', '27.05', '4.08 +- 0.13', '19.55 +- 0.12'),
        ('SE-WRN-28-10', 'se_wrn28_10', '36.80', '3.78 +- 0.19', '19.03 +- 0.14'),
        ('InI-WRN-16-8-simple-3', 'ini_wrn16_8_simple_3', '11.14', '4.01 +- 0.15',
         '19.30 +- 0.11'),
        ('InI-WRN-16-8-square-1', 'ini_wrn16_8_square_1', '11.10', '4.02 +- 0.13',
         '19.29 +- 0.18'),
        ('InI-WRN-16-8-square-3', 'ini_wrn16_8_square_3', '11.14', '3.90 +- 0.09',
         '19.20 +- 0.13'),
        ('InI-WRN-16-8-square-3-d', 'ini_wrn16_8_square_3_d', '11.14', '3.85 +- 0.13',
         '19.16 +- 0.16'),
        ('InI-WRN-16-8-mix-5', 'ini_wrn16_8_mix_5', '11.20', '3.84 +- 0.07', '19.08 +- 0.19'),
        ('InI-WRN-16-8-mix-5-d', 'ini_wrn16_8_mix_5_d', '11.20', '3.80 +- 0.11',
         '19.05 +- 0.15'),
        ('InI-WRN-22-10-simple-3', 'ini_wrn22_10_simple_3', '27.12', '3.63 +- 0.12',
         '18.38 +- 0.13'),
        ('InI-WRN-22-10-square-1', 'ini_wrn22_10_square_1', '27.10', '3.62 +- 0.16',
         '18.43 +- 0.08'),
        ('InI-WRN-22-10-square-3', 'ini_wrn22_10_square_3', '27.12', '3.50 +- 0.18',
         '18.36 +- 0.06'),
        ('InI-WRN-22-10-square-3-d', 'ini_wrn22_10_square_3_d', '27.12', '3.48 +- 0.14',
         '18.27 +- 0.09'),
        ('InI-WRN-22-10-mix-5', 'ini_wrn22_10_mix_5', '27.16', '3.51 +- 0.10', '18.25 +- 0.13'),
        ('InI-WRN-22-10-mix-5-d', 'ini_wrn22_10_mix_5_d', '27.16', '3.46 +- 0.14',
         '18.24 +- 0.09'),
        ('InI-WRN-28-10-square-1*', 'ini_wrn28_10_square_1_nojoint', '36.60', '3.47 +- 0.11',
         '18.53 +- 0.14'),
        ('InI-WRN-28-10-simple-1', 'ini_wrn28_10_simple_1', '36.80', '3.40 +- 0.13',
         '18.30 +- 0.06'),
        ('InI-WRN-28-10-simple-3', 'ini_wrn28_10_simple_3', '36.85', '3.33 +- 0.06',
         '18.28 +- 0.04'),
        ('InI-WRN-28-10-square-1', 'ini_wrn28_10_square_1', '36.82', '3.36 +- 0.13',
         '18.26 +- 0.10'),
        ('InI-WRN-28-10-square-3', 'ini_wrn28_10_square_3', '36.88', '3.28 +- 0.10',
         '18.08 +- 0.12'),
        ('InI-WRN-28-10-square-3-d', 'ini_wrn28_10_square_3_d', '36.88', '3.24 +- 0.04',
         '18.06 +- 0.15'),
        ('InI-WRN-28-10-mix-5', 'ini_wrn28_10_mix_5', '36.90', '3.21 +- 0.09', '18.02 +- 0.12'),
        ('InI-WRN-28-10-mix-5-d', 'ini_wrn28_10_mix_5_d', '36.90', '3.19 +- 0.10',
         '17.98 +- 0.07'),
    ])
    + _rows('ini-4', [
        ('original ResNet-110', 'resnet110_cifar', '1.7', '6.43', '25.16', '-', '253.1M'),
        ('pre-act ResNet-164', 'preresnet164', '1.7', '5.46', '24.33', '-', '380.6M'),
        ('Stochastic Depth ResNet-1001', None, '10.2', '4.62', '22.71', '-', '2.537G'),
        ('Stochastic Depth ResNet-110', None, '1.7', '5.23', '24.58', '1.75', None),
        ('Stochastic Depth ResNet-1202', None, '10.2', '4.91', '-', '-', '2.840G'),
        ('Wide ResNet-28-10', 'wrn28_10', '36.5', '4.17', '20.50', '-', '5.243G'),
        ('FractalNet-21', None, '38.6', '5.22', '23.30', '2.01', None),
        ('FractalNet-21 w/ dropout & droppath', None, '38.6', '4.60', '23.73', '1.87', None),
        ('DenseNet-100', None, '27.2', '3.74', '19.25', '1.59', '13.780G'),
        ('DenseNet-BC-190 (k = 40)', None, '25.6', '3.46', '17.18', '-', '9.388G'),
        ('ResNeXt-29', None, '34.4', '3.65', '17.77', '-', '10.704G'),
        ('PyramidNet-272', 'pyramidnet272_a200', '26.0', '3.31', '16.35', '-', '8.176G'),
        ('CliqueNet-15 (k = 80)', None, '8', '5.17', '22.78', '1.53', '6.880G'),
        ('CliqueNet-30 (k = 150)', None, '10', '5.06', '21.83', '1.64', '8.490G'),
        ('DMRNet-Wide-32', None, '14.9', '3.94', '19.25', '1.51', None),
        ('DMRNet-Wide-50', None, '24.8', '3.57', '19.00', '1.55', None),
        ('DMRNeXt-29', None, '26.7', '3.06', '17.55', '-', None),
        ('ConDenseNet-160', None, '3.1', '3.46', '17.55', '-', '1.084G'),
        ('InI-ResNet-164-simple-3', 'ini_preresnet164_simple_3', '2.02', '4.30', '21.66', '-',
         '381.8M'),
        ('InI-ResNet-164-square-3', 'ini_preresnet164_square_3', '2.02', '4.24', '21.48', '-',
         '381.9M'),
        ('InI-WRN-28-10-simple-3', 'ini_wrn28_10_simple_3', '36.85', '3.33', '18.28', '-',
         '5.259G'),
        ('InI-WRN-28-10-square-3', 'ini_wrn28_10_square_3', '36.88', '3.28', '18.08', '1.49',
         '5.262G'),
        ('InI-WRN-28-10-mix-5', 'ini_wrn28_10_mix_5', '36.90', '3.21', '18.02', '1.53',
         '5.266G'),
        ('InI-WRN-28-10-mix-5-d', 'ini_wrn28_10_mix_5_d', '36.90', '3.19', '17.98', '1.47',
         '5.268G'),
        ('InI-PyramidNet-272-square-3', 'ini_pyramidnet272_a200_square_3', '27.5', '3.13',
         '15.99', '-', '8.184G'),
        ('InI-PyramidNet-272-mix-5', 'ini_pyramidnet272_a200_mix_5', '27.8', '3.11', '15.81',
         '-', '8.188G'),
        ('InI-PyramidNet-272-mix-5-d', 'ini_pyramidnet272_a200_mix_5_d', '27.8', '3.07',
         '15.77', '-', '8.121G'),
    ], note=_OTHER)
    + _rows('ini-5', [
        ('ResNet-50', 'resnet50', '25.60', '24.70', '7.80'),
        ('ResNet-101', 'resnet101', '44.60', '23.60', '7.10'),
        ('ResNet-152', None, '60.30', '23.00', '6.7', None,
         'no zoo name; get_resnet_imagenet(152) builds it'),
        ('DenseNet-121', None, '7.98', '25.02', '7.71'),
        ('CliqueNet', None, '14.38', '24.01', '7.15'),
        ('SE-ResNet-50', 'se_resnet50', '28.10', '23.29', '6.62'),
        ('SE-ResNet-101', 'se_resnet101', '49.40', '22.38', '6.07'),
        ('SE-ResNet-152', None, '65.50', '21.57', '5.73', None,
         "no zoo name; get_resnet_imagenet(152, unit='se') builds it"),
        ('InI-ResNet-50-mix-5-d', 'ini_resnet50_mix_5_d', '28.77', '22.10', '5.79'),
        ('InI-ResNet-101-mix-5-d', 'ini_resnet101_mix_5_d', '50.58', '21.33', '5.28'),
        ('CBAM-ResNet-50', None, '28.16', '22.66', '6.31'),
        ('CBAM-ResNet-101', None, '49.48', '21.51', '5.69'),
        ('InI-ResNet-50-mix-5-d + spa', 'ini_resnet50_mix_5_d_spa', '28.83', '21.44', '5.57'),
        ('InI-ResNet-50-mix-5-d + spa x4', 'ini_resnet50_mix_5_d_spa4', '29.00', '21.16', '5.42'),
        ('InI-ResNet-101-mix-5-d + spa', 'ini_resnet101_mix_5_d_spa', '50.66', '20.81', '5.17'),
        ('InI-ResNet-101-mix-5-d + spa x4', 'ini_resnet101_mix_5_d_spa4', '50.89', '20.52',
         '5.06'),
    ], note=_OTHER)
    # Res-SE-Net paper (Varshaneya, Balasubramanian, Gera): accuracies, no parameter counts
    + _rows('res-se-net-1', [
        ('Res-%d' % d, 'resnet%d_cifar' % d, None) + v for d, v in (
            (20, ('91.4', '99.74', '67.37', '91.06')), (32, ('92.32', '99.73', '69.8', '91.25')),
            (44, ('93.57', '99.81', '73.15', '92.9')), (56, ('93.16', '99.82', '73.8', '92.99')),
            (110, ('93.66', '99.77', '73.33', '92.7')))])
    + _rows('res-se-net-2', [
        ('Res-%d' % d, None, None) + v for d, v in (
            (20, ('90.48', '99.71', '67.37', '91.06')), (32, ('90.38', '99.62', '69.8', '91.25')),
            (44, ('87.62', '99.51', '73.15', '92.9')), (56, ('77.46', '98.55', '48.65', '76.67')),
            (110, ('92.42', '99.83', '1.00', '5.00')))],
        note='ResNet with the bridge connections removed; cmpese does not build it')
    + _rows('res-se-net-4', [
        ('SE-Resnet-%d' % d, 'se_resnet%d_cifar' % d, None) + v for d, v in (
            (20, ('92.1', '99.7', '68.31', '90.69')), (32, ('93.08', '99.83', '70.09', '92.12')),
            (44, ('93.71', '99.77', '71.2', '91.78')), (56, ('93.64', '99.76', '71.42', '91.28')),
            (110, ('93.79', '99.74', '72.99', '92.71')))])
    + _rows('res-se-net-5', [
        ('Res-SE-Net-%d' % d, 'res_se_net%d' % d, None) + v for d, v in (
            (20, ('91.9', '99.75', '67.99', '91.03')), (32, ('92.79', '99.82', '69.93', '91.95')),
            (44, ('94.08', '99.83', '73.83', '93.54')), (56, ('93.64', '99.87', '74.29', '93.45')),
            (110, ('94.53', '99.87', '74.93', '93.48')))])
    # SENet paper (Hu, Shen, Sun). Table 2 prints no parameter counts; ResNet-50's 25.6M and
    # SE-ResNet-50's 28.1M are its Tables 10 and 13. FLOPs are Table 2's GFLOPs.
    + _rows('senet-2', [
        ('ResNet-50', 'resnet50', '25.6', '24.80', '7.48', '3.86G',
         're-implementation column (the original paper: 24.7 / 7.8)'),
        ('SE-ResNet-50', 'se_resnet50', '28.1', '23.29', '6.62', '3.87G'),
        ('ResNet-101', 'resnet101', None, '23.17', '6.52', '7.58G',
         're-implementation column (the original paper: 23.6 / 7.1)'),
        ('SE-ResNet-101', 'se_resnet101', None, '22.38', '6.07', '7.60G'),
    ])
    + _rows('senet-4', [
        ('ResNet-110', 'preresnet110', None, '6.37'),
        ('SE-ResNet-110', 'se_preresnet110', None, '5.21'),
        ('ResNet-164', 'preresnet164', None, '5.46'),
        ('SE-ResNet-164', 'se_preresnet164', None, '4.39'),
        ('WRN-16-8', 'wrn16_8', None, '4.27'),
        ('SE-WRN-16-8', 'se_wrn16_8', None, '3.88'),
        ('Shake-Shake 26 2x96d + Cutout', None, None, '2.56'),
        ('SE-Shake-Shake 26 2x96d + Cutout', None, None, '2.12'),
    ], note=_OTHER)
    + _rows('senet-5', [
        ('ResNet-110', 'preresnet110', None, '26.88'),
        ('SE-ResNet-110', 'se_preresnet110', None, '23.85'),
        ('ResNet-164', 'preresnet164', None, '24.33'),
        ('SE-ResNet-164', 'se_preresnet164', None, '21.31'),
        ('WRN-16-8', 'wrn16_8', None, '20.43'),
        ('SE-WRN-16-8', 'se_wrn16_8', None, '19.14'),
        ('Shake-Even 29 2x4x64d + Cutout', None, None, '15.85'),
        ('SE-Shake-Even 29 2x4x64d + Cutout', None, None, '15.41'),
    ], note=_OTHER)
)

# Where each paper's models take their schedule from, per backbone family (a comparison row
# is trained as the paper that prints it trained its own models). 'cmpe-3' trained its
# CMPE-SE-WRNs for 300 epochs; the SENet CIFAR tables follow each backbone's own authors
# (He et al.'s 64k iterations, which the res_se_net preset is; Zagoruyko's WRN schedule, which
# cmpe_wrn is).
_FAMILY_PRESETS = {
    'cmpe': {'wrn': 'cmpe_wrn', 'preresnet': 'cmpe_preresnet', 'resnet_cifar': 'res_se_net'},
    'ini': {'wrn': 'ini_wrn', 'preresnet': 'ini_resnet', 'resnet_cifar': 'ini_resnet',
            'allcnn': 'ini_other', 'pyramidnet': 'ini_other'},
    'res_se_net': {'resnet_cifar': 'res_se_net'},
    'senet': {'preresnet': 'res_se_net', 'wrn': 'cmpe_wrn'},
}
_TABLE_PRESETS = {'cmpe-3': {'wrn': 'cmpe_300'}}
_DATASET_PRESETS = {
    'cmpe': {'svhn': 'cmpe_svhn', 'imagenet': 'cmpe_imagenet'},
    'ini': {'svhn': 'ini_svhn', 'imagenet': 'ini_imagenet'},
    'senet': {'imagenet': 'senet'},
}

IMAGENET_FILES = ('train.rec', 'train.idx', 'val.rec', 'val.idx')
DOCS_DATA_DIR = 'data'      # the data directory the generated docs' commands name


def repo_root():
    """The directory holding train_cifar.py next to the cmpese package (a source checkout),
    else the current directory."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return here if os.path.isfile(os.path.join(here, 'train_cifar.py')) else os.getcwd()


def trainer_path(dataset):
    """train_imagenet.py for ImageNet rows, train_cifar.py otherwise (in :func:`repo_root`)."""
    return os.path.join(repo_root(), 'train_imagenet.py' if dataset == 'imagenet'
                        else 'train_cifar.py')


def get_table(key):
    if key not in TABLES:
        close = difflib.get_close_matches(str(key), list(TABLES), n=3, cutoff=0.3)
        raise KeyError('unknown table %r.%s Tables: %s' % (
            key, ' Did you mean %s?' % ', '.join(close) if close else '', ', '.join(TABLES)))
    return TABLES[key]


def table_rows(key=None):
    """The rows of table ``key`` (every row when None), in printed order."""
    if key is not None:
        get_table(key)
    return [r for r in ROWS if key is None or r.table == key]


def _norm(text):
    text = str(text).lower().replace('\u00d7', 'x').replace('pair-view', '').replace('(ours)', '')
    return re.sub(r'[^a-z0-9*+]', '', text)


def find_row(table, row):
    """The row of ``table`` whose label (or zoo model name) is ``row``, compared without case,
    spaces, dashes or underscores ("CMPE-SE-WRN-28-10 1x1", "cmpe_se_wrn28_10_1x1")."""
    rows = table_rows(table)
    key = _norm(row)
    found = [r for r in rows if _norm(r.label) == key]
    if not found:
        found = [r for r in rows if r.model and _norm(r.model) == key]
    if len(found) == 1:
        return found[0]
    labels = [r.label for r in rows]
    close = difflib.get_close_matches(row, labels, n=3, cutoff=0.4)
    raise KeyError('table %s has no row %r.%s Its rows: %s' % (
        table, row, ' Did you mean %s?' % ' or '.join(repr(c) for c in close) if close else '',
        '; '.join(labels)))


def row_preset(row, dataset):
    """The schedule preset the row's paper trained ``dataset`` with (see _FAMILY_PRESETS)."""
    from ..model_zoo import get_model_info
    paper = TABLES[row.table].paper
    by_dataset = _DATASET_PRESETS.get(paper, {})
    if dataset in by_dataset:
        return by_dataset[dataset]
    info = get_model_info(row.model)
    preset = _TABLE_PRESETS.get(row.table, {}).get(info.family) or \
        _FAMILY_PRESETS.get(paper, {}).get(info.family)
    return preset or info.presets[dataset]


def _slug(text):
    return re.sub(r'[^a-z0-9_.+-]+', '_', text.lower()).strip('_')


def row_runs(row, columns=None, save_root='runs/reproduce', data_dir=None, python='python',
             trainer_dir=None):
    """The training runs behind ``row`` (one per dataset and mixup setting among the columns
    the paper prints a figure for), each with its command line ``argv``.

    ``columns`` restricts them to those column names; ``data_dir`` is passed as --data-dir
    (CIFAR / SVHN) or holds imagenet/{train,val}.{rec,idx}; ``trainer_dir`` prefixes the
    trainer script (default: none, i.e. run from the repository).
    """
    if row.model is None:
        return []
    table = TABLES[row.table]
    wanted = None if columns is None else {_norm(c) for c in columns}
    runs = collections.OrderedDict()
    for column, value in zip(table.columns, row.values):
        if value is None or (wanted is not None and _norm(column.name) not in wanted):
            continue
        key = (column.dataset, column.mixup)
        if key in runs:
            runs[key][2].append(column.name)
            continue
        runs[key] = [column.dataset, column.mixup, [column.name]]
    out = []
    for (dataset, mixup), (_, _, names) in runs.items():
        preset = row_preset(row, dataset)
        save_dir = '/'.join([save_root, row.table, _slug('%s-%s%s' % (
            row.model, dataset, '-mixup' if mixup else ''))])
        script = 'train_imagenet.py' if dataset == 'imagenet' else 'train_cifar.py'
        if trainer_dir:
            script = os.path.join(trainer_dir, script)
        argv = [python, script, '--model', row.model]
        if dataset == 'imagenet':
            base = os.path.join(data_dir or DOCS_DATA_DIR, 'imagenet')
            argv += ['--preset', preset]
            for flag, name in zip(('--rec-train', '--rec-train-idx', '--rec-val', '--rec-val-idx'),
                                  IMAGENET_FILES):
                argv += [flag, os.path.join(base, name)]
        else:
            argv += ['--dataset', dataset, '--preset', preset]
            if mixup:
                argv.append('--mixup')
            if dataset == 'svhn':    # both papers train on all 604,388 SVHN training digits
                argv.append('--svhn-extra')
            if data_dir:
                argv += ['--data-dir', data_dir]
        argv += ['--save-dir', save_dir]
        out.append(Run('%s%s' % (dataset, ' mixup' if mixup else ''), dataset, mixup,
                       tuple(names), preset, argv, save_dir))
    return out


def format_command(argv):
    """A shell command line for ``argv`` (quoted where needed)."""
    return ' '.join(shlex.quote(a) for a in argv)


# ---------------------------------------------------------------------------------------------
# Recording results
# ---------------------------------------------------------------------------------------------
def default_results_path():
    """``$CMPESE_RESULTS``, else results/reproduce.json in :func:`repo_root`."""
    return os.environ.get('CMPESE_RESULTS') or os.path.join(repo_root(), 'results',
                                                           'reproduce.json')


def load_results(path=None):
    """The recorded results (a list of dicts); [] when the file does not exist yet."""
    from ..errors import UserError
    path = path or default_results_path()
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as err:
        raise UserError('%s is not valid JSON (%s); restore it from version control or '
                        'delete it and collect the runs again' % (path, err))
    return list(data.get('results', []))


def _save_results(results, path):
    from ..training.checkpoint import atomic_write
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = json.dumps({'results': results}, indent=1, sort_keys=True) + '\n'

    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
    atomic_write(path, write)


_SCHEDULE_KEYS = ('optimizer', 'momentum', 'wd', 'batch_size', 'lr', 'epochs', 'iterations',
                  'lr_steps', 'lr_steps_frac', 'lr_steps_iter', 'lr_factor', 'mixup_alpha',
                  'mixup_off_epochs', 'svhn_extra', 'model_args')


def _load_trainer(dataset):
    """The trainer module (train_cifar / train_imagenet) of :func:`repo_root`, or None."""
    import importlib.util
    path = trainer_path(dataset)
    if not os.path.isfile(path):
        return None
    name = '_cmpese_trainer_%s' % os.path.basename(path)[:-3]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def _trainer_parser(dataset):
    module = _load_trainer(dataset)
    return None if module is None else module.build_parser()


def expected_config(run):
    """The configuration the trainer resolves for ``run``'s command (None when the trainer
    does not exist here)."""
    from ..training.cli import explicit_keys, resolve_config
    parser = _trainer_parser(run.dataset)
    if parser is None:
        return None
    argv = run.argv[2:]
    args = parser.parse_args(argv)
    return resolve_config(args, explicit_keys(parser, argv))


def _deviations(cfg, run):
    """'key: run value (row: command value)' for every schedule value that differs."""
    expected = expected_config(run)
    if expected is None:
        return []
    out = []
    for key in _SCHEDULE_KEYS:
        if key not in expected and key not in cfg:
            continue
        a, b = cfg.get(key), expected.get(key)
        if key == 'model_args':
            a, b = json.loads(a or '{}'), json.loads(b or '{}')
        if a != b and not (a in (None, False, '') and b in (None, False, '')):
            out.append('%s %s (the row: %s)' % (key, a, b))
    return out


def _run_matches(cfg):
    dataset = cfg.get('dataset') or 'imagenet'
    out = []
    for row in ROWS:
        if row.model != cfg.get('model'):
            continue
        for run in row_runs(row):
            if run.dataset == dataset and run.mixup == bool(cfg.get('mixup')) and \
                    run.preset == cfg.get('preset'):
                out.append((row, run))
    return out


def record_result(run_dir, results_path=None, table=None, row=None):
    """Record the finished run in ``run_dir`` against the table rows it reproduces.

    The run's config.json says what was trained (model, dataset, mixup, preset) and its
    result.json what it measured (the last epoch's top-1 / top-5 test error, the best one).
    Every row whose command trains the same is matched (``table`` / ``row`` narrow them);
    schedule values that differ from the row's command are recorded as ``deviations``.
    Returns the entries written; an existing entry of the same run directory and row is
    replaced. Raises :class:`cmpese.errors.UserError` for an unfinished run, a run that no
    row trains, or a missing file.
    """
    from ..errors import UserError
    from ..training.checkpoint import read_json
    results_path = results_path or default_results_path()
    run_dir = os.path.abspath(run_dir)
    cfg_path = os.path.join(run_dir, 'config.json')
    res_path = os.path.join(run_dir, 'result.json')
    if not os.path.isfile(cfg_path):
        raise UserError('--collect %s: no config.json there; expected the --save-dir of a '
                        'train_cifar.py / train_imagenet.py run' % run_dir)
    if not os.path.isfile(res_path):
        raise UserError('--collect %s: no result.json, so the run has not finished; continue '
                        'it with the same command and --resume, then collect it' % run_dir)
    cfg = read_json(cfg_path, 'run configuration')
    state = read_json(res_path, 'run result')
    history = state.get('history') or []
    if not history:
        raise UserError('--collect %s: result.json holds no epoch; the run trained nothing'
                        % run_dir)
    matches = _run_matches(cfg)
    if table is not None:
        matches = [(r, u) for r, u in matches if r.table == table]
    if row is not None:
        matches = [(r, u) for r, u in matches if _norm(r.label) == _norm(row)]
    if not matches:
        rows = ['%s "%s"' % (r.table, r.label) for r in ROWS if r.model == cfg.get('model')]
        raise UserError(
            '--collect %s: no table row trains %s on %s with preset %s%s; %s' % (
                run_dir, cfg.get('model'), cfg.get('dataset', 'imagenet'), cfg.get('preset'),
                ' and mixup' if cfg.get('mixup') else '',
                ('the rows of this model: %s (python -m cmpese.reproduce --table T --row R '
                 'prints their commands)' % ', '.join(rows)) if rows else
                'this model is in no table row'))
    last = history[-1]
    results = [e for e in load_results(results_path)]
    written = []
    for r, run in matches:
        entry = dict(
            table=r.table, row=r.label, run=run.key, model=cfg.get('model'),
            dataset=run.dataset, mixup=run.mixup, preset=cfg.get('preset'),
            run_dir=run_dir, epochs=len(history), seed=cfg.get('seed'),
            top1_error=last.get('test_error'), top5_error=last.get('test_top5_error'),
            best_top1_error=state.get('best_error'), best_epoch=state.get('best_epoch'),
            deviations=_deviations(cfg, run),
            recorded=datetime.datetime.now().replace(microsecond=0).isoformat())
        results = [e for e in results if not (e.get('run_dir') == run_dir and
                                               e.get('table') == r.table and
                                               e.get('row') == r.label)]
        results.append(entry)
        written.append(entry)
    _save_results(results, results_path)
    return written


def _metric_value(entry, metric):
    err = entry.get('top5_error') if metric in ('err5', 'acc5') else entry.get('top1_error')
    if err is None:
        return None
    return 100.0 * (1.0 - err) if metric.startswith('acc') else 100.0 * err


def measured_cells(row, results):
    """{column name: text} of the row's measured figures: the mean (and std, n) over the
    recorded full-schedule runs, else the runs with deviations marked with a dagger."""
    import numpy as np
    table = TABLES[row.table]
    out = {}
    for column in table.columns:
        entries = [e for e in results if e.get('table') == row.table and e.get('row') == row.label
                   and e.get('dataset') == column.dataset and bool(e.get('mixup')) == column.mixup]
        full = [e for e in entries if not e.get('deviations')]
        chosen = full or entries
        values = [v for v in (_metric_value(e, column.metric) for e in chosen) if v is not None]
        if not values:
            continue
        text = '%.2f' % np.mean(values)
        if len(values) > 1:
            text += ' +- %.2f (n=%d)' % (np.std(values), len(values))
        if not full:
            text += ' \u2020'
        out[column.name] = text
    return out


# ---------------------------------------------------------------------------------------------
# Listing and pages
# ---------------------------------------------------------------------------------------------
def _presets_text(row):
    if row.model is None:
        return ''
    seen = []
    for run in row_runs(row):
        if run.preset not in seen:
            seen.append(run.preset)
    return '/'.join(seen)


def format_list(table=None, results=None):
    """Plain-text listing of every row (or one table's): model, presets, printed parameters,
    printed figures, and the measured ones where recorded (in brackets)."""
    results = results or []
    lines = []
    for key, t in TABLES.items():
        if table is not None and key != table:
            continue
        rows = table_rows(key)
        lines.append('%s  %s paper, Table %s: %s' % (key, PAPER_NAMES[t.paper], t.number,
                                                     t.title))
        header = ['row', 'model', 'preset', 'params'] + [c.name for c in t.columns]
        body = []
        for r in rows:
            measured = measured_cells(r, results)
            cells = [r.label, r.model or '-', _presets_text(r) or '-',
                     (r.params + 'M') if r.params else '-']
            for c, v in zip(t.columns, r.values):
                cell = v or '-'
                if c.name in measured:
                    cell += ' [%s]' % measured[c.name]
                cells.append(cell)
            body.append(cells)
        widths = [max(len(x[i]) for x in [header] + body) for i in range(len(header))]
        for cells in [header] + body:
            lines.append('  ' + '  '.join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
        lines.append('')
    lines.append('[...]: measured by a recorded run of this package; a dagger marks a run '
                 'whose schedule differs from the row\'s command.')
    return '\n'.join(lines)


@functools.lru_cache(maxsize=None)
def model_complexity(name):
    """(parameters, multiply-adds) of zoo model ``name`` at its default classes and input
    size, counted on its symbol graph (cmpese.tools.flops)."""
    from ..model_zoo import get_model, get_model_info
    from .flops import count_flops
    size = get_model_info(name).input_size
    result = count_flops(get_model(name), (1, 3, size, size))
    return int(result.params), int(result.total)


def _millions(n):
    return '%.2fM' % (n / 1e6)


def _cell(text):
    return str(text).replace('|', '\\|').replace('+-', '\u00b1')


GENERATED = ('<!-- Generated by `python -m cmpese.reproduce --write-docs` from '
             'cmpese/tools/reproduce.py; do not edit by hand. -->')


def reproduce_markdown(results=None, complexity=None):
    """docs/reproduce.md: every table, the paper's figures, our parameter counts, the
    measured figures (empty until recorded) and the commands."""
    complexity = complexity or model_complexity
    results = results or []
    out = [GENERATED, '', '# Reproducing the papers\' tables', '',
           'Every result row of the CMPE-SE paper (Tables 1-4), the Inner-Imaging paper '
           '(Tables II-V), the Res-SE-Net paper (Tables 1, 2, 4, 5) and the SENet paper\'s '
           'ResNet-50/101 rows (Table 2) and CIFAR Tables 4-5, with the zoo model that builds '
           'it and the command that trains it as the paper did. Columns:', '',
           '* *paper params*: the count the paper prints (M); *ours*: the model\'s parameters '
           'as built here, for 10 classes on CIFAR and 1000 on ImageNet (docs/parameters.md '
           'compares every printed count);',
           '* *paper*: the figure as printed (InI: mean \u00b1 std over 5 runs; Res-SE-Net: '
           'accuracy, the others error, in %);',
           '* *measured*: the final-epoch test figure of runs of this package recorded with '
           '`python -m cmpese.reproduce --collect RUN_DIR` (mean \u00b1 std, n, over several '
           'runs). Empty until a run is recorded: a paper\'s number never goes there. A '
           '\u2020 marks a run whose schedule differs from the row\'s command.', '',
           'Print one row\'s commands, or run them and record the results:', '',
           '```bash', 'python -m cmpese.reproduce --list',
           'python -m cmpese.reproduce --table cmpe-2 --row "CMPE-SE-WRN-28-10 1x1"',
           'python -m cmpese.reproduce --table cmpe-2 --row "CMPE-SE-WRN-28-10 1x1" '
           '--column C10 --run',
           'python -m cmpese.reproduce --collect '
           'runs/reproduce/cmpe-2/cmpe_se_wrn28_10_1x1-cifar10',
           'python -m cmpese.reproduce --write-docs     # regenerates this page and '
           'docs/model_zoo.md', '```', '',
           'Commands name `--data-dir` only when given (`--data-dir DIR`); ImageNet commands '
           'read `data/imagenet/{train,val}.{rec,idx}` (im2rec output; `--data-dir DIR` '
           'changes `data`). Rows whose network cmpese does not build (the other papers\' '
           'comparisons) have no model and no command.', '']
    for key, t in TABLES.items():
        out += ['## %s: %s paper, Table %s' % (key, PAPER_NAMES[t.paper], t.number), '',
                t.title.replace('+-', '\u00b1') + '.', '']
        cols = ['row', 'model', 'preset', 'paper params', 'ours']
        for c in t.columns:
            cols += [c.name, 'measured']
        out.append('| ' + ' | '.join(cols) + ' |')
        out.append('|' + '---|' * len(cols))
        notes = []
        for r in table_rows(key):
            measured = measured_cells(r, results)
            ours = _millions(complexity(r.model)[0]) if r.model else ''
            label = r.label
            if r.note:
                notes.append(r.note)
                label += ' [%d]' % len(notes)
            cells = [label, '`%s`' % r.model if r.model else '', _presets_text(r),
                     (r.params + 'M') if r.params else '', ours]
            for c, v in zip(t.columns, r.values):
                cells += [v or '\u2013', measured.get(c.name, '')]
            out.append('| ' + ' | '.join(_cell(x) for x in cells) + ' |')
        if notes:
            out.append('')
            out += ['[%d] %s.' % (i + 1, n) for i, n in enumerate(notes)]
        commands = [(r, run) for r in table_rows(key) for run in row_runs(r)]
        if commands:
            out += ['', '<details><summary>commands (%d)</summary>' % len(commands), '',
                    '```bash']
            for r, run in commands:
                out.append('# %s, %s' % (r.label, ' / '.join(run.columns)))
                out.append(format_command(run.argv))
            out += ['```', '', '</details>']
        out.append('')
    return '\n'.join(out).rstrip() + '\n'


def paper_figures(name):
    """(printed params, printed FLOPs) of zoo model ``name``: lists of (figure, table key),
    one per distinct figure, from the rows above."""
    params, flops = [], []
    for r in ROWS:
        if r.model != name:
            continue
        if r.params and not any(float(p) == float(r.params) for p, _ in params):
            params.append((r.params, r.table))
        if r.flops and not any(f == r.flops for f, _ in flops):
            flops.append((r.flops, r.table))
    return params, flops


def _table_ref(key):
    t = TABLES[key]
    return '%s Table %s' % (PAPER_NAMES[t.paper], t.number)


_BACKBONE_PAPERS = {'resnet': 'ResNet', 'preact': 'pre-act ResNet', 'wrn': 'WRN',
                    'allcnn': 'All-CNN', 'pyramidnet': 'PyramidNet'}
_DATASET_ORDER = ('cifar10', 'cifar100', 'svhn', 'digits', 'imagenet')


def model_zoo_markdown(names=None, complexity=None):
    """docs/model_zoo.md: every zoo name, the paper rows it appears in, parameters and FLOPs
    measured by the package beside the printed ones, and the default presets."""
    from ..model_zoo import FAMILIES, PAPERS, get_model_info, get_model_list
    from .flops import format_flops
    complexity = complexity or model_complexity
    names = get_model_list() if names is None else names
    out = [GENERATED, '', '# Model zoo', '',
           'Every name of `cmpese.get_model_list()` (also `gluoncv.model_zoo.get_model(name)` '
           'after `import cmpese`). *params* and *FLOPs* are measured by this package on the '
           'model\'s symbol graph (`cmpese.tools.flops`: one multiply-add = one FLOP) at the '
           'family\'s default classes (10 for CIFAR, 1000 for ImageNet) and input size; '
           '*printed* are the papers\' figures for the same network, with the table that '
           'prints them (InI Table IV counts FLOPs at 100 classes: docs/flops.md compares them '
           'exactly; docs/parameters.md explains every printed count that differs). *rows* '
           'are the paper table rows the model reproduces (docs/reproduce.md); *presets* the '
           'default training schedule per dataset (`--preset`, cmpese.training.presets). '
           'Other depths, widths and G-filter sets are parsed by name (README).', '']
    by_family = collections.OrderedDict((f, []) for f in FAMILIES)
    for name in names:
        by_family.setdefault(get_model_info(name).family, []).append(name)
    titles = {'wrn': 'Wide ResNets (CIFAR)', 'preresnet': 'Pre-activation ResNets (CIFAR)',
              'resnet_cifar': 'Original ResNets (CIFAR) and Res-SE-Net',
              'allcnn': 'All-CNN (CIFAR)', 'pyramidnet': 'PyramidNet (CIFAR)',
              'resnet_imagenet': 'ResNets (ImageNet)'}
    for family, members in by_family.items():
        if not members:
            continue
        out += ['## %s' % titles.get(family, family), '',
                '| model | unit | papers | rows | params | printed | FLOPs | printed | presets |',
                '|---|---|---|---|---|---|---|---|---|']
        for name in members:
            info = get_model_info(name)
            params, flops = complexity(name)
            pp, pf = paper_figures(name)
            rows = ['%s "%s"' % (_table_ref(r.table), r.label) for r in ROWS if r.model == name]
            presets = collections.OrderedDict()
            for dataset, preset in sorted(info.presets.items(), key=lambda kv: (
                    _DATASET_ORDER.index(kv[0]) if kv[0] in _DATASET_ORDER else 99, kv[0])):
                presets.setdefault(preset, []).append(dataset)
            cells = ['`%s`' % name, info.unit or '', ', '.join(
                PAPER_NAMES.get(p) or _BACKBONE_PAPERS.get(p, p) for p in info.papers),
                '; '.join(rows), _millions(params),
                ', '.join('%sM (%s)' % (p, _table_ref(t)) for p, t in pp),
                format_flops(flops), ', '.join('%s (%s)' % (f, _table_ref(t)) for f, t in pf),
                '; '.join('%s: %s' % (p, ', '.join(d)) for p, d in presets.items())]
            out.append('| ' + ' | '.join(_cell(c) for c in cells) + ' |')
        out.append('')
    out += ['Papers:', '']
    out += ['* %s: %s, %s' % (PAPER_NAMES.get(k) or _BACKBONE_PAPERS.get(k, k), v[0], v[1])
            for k, v in PAPERS.items()]
    out.append('')
    return '\n'.join(out).rstrip() + '\n'


def write_docs(docs_dir=None, results_path=None):
    """Write docs/reproduce.md and docs/model_zoo.md; returns their paths."""
    docs_dir = docs_dir or os.path.join(repo_root(), 'docs')
    results = load_results(results_path)
    paths = []
    for name, text in (('reproduce.md', reproduce_markdown(results)),
                       ('model_zoo.md', model_zoo_markdown())):
        path = os.path.join(docs_dir, name)
        with open(path, 'w') as f:
            f.write(text)
        paths.append(path)
    return paths


def complexity_from_page(text):
    """``{model: (params, FLOPs or None)}`` read back from a generated docs/model_zoo.md or
    docs/reproduce.md (the figures as printed there: '36.88M', format_flops' '5.244G'), for
    checking a page without measuring every model again."""
    units = {'K': 1e3, 'M': 1e6, 'G': 1e9}
    out = {}
    header = None
    for line in text.splitlines():
        if not line.startswith('|'):
            header = None if not line.strip() else header
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if cells and cells[0] in ('model', 'row'):
            header = cells
            continue
        if header is None or set(cells[0]) <= set('-'):
            continue
        row = dict(zip(header, cells))
        name = (row.get('model') or '').strip('`')
        if not name:
            continue
        params = row.get('params') if 'FLOPs' in header else row.get('ours')
        flops = row.get('FLOPs')
        value = lambda t: float(t[:-1]) * units[t[-1]] if t and t[-1] in units else None
        out[name] = (value(params), value(flops) if flops is not None else None)
    return out
