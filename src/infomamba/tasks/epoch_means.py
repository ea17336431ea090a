"""A training epoch's means carried across a mid-epoch resume.

What a task logs with `on_epoch` (`train/<name>_epoch` in metrics.csv and the epoch's console line) is summed over
the epoch in Lightning's result collection of the fit loop, which no checkpoint holds, and in torchmetrics states
(`train/acc`), which are not in the module's state_dict. A run resumed mid-epoch (`ResumeMidEpoch`) had therefore
reported means over the batches after the resume alone, unmarked. `EpochMeansAcrossResume` saves with each
checkpoint written mid-epoch the sums behind every epoch mean of every DDP rank (each rank logs its own: the sums are
gathered), and after the resumed run's first step, once the same metrics exist again, adds each rank's back into its
sums. A run resumed on another number of ranks (each rank's share of the epoch changed) or into another epoch carries
nothing, and says so for the former.
"""
from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn


def epoch_sums(results: dict) -> dict:
    """{key: sums} of what a result collection (Lightning's, key -> `_ResultMetric`) averages or sums over the epoch,
    on the CPU: a logged tensor's running sum (and, for a mean, the batch size it is weighted by), a logged
    torchmetrics metric's states."""
    sums = {}
    for key, result in results.items():
        if not result.meta.on_epoch:
            continue
        if not result.is_tensor:
            sums[key] = {"metric": _to(result.value.metric_state, "cpu")}
        elif result.meta.is_mean_reduction:
            sums[key] = {"value": result.value.cpu(), "count": result.cumulated_batch_size.cpu()}
        elif result.meta.is_sum_reduction:
            sums[key] = {"value": result.value.cpu()}
    return sums


def add_sums(results: dict, sums: dict) -> None:
    """Add `epoch_sums` of the same run's earlier batches into a result collection's running sums (a key this run has
    not logged yet is left out)."""
    for key, saved in sums.items():
        result = results.get(key)
        if result is None:
            continue
        if "metric" in saved:
            result.value.merge_state(_to(saved["metric"], result.value.device))
            continue
        result.value = result.value + saved["value"].to(result.value)
        if "count" in saved:
            result.cumulated_batch_size = result.cumulated_batch_size + saved["count"].to(result.cumulated_batch_size)


def _to(state: dict, device) -> dict:
    """A torchmetrics state (tensors, or lists of them) on `device`."""
    def moved(value):
        return [v.to(device) for v in value] if isinstance(value, list) else value.to(device)
    return {name: moved(value) for name, value in state.items()}


def _every_rank(value, trainer) -> list:
    """`value` of each DDP rank, by rank (a collective: every rank calls it, as every rank saves a checkpoint)."""
    if trainer.world_size == 1 or not torch.distributed.is_initialized():
        return [value]
    gathered = [None] * trainer.world_size
    torch.distributed.all_gather_object(gathered, value)
    return gathered


class EpochMeansAcrossResume(Callback):
    def __init__(self) -> None:
        self._trainer = None
        self._saved: dict | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict:
        trainer = self._trainer
        if trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return {}
        loop = trainer.fit_loop.epoch_loop
        done = loop.batch_progress.current.processed
        if not 0 < done < trainer.num_training_batches:
            return {}
        ranks = _every_rank(epoch_sums(loop._results), trainer)
        return {"epoch": trainer.current_epoch, "batches": done, "ranks": ranks}

    def load_state_dict(self, state_dict: dict) -> None:
        self._saved = state_dict or None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        saved, self._saved = self._saved, None
        if saved is None or saved["epoch"] != trainer.current_epoch or saved["batches"] != batch_idx:
            return
        if len(saved["ranks"]) != trainer.world_size:
            rank_zero_warn(f"Resumed on {trainer.world_size} process(es) from a checkpoint of {len(saved['ranks'])}: "
                           f"epoch {trainer.current_epoch}'s training means cover the batches since the resume only.")
            return
        add_sums(trainer.fit_loop.epoch_loop._results, saved["ranks"][trainer.global_rank])
