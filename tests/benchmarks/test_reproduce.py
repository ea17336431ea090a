"""benchmarks/reproduce.py: aggregation, resume, the docs section, Table-5 commands, and one real CPU table."""
import json
import math
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark_scripts import REPO, load

rp = load("reproduce")

# A stand-in for `python -m infomamba.cli` (no torch, milliseconds): fit writes config.yaml, metrics.csv with
# two validations and the checkpoints into --run_dir; test writes test/acc = 0.5 + seed / 100. Every call is
# appended to $FAKE_CALLS; FAKE_FAIL=<substring> makes a fit whose command contains it stop after last.ckpt;
# FAKE_CRASH=<substring> makes it fail after a second, before writing anything; FAKE_SLOW=<folder> makes every fit
# write its pid there and sleep a minute; FAKE_ENV=<file> gets each call's OMP_NUM_THREADS.
FAKE_CLI = r'''
import os, sys, time
from pathlib import Path
argv = sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as f:
    f.write(" ".join(argv) + "\n")
def value(key):
    return argv[argv.index(key) + 1]
run = Path(value("--run_dir"))
if argv[0] == "fit":
    if os.environ.get("FAKE_ENV"):
        with open(os.environ["FAKE_ENV"], "a") as f:
            f.write(os.environ.get("OMP_NUM_THREADS", "unset") + "\n")
    if os.environ.get("FAKE_SLOW"):
        Path(os.environ["FAKE_SLOW"], str(os.getpid())).touch()
        time.sleep(60)
    if os.environ.get("FAKE_CRASH") and os.environ["FAKE_CRASH"] in " ".join(argv):
        time.sleep(1)
        sys.exit(1)
    resume = "--ckpt_path" in argv
    if not resume:
        run.mkdir(parents=True)
    seed = int(value("--seed_everything"))
    (run / "checkpoints").mkdir(exist_ok=True)
    (run / "config.yaml").write_text(f"seed_everything: {seed}\n")
    (run / "checkpoints" / "last.ckpt").write_text("x")
    if os.environ.get("FAKE_FAIL") and os.environ["FAKE_FAIL"] in " ".join(argv):
        sys.exit(130)
    (run / "checkpoints" / "best-epoch=1-step=20.ckpt").write_text("x")
    val = 0.4 + seed / 100
    (run / "metrics.csv").write_text("epoch,step,train/loss,val/acc\n0,4,1.0,\n0,9,,0.3\n1,19,,%s\n" % val)
    print("[infomamba] epoch 1 step 20 (0s): train/loss=1.0000 val/acc=%.4f" % val, flush=True)
    print("[infomamba] fit done in 0s (step 21): best ...", flush=True)  # stopped past the last logged step
else:
    run.mkdir(parents=True)
    seed = int(Path(value("--config")).read_text().split()[-1])
    (run / "metrics.csv").write_text("epoch,step,test/acc,test/loss\n0,0,%s,1.5\n" % (0.5 + seed / 100))
'''

TABLE = """
two:
  title: two rows
  task: text
  base: [--data.listops_size=64]
  rows:
    a: {args: [--model.encoder.mixer=infomamba], paper: 51}
    b: [--model.encoder.mixer=attention]
  seeds: [0, 1]
"""


@pytest.fixture()
def fake(tmp_path, monkeypatch):
    cli = tmp_path / "fake_cli.py"
    cli.write_text(FAKE_CLI)
    tables = tmp_path / "tables.yaml"
    tables.write_text(TABLE)
    calls = tmp_path / "calls.txt"
    calls.touch()
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    monkeypatch.delenv("FAKE_CRASH", raising=False)
    out = tmp_path / "out"
    # the device query imports torch (seconds); the end-to-end test below runs the real one
    monkeypatch.setattr(rp, "device_query", lambda env: subprocess.Popen(
        [sys.executable, "-c", "print('Fake GPU')"], stdout=subprocess.PIPE, text=True))

    def run(*args, extra=()):
        argv = ["--table", "two", "--tables", str(tables), "--out", str(out),
                "--cli", shlex.join([sys.executable, str(cli)]), *args]
        return rp.main([*argv, "--", *extra] if extra else argv)

    def called():
        return calls.read_text().splitlines()

    return run, called, out


