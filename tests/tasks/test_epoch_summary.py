"""tasks/epoch_summary.py: the epoch line, through the real CLI."""
import csv
import re

import pytest

from infomamba.cli import main

TEXT = ["--task", "text", "--data.listops_size=64", "--data.batch_size=16", "--model.encoder.dim=16",
        "--model.encoder.depth=1", "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8, chunk: 8}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--trainer.log_every_n_steps=1", "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=1"]


def epoch_lines(out: str) -> list[dict[str, float]]:
    return [dict((k, float(v)) for k, v in re.findall(r"(\S+)=(\S+)", line))
            for line in out.splitlines() if line.startswith("[infomamba] epoch ")]


def test_the_epoch_line_shows_the_epochs_train_means_and_its_validation(tmp_path, monkeypatch, capsys):
    """train/ values are the means over the epoch's steps (equal batches: the plain mean of the logged step values,
    also written as train/<name>_epoch), not the last step's; val/ values are the epoch's validation."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_epochs=2", "--run_dir=run"])
    lines = epoch_lines(capsys.readouterr().out)
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(lines) == 2
    for epoch, line in enumerate(lines):
        steps = [float(r["train/task_step"]) for r in rows if r["train/task_step"] and int(r["epoch"]) == epoch]
        ends = [r for r in rows if r["train/task_epoch"] and int(r["epoch"]) == epoch]
        assert len(steps) == 3 and len(ends) == 1
        assert line["train/task"] == pytest.approx(sum(steps) / 3, abs=1e-4)
        assert abs(steps[-1] - sum(steps) / 3) > 1e-3  # the last step's value would show otherwise
        assert line["train/task"] == pytest.approx(float(ends[0]["train/task_epoch"]), abs=1e-4)
        val = [float(r["val/acc"]) for r in rows if r["val/acc"] and int(r["epoch"]) == epoch]
        assert line["val/acc"] == pytest.approx(val[-1], abs=1e-4)


def test_an_epoch_without_validation_shows_no_earlier_validation(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_epochs=2", "--trainer.check_val_every_n_epoch=2",
          "--trainer.enable_checkpointing=false"])
    first, second = epoch_lines(capsys.readouterr().out)
    assert "train/loss" in first and not any(k.startswith("val/") for k in first)
    assert "val/acc" in second and "train/loss" in second


def test_a_resumed_run_that_had_ended_says_that_nothing_was_trained_and_how_to_go_on(tmp_path, monkeypatch, capsys):
    """Lightning restores a finished run, runs the sanity validation and trains nothing, silently: the fit says so
    (after the line that names the run it continues). Resumed with a larger max_epochs it trains on, without it."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_epochs=1", "--run_dir=run"])
    capsys.readouterr()
    main(["fit", *TEXT, "--run_dir=run", "--ckpt_path=last"])
    out = capsys.readouterr().out
    assert "[infomamba] --ckpt_path last continues run\n" in out
    assert re.search(r"\[infomamba\] nothing to train: the run resumed from \S*last\.ckpt had already reached "
                     r"max_epochs=1 \(epoch 1, step 3\); give a larger --trainer\.max_epochs", out), out
    assert not epoch_lines(out)
    main(["fit", *TEXT, "--run_dir=run", "--ckpt_path=last", "--trainer.max_epochs=2"])
    out = capsys.readouterr().out
    assert "nothing to train" not in out and len(epoch_lines(out)) == 1 and "(step 6)" in out, out


def test_validate_and_test_name_the_folder_their_metrics_went_to(tmp_path, monkeypatch, capsys):
    """After Lightning's table: the version_N folder each evaluation claimed, which holds the metrics it printed."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_epochs=1", "--run_dir=run"])
    for command, metric in (("validate", "val/acc"), ("test", "test/acc")):
        capsys.readouterr()
        main([command, *TEXT, "--ckpt_path=run/checkpoints/last.ckpt"])
        out = capsys.readouterr().out
        folder = re.search(rf"^\[infomamba\] {command} done: metrics logged into (\S+)$", out, re.M)
        assert folder, out
        assert out.rindex(folder.group(0)) > out.rindex(metric)  # after the table
        with open(tmp_path / folder.group(1) / "metrics.csv") as f:
            assert [row[metric] for row in csv.DictReader(f)][-1]
    capsys.readouterr()
    main(["test", *TEXT, "--ckpt_path=run/checkpoints/last.ckpt", "--trainer.logger=false"])
    assert "logged into" not in capsys.readouterr().out
