"""Ctrl-C (SIGINT) and SIGTERM (what SLURM sends before a preemption) during fit: stop at the next step
boundary with `last.ckpt` written there, and exit with 128 + the signal's number.

Lightning's pieces do the work: the fit loop can restart from a checkpoint written at a step's end (as
`ModelCheckpoint` writes one at a validation's end), `SIGTERMException` ends the fit, and checkpoints go through the
trainer's checkpoint IO (`AtomicCheckpointIO`: temp file + rename). `StopOnSignal` records both signals while
training runs, instead of `KeyboardInterrupt` raised wherever the program happens to be (mid-backward,
mid-optimizer-step: a checkpoint of that state would be torn) and of Lightning's own SIGTERM handling, which stops
mid-validation and after an epoch's last step before its validation (the resumed run never validated that epoch).
The stop happens after the running training step, its metrics logged (and after the validation due there, or running
as the signal came; after an epoch's last step: once that epoch is validated and its training means logged), on
every DDP rank at the same step, and `last.ckpt` is written before the process exits.
Before training starts a signal ends the command where it is, with nothing trained to save (the CLI's handlers,
`cli.Interrupts`). A second Ctrl-C stops at once, without a checkpoint, through the SIGINT handler the fit started
with (the CLI's, which makes Lightning's exit after it the shell's 130).
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
        self._stopping: int | None = None  # the signal the fit stops for
        self._after_epoch: int | None = None  # the epoch it stops after, when it stops at an epoch's end
        self._mid_epoch = False  # whether it stops inside an epoch, once the step (and its validation) is done
        self._validated = False  # whether a validation ran at that step

    def on_train_start(self, trainer, pl_module) -> None:
        # Lightning's signal connector puts the handlers from before the fit back when the trainer tears down.
        self._received = set()
        self._stopping = self._after_epoch = None
        self._mid_epoch = self._validated = False
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
        """Mid-epoch, the fit stops once the step is done: Lightning raises `SIGTERMException` after the step's end
        (its metrics logged: raised here, the step's row was never written) where it has noted a SIGTERM, set here
        for either signal (`_stop`), and after the validation due there, if one is (`on_validation_start`).
        A stop waits for the end of the running gradient-accumulation window (`accumulate_grad_batches`): a
        checkpoint holds no accumulated gradient, so a run stopped inside a window had resumed with the window's
        first micro-batches lost to its next optimizer step, not where an uninterrupted run would be."""
        stepped = (batch_idx + 1) % trainer.accumulate_grad_batches == 0
        signum = self._signalled(trainer) if stepped and batch_idx + 1 < trainer.num_training_batches else None
        if signum:
            self._stop(trainer, signum)

    def on_validation_start(self, trainer, pl_module) -> None:
        """A validation due after the step a stop was decided at runs whole (Lightning's loop stops a validation after
        its running batch where it has noted a SIGTERM); `on_validation_end` notes the stop again."""
        if self._mid_epoch:
            trainer._signal_connector.received_sigterm = False

    def on_validation_end(self, trainer, pl_module) -> None:
        """A signal during a validation inside an epoch (`val_check_interval`) stops the fit right after it (checked
        at the next step's end, the fit had trained one step more), once its checkpoints are saved (the checkpoint
        callbacks' own hook runs after this one); a resumed run does not validate there again. Inside a
        gradient-accumulation window it waits for the window's end; after an epoch's last step, for that epoch's end
        (`on_train_epoch_end`)."""
        progress = trainer.fit_loop.epoch_loop.batch_progress
        if (trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking or progress.is_last_batch
                or progress.current.completed % trainer.accumulate_grad_batches):
            return
        signum = self._signalled(trainer)
        if signum:
            self._stop(trainer, signum, validated=True)

    def _stop(self, trainer, signum: int, after_epoch: int | None = None, validated: bool = False) -> None:
        """Notes the stop, after epoch `after_epoch`'s end or inside an epoch (None; `validated`: a validation ran at
        that step), as Lightning notes a SIGTERM: it raises `SIGTERMException` after the running step's end."""
        self._stopping, self._after_epoch, self._validated = signum, after_epoch, validated
        self._mid_epoch = after_epoch is None
        trainer._signal_connector.received_sigterm = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """A signal during an epoch's last step stops the fit once that epoch is done: validated (stopped before its
        validation, the resumed run found the epoch's batches done and went on without ever validating it), saved by
        the checkpoint callbacks (the best checkpoint had been chosen without it), its training means logged (raised
        here, the epoch's `train/*_epoch` row was never written, the resumed run's neither) and counted complete.
        Lightning does all of that after this hook and then raises `SIGTERMException` itself where it has noted a
        SIGTERM (`received_sigterm`), which is set here for either signal."""
        signum = self._signalled(trainer)
        if signum:
            self._stop(trainer, signum, after_epoch=trainer.current_epoch)

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
        exception.code = 128 + (self._stopping or signal.SIGTERM)  # Lightning raises it bare
        if self._validated:
            # Saved as `ModelCheckpoint` saves at a validation's end, before the step is counted for the loggers:
            # Lightning resumes a checkpoint written at a step a validation ran at by running that step's end again,
            # which counts it (else the resumed run logs every step one later than an uninterrupted run).
            trainer.fit_loop.epoch_loop._batches_that_stepped -= 1
        trainer.save_checkpoint(path, weights_only=False)
        if trainer.is_global_zero:
            name = signal.Signals(exception.code - 128).name
            where = (f"at epoch {trainer.current_epoch} step" if self._after_epoch is None else
                     f"after epoch {self._after_epoch}, at step")
            say(f"[infomamba] {name}: stopped {where} {trainer.global_step}, wrote {path}; continue with the same "
                f"command and --ckpt_path last")
