"""How every cmpese command line reports a bad input: one or two lines, exit code 2, no
traceback (unless ``--debug``).

A command's ``main(argv)`` raises a :class:`UserError` with a message that names the flag,
file or variable at fault, says what was expected and what to do. Every input error of the
library is one: :class:`ConfigError` (options), ``cmpese.data.DatasetNotFound`` and
``DatasetFormatError`` (data files), the checkpoint, kvstore and training errors. :func:`run`
turns it into::

    train_cifar.py: error: --lr must be a finite number > 0, got -1. Pass e.g. --lr 0.1.

and exit code 2 (an error may carry another ``exit_code``: a diverged training exits 3).
``--debug`` anywhere on the command line shows the full traceback instead. Ctrl-C (SIGINT)
exits 130 and SIGTERM 143, each with one line. Once a command has opened a log file
(:func:`cmpese.training.report.setup_logging`), the same line is appended to it.

:func:`deferred_interrupts` holds SIGINT/SIGTERM back while a file is being written, so an
interrupt finishes the write and then stops the program.

This module is the ground floor of the package: it imports nothing of cmpese (and not
mxnet), so that every layer, and a command line before mxnet is imported, can use it.
"""
import argparse
import contextlib
import logging
import os
import signal
import sys

__all__ = ['UserError', 'ConfigError', 'USER_ERRORS', 'run', 'EXIT_USER', 'EXIT_SIGINT',
           'EXIT_SIGTERM', 'Interrupted', 'deferred_interrupts', 'ArgumentParser',
           'check_output_path']

EXIT_USER = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class UserError(Exception):
    """An input or environment the user can fix; the message says how (one or two lines).

    ``exit_code`` (default 2) is the status :func:`run` exits with; ``hard_exit`` makes it
    end the process with ``os._exit`` (for a thread that is stuck in C++, such as a kvstore
    waiting for a cluster that never forms)."""
    exit_code = EXIT_USER
    hard_exit = False


class ConfigError(UserError, ValueError):
    """A configuration that cannot run (a command line's options, a run's config.json), with
    what to change. Also a ``ValueError``, for callers that catch those."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; ``code`` is the exit status (130 or 143). A BaseException,
    so that ``except Exception`` blocks in library code do not swallow it. ``message`` is the
    line to print (default ``interrupted (SIGINT)``)."""

    def __init__(self, signum, message=''):
        self.signum = signum
        self.code = EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM
        self.message = message or 'interrupted (%s)' % signal.Signals(signum).name
        super(Interrupted, self).__init__(self.message)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are :class:`UserError` (one line and exit 2
    through :func:`run`, instead of the whole usage text)."""

    def error(self, message):
        raise UserError('%s (see %s --help)' % (message, self.prog))


# What run() reports in one line: every input error of the library is a UserError.
USER_ERRORS = (UserError,)

_DEFERRED = []      # signals that arrived inside deferred_interrupts(), oldest first
_DEFER_DEPTH = [0]


def _raise_interrupted(signum, frame):
    if _DEFER_DEPTH[0]:
        _DEFERRED.append(signum)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred_interrupts():
    """Inside the block, SIGINT/SIGTERM (as installed by :func:`run`) only take note; the
    first one noted is raised as :class:`Interrupted` when the block ends. Without
    :func:`run`'s handlers (library use) this does nothing."""
    _DEFER_DEPTH[0] += 1
    try:
        yield
    finally:
        _DEFER_DEPTH[0] -= 1
    if not _DEFER_DEPTH[0] and _DEFERRED:
        signum = _DEFERRED[0]
        del _DEFERRED[:]
        raise Interrupted(signum)


def _to_log_files(text):
    """Append ``text`` as an ERROR record to the log files the command opened (never to
    stderr: :func:`run` prints it there)."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    if files:
        record = root.makeRecord('cmpese', logging.ERROR, __file__, 0, text, None, None)
        for h in files:
            h.handle(record)


def _dist_active():
    """Whether this process created a dist kvstore (cmpese.training.kvstore.ACTIVE)."""
    module = sys.modules.get('cmpese.training.kvstore')
    return bool(module is not None and getattr(module, 'ACTIVE', None))


def _worker_tag():
    """The rank tag ('[worker 1/2] ') that the command's log lines carry in a run of several
    workers (:func:`cmpese.training.report.setup_logging` sets it on its stream handler), so
    that a worker's last stderr line says whose it is; '' otherwise."""
    for h in logging.getLogger().handlers:
        if getattr(h, '_cmpese', None) == 'stream':
            return getattr(h, '_cmpese_prefix', '')
    return ''


def _print_traceback(hard):
    """Before an ``os._exit`` the interpreter prints no traceback: print it here."""
    if hard is not None:
        import traceback
        traceback.print_exc()


def _signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:  # pragma: no cover
        return str(signum)


def run(main, argv=None, prog=None):
    """Call ``main(argv)`` and return its exit code, reporting user errors in one line.

    ``--debug`` in ``argv`` (it is removed before ``main`` sees it) re-raises instead, with
    the traceback. SIGTERM is turned into :class:`Interrupted` like SIGINT, so that cleanup
    code (``finally``) runs for both.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv
    argv = [a for a in argv if a != '--debug']
    prog = prog or os.path.basename(sys.argv[0] or 'cmpese')
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, _raise_interrupted)
        except ValueError:   # not the main thread: leave signals alone
            pass
    hard = None
    try:
        code = main(argv)
        return 0 if code is None else int(code)
    except Interrupted as err:
        hard = err.code if _dist_active() else None
        if debug:
            _print_traceback(hard)
            raise
        text = err.message
        if _signal_name(err.signum) not in text:
            text += ' (%s)' % _signal_name(err.signum)
        sys.stderr.write('%s%s: %s\n' % (_worker_tag(), prog, text))
        _to_log_files(text)
        return err.code
    except USER_ERRORS as err:
        code = getattr(err, 'exit_code', EXIT_USER)
        if getattr(err, 'hard_exit', False) or _dist_active():
            hard = code
        if debug:
            _print_traceback(hard)
            raise
        text = str(err).strip().strip('"')
        sys.stderr.write('%s%s: error: %s\n' % (_worker_tag(), prog, text))
        _to_log_files('error: ' + text)
        return code
    except SystemExit:
        raise
    except BaseException:
        if _dist_active():     # a bug: show it, but do not wait for the other workers
            hard = 1
            _print_traceback(hard)
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if hard is not None:
            sys.stderr.flush()
            sys.stdout.flush()
            logging.shutdown()
            os._exit(hard)


def check_output_path(path, flag, directory=False, create=False):
    """Check, before any work, that ``path`` can be written; one line (:class:`UserError`)
    naming ``flag`` when it cannot: a file path that is a directory, a component of the path
    that is a file, a folder (the nearest existing parent, where the rest will be made) in
    which no file can be made (a probe file is made and removed). ``directory``: ``path`` is
    itself the directory to write in. ``create``: make the missing folders. Returns the
    folder that will hold the output."""
    import tempfile
    path = os.fspath(path)
    if not directory and os.path.isdir(path):
        raise UserError('%s %s is a directory; give the path of a file (a name inside it)'
                        % (flag, path))
    folder = os.path.abspath(path) if directory else os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError('%s %s: %s is a file, not a directory; choose another path'
                        % (flag, path, existing))
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise UserError('%s %s: cannot write in %s (%s); choose a writable folder'
                        % (flag, path, existing, err.strerror or err))
    if create:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise UserError('%s %s: cannot create the folder %s (%s)'
                            % (flag, path, folder, err.strerror or err))
    return folder