def record(row, seed, acc, val=0.3, curve=None, epochs=2, steps=20):
    return {"row": row, "seed": seed, "test": {"test/acc": acc}, "val_best": val, "fit_s": 10.0, "test_s": 1.0,
            "epochs": epochs, "steps": steps,
            "curve": curve or [[9, 0, val - 0.1], [19, 1, val]], "command": "python benchmarks/reproduce.py x",
            "device": "CPU (2 cores)", "commit": "abc", "finished": "2026-12-02T10:00:00+00:00"}


def test_aggregate_one_and_three_seeds():
    mean, std, n = rp.aggregate([0.8])
    assert (mean, std, n) == (0.8, None, 1)
    mean, std, n = rp.aggregate([0.80, 0.85, 0.90])
    assert n == 3 and mean == pytest.approx(0.85) and std == pytest.approx(0.05)  # sample std (n - 1)
    assert rp.fmt(0.85, 0.05, True) == "85.00 ± 5.00" and rp.fmt(0.8, None, True) == "80.00 ± –"
    assert math.isnan(rp.aggregate([])[0])

    table = rp.Table(name="t", rows={"one": [], "three": []}, paper={"three": 85.1})
    md = rp.markdown_table(table, [record("one", 0, 0.8), *(record("three", s, v) for s, v in
                                                            zip((0, 1, 2), (0.80, 0.85, 0.90)))])
    lines = md.splitlines()
    assert lines[0] == ("| row | n | test/acc (%) | paper | test/acc by seed | best val/acc (%) | epochs "
                        "| steps | fit wall (s, mean) |")
    assert lines[2].startswith("| one | 1 | 80.00 ± – |  | 0: 80.00 |")
    assert lines[3].startswith("| three | 3 | 85.00 ± 5.00 | 85.1 | 0: 80.00, 1: 85.00, 2: 90.00 |")

    steps, means, stds = rp.mean_curve([record("x", 0, 0.5, curve=[[9, 0, 0.2], [19, 1, 0.4]]),
                                        record("x", 1, 0.5, curve=[[11, 0, 0.4], [21, 1, 0.6]])])
    assert steps == [11, 21] and means == pytest.approx([0.3, 0.5]) and stds == pytest.approx([0.1414, 0.1414], 1e-3)


def test_markdown_section_is_appended_then_replaced_between_markers():
    start, end = rp.markers("table5_imdb")
    text = "# Results\n\nkept before\n"
    once = rp.replace_section(text, "table5_imdb", "## Table 5\n\n| a |\n")
    assert once == f"# Results\n\nkept before\n\n{start}\n## Table 5\n\n| a |\n{end}\n"
    twice = rp.replace_section(once + "\n## kept after\n", "table5_imdb", "## Table 5\n\n| b |")
    assert twice == f"# Results\n\nkept before\n\n{start}\n## Table 5\n\n| b |\n{end}\n\n## kept after\n"
    assert rp.replace_section(twice, "table5_imdb", "## Table 5\n\n| b |") == twice
    other = rp.replace_section(twice, "mixers_imdb", "## mixers")  # another table: a section of its own
    assert "| b |" in other and other.count("<!-- reproduce:") == 4
    nested = twice.replace("## Table 5", "### Table 5")  # moved under a heading of the document's own
    assert rp.replace_section(nested, "table5_imdb", "## Table 5\n\n| c |") == nested.replace("| b |", "| c |")
    with pytest.raises(SystemExit, match="markers"):
        rp.replace_section(f"{end}\n{start}\n", "table5_imdb", "x")


