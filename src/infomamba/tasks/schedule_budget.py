"""A warning, once per fit, when `trainer.max_time` will stop the fit before `max_epochs`.

The learning-rate schedule (`TaskModule.configure_optimizers`: warm-up then cosine) is laid out over every step of
`max_epochs`; Lightning's `max_time` ends the fit at a step boundary whatever the schedule, so a fit that runs out
of time stops with the learning rate still high. Seen on Fashion-MNIST (H200, docs/results.md): a 64-epoch schedule
stopped at epoch 49 of 64 (77 % of its steps) reached 93.45 % where the same recipe stopped later reached 94.12 %.
After the second epoch (the first includes Triton autotuning, CUDA-graph captures and compiling) this callback
estimates the step and epoch the time allows, from the last epoch's wall time (its validation included), and says
which `max_epochs` (or `max_steps`, where that is what ends the schedule) would finish it in time. A resumed fit
whose run has already spent its `max_time` (the whole run's budget: Lightning's Timer carries the elapsed time across
resumes) trains nothing; it says so and which option would go on. It changes nothing in the run.
"""
from __future__ import annotations

import math
import time
from datetime import timedelta

from lightning.pytorch.callbacks import Callback, Timer
from lightning.pytorch.utilities import rank_zero_warn


def reachable(done: int, unit_seconds: float, seconds_left: float) -> int:
    """Units (epochs, steps) completed in all when `seconds_left` more allow that many units of `unit_seconds`."""
    return done + max(0, math.floor(seconds_left / unit_seconds)) if unit_seconds > 0 else 10**9


def _timer(trainer) -> Timer | None:
    """The fit's Timer (`trainer.max_time` given), or None."""
    return next((c for c in trainer.callbacks if isinstance(c, Timer)), None)


class ScheduleBudget(Callback):
    clock = staticmethod(time.monotonic)  # the epochs' wall clock (a test swaps it; Lightning's Timer keeps its own)

    def __init__(self):
        self._epoch_start: float | None = None
        self._epoch_start_step = 0
        self._warned = False

    def on_fit_start(self, trainer, pl_module):  # (after a resumed fit's Timer state is restored)
        timer = _timer(trainer)
        seconds_left = timer.time_remaining() if timer is not None else None
        if seconds_left is not None and seconds_left <= 0:
            rank_zero_warn(f"this run has spent its max_time ({timedelta(seconds=round(timer.time_elapsed()))} "
                           "trained, across its resumes), so this fit trains nothing: continue it with a larger "
                           "--trainer.max_time")

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = self.clock()
        self._epoch_start_step = trainer.global_step

    def on_train_epoch_end(self, trainer, pl_module):
        now = self.clock()
        timer = _timer(trainer)
        steps = trainer.global_step - self._epoch_start_step
        if self._warned or timer is None or self._epoch_start is None or trainer.current_epoch < 1 or steps < 1:
            return
        seconds_left = timer.time_remaining()
        total = trainer.estimated_stepping_batches  # the schedule's length (TaskModule.configure_optimizers)
        if seconds_left is None or not math.isfinite(total):
            return
        epoch_seconds = now - self._epoch_start
        steps_reached = reachable(trainer.global_step, epoch_seconds / steps, seconds_left)
        if steps_reached >= total:
            return
        self._warned = True
        epochs_reached = reachable(trainer.current_epoch + 1, epoch_seconds, seconds_left)
        by_steps = 0 < trainer.max_steps < (trainer.max_epochs or 0) * steps
        fix = (f"--trainer.max_steps={steps_reached}" if by_steps or trainer.max_epochs in (None, -1)
               else f"--trainer.max_epochs={epochs_reached}")
        rank_zero_warn(
            f"max_time will stop this fit at about step {steps_reached} of the {int(total)} its learning-rate "
            f"schedule is laid out over ({100 * steps_reached / total:.0f} %; about epoch {epochs_reached}: an "
            f"epoch takes {epoch_seconds:.0f} s, {seconds_left:.0f} s are left). {fix} would finish it in time.")
