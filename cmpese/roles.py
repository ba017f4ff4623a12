"""The distributed role a cmpese trainer may be started in, checked before mxnet loads.

A trainer started with ``DMLC_ROLE=server`` or ``scheduler`` would become that node when mxnet
is imported (and wait, silent, for a cluster that never forms). ``import cmpese`` calls
:func:`refuse_stray_role` first, so this module stands on the ground floor: it imports
nothing of mxnet or of cmpese (the launcher, :mod:`cmpese.cli.launch`, uses it too).
"""
import os
import sys

__all__ = ['TRAINERS', 'kvstore_of', 'stray_role_message', 'refuse_stray_role']

# How the trainers' command lines are named (the root scripts, the console scripts and the
# modules run with python -m).
TRAINERS = ('train_cifar.py', 'train_imagenet.py', 'cmpese-train-cifar', 'cmpese-train-imagenet',
            'cmpese.cli.train_cifar', 'cmpese.cli.train_imagenet')


def kvstore_of(words):
    """The value of ``--kvstore`` among ``words`` (None when absent)."""
    for i, word in enumerate(words):
        if word == '--kvstore' and i + 1 < len(words):
            return words[i + 1]
        if word.startswith('--kvstore='):
            return word.split('=', 1)[1]
    return None


# ---------------------------------------------------------------- DMLC_ROLE of a trainer

_CLUSTER = ('DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_SERVER', 'DMLC_NUM_WORKER')


def _program(argv):
    """``(index, name)`` of what the interpreter command line ``argv`` runs: the script, or
    the module after ``-m`` (``(None, None)`` for ``-c`` or nothing)."""
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == '-m' and i + 1 < len(argv):
            return i + 1, argv[i + 1]
        if word == '-c' or word == '-':
            return None, None
        if word.startswith('-m'):
            return i, word[2:]
        if word in ('-W', '-X', '--check-hash-based-pycs'):
            i += 2
            continue
        if word.startswith('-'):
            i += 1
            continue
        return i, word
    return None, None


def stray_role_message(argv, env):
    """The one-line refusal for a trainer command line ``argv`` (the interpreter's, as
    ``sys.orig_argv``) started with ``DMLC_ROLE=server`` or ``scheduler`` in ``env``, or None
    when there is nothing to refuse: another role, not a trainer, or a node of a
    distributed run whose launcher starts every role with the training command (MXNet's
    tools/launch.py: the whole ``DMLC_*`` set and ``--kvstore dist_*``)."""
    role = env.get('DMLC_ROLE', '')
    if role not in ('server', 'scheduler'):
        return None
    words = [str(a) for a in argv]
    at, name = _program(words)
    if name is None or os.path.basename(name) not in TRAINERS:
        return None
    rest = words[at + 1:]
    kind = kvstore_of(rest)
    missing = [v for v in _CLUSTER if not env.get(v)]
    if kind and kind.startswith('dist') and not missing:
        return None
    if kind and kind.startswith('dist'):
        why = '%s %s not set, without which mxnet stops with an error' % (
            ', '.join(missing), 'is' if len(missing) == 1 else 'are')
    else:
        why = ('--kvstore %s trains in one process; as a %s, mxnet would wait for a cluster '
               'that never forms' % (kind or 'device', role))
    return ('DMLC_ROLE=%s is set in the environment, but %s runs only as a worker (%s). Unset '
            'the DMLC_* variables to train in one process, or start a distributed run: python '
            '-m cmpese.training.launch -n 2 -- python train_cifar.py ... --kvstore dist_sync'
            % (role, os.path.basename(name), why))


def refuse_stray_role(argv=None, env=None):
    """Called by ``import cmpese`` before mxnet is imported: for a trainer command line with
    a stray ``DMLC_ROLE`` (:func:`stray_role_message`), print the line and exit 2."""
    env = os.environ if env is None else env
    if env.get('DMLC_ROLE', '') not in ('server', 'scheduler'):
        return
    if argv is None:
        argv = getattr(sys, 'orig_argv', None) or [sys.executable] + sys.argv
    text = stray_role_message(argv, env)
    if text is None:
        return
    name = _program([str(a) for a in argv])[1]
    prog = 'python -m %s' % name if name.startswith('cmpese.') else os.path.basename(name)
    sys.stderr.write('%s: error: %s\n' % (prog, text))
    sys.stderr.flush()
    raise SystemExit(2)
