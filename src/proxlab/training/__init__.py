"""Training engine (layer 4): the Trainer, checkpoints, schedules and data-parallel set-up."""

from .checkpoint import CheckpointError, load_model_weights, resolve_weights, save_model
from .schedules import SCHEDULES, lr_factor
from .trainer import StepContext, Trainer, TrainingDiverged, TrainResult, default_validate

__all__ = [
    "Trainer",
    "TrainResult",
    "TrainingDiverged",
    "StepContext",
    "default_validate",
    "CheckpointError",
    "save_model",
    "load_model_weights",
    "resolve_weights",
    "lr_factor",
    "SCHEDULES",
]
