"""Per-epoch outputs of a run: the metrics CSV and the training-curve PNG (loss and error per
epoch, train and test, as in Fig. 4 of the CMPE-SE paper); the log (stderr and train.log,
every line prefixed with the worker's rank in a run of several workers, MXNet's own
"Change learning rate" lines at debug level)."""
import csv
import io
import logging
import os

from .checkpoint import atomic_write

__all__ = ['write_metrics_csv', 'plot_curves', 'CSV_COLUMNS', 'setup_logging',
           'worker_prefix', 'format_lr']

CSV_COLUMNS = ('epoch', 'lr', 'mixup', 'train_loss', 'train_error', 'test_loss', 'test_error',
               'test_top5_error', 'time', 'images_per_sec')


def format_lr(lr):
    """A learning rate as the CSV shows it: 12 significant digits, so the float noise of the
    scheduler's products goes (0.010000000000000002 -> '0.01')."""
    return '%.12g' % lr


def write_metrics_csv(path, history):
    """Rewrite ``path`` from the whole history (so a resumed run never repeats rows)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction='ignore', lineterminator='\n')
    writer.writeheader()
    for row in history:
        out = {k: ('' if row.get(k) is None else row.get(k)) for k in CSV_COLUMNS}
        if row.get('lr') is not None:
            out['lr'] = format_lr(row['lr'])
        writer.writerow(out)

    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(buf.getvalue())
    atomic_write(path, write)


def plot_curves(path, history, title=''):
    """Two panels, loss and top-1 error against epoch, test (solid) and train (dashed):
    :func:`cmpese.analysis.plots.plot_training_curves`, the one curve plotter, on this run."""
    if not history:
        return
    from ..analysis.plots import plot_training_curves
    plot_training_curves([(None, history)], path, title)


class _QuietFileHandler(logging.FileHandler):
    """A log file that never prints a traceback when it cannot be written (a full disk
    must end in the one-line message, not in logging's "--- Logging error ---")."""

    def handleError(self, record):
        pass


class _MXNetAtDebug(logging.Filter):
    """MXNet's own INFO lines (``mx.lr_scheduler``'s "Update[93]: Change learning rate to
    ...", logged on the root logger) are debug lines here: the metrics CSV and the epoch lines
    show the rate."""
    _SOURCE = os.path.join('mxnet', 'lr_scheduler.py')

    def filter(self, record):
        if record.levelno == logging.INFO and record.pathname.endswith(self._SOURCE):
            record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def worker_prefix(rank, workers):
    """The tag of a worker's log lines, '[worker 1/2] ' (``rank`` counts from 0, as
    ``kv.rank`` and train-worker<rank>.log); '' for a run of one worker."""
    return '[worker %d/%d] ' % (rank, workers) if workers and workers > 1 else ''


def setup_logging(log_file=None, level='INFO', worker=None):
    """Log to stderr and (appending) to ``log_file``; safe to call again. ``worker``:
    ``(rank, workers)`` of a distributed run: every line (of both) gets
    :func:`worker_prefix`."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(f, _MXNetAtDebug) for f in root.filters):
        root.addFilter(_MXNetAtDebug())
    prefix = worker_prefix(*worker) if worker else None
    if not any(getattr(h, '_cmpese', None) == 'stream' for h in root.handlers):
        h = logging.StreamHandler()
        h._cmpese = 'stream'
        root.addHandler(h)
    if log_file and not any(getattr(h, '_cmpese', None) == log_file for h in root.handlers):
        h = _QuietFileHandler(log_file)
        h._cmpese = log_file
        root.addHandler(h)
    for h in root.handlers:
        if getattr(h, '_cmpese', None) is None:
            continue
        if prefix is not None:
            h._cmpese_prefix = prefix
        fmt = '%(asctime)s %(levelname)s ' + getattr(h, '_cmpese_prefix', '').replace(
            '%', '%%') + '%(message)s'
        h.setFormatter(logging.Formatter(fmt))


def record_result(save_dir, log):
    """``--record-result``: enter a finished run into the reproduction table
    (:func:`cmpese.papers.reproduce.record_result`), one log line per row it matches; a run
    that matches no row is a warning, not an error (the run itself succeeded)."""
    from ..errors import UserError
    from ..papers.reproduce import record_result as record
    try:
        for e in record(save_dir):
            log.info('recorded %s "%s" %s: top-1 error %.4f%s', e['table'], e['row'], e['run'],
                     e['top1_error'], ('; differs from the row: ' + '; '.join(e['deviations']))
                     if e['deviations'] else '')
    except UserError as err:
        log.warning('--record-result: %s', err)
