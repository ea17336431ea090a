"""The note that `--compile` on a CPU costs minutes: there the fused ops run their PyTorch references (README,
"Speed"), so a fit of a few steps spends its time compiling. An evaluation of a compiled fit's run reuses its
config.yaml, so the note names where the option may come from: the user of `predict` never typed it."""
from __future__ import annotations

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from infomamba.console import say


def compile_on_cpu_note(compile: bool | str, device_type: str) -> str | None:
    """The note for the model option `compile` (false, true or a torch.compile mode) on a `device_type` device,
    or None where there is nothing to say (compile off, or not on a CPU)."""
    if not compile or device_type != "cpu":
        return None
    return ("[infomamba] note: torch.compile on a CPU (model.compile, set by --compile or a config: the run's "
            "config.yaml for validate, test and predict) compiles for minutes and runs the fused ops' PyTorch "
            "reference path, unfused; give --model.compile=false for CPU runs")


def note_compile_on_cpu(compile: bool | str, device: torch.device | str) -> None:
    """Say `compile_on_cpu_note` on rank 0 where it applies; `device` is the one the model runs on (the trainer's
    `strategy.root_device`)."""
    line = compile_on_cpu_note(compile, torch.device(device).type)
    if line is not None:
        rank_zero_only(say)(line)
