"""A warning, once per fit, when `trainer.max_time` will stop the fit before `max_epochs`.

The learning-rate schedule (`TaskModule.configure_optimizers`: warm-up then cosine) is laid out over every step of
`max_epochs`; Lightning's `max_time` ends the fit at a step boundary whatever the schedule, so a fit that runs out
of time stops with the learning rate still high. Seen on Fashion-MNIST (H200, docs/results.md): a 64-epoch schedule
stopped at epoch 49 of 64 (77 % of its steps) reached 93.45 % where the same recipe stopped later reached 94.12 %.
After the second epoch (the first includes Triton autotuning, CUDA-graph captures and compiling) this callback
estimates the epoch the time allows, from the last epoch's wall time (its validation included), and says which
`max_epochs` would finish the schedule in time. It changes nothing in the run.
"""
from __future__ import annotations

import math
import time

from lightning.pytorch.callbacks import Callback, Timer
from lightning.pytorch.utilities import rank_zero_warn


def reachable_epochs(epochs_done: int, epoch_seconds: float, seconds_left: float) -> int:
    """Epochs completed in all when `seconds_left` more allow that many epochs of `epoch_seconds` each."""
    return epochs_done + max(0, math.floor(seconds_left / epoch_seconds)) if epoch_seconds > 0 else 10**9


class ScheduleBudget(Callback):
    clock = staticmethod(time.monotonic)  # the epochs' wall clock (a test swaps it; Lightning's Timer keeps its own)

    def __init__(self):
        self._epoch_start: float | None = None
        self._warned = False

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = self.clock()

    def on_train_epoch_end(self, trainer, pl_module):
        now = self.clock()
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        max_epochs = trainer.max_epochs
        if (self._warned or timer is None or self._epoch_start is None or max_epochs is None or max_epochs < 0
                or trainer.current_epoch < 1):
            return
        seconds_left = timer.time_remaining()
        if seconds_left is None:
            return
        epoch_seconds = now - self._epoch_start
        reached = reachable_epochs(trainer.current_epoch + 1, epoch_seconds, seconds_left)
        if reached < max_epochs:
            self._warned = True
            rank_zero_warn(
                f"max_time will stop this fit at about epoch {reached} of max_epochs={max_epochs} (an epoch takes "
                f"{epoch_seconds:.0f} s, {seconds_left:.0f} s are left): the learning-rate schedule, laid out over "
                f"{max_epochs} epochs, will have run about {100 * reached / max_epochs:.0f} % of its steps. "
                f"--trainer.max_epochs={reached} would finish it in time.")
