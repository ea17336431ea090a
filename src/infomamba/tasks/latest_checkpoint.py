"""The checkpoint that `last.ckpt` links to, written at every validation and at the end of every training epoch.

Lightning's `ModelCheckpoint` without a monitor saves either at the end of validation or at the end of the training
epoch, not both: with validation inside the epoch (`val_check_interval` in steps), a fit stopped by `max_steps`
between two validations, or an epoch whose last steps follow its last validation, kept `last.ckpt` at that
validation while the summary line named it as the run's end, and a `--ckpt_path last` would train those steps
again. `LatestCheckpoint` also saves at the end of each training epoch (which a stop by `max_steps` ends too)
whenever the step moved since its last save, and moves the link in one rename.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint


class LatestCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint(filename="latest-{epoch}-{step}", save_last="link")` that saves at epoch ends too."""

    def __init__(self, **kwargs):
        super().__init__(**{"filename": "latest-{epoch}-{step}", "save_last": "link", **kwargs})

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._should_skip_saving_checkpoint(trainer):  # also: already saved at this step
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    @staticmethod
    def _link_checkpoint(trainer, filepath: str, linkpath: str) -> None:
        """Lightning's link, made beside `linkpath` and renamed over it: Lightning removed the previous last.ckpt
        first, so that a run killed between the two had none to resume from."""
        if trainer.is_global_zero and os.path.abspath(filepath) != os.path.abspath(linkpath):
            tmp = Path(linkpath).with_name(f".{Path(linkpath).name}.tmp{os.getpid()}")
            try:
                try:
                    os.symlink(os.path.relpath(filepath, tmp.parent), tmp)
                except OSError:  # no symbolic links (Windows without the permission): a copy, as Lightning does
                    shutil.copy(filepath, tmp)
                os.replace(tmp, linkpath)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        trainer.strategy.barrier()
