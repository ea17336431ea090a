"""benchmarks/epoch_curves.py: the epoch lines of `infomamba fit` logs parsed, grouped and plotted."""
import pytest

from benchmark_scripts import load

curves = load("epoch_curves")

LOG = """[infomamba] selective SSM (conv, projections, scan): using the Triton kernel path
[infomamba] epoch 0 step 62 (67s): train/k_eff=2.5052 train/task=2.9017 val/cer=1.0000
Epoch 1:  50%|#####     | 31/62 [00:05<00:05]
[infomamba] epoch 1 step 124 (11s): train/k_eff=1.0000 train/task=2.9202 val/cer=0.9881
"""


def test_epoch_lines_parsed_and_everything_else_ignored():
    rows = curves.epoch_metrics(LOG)
    assert rows == [{"epoch": 0.0, "step": 62.0, "train/k_eff": 2.5052, "train/task": 2.9017, "val/cer": 1.0},
                    {"epoch": 1.0, "step": 124.0, "train/k_eff": 1.0, "train/task": 2.9202, "val/cer": 0.9881}]


def test_one_panel_per_prefix_and_a_log_without_epochs_is_an_error(tmp_path, monkeypatch):
    for name in ("a@1_x", "a@1_y", "b@2_x"):
        (tmp_path / f"{name}.log").write_text(LOG)
    seen = {}
    monkeypatch.setattr(curves, "plot", lambda groups, metric, out: seen.update(groups=groups, metric=metric))
    curves.main([*map(str, sorted(tmp_path.glob("*.log"))), "--group-by-prefix", "--metric", "val/cer",
                 "--out", str(tmp_path / "c.png")])
    assert {g: sorted(runs) for g, runs in seen["groups"].items()} == {"a@1": ["x", "y"], "b@2": ["x"]}
    assert seen["metric"] == "val/cer"
    (tmp_path / "empty.log").write_text("no epochs here\n")
    with pytest.raises(SystemExit, match="empty.log"):
        curves.main([str(tmp_path / "empty.log"), "--out", str(tmp_path / "c.png")])


def test_plot_writes_the_figure(tmp_path):
    rows = curves.epoch_metrics(LOG)
    curves.plot({"g": {"run": rows, "other": [{"epoch": 0.0}]}}, "train/task", tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_a_metric_no_log_has_is_an_error_not_an_empty_plot(tmp_path):
    (tmp_path / "run.log").write_text(LOG)
    with pytest.raises(SystemExit, match="no log has val/acc; they have: train/k_eff, train/task, val/cer"):
        curves.main([str(tmp_path / "run.log"), "--metric", "val/acc", "--out", str(tmp_path / "c.png")])
    assert not (tmp_path / "c.png").exists()
    curves.main([str(tmp_path / "run.log"), "--metric", "val/cer", "--out", str(tmp_path / "new" / "c.png")])
    assert (tmp_path / "new" / "c.png").stat().st_size > 1000
