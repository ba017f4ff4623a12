"""What a RecordIO set claims, checked before the first batch is read.

``mx.io.ImageRecordIter`` trusts its files. Given a ``.rec`` cut short, it reads past the
end (a segfault, or an abort, 134); given bytes that are no RecordIO, it yields nothing
(``generator raised StopIteration``); given an empty ``.idx``, or the ``.idx`` of another
``.rec``, dmlc-core throws from a thread (``terminate``). So before an iterator is made,
:func:`check_record_set` reads what the files promise, from the record headers only (no
image is decoded but the first):

* the ``.rec``: not empty; its first record starts with the RecordIO mark ``0xced7230a``
  (dmlc's ``kMagic``; the 32-bit word after it holds a 3-bit continuation flag and a 29-bit
  length), fits in the file, holds an ``IRHeader`` (``flag, label, id, id2``: what
  ``mx.recordio.pack`` writes, 24 bytes) and an image OpenCV decodes;
* the ``.idx`` (``key<TAB>offset`` lines, as im2rec writes them): not empty beside a
  ``.rec`` that holds records, every offset inside the ``.rec`` and larger than the one
  before, a record mark at every offset, and every record ending inside the file (the
  last one too: a truncated ``.rec`` is caught even when its ``.idx`` is whole);
* without an ``.idx`` (a validation set may have none): the chain of records from byte 0 to
  the end, each header where the previous record ends, the last one complete.

Reading one 32-byte header a record costs one page read a record (``np.memmap``: only the
pages touched are read), so the labels come with it: :func:`check_labels` names the first
record whose label is not a class index below ``classes`` (what the trainer's ``--classes``
must cover when the set has no im2rec ``.lst`` beside it).

Every problem is one :class:`RecordFileError` line naming the file, the flag it came from,
what is wrong and what to do. ``python -m cmpese.data.recordio_check FILE.rec [FILE.idx]``
runs the same checks from the command line, and ``--write-idx`` rebuilds a lost or damaged
``.idx`` from a sound ``.rec`` (keys from the records' ``IRHeader.id``, as im2rec numbers
them).
"""
import collections
import os
import struct
import sys

import numpy as np

from ..errors import UserError
from .files import DatasetFormatError

__all__ = ['MAGIC', 'RecordSet', 'RecordFileError', 'RecordLabelError', 'check_record_set',
           'check_labels', 'read_index_entries', 'write_index', 'main']

MAGIC = 0xced7230a                 # dmlc::RecordIOWriter::kMagic
_LENGTH_BITS = (1 << 29) - 1        # the record length, below the 3-bit continuation flag
_IR_HEADER = struct.Struct('<IfQQ')  # mx.recordio.IRHeader: flag, label, id, id2
HEADER_BYTES = 8 + _IR_HEADER.size  # record mark + length word + IRHeader

RecordSet = collections.namedtuple('RecordSet', 'rec idx count keys offsets labels')
RecordSet.__doc__ = """What :func:`check_record_set` read: ``count`` records; ``keys`` and
``offsets`` in file order (from the ``.idx``, or the records' ids and positions without
one); ``labels`` the first label of each record (float64)."""

_IM2REC = 'make the .rec and its .idx again with MXNet\'s im2rec (docs/imagenet.md)'


class RecordFileError(DatasetFormatError):
    """A ``.rec`` or ``.idx`` file that does not hold what its format promises (one line,
    exit 2; still a ``ValueError``)."""


class RecordLabelError(UserError):
    """A record whose label is not a class index the model has (one line, exit 2)."""


def _named(path, flag):
    return '%s %s' % (flag, path) if flag else path


def _gather(mm, at, width):
    """The ``width`` bytes at each of the positions ``at`` (bytes past the end read as the
    last byte: only records that fail a length check reach there)."""
    index = np.asarray(at, np.int64)[:, None] + np.arange(width)
    return mm[np.minimum(index, len(mm) - 1)]


def _header_words(mm, offsets):
    """``(mark, length word, IRHeader flag, label)`` of the records at ``offsets``, read
    from the 16 bytes at each (vectorized gather over the memory map)."""
    rows = _gather(mm, offsets, 16)
    words = rows.view('<u4').reshape(len(offsets), 4)
    label = rows[:, 12:16].copy().view('<f4').reshape(-1)
    return words[:, 0], words[:, 1], words[:, 2], label.astype(np.float64)


def _extent(length_word):
    """Bytes from a record's start to the next record's: header + data padded to 4."""
    length = length_word & _LENGTH_BITS
    return 8 + ((length + 3) >> 2 << 2), length


