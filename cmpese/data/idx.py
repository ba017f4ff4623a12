"""The idx file format of MNIST and Fashion-MNIST, read and checked against what it promises.

An idx file (LeCun et al.; Xiao, Rasul and Vollgraf keep it for Fashion-MNIST) is a big-endian
header followed by the raw array:

    bytes 0-1   zero
    byte  2     the element type (0x08: unsigned byte; the only one these datasets use)
    byte  3     the number of dimensions d
    4 * d bytes each dimension's size, a big-endian uint32
    then        prod(sizes) elements, row-major

so the magic number read as one big-endian int32 is 2049 (0x00000801) for a label file (one
dimension: the count) and 2051 (0x00000803) for an image file (count, rows, columns). The files
usually come gzipped (``*-idx3-ubyte.gz``); both forms are read. Nothing here trusts an archive
hash (Debian recompresses the official archives): the header, the sizes and the length are what
is checked, and a file that breaks them raises :class:`~cmpese.data.DatasetFormatError` naming
the file and what was wrong.
"""
import gzip
import os
import struct
import zlib

import numpy as np

from .files import DatasetFormatError

__all__ = ['read_idx', 'write_idx', 'IDX_LABELS', 'IDX_IMAGES']

IDX_LABELS = 2049     # 0x00000801: unsigned bytes, one dimension
IDX_IMAGES = 2051     # 0x00000803: unsigned bytes, three dimensions

_FIX = 'replace it with the official file (see docs/data.md)'


def _read_bytes(path):
    """The decompressed bytes of ``path`` (gzip by its magic bytes, else raw)."""
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:2] != b'\x1f\x8b':
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise DatasetFormatError('%s: not a complete gzip file (%s); %s'
                                 % (path, str(err).rstrip('.') or type(err).__name__, _FIX))


def read_idx(path, expect_magic=None, expect_shape=None):
    """The array in idx file ``path`` (gzipped or not), uint8, shaped as its header says.

    ``expect_magic``: :data:`IDX_LABELS` or :data:`IDX_IMAGES`; ``expect_shape``: the sizes the
    caller needs after the first dimension (e.g. ``(28, 28)`` for images). A header, element
    type, size or length that does not match raises :class:`DatasetFormatError`.
    """
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetFormatError('%s: %d bytes, too short for an idx header; %s'
                                 % (path, len(data), _FIX))
    magic, = struct.unpack('>i', data[:4])
    zero, dtype, ndim = struct.unpack('>HBB', data[:4])
    if zero != 0 or dtype != 0x08 or ndim == 0:
        raise DatasetFormatError('%s: magic number %d (0x%08x) is not that of an unsigned-byte '
                                 'idx file (2049 labels, 2051 images); %s'
                                 % (path, magic, magic & 0xffffffff, _FIX))
    if expect_magic is not None and magic != expect_magic:
        kind = {IDX_LABELS: 'labels', IDX_IMAGES: 'images'}
        raise DatasetFormatError('%s: magic number %d (%s), expected %d (%s); is it the right '
                                 'file?' % (path, magic, kind.get(magic, '%d dimensions' % ndim),
                                            expect_magic, kind[expect_magic]))
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetFormatError('%s: header cut off (%d bytes of %d); %s'
                                 % (path, len(data), header, _FIX))
    shape = struct.unpack('>%dI' % ndim, data[4:header])
    if expect_shape is not None and tuple(shape[1:]) != tuple(expect_shape):
        raise DatasetFormatError('%s: items of size %s, expected %s; %s' % (
            path, 'x'.join(map(str, shape[1:])) or 'scalar',
            'x'.join(map(str, expect_shape)) or 'scalar', _FIX))
    size = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != size:
        raise DatasetFormatError('%s: header promises %s items (%d bytes) but holds %d bytes; '
                                 'the file is %s; %s' % (
                                     path, '{:,}'.format(shape[0]), size, len(data) - header,
                                     'truncated' if len(data) - header < size else 'too long',
                                     _FIX))
    return np.frombuffer(data, np.uint8, size, header).reshape(shape)


def write_idx(path, array, compress=None):
    """Write uint8 ``array`` as an idx file (gzipped when ``compress`` is true, or by default
    when ``path`` ends in '.gz'); the file appears complete or not at all."""
    array = np.ascontiguousarray(array, np.uint8)
    body = struct.pack('>HBB', 0, 0x08, array.ndim) + struct.pack(
        '>%dI' % array.ndim, *array.shape) + array.tobytes()
    if compress is None:
        compress = path.endswith('.gz')
    if compress:
        body = gzip.compress(body, mtime=0)
    tmp = '%s.tmp%d' % (path, os.getpid())
    with open(tmp, 'wb') as f:
        f.write(body)
    os.replace(tmp, path)
    return path
