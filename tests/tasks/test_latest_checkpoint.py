"""last.ckpt holds the step a fit ended at, also when it ends between two validations, and a fit continued from it
goes on from that step inside the same epoch."""
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from infomamba.cli import main
from infomamba.tasks.latest_checkpoint import LatestCheckpoint

# 8 steps an epoch and validation every 3: a fit stopped by max_steps=5 stops 2 steps after its last validation
ARGS = ["--task", "text", "--data.listops_size=64", "--data.batch_size=8", "--model.encoder.dim=16",
        "--model.encoder.depth=1", "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8}",
        "--trainer.val_check_interval=3", "--trainer.enable_progress_bar=false", "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_model_summary=false"]


class FirstBatch(Callback):
    """Records where a fit's first training batch sits: (epoch, batch in the epoch, global step)."""
    seen: list[tuple[int, int, int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not self.seen:
            self.seen.append((trainer.current_epoch, batch_idx, trainer.global_step))


def last(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def test_a_fit_stopped_by_max_steps_between_validations_keeps_its_last_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *ARGS, "--trainer.max_steps=5", "--run_dir=run"])
    assert last(tmp_path / "run")["global_step"] == 5


def test_a_fit_continued_from_that_last_ckpt_goes_on_mid_epoch_to_its_new_max_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *ARGS, "--trainer.max_steps=5", "--run_dir=run"])
    FirstBatch.seen.clear()
    main(["fit", *ARGS, "--trainer.max_steps=11", "--run_dir=run", "--ckpt_path=last",
          "--trainer.callbacks+=test_latest_checkpoint.FirstBatch"])
    assert FirstBatch.seen == [(0, 5, 5)]  # the rest of epoch 0, not a new epoch
    assert last(tmp_path / "run")["global_step"] == 11


def test_last_ckpt_is_there_whenever_the_link_moves(tmp_path, monkeypatch):
    """Lightning removed last.ckpt before it linked the new one: a run killed in between had nothing to resume."""
    trainer = SimpleNamespace(is_global_zero=True, strategy=SimpleNamespace(barrier=lambda: None))
    for name in ("latest-1.ckpt", "latest-2.ckpt"):
        torch.save({"name": name}, tmp_path / name)
    LatestCheckpoint._link_checkpoint(trainer, str(tmp_path / "latest-1.ckpt"), str(tmp_path / "last.ckpt"))

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "symlink", killed)
    with pytest.raises(KeyboardInterrupt):
        LatestCheckpoint._link_checkpoint(trainer, str(tmp_path / "latest-2.ckpt"), str(tmp_path / "last.ckpt"))
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["name"] == "latest-1.ckpt"
    monkeypatch.undo()
    LatestCheckpoint._link_checkpoint(trainer, str(tmp_path / "latest-2.ckpt"), str(tmp_path / "last.ckpt"))
    assert os.readlink(tmp_path / "last.ckpt") == "latest-2.ckpt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "latest-1.ckpt", "latest-2.ckpt"]