def test_table5_row_command_stacks_the_ablation_after_the_base_config():
    table = rp.load_table("table5_imdb")
    assert list(table.rows) == ["full", "no_imf", "no_ssm", "no_filter", "no_mi", "static_rr", "no_mix"]
    assert table.seeds == [0, 1, 2] and table.metrics == ["test/acc"] and table.mode == "max"
    for row in table.rows:
        assert row == "full" or (REPO / table.rows[row][1]).is_file()
    extra = ["--trainer.max_steps=5", "--data.root", "/data/imdb", "--trainer.devices=2",
             "--trainer.limit_test_batches=2"]
    args = rp.fit_args(table, "no_imf", extra)
    cmd = rp.fit_command(["infomamba"], args, 2, Path("/o/runs/no_imf/seed2/fit"))
    assert cmd[:4] == ["infomamba", "fit", "--task", "text"]
    base, ablation = cmd.index("configs/imdb.yaml"), cmd.index("configs/ablations/no_imf.yaml")
    assert cmd[base - 1] == cmd[ablation - 1] == "--config" and base < ablation
    assert ablation < cmd.index("--trainer.max_steps=5") < cmd.index("--seed_everything")  # overrides win
    assert cmd[-4:] == ["--seed_everything", "2", "--run_dir", "/o/runs/no_imf/seed2/fit"]
    resumed = rp.fit_command(["infomamba"], args, 2, Path("/o/f"), resume=True)
    assert resumed[-2:] == ["--ckpt_path", "last"]

    test = rp.test_command(["infomamba"], "text", Path("/o/f"), Path("/o/f/checkpoints/best.ckpt"), Path("/o/t"), extra)
    assert test[:6] == ["infomamba", "test", "--task", "text", "--config", "/o/f/config.yaml"]
    assert test[test.index("--ckpt_path") + 1] == "/o/f/checkpoints/best.ckpt"
    assert "configs/ablations/no_imf.yaml" not in test  # the run's resolved config.yaml has it
    assert "--trainer.max_steps=5" not in test and "--trainer.devices=2" not in test
    assert ["--data.root", "/data/imdb"] == test[test.index("--data.root"):test.index("--data.root") + 2]
    assert "--trainer.limit_test_batches=2" in test and test[-3:] == ["--trainer.devices=1", "--run_dir", "/o/t"]
    compiled = rp.test_command(["infomamba"], "image", Path("/o/f"), "best.ckpt", Path("/o/t"), ["--compile"])
    assert compiled.index("--compile") < compiled.index("--model.compile=false")  # the later one wins: eager

    adhoc = rp.adhoc_table("imdb_attention", ["--task", "image", "--config", "c.yaml", "--seed_everything=4"])
    assert (adhoc.task, adhoc.base, adhoc.seeds, list(adhoc.rows)) == ("image", ["--config", "c.yaml"], [4],
                                                                      ["imdb_attention"])


