"""Writes `predict` results as JSON lines in the order of the inputs, atomically, next to the run's logs."""
from __future__ import annotations

import json
from pathlib import Path

import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter

from infomamba.console import say
from infomamba.tasks.base import RunRefused
from infomamba.tasks.paths import write_atomic


def in_input_order(rows: list[dict], indices: list[int]) -> list[dict]:
    """The rows sorted by the index of their input, each with that index first ("index": i)."""
    if len(indices) != len(rows):
        raise ValueError(f"{len(rows)} predictions but {len(indices)} input indices")
    return [{"index": i, **row} for i, row in sorted(zip(indices, rows), key=lambda pair: pair[0])]


def gathered(items: list, world_size: int) -> list:
    """Every rank's `items`, concatenated (the rank's own where there is one process)."""
    if world_size == 1 or not dist.is_initialized():
        return items
    parts: list = [None] * world_size
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


class JsonLinesPredictionWriter(BasePredictionWriter):
    """Each predict_step returns a list of dicts, one per input. They are written to `<log_dir>/predictions.jsonl`
    in the order of the inputs, each with its input's index ("index": 0, 1, ...), whatever order the length-bucketed
    batches ran in and whichever DDP rank ran them (rank 0 writes the one file); the path is printed. When every input
    failed to load (files whose headers passed the data module's scan), the rows are written and the command ends with
    a one-line refusal: a predict path with no readable input is an error.

    The ranks' rows are gathered in `teardown`, which every rank reaches: a rank dealt no input (fewer inputs than
    ranks, allowed in `setup`) skips Lightning's predict loop and with it `write_on_epoch_end`."""

    def __init__(self, filename: str = "predictions.jsonl"):
        super().__init__(write_interval="epoch")
        self.filename = filename
        self._rows: list[dict] = []
        self._indices: list[int] = []
        self._allowed = False

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "predict":
            self._allowed = pl_module.allow_zero_length_dataloader_with_multiple_devices
            pl_module.allow_zero_length_dataloader_with_multiple_devices = True

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        self._rows = [row for batch in predictions for row in batch]
        self._indices = [i for batch in batch_indices[0] for i in batch]

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if stage != "predict":
            return
        pl_module.allow_zero_length_dataloader_with_multiple_devices = self._allowed
        rows, indices = (gathered(part, trainer.world_size) for part in (self._rows, self._indices))
        self._rows, self._indices = [], []
        path = Path(trainer.log_dir or trainer.default_root_dir) / self.filename  # log_dir: every rank takes part
        if not trainer.is_global_zero:
            return
        write_atomic(path, "".join(json.dumps(row) + "\n" for row in in_input_order(rows, indices)))
        failed = sum("error" in row for row in rows)
        say(f"[infomamba] wrote {len(rows)} predictions to {path}"
            + (f" ({failed} of them inputs that failed to load: their rows hold the error)" if failed else ""))
        if rows and failed == len(rows):  # headers that pass the scan, contents that do not decode: an exit status
            raise RunRefused(f"no input of data.predict_path could be read: each of the {len(rows)} rows of {path} "
                             "holds its error")
