"""Run folders: atomic version claims under concurrency, the run `--ckpt_path last` picks, metrics kept."""
import csv
import threading

import pytest

from infomamba.tasks.run_dir import (RunLogger, anchored, changed_settings, claim_folder, claim_version, newer_runs,
                                      resumable_run)


def test_concurrent_claims_get_distinct_versions(tmp_path):
    (tmp_path / "version_0").mkdir()
    (tmp_path / "version_3").mkdir()
    start = threading.Barrier(8)
    claimed = []

    def claim():
        start.wait()
        claimed.append(claim_version(tmp_path))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(4, 12))
    assert all((tmp_path / f"version_{n}").is_dir() for n in claimed)


def test_resumable_run_is_the_newest_with_a_last_checkpoint(tmp_path):
    for n in (0, 2, 10, 11):
        (tmp_path / f"version_{n}" / "checkpoints").mkdir(parents=True)
    for n in (2, 10):  # version_11: a test run, or a fit stopped before its first checkpoint
        (tmp_path / f"version_{n}" / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert resumable_run(tmp_path) == tmp_path / "version_10"
    with pytest.raises(SystemExit, match="nothing to resume"):
        resumable_run(tmp_path / "elsewhere")


def test_a_named_run_folder_is_never_shared(tmp_path):
    """Refused with the way on: --ckpt_path last where the folder holds a last.ckpt, else a new folder (there
    --ckpt_path last would find nothing to resume)."""
    claim_folder(tmp_path / "a" / "run")
    with pytest.raises(SystemExit, match=r"exists and holds no checkpoints/last.ckpt to continue \(a run stopped "
                                         r"before its first checkpoint, or not a run's folder\): name a new folder"):
        claim_folder(tmp_path / "a" / "run")
    (tmp_path / "a" / "run" / "checkpoints").mkdir()
    (tmp_path / "a" / "run" / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(SystemExit, match="exists: add --ckpt_path last to continue that run"):
        claim_folder(tmp_path / "a" / "run")


def test_resumed_logger_appends_to_the_metrics_it_had(tmp_path):
    first = RunLogger(tmp_path, name="", version="run")
    first.log_metrics({"train/loss": 2.0}, step=0)
    first.save()
    resumed = RunLogger(tmp_path, name="", version="run")
    resumed.log_metrics({"train/loss": 1.0, "val/acc": 0.5}, step=5)
    resumed.save()
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [(r["step"], r["train/loss"], r["val/acc"]) for r in rows] == [("0", "2.0", ""), ("5", "1.0", "0.5")]


def test_changed_settings_are_the_model_and_data_leaves_that_differ():
    saved = {"model": {"lr": 0.001, "encoder": {"dim": 16, "mixer": "infomamba"}, "compile": False},
             "data": {"root": "a", "num_workers": 0}, "trainer": {"max_epochs": 1}}
    now = {"model": {"lr": 0.001, "encoder": {"dim": 32, "mixer": "infomamba"}, "compile": True},
           "data": {"root": "a", "num_workers": 4, "seed": 1}, "trainer": {"max_epochs": 9}}
    assert changed_settings(saved, now) == [("data.seed", None, 1), ("model.encoder.dim", 16, 32)]
    assert changed_settings(saved, saved) == []


def test_folder_settings_are_compared_as_absolute_paths_from_the_working_folder(tmp_path, monkeypatch):
    """A run's config.yaml keeps data.root absolute; the same folder given relative again is no change."""
    monkeypatch.chdir(tmp_path)
    saved = {"data": {"root": str(tmp_path / "data" / "x"), "cache_dir": "cache"}}
    assert changed_settings(saved, {"data": {"root": "data/x", "cache_dir": str(tmp_path / "cache")}}) == []
    assert changed_settings(saved, {"data": {"root": "data/y", "cache_dir": "cache"}}) == [
        ("data.root", str(tmp_path / "data" / "x"), str(tmp_path / "data" / "y"))]
    assert anchored(None) is None and anchored("/abs") == "/abs" and anchored("a/../b") == str(tmp_path / "b")


def test_newer_runs_are_the_version_folders_numbered_after(tmp_path):
    for n in (0, 2, 10):
        (tmp_path / f"version_{n}").mkdir()
    (tmp_path / "notes").mkdir()
    assert newer_runs(tmp_path / "version_2") == ["version_10"]
    assert newer_runs(tmp_path / "version_10") == []
