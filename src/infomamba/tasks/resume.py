"""Resuming mid-epoch exactly: the rest of the epoch's batches, in order, with the random streams as saved.

Lightning restores the fit loop's progress (epoch, batch, step), the optimizer and the schedulers from a
checkpoint written mid-epoch (an interrupt's `last.ckpt`), but it can restore the data order only of a
data loader that has `state_dict` / `load_state_dict`; a plain `DataLoader` would start the epoch over.
`ResumeMidEpoch` fills that gap for the `LengthBucketBatchSampler` every task uses: when the run resumes
with `k` batches of the epoch done, the sampler skips those `k` (`load_state_dict`), and the random states
saved with the checkpoint are set once more, so that nothing run between the restore and the first batch
shifts the streams the rest of the epoch draws from.

With loader workers as well: the `ResumableDataLoader` every task builds starts its iterator (and its
workers, which take batches from the sampler at once) only at the first batch, after this callback has
placed the sampler, and a batch's random draws in a worker are seeded by the batch itself
(`sampling.SeedsEachBatch`). Another loader (not a `ResumableDataLoader` over a `LengthBucketBatchSampler`)
restarts the epoch's data, and this is said once.

Lightning (2.5 on) skips `on_train_epoch_start` in an epoch it restarts inside, where the progress bar learns the
epoch's batches and number: the resumed epoch then read "Training: 4/?" (Lightning #20603). The callback runs that
hook of the progress bar at the first resumed batch, and places a TQDM bar at the batches done.

A checkpoint written at an epoch's end (`on_train_epoch_end`, where `LatestCheckpoint` writes `last.ckpt`) is restored
by `ResumingFitLoop`, which `resume_where_saved` gives the trainer: Lightning's fit loop, once `max_steps` was set,
restarted inside that epoch whether or not its batches had all run (see the class).
"""
from __future__ import annotations

from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.loops.fit_loop import _FitLoop
from lightning.pytorch.loops.loop import _Loop
from lightning.pytorch.utilities import CombinedLoader, rank_zero_warn

from .base import own_rng_states, set_rng_states
from .sampling import LengthBucketBatchSampler, ResumableDataLoader


class ResumeMidEpoch(Callback):
    def __init__(self) -> None:
        self._rng_states: dict | None = None
        self._bar_at: int | None = None  # the batches done in the epoch a fit restarted inside, until its first batch

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._rng_states = own_rng_states(checkpoint.get("rng_states"), trainer.global_rank)

    def on_train_start(self, trainer, pl_module) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        states, self._rng_states = self._rng_states, None
        # a finished epoch's counts are the last epoch's: the next one starts at its first batch, also where its
        # batches are now more (a larger limit_train_batches, fewer DDP ranks), which had skipped as many batches
        if states is None or not trainer.fit_loop.restarting or not 0 < done < trainer.num_training_batches:
            return
        self._bar_at = done
        for loader in CombinedLoader(trainer.train_dataloader).flattened:
            if not (isinstance(loader, ResumableDataLoader)
                    and isinstance(loader.batch_sampler, LengthBucketBatchSampler)):
                rank_zero_warn(f"Resuming mid-epoch ({done} of {trainer.num_training_batches} batches done) with "
                               "a train loader that cannot continue the epoch where it stopped (it needs a "
                               "ResumableDataLoader over a LengthBucketBatchSampler): this epoch's batches differ "
                               "from an uninterrupted run's.")
                continue
            loader.batch_sampler.load_state_dict({"epoch": trainer.current_epoch, "batch": done})
        set_rng_states(states)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        done, self._bar_at = self._bar_at, None
        bar = trainer.progress_bar_callback
        if done is None or bar is None:
            return
        bar.on_train_epoch_start(trainer, pl_module)
        if isinstance(bar, TQDMProgressBar) and bar.train_progress_bar is not None:
            bar.train_progress_bar.initial = bar.train_progress_bar.n = done


def uncount_epoch_cut_short(state: dict, prefix: str = "") -> dict:
    """The fit loop's saved state (its keys under `prefix`) with an epoch counted done before its last batch ran
    counted as not done. Lightning counts the epoch processed before `on_train_epoch_end`, where the checkpoint is
    written, also when max_steps (or `trainer.should_stop`) ended it after a few of its batches: a resume then found
    max_epochs reached, or trained the epoch's other batches as the next epoch (another number, another data order;
    with max_steps given) or skipped them (without). Uncounted, the state is that of a checkpoint written inside the
    epoch, which Lightning continues after its last step. Any other state (the epoch's last batch ran, or the
    checkpoint was written inside it) comes back as it is."""
    epochs, batches = state.get(prefix + "epoch_progress"), state.get(prefix + "epoch_loop.batch_progress")
    if epochs is None or batches is None or batches["is_last_batch"] or not batches["current"]["completed"]:
        return state
    now = epochs["current"]
    if not 0 < now["ready"] == now["started"] == now["processed"]:  # not counted done (started, or not begun)
        return state

    def uncounted(progress: dict) -> dict:
        return {**progress, "processed": progress["started"] - 1, "completed": progress["started"] - 1}

    return {**state, prefix + "epoch_progress": {part: uncounted(epochs[part]) for part in ("total", "current")}}


class ResumingFitLoop(_FitLoop):
    """Lightning's fit loop, restoring a checkpoint written at an epoch's end where that epoch stood.

    Lightning 2.6 restarts inside the saved epoch (`_FitLoop.restarting`) when that epoch is unfinished, and always
    where `max_steps` is set (`_iteration_based_training`), for an epoch stopped by max_steps. An epoch whose batches
    had all run was then restarted on its end (`RESTARTED_ON_EPOCH_END`): its batch counters said every batch was
    done, so the loop trained nothing and ended that epoch a second time, counted as the next one
    (`epoch_progress.processed` 1 -> 2), running `on_train_epoch_end` and so rewriting last.ckpt; given both a larger
    max_epochs and a larger max_steps, a fit stopped there (Lightning's "max_epochs=2 reached") and the epoch it was
    to train was lost. Here the saved epoch is counted as far as it ran (`uncount_epoch_cut_short`), and the loop
    restarts inside it exactly when it is unfinished, with or without max_steps; a finished one starts the next
    epoch, as Lightning does without max_steps."""

    def load_state_dict(self, state_dict: dict, prefix: str = "") -> None:
        super().load_state_dict(uncount_epoch_cut_short(state_dict, prefix), prefix)

    @_Loop.restarting.setter
    def restarting(self, restarting: bool) -> None:
        now = self.epoch_progress.current
        _Loop.restarting.fset(self, restarting and not now.ready == now.started == now.processed)


def resume_where_saved(trainer) -> None:
    """Give `trainer` a `ResumingFitLoop`, built as the Trainer builds its fit loop, with the same limits and epoch
    loop (which holds max_steps)."""
    loop = trainer.fit_loop
    trainer.fit_loop = ResumingFitLoop(trainer, min_epochs=loop.min_epochs, max_epochs=loop.max_epochs)
    trainer.fit_loop.epoch_loop = loop.epoch_loop
