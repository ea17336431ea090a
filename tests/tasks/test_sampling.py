"""LengthBucketBatchSampler: DDP split, determinism, token budget, padding saved by bucketing; the seeded batches
that make worker-side random draws independent of the worker; the loader whose iterator starts late."""

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from torch.utils.data import DataLoader, Dataset

from infomamba.tasks.base import RunRefused
from infomamba.tasks.sampling import LengthBucketBatchSampler, ResumableDataLoader, SeedsEachBatch, check_token_budget


def _lengths(n=1000, seed=0):
    return np.random.default_rng(seed).integers(1, 500, size=n).tolist()


def _rank_batches(lengths, world=2, epoch=0, **kwargs):
    samplers = [LengthBucketBatchSampler(lengths, num_replicas=world, rank=r, **kwargs) for r in range(world)]
    for s in samplers:
        s.set_epoch(epoch)
    return [list(s) for s in samplers], samplers


@pytest.mark.parametrize("budget", [{"batch_size": 16}, {"max_tokens": 4000}])
def test_eval_covers_every_sample_exactly_once_over_ranks(budget):
    lengths = _lengths(1003)
    per_rank, samplers = _rank_batches(lengths, shuffle=False, **budget)
    flat = [i for batches in per_rank for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert abs(len(per_rank[0]) - len(per_rank[1])) <= 1
    assert [len(s) for s in samplers] == [len(b) for b in per_rank]
    # deterministic and sorted by decreasing length
    again, _ = _rank_batches(lengths, shuffle=False, epoch=5, **budget)
    assert again == per_rank
    firsts = [lengths[b[0]] for b in per_rank[0]]
    assert firsts == sorted(firsts, reverse=True)


@pytest.mark.parametrize("budget", [{"batch_size": 16}, {"max_tokens": 4000}])
def test_eval_gives_every_rank_a_batch_when_the_split_fits_in_fewer_batches_than_ranks(budget):
    """Lightning stops a DDP run whose loader is empty on a rank (a validation split of 5 samples, batch 16,
    on 4 ranks crashed the fit); the samples are spread so that each rank has one."""
    lengths = [40, 7, 300, 12, 3]
    per_rank, _ = _rank_batches(lengths, world=4, shuffle=False, **budget)
    assert all(per_rank)
    assert sorted(i for batches in per_rank for b in batches for i in b) == list(range(5))


@pytest.mark.parametrize("budget", [{"batch_size": 16}, {"max_tokens": 4000}])
def test_train_ranks_disjoint_equal_counts(budget):
    lengths = _lengths(1003)
    per_rank, samplers = _rank_batches(lengths, shuffle=True, **budget)
    assert len(per_rank[0]) == len(per_rank[1]) == len(samplers[0]) == len(samplers[1]) > 0
    seen = [set(i for b in batches for i in b) for batches in per_rank]
    assert not seen[0] & seen[1]
    everything = [i for batches in per_rank for b in batches for i in b]
    assert len(everything) == len(set(everything))
    if "batch_size" in budget:  # at most the remainder batch (plus a short one) is dropped
        assert len(everything) >= len(lengths) - 2 * budget["batch_size"]


def test_train_determinism_per_epoch_and_change_across_epochs():
    lengths = _lengths()
    a = LengthBucketBatchSampler(lengths, batch_size=8, seed=3)
    b = LengthBucketBatchSampler(lengths, batch_size=8, seed=3)
    assert list(a) == list(b)
    a.set_epoch(1)
    epoch1 = list(a)
    assert epoch1 != list(b)
    b.set_epoch(1)
    assert list(b) == epoch1
    assert list(LengthBucketBatchSampler(lengths, batch_size=8, seed=4)) != list(
        LengthBucketBatchSampler(lengths, batch_size=8, seed=3))


def test_max_tokens_respected_and_len_exact_every_epoch():
    lengths = _lengths()
    sampler = LengthBucketBatchSampler(lengths, max_tokens=3000, bucket_size_multiplier=10)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert all(len(b) * max(lengths[i] for i in b) <= 3000 for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_bucketing_reduces_padding():
    lengths = np.asarray(_lengths(4000))

    def padding(batches):
        return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in map(np.asarray, batches))

    bucketed = list(LengthBucketBatchSampler(lengths, batch_size=32))
    order = np.random.default_rng(0).permutation(len(lengths))
    random_batches = [order[i : i + 32] for i in range(0, len(order), 32)]
    assert padding(bucketed) < 0.1 * padding(random_batches)


def test_drop_last_keeps_full_batches_only():
    batches = list(LengthBucketBatchSampler(_lengths(1003), batch_size=10, drop_last=True))
    assert all(len(b) == 10 for b in batches) and len(batches) == 100


def test_lightning_reaches_set_epoch_through_the_dataloader():
    sampler = LengthBucketBatchSampler(_lengths(), batch_size=8)
    loader = DataLoader(list(range(1000)), batch_sampler=sampler)
    _set_sampler_epoch(loader, 7)
    assert sampler.epoch == 7


def test_errors():
    with pytest.raises(ValueError, match="exactly one"):
        LengthBucketBatchSampler([3, 4])
    with pytest.raises(ValueError, match="exactly one"):
        LengthBucketBatchSampler([3, 4], batch_size=2, max_tokens=10)
    with pytest.raises(ValueError, match="longest sample"):
        LengthBucketBatchSampler([3, 40], max_tokens=10)
    with pytest.raises(ValueError, match="drop_last"):
        LengthBucketBatchSampler([3, 4], batch_size=2, shuffle=False, drop_last=True)
    with pytest.raises(ValueError, match="rank"):
        LengthBucketBatchSampler([3, 4], batch_size=2, num_replicas=2, rank=2)
    with pytest.raises(RunRefused, match=r"^the training split makes 1 batch\(es\) of its 2 sample\(s\) for 2 "
                                         r"processes \(DDP ranks\), .*or fewer devices$"):  # the CLI's one line
        len(LengthBucketBatchSampler([3, 4], batch_size=2, num_replicas=2))


def test_load_state_dict_continues_the_epoch_after_the_batches_done():
    lengths = _lengths(200)
    first = LengthBucketBatchSampler(lengths, batch_size=8, seed=1)
    first.set_epoch(3)
    batches = iter(first)
    done = [next(batches) for _ in range(5)]
    assert first.state_dict() == {"epoch": 3, "batch": 5}

    resumed = LengthBucketBatchSampler(lengths, batch_size=8, seed=1)
    resumed.load_state_dict(first.state_dict())
    resumed.set_epoch(3)  # Lightning sets the epoch again before the loop starts
    assert len(resumed) == len(first)
    rest = list(resumed)
    assert rest == list(batches) and len(done) + len(rest) == len(first)
    assert list(resumed) == done + rest  # iterated again, the epoch is whole


def test_batch_seeds_differ_by_batch_epoch_rank_and_run_seed_and_repeat_otherwise():
    def seeds(epoch=0, rank=0, torch_seed=0):
        torch.manual_seed(torch_seed)
        sampler = LengthBucketBatchSampler(_lengths(200), batch_size=8, num_replicas=2, rank=rank)
        sampler.set_epoch(epoch)
        return [batch.seed for batch in sampler]

    base = seeds()
    assert len(set(base)) == len(base)
    assert seeds() == base
    for other in (seeds(epoch=1), seeds(rank=1), seeds(torch_seed=1)):
        assert not set(other) & set(base)


class RandomItems(SeedsEachBatch, Dataset):
    """Each item is a draw of the global torch stream, as an augmentation's would be."""

    def __len__(self):
        return 48

    def __getitem__(self, index):
        return torch.rand(())


def _epoch(num_workers, resume_at=0):
    torch.manual_seed(0)
    sampler = LengthBucketBatchSampler([1] * 48, batch_size=4, seed=3)
    sampler.load_state_dict({"epoch": 2, "batch": resume_at})
    loader = ResumableDataLoader(RandomItems(), batch_sampler=sampler, num_workers=num_workers)
    return list(loader)


def test_worker_draws_depend_on_the_batch_not_on_the_worker_or_where_the_epoch_resumed():
    one, two = _epoch(1), _epoch(2)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
    assert len({tuple(batch.tolist()) for batch in one}) == len(one)
    assert all(torch.equal(a, b) for a, b in zip(_epoch(2, resume_at=5), one[5:], strict=True))


def test_the_main_process_keeps_its_own_stream():
    torch.manual_seed(0)
    expected = torch.rand(48)
    assert torch.equal(torch.cat(_epoch(0)), expected)


def test_iterators_draw_nothing_from_the_global_stream():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    loader = ResumableDataLoader(list(range(8)), batch_sampler=LengthBucketBatchSampler([1] * 8, batch_size=4))
    assert len(list(loader)) == len(list(loader)) == 2
    assert torch.equal(torch.rand(3), expected)


def test_the_iterator_starts_at_the_first_batch():
    sampler = LengthBucketBatchSampler([1] * 16, batch_size=4, seed=0)
    loader = ResumableDataLoader(list(range(16)), batch_sampler=sampler, num_workers=1)
    iterator = iter(loader)
    sampler.load_state_dict({"epoch": 1, "batch": 2})  # after iter(), as Lightning's order is when a run resumes
    placed = [batch.tolist() for batch in iterator]
    sampler.set_epoch(1)
    assert placed == list(sampler)[2:] and len(placed) == 2


def test_loader_workers_are_capped_at_the_cpus_the_process_may_use(monkeypatch, caplog):
    """A recipe's num_workers (8, set for a GPU machine) on a 2-CPU machine: 2 workers, said once; fewer stay."""
    import os

    import infomamba.tasks.sampling as sampling

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    sampling._say_capped.cache_clear()
    with caplog.at_level("INFO"):
        loaders = [ResumableDataLoader(list(range(8)), batch_size=4, num_workers=n) for n in (8, 8, 2, 1, 0)]
    assert [loader.num_workers for loader in loaders] == [2, 2, 2, 1, 0]
    assert sum("data.num_workers=8" in r.getMessage() for r in caplog.records) == 1
    batches = list(ResumableDataLoader(list(range(8)), batch_size=4, num_workers=8))
    assert sorted(torch.cat(batches).tolist()) == list(range(8))


def test_token_budget_names_the_options_of_its_section():
    check_token_budget(None, [5, 50])
    check_token_budget(50, [5, 50])
    check_token_budget(10, [])
    with pytest.raises(ValueError, match=r"^data.max_tokens=10 is smaller than the longest sample \(50 tokens\); raise "
                                         r"data.max_tokens or truncate the samples \(data.max_length\).$"):
        check_token_budget(10, [5, 50], "data.")
