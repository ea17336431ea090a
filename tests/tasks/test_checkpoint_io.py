from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from infomamba.tasks.checkpoint_io import AtomicCheckpointIO
from infomamba.tasks.paths import write_atomic


def test_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, target)

    def crash(self, checkpoint, path, storage_options=None):
        open(path, "wb").write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"step": 2}, target)
    assert torch.load(target, weights_only=False)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial temporary file holds the disk


def test_a_failed_write_of_predictions_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "predictions.jsonl"
    write_atomic(target, "old\n")

    def crash(self, text, **kwargs):
        open(self, "w").write(text[:2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", crash)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "new\n")
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.jsonl"] and target.read_bytes() == b"old\n"