def _first_record(mm, size, rec, flag):
    """Check the first record of ``rec`` (mark, length, IRHeader, a decodable image)."""
    if size == 0:
        raise RecordFileError('%s is empty (0 bytes): %s' % (_named(rec, flag), _IM2REC))
    head = bytes(mm[:8])
    if size < 8 or struct.unpack('<I', head[:4])[0] != MAGIC:
        raise RecordFileError(
            '%s is not a RecordIO file made by im2rec: it does not start with the record mark '
            '0xced7230a (its first bytes: %s). Is it another file, or damaged? Copy it again, or %s'
            % (_named(rec, flag), head[:8].hex(), _IM2REC))
    word = struct.unpack('<I', head[4:8])[0]
    length = word & _LENGTH_BITS
    if 8 + length > size:
        raise RecordFileError(
            '%s is truncated: its first record claims %d bytes but the file has %d. Copy it '
            'again, or %s' % (_named(rec, flag), length, size - 8, _IM2REC))
    if length < _IR_HEADER.size:
        raise RecordFileError(
            '%s: the first record has %d bytes, too few for the 24-byte image header (IRHeader) '
            'that im2rec writes; is it a RecordIO file of images? %s'
            % (_named(rec, flag), length, _IM2REC))
    payload = bytes(mm[8:8 + length])
    nlabel = _IR_HEADER.unpack(payload[:_IR_HEADER.size])[0]
    image = payload[_IR_HEADER.size + 4 * nlabel:]
    try:
        import cv2
        decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR) \
            if image else None
    except ImportError:       # pragma: no cover - OpenCV comes with the mxnet wheel's users
        return
    if decoded is None:
        raise RecordFileError(
            '%s: the first record holds no image OpenCV can decode (%d bytes after the image '
            'header, starting %s); ImageRecordIter would fail on it. %s'
            % (_named(rec, flag), len(image), image[:4].hex() or 'empty', _IM2REC))


def read_index_entries(idx, flag=None):
    """``(keys, offsets)`` of an im2rec ``.idx`` (``key<TAB>offset`` lines) as int64 arrays,
    in file order. A line that is not two integers is a :class:`RecordFileError`."""
    keys, offsets = [], []
    with open(idx, 'rb') as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                if len(parts) != 2:
                    raise ValueError
                key, offset = int(parts[0]), int(parts[1])
            except ValueError:
                raise RecordFileError(
                    '%s line %d: expected "key<TAB>offset" (two integers), got %r; is it an '
                    'im2rec .idx file?' % (_named(idx, flag), n,
                                          line.strip()[:60].decode('utf8', 'replace')))
            keys.append(key)
            offsets.append(offset)
    return np.array(keys, np.int64), np.array(offsets, np.int64)


def _rebuild_hint(rec):
    return ('rebuild it from the .rec: python -m cmpese.data.recordio_check %s --write-idx %s'
            % (rec, os.path.splitext(rec)[0] + '.idx'))


