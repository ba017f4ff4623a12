"""Checkpoints that survive a kill at any instant, and that are never silently wrong.

A checkpoint after epoch ``E`` is four files: ``epoch-EEEE.params`` (network),
``epoch-EEEE.states`` (trainer: optimizer state, momentum, per-device update counts,
learning-rate schedule), and its record ``epoch-EEEE.json`` (the epoch, the history, the best
result so far and the SHA-256 of the two data files). ``checkpoint.json``, a copy of the
newest record, is what makes the checkpoint the current one.

* Every file is written to ``<name>.tmp-<pid>`` and moved into place with ``os.replace``
  (atomic on POSIX), ``checkpoint.json`` last, so a reader always sees a complete checkpoint:
  the new one or the previous one. Temporary files of a write that was killed are removed
  at the next start (:func:`remove_stale_temps`).
* ``--resume`` (:func:`load_checkpoint`) checks the SHA-256 of the files against the record
  before loading. When the newest checkpoint is missing a file, fails its check, or
  ``checkpoint.json`` is truncated, it falls back to the newest intact checkpoint (from
  the per-checkpoint records) and says so; when none is intact it stops, naming what is
  wrong.
* Nothing non-finite is written: :func:`find_nonfinite` lists parameters and BatchNorm
  running statistics that are NaN or infinite (the fit loop refuses to save then).
* A write that fails for lack of space, quota or permission (:func:`write_errors`) ends in
  one line (:class:`SaveError`) naming the directory and the last complete checkpoint,
  which stays resumable.
* One run a directory (:func:`lock_run_dir`): a run holds an exclusive ``flock`` on
  ``run.lock`` in its directory for the life of its process, and a second run started on
  the same directory (``--resume`` or not) stops in one line (:class:`RunLocked`) naming the
  process that holds it. The kernel drops the lock when the holder ends, however it ends
  (kill -9 included), so a killed run never leaves the directory locked; the file itself
  stays (it only says who held it last). In a run of several workers, worker ``r`` > 0
  holds ``run-worker<r>.lock`` instead: the workers of one run share the directory, and
  each lock file stands for the files its worker writes (worker 0: every run file; worker
  ``r``: ``train-worker<r>.log``).
"""
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import socket
import sys
import time

import numpy as np

from ..errors import UserError

__all__ = ['atomic_write', 'sha256_file', 'save_checkpoint', 'load_checkpoint',
           'latest_checkpoint', 'find_checkpoint', 'refuse_existing_run', 'remove_stale_temps',
           'find_nonfinite', 'read_json', 'CheckpointError', 'RunExists', 'SaveError',
           'checkpoint_clause', 'is_write_failure', 'write_errors', 'RECORD', 'TMP_MARK',
           'LOCK', 'RunLocked', 'lock_run_dir', 'check_run_unlocked', 'lock_name', 'pid_alive']

RECORD = 'checkpoint.json'
TMP_MARK = '.tmp-'
LOCK = 'run.lock'
_STEM = re.compile(r'^epoch-(\d+)\.(params|states|json)$')
# '<name>.tmp-<pid>', and the export's '<prefix>.tmp-<pid>-0000.params' / '-symbol.json'
_TMP = re.compile(r'\.tmp-(\d+)(-[^.]*\.[a-z]+)?$')

log = logging.getLogger('cmpese.train')


class CheckpointError(UserError):
    """A checkpoint or run file that cannot be used, with what to do."""


class RunExists(UserError):
    """A new run was asked for in a directory that holds a checkpoint."""


class RunLocked(UserError):
    """Another process holds the run directory (:func:`lock_run_dir`)."""


