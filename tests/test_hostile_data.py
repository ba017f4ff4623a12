"""Hostile RecordIO files get one line: train_imagenet.py and evaluate through cmpese.errors.run
(exit code 2, no traceback, the file and what to do named, nothing written), for what MXNet's
ImageRecordIter would segfault, abort or stop silently on: a truncated .rec (with and without
its .idx), a same-size garbage .rec, an empty .idx, the .idx of another .rec, a first record
that holds no image, and labels beyond --classes in a set without .lst or synset.txt. The
files are made with MXNet's own recordio writer (tests/test_imagenet.write_rec), then
damaged by hand."""
import os
import shutil

import numpy as np
import pytest

from datafiles import synthetic_images
from test_imagenet import write_rec

from cmpese import errors
from cmpese.cli import evaluate as evaluate_cli
from cmpese.cli import train_imagenet
from cmpese.data.imagenet import RecordLoader, count_records
from cmpese.data.recordio_check import (MAGIC, RecordFileError, RecordLabelError,
                                        check_record_set, main as check_main, write_index)

TINY = 'cmpe_se_wrn10_1_1x1'




@pytest.fixture(scope='module')
def sets(tmp_path_factory):
    """A sound 4-class set (16 train, 8 val records, no .lst, no synset.txt) and a folder
    to damage copies of it in."""
    root = tmp_path_factory.mktemp('rec')
    train = write_rec(str(root / 'train'), *synthetic_images(16, 4, seed=1, size=24))
    val = write_rec(str(root / 'val'), *synthetic_images(8, 4, seed=2, size=24))
    for path in (train[0], val[0]):
        os.remove(os.path.splitext(path)[0] + '.lst')
    return dict(root=root, train=train, val=val)


def _copy(sets, tmp_path, name='train'):
    rec, idx = sets[name]
    out = (str(tmp_path / (name + '.rec')), str(tmp_path / (name + '.idx')))
    shutil.copy(rec, out[0])
    shutil.copy(idx, out[1])
    return out


