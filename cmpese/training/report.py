"""Per-epoch outputs of a run: the metrics CSV and the training-curve PNG (loss and error per
epoch, train and test, as in Fig. 4 of the CMPE-SE paper)."""
import csv
import io

from .checkpoint import atomic_write

__all__ = ['write_metrics_csv', 'plot_curves', 'CSV_COLUMNS', 'setup_logging']

CSV_COLUMNS = ('epoch', 'lr', 'mixup', 'train_loss', 'train_error', 'test_loss', 'test_error',
               'test_top5_error', 'time', 'images_per_sec')


def write_metrics_csv(path, history):
    """Rewrite ``path`` from the whole history (so a resumed run never repeats rows)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction='ignore', lineterminator='\n')
    writer.writeheader()
    for row in history:
        writer.writerow({k: ('' if row.get(k) is None else row.get(k)) for k in CSV_COLUMNS})

    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(buf.getvalue())
    atomic_write(path, write)


def plot_curves(path, history, title=''):
    """Two panels, loss and top-1 error against epoch, train (dashed) and test (solid)."""
    if not history:
        return
    import matplotlib
    matplotlib.use('Agg', force=False)
    from matplotlib.figure import Figure
    epochs = [r['epoch'] for r in history]
    fig = Figure(figsize=(9, 3.6))
    for ax, key, name in ((fig.add_subplot(1, 2, 1), 'loss', 'loss'),
                          (fig.add_subplot(1, 2, 2), 'error', 'top-1 error (%)')):
        scale = 100.0 if key == 'error' else 1.0
        ax.plot(epochs, [r['train_' + key] * scale for r in history], '--', label='train')
        ax.plot(epochs, [r['test_' + key] * scale for r in history], '-', label='test')
        ax.set_xlabel('epoch')
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format='png', dpi=90))


class _QuietFileHandler(__import__('logging').FileHandler):
    """A log file that never prints a traceback when it cannot be written (a full disk
    must end in the one-line message, not in logging's "--- Logging error ---")."""

    def handleError(self, record):
        pass


def setup_logging(log_file=None, level='INFO'):
    """Log to stderr and (appending) to ``log_file``; safe to call twice."""
    import logging
    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter('%(asctime)s %(levelname)s %(message)s')
    if not any(getattr(h, '_cmpese', None) == 'stream' for h in root.handlers):
        h = logging.StreamHandler()
        h.setFormatter(fmt)
        h._cmpese = 'stream'
        root.addHandler(h)
    if log_file and not any(getattr(h, '_cmpese', None) == log_file for h in root.handlers):
        h = _QuietFileHandler(log_file)
        h.setFormatter(fmt)
        h._cmpese = log_file
        root.addHandler(h)


def record_result(save_dir, log):
    """``--record-result``: enter a finished run into the reproduction table
    (:func:`cmpese.tools.reproduce.record_result`), one log line per row it matches; a run
    that matches no row is a warning, not an error (the run itself succeeded)."""
    from ..errors import UserError
    from ..tools.reproduce import record_result as record
    try:
        for e in record(save_dir):
            log.info('recorded %s "%s" %s: top-1 error %.4f%s', e['table'], e['row'], e['run'],
                     e['top1_error'], ('; differs from the row: ' + '; '.join(e['deviations']))
                     if e['deviations'] else '')
    except UserError as err:
        log.warning('--record-result: %s', err)
