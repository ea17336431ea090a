"""Ctrl-C (SIGINT) and SIGTERM (what SLURM sends before a preemption) during fit: stop at the next step
boundary with `last.ckpt` written there, and exit with 128 + the signal's number.

Lightning's pieces do the work: its signal connector records SIGTERM (`trainer.received_sigterm`) and
raises `SIGTERMException` at points where the loop state is consistent (epoch end, mid-validation, and
at each batch start under DDP); the fit loop can restart from a checkpoint written in
`on_train_batch_end` (it is where `ModelCheckpoint(every_n_train_steps=...)` saves); checkpoints go
through the trainer's checkpoint IO (`AtomicCheckpointIO`: temp file + rename). `StopOnSignal` adds
what is missing: SIGINT is recorded like SIGTERM instead of raising `KeyboardInterrupt` wherever the
program happens to be (mid-backward, mid-optimizer-step: a checkpoint of that state would be torn), the
stop happens after the running training step (after an epoch's last step: once that epoch is validated), and
`last.ckpt` is written before the process exits.
A second Ctrl-C stops at once, without a checkpoint.
"""
from __future__ import annotations

import signal
import threading

from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from infomamba.console import say


class StopOnSignal(Callback):
    def __init__(self) -> None:
        self._sigint = False

    def on_train_start(self, trainer, pl_module) -> None:
        # Lightning's signal connector puts the previous SIGINT handler back when the trainer tears down.
        self._sigint = False
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        if self._sigint:
            raise KeyboardInterrupt
        self._sigint = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx + 1 < trainer.num_training_batches:
            self._stop_if_signalled(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """A signal during an epoch's last step stops here, after that epoch's validation: stopped before it, the
        resumed run found the epoch's batches done and went on without ever validating it."""
        self._stop_if_signalled(trainer)

    def _stop_if_signalled(self, trainer) -> None:
        signum = signal.SIGINT if self._sigint else signal.SIGTERM if trainer.received_sigterm else None
        if trainer.strategy.reduce_boolean_decision(signum is not None, all=False):
            raise SIGTERMException(128 + (signum or signal.SIGTERM))

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        checkpoints = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING or not checkpoints:
            return
        path = checkpoints[0].format_checkpoint_name({}, ModelCheckpoint.CHECKPOINT_NAME_LAST)
        for checkpoint in checkpoints:
            if checkpoint.save_last:  # saved with the state: the resumed run's next last.ckpt replaces this one
                checkpoint.last_model_path = path
        trainer.save_checkpoint(path, weights_only=False)
        if trainer.is_global_zero:
            name = signal.Signals((exception.code or 128 + signal.SIGTERM) - 128).name
            say(f"[infomamba] {name}: stopped at epoch {trainer.current_epoch} step {trainer.global_step}, wrote "
                f"{path}; continue with the same command and --ckpt_path last")
