"""cmpese.reproduce: every table row is listed, every command parses through the trainer's own
parser and resolves to the row's model, dataset, mixup and preset, every named model is in
the registry, the parameter check's printed counts (cmpese.papers.PAPER_PARAMS, INI_PARAMS)
agree with the rows and the printed FLOPs with cmpese.tools.flops, a finished real run is
recorded against its row (the measured column stays empty otherwise), and docs/reproduce.md
is the generated page."""
import json
import os
import sys

import pytest

from datafiles import synthetic_images, write_cifar10

from cmpese.errors import run as run_cli
from cmpese.model_zoo import get_model_info
from cmpese.papers import INI_PARAMS, PAPER_PARAMS
from cmpese.papers import reproduce as rp
from cmpese.training.cli import explicit_keys, resolve_config
from cmpese.training.presets import get_preset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# rows per table, counted by hand in ../shared/papers/
PRINTED_ROWS = {'cmpe-1': 8, 'cmpe-2': 9, 'cmpe-3': 13, 'cmpe-4': 9, 'ini-2': 22, 'ini-3': 25,
                'ini-4': 27, 'ini-5': 16, 'res-se-net-1': 5, 'res-se-net-2': 5,
                'res-se-net-4': 5, 'res-se-net-5': 5, 'senet-2': 4, 'senet-4': 8,
                'senet-5': 8}


def _trainer(script):
    path = os.path.join(ROOT, script)
    if not os.path.isfile(path):
        return None
    sys.path.insert(0, ROOT)
    try:
        module = __import__(script[:-3])
    finally:
        sys.path.pop(0)
    return module


def test_every_printed_row_is_listed():
    assert list(rp.TABLES) == list(PRINTED_ROWS)
    for key, count in PRINTED_ROWS.items():
        rows = rp.table_rows(key)
        assert len(rows) == count, key
        assert len({r.label for r in rows}) == count        # labels identify rows
        width = len(rp.TABLES[key].columns)
        assert all(len(r.values) == width for r in rows)
    text = rp.format_list()
    for row in rp.ROWS:
        assert row.label in text
    # figures as printed, spot checks against the papers' text
    assert rp.find_row('cmpe-2', 'CMPE-SE-WRN-28-10 1x1').values == ('3.58', '2.58', '18.55',
                                                                    '16.13')
    assert rp.find_row('ini-5', 'InI-ResNet-101-mix-5-d + spa x4').values == ('20.52', '5.06')
    assert rp.find_row('res-se-net-5', 'Res-SE-Net-110').values == ('94.53', '99.87', '74.93',
                                                                   '93.48')
    assert rp.find_row('senet-2', 'SE-ResNet-101').values == ('22.38', '6.07')
    assert rp.find_row('cmpe-1', 'ResNet-110').values == ('6.37', None, None, '23.98')


def test_every_named_model_is_in_the_registry():
    named = [r for r in rp.ROWS if r.model]
    assert len(named) == 124
    for row in named:
        info = get_model_info(row.model)
        for run in rp.row_runs(row):
            assert run.dataset in info.presets or run.dataset == 'imagenet', (row, run)
    # rows without a model say why
    assert all(r.note for r in rp.ROWS if r.model is None)


def test_every_command_parses_through_the_trainers():
    cifar = _trainer('train_cifar.py').build_parser()
    imagenet_module = _trainer('train_imagenet.py')
    checked = {'cifar': 0, 'imagenet': 0}
    for row in rp.ROWS:
        for run in rp.row_runs(row):
            if run.dataset == 'imagenet':
                if imagenet_module is None:
                    continue
                parser = imagenet_module.build_parser()
            else:
                parser = cifar
            assert run.argv[:2] == ['python', 'train_imagenet.py' if run.dataset == 'imagenet'
                                    else 'train_cifar.py']
            argv = run.argv[2:]
            args = parser.parse_args(argv)
            cfg = resolve_config(args, explicit_keys(parser, argv))
            assert (cfg['model'], cfg['preset'], bool(cfg['mixup'])) == (
                row.model, run.preset, run.mixup)
            assert cfg.get('dataset', 'imagenet') == run.dataset
            assert cfg['save_dir'] == run.save_dir
            if run.mixup:     # the CMPE-SE paper adds 20 epochs without mixup
                assert cfg['epochs'] == 20 + get_preset(run.preset)['epochs']
            checked['imagenet' if run.dataset == 'imagenet' else 'cifar'] += 1
    assert checked['cifar'] == 238
    if imagenet_module is None:
        pytest.skip('train_imagenet.py is not in the repository yet: its %d commands were not '
                    'parsed' % sum(len(rp.row_runs(r)) for r in rp.ROWS
                                   if rp.TABLES[r.table].columns[0].dataset == 'imagenet'))
    assert checked['imagenet'] == 18


