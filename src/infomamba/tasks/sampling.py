"""Length-bucketed, DDP-aware batch sampler for variable-length samples (text, speech).

Batches hold samples of similar length, so dynamic padding (pad to the batch maximum) wastes little.

Training (``shuffle=True``), per epoch: a permutation seeded by ``seed + epoch`` is cut into buckets of
``bucket_size_multiplier`` batches' worth of samples; each bucket is sorted by length and cut into
batches; the batch order is shuffled; rank ``r`` of ``R`` takes batches ``r, r + R, ...``. Every rank
gets the same number of batches: the ``len(batches) % R`` last batches of the shuffled order are dropped
for the epoch (a different random few each epoch), because a rank with one step more than the others
would wait forever in DDP's gradient all-reduce.

Evaluation (``shuffle=False``): no randomness; all samples sorted by decreasing length (the largest batch
comes first, so an out-of-memory error shows at once), cut into batches, and batch ``i`` goes to rank
``i % R``. Every sample is seen exactly once over all ranks (no padding with duplicates, unlike
``DistributedSampler``), so a metric whose state is summed over ranks (torchmetrics) equals the metric
over the whole set. Rank batch counts may differ by one: sync metrics at epoch end (torchmetrics
``compute``), never with a per-step collective. Every rank must have a batch (its collectives at epoch end):
``every_rank_evaluates`` refuses a split with fewer samples than ranks, or a fractional ``limit_val_batches`` that
leaves the smaller shares none (``limit_leaves_every_rank_a_batch``, predict too). Training: fewer batches than
ranks is refused (`RunRefused`, one line).

Batch size is either a fixed count (``batch_size``) or a padding-aware token budget (``max_tokens``):
``len(batch) * max(length in batch) <= max_tokens``.

Resuming mid-epoch: ``state_dict()`` says how far the current epoch went and ``load_state_dict()`` makes
the next iteration continue that epoch after the batches already done (`infomamba.tasks.resume` does this
when a run resumes from a checkpoint written mid-epoch), so a resumed run sees the batches an
uninterrupted run would have seen. ``ResumableDataLoader`` is the loader every task builds on it: its
iterator (and, with ``num_workers > 0``, its worker processes, which take batches from the sampler as soon
as they exist) starts at the first batch asked for, not when Lightning builds it before any callback has
run, and it draws nothing from the global random stream.

Random draws in worker processes: each batch carries a seed (``SeededBatch.seed``, from the run's torch
seed, the sampler's seed, the epoch, the rank and the batch's place in the epoch), and a dataset with ``SeedsEachBatch``
reseeds the worker's torch, NumPy and Python streams with it before loading the batch, so the batch's
augmentation (and the collate function's, which draws after it in the same worker) depends on the batch
alone: not on which worker loaded it, nor on where an interrupted epoch resumed. In the main process
(``num_workers=0``) nothing is reseeded: the global streams are the run's own, saved with checkpoints.
"""

from __future__ import annotations

import functools
import math
import os
import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Sampler, get_worker_info

from .base import RunRefused


