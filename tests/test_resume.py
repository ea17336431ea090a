"""A run stopped after one epoch and resumed with --ckpt_path last ends where an uninterrupted run ends."""
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from infomamba.cli import main


class StopAfterFirstEpoch(Callback):
    """Simulates an interruption: the run stops after epoch 0 with its schedule planned for 2 epochs."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True

ARGS = ["--task", "text", "--data.listops_size=48", "--data.batch_size=16", "--model.encoder.dim=16",
        "--model.encoder.depth=1", "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8}",
        "--model.head_dropout=0.2", "--trainer.enable_progress_bar=false", "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_model_summary=false"]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_resume_matches_uninterrupted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *ARGS, "--trainer.max_epochs=2", "--trainer.default_root_dir=a",
          "--trainer.logger.init_args.save_dir=a"])
    main(["fit", *ARGS, "--trainer.max_epochs=2", "--trainer.default_root_dir=b",
          "--trainer.logger.init_args.save_dir=b", "--trainer.callbacks+=test_resume.StopAfterFirstEpoch"])
    first = next((tmp_path / "b").glob("text/version_0/checkpoints/last.ckpt"))
    main(["fit", *ARGS, "--trainer.max_epochs=2", "--trainer.default_root_dir=b",
          "--trainer.logger.init_args.save_dir=b", "--ckpt_path", str(first)])
    full = weights(next((tmp_path / "a").glob("text/version_0/checkpoints/last.ckpt")))
    resumed_ckpt = next((tmp_path / "b").glob("text/version_1/checkpoints/last.ckpt"))
    resumed = weights(resumed_ckpt)
    assert torch.load(resumed_ckpt, weights_only=False)["epoch"] == 1
    assert full.keys() == resumed.keys()
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], atol=1e-5, rtol=1e-4, msg=name)
    moved = weights(first)
    assert any((moved[n] - full[n]).abs().max() > 1e-4 for n in full)
