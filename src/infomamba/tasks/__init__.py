"""Tasks of infomamba: one folder per modality (datamodule + module), found by name through the registry."""
from .registry import TaskSpec, get_task, list_tasks, register_task

__all__ = ["TaskSpec", "get_task", "list_tasks", "register_task"]
