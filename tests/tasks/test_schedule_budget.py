"""ScheduleBudget: a fit whose max_time ends it before its learning-rate schedule does says so once, with the
max_epochs (or max_steps, where that ends the schedule) that would finish it in time; a fit without max_time, or
with time enough, says nothing."""
import itertools
import re
import warnings

import pytest

from infomamba.cli import main
from infomamba.tasks import schedule_budget
from infomamba.tasks.schedule_budget import reachable

TINY_TEXT = ["fit", "--task", "text", "--data.listops_size=64", "--data.batch_size=16", "--model.encoder.dim=16",
             "--model.encoder.depth=1", "--model.encoder.mixer=attention", "--trainer.enable_progress_bar=false",
             "--trainer.enable_model_summary=false", "--trainer.enable_checkpointing=false", "--trainer.max_epochs=6"]


def test_reachable():
    assert reachable(2, 100.0, 299.0) == 4
    assert reachable(2, 100.0, 300.0) == 5
    assert reachable(2, 100.0, -5.0) == 2
    assert reachable(2, 0.0, 10.0) > 10**6


def _fit(monkeypatch, tmp_path, seconds_per_epoch: float, extra: list[str]) -> list[str]:
    """Run the tiny fit with ScheduleBudget's clock advancing `seconds_per_epoch` per epoch; its warnings."""
    clock = itertools.count(step=seconds_per_epoch)  # read at each epoch's start and end
    monkeypatch.setattr(schedule_budget.ScheduleBudget, "clock", staticmethod(lambda: next(clock)))
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main([*TINY_TEXT, *extra])
    return [str(w.message) for w in caught if "max_time will stop" in str(w.message)]


def test_a_fit_that_max_time_will_cut_short_is_told_which_max_epochs_fits(monkeypatch, tmp_path):
    said = _fit(monkeypatch, tmp_path, 100.0, ["--trainer.max_time=00:00:05:00"])
    assert len(said) == 1, said  # once, after the second epoch
    # 4 steps an epoch (64 samples, batch 16): after epoch 1, 8 steps done at 25 s each, 300 s (less the real
    # seconds the fit took) left: 11 or 12 more of the schedule's 24, and epoch 4
    assert re.search(r"about step (19|20) of the 24 .* about epoch 4\b", said[0]), said[0]
    assert "--trainer.max_epochs=4 would finish it" in said[0], said[0]


def test_where_max_steps_ends_the_schedule_it_is_max_steps_that_is_named(monkeypatch, tmp_path):
    said = _fit(monkeypatch, tmp_path, 100.0, ["--trainer.max_time=00:00:00:30", "--trainer.max_steps=10"])
    assert len(said) == 1 and "about step 9 of the 10 " in said[0], said
    assert "--trainer.max_steps=9 would finish it" in said[0], said[0]


@pytest.mark.parametrize("extra", [[], ["--trainer.max_time=00:00:05:00"]], ids=["no max_time", "time enough"])
def test_nothing_is_said_when_the_schedule_fits(monkeypatch, tmp_path, extra):
    assert _fit(monkeypatch, tmp_path, 100.0 if not extra else 10.0, extra) == []


def test_a_resumed_fit_whose_run_spent_its_max_time_says_it_trains_nothing(monkeypatch, tmp_path):
    """max_time is the whole run's (Lightning's Timer carries the elapsed time in the checkpoint): a resume with the
    same max_time stops before its first step, and says so; a larger one trains on without the note."""
    import torch

    monkeypatch.chdir(tmp_path)
    args = [a for a in TINY_TEXT if a != "--trainer.enable_checkpointing=false" and "max_epochs" not in a]
    args += ["--trainer.max_epochs=1000", "--trainer.limit_val_batches=1"]
    last = tmp_path / "runs" / "text" / "version_0" / "checkpoints" / "last.ckpt"

    def fit(max_time: str, *extra: str) -> tuple[list[str], int]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            main([*args, f"--trainer.max_time={max_time}", *extra])
        said = [str(w.message) for w in caught if "spent its max_time" in str(w.message)]
        return said, torch.load(last, map_location="cpu", weights_only=False)["global_step"]

    said, first = fit("00:00:00:01")
    assert said == [] and first > 0
    said, again = fit("00:00:00:01", "--ckpt_path", "last")
    assert len(said) == 1 and "continue it with a larger --trainer.max_time" in said[0], said
    assert again == first
    said, more = fit("00:00:00:03", "--ckpt_path", "last")
    assert said == [] and more > first
