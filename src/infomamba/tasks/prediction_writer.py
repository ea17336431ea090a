"""Writes `predict` results as JSON lines, atomically, next to the run's logs."""
from __future__ import annotations

import json
import os
from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from infomamba.console import say


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename over it (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class JsonLinesPredictionWriter(BasePredictionWriter):
    """Each predict_step returns a list of dicts; all are written to `<log_dir>/predictions.jsonl`
    (one file per rank, `predictions.rank<N>.jsonl`, under DDP), and the path is printed."""

    def __init__(self, filename: str = "predictions.jsonl"):
        super().__init__(write_interval="epoch")
        self.filename = filename

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        rows = [row for batch in predictions for row in batch]
        name = self.filename
        if trainer.world_size > 1:
            name = name.replace(".jsonl", f".rank{trainer.global_rank}.jsonl")
        path = Path(trainer.log_dir or trainer.default_root_dir) / name
        atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
        say(f"[infomamba] wrote {len(rows)} predictions to {path}")