class SaveError(UserError):
    """A file of the run could not be written (no space left, quota, read-only); the last
    complete checkpoint is untouched."""


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def atomic_write(path, write, digest=False):
    """Call ``write(tmp_path)``, flush it to disk, then move ``tmp_path`` onto ``path``
    atomically. Returns the SHA-256 of the written file with ``digest=True``. On any error
    (or interrupt) the temporary file is removed and ``path`` is unchanged."""
    tmp = '%s%s%d' % (path, TMP_MARK, os.getpid())
    try:
        write(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        sha = sha256_file(tmp) if digest else None
        os.replace(tmp, path)
        return sha
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def pid_alive(pid):
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(save_dir):
    """Remove the ``*.tmp-<pid>`` files (in ``save_dir`` and ``save_dir/export``; the
    export's ``<prefix>.tmp-<pid>-0000.params`` too) whose writing process no longer runs;
    returns their paths. While this process holds the directory's lock (the lead worker
    of a run, the only one that writes there), every such file is stale, whatever its pid:
    after a kill the pid may be in use again."""
    removed = []
    held = _holding(os.path.realpath(os.path.join(save_dir, LOCK)))
    for folder in (save_dir, os.path.join(save_dir, 'export')):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            m = _TMP.search(name)
            path = os.path.join(folder, name)
            if m and os.path.isfile(path) and (held or not pid_alive(int(m.group(1)))):
                os.remove(path)
                removed.append(path)
    return removed


def find_nonfinite(net):
    """Names of the parameters (BatchNorm running statistics included) that hold a NaN or
    an infinity on any device."""
    bad = []
    for name, p in sorted(net._collect_params_with_prefix().items()):
        if any(not np.isfinite(d.asnumpy()).all() for d in p.list_data()):
            bad.append(name)
    return bad


def _write_json(obj):
    def write(tmp):
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=1, sort_keys=True)
    return write


def _checkpoint_files(save_dir):
    """{epoch: set of extensions} of the epoch-NNNN.* files in ``save_dir``."""
    out = {}
    for name in os.listdir(save_dir):
        m = _STEM.match(name)
        if m:
            out.setdefault(int(m.group(1)), set()).add(m.group(2))
    return out


def save_checkpoint(save_dir, epoch, net, trainer, state, keep=2):
    """Write the checkpoint after ``epoch`` (1-based count of finished epochs).

    ``state`` is a JSON-serializable dict (history, best accuracy, ...). Keeps the ``keep``
    newest checkpoints (0: all) and deletes the others after ``checkpoint.json`` names the
    new one. Returns the record.
    """
    if keep < 0:
        raise ValueError('keep must be >= 0 (0 keeps every checkpoint), got %r' % (keep,))
    stem = 'epoch-%04d' % epoch
    base = os.path.join(save_dir, stem)
    sums = {stem + '.params': atomic_write(base + '.params', net.save_parameters, digest=True),
            stem + '.states': atomic_write(base + '.states', trainer.save_states, digest=True)}
    record = dict(state, epoch=epoch, params=stem + '.params', states=stem + '.states',
                  sha256=sums, format=2)
    atomic_write(base + '.json', _write_json(record))
    atomic_write(os.path.join(save_dir, RECORD), _write_json(record))
    epochs = sorted(e for e in _checkpoint_files(save_dir) if e <= epoch)
    drop = set(epochs[:-keep] if keep else []) | {e for e in _checkpoint_files(save_dir)
                                                  if e > epoch}
    for e in drop:
        for ext in ('params', 'states', 'json'):
            path = os.path.join(save_dir, 'epoch-%04d.%s' % (e, ext))
            if os.path.exists(path):
                os.remove(path)
    return record


def read_json(path, what='file'):
    """The JSON object in ``path``; a truncated or garbled file is a :class:`CheckpointError`
    naming it."""
    try:
        with open(path) as f:
            obj = json.load(f)
    except ValueError as err:
        raise CheckpointError('%s is not valid JSON (%s): the %s was truncated or changed '
                              'by hand' % (path, err, what)) from err
    except OSError as err:
        raise CheckpointError('cannot read %s: %s' % (path, err.strerror or err)) from err
    if not isinstance(obj, dict):
        raise CheckpointError('%s holds %s, not the JSON object of a %s'
                              % (path, type(obj).__name__, what))
    return obj


def _verify(save_dir, record, source):
    """None when every file of ``record`` is present and matches its SHA-256, else why not."""
    for key in ('params', 'states'):
        name = record.get(key)
        if not name:
            return '%s names no %s file' % (source, key)
        path = os.path.join(save_dir, name)
        if not os.path.isfile(path):
            return '%s is missing' % name
        want = (record.get('sha256') or {}).get(name)
        if want is not None and sha256_file(path) != want:
            return ('%s does not match the SHA-256 recorded in %s (the file changed after it '
                    'was written)' % (name, source))
    return None


