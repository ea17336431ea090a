"""One line per epoch with the logged metrics, for logs that outlive the progress bar, and one when fit ends:
the best checkpoint, its monitored value, last.ckpt and the wall time; before it, a fit resumed from a checkpoint of a
run that had already ended (Lightning then trains nothing and says nothing) says so and how to go on. After
Lightning's table of metrics, `validate` and `test` name the folder they logged into (`logged_into`: a `version_N` of
their own, inside a `--run_dir` run's folder when given its config).

The epoch line is written when the training epoch ends, after its validation: train/ values are the epoch's means
(the tasks log them with on_epoch; metrics.csv holds them as `train/<name>_epoch`, each step's as
`train/<name>_step`); under DDP the loss terms are rank 0's batches' (not synced: sync_dist would all-reduce every
step's value) and accuracies every rank's (torchmetrics syncs its epoch value). val/ values are those of the
validation that ran in this epoch, left out of an epoch that ran none."""
from __future__ import annotations

import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from infomamba.console import say


class EpochSummary(Callback):
    def __init__(self):
        self._fit_start = self._start = time.perf_counter()
        self._validated = self._trained = False

    def on_fit_start(self, trainer, pl_module):
        self._fit_start = self._start = time.perf_counter()  # a run resumed mid-epoch starts no epoch
        self._trained = False

    def on_train_start(self, trainer, pl_module):
        self._trained = True  # not called where the restored loop is already done

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()
        self._validated = False

    def on_validation_epoch_end(self, trainer, pl_module):
        self._validated = self._validated or not trainer.sanity_checking

    def on_train_epoch_end(self, trainer, pl_module):
        logged = trainer.callback_metrics  # on every rank: a torchmetrics metric's epoch value is a collective
        if not trainer.is_global_zero:
            return
        stages = ("val/", "train/") if self._validated else ("train/",)
        metrics = {k: float(v) for k, v in logged.items()  # the epoch's values, by their plain names
                   if k.startswith(stages) and not k.endswith(("_step", "_epoch")) and v.numel() == 1}
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        elapsed = time.perf_counter() - self._start
        say(f"[infomamba] epoch {trainer.current_epoch} step {trainer.global_step} ({elapsed:.0f}s): {shown}")

    def on_fit_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        limit = not self._trained and trainer.ckpt_path and limit_reached(trainer)
        if limit:
            say(f"[infomamba] nothing to train: the run resumed from {trainer.ckpt_path} had already reached {limit} "
                f"(epoch {trainer.fit_loop.epoch_progress.current.processed}, step {trainer.global_step}); give a "
                "larger --trainer.max_epochs or --trainer.max_steps to train on")
        line = f"[infomamba] fit done in {time.perf_counter() - self._fit_start:.0f}s (step {trainer.global_step})"
        best = trainer.checkpoint_callback
        if best is None or trainer.fast_dev_run:
            say(line + (": fast_dev_run, no checkpoint written" if trainer.fast_dev_run else ": checkpointing is off"))
            return
        if best.best_model_score is not None:
            line += f": best {best.best_model_path} ({best.monitor}={float(best.best_model_score):.4f})"
        elif best.monitor:
            line += f": no {best.monitor} was logged (no validation ran), so no best checkpoint"
        last = Path(best.dirpath) / "last.ckpt"
        say(line + (f"; last {last}" if last.exists() else ""))


def logged_into(trainer, command: str) -> None:
    """Say (rank 0) which folder `command`'s logger wrote into; nothing where no logger ran (the CLI calls it after
    the command: a callback's end hooks run before Lightning prints its table). On every rank: `trainer.log_dir`
    is a broadcast from rank 0 under DDP."""
    folder = trainer.log_dir if trainer.loggers else None
    if trainer.is_global_zero and folder is not None:
        say(f"[infomamba] {command} done: metrics logged into {folder}")


def limit_reached(trainer) -> str | None:
    """The limit a fit stands at, as the fit loop's `done` tests them: max_steps where that was set and reached, else
    max_epochs where the epochs counted done reached it; None for neither. Not `done` itself, which logs Lightning's
    "`Trainer.fit` stopped" line each time it is asked (a fit that trained nothing had printed it twice). The line
    names the epochs counted done, not `current_epoch`, which lags them by one where max_steps ended the last one."""
    if 0 <= trainer.max_steps <= trainer.global_step:
        return f"max_steps={trainer.max_steps}"
    if 0 <= trainer.max_epochs <= trainer.fit_loop.epoch_progress.current.processed:
        return f"max_epochs={trainer.max_epochs}"
    return None