def _one_line(err, prog):
    lines = [l for l in err.strip().splitlines() if l.startswith(prog + ':')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def _train(argv, capsys):
    code = errors.run(train_imagenet.main, argv, prog='train_imagenet.py')
    return code, _one_line(capsys.readouterr().err, 'train_imagenet.py')


def _train_args(rec, val, save):
    return ['--model', TINY, '--preset', 'ini_imagenet', '--rec-train', rec, '--rec-val', val,
            '--classes', '4',
            '--input-size', '16', '--batch-size', '4', '--epochs', '1', '--data-nthreads', '1',
            '--save-dir', str(save), '--no-progress']


def _truncate(path, size):
    with open(path, 'r+b') as f:
        f.truncate(size)


# ---------------------------------------------------------------- each damage, one line

def _damage_truncated(rec, idx):
    _truncate(rec, os.path.getsize(rec) // 2)
    return ['is truncated', 'lists 16 records', 'Copy the .rec again']


def _damage_truncated_last(rec, idx):
    _truncate(rec, os.path.getsize(rec) - 10)           # inside the last record
    return ['is truncated: its record at byte', 'key 15, line 16', 'beyond the end']


def _damage_garbage(rec, idx):
    size = os.path.getsize(rec)
    with open(rec, 'wb') as f:
        f.write(np.random.RandomState(0).bytes(size))
    return ['is not a RecordIO file made by im2rec', 'record mark 0xced7230a']


def _damage_empty_idx(rec, idx):
    open(idx, 'w').close()
    return ['train.idx is empty, but', 'python -m cmpese.data.recordio_check',
            '--write-idx']


def _damage_other_idx(rec, idx, other=None):
    shutil.copy(other, idx)
    return ['points at byte', 'where no record starts', 'belongs to another .rec']


def _damage_no_image(rec, idx):
    with open(rec, 'r+b') as f:                 # the first image's bytes, not its framing
        f.seek(8 + 24)
        f.write(b'\0' * 16)
    return ['the first record holds no image OpenCV can decode']


@pytest.mark.parametrize('damage', [_damage_truncated, _damage_truncated_last, _damage_garbage,
                                    _damage_empty_idx, _damage_other_idx, _damage_no_image])
def test_damaged_train_rec_is_one_line_before_anything_is_written(damage, sets, tmp_path,
                                                                   capsys):
    rec, idx = _copy(sets, tmp_path)
    if damage is _damage_other_idx:
        words = damage(rec, idx, other=sets['val'][1])
    else:
        words = damage(rec, idx)
    save = tmp_path / 'run'
    code, line = _train(_train_args(rec, sets['val'][0], save), capsys)
    assert code == 2
    assert line.startswith('train_imagenet.py: error: ') and rec[:-4] in line, line
    for w in words:
        assert w in line, line
    assert not save.exists()


def test_truncated_val_rec_without_idx_is_one_line_in_evaluate(sets, tmp_path, capsys):
    """evaluate on a truncated val .rec aborted (134) inside ImageRecordIter."""
    rec = str(tmp_path / 'val.rec')
    shutil.copy(sets['val'][0], rec)
    _truncate(rec, os.path.getsize(rec) - 7)
    code = errors.run(evaluate_cli.main, ['--model', TINY, '--rec-val', rec, '--classes', '4',
                                          '--input-size', '16'], prog='evaluate')
    line = _one_line(capsys.readouterr().err, 'evaluate')
    assert code == 2
    assert ('--rec-val %s is truncated: its record at byte' % rec) in line
    assert 'after 7 whole records' in line


def test_truncated_val_rec_with_idx_is_one_line_in_training(sets, tmp_path, capsys):
    rec, idx = _copy(sets, tmp_path, 'val')
    _truncate(rec, 100)
    save = tmp_path / 'run'
    code, line = _train(_train_args(sets['train'][0], rec, save), capsys)
    assert code == 2 and ('--rec-val %s is truncated' % rec) in line, line
    assert not save.exists()


def test_labels_beyond_classes_name_the_record_and_the_flag(sets, tmp_path, capsys):
    """No .lst and no synset.txt: the labels come from the records' headers (4 classes in
    the files, --classes 3 given)."""
    save = tmp_path / 'run'
    args = _train_args(sets['train'][0], sets['val'][0], save)
    args[args.index('--classes') + 1] = '3'
    code, line = _train(args, capsys)
    assert code == 2
    labels = [float(l) for l in check_record_set(*sets['train']).labels]
    first = next(i for i, l in enumerate(labels) if l >= 3)
    assert ('--rec-train %s: record key %d (line %d of %s) has label 3, but the model gets 3 '
            'classes (--classes), so labels must be 0..2; the largest label is 3: pass '
            '--classes 4' % (sets['train'][0], first, first + 1, sets['train'][1])) in line
    assert not save.exists()


def test_val_labels_beyond_classes_are_refused_before_training(sets, tmp_path, capsys):
    """A validation set with a class the training set lacks (labels 0..4, --classes 4) was
    scored without a word: refused before the first batch, naming --rec-val."""
    val = write_rec(str(tmp_path / 'val5'), *synthetic_images(10, 5, seed=3, size=24))
    os.remove(os.path.splitext(val[0])[0] + '.lst')
    save = tmp_path / 'run'
    code, line = _train(_train_args(sets['train'][0], val[0], save), capsys)
    assert code == 2 and not save.exists()
    assert line.startswith('train_imagenet.py: error: --rec-val %s: record key ' % val[0]), line
    assert 'has label 4, but the model gets 4 classes (--classes), so labels must be 0..3; ' \
        'the largest label is 4: pass --classes 5' in line
    # evaluate refuses it the same way
    code = errors.run(evaluate_cli.main, ['--model', TINY, '--rec-val', val[0], '--classes', '4',
                                          '--input-size', '16'], prog='evaluate')
    line = _one_line(capsys.readouterr().err, 'evaluate')
    assert code == 2 and ('--rec-val %s: record key' % val[0]) in line
    assert 'pass --classes 5' in line


@pytest.mark.parametrize('std, why', [('0,0,0', '> 0'), ('1,-1,1', '> 0'),
                                      ('1,inf,1', 'finite')])
def test_evaluate_std_must_be_positive_and_finite(sets, std, why, capsys):
    """evaluate --std 0 divided every input by zero and reported chance accuracy."""
    code = errors.run(evaluate_cli.main, ['--model', TINY, '--rec-val', sets['val'][0],
                                          '--classes', '4', '--input-size', '16', '--std', std],
                      prog='evaluate')
    line = _one_line(capsys.readouterr().err, 'evaluate')
    assert code == 2 and line.startswith('evaluate: error: argument --std: expected 3 ')
    assert why in line and repr(std) in line


def test_negative_and_fractional_labels_are_refused(tmp_path):
    rec, idx = write_rec(str(tmp_path / 'odd'), *synthetic_images(4, 2, seed=3, size=16))
    rec2, idx2 = write_rec(str(tmp_path / 'neg'), synthetic_images(4, 2, seed=3, size=16)[0],
                           np.array([0, 1, -1, 0]))
    with pytest.raises(RecordLabelError, match=r'record key 2 \(line 3 of .*\) has label -1'):
        RecordLoader(rec2, idx2, batch_size=2, train=True, classes=2, input_size=8)
    rec3, idx3 = write_rec(str(tmp_path / 'half'), synthetic_images(4, 2, seed=3, size=16)[0],
                           np.array([0, 0.5, 1, 0]))
    with pytest.raises(RecordLabelError, match='has label 0.5.*must be class indices'):
        RecordLoader(rec3, idx3, batch_size=2, train=True, classes=2, input_size=8)
    # a sound set passes, and the count comes from the check
    assert RecordLoader(rec, idx, batch_size=2, train=True, classes=2,
                        input_size=8).num_records == 4


def test_headers_by_hand_and_the_walk_without_index(sets):
    """The check reads what MXNet wrote: the mark, and the keys and offsets of the .idx;
    without the .idx the walk finds the same records."""
    rec, idx = sets['train']
    with open(rec, 'rb') as f:
        assert int.from_bytes(f.read(4), 'little') == MAGIC
    with_idx = check_record_set(rec, idx)
    walked = check_record_set(rec, None)
    lines = [l.split() for l in open(idx).read().strip().splitlines()]
    assert with_idx.keys.tolist() == [int(k) for k, _ in lines] == list(range(16))
    assert with_idx.offsets.tolist() == [int(o) for _, o in lines] == walked.offsets.tolist()
    assert with_idx.labels.tolist() == walked.labels.tolist()
    assert count_records(rec) == with_idx.count == 16


def test_a_lost_index_is_rebuilt_and_then_accepted(sets, tmp_path, capsys):
    """The named recovery: python -m cmpese.data.recordio_check REC --write-idx IDX writes
    the .idx im2rec wrote (keys from the records' ids)."""
    rec, idx = _copy(sets, tmp_path)
    open(idx, 'w').close()
    with pytest.raises(RecordFileError, match='is empty'):
        check_record_set(rec, idx)
    assert errors.run(check_main, [rec, '--write-idx', idx], prog='check') == 0
    assert open(idx).read() == open(sets['train'][1]).read()
    assert errors.run(check_main, [rec], prog='check') == 0
    assert '16 records, labels 0..3' in capsys.readouterr().out
    # a damaged .rec is refused instead of indexed
    _truncate(rec, 300)
    assert errors.run(check_main, [rec, '--write-idx', idx], prog='check') == 2
    assert 'is truncated' in _one_line(capsys.readouterr().err, 'check')
    assert open(idx).read() == open(sets['train'][1]).read()      # untouched
    assert write_index(sets['train'][0], str(tmp_path / 'again.idx')) == 16