def find_checkpoint(save_dir):
    """``(record, notes)``: the newest intact checkpoint of ``save_dir`` (None when there
    is no checkpoint) and the reasons newer ones were passed over. Raises
    :class:`CheckpointError` when checkpoints exist but none is intact. (Data files without
    any record, left by a kill during the first checkpoint, count as no checkpoint.)"""
    notes = []
    if not os.path.isdir(save_dir):
        return None, notes
    main_path = os.path.join(save_dir, RECORD)
    main = None
    if os.path.exists(main_path):
        try:
            main = read_json(main_path, 'checkpoint record')
            if not isinstance(main.get('epoch'), int):
                raise CheckpointError('%s has no epoch number' % main_path)
        except CheckpointError as err:
            notes.append(str(err))
            main = None
    files = _checkpoint_files(save_dir)
    candidates = []
    if main is not None:
        candidates.append((main['epoch'], RECORD, main))
    limit = main['epoch'] if main is not None else None
    for e in sorted(files, reverse=True):
        if 'json' in files[e] and (limit is None or e < limit):
            candidates.append((e, 'epoch-%04d.json' % e, None))
    for epoch, source, record in candidates:
        if record is None:
            try:
                record = read_json(os.path.join(save_dir, source), 'checkpoint record')
            except CheckpointError as err:
                notes.append(str(err))
                continue
        reason = _verify(save_dir, record, source)
        if reason is None:
            if 'sha256' not in record:
                notes.append('%s records no SHA-256 (written by an older cmpese): its files '
                             'were not verified' % source)
            return record, notes
        notes.append('the checkpoint after epoch %d is not intact: %s' % (epoch, reason))
    if candidates or notes:
        raise CheckpointError(
            'no intact checkpoint in %s: %s. Restore the files, or start a new run in another '
            '--save-dir.' % (save_dir, '; '.join(notes)))
    return None, notes


def latest_checkpoint(save_dir):
    """The record of the newest intact checkpoint in ``save_dir``, or None."""
    return find_checkpoint(save_dir)[0]


def refuse_existing_run(save_dir):
    """Raise :class:`RunExists` when ``save_dir`` holds a checkpoint (or its remains): a new
    run must not overwrite it."""
    if not os.path.isdir(save_dir):
        return
    if os.path.exists(os.path.join(save_dir, RECORD)) or _checkpoint_files(save_dir):
        raise RunExists(
            '--save-dir %s already holds a checkpoint (checkpoint.json). Continue that run '
            'with --resume, or choose another --save-dir (nothing was overwritten).' % save_dir)


def load_checkpoint(save_dir, net, trainer, ctx):
    """Load the newest intact checkpoint into ``net`` and ``trainer``; return its record,
    or None when the directory holds no checkpoint. Checkpoints passed over are logged
    (warning) with the reason."""
    record, notes = find_checkpoint(save_dir)
    for note in notes:
        log.warning('%s', note)
    if record is None:
        return None
    if notes and 'not intact' in ' '.join(notes):
        log.warning('resuming from %s (after epoch %d), the newest intact checkpoint',
                    record['params'][:-len('.params')], record['epoch'])
    params = os.path.join(save_dir, record['params'])
    try:
        net.load_parameters(params, ctx=ctx)
    except Exception as err:  # wrong model for this file, unreadable file
        raise CheckpointError('%s cannot be loaded into this model (%s); --resume needs the '
                              'model and --model-args of the saved run'
                              % (params, str(err).strip().splitlines()[0])) from err
    trainer.load_states(os.path.join(save_dir, record['states']))
    log.info('resumed from %s after epoch %d', params, record['epoch'])
    return record


# ---------------------------------------------------------------- failed writes

def checkpoint_clause(save_dir, epoch, adjective='good'):
    """A clause naming the checkpoint after ``epoch`` in ``save_dir`` as the last
    ``adjective`` one, or saying there is none (``epoch`` None)."""
    if epoch is None:
        return 'no checkpoint was written yet (none is %s)' % adjective
    return 'the last %s checkpoint is epoch-%04d (after epoch %d) in %s' % (
        adjective, epoch, epoch, save_dir)


_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
                errno.EFBIG)


def is_write_failure(err):
    """Whether ``err`` is a write that failed for the disk's sake: an ``OSError`` (no space,
    quota, read-only, permissions, I/O) or MXNet's own file writer, which reports any failed
    ``fwrite`` (a full disk included) only as "FileStream.Write incomplete"."""
    if isinstance(err, OSError):
        return err.errno in _DISK_ERRORS
    mx = sys.modules.get('mxnet')      # no MXNetError can exist before mxnet is imported
    return mx is not None and isinstance(err, mx.base.MXNetError) and \
        'Write incomplete' in str(err)