def test_finished_runs_are_skipped_and_a_stopped_fit_resumes(fake, capsys, monkeypatch):
    run, called, out = fake
    monkeypatch.setenv("FAKE_FAIL", "runs/b/seed1/fit")
    assert run() == 1  # b seed 1 stopped after writing last.ckpt
    calls = called()
    assert len(calls) == 7 and sum(c.startswith("fit") for c in calls) == 4
    results = json.loads((out / "results.json").read_text())
    assert sorted((r["row"], r["seed"]) for r in results["runs"]) == [("a", 0), ("a", 1), ("b", 0)]
    a1 = next(r for r in results["runs"] if (r["row"], r["seed"]) == ("a", 1))
    assert a1["test"] == {"test/acc": 0.51, "test/loss": 1.5} and a1["val_best"] == pytest.approx(0.41)
    assert a1["curve"] == [[9, 0, 0.3], [19, 1, pytest.approx(0.41)]] and a1["epochs"] == 2 and a1["steps"] == 21
    assert a1["checkpoint"] == "runs/a/seed1/fit/checkpoints/best-epoch=1-step=20.ckpt"
    assert a1["device"] and a1["commit"] and not a1["resumed"]

    monkeypatch.delenv("FAKE_FAIL")
    assert run() == 0  # only b seed 1: its fit continues from last.ckpt, then its test
    new = called()[7:]
    assert len(new) == 2 and new[0].startswith("fit") and new[0].endswith("--ckpt_path last") and "seed1" in new[0]
    assert new[1].startswith("test") and "runs/b/seed1/fit/checkpoints/best-epoch=1-step=20.ckpt" in new[1]
    log = capsys.readouterr().out
    assert log.count("[reproduce] skip") == 3 and "[reproduce] done  b seed 1: test/acc=51.00%" in log
    assert "fit (resumed from last.ckpt)" in log
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 4 and next(r for r in runs if (r["row"], r["seed"]) == ("b", 1))["resumed"]

    assert run() == 0 and len(called()) == 9  # all recorded: nothing runs
    assert run("--seeds", "0", "1", "2", "--rows", "a") == 0 and len(called()) == 11  # one new run: a seed 2
    with pytest.raises(SystemExit, match="other arguments"):  # changed overrides never mix with old records
        run(extra=["--trainer.max_steps=3"])
    assert run("--rows", "b", "--seeds", "0", "--redo", extra=["--trainer.max_steps=3"]) == 0
    assert len(called()) == 13 and "--trainer.max_steps=3" in called()[11]

    table = (out / "table.md").read_text()
    assert "| a | 3 | 51.00 ± 1.00 | 51 | 0: 50.00, 1: 51.00, 2: 52.00 |" in table
    csv_lines = (out / "runs.csv").read_text().splitlines()
    assert csv_lines[0].startswith("row,seed,test/acc,test/loss,val_best") and len(csv_lines) == 6
    assert (out / "curves.png").stat().st_size > 1000

    docs = out.parent / "docs" / "results.md"
    docs.parent.mkdir()
    docs.write_text("# Results\n\nolder text\n")
    assert run("--report-only", "--docs", str(docs)) == 0 and len(called()) == 13
    text = docs.read_text()
    assert text.startswith("# Results\n\nolder text\n\n<!-- reproduce:two start -->\n## two rows\n")
    assert "Device: Fake GPU." in text and "Seeds: 0, 1, 2." in text
    assert "![validation curves](reproduce_two.png)" in text
    assert (docs.parent / "reproduce_two.png").is_file() and (docs.parent / "reproduce_two.csv").is_file()


def test_seeds_of_separate_calls_merge_into_one_table(fake, tmp_path):
    run, called, out = fake
    assert run() == 0 and len(called()) == 8  # 2 rows x seeds 0, 1: fit + test each
    first = json.loads((out / "results.json").read_text())
    shutil.rmtree(out)
    assert run("--seeds", "0") == 0 and len(called()) == 12  # another call: seed 0 only
    seed1 = tmp_path / "seed1.json"
    seed1.write_text(json.dumps({"table": "two", "runs": [r for r in first["runs"] if r["seed"] == 1]}))
    docs = tmp_path / "docs" / "results.md"
    docs.parent.mkdir()
    assert run("--merge", str(seed1), "--report-only", "--docs", str(docs)) == 0
    assert "| a | 2 | 50.50 ± 0.71 | 51 | 0: 50.00, 1: 51.00 |" in (out / "table.md").read_text()
    saved = json.loads((docs.parent / "reproduce_two.json").read_text())
    assert sorted((r["row"], r["seed"]) for r in saved["runs"]) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert "[reproduce_two.json](reproduce_two.json)" in docs.read_text()
    assert run("--merge", str(seed1)) == 0 and len(called()) == 12  # the merged runs count as recorded

    clash = tmp_path / "clash.json"
    a0 = next(r for r in first["runs"] if (r["row"], r["seed"]) == ("a", 0))
    clash.write_text(json.dumps({"table": "two", "runs": [{**a0, "test": {"test/acc": 0.9}}]}))
    with pytest.raises(SystemExit, match="a seed 0 recorded differently"):
        run("--merge", str(clash))
    clash.write_text(json.dumps({"table": "three", "runs": []}))
    with pytest.raises(SystemExit, match="holds table 'three', not 'two'"):
        run("--merge", str(clash))
    with pytest.raises(SystemExit, match="no such file"):
        run("--merge", str(tmp_path / "missing.json"))
    held = rp.OutLock(out)  # a runner at work on --out: merging would race its writes
    with pytest.raises(SystemExit, match="another reproduce.py is running"):
        run("--merge", str(seed1), "--report-only")
    del held