def check_token_budget(max_tokens: int | None, lengths: Sequence[int], prefix: str = "") -> None:
    """ValueError when a batch of ``max_tokens`` (None: batches counted in samples) cannot hold the longest of
    ``lengths`` alone; ``prefix`` ("data.") is the options' section. A data module checks its splits in ``setup``,
    where the CLI says it in one line: the sampler is built in a dataloader hook, whose error had reached the user
    as a traceback."""
    longest = max(1, int(np.max(lengths, initial=0)))
    if max_tokens is not None and max_tokens < longest:
        raise ValueError(
            f"{prefix}max_tokens={max_tokens} is smaller than the longest sample ({longest} tokens); raise "
            f"{prefix}max_tokens or truncate the samples ({prefix}max_length)."
        )


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices whose samples have similar lengths.

    Args:
        lengths: length (e.g. token count after truncation) of every sample of the dataset.
        batch_size: samples per batch. Exactly one of ``batch_size`` and ``max_tokens`` is given.
        max_tokens: padding-aware token budget per batch: ``len(batch) * longest <= max_tokens``.
            Must be at least the longest sample. The batch count can then change a little from epoch
            to epoch (buckets differ); ``len()`` is exact for the current epoch.
        shuffle: training mode (random buckets and batch order, equal batch count on every rank) if
            True; evaluation mode (deterministic, every sample exactly once over all ranks) if False.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        drop_last: training only (with ``batch_size``): drop the one batch with fewer than
            ``batch_size`` samples. Refused with ``shuffle=False``, where every sample must be seen.
        num_replicas: number of DDP ranks (world size).
        rank: this process's rank in ``[0, num_replicas)``.
        bucket_size_multiplier: a bucket holds this many batches' worth of samples; larger buckets pad
            less but make batches less random.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int | None = None,
        max_tokens: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
        bucket_size_multiplier: int = 100,
    ) -> None:
        self._lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if self._lengths.size == 0:
            raise ValueError("LengthBucketBatchSampler got no samples (lengths is empty).")
        if (self._lengths < 0).any():
            raise ValueError("LengthBucketBatchSampler: lengths must be >= 0.")
        if (batch_size is None) == (max_tokens is None):
            raise ValueError(
                f"Give exactly one of batch_size and max_tokens (got batch_size={batch_size}, "
                f"max_tokens={max_tokens})."
            )
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        check_token_budget(max_tokens, self._lengths)
        if drop_last and not shuffle:
            raise ValueError("drop_last=True with shuffle=False would skip evaluation samples; refused.")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"Need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas}, {rank}.")
        if bucket_size_multiplier < 1:
            raise ValueError(f"bucket_size_multiplier must be >= 1, got {bucket_size_multiplier}.")
        # Kept private on purpose: an object with public `batch_size` and `drop_last` looks to Lightning
        # like a BatchSampler it may rebuild as `cls(sampler, batch_size=..., drop_last=...)`.
        self._batch_size = batch_size
        self._max_tokens = max_tokens
        self._shuffle = shuffle
        self._seed = seed
        self._drop_last = drop_last
        self._num_replicas = num_replicas
        self._rank = rank
        self._bucket_size_multiplier = bucket_size_multiplier
        self.epoch = 0
        self._start = 0  # batches of `epoch` that the next iteration skips (set by load_state_dict)
        self._yielded = 0  # batches of `epoch` handed out so far
        self._cache: tuple[int, list[list[int]]] | None = None

    @property
    def sampler(self) -> LengthBucketBatchSampler:
        """This sampler itself: Lightning calls ``set_epoch`` on ``dataloader.batch_sampler.sampler``."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle of ``epoch`` (seed ``seed + epoch``); no effect with ``shuffle=False``."""
        if epoch != self.epoch:
            self.epoch, self._start, self._yielded = epoch, 0, 0

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: the epoch and the start are read at the first batch, not when the DataLoader iterator
        # is built (Lightning builds the first one before it calls set_epoch, e.g. when a run resumes).
        batches = self._rank_batches()
        self._yielded, self._start = self._start, 0
        for batch in batches[self._yielded:]:
            seed = np.random.SeedSequence([torch.initial_seed(), self._seed, self.epoch, self._rank,
                                           self._yielded]).generate_state(1)
            self._yielded += 1
            yield SeededBatch(batch, int(seed[0]))

    def state_dict(self) -> dict[str, int]:
        """How far the current epoch went: ``{"epoch": e, "batch": batches handed out in epoch e}``."""
        return {"epoch": self.epoch, "batch": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue epoch ``state["epoch"]`` after its first ``state["batch"]`` batches: the next iteration
        yields the rest of that epoch's batches (``len()`` stays the whole epoch's count)."""
        self.epoch = state["epoch"]
        self._start = state["batch"]

    def __len__(self) -> int:
        return len(self._rank_batches())

    def fewest_batches(self) -> int:
        """The fewest batches a rank dealt any has this epoch (in evaluation the ranks' counts differ by at most one;
        with fewer samples than ranks, the ranks dealt one have one batch)."""
        return max(1, len(self._global_batches()) // self._num_replicas)

    def _rank_batches(self) -> list[list[int]]:
        """This rank's batches for the current epoch (cached per epoch)."""
        if self._cache is None or self._cache[0] != self.epoch:
            batches = self._global_batches()
            step = self._num_replicas
            if self._shuffle:
                per_rank = len(batches) // step
                if per_rank == 0:
                    raise RunRefused(
                        f"the training split makes {len(batches)} batch(es) of its {self._lengths.size} sample(s) "
                        f"for {step} processes (DDP ranks), and every rank needs one per step: use a smaller batch "
                        "(data.batch_size / data.max_tokens) or fewer devices"
                    )
                mine = batches[self._rank : per_rank * step : step]
            else:
                mine = batches[self._rank :: step]
            self._cache = (self.epoch, mine)
        return self._cache[1]

    def _global_batches(self) -> list[list[int]]:
        """All batches of the epoch, in the order they are dealt to the ranks."""
        if not self._shuffle:
            order = np.argsort(-self._lengths, kind="stable")
            batches = self._pack(order)
            if len(batches) < self._num_replicas:  # a rank left without a batch stops Lightning (under DDP)
                return [part.tolist() for part in np.array_split(order, min(self._num_replicas, order.size))]
            return batches
        rng = np.random.default_rng(self._seed + self.epoch)
        perm = rng.permutation(self._lengths.size)
        bucket = self._bucket_samples()
        batches: list[list[int]] = []
        for start in range(0, perm.size, bucket):
            chunk = perm[start : start + bucket]
            batches.extend(self._pack(chunk[np.argsort(-self._lengths[chunk], kind="stable")]))
        if self._drop_last and self._batch_size is not None:
            batches = [b for b in batches if len(b) == self._batch_size]
        return [batches[i] for i in rng.permutation(len(batches))]

    def _bucket_samples(self) -> int:
        """Number of samples per bucket."""
        if self._batch_size is not None:
            per_batch = self._batch_size
        else:
            per_batch = max(1, self._max_tokens // max(1, int(self._lengths.mean())))
        return per_batch * self._bucket_size_multiplier

    def _pack(self, order: np.ndarray) -> list[list[int]]:
        """Cut indices sorted by decreasing length into batches."""
        if self._batch_size is not None:
            return [order[i : i + self._batch_size].tolist() for i in range(0, order.size, self._batch_size)]
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for index in order.tolist():
            longest_if_added = max(longest, int(self._lengths[index]), 1)
            if current and (len(current) + 1) * longest_if_added > self._max_tokens:
                batches.append(current)
                current, longest_if_added = [], max(int(self._lengths[index]), 1)
            current.append(index)
            longest = longest_if_added
        if current:
            batches.append(current)
        return batches


def every_rank_evaluates(split: str, loader: DataLoader, trainer, limit: str) -> DataLoader:
    """``loader`` of the evaluated ``split``, refused (`RunRefused`, one line) where a DDP rank would evaluate none
    of it (``trainer`` None: no trainer, one process; ``limit``: the trainer's setting that limits the split,
    ``limit_val_batches`` or ``limit_test_batches``).

    A rank dealt no batch stops Lightning with a traceback on that rank alone; were it allowed, the rank would skip
    the evaluation loop and with it the collectives that sync the metrics at the epoch's end, which the other ranks
    then wait in (filling it with a repeated sample would count that sample twice in the synced metric). A rank has
    none when the split has fewer samples than ranks, or by ``limit`` (`limit_leaves_every_rank_a_batch`). Predict
    allows a rank dealt no input (`JsonLinesPredictionWriter` gathers in ``teardown``)."""
    ranks = trainer.world_size if trainer is not None else 1
    samples = len(loader.dataset)
    if 0 < samples < ranks:
        raise RunRefused(f"the {split} split has {samples} sample(s) for {ranks} processes (DDP ranks), and every "
                         f"rank must evaluate at least one: evaluate it on at most {samples} device(s) "
                         f"(--trainer.devices={samples}) or give it more samples")
    return limit_leaves_every_rank_a_batch(split, loader, trainer, limit)


def limit_leaves_every_rank_a_batch(split: str, loader: DataLoader, trainer, limit: str) -> DataLoader:
    """``loader``, refused (`RunRefused`, one line) where the trainer's fractional ``limit`` (``limit_val_batches``,
    ``limit_test_batches``, ``limit_predict_batches``) leaves a rank that was dealt batches none of them. Lightning
    applies the fraction to each rank's share and stops the rank it rounds to none with a traceback, on that rank
    alone, while the others wait for it: the ranks' evaluation shares differ by one batch, so 0.5 of 3 batches on 2
    ranks (2 and 1) did, where one process evaluates 1 of the 3."""
    fraction = getattr(trainer, limit, 1.0)
    fewest = loader.batch_sampler.fewest_batches()
    if isinstance(fraction, float) and 0.0 < fraction and int(fewest * fraction) == 0:
        ranks = trainer.world_size if trainer is not None else 1
        raise RunRefused(f"trainer.{limit}={fraction} leaves a rank none of the {split} split: its {ranks} "
                         f"process(es) take {fewest} batch(es) or more each, and {fraction} x {fewest} < 1; give "
                         f"{limit} at least {math.ceil(1000 / fewest) / 1000:g}, or a whole number of batches")
    return loader


def padded_length(longest: int, multiple: int | None, cap: int | None = None) -> int:
    """A batch's padded length: its longest sample's, or rounded up to a multiple of ``multiple`` (at most
    ``cap``, never below ``longest``). Few distinct batch shapes let ``model.cuda_graphs`` replay its captures."""
    if multiple is None:
        return longest
    rounded = -(-longest // multiple) * multiple
    return max(longest, rounded if cap is None else min(rounded, cap))


class SeededBatch(list):
    """A batch's sample indices, with the seed of its random draws in a worker process (see ``SeedsEachBatch``)."""

    def __init__(self, indices: Sequence[int], seed: int) -> None:
        super().__init__(indices)
        self.seed = seed


class SeedsEachBatch:
    """Mixin for a map-style Dataset whose items draw random numbers (training augmentation): in a loader
    worker, each ``SeededBatch`` first reseeds the worker's torch, NumPy and Python random streams with its
    seed (DataLoader fetches a batch through ``__getitems__`` when the dataset has one)."""

    def __getitems__(self, indices: Sequence[int]) -> list:
        seed = getattr(indices, "seed", None)
        if seed is not None and get_worker_info() is not None:
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
        return [self[i] for i in indices]


class _DeferredIterator:
    """An iterator that builds the one it stands for at its first ``next()``."""

    def __init__(self, build) -> None:
        self._build, self._iterator = build, None

    def __iter__(self) -> _DeferredIterator:
        return self

    def __next__(self):
        if self._iterator is None:
            self._iterator = self._build()
        return next(self._iterator)


def usable_workers(requested: int) -> int:
    """`requested` loader workers, at most the CPUs this process may run on (a recipe's `num_workers` was set for
    a GPU machine; on a laptop the extra workers only contend, and PyTorch warns that they may freeze). A batch's
    random draws in a worker are seeded by the batch (`SeedsEachBatch`), so the cap leaves the run's data as it is."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if requested > cpus:
        _say_capped(requested, cpus)
    return min(requested, cpus)


@functools.cache
def _say_capped(requested: int, cpus: int) -> None:
    rank_zero_info(f"data.num_workers={requested}: this process may run on {cpus} CPUs, so {cpus} workers")


class ResumableDataLoader(DataLoader):
    """A DataLoader that a mid-epoch resume can place before it loads anything, and that leaves the run's
    random stream alone.

    Lightning builds the training iterator in ``FitLoop.setup_data``, before ``on_train_start``; a worker
    process takes its first batches from the sampler the moment the iterator exists. Here ``iter()`` returns
    an iterator that starts at the first batch asked for, after ``infomamba.tasks.resume`` has placed the
    sampler. Each iterator draws the workers' base seed from the loader's own generator (seeded from the
    run's torch seed), not from the global stream: whether an iterator is built anew (no workers) or reset
    (persistent workers), and whether validation ran a sanity check first, then leaves the training's
    random draws unchanged.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("generator", torch.Generator().manual_seed(torch.initial_seed()))
        kwargs["num_workers"] = usable_workers(kwargs.get("num_workers", 0))
        super().__init__(*args, **kwargs)

    def __iter__(self) -> _DeferredIterator:
        return _DeferredIterator(super().__iter__)
