"""Ctrl-C (SIGINT) and SIGTERM (what SLURM sends before a preemption) during fit: stop at the next step
boundary with `last.ckpt` written there, and exit with 128 + the signal's number.

Lightning's pieces do the work: the fit loop can restart from a checkpoint written in `on_train_batch_end` (it is
where `ModelCheckpoint(every_n_train_steps=...)` saves), `SIGTERMException` ends the fit, and checkpoints go through
the trainer's checkpoint IO (`AtomicCheckpointIO`: temp file + rename). `StopOnSignal` records both signals while
training runs, instead of `KeyboardInterrupt` raised wherever the program happens to be (mid-backward,
mid-optimizer-step: a checkpoint of that state would be torn) and of Lightning's own SIGTERM handling, which stops
mid-validation and after an epoch's last step before its validation (the resumed run never validated that epoch).
The stop happens after the running training step (after an epoch's last step: once that epoch is validated), on every
DDP rank at the same step, and `last.ckpt` is written before the process exits. A SIGTERM before training starts is
Lightning's. A second Ctrl-C stops at once, without a checkpoint, through the SIGINT handler the fit started with (the
CLI's, which makes Lightning's exit after it the shell's 130).
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
        self._received: set[int] = set()
        self._previous = None

    def on_train_start(self, trainer, pl_module) -> None:
        # Lightning's signal connector puts the handlers from before the fit back when the trainer tears down.
        self._received = set()
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGINT and signum in self._received:
            if callable(self._previous):
                self._previous(signum, frame)
            raise KeyboardInterrupt
        self._received.add(signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        signum = self._signalled(trainer) if batch_idx + 1 < trainer.num_training_batches else None
        if signum:
            raise SIGTERMException(128 + signum)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """A signal during an epoch's last step stops here, after that epoch's validation (stopped before it, the
        resumed run found the epoch's batches done and went on without ever validating it), once the checkpoint
        callbacks, which Lightning runs after this one, have saved the epoch (the best checkpoint had been chosen
        without it)."""
        signum = self._signalled(trainer)
        if signum:
            for checkpoint in trainer.checkpoint_callbacks:
                checkpoint.on_train_epoch_end(trainer, pl_module)
            raise SIGTERMException(128 + signum)

    def _signalled(self, trainer) -> int | None:
        """The signal to stop for, decided by every DDP rank together (one rank's signal stops them all); None to go
        on."""
        sigterm = signal.SIGTERM in self._received or trainer.received_sigterm  # (before the fit: Lightning's)
        signum = signal.SIGINT if signal.SIGINT in self._received else signal.SIGTERM if sigterm else None
        stop = trainer.strategy.reduce_boolean_decision(signum is not None, all=False)
        return (signum or signal.SIGTERM) if stop else None

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