def test_dry_run_prints_commands_and_runs_nothing(fake, capsys):
    run, called, out = fake
    assert run("--dry-run", "--rows", "b", "--max-steps", "7") == 0
    printed = capsys.readouterr().out.splitlines()
    assert called() == [] and not out.exists()
    fits = [line for line in printed if " fit " in line]
    assert len(fits) == 2 and all("--trainer.max_steps=7" in line for line in fits)
    assert "--seed_everything 1" in fits[1] and f"{out}/runs/b/seed1/fit" in fits[1]


def test_cpu_table_end_to_end(tmp_path, monkeypatch):
    """2 rows x 2 seeds of the default text task (generated ListOps) through the real CLI, tiny model."""
    monkeypatch.setenv("INFOMAMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two runs at once on two cores
    tables = tmp_path / "tables.yaml"
    tables.write_text("""
tiny:
  task: text
  base: [--data.listops_size=48, --data.batch_size=16, --model.encoder.dim=16, --model.encoder.depth=1]
  rows:
    infomamba: ["--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8, chunk: 8}"]
    attention: [--model.encoder.mixer=attention]
  seeds: [0, 1]
""")
    out, docs = tmp_path / "out", tmp_path / "results.md"
    began = time.time()
    status = rp.main(["--table", "tiny", "--tables", str(tables), "--out", str(out), "--max-steps", "4", "--jobs", "2",
                      "--docs", str(docs), "--", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
                      "--trainer.num_sanity_val_steps=0", "--trainer.enable_model_summary=false"])
    print(f"4 runs (8 CLI processes) in {time.time() - began:.0f}s")
    assert status == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert sorted((r["row"], r["seed"]) for r in runs) == [("attention", 0), ("attention", 1),
                                                           ("infomamba", 0), ("infomamba", 1)]
    for r in runs:
        assert 0.0 <= r["test"]["test/acc"] <= 1.0 and len(r["curve"]) == 2 and r["steps"] == 4
        assert (out / r["checkpoint"]).is_file() and r["checkpoint"].startswith(f"runs/{r['row']}/seed{r['seed']}/fit/")
        assert "--seed_everything" not in r["fit_args"]
        assert f"seed_everything: {r['seed']}" in (out / r["run_dir"] / "fit" / "config.yaml").read_text()
    attention = (out / "runs/attention/seed0/fit/config.yaml").read_text()
    assert "mixer: attention" in attention and "dim: 16" in attention and "max_steps: 4" in attention
    table = (out / "table.md").read_text()
    assert "| infomamba | 2 |" in table and "| attention | 2 |" in table
    assert (out / "curves.png").is_file() and len((out / "runs.csv").read_text().splitlines()) == 5
    assert "<!-- reproduce:tiny start -->" in docs.read_text() and (tmp_path / "reproduce_tiny.png").is_file()


def test_table_shows_how_many_epochs_and_steps_each_row_ran():
    """Runs a --trainer.max_time guard stopped early (50 and 59 of 64 epochs) are not shown as the full recipe, nor a
    smoke run of --max-steps 2."""
    table = rp.Table(name="t", rows={"cut": [], "full": [], "smoke": []})
    runs = [("cut", 1, 59), ("cut", 2, 50), ("full", 0, 64), ("full", 1, 64)]
    md = rp.markdown_table(table, [*(record(row, seed, 0.9, epochs=epochs, steps=10 * epochs)
                                     for row, seed, epochs in runs), record("smoke", 0, 0.1, epochs=1, steps=2)])
    lines = md.splitlines()
    assert "| 50, 59 | 500, 590 | 10 |" in lines[2] and "| 64 | 640 | 10 |" in lines[3] and "| 1 | 2 | 10 |" in lines[4]


def test_a_seed_given_twice_is_refused(fake):
    """Two runs of one row x seed would share one folder (and run at once with --jobs 2)."""
    run, called, out = fake
    with pytest.raises(SystemExit, match="seed 1 given twice"):
        run("--seeds", "0", "1", "1", "--jobs", "2")
    assert called() == [] and not out.exists()


def test_best_val_is_what_the_task_picks_its_checkpoint_by():
    """An ad-hoc speech row had reported "best val/acc" (no such metric) while its checkpoint was the best by
    val/wer; a table naming another metric than the task's monitor is refused."""
    assert (rp.adhoc_table("x", ["--task", "asr"]).val_metric, rp.adhoc_table("x", ["--task", "asr"]).mode) == \
        ("val/wer", "min")
    assert rp.Table(name="t", task="text_mlm").val_metric == "val/loss"
    with pytest.raises(SystemExit, match=r"val_metric val/loss \(max\) is not what --task text chooses its best "
                                         r"checkpoint by \(val/acc, max\)"):
        rp.Table(name="t", task="text", val_metric="val/loss")
    with pytest.raises(SystemExit, match="unknown task 'nope'"):
        rp.Table(name="t", task="nope")


def test_jobs_below_one_is_a_usage_error(fake, capsys):
    """--jobs 0 had been taken as 1 without a word."""
    run, called, out = fake
    with pytest.raises(SystemExit):
        run("--jobs", "0")
    assert "--jobs: 0: give at least 1" in capsys.readouterr().err and called() == [] and not out.exists()


def test_unreadable_tables_results_or_merge_file_is_one_line(fake, tmp_path):
    run, called, out = fake
    with pytest.raises(SystemExit, match="--tables .*missing.yaml"):
        rp.main(["--table", "two", "--tables", str(tmp_path / "missing.yaml"), "--dry-run"])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SystemExit, match="broken.json: not JSON"):
        run("--merge", str(broken), "--report-only")
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text("")
    with pytest.raises(SystemExit, match="results.json: not JSON"):
        run()
    assert called() == []