def test_one_rows_commands_exactly():
    row = rp.find_row('cmpe-2', 'CMPE-SE-WRN-28-10 1x1')
    assert row is rp.find_row('cmpe-2', 'cmpe_se_wrn28_10_1x1')      # by model name too
    commands = [rp.format_command(r.argv) for r in rp.row_runs(row)]
    base = 'python train_cifar.py --model cmpe_se_wrn28_10_1x1 --dataset '
    assert commands == [
        base + 'cifar10 --preset cmpe_wrn --save-dir runs/reproduce/cmpe-2/'
               'cmpe_se_wrn28_10_1x1-cifar10',
        base + 'cifar10 --preset cmpe_wrn --mixup --save-dir runs/reproduce/cmpe-2/'
               'cmpe_se_wrn28_10_1x1-cifar10-mixup',
        base + 'cifar100 --preset cmpe_wrn --save-dir runs/reproduce/cmpe-2/'
               'cmpe_se_wrn28_10_1x1-cifar100',
        base + 'cifar100 --preset cmpe_wrn --mixup --save-dir runs/reproduce/cmpe-2/'
               'cmpe_se_wrn28_10_1x1-cifar100-mixup']
    svhn = rp.row_runs(rp.find_row('cmpe-3', 'CMPE-SE-WRN-28-10 1x1'), ['SVHN'], data_dir='/d')
    assert rp.format_command(svhn[0].argv) == (
        'python train_cifar.py --model cmpe_se_wrn28_10_1x1 --dataset svhn --preset cmpe_svhn '
        '--svhn-extra --data-dir /d --save-dir runs/reproduce/cmpe-3/cmpe_se_wrn28_10_1x1-svhn')
    assert [r.preset for r in rp.row_runs(rp.find_row('cmpe-3', 'CMPE-SE-WRN-40-10 1x1'))] == [
        'cmpe_300'] * 4
    top = rp.row_runs(rp.find_row('ini-5', 'InI-ResNet-50-mix-5-d + spa x4'))
    assert len(top) == 1 and top[0].columns == ('top-1', 'top-5')
    assert rp.format_command(top[0].argv) == (
        'python train_imagenet.py --model ini_resnet50_mix_5_d_spa4 --preset ini_imagenet '
        '--rec-train data/imagenet/train.rec --rec-train-idx data/imagenet/train.idx '
        '--rec-val data/imagenet/val.rec --rec-val-idx data/imagenet/val.idx '
        '--save-dir runs/reproduce/ini-5/ini_resnet50_mix_5_d_spa4-imagenet')


def test_printed_parameters_agree_with_paper_tables():
    """Every count the parameter check compares (cmpese.papers) is the one these rows print,
    in every table its source names ("(27.0M in CMPE Table 2)" gives another table's precision)."""
    import re
    refs = {'CMPE': 'cmpe', 'InI': 'ini'}
    numerals = {'I': '1', 'II': '2', 'III': '3', 'IV': '4', 'V': '5'}
    checked = 0
    for entry in list(PAPER_PARAMS) + [e[:3] for e in INI_PARAMS]:
        name, printed, source = entry
        main, _, aside = source.partition('(')
        expected = {}
        for paper, numbers in re.findall(r'(CMPE|InI) Tables? ([0-9IVX]+\b(?:(?:, | and )'
                                         r'[0-9IVX]+\b)*)', main):
            for n in re.split(r', | and ', numbers):
                key = '%s-%s' % (refs[paper], numerals.get(n, n))
                expected[key] = printed
        m = re.match(r'([\d.]+)M in (?:(CMPE|InI) )?Table (\w+)', aside)
        if m:
            paper = m.group(2) or re.match(r'(CMPE|InI)', main).group(1)
            expected['%s-%s' % (refs[paper], m.group(3))] = m.group(1)
        for key, figure in expected.items():
            rows = [r for r in rp.table_rows(key) if r.model == name]
            assert rows, (name, key)
            assert float(rows[0].params) == float(figure), (name, key, rows[0].params, figure)
            checked += 1
    assert checked == 89     # 40 PAPER_PARAMS and 49 INI_PARAMS (table, figure) pairs
    # and the other way: a row's printed count for a model paper_tables knows is the same
    known = {e[0]: e[1] for e in PAPER_PARAMS}
    known.update({e[0]: e[1] for e in INI_PARAMS})
    for r in rp.ROWS:
        if r.model in known and r.params and r.table.startswith(('cmpe', 'ini')):
            assert abs(float(r.params) - float(known[r.model])) <= 0.1, r


