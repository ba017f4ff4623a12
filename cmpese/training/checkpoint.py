"""Checkpoints that survive a kill at any instant.

A checkpoint is three files: ``epoch-NNNN.params`` (network), ``epoch-NNNN.states`` (trainer:
optimizer state, momentum, update count, learning-rate schedule) and the record
``checkpoint.json`` that names them together with the epoch, the history and the best result
so far. Each file is written to a temporary name and moved into place with
``os.replace`` (atomic on POSIX); ``checkpoint.json`` is replaced last, so a reader
always sees a complete, consistent checkpoint: the new one or the previous one.
"""
import json
import logging
import os

__all__ = ['atomic_write', 'save_checkpoint', 'load_checkpoint', 'latest_checkpoint',
           'refuse_existing_run', 'RECORD']

RECORD = 'checkpoint.json'


def atomic_write(path, write):
    """Call ``write(tmp_path)`` then move ``tmp_path`` onto ``path`` atomically."""
    tmp = '%s.tmp-%d' % (path, os.getpid())
    try:
        write(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(obj):
    def write(tmp):
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=1, sort_keys=True)
    return write


def save_checkpoint(save_dir, epoch, net, trainer, state, keep=2):
    """Write the checkpoint after ``epoch`` (1-based count of finished epochs).

    ``state`` is a JSON-serializable dict (history, best accuracy, ...). Keeps the ``keep``
    newest params/states pairs and deletes older ones after the record points elsewhere.
    """
    stem = os.path.join(save_dir, 'epoch-%04d' % epoch)
    atomic_write(stem + '.params', net.save_parameters)
    atomic_write(stem + '.states', trainer.save_states)
    record = dict(state, epoch=epoch, params=os.path.basename(stem + '.params'),
                  states=os.path.basename(stem + '.states'))
    atomic_write(os.path.join(save_dir, RECORD), _write_json(record))
    names = sorted(n for n in os.listdir(save_dir)
                   if n.startswith('epoch-') and n.endswith('.params'))
    for old in names[:-keep] if keep else []:
        for ext in ('.params', '.states'):
            path = os.path.join(save_dir, old[:-len('.params')] + ext)
            if os.path.exists(path):
                os.remove(path)
    return record


def latest_checkpoint(save_dir):
    """The record of the last complete checkpoint in ``save_dir``, or None."""
    path = os.path.join(save_dir, RECORD)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        record = json.load(f)
    for key in ('params', 'states'):
        if not os.path.exists(os.path.join(save_dir, record[key])):
            raise FileNotFoundError(
                '%s names %s, which is missing; the checkpoint directory was changed by hand. '
                'Restore the file or start a new run in another --save-dir.'
                % (path, record[key]))
    return record


def refuse_existing_run(save_dir):
    """Raise ``FileExistsError`` when ``save_dir`` holds a checkpoint (a new run must not
    overwrite it)."""
    if latest_checkpoint(save_dir) is not None:
        raise FileExistsError(
            '%s already holds a checkpoint (checkpoint.json). Continue that run with --resume, '
            'or choose another --save-dir (nothing was overwritten).' % save_dir)


def load_checkpoint(save_dir, net, trainer, ctx):
    """Load the latest checkpoint into ``net`` and ``trainer``; return its record or None."""
    record = latest_checkpoint(save_dir)
    if record is None:
        return None
    net.load_parameters(os.path.join(save_dir, record['params']), ctx=ctx)
    trainer.load_states(os.path.join(save_dir, record['states']))
    logging.info('resumed from %s after epoch %d', os.path.join(save_dir, record['params']),
                 record['epoch'])
    return record