def _check_index(mm, size, rec, idx, flag, idx_flag):
    """The ``.idx`` against the ``.rec``; returns ``(keys, offsets, labels)``."""
    keys, offsets = read_index_entries(idx, idx_flag)
    where = _named(idx, idx_flag)
    if not len(keys):
        raise RecordFileError(
            '%s is empty, but %s holds records (%d bytes): the index was not written '
            'completely; %s' % (where, rec, size, _rebuild_hint(rec)))
    wrong = np.flatnonzero((offsets < 0) | (np.diff(offsets, prepend=-1) <= 0))
    if len(wrong):
        n = int(wrong[0])
        raise RecordFileError(
            '%s line %d: offset %d is %s; im2rec writes the records\' offsets in increasing '
            'order: is it the .idx of %s? %s' % (
                where, n + 1, offsets[n], 'negative' if offsets[n] < 0 else
                'not larger than the one before (%d)' % offsets[n - 1], rec, _rebuild_hint(rec)))
    # offsets increase, so the records inside the file come first (the subset below is a
    # prefix: its positions are those of the whole index)
    inside = offsets + 8 <= size
    # every offset inside the file must hold a record mark
    marks, words, nlabels, labels = _header_words(mm, offsets[inside])
    bad = np.flatnonzero(marks != MAGIC)
    if len(bad):
        n = int(bad[0])
        raise RecordFileError(
            '%s line %d (key %d) points at byte %d of %s, where no record starts: the index '
            'belongs to another .rec, or the .rec changed after it was indexed; %s' % (
                where, n + 1, keys[n], offsets[n], rec, _rebuild_hint(rec)))
    if not inside.all():
        n = int(np.argmin(inside))
        raise RecordFileError(
            '%s is truncated: it has %d bytes, but %s lists %d records, the one at line %d (key '
            '%d) at byte %d. Copy the .rec again, or %s' % (
                _named(rec, flag), size, idx, len(keys), n + 1, keys[n], offsets[n], _IM2REC))
    extents, lengths = _extent(words.astype(np.int64))
    ends = offsets + 8 + lengths
    whole = (words >> 29) == 0
    limits = np.append(offsets[1:], size)
    over = np.flatnonzero(ends > np.where(whole, limits, size))
    if len(over):
        n = int(over[0])
        if ends[n] > size:
            raise RecordFileError(
                '%s is truncated: its record at byte %d (key %d, line %d of %s) ends at byte '
                '%d, beyond the end of the file (%d bytes). Copy the .rec again, or %s' % (
                    _named(rec, flag), offsets[n], keys[n], n + 1, idx, ends[n], size, _IM2REC))
        raise RecordFileError(
            '%s line %d (key %d): the record at byte %d is %d bytes long and overlaps the next '
            'one at byte %d: the index does not describe %s; %s' % (
                where, n + 1, keys[n], offsets[n], lengths[n], limits[n], rec,
                _rebuild_hint(rec)))
    labels = _first_labels(mm, offsets, nlabels, labels)
    return keys, offsets, labels


def _first_labels(mm, offsets, nlabels, labels):
    """The header label, or for records packed with several labels (``flag`` > 0) the first
    of the label array after the header."""
    multi = np.flatnonzero(nlabels > 0)
    if len(multi):
        rows = _gather(mm, offsets[multi] + HEADER_BYTES, 4)
        labels = labels.copy()
        labels[multi] = rows.copy().view('<f4').reshape(-1)
    return labels


def _walk(mm, size, rec, flag):
    """Follow the records of ``rec`` from byte 0 (no index); returns ``(ids, offsets,
    labels)`` of the records (continuation parts of split records are skipped)."""
    ids, offsets, labels = [], [], []
    pos = 0
    while pos < size:
        if pos + 8 > size:
            raise RecordFileError(
                '%s is truncated: %d stray bytes follow its last whole record (%d records). '
                'Copy it again, or %s' % (_named(rec, flag), size - pos, len(ids), _IM2REC))
        mark, word = struct.unpack_from('<II', mm, pos)
        if mark != MAGIC:
            raise RecordFileError(
                '%s: no record starts at byte %d, after %d whole records: the file is damaged '
                'from there. Copy it again, or %s' % (_named(rec, flag), pos, len(ids), _IM2REC))
        extent, length = _extent(word)
        if pos + 8 + length > size:
            raise RecordFileError(
                '%s is truncated: its record at byte %d (after %d whole records) ends at byte %d, '
                'beyond the end of the file (%d bytes). Copy it again, or %s' % (
                    _named(rec, flag), pos, len(ids), pos + 8 + length, size, _IM2REC))
        if word >> 29 in (0, 1) and length >= _IR_HEADER.size:
            nlabel, label, rid, _ = _IR_HEADER.unpack_from(mm, pos + 8)
            if nlabel > 0 and length >= _IR_HEADER.size + 4:
                label = struct.unpack_from('<f', mm, pos + HEADER_BYTES)[0]
            ids.append(rid)
            offsets.append(pos)
            labels.append(label)
        pos += extent
    return (np.array(ids, np.int64), np.array(offsets, np.int64),
            np.array(labels, np.float64))


_CHECKED = {}


def _stamp(path):
    st = os.stat(path)
    return os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino


def _scan(rec, idx, flag, idx_flag):
    """``(keys, offsets, labels)`` of ``rec``: its first record checked, then the records
    its ``idx`` lists (each checked against the file), or the chain of records without one."""
    size = os.path.getsize(rec)
    if size == 0:
        _first_record(None, 0, rec, flag)
    mm = np.memmap(rec, dtype=np.uint8, mode='r')
    try:
        _first_record(mm, size, rec, flag)
        if idx is not None:
            return _check_index(mm, size, rec, idx, flag, idx_flag)
        return _walk(mm, size, rec, flag)
    finally:
        del mm


