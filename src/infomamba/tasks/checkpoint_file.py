"""A checkpoint file the user names (`model.init_from`, `data.tokenizer`, `load_from_checkpoint`), read with a one-line
refusal of what cannot serve: a file torch cannot read (truncated, or no checkpoint at all: it had been a 40-line
traceback from torch's zip reader) or a checkpoint of another task's model (it had been the constructor's TypeError
about a missing argument). The CLI words its --ckpt_path check the same way."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .registry import class_path, tasks_of


def not_a_checkpoint(err: BaseException) -> str:
    """What is said of a file torch.load failed on with `err`, after its name."""
    return f"is not a checkpoint Lightning saved (torch.load: {type(err).__name__})"


def read_checkpoint_file(path: str | Path, label: str, mmap: bool = False) -> dict:
    """The checkpoint at `path` on the CPU (through a memory map with `mmap`: no weights read); a file torch cannot
    read raises ValueError "<label> <path> is not a checkpoint Lightning saved (...)"."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as err:  # torch.load raises what the pickle or zip reader met
        raise ValueError(f"{label} {path} {not_a_checkpoint(err)}") from err


def other_model_problem(path, model: type) -> str | None:
    """Why the checkpoint file at `path` cannot be loaded as a `model` (its class's name and task named), or None when
    it can, or when `path` is no local file (a stream, a URL, a missing file: Lightning says what it meets there) or
    the checkpoint was written before checkpoints kept their model's class."""
    if not isinstance(path, (str, os.PathLike)) or not Path(path).is_file():
        return None
    label = f"{model.__name__}.load_from_checkpoint:"
    saved = read_checkpoint_file(path, label, mmap=True).get("infomamba_module")
    if saved is None or saved == class_path(model):
        return None
    name = saved.split(":")[-1]
    tasks = "".join(f" (--task {task})" for task in tasks_of(saved))
    return f"{label} {path} is a checkpoint of {name}{tasks}, not of {model.__name__}: use {name}.load_from_checkpoint"