def test_printed_flops_agree_with_the_flop_counter_table():
    from cmpese.tools.flops import TABLE_IV_FLOPS
    labels = {'original ResNet-110': 'original ResNet-110',
              'pre-act ResNet-164': 'pre-act ResNet-164',
              'Wide ResNet-28-10': 'Wide ResNet-28-10'}
    units = {'M': 1e6, 'G': 1e9}
    for row in rp.table_rows('ini-4'):
        key = labels.get(row.label, row.label)
        if key in TABLE_IV_FLOPS:
            assert float(row.flops[:-1]) * units[row.flops[-1]] == TABLE_IV_FLOPS[key]
    assert sum(r.label in TABLE_IV_FLOPS for r in rp.table_rows('ini-4')) == 9


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
    """``--run`` of Res-SE-Net Table 1's Res-20 row, CIFAR-10 column (resnet20_cifar, preset
    res_se_net), as a real train_cifar.py process on a tiny CIFAR-10 in the official format,
    shortened by --extra to one epoch of two batches; it records itself into auto.json."""
    from cmpese.reproduce import main
    root = tmp_path_factory.mktemp('repro')
    write_cifar10(root / 'data', synthetic_images(64, 10, seed=1), synthetic_images(40, 10,
                                                                                    seed=2))
    code = run_cli(main, ['--table', 'res-se-net-1', '--row', 'Res-20', '--column',
                          'C10 top-1 acc', '--run', '--save-root', str(root / 'runs'),
                          '--data-dir', str(root / 'data'), '--results', str(root / 'auto.json'),
                          '--extra', '--epochs 1 --batch-size 32 --no-progress'])
    assert code == 0
    save = str(root / 'runs' / 'res-se-net-1' / 'resnet20_cifar-cifar10')
    assert os.path.isfile(os.path.join(save, 'result.json'))
    return save, root


def test_run_records_its_result(finished_run):
    save, root = finished_run
    entries = rp.load_results(str(root / 'auto.json'))
    assert [(e['table'], e['row'], e['run'], e['run_dir']) for e in entries] == [
        ('res-se-net-1', 'Res-20', 'cifar10', save)]


def test_train_cifar_record_result_records_the_run(finished_run, tmp_path):
    """train_cifar.py --record-result: the trainer itself enters the finished run, with the
    shortened schedule listed as deviations from the row's command."""
    import subprocess
    import sys
    _, root = finished_run
    save, results = str(tmp_path / 'run'), str(tmp_path / 'rec.json')
    env = dict(os.environ, CMPESE_RESULTS=results, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, os.path.join(os.path.dirname(__file__), '..', 'train_cifar.py'),
         '--model', 'resnet20_cifar', '--dataset', 'cifar10', '--data-dir', str(root / 'data'),
         '--no-download', '--preset', 'res_se_net', '--epochs', '1', '--batch-size', '32',
         '--no-progress', '--record-result', '--save-dir', save],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    entries = rp.load_results(results)
    assert ('res-se-net-1', 'Res-20', 'cifar10', os.path.abspath(save)) in [
        (e['table'], e['row'], e['run'], e['run_dir']) for e in entries]
    assert all(e['deviations'] for e in entries)
    assert 'recorded res-se-net-1 "Res-20"' in open(os.path.join(save, 'train.log')).read()


