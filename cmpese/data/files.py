"""Dataset files: where they live (the data directory), the missing-data and bad-format errors,
and a download that either puts complete files in place or leaves nothing behind."""
import os
import shutil
import socket
import tarfile
import tempfile

from ..errors import UserError

__all__ = ['DatasetNotFound', 'DatasetFormatError', 'default_data_dir', 'download_files',
           'DOWNLOAD_TIMEOUT']

# Seconds to wait for a server to answer (and for any read during the transfer) before the
# download attempt counts as failed; without a network it fails at the name lookup at once.
DOWNLOAD_TIMEOUT = 10.0


class DatasetNotFound(UserError, FileNotFoundError):
    """The files of a dataset are not where they are expected (and were not downloaded).

    The message names every expected file with its full path, the file format, the
    official address of the files and the ``--data-dir`` option. A :class:`UserError` (one
    line, exit 2 through ``cmpese.errors.run``), and still a ``FileNotFoundError``.
    """


class DatasetFormatError(UserError, ValueError):
    """A dataset file exists but is not in the official format (wrong size or content). A
    :class:`UserError`, and still a ``ValueError``."""


def default_data_dir():
    """``$CMPESE_DATA`` if set, else ``./data``."""
    return os.environ.get('CMPESE_DATA', 'data')


def _missing_ancestors(path):
    """``path`` and those of its parents that do not exist yet, deepest first."""
    out = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return out


def _http_get(url, path, timeout):
    """Fetch ``url`` into ``path`` with MXNet Gluon's downloader, failing fast off-line.

    A HEAD request with ``timeout`` comes first, so that a machine without a network fails
    within seconds instead of going through Gluon's retries; during the transfer every
    socket operation is bounded by ``timeout`` too.
    """
    import requests
    from mxnet.gluon.utils import download
    head = requests.head(url, timeout=timeout, allow_redirects=True)
    if head.status_code != 200:
        raise RuntimeError('%s answered HTTP %d' % (url, head.status_code))
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        download(url, path=path, overwrite=True, retries=1)
    finally:
        socket.setdefaulttimeout(old)
    return path


# The function that fetches one URL into one path; tests replace it.
fetch_url = _http_get


def _safe_extract(archive, dest):
    with tarfile.open(archive) as tar:
        root = os.path.realpath(dest)
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(dest, member.name))
            if not (target == root or target.startswith(root + os.sep)):
                raise RuntimeError('unsafe path %r in %s' % (member.name, archive))
            if not (member.isfile() or member.isdir()):
                raise RuntimeError('unexpected member %r in %s' % (member.name, archive))
        tar.extractall(dest)


def download_files(urls, data_dir, produces, timeout=None):
    """Download ``urls`` into ``data_dir`` (``.tar.gz`` archives are unpacked there).

    ``produces`` lists the paths, relative to ``data_dir``, that the downloads must yield;
    they are moved into ``data_dir`` only when all of them are complete. On any failure
    the exception propagates and nothing is left behind: the temporary directory is
    removed, and so are ``data_dir`` and any parents this call created.
    """
    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    created = _missing_ancestors(data_dir)
    ok = False
    tmp = None
    try:
        os.makedirs(data_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='.download-', dir=data_dir)
        for url in urls:
            name = url.rstrip('/').split('/')[-1]
            path = fetch_url(url, os.path.join(tmp, name), timeout)
            if name.endswith(('.tar.gz', '.tgz', '.tar')):
                _safe_extract(path, tmp)
                os.remove(path)
        for rel in produces:
            if not os.path.isfile(os.path.join(tmp, rel)):
                raise RuntimeError('the download did not contain %s' % rel)
        for rel in produces:
            dest = os.path.join(data_dir, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(os.path.join(tmp, rel), dest)
        ok = True
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if not ok:
            for path in created:          # deepest first; only if still empty
                try:
                    os.rmdir(path)
                except OSError:
                    break
