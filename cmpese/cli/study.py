"""``python -m cmpese.study``: models x seeds under one recipe, and what each unit buys.

    python -m cmpese.study --dataset fashion-mnist --out runs/study-fmnist \\
        --models preresnet20,se_preresnet20,cmpe_se_preresnet20_1x1 --seeds 0,1,2
    python -m cmpese.study --out runs/study-fmnist --report      # the tables and plot again
    python -m cmpese.study --dataset cifar10 --data-dir ~/data --out runs/c10 \\
        --models preresnet164,se_preresnet164 --seeds 0,1,2 --train-args "--gpus 0"

Every run is ``train_cifar.py`` with the dataset's default preset (or the trainer arguments
given); runs.csv gains a row as each run ends, and a killed study continues where it stopped
(the unfinished run from its last checkpoint). The report: mean ± std test accuracy per model,
the difference from the baseline (the first model unless --baseline) with a Welch 95%
interval, parameters, multiply-adds and the measured seconds per epoch; written as
summary.md, summary.csv and accuracy-vs-cost.png in --out. docs/results.md has a measured
study.
"""
import logging
import os
import shlex
import sys

from ..errors import ArgumentParser, UserError, check_output_path

__all__ = ['build_parser', 'main', 'console']

PROG = 'python -m cmpese.study'


def build_parser(prog=PROG):
    from ..data.datasets import dataset_names
    p = ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    p.add_argument('--out', required=True, metavar='DIR',
                   help='the study directory (created; an existing study continues)')
    p.add_argument('--dataset', choices=dataset_names(), metavar='NAME',
                   help='the dataset every run trains on: %s (required for a new study)'
                        % ', '.join(dataset_names()))
    p.add_argument('--models', metavar='A,B,...',
                   help='comma-separated zoo names, the baseline first (required for a new '
                        'study; names not yet in the study are added to it)')
    p.add_argument('--seeds', default='0,1,2', metavar='S,S,...',
                   help='comma-separated seeds, each run once per model (default 0,1,2)')
    p.add_argument('--baseline', metavar='NAME',
                   help='the model the others are compared with (default: the first)')
    p.add_argument('--data-dir', metavar='DIR',
                   help='passed to the trainer (where the dataset files are)')
    p.add_argument('--epochs', type=int, metavar='N',
                   help='passed to the trainer (default: the preset\'s)')
    p.add_argument('--train-args', default='', metavar='"ARGS"',
                   help='further trainer arguments, one quoted string, e.g. "--gpus 0 --lr 0.05"')
    p.add_argument('--report', action='store_true',
                   help='train nothing: rewrite summary.md, summary.csv and the plot from the '
                        'finished runs')
    return p


def _names(text, flag, cast=str):
    items = [t.strip() for t in (text or '').split(',') if t.strip()]
    try:
        return [cast(t) for t in items]
    except ValueError:
        raise UserError('%s %s: expected a comma-separated list of %s, e.g. %s'
                        % (flag, text, 'integers' if cast is int else 'names',
                           '0,1,2' if cast is int else 'preresnet20,se_preresnet20'))


def _read_plan(path):
    """The plan in ``path`` (study.json), checked for what a study writes there."""
    from ..training.checkpoint import read_json
    try:
        plan = read_json(path, 'study plan')
    except UserError as err:
        raise UserError('%s; restore it or choose another --out' % err)
    kinds = (('dataset', str), ('models', list), ('seeds', list), ('train_args', list))
    for key, kind in kinds:
        if not isinstance(plan.get(key), kind):
            raise UserError('%s is not the plan of a study: %s is %r, expected a %s; restore it '
                            'or choose another --out' % (path, key, plan.get(key),
                                                         kind.__name__))
    return plan


def main(argv=None, prog=PROG):
    from ..training.report import setup_logging
    from ..training.study import Study
    args = build_parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    plan_path = os.path.join(args.out, 'study.json')
    old = None
    check_output_path(args.out, '--out', directory=True)
    if os.path.exists(plan_path):
        old = _read_plan(plan_path)
    dataset = args.dataset or (old or {}).get('dataset')
    models = _names(args.models, '--models') or (old or {}).get('models')
    seeds = _names(args.seeds, '--seeds', int) or (old or {}).get('seeds')
    if old is None and (not dataset or not models):
        raise UserError('--out %s holds no study yet: a new study needs --dataset and --models '
                        '(e.g. --dataset fashion-mnist --models preresnet20,se_preresnet20)'
                        % args.out)
    if not seeds:
        raise UserError('--seeds %r names no seed: give comma-separated integers, e.g. '
                        '--seeds 0,1,2' % args.seeds)
    if any(s < 0 for s in seeds):
        raise UserError('--seeds %s: seeds must be >= 0' % args.seeds)
    from ..model_zoo import get_model_info
    for name in models:
        try:
            get_model_info(name)
        except ValueError as err:
            raise UserError('--models %s: %s' % (name, str(err).strip('"')))
    baseline = args.baseline or (old or {}).get('baseline') or models[0]
    if baseline not in models and baseline not in (old or {}).get('models', []):
        raise UserError('--baseline %s is not one of the study\'s models (%s)'
                        % (baseline, ', '.join(models)))
    train_args = []
    if args.data_dir:
        train_args += ['--data-dir', args.data_dir]
    if args.epochs is not None:
        if args.epochs < 1:
            raise UserError('--epochs must be >= 1, got %d' % args.epochs)
        train_args += ['--epochs', str(args.epochs)]
    try:
        train_args += shlex.split(args.train_args)
    except ValueError as err:
        raise UserError('--train-args %s: %s; close the quotes inside it (the trainer '
                        'arguments are one string: --train-args "--gpus 0 --lr 0.05")'
                        % (args.train_args, err))
    if old is not None and not any([args.dataset, args.data_dir, args.epochs is not None,
                                    args.train_args]):
        train_args = old['train_args']           # continuing: the recipe from the plan
    study = Study(args.out, dataset, models, seeds, train_args, baseline)
    study.plan()            # another recipe, or a damaged runs.csv: refused before any write
    study.finished()
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        raise UserError('--out %s cannot be created (%s); choose a directory you can write'
                        % (args.out, err.strerror or err))
    setup_logging(os.path.join(args.out, 'study.log'))
    if args.report:
        rows = study.report()
    else:
        rows = study.run()
    if rows:
        from ..training.study import format_markdown
        sys.stdout.write(format_markdown(rows, baseline))
    else:
        logging.getLogger('cmpese.study').info('no finished run yet in %s', args.out)
    return 0


def console(prog='cmpese-study'):
    """Console entry point ``cmpese-study`` (the study itself computes nothing: its runs are
    child processes that get the thread default from the trainer)."""
    from . import console as run_console
    return run_console(main, prog, threads=False)


if __name__ == '__main__':
    sys.exit(console(PROG))
