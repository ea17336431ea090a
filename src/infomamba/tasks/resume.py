"""Resuming mid-epoch exactly: the rest of the epoch's batches, in order, with the random streams as saved.

Lightning restores the fit loop's progress (epoch, batch, step), the optimizer and the schedulers from a
checkpoint written mid-epoch (an interrupt's `last.ckpt`), but it can restore the data order only of a
data loader that has `state_dict` / `load_state_dict`; a plain `DataLoader` would start the epoch over.
`ResumeMidEpoch` fills that gap for the `LengthBucketBatchSampler` every task uses: when the run resumes
with `k` batches of the epoch done, the sampler skips those `k` (`load_state_dict`), and the random states
saved with the checkpoint are set once more, because building the data loader's iterator since the
restore has drawn from the global generator (an uninterrupted run drew at the start of the epoch).

Exact with `num_workers=0`; worker processes take their first batches from the sampler as soon as the
iterator is built, before any callback runs, so with workers the resumed epoch is not the same and this
is said once.
"""
from __future__ import annotations

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import CombinedLoader, rank_zero_warn
from torch.utils.data import DataLoader

from .base import set_rng_states
from .sampling import LengthBucketBatchSampler


class ResumeMidEpoch(Callback):
    def __init__(self) -> None:
        self._rng_states: dict | None = None

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._rng_states = checkpoint.get("rng_states")

    def on_train_start(self, trainer, pl_module) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        states, self._rng_states = self._rng_states, None
        if states is None or not 0 < done < trainer.num_training_batches:
            return
        for loader in CombinedLoader(trainer.train_dataloader).flattened:
            if not (isinstance(loader, DataLoader) and isinstance(loader.batch_sampler, LengthBucketBatchSampler)
                    and loader.num_workers == 0):
                rank_zero_warn(f"Resuming mid-epoch ({done} of {trainer.num_training_batches} batches done) with "
                               "a train loader that cannot continue the epoch where it stopped (it needs a "
                               "LengthBucketBatchSampler and num_workers=0): this epoch's batches differ from an "
                               "uninterrupted run's.")
                continue
            loader.batch_sampler.load_state_dict({"epoch": trainer.current_epoch, "batch": done})
        set_rng_states(states)
