"""Tasks by name: `register_task` adds one, `get_task` imports only the one asked for, `list_tasks` names them.

A task is a LightningModule + LightningDataModule pair with the checkpoint metric, the default number of
epochs and the sizes the model takes from the data (`links`, applied by the CLI when the data module
is built). Each built-in task folder registers itself in its `__init__.py`, with its classes given as
"module:Class" paths, so importing the folder (or a light file in it, such as the image frontend) does
not import the task's heavy dependencies; they are imported when the CLI asks for the classes. This
file imports nothing but the standard library, so `infomamba.list_tasks()` is cheap.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# The built-in tasks' folders: `get_task` imports one of them on first use, which registers it.
BUILTIN_TASKS = MappingProxyType({
    "text": "infomamba.tasks.text",
    "text_mlm": "infomamba.tasks.text",
    "image": "infomamba.tasks.image",
    "asr": "infomamba.tasks.asr",
})


@dataclass(frozen=True)
class TaskSpec:
    """One registered task.

    Args:
        name: the `--task` value.
        module, datamodule: the classes, or "package.module:Class" paths imported on `load()`.
        monitor: (metric, "min" | "max") the best checkpoint is chosen by.
        max_epochs: the trainer's default number of epochs.
        links: datamodule attribute -> model constructor argument, read from the built data module
            (LightningCLI `link_arguments(..., apply_on="instantiate")`), e.g. {"num_classes": "num_classes"}.
        trained_data: data options that shape what the weights see (text: max_length): an evaluation takes them
            from its checkpoint unless the command gives them, so a checkpoint moved away from its run folder is
            still scored as trained.
    """

    name: str
    module: type | str
    datamodule: type | str
    monitor: tuple[str, str]
    max_epochs: int
    links: Mapping[str, str] = field(default_factory=dict)
    trained_data: tuple[str, ...] = ()

    def load(self) -> tuple[type, type]:
        """The (module, datamodule) classes, importing them if they were registered by path."""
        return _resolve(self.module), _resolve(self.datamodule)


_TASKS: dict[str, TaskSpec] = {}


def register_task(name: str, module_cls: type | str, datamodule_cls: type | str, *,
                  monitor: tuple[str, str] = ("val/loss", "min"), max_epochs: int = 10,
                  links: Mapping[str, str] | None = None, trained_data: tuple[str, ...] = ()) -> TaskSpec:
    """Make a task available to `infomamba --task NAME` (see `TaskSpec` for the arguments).

    Registering the same task again is a no-op; registering another pair under a taken name is an error,
    a built-in name included (its folder is imported first, so that the clash is seen; while that folder
    registers itself, the import returns the half-imported folder and does nothing).
    """
    if monitor[1] not in ("min", "max"):
        raise ValueError(f"monitor mode must be 'min' or 'max', got {monitor[1]!r}")
    if name in BUILTIN_TASKS and name not in _TASKS:
        importlib.import_module(BUILTIN_TASKS[name])
    spec = TaskSpec(name, module_cls, datamodule_cls, tuple(monitor), max_epochs, dict(links or {}),
                    tuple(trained_data))
    if name in _TASKS and _TASKS[name] != spec:
        raise ValueError(f"task {name!r} is already registered ({_TASKS[name].module} + {_TASKS[name].datamodule})")
    _TASKS[name] = spec
    return spec


def list_tasks() -> list[str]:
    """Names of the built-in and registered tasks (imports none of them)."""
    return sorted(set(BUILTIN_TASKS) | set(_TASKS))


def get_task(name: str) -> TaskSpec:
    """The task registered as `name`; a built-in task's folder is imported (and so registered) first."""
    if name not in _TASKS and name in BUILTIN_TASKS:
        importlib.import_module(BUILTIN_TASKS[name])
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; available: {', '.join(list_tasks())}")
    return _TASKS[name]


def _resolve(target: type | str) -> type:
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def class_path(target: type | str) -> str:
    """A class as "package.module:Class" (the form tasks register by), without importing a path given as one."""
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def tasks_of(module_path: str) -> list[str]:
    """The names of the tasks whose model class is `module_path` ("package.module:Class")."""
    return [name for name in list_tasks() if class_path(get_task(name).module) == module_path]


def other_task_model(saved: str | None, task: str, module: type | str) -> str | None:
    """Why a checkpoint whose model class is `saved` (its "infomamba_module") cannot be loaded by `task`'s model
    `module`, naming the tasks it belongs to; None when it can (or, saved before checkpoints kept it, may)."""
    if saved is None or saved == class_path(module):
        return None
    owners = tasks_of(saved)
    use = f"use --task {' or --task '.join(owners)}" if owners else "no registered task has that model"
    return f"is a checkpoint of {saved.split(':')[-1]}, not of --task {task}'s model: {use}"
