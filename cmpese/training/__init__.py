"""Training shared by train_cifar.py and train_imagenet.py: one fit loop, the papers'
schedule presets, atomic checkpoints and resume, devices and kvstore."""
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .fit import TrainingDiverged, evaluate, fit
from .presets import PRESETS, default_preset, get_preset

__all__ = ['fit', 'evaluate', 'TrainingDiverged', 'PRESETS', 'default_preset', 'get_preset',
           'save_checkpoint', 'load_checkpoint', 'latest_checkpoint']
