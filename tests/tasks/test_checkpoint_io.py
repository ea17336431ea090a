import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from infomamba.tasks.checkpoint_io import AtomicCheckpointIO


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
