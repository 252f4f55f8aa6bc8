"""Named tasks and methods, typed experiment configs (TOML), the runner and its reports (layer 5)."""

from .config import (
    ConfigError,
    DataConfig,
    EvaluationConfig,
    ExperimentConfig,
    ModelConfig,
    OperatorConfig,
    TrainingConfig,
    config_to_dict,
    dump_toml,
    load_config,
    loads_config,
)
from ..methods import CLASSIC_METHODS, DEFAULT_WEIGHTS, get_method, reconstruct
from ..tasks import TASKS, Task, make_task, task_options

__all__ = [
    "TASKS",
    "Task",
    "make_task",
    "task_options",
    "CLASSIC_METHODS",
    "DEFAULT_WEIGHTS",
    "get_method",
    "reconstruct",
    "ConfigError",
    "ExperimentConfig",
    "DataConfig",
    "OperatorConfig",
    "ModelConfig",
    "TrainingConfig",
    "EvaluationConfig",
    "load_config",
    "loads_config",
    "config_to_dict",
    "dump_toml",
]
