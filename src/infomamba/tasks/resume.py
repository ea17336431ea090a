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
"""
from __future__ import annotations

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import CombinedLoader, rank_zero_warn

from .base import own_rng_states, set_rng_states
from .sampling import LengthBucketBatchSampler, ResumableDataLoader


class ResumeMidEpoch(Callback):
    def __init__(self) -> None:
        self._rng_states: dict | None = None

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._rng_states = own_rng_states(checkpoint.get("rng_states"), trainer.global_rank)

    def on_train_start(self, trainer, pl_module) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        states, self._rng_states = self._rng_states, None
        if states is None or not 0 < done < trainer.num_training_batches:
            return
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