def _free_space(path):
    try:
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize
    except OSError:
        return None


def _save_error(err, save_dir, clause):
    """The :class:`SaveError` of a failed write, with the free space measured for MXNet's
    writer (which does not say why)."""
    where = save_dir
    if isinstance(err, OSError):
        path = getattr(err, 'filename', None)
        if path:
            where = os.path.dirname(os.path.abspath(path))
        what = {errno.ENOSPC: 'no space left on the device',
                errno.EDQUOT: 'the disk quota is exceeded'}.get(err.errno,
                                                                 err.strerror or str(err))
    else:
        free = _free_space(where)
        what = ('MXNet could not write a file (FileStream.Write incomplete; %s free there: a '
                'full disk?)' % ('%.0f MB' % (free / 2.0 ** 20) if free is not None else
                                 'unknown space'))
    return SaveError('cannot write in %s: %s; %s. Free space there (or fix its permissions) '
                     'and continue with --resume.' % (where, what, clause))


@contextlib.contextmanager
def write_errors(save_dir, clause):
    """Inside the block, a write that fails for the disk's sake (:func:`is_write_failure`)
    becomes one :class:`SaveError` naming the directory; ``clause()`` names the last complete
    checkpoint (:func:`checkpoint_clause`; called only then). Other errors pass unchanged."""
    try:
        yield
    except Exception as err:
        if is_write_failure(err):
            raise _save_error(err, save_dir, clause()) from err
        raise


# ---------------------------------------------------------------- one run a directory

_HELD = {}      # real path of a lock file -> the descriptor that holds it (process lifetime)


def _holding(key):
    """Whether this process holds the lock file ``key`` (the same file: a directory removed
    and made again at the same path holds a new one)."""
    fd = _HELD.get(key)
    if fd is None:
        return False
    try:
        if os.fstat(fd).st_ino == os.stat(key).st_ino:
            return True
    except OSError:
        pass
    os.close(fd)
    del _HELD[key]
    return False


def lock_name(rank=0):
    """The lock file of worker ``rank`` (``run.lock`` for worker 0 and single runs)."""
    return LOCK if not rank else 'run-worker%d.lock' % rank


def _holder(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        text = ''
    return text or 'a process that has not written its pid yet'


def _locked(save_dir, path):
    return RunLocked('--save-dir %s is in use by another run (%s; lock %s). Wait for it to end '
                     'or stop it (its checkpoints stay resumable with --resume), or choose '
                     'another --save-dir; nothing was written.' % (save_dir, _holder(path), path))


def _busy(err):
    return isinstance(err, BlockingIOError) or getattr(err, 'errno', None) in (
        errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


def lock_run_dir(save_dir, rank=0):
    """Hold ``save_dir`` for this process (worker ``rank``): an exclusive, non-blocking
    ``flock`` on its :func:`lock_name` file, kept until the process ends (the kernel releases
    it then, whatever ends the process). Raises :class:`RunLocked` when another process holds
    it; a second call of the same process returns at once. On a file system without
    ``flock`` a warning is logged and the run goes on unlocked. Returns the lock file's
    path, or None when it could not be locked."""
    path = os.path.join(save_dir, lock_name(rank))
    key = os.path.realpath(path)
    if _holding(key):
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)   # not inherited by exec'd children
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if _busy(err):
            raise _locked(save_dir, path) from None
        log.warning('cannot lock %s (%s): a second run started on %s would not be stopped',
                    path, err.strerror or err, save_dir)
        return None
    note = 'pid %d on %s, since %s' % (os.getpid(), socket.gethostname(),
                                       time.strftime('%Y-%m-%d %H:%M:%S'))
    os.ftruncate(fd, 0)
    os.write(fd, (note + '\n').encode())
    _HELD[key] = fd
    return path


def check_run_unlocked(save_dir):
    """Raise :class:`RunLocked` when another process holds ``save_dir`` (its ``run.lock``),
    without taking the lock: the early check, before the data are read; the lock itself is
    taken where the run directory is made (:func:`lock_run_dir`)."""
    path = os.path.join(save_dir, LOCK)
    if _holding(os.path.realpath(path)) or not os.path.isfile(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)   # released by the close below
    except OSError as err:
        if _busy(err):
            raise _locked(save_dir, path) from None
    finally:
        os.close(fd)
