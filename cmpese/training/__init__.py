"""Training shared by the trainers (cmpese.cli.train_cifar, cmpese.cli.train_imagenet): the
run skeleton (run), options and their checks (cli), the papers' schedule presets (presets)
and the optimizer's schedule (schedule), one fit loop (fit: a training step, an evaluation
step and epoch-end hooks), checksummed atomic checkpoints and resume (checkpoint), the
kvstore and gradient all-reduce (kvstore), the run's CSV, curves and log (report) and the
local dist launcher (launch)."""
from .checkpoint import (CheckpointError, SaveError, find_checkpoint, latest_checkpoint,
                         load_checkpoint, save_checkpoint)
from .fit import DEFAULT_HOOKS, EvalResult, Run, TrainingDiverged, evaluate, fit, train_epoch
from .presets import PRESETS, default_preset, get_preset

__all__ = ['fit', 'train_epoch', 'evaluate', 'EvalResult', 'Run', 'DEFAULT_HOOKS',
           'TrainingDiverged', 'SaveError', 'CheckpointError', 'PRESETS', 'default_preset',
           'get_preset', 'save_checkpoint', 'load_checkpoint', 'latest_checkpoint',
           'find_checkpoint']
