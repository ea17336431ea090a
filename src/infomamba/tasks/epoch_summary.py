"""One line per epoch with the logged metrics, for logs that outlive the progress bar."""
from __future__ import annotations

import time

from lightning.pytorch.callbacks import Callback

from infomamba.console import say


class EpochSummary(Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith(("val/", "train/")) and v.numel() == 1}
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        elapsed = time.perf_counter() - getattr(self, "_start", time.perf_counter())
        say(f"[infomamba] epoch {trainer.current_epoch} step {trainer.global_step} ({elapsed:.0f}s): {shown}")