def test_report_only_without_records_is_an_error_not_a_report(fake):
    run, called, out = fake
    with pytest.raises(SystemExit, match="no runs recorded"):
        run("--report-only")
    assert not (out / "table.md").exists()


def test_fit_time_leaves_out_an_attempt_thrown_away(fake, monkeypatch):
    """A fit that crashed before its first checkpoint starts again from scratch: its time is not the new fit's."""
    run, called, out = fake
    monkeypatch.setenv("FAKE_CRASH", "runs/a/seed0/fit")
    assert run("--rows", "a", "--seeds", "0") == 1
    monkeypatch.delenv("FAKE_CRASH")
    assert run("--rows", "a", "--seeds", "0") == 0
    (record_a0,) = json.loads((out / "results.json").read_text())["runs"]
    assert record_a0["fit_s"] < 1.0 and not record_a0["resumed"]


def test_out_or_docs_inside_a_data_folder_is_refused(fake, tmp_path):
    """Every run reads the data; results written into it would mix with it."""
    run, called, out = fake
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("x\n")
    inside = ["--out", str(data / "results")]
    with pytest.raises(SystemExit, match=f"--out {data / 'results'} is inside the data folder {data}"):
        run(*inside, extra=["--data.root", str(data)])
    config = tmp_path / "recipe.yaml"
    config.write_text(f"data:\n  root: {data}\n")
    with pytest.raises(SystemExit, match="inside the data folder"):
        run(*inside, "--merge", str(tmp_path / "none.json"), "--report-only", extra=["--config", str(config)])
    with pytest.raises(SystemExit, match=f"--docs {data} is inside the data folder"):
        run("--docs", str(data / "results.md"), extra=[f"--data.root={data}"])
    assert called() == [] and sorted(p.name for p in data.iterdir()) == ["train.csv"]


