"""How every cmpese command line reports a bad input: one or two lines, exit code 2, no
traceback (unless ``--debug``).

A command's ``main(argv)`` raises :class:`UserError` (or one of the library's own
input-error types listed in :data:`USER_ERRORS`) with a message that names the flag, file or
variable at fault, says what was expected and what to do. :func:`run` turns it into::

    train_cifar.py: error: --lr must be a finite number > 0, got -1. Pass e.g. --lr 0.1.

and exit code 2. ``--debug`` anywhere on the command line shows the full traceback instead.
Ctrl-C (SIGINT) exits 130 and SIGTERM 143, each with one line.
"""
import os
import signal
import sys

__all__ = ['UserError', 'USER_ERRORS', 'run', 'EXIT_USER', 'EXIT_SIGINT', 'EXIT_SIGTERM',
           'Interrupted']

EXIT_USER = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class UserError(Exception):
    """An input or environment the user can fix; the message says how (one or two lines)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; ``code`` is the exit status (130 or 143). A BaseException,
    so that ``except Exception`` blocks in library code do not swallow it."""

    def __init__(self, signum, message=''):
        super(Interrupted, self).__init__(message or signal.Signals(signum).name)
        self.signum = signum
        self.code = EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM


def _user_error_types():
    """UserError and the library's own input-error classes (imported lazily: this module is
    imported before mxnet by the command lines)."""
    types = [UserError]
    try:
        from .data.common import DatasetFormatError, DatasetNotFound
        types += [DatasetNotFound, DatasetFormatError]
    except ImportError:  # pragma: no cover
        pass
    try:
        from .training.cli import ConfigError
        types.append(ConfigError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


USER_ERRORS = None  # filled on first use by run()


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def run(main, argv=None, prog=None):
    """Call ``main(argv)`` and return its exit code, reporting user errors in one line.

    ``--debug`` in ``argv`` (it is removed before ``main`` sees it) re-raises instead, with
    the traceback. SIGTERM is turned into :class:`Interrupted` like SIGINT, so that cleanup
    code (``finally``) runs for both.
    """
    global USER_ERRORS
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
    if USER_ERRORS is None:
        USER_ERRORS = _user_error_types()
    try:
        code = main(argv)
        return 0 if code is None else int(code)
    except Interrupted as err:
        if debug:
            raise
        sys.stderr.write('%s: interrupted (%s)%s\n' % (prog, signal.Signals(err.signum).name,
                                                       ('; ' + str(err.args[0]))
                                                       if err.args and str(err.args[0]) !=
                                                       signal.Signals(err.signum).name else ''))
        return err.code
    except USER_ERRORS as err:
        if debug:
            raise
        sys.stderr.write('%s: error: %s\n' % (prog, str(err).strip().strip('"')))
        return EXIT_USER
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
