"""Named tasks and methods, and (later) typed experiment configs and the runner (layer 5)."""

from .methods import CLASSIC_METHODS, DEFAULT_WEIGHTS, get_method, reconstruct
from .tasks import TASKS, Task, make_task

__all__ = ["TASKS", "Task", "make_task", "CLASSIC_METHODS", "DEFAULT_WEIGHTS", "get_method", "reconstruct"]