def check_record_set(rec, idx=None, flag='--rec-train', idx_flag=None):
    """Check ``rec`` (and its ``idx``, when given) as the module docstring says; returns a
    :class:`RecordSet`. Raises :class:`RecordFileError` naming the file and ``flag``
    (``idx_flag``: the index's flag, default ``flag + '-idx'``; False: name the path only). The
    result is remembered for files that did not change since (the trainers check in their
    input checks, then build the loaders)."""
    if idx_flag is None:
        idx_flag = flag + '-idx' if flag else None
    key = (_stamp(rec), _stamp(idx) if idx else None)
    if key in _CHECKED:
        return _CHECKED[key]
    keys, offsets, labels = _scan(rec, idx, flag, idx_flag)
    result = RecordSet(rec, idx, len(keys), keys, offsets, labels)
    _CHECKED[key] = result
    return result


def check_labels(records, classes, flag='--rec-train', classes_flag='--classes'):
    """Raise :class:`RecordLabelError` naming the first record of ``records`` (a
    :class:`RecordSet`) whose label is not a class index in ``[0, classes)``."""
    labels = records.labels
    ok = np.isfinite(labels) & (labels >= 0) & (labels < classes) & (labels == np.floor(labels))
    if ok.all():
        return
    n = int(np.argmin(ok))
    where = ('line %d of %s' % (n + 1, records.idx)) if records.idx else \
        'byte %d' % records.offsets[n]
    integral = np.isfinite(labels) & (labels >= 0) & (labels == np.floor(labels))
    hint = ''
    if integral.all():
        top = int(labels.max())
        hint = ('; the largest label is %d: pass %s %d, or relabel the set (im2rec numbers the '
                'class folders 0, 1, ...)' % (top, classes_flag, top + 1))
    else:
        hint = '; labels must be class indices 0, 1, ... (im2rec numbers the class folders so)'
    raise RecordLabelError(
        '%s: record key %d (%s) has label %s, but the model gets %d classes (%s), so labels '
        'must be 0..%d%s' % (_named(records.rec, flag), records.keys[n], where,
                             '%g' % labels[n], classes, classes_flag, classes - 1, hint))


def write_index(rec, idx):
    """Write ``idx`` for the sound ``rec`` (as im2rec does: ``id<TAB>offset`` a record,
    the key from the record's ``IRHeader.id``), through a temporary file; returns the
    record count. Refuses when the ``.rec`` itself is damaged."""
    ids, offsets, _ = _scan(rec, None, None, None)
    if len(set(ids.tolist())) != len(ids):
        ids = np.arange(len(ids))       # ids not unique: number the records in file order
    tmp = '%s.tmp-%d' % (idx, os.getpid())
    try:
        with open(tmp, 'w') as f:
            for k, o in zip(ids.tolist(), offsets.tolist()):
                f.write('%d\t%d\n' % (k, o))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, idx)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return len(ids)


def main(argv=None, prog='python -m cmpese.data.recordio_check'):
    from ..errors import ArgumentParser
    parser = ArgumentParser(prog=prog, description='Check an im2rec RecordIO file (and its '
                                                   '.idx) before training on it.')
    parser.add_argument('rec', help='the .rec file')
    parser.add_argument('idx', nargs='?', help='its .idx (default: beside the .rec, if any)')
    parser.add_argument('--write-idx', metavar='IDX',
                        help='write a new .idx for the .rec here (when the old one is lost or '
                             'damaged)')
    parser.add_argument('--classes', type=int, help='also check every label is below this')
    args = parser.parse_args(argv)
    if not os.path.isfile(args.rec):
        raise UserError('%s: no such file' % args.rec)
    if args.write_idx:
        count = write_index(args.rec, args.write_idx)
        print('%s: %d records indexed in %s' % (args.rec, count, args.write_idx))
        return 0
    idx = args.idx
    if idx is None and os.path.isfile(os.path.splitext(args.rec)[0] + '.idx'):
        idx = os.path.splitext(args.rec)[0] + '.idx'
    if idx is not None and not os.path.isfile(idx):
        raise UserError('%s: no such file' % idx)
    records = check_record_set(args.rec, idx, flag=None, idx_flag=None)
    if args.classes:
        check_labels(records, args.classes, flag=None)
    labels = records.labels
    print('%s%s: %d records, labels %g..%g' % (
        args.rec, ' with %s' % idx if idx else '', records.count,
        labels.min() if len(labels) else 0, labels.max() if len(labels) else 0))
    return 0


if __name__ == '__main__':
    from ..errors import run
    sys.exit(run(main, prog='python -m cmpese.data.recordio_check'))
