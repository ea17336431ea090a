"""benchmarks/ssm_goals.py: the fused-SSM issue's goals from bench CSVs, each mode against its own attention."""
import csv

import pytest

from benchmark_scripts import load

COLUMNS = ["sweep", "model", "resolution", "tokens", "latency_ms", "throughput", "train_first_peak_gib",
           "train_step_ms", "train_peak_gib"]


def row(model, sweep, size, step, throughput=100.0, latency=10.0, peak=4.0, first_peak=None):
    return {"sweep": sweep, "model": model, "resolution": size if sweep == "resolution" else "",
            "tokens": size if sweep == "length" else 196, "latency_ms": latency, "throughput": throughput,
            "train_first_peak_gib": peak if first_peak is None else first_peak, "train_step_ms": step,
            "train_peak_gib": peak}


def write_csv(path, rows, extra=()):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS + list(extra))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def goals():
    return load("ssm_goals")


def cells(assessed, text, size):
    return next(c for g, c in assessed if g.text == text and g.size == size)


def test_each_mode_is_compared_with_attention_in_the_same_mode(goals):
    rows = [row("attention", "resolution", 224, 30.0, throughput=1000.0),
            row("attention +graphs", "resolution", 224, 15.0, throughput=2000.0, peak=0.5, first_peak=4.0),
            row("ssm{heads: 2}", "resolution", 224, 60.0, throughput=500.0, peak=3.0),
            row("ssm{heads: 2} +graphs", "resolution", 224, 17.0, throughput=1900.0, peak=0.4, first_peak=5.0)]
    assessed = goals.assess({"run": [{k: str(v) for k, v in r.items()} for r in rows]}, "ssm{heads: 2}")
    step = cells(assessed, "train step <= 1.2x attention's", 224)
    assert step[""] == (pytest.approx(2.0), False)
    assert step[" +graphs"] == (pytest.approx(17 / 15), True)  # not 17 / 30, eager attention's
    inference = cells(assessed, "inference >= 1.0x attention's", 224)
    assert inference[""] == (pytest.approx(0.5), False) and inference[" +graphs"] == (pytest.approx(0.95), False)
    peak = cells(assessed, "train peak <= attention's", 224)
    assert peak[""] == (pytest.approx(0.75), True)
    assert peak[" +graphs"] == (pytest.approx(1.25), False)  # first-step peaks: the graph pool is recorded there
    assert cells(assessed, "train step within 1.3x of mamba's", 224) == {"": None, " +graphs": None}


def test_the_long_sequence_goal_is_a_speedup_at_most_attentions_memory(goals, tmp_path, capsys):
    rows = [row("attention", "length", 16384, 900.0, peak=30.0), row("mamba", "length", 16384, 400.0),
            row("infomamba", "length", 16384, 250.0, peak=26.0)]
    path = write_csv(tmp_path / "bench.csv", rows)
    goals.main([str(path), "--mixers", "infomamba"])
    out = capsys.readouterr().out
    assert "| tokens/s >= 3x attention's | 16,384 tokens | 3.60x (met) |" in out
    assert "| train peak <= attention's | 16,384 tokens | 0.87x (met) |" in out
    assert "Not measured: train peak <= attention's at 224 px;" in out
    with pytest.raises(SystemExit, match="no rows of 'vim'"):
        goals.main([str(path), "--mixers", "vim"])


def test_runs_of_one_size_each_make_one_table_each_ratio_within_its_run(goals, tmp_path, capsys):
    """A CSV a size (the bench in one process a size): one table; a ratio never pairs rows of two runs, and a goal
    two runs both measure is refused in one line naming them."""
    small = write_csv(tmp_path / "224.csv", [row("attention", "resolution", 224, 20.0),
                                             row("infomamba", "resolution", 224, 30.0)])
    large = write_csv(tmp_path / "1024.csv", [row("attention", "resolution", 1024, 600.0),
                                              row("infomamba", "resolution", 1024, 300.0),
                                              row("attention", "resolution", 224, 10.0)])
    goals.main([str(small), str(large), "--mixers", "infomamba"])
    out = capsys.readouterr().out
    assert "| train step <= 1.2x attention's | 224 px | 1.50x (not met) |" in out  # 30 / 20, not 30 / 10
    assert "| train step <= 0.4x attention's | 1024 px | 0.50x (not met) |" in out
    assert out.count("| infomamba: goal |") == 1
    again = write_csv(tmp_path / "224_again.csv", [row("attention", "resolution", 224, 20.0),
                                                   row("infomamba", "resolution", 224, 20.0)])
    refused = r"224.csv and .*224_again.csv both measure 'train peak <= attention's' at 224 \(eager\): give one"
    with pytest.raises(SystemExit, match=refused):
        goals.main([str(small), str(again), "--mixers", "infomamba"])


def test_a_row_with_one_slow_timed_step_is_named_after_the_tables(goals, tmp_path, capsys):
    steady = dict(row("attention", "resolution", 1024, 580.0), train_step_max_ms=590.0)
    slow = dict(row("ssm +compile(reduce-overhead)", "resolution", 1024, 550.0), train_step_max_ms=1500.0)
    old_csv = row("ssm", "resolution", 1024, 600.0)  # written before train_step_max_ms: not named
    path = write_csv(tmp_path / "run.csv", [steady, slow, old_csv], extra=["train_step_max_ms"])
    goals.main([str(path), "--mixers", "ssm"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == ("Rows with a timed training step over 1.5x their median: ssm +compile(reduce-overhead) at 1024 px: "
                    "median 550.00 ms, slowest 1500.00 ms.")


def test_peaks_are_compared_less_what_earlier_rows_of_the_run_left_allocated(goals, tmp_path, capsys):
    """attention measured after the SSM rows began with 0.7 GiB they left (`train_carried_gib`): its own peak is 3.3,
    not 4.0, and the SSM's 3.3 is 1.00x of it, not 0.82x; a CSV without the column compares the peaks as they are."""
    rows = [dict(row("ssm", "resolution", 224, 30.0, peak=3.3), train_carried_gib=0.0),
            dict(row("attention", "resolution", 224, 20.0, peak=4.0), train_carried_gib=0.7)]
    path = write_csv(tmp_path / "run.csv", rows, extra=["train_carried_gib"])
    goals.main([str(path), "--mixers", "ssm"])
    assert "| train peak <= attention's | 224 px | 1.00x (met) |" in capsys.readouterr().out
    goals.main([str(write_csv(tmp_path / "old.csv", [row("ssm", "resolution", 224, 30.0, peak=3.3),
                                                        row("attention", "resolution", 224, 20.0, peak=4.0)])),
                "--mixers", "ssm"])
    assert "| train peak <= attention's | 224 px | 0.82x (met) |" in capsys.readouterr().out
