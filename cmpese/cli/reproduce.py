"""One command per paper table row: list them, print or run a row's command, record results.

    python -m cmpese.reproduce --list [--table cmpe-2]
    python -m cmpese.reproduce --table cmpe-2 --row "CMPE-SE-WRN-28-10 1x1"
    python -m cmpese.reproduce --table cmpe-2 --row "CMPE-SE-WRN-28-10 1x1" --column C10 --run
    python -m cmpese.reproduce --collect runs/reproduce/cmpe-2/cmpe_se_wrn28_10_1x1-cifar10
    python -m cmpese.reproduce --write-docs      # docs/reproduce.md and docs/model_zoo.md

The rows and their printed figures are cmpese/papers/rows.csv; the commands, the recorded
results and the generated pages come from :mod:`cmpese.papers.reproduce`.
"""
import os
import subprocess
import sys

from ..errors import ArgumentParser, UserError, check_output_path

__all__ = ['build_parser', 'main', 'console', 'PROG']

PROG = 'python -m cmpese.reproduce'


def build_parser(prog=PROG):
    from ..papers import TABLES
    parser = ArgumentParser(
        prog=prog,
        description='Commands that reproduce the rows of the papers\' tables, and the results '
                    'of runs recorded against them.')
    what = parser.add_argument_group('what')
    what.add_argument('--list', action='store_true',
                      help='print every table row (or those of --table) with its model, preset, '
                           'printed parameters and figures, and recorded results')
    what.add_argument('--table', help='a table: %s' % ', '.join(TABLES))
    what.add_argument('--row', help='a row label of --table as --list prints it (case, spaces '
                                    'and dashes do not matter), or its zoo model name')
    what.add_argument('--column', action='append',
                      help='only the run behind this printed column (e.g. C10, "C100 mixup", '
                           'SVHN, top-1); repeatable')
    what.add_argument('--run', action='store_true',
                      help='run the row\'s command(s) here, one after the other, and record '
                           'each finished run')
    what.add_argument('--collect', metavar='RUN_DIR', action='append',
                      help='record the finished run in RUN_DIR (its --save-dir) against the '
                           'rows it reproduces; repeatable')
    what.add_argument('--write-docs', nargs='?', const='', metavar='DIR',
                      help='regenerate reproduce.md and model_zoo.md (default: docs/ of the '
                           'repository)')
    opts = parser.add_argument_group('options')
    opts.add_argument('--data-dir', help='passed to the trainers as --data-dir; ImageNet '
                                         'commands read DIR/imagenet/{train,val}.{rec,idx}')
    opts.add_argument('--save-root', default='runs/reproduce',
                      help='run directories are SAVE_ROOT/<table>/<model>-<dataset>[-mixup]')
    opts.add_argument('--results', help='results file (default $CMPESE_RESULTS or '
                                         'results/reproduce.json in the repository)')
    opts.add_argument('--extra', default='',
                      help='with --run: more trainer options, e.g. "--gpus 0,1" (appended)')
    return parser


def _select(args):
    from ..papers import find_row, get_table
    if not args.table:
        raise UserError('--row needs --table (python -m cmpese.reproduce --list shows them)')
    try:
        get_table(args.table)
        return find_row(args.table, args.row)
    except KeyError as err:
        raise UserError('--table/--row: %s' % str(err).strip('"\''))


def main(argv=None, prog=PROG):
    from ..papers import reproduce as rp
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not (args.list or args.row or args.collect or args.write_docs is not None):
        raise UserError('nothing to do: pass --list, --table T --row R [--run], --collect '
                        'RUN_DIR or --write-docs (see --help)')
    if args.collect or args.run:        # the results file will be written: checked first
        check_output_path(args.results or rp.default_results_path(), '--results')
    if args.list:
        if args.table:
            try:
                rp.get_table(args.table)
            except KeyError as err:
                raise UserError('--table: %s' % str(err).strip('"\''))
        print(rp.format_list(args.table, rp.load_results(args.results)))
    if args.row:
        row = _select(args)
        if row.model is None:
            raise UserError('%s "%s" is %s: there is no command for it' % (
                row.table, row.label, row.note or 'a network cmpese does not build'))
        runs = rp.row_runs(row, args.column, save_root=args.save_root, data_dir=args.data_dir,
                           python=sys.executable if args.run else 'python',
                           trainer_dir=rp.repo_root() if args.run else None)
        if not runs:
            names = [c.name for c, v in zip(rp.TABLES[row.table].columns, row.values) if v]
            raise UserError('--column %s: %s "%s" prints figures only in %s' % (
                ', '.join(args.column or []), row.table, row.label, ', '.join(names)))
        for r in runs:
            print('# %s, %s: %s (%s)' % (row.table, row.label, ' / '.join(r.columns),
                                         r.preset))
            print(rp.format_command(r.argv + (args.extra.split() if args.run else [])))
        if args.run:
            for r in runs:
                script = r.argv[1]
                if not os.path.isfile(script):
                    raise UserError('%s does not exist here; the %s rows need it' % (
                        script, r.dataset))
                code = subprocess.call(r.argv + args.extra.split())
                if code != 0:
                    sys.stderr.write('the run for %s exited with %d; nothing recorded\n'
                                     % (' / '.join(r.columns), code))
                    return code
                for entry in rp.record_result(r.save_dir, args.results, row.table, row.label):
                    print('recorded %s "%s" %s: top-1 error %.2f%%' % (
                        entry['table'], entry['row'], entry['run'], 100 * entry['top1_error']))
    for run_dir in args.collect or []:
        for entry in rp.record_result(run_dir, args.results):
            print('recorded %s "%s" %s from %s: top-1 error %.2f%%%s' % (
                entry['table'], entry['row'], entry['run'], entry['run_dir'],
                100 * entry['top1_error'],
                '; differs from the row\'s command: ' + '; '.join(entry['deviations'])
                if entry['deviations'] else ''))
    if args.write_docs is not None:
        for path in rp.write_docs(args.write_docs or None, args.results):
            print('wrote %s' % path)
    return 0


def console(prog='cmpese-reproduce'):
    """The ``cmpese-reproduce`` console script (no thread default: its runs are child
    processes, each a trainer that sets its own)."""
    from . import console as run_console
    return run_console(main, prog, threads=False)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.reproduce'))
