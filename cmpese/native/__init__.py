"""Native CPU operators for the units' rescale, an MXNet 1.9.1 operator library built here.

``fused.cc`` holds the kernels (one pass each, forward and backward, float32 / float64,
OpenMP over the (n, c) planes; its head says what each costs in memory traffic)::

    scale(x, s)              y = x * s
    scale_add(x, s, r)       y = x * s + r
    scale_add_relu(x, s, r)  y = max(x * s + r, 0)

x, r: (N, C, H, W); s: (N, C) or (N, C, 1, 1). :func:`load` compiles the library with g++
against the ``lib_api.h`` / ``lib_api.cc`` the MXNet wheel ships (once per source and MXNet
version; the result is cached) and loads it with ``mx.library.load``; the operators then
appear as ``mx.nd.scale_add``, ``mx.sym.scale_add`` and so ``F.scale_add`` in a
``hybrid_forward``. When it cannot (no compiler, a failed build, an MXNet without operator
libraries, a CUDA build: the kernels are CPU-only, ``CMPESE_NATIVE=0``) it returns False
after one log line on the ``cmpese.native`` logger, and the caller keeps the stock operators.

Two things MXNet 1.9.1 does around a library operator (src/c_api/c_api.cc): it copies every
input held in oneDNN's blocked layout to plain NCHW before the call (in the forward, and
again in the backward) and the outputs are plain NCHW; and it does not pass on the write
requests, so a gradient the operator writes straight into a variable attached with
``grad_req='add'`` replaces it instead of adding to it. Use the operators on computed
tensors (as a unit's x, s and identity are); parameters upstream accumulate as usual.

The compiled library goes to ``cmpese/native/build/`` when the package directory is
writable, else to ``$XDG_CACHE_HOME/cmpese`` (``~/.cache/cmpese``); ``CXX`` names another
compiler than ``g++``. No ``-march=native``: the library runs on any x86-64 CPU it is copied
to (``-O3`` vectorizes the loops for SSE2).
"""
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading

__all__ = ['build', 'load', 'loaded', 'failure', 'BuildError', 'OPERATORS', 'FLAGS']

LOG = logging.getLogger('cmpese.native')
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, 'fused.cc')
OPERATORS = ('scale', 'scale_add', 'scale_add_relu')
# -ffp-contract=off: no fused multiply-add, so x * s + r rounds as broadcast_mul then
# elemwise_add do (bit-identical forward values)
FLAGS = ('-O3', '-fopenmp', '-std=c++17', '-shared', '-fPIC', '-ffp-contract=off')


class BuildError(RuntimeError):
    """The library cannot be built here (the message says why, in one line)."""


def _mxnet_files():
    """(MXNet version, include directory, lib_api.h, lib_api.cc) of the installed wheel."""
    import mxnet
    root = os.path.dirname(os.path.abspath(mxnet.__file__))
    include = os.path.join(root, 'include')
    header = os.path.join(include, 'mxnet', 'lib_api.h')
    impl = os.path.join(root, 'src', 'lib_api.cc')
    for path in (header, impl):
        if not os.path.isfile(path):
            raise BuildError('MXNet %s ships no %s' % (mxnet.__version__, path))
    return mxnet.__version__, include, header, impl


def _compiler():
    name = os.environ.get('CXX') or 'g++'
    path = shutil.which(name)
    if path is None:
        raise BuildError('no C++ compiler: %r is not on PATH (install g++ or set CXX)' % name)
    return path


def _key(version, header, impl):
    """16 hex digits of the SHA-256 of the sources, the MXNet version and the flags."""
    digest = hashlib.sha256()
    for path in (SOURCE, header, impl):
        with open(path, 'rb') as f:
            digest.update(f.read())
    digest.update(('%s %s' % (version, ' '.join(FLAGS))).encode())
    return digest.hexdigest()[:16]


def _cache_dirs(cache_dir):
    if cache_dir is not None:
        return [os.path.abspath(cache_dir)]
    xdg = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return [os.path.join(HERE, 'build'), os.path.join(xdg, 'cmpese')]