def test_reports_keep_the_docs_mode_and_are_replaced_whole(fake, tmp_path):
    """--docs replaces results.md and its copies (temp file + rename): a reader of the old copy keeps it whole,
    and the files keep their mode (mkstemp's 0600 would hide them from other users of a shared machine)."""
    run, called, out = fake
    assert run("--seeds", "0") == 0
    docs = tmp_path / "docs" / "results.md"
    docs.parent.mkdir()
    docs.write_text("# Results\n")
    docs.chmod(0o644)
    old_csv = docs.parent / "reproduce_two.csv"
    old_csv.write_text("old\n")
    os.link(old_csv, tmp_path / "held.csv")  # what a reader holding the old file sees
    assert run("--report-only", "--docs", str(docs)) == 0
    assert (tmp_path / "held.csv").read_text() == "old\n" and old_csv.read_text().startswith("row,seed")
    assert stat.S_IMODE(docs.stat().st_mode) == 0o644
    umask = os.umask(0o022)
    try:
        rp.atomic_write(tmp_path / "new.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644


def test_a_closed_terminal_stops_the_fits_with_the_runner(fake, tmp_path):
    """SIGHUP ends the runner; the fits, in their own sessions, must not go on unwatched (a rerun would resume them
    into the folders they are still writing)."""
    run, called, out = fake
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**os.environ, "FAKE_SLOW": str(pids)}
    runner = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "reproduce.py"), "--table", "two", "--tables",
                               str(tmp_path / "tables.yaml"), "--out", str(out), "--jobs", "2", "--cli",
                               shlex.join([sys.executable, str(tmp_path / "fake_cli.py")])], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while len(list(pids.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.1)
    runner.send_signal(signal.SIGHUP)
    status, log, left = runner.wait(timeout=30), runner.stdout.read(), []
    for pid in (int(p.name) for p in pids.iterdir()):
        try:
            os.kill(pid, signal.SIGKILL)
            left.append(pid)
        except ProcessLookupError:
            pass
    assert status == 130 and "SIGHUP: no new runs" in log
    assert len(list(pids.iterdir())) == 2 and left == []


def test_the_runner_shows_each_epoch_of_a_running_fit(fake, capsys):
    """A recipe's fit runs for an hour: its epochs (and the table's validation metric) show as they finish."""
    run, called, out = fake
    assert run("--rows", "a", "--seeds", "1") == 0
    assert "[reproduce]       a seed 1: epoch 1 step 20 (0s) val/acc=0.4100\n" in capsys.readouterr().out


def test_out_a_file_or_docs_a_folder_is_one_line(fake, tmp_path):
    """Before: a FileExistsError traceback; with --docs a folder, the copies written beside it, then a traceback."""
    run, called, out = fake
    assert run("--seeds", "0") == 0
    with pytest.raises(SystemExit, match="--docs .* is a folder"):
        run("--report-only", "--docs", str(tmp_path))
    assert not list(tmp_path.parent.glob("reproduce_two.*"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SystemExit, match="--out .*afile is a file"):
        rp.main(["--table", "two", "--tables", str(tmp_path / "tables.yaml"), "--out", str(afile)])


def test_runs_at_once_share_the_cores(fake, tmp_path, monkeypatch):
    """Two CPU runs at once on 2 cores with 2 threads each took 52 s where 1 thread each took 24 s."""
    run, called, out = fake
    threads = tmp_path / "threads.txt"
    monkeypatch.setenv("FAKE_ENV", str(threads))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(rp.os, "cpu_count", lambda: 4)
    assert run("--jobs", "2") == 0
    assert set(threads.read_text().split()) == {"2"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice stands
    assert run("--jobs", "2", "--redo") == 0
    assert set(threads.read_text().split()) == {"2", "3"}
