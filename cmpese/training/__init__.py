"""Training shared by train_cifar.py and train_imagenet.py: one fit loop (a training step,
an evaluation step and epoch-end hooks), the papers' schedule presets, checksummed atomic
checkpoints and resume, devices, kvstore and the local dist launcher."""
from .checkpoint import (CheckpointError, SaveError, find_checkpoint, latest_checkpoint,
                         load_checkpoint, save_checkpoint)
from .fit import DEFAULT_HOOKS, EvalResult, Run, TrainingDiverged, evaluate, fit, train_epoch
from .presets import PRESETS, default_preset, get_preset

__all__ = ['fit', 'train_epoch', 'evaluate', 'EvalResult', 'Run', 'DEFAULT_HOOKS',
           'TrainingDiverged', 'SaveError', 'CheckpointError', 'PRESETS', 'default_preset',
           'get_preset', 'save_checkpoint', 'load_checkpoint', 'latest_checkpoint',
           'find_checkpoint']
