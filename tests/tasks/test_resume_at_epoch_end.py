"""tasks/resume.py: a fit resumed from a last.ckpt written at an epoch's end goes on where that epoch stood, through
the real CLI: the next epoch after one whose batches all ran (also with max_steps given, which Lightning had resumed
by ending the finished epoch again and training nothing), the rest of one a max_steps stop cut short (Lightning had
counted it done); a resume with nothing to train says so and leaves the checkpoints as they were."""
import os
import re
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from infomamba.cli import main
from infomamba.tasks.resume import uncount_epoch_cut_short

# 3 training steps an epoch (4 batches of 16, limited to 3), validation at each epoch's end
TEXT = ["--task", "text", "--data.listops_size=64", "--data.batch_size=16", "--model.encoder.dim=16",
        "--model.encoder.depth=1", "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8, chunk: 8}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=1", "--trainer.num_sanity_val_steps=0"]
FIRST = ["--trainer.callbacks+=test_resume_at_epoch_end.Batches"]  # a resumed fit has it from the run's config.yaml
RESUME = ["--run_dir=run", "--ckpt_path=last"]


class Batches(Callback):
    """Records each training batch a fit runs: (epoch, batch in the epoch, global step, its token ids)."""
    seen: list[tuple[int, int, int, list]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append((trainer.current_epoch, batch_idx, trainer.global_step, batch["input_ids"].tolist()))


def fit(*args: str) -> list[tuple[int, int, int]]:
    """(epoch, batch, step) of each batch the fit trained."""
    Batches.seen.clear()
    main(["fit", *TEXT, *args])
    return [seen[:3] for seen in Batches.seen]


def checkpoints(run: Path) -> dict[str, bytes | str]:
    """Every file of the run's checkpoints/ by name, and where last.ckpt links to."""
    folder = run / "checkpoints"
    return {"last.ckpt ->": os.readlink(folder / "last.ckpt"),
            **{path.name: path.read_bytes() for path in sorted(folder.iterdir())}}


def last(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


@pytest.mark.parametrize("first", [["--trainer.max_epochs=1"], ["--trainer.max_epochs=2", "--trainer.max_steps=3"]],
                         ids=["stopped-by-max_epochs", "stopped-by-max_steps-at-the-epochs-end"])
def test_a_larger_max_epochs_and_max_steps_train_the_next_epoch(first, tmp_path, monkeypatch, capsys):
    """Lightning 2.6 restarted a checkpoint of a finished epoch inside that epoch wherever max_steps was set: nothing
    trained, the epoch ended a second time and last.ckpt was rewritten as if epoch 1 were done (Lightning #19617)."""
    monkeypatch.chdir(tmp_path)
    assert fit(*FIRST, *first, "--run_dir=run") == [(0, 0, 0), (0, 1, 1), (0, 2, 2)]
    capsys.readouterr()
    assert fit(*RESUME, "--trainer.max_epochs=2", "--trainer.max_steps=5") == [(1, 0, 3), (1, 1, 4)]
    out = capsys.readouterr().out
    assert "nothing to train" not in out and "[infomamba] epoch 1 step 5 " in out, out
    assert last(tmp_path / "run")["global_step"] == 5
    # stopped inside epoch 1 by max_steps, the run goes on in epoch 1 (it was counted done, and lost)
    assert fit(*RESUME, "--trainer.max_epochs=2", "--trainer.max_steps=-1") == [(1, 2, 5)]
    assert last(tmp_path / "run")["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] == 2
    before = checkpoints(tmp_path / "run")
    capsys.readouterr()
    assert fit(*RESUME, "--trainer.max_epochs=2", "--trainer.max_steps=10") == []
    assert re.search(r"nothing to train: .* had already reached max_epochs=2 \(epoch 2, step 6\)",
                     capsys.readouterr().out)
    assert checkpoints(tmp_path / "run") == before


def test_a_max_steps_stop_in_the_last_epoch_continues_that_epoch_with_a_larger_max_steps(tmp_path, monkeypatch,
                                                                                          capsys, caplog):
    """A max_steps stop inside the last allowed epoch was counted as that epoch's end: a larger max_steps found
    max_epochs reached and nothing to train. The epoch goes on with the batches it had left, in its order."""
    monkeypatch.chdir(tmp_path)
    fit(*FIRST, "--trainer.max_epochs=1", "--run_dir=whole")
    whole = list(Batches.seen)
    assert fit(*FIRST, "--trainer.max_epochs=1", "--trainer.max_steps=2", "--run_dir=run") == [(0, 0, 0), (0, 1, 1)]
    before = checkpoints(tmp_path / "run")
    capsys.readouterr()
    caplog.clear()
    assert fit(*RESUME, "--trainer.max_steps=2") == []
    out = capsys.readouterr().out
    assert re.search(r"nothing to train: .* had already reached max_steps=2 \(epoch 0, step 2\)", out), out
    assert [r.getMessage() for r in caplog.records].count("`Trainer.fit` stopped: `max_steps=2` reached.") == 1
    assert checkpoints(tmp_path / "run") == before
    assert fit(*RESUME, "--trainer.max_steps=3") == [(0, 2, 2)]
    assert Batches.seen == whole[2:]  # the batch an uninterrupted epoch had trained there
    assert "[infomamba] epoch 0 step 3 " in capsys.readouterr().out
    state = last(tmp_path / "run")
    assert state["global_step"] == 3 and state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] == 1



def test_an_epoch_with_more_batches_after_a_finished_one_trains_them_all_and_validates(tmp_path, monkeypatch, capsys):
    """A finished epoch's batch count (2) was read as the next epoch's batches done where that epoch now has more
    (a larger limit_train_batches; fewer DDP ranks alike): epoch 1 skipped its first 2 batches and no validation ran."""
    monkeypatch.chdir(tmp_path)
    fit(*FIRST, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--run_dir=run")
    capsys.readouterr()
    assert fit(*RESUME, "--trainer.max_epochs=2") == [(1, 0, 2), (1, 1, 3), (1, 2, 4)]
    assert re.search(r"\[infomamba\] epoch 1 step 5 .* val/acc=", capsys.readouterr().out)

def progress(ready: int, started: int, processed: int, completed: int) -> dict:
    counts = {"ready": ready, "started": started, "processed": processed, "completed": completed}
    return {"total": dict(counts), "current": dict(counts)}


def loop_state(epochs: dict, batches_done: int, last_batch: bool) -> dict:
    return {"epoch_progress": epochs, "epoch_loop.state_dict": {"_batches_that_stepped": 7},
            "epoch_loop.batch_progress": {**progress(*[batches_done] * 4), "is_last_batch": last_batch}}


@pytest.mark.parametrize("completed", [1, 2], ids=["written-at-the-epochs-end", "written-after-it"])
def test_an_epoch_counted_done_before_its_last_batch_is_uncounted(completed):
    state = loop_state(progress(2, 2, 2, completed), batches_done=3, last_batch=False)
    assert uncount_epoch_cut_short(state) == {**state, "epoch_progress": progress(2, 2, 1, 1)}
    prefixed = {f"fit_loop.{key}": value for key, value in state.items()}
    assert uncount_epoch_cut_short(prefixed, "fit_loop.")["fit_loop.epoch_progress"] == progress(2, 2, 1, 1)


@pytest.mark.parametrize("state", [
    loop_state(progress(2, 2, 2, 1), batches_done=8, last_batch=True),  # its last batch ran
    loop_state(progress(2, 2, 1, 1), batches_done=3, last_batch=False),  # written inside the epoch
    loop_state(progress(2, 1, 1, 1), batches_done=0, last_batch=False),  # before the epoch started
    {},  # no loop state
], ids=["finished", "inside-the-epoch", "at-the-epochs-start", "none"])
def test_any_other_loop_state_is_left_as_it_is(state):
    assert uncount_epoch_cut_short(state) is state
