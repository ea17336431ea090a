"""Checkpoints written atomically: saved to a temporary file, then renamed over the target."""
from __future__ import annotations

import os
from pathlib import Path

from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """A crash mid-save leaves the previous checkpoint intact and no temporary file (local paths; remote ones use
    fsspec as is)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        if get_filesystem(path).protocol not in ("file", ("file", "local")) and "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        except BaseException:  # a full disk: no partial file left to hold its space
            tmp.unlink(missing_ok=True)
            raise