def test_collect_records_measured_next_to_published(finished_run, tmp_path, capsys):
    save, _ = finished_run
    results = str(tmp_path / 'results.json')
    assert not any(rp.measured_cells(r, rp.load_results(results)) for r in rp.ROWS)
    from cmpese.reproduce import main
    assert run_cli(main, ['--collect', save, '--results', results]) == 0
    assert 'recorded res-se-net-1 "Res-20" cifar10' in capsys.readouterr().out
    entries = rp.load_results(results)
    assert len(entries) == 1
    entry = entries[0]
    with open(os.path.join(save, 'result.json')) as f:
        state = json.load(f)
    assert entry['top1_error'] == state['history'][-1]['test_error']
    assert (entry['model'], entry['dataset'], entry['preset'], entry['epochs']) == (
        'resnet20_cifar', 'cifar10', 'res_se_net', 1)
    assert 'epochs 1 (the row: None)' in entry['deviations']
    assert 'iterations None (the row: 64000)' in entry['deviations']
    assert 'batch_size 32 (the row: 128)' in entry['deviations']
    cells = rp.measured_cells(rp.find_row('res-se-net-1', 'Res-20'), entries)
    accuracy = 100 * (1 - state['history'][-1]['test_error'])
    top5 = 100 * (1 - state['history'][-1]['test_top5_error'])
    assert cells == {'C10 top-1 acc': '%.2f \u2020' % accuracy, 'C10 top-5 acc': '%.2f \u2020'
                     % top5}
    page = rp.reproduce_markdown(entries, complexity=lambda name: (1e6, 1e6))
    line = [l for l in page.splitlines() if l.startswith('| Res-20 | `resnet20_cifar`')][0]
    assert '| 91.4 | %.2f \u2020 | 99.74 | %.2f \u2020 | 67.37 |  |' % (accuracy, top5) in line
    assert '[%.2f \u2020]' % accuracy in rp.format_list('res-se-net-1', entries)
    # collecting again replaces the entry instead of adding one
    assert run_cli(main, ['--collect', save, '--results', results]) == 0
    assert len(rp.load_results(results)) == 1


def test_collect_refuses_what_no_row_trains(finished_run, tmp_path, capsys):
    save, root = finished_run
    from cmpese.reproduce import main
    results = str(tmp_path / 'r.json')
    unfinished = root / 'unfinished'
    unfinished.mkdir()
    with open(os.path.join(save, 'config.json')) as f:
        cfg = json.load(f)
    (unfinished / 'config.json').write_text(json.dumps(cfg))
    assert run_cli(main, ['--collect', str(unfinished), '--results', results]) == 2
    assert 'has not finished' in capsys.readouterr().err
    other = root / 'other'
    other.mkdir()
    (other / 'config.json').write_text(json.dumps(dict(cfg, preset='digits', dataset='digits')))
    with open(os.path.join(save, 'result.json')) as f:
        (other / 'result.json').write_text(f.read())
    assert run_cli(main, ['--collect', str(other), '--results', results]) == 2
    err = capsys.readouterr().err
    assert 'no table row trains resnet20_cifar on digits' in err and 'res-se-net-1' in err
    assert not os.path.exists(results)


def test_command_line_prints_and_refuses(capsys):
    from cmpese.reproduce import main
    assert run_cli(main, ['--table', 'cmpe-2', '--row', 'CMPE-SE-WRN-28-10 1x1', '--column',
                          'C100 mixup']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ['# cmpe-2, CMPE-SE-WRN-28-10 1x1: C100 mixup (cmpe_wrn)',
                   'python train_cifar.py --model cmpe_se_wrn28_10_1x1 --dataset cifar100 '
                   '--preset cmpe_wrn --mixup --save-dir runs/reproduce/cmpe-2/'
                   'cmpe_se_wrn28_10_1x1-cifar100-mixup']
    assert run_cli(main, ['--table', 'cmpe-2', '--row', 'CMPE-SE-WRN-28-11 1x1']) == 2
    assert 'Did you mean' in capsys.readouterr().err
    assert run_cli(main, ['--table', 'cmpe-3', '--row', 'DenseNet-100']) == 2
    assert 'no command' in capsys.readouterr().err
    assert run_cli(main, ['--table', 'cmpe9', '--list']) == 2
    assert 'cmpe-1' in capsys.readouterr().err
    assert run_cli(main, ['--list', '--table', 'senet-2']) == 0
    assert 'SE-ResNet-101' in capsys.readouterr().out


def test_reproduce_page_is_current():
    """docs/reproduce.md is what --write-docs writes now. Our parameter counts are measured for
    a sample of models (all of them take a minute) and read back from the page for the rest;
    everything else (rows, figures, presets, commands, measured results) is regenerated."""
    path = os.path.join(ROOT, 'docs', 'reproduce.md')
    with open(path) as f:
        text = f.read()
    on_page = rp.complexity_from_page(text)
    sample = ('cmpe_se_preresnet110_1x1', 'ini_wrn16_8_mix_5_d', 'res_se_net44', 'se_allcnn')

    def complexity(name):
        if name in sample:
            return rp.model_complexity(name)
        assert name in on_page, '%s is missing from docs/reproduce.md: regenerate it' % name
        return on_page[name][0], 0
    expected = rp.reproduce_markdown(rp.load_results(), complexity=complexity)
    assert text == expected, ('docs/reproduce.md is stale: run python -m cmpese.reproduce '
                              '--write-docs')