def _writable(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def build(force=False, cache_dir=None):
    """The path of the compiled library, building it unless a build of the same sources for
    the same MXNet version is cached (``force``: build again). ``cache_dir``: where to look
    and write instead of the package's ``build/`` and the user cache. Raises
    :class:`BuildError` (one line) when it cannot."""
    version, include, header, impl = _mxnet_files()
    name = 'libcmpese_fused-%s.so' % _key(version, header, impl)
    folders = _cache_dirs(cache_dir)
    if not force:
        for folder in folders:
            if os.path.isfile(os.path.join(folder, name)):
                return os.path.join(folder, name)
    folder = next((f for f in folders if _writable(f)), None)
    if folder is None:
        raise BuildError('no writable directory for the library among %s' % ', '.join(folders))
    compiler = _compiler()
    target = os.path.join(folder, name)
    # build under a temporary name and rename: another process building the same library at
    # the same time (the workers of a dist run) never sees a half-written file
    fd, tmp = tempfile.mkstemp(prefix='.' + name + '.', suffix='.so', dir=folder)
    os.close(fd)
    command = [compiler] + list(FLAGS) + ['-I', include, SOURCE, impl, '-o', tmp]
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        if done.returncode != 0:
            lines = done.stdout.splitlines()
            first = next((ln for ln in lines if 'error' in ln), lines[-1] if lines else '')
            raise BuildError('%s exited with %d: %s' % (os.path.basename(compiler),
                                                       done.returncode, first.strip()))
        os.chmod(tmp, 0o755)        # mkstemp made it private; the cache may be shared
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if folder == os.path.join(HERE, 'build'):
        # the checkout's own folder keeps only the build of the current sources (a process
        # that loaded an older one keeps its mapping); a shared user cache keeps them all
        for other in os.listdir(folder):
            if (other.startswith('libcmpese_fused-') and other.endswith('.so') and
                    other != name):
                try:
                    os.remove(os.path.join(folder, other))
                except OSError:
                    pass
    return target


_lock = threading.Lock()
_result = []      # [True / False] once load() has run
_reason = []      # [why it did not load] once load() has returned False


def _unavailable_reason():
    """Why this MXNet cannot take the library (None when it can)."""
    if os.environ.get('CMPESE_NATIVE', '1').strip() in ('0', 'off', 'no', 'false'):
        return 'CMPESE_NATIVE=%s' % os.environ['CMPESE_NATIVE'], logging.INFO
    import mxnet
    from mxnet.base import _LIB
    if not hasattr(mxnet, 'library') or not hasattr(_LIB, 'MXLoadLib'):
        return 'MXNet %s cannot load operator libraries' % mxnet.__version__, logging.WARNING
    try:
        cuda = mxnet.runtime.Features().is_enabled('CUDA')
    except Exception:       # pylint: disable=broad-except
        cuda = False
    if cuda:
        return ('MXNet %s is a CUDA build and the native operators are CPU-only'
                % mxnet.__version__), logging.INFO
    return None


def load(cache_dir=None):
    """Build (if needed) and load the library into MXNet, once per process. True when
    ``scale``, ``scale_add`` and ``scale_add_relu`` are in ``mx.nd`` / ``mx.sym``; False,
    after one log line saying why, when they are not. Never raises."""
    with _lock:
        if _result:
            return _result[0]
        ok, level, reason = False, logging.WARNING, None
        try:
            why = _unavailable_reason()
            if why is not None:
                reason, level = why
            else:
                import mxnet
                path = build(cache_dir=cache_dir)
                mxnet.library.load(path, verbose=False)
                missing = [op for op in OPERATORS
                           if not (hasattr(mxnet.nd, op) and hasattr(mxnet.sym, op))]
                if missing:
                    reason = '%s did not register %s' % (path, ', '.join(missing))
                else:
                    ok = True
                    LOG.debug('loaded %s', path)
        except Exception as e:      # pylint: disable=broad-except
            reason = ' '.join(str(e).split()) or type(e).__name__
            if len(reason) > 300:
                reason = reason[:297] + '...'
        if not ok:
            LOG.log(level, 'native rescale operators not loaded (%s); using the stock operators',
                    reason)
            _reason.append(reason)
        _result.append(ok)
        return ok


def loaded():
    """True when :func:`load` has loaded the operators in this process (no attempt made)."""
    return bool(_result and _result[0])


def failure():
    """Why :func:`load` returned False in this process (the reason of its log line); None
    when it loaded the operators or has not run."""
    return _reason[0] if _reason else None
