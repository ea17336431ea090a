"""Run folders: `<save_dir>/<name>/version_N` (by default `runs/<task>/version_N`), one per run.

A run's folder holds its config.yaml, metrics.csv, hparams.yaml and checkpoints/. `claim_version` takes the
next free `version_N` with `os.mkdir`, which fails when the folder exists, so two runs started at once in
the same place never share a folder. `resumable_run` finds the folder `--ckpt_path last` continues: the
newest one with a `checkpoints/last.ckpt`. A resumed run writes into the folder it continues, so
`RunLogger` appends to its metrics.csv where Lightning's CSVLogger would delete it (a resumed run given that
logger takes `RunLogger` instead: `appending`). A fit holds its folder (`hold`) while it runs, so that a
`--ckpt_path last` of a run still going (a job restarted by hand beside the one the scheduler requeued) is refused
instead of writing the same checkpoints and metrics.
"""
from __future__ import annotations

import csv
import fcntl
import importlib
import os
import re
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

LAST = Path("checkpoints") / "last.ckpt"
LOCK = ".lock"
_HELD: list[int] = []  # the lock files' descriptors, open (so locked) until `release` or the process's end
_VERSION = re.compile(r"version_(\d+)")


def versions(root: Path) -> dict[int, Path]:
    """The `version_N` folders under `root`, by N."""
    if not root.is_dir():
        return {}
    return {int(m.group(1)): p for p in root.iterdir() if p.is_dir() and (m := _VERSION.fullmatch(p.name))}


def hold(folder: Path) -> None:
    """Lock `folder` (an exclusive `flock` on its `LOCK` file) for the rest of this process; a SystemExit naming it
    when another process holds it. The kernel releases the lock when the process ends, however it ends."""
    descriptor = os.open(folder / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise SystemExit(f"{folder} is in use by another fit (it holds {folder / LOCK}): wait for it to end, or stop "
                         "it, before continuing this run") from None
    _HELD.append(descriptor)


def release() -> None:
    """Unlock the folders this process holds (a second fit in the same process may hold one of them again)."""
    while _HELD:
        os.close(_HELD.pop())


def outermost_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (what creating `folder` creates), or None."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            return missing
        missing = path
    return missing


def claim_version(root: Path) -> int:
    """Create and return the next free `root/version_N` (one past the highest; the next one if another run
    created it first)."""
    root.mkdir(parents=True, exist_ok=True)
    n = max(versions(root), default=-1) + 1
    while True:
        try:
            (root / f"version_{n}").mkdir()
            return n
        except FileExistsError:
            n += 1


def claim_folder(folder: Path) -> None:
    """Create `folder` for a new run; one that exists is refused (it may be another run's), with the way on: to
    continue it where it holds a `LAST`, else (a run stopped before its first checkpoint) to name a new folder."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()
    except FileExistsError:
        if (folder / LAST).is_file():
            raise SystemExit(f"--run_dir {folder} exists: add --ckpt_path last to continue that run, or name a new "
                             "folder") from None
        raise SystemExit(f"--run_dir {folder} exists and holds no {LAST} to continue (a run stopped before its first "
                         "checkpoint, or not a run's folder): name a new folder, or remove that one") from None


def resumable_run(root: Path) -> Path:
    """The newest `root/version_N` that has a `checkpoints/last.ckpt` (runs of validate/test/predict and runs
    stopped before their first checkpoint have none)."""
    found = [p for _, p in sorted(versions(root).items()) if (p / LAST).is_file()]
    if not found:
        raise SystemExit(f"--ckpt_path last: nothing to resume, no {root}/version_*/{LAST} (start the run without "
                         "--ckpt_path, or pick a run with --run_dir PATH or a checkpoint with --ckpt_path FILE)")
    return found[-1]


def newer_runs(run: Path) -> list[str]:
    """The `version_N` folders beside `run` numbered after it (those `resumable_run` passed over: no last.ckpt)."""
    number = int(_VERSION.fullmatch(run.name).group(1))
    return [p.name for n, p in sorted(versions(run.parent).items()) if n > number]


# Settings a resumed run may change: how its data is loaded and how its model is run, not what either is.
RESUMABLE_CHANGES = ("data.num_workers", "data.predict_path", "model.compile", "model.cuda_graphs")
# Folders a run reads from or keeps files in, given relative to the working folder: its config.yaml keeps them
# absolute, so that evaluating or continuing the run from another folder reads the same ones.
FOLDER_SETTINGS = ("data.root", "data.cache_dir")


def anchored(value):
    """A relative folder setting as an absolute path, from the working folder; None or an absolute one as given."""
    return os.path.abspath(value) if isinstance(value, str) and value and not os.path.isabs(value) else value


def leaves(tree, prefix: str = "") -> dict:
    """The leaves of a nested mapping by dotted key."""
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    return {key: value for name, child in tree.items() for key, value in leaves(child, f"{prefix}{name}.").items()}


def changed_settings(saved: dict, now: dict) -> list[tuple[str, object, object]]:
    """(key, saved value, value now) of each model.* and data.* setting a resumed run's config.yaml (`saved`) and
    this command's config (`now`, both as YAML loads them; `FOLDER_SETTINGS` compared as absolute paths from the
    working folder) disagree on, but `RESUMABLE_CHANGES`: a checkpoint
    restores the optimizer and schedule and holds weights of one architecture, so a changed model or data
    setting would either not act (the learning rate) or not load (the width)."""
    before, after = ({key: anchored(value) if key in FOLDER_SETTINGS else value
                      for key, value in leaves({key: config.get(key) for key in ("model", "data")}).items()}
                     for config in (saved, now))
    return [(key, before.get(key), after.get(key)) for key in sorted(before.keys() | after.keys())
            if before.get(key) != after.get(key) and key not in RESUMABLE_CHANGES]


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])


class RunLogger(CSVLogger):
    """Lightning's CSVLogger, except that a resumed run's rows are appended to the metrics.csv it had."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def appending(class_path: str) -> str:
    """The logger class a resumed run uses for its config's `class_path`: `RunLogger` for Lightning's CSVLogger,
    which deletes the metrics.csv of the run it continues; any other as given."""
    module, _, name = class_path.rpartition(".")
    if getattr(importlib.import_module(module), name) is CSVLogger:
        return f"{RunLogger.__module__}.{RunLogger.__qualname__}"
    return class_path
