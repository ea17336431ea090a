import argparse
import csv
import gc
import sys
import weakref

import pytest
import torch

from infomamba import bench
from infomamba.bench import scan_config_lines, versus_attention


def test_rows_get_multiples_of_the_attention_row_of_the_same_size():
    rows = [
        {"sweep": "resolution", "model": "attention", "resolution": 224, "tokens": 196,
         "throughput": 1000.0, "train_step_ms": 30.0, "train_peak_gib": 3.5, "train_added_gib": 3.0},
        {"sweep": "resolution", "model": "attention", "resolution": 1024, "tokens": 4096,
         "throughput": 300.0, "train_step_ms": 700.0, "train_peak_gib": 61.0, "train_added_gib": 60.0},
        {"sweep": "resolution", "model": "infomamba", "resolution": 1024, "tokens": 4096,
         "throughput": 600.0, "train_step_ms": 280.0, "train_peak_gib": 30.2, "train_added_gib": 30.0},
        {"sweep": "length", "model": "infomamba", "tokens": 16384, "throughput": 5.0, "train_step_ms": 9.0},
    ]
    out = versus_attention(rows)
    assert "infer_x_attn" not in out[0] and "infer_x_attn" not in out[3]
    assert out[2]["infer_x_attn"] == pytest.approx(2.0)
    assert out[2]["train_x_attn"] == pytest.approx(0.4)
    assert out[2]["mem_x_attn"] == pytest.approx(0.5)


def test_scan_config_lines_name_layout_time_chunks_and_prefetch():
    from infomamba.ops.selective_scan.triton import ScanConfig
    tuned = {("bwd", 16, 768, 8, 16384, ("dtypes",), 0, True): ScanConfig(2, 4, 8, 1, 17),
             ("bwd", 16, 768, 64, 1024, ("dtypes",), 0, True): ScanConfig(2, 1, 16, 1, prefetch=True),
             ("fwd", 16, 768, 64, 256, ("dtypes",), 0, True): ScanConfig(4, 1, 64, 2)}
    lines = scan_config_lines(tuned)
    assert "| bwd | 16 | 768 | 8 | 16384 | 2, 4, 8, 1 | 17 | no |" in lines
    assert "| bwd | 16 | 768 | 64 | 1024 | 2, 1, 16, 1 | 1 | yes |" in lines
    assert "| fwd | 16 | 768 | 64 | 256 | 4, 1, 64, 2 | 1 | yes |" in lines
    assert scan_config_lines({}) == []


def test_bench_on_cpu_writes_a_row_per_mixer_with_ratios_to_attention(tmp_path, monkeypatch, capsys):
    """The CSV keeps the ratio columns' names; the printed table (and bench.md) heads them with the better
    direction and shows the CUDA memory that a CPU does not measure as n/a; a line up front names the
    GPU-sized defaults left (here --dtype only)."""
    from infomamba.bench import main
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    main(["--mixers", "attention", "mamba", "--resolutions", "32", "--batch", "2", "--dim", "32", "--depth", "1",
          "--train", "--warmup", "1", "--repeats", "2", "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    assert [r["model"] for r in rows] == ["attention", "mamba"]
    assert all(float(r["train_step_ms"]) > 0 and float(r["throughput"]) > 0 for r in rows)
    mamba = rows[1]
    assert float(mamba["train_x_attn"]) == pytest.approx(float(mamba["train_step_ms"]) /
                                                        float(rows[0]["train_step_ms"]), rel=1e-3)
    assert (tmp_path / "bench.md").exists() and (tmp_path / "bench.png").exists()
    out, err = capsys.readouterr()
    hint = next(line for line in err.splitlines() if "no CUDA device" in line)
    assert "--dtype bf16" in hint and "--dtype fp32" in hint and "--batch" not in hint
    *table, last = out[out.index("| sweep |"):].splitlines()
    assert table == (tmp_path / "bench.md").read_text().splitlines()[2:]
    assert last == f"results in {tmp_path}: bench.csv, bench.md, bench.png"
    heads = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert "infer_x_attn (throughput: higher is better)" in heads
    assert "train_x_attn (step time: lower is better)" in heads
    cells = dict(zip(heads, (cell.strip() for cell in table[3].strip("|").split("|"))))
    assert cells["model"] == "mamba" and cells["infer_peak_gib"] == cells["train_peak_gib"] == "n/a"


def test_bench_refuses_a_size_matched_file_that_is_not_there(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--mixers", "attention", "--resolutions", "32", "--batch", "1", "--dim", "32", "--depth", "1",
                    "--warmup", "0", "--repeats", "1", "--dtype", "fp32", "--size-matched",
                    str(tmp_path / "size_matchd.yaml"), "--out", str(tmp_path)])
    assert f"error: size-matched options: no file {tmp_path}/size_matchd.yaml" in capsys.readouterr().err
    assert not (tmp_path / "bench.csv").exists()


@pytest.mark.parametrize("option, value, message", [("--resolutions", "30", "30 px is not a multiple of the 16 px"),
                                                    ("--lengths", "0", "0: give at least 1"),
                                                    ("--dim", "-8", "-8: give at least 1"),
                                                    ("--batch", "x", "'x' is not a whole number"),
                                                    ("--warmup", "-1", "argument --warmup: -1: give 0 or more")])
def test_a_size_the_encoder_cannot_take_is_a_usage_error(tmp_path, capsys, option, value, message):
    """Each had been a traceback from inside the model (a patch embedding, a reshape of 0 elements)."""
    with pytest.raises(SystemExit) as stop:
        bench.main(["--mixers", "attention", "--resolutions", "32", "--dim", "32", "--depth", "1", "--dtype", "fp32",
                    option, value, "--out", str(tmp_path / "out")])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bench_builds_size_matched_models_from_any_folder(tmp_path, monkeypatch):
    """Run from a folder without configs/, the models get the repository's size-matched options (the
    measurement stubbed: the options are what is tested)."""
    from pathlib import Path

    import yaml
    setting = yaml.safe_load((Path(__file__).parents[1] / "configs" / "size_matched.yaml").read_text())
    setting = setting["settings"]["text"]
    built = []
    monkeypatch.setattr(bench, "measure", lambda model, *args: built.append(model) or {"throughput": 1.0})
    monkeypatch.chdir(tmp_path)
    bench.main(["--mixers", "attention", "--resolutions", "32", "--dim", str(setting["dim"]),
                "--depth", str(setting["depth"]), "--out", str(tmp_path)])
    assert built[0].encoder.config.mixer_options == setting["mixer_options"]["attention"]


def test_the_1d_sweep_alone_builds_the_mixers_of_bounded_length_for_it(tmp_path, capsys):
    """`--resolutions` with no value and `--lengths` only (a 1-D sweep). Linformer's E and F and VMI-SA's alpha and
    beta have max_len rows: each is built for the longest sequence measured (VMI-SA's default 4,096 and Linformer's
    1,024 had stopped the bench with a traceback at 4,100 tokens); an entry's own max_len shorter than it is a usage
    error before the first row."""
    from infomamba.bench import main
    main(["--mixers", "vmisa", "linformer{proj_len: 8}", "--resolutions", "--lengths", "4100", "--seq-batch", "1",
          "--dim", "32", "--depth", "1", "--warmup", "1", "--repeats", "1", "--out", str(tmp_path / "long")])
    rows = list(csv.DictReader(open(tmp_path / "long" / "bench.csv")))
    assert [(r["model"], r["tokens"]) for r in rows] == [("vmisa", "4100"), ("linformer{proj_len: 8}", "4100")]
    with pytest.raises(SystemExit):
        main(["--mixers", "vmisa{max_len: 64}", "--resolutions", "--lengths", "96", "--out", str(tmp_path / "short")])
    assert "'vmisa{max_len: 64}': max_len=64 is shorter than the longest sequence measured (96 tokens)" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--resolutions", "--out", str(tmp_path)])


def test_training_is_timed_after_the_steps_that_record_cuda_graphs(monkeypatch):
    """Under reduce-overhead the first step warms up and the second records: neither may be timed."""
    calls = []

    def fake_step_times_ms(fn, device, warmup, repeats):
        calls.append(warmup + repeats)
        return [1.0] * repeats

    monkeypatch.setattr(bench, "step_times_ms", fake_step_times_ms)
    bench.measure(torch.nn.Linear(4, 1000), torch.randn(2, 4), torch.device("cpu"), "fp32", warmup=2, repeats=5,
                  train=True)
    inference, train_warmup, train_timed = calls
    assert train_warmup >= 2 and train_timed >= 1


@pytest.mark.parametrize("repeats", [1, 2, 5, 20])
def test_one_slow_training_step_does_not_move_the_reported_step_time(monkeypatch, repeats):
    """The timed training steps have an odd count of at least three, so their median is a steady step's time even
    when one of them is slow (a CUDA-graph recording that fell into them): with two, their median was their mean.
    The clock is the test's: each call advances it by 1 ms, the first timed training step by 1,000 ms."""
    clock = {"now": 0.0, "steps": 0}
    warmup_steps = bench.train_warmup_steps(2)

    def slow_once(*_):
        clock["steps"] += 1
        clock["now"] += 1.0 if clock["steps"] != warmup_steps + 1 else 1000.0

    def eager_train_step(model, inputs, labels, dtype, warmup):
        bench.time_ms(slow_once, inputs.device, 0, bench.train_warmup_steps(warmup))
        return slow_once

    def forward():
        clock["now"] += 1.0

    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock["now"] / 1e3)
    runner = bench.Runner(lambda model, inputs, dtype: forward, eager_train_step)
    row = bench.measure(torch.nn.Linear(4, 1000), torch.randn(2, 4), torch.device("cpu"), "fp32", warmup=2,
                        repeats=repeats, train=True, runner=runner)
    assert row["train_step_ms"] == pytest.approx(1.0)
    assert row["train_step_max_ms"] == pytest.approx(1000.0)
    assert clock["steps"] - warmup_steps == bench.train_repeats(repeats) >= 3


def test_a_cold_first_forward_is_kept_as_the_slowest_and_named_with_the_warmup_to_raise(tmp_path, monkeypatch,
                                                                                           capsys):
    """With too few warm-up runs the first timed forward is cold (8,461 ms against 1,864 on a CPU): inference rows had
    kept only the median, so nothing showed it. The clock is the test's: the first timed forward takes 8 ms, the
    others 1 ms."""
    clock = {"now": 0.0, "calls": 0}

    def forward():
        clock["calls"] += 1
        clock["now"] += 8.0 if clock["calls"] == 1 else 1.0

    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock["now"] / 1e3)
    runner = bench.Runner(lambda model, inputs, dtype: forward, None)
    row = bench.measure(torch.nn.Linear(4, 2), torch.randn(2, 4), torch.device("cpu"), "fp32", warmup=0, repeats=5,
                        train=False, runner=runner)
    assert (row["latency_ms"], row["latency_max_ms"]) == (pytest.approx(1.0), pytest.approx(8.0))
    assert bench.uneven_note("attention", row, 0) == (
        "infomamba bench: note: attention: a slowest timed run over 2x the median (inference 8.00 ms against a median "
        "of 1.00): it was still warming up; give more --warmup (this run: 0)")
    assert bench.uneven_note("attention", {**row, "latency_max_ms": 1.9}, 0) is None
    steady = {"latency_ms": 1.0, "latency_max_ms": 1.5, "train_step_ms": 2.0, "train_step_max_ms": 5.0}
    assert "(training 5.00 ms against a median of 2.00)" in bench.uneven_note("mamba", steady, 3)

    monkeypatch.setattr(bench, "measure", lambda *args, **kwargs: {**row, "throughput": 1.0})
    bench.main(["--mixers", "attention", "--resolutions", "32", "--batch", "2", "--dim", "32", "--depth", "1",
                "--warmup", "1", "--size-matched", "", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if "note: attention {'resolution': 32, 'tokens': 4}: " in line
            and line.endswith("give more --warmup (this run: 1)")]
    assert "| latency_ms | latency_max_ms |" in out
    assert list(csv.DictReader(open(tmp_path / "bench.csv")))[0]["latency_max_ms"] == "8.0"


def test_a_mixers_entry_carries_options_in_yaml_braces():
    from infomamba.arguments import parse_mixer_entry
    assert parse_mixer_entry("mamba") == ("mamba", "mamba", {})
    assert parse_mixer_entry("infomamba{ssm_heads: 12}") == ("infomamba{ssm_heads: 12}", "infomamba", {"ssm_heads": 12})
    assert parse_mixer_entry("infomamba{variant: no_mix, k_max: 50}")[2] == {"variant": "no_mix", "k_max": 50}
    assert parse_mixer_entry("mamba{}") == ("mamba{}", "mamba", {})
    for bad in ("infomamba{ssm_heads: 12", "infomamba{ssm_heads: [}", "infomamba{ssm_heads: 1} x", "mamba{[1, 2]}"):
        with pytest.raises(ValueError, match="--mixers entry") as err:
            parse_mixer_entry(bad)
        assert "\n" not in str(err.value), f"{bad!r}: the error is not one line"


def test_an_entry_with_options_gets_its_own_rows_built_with_them(tmp_path, monkeypatch, capsys):
    """Rows labelled by the entry as given, the model built with the name's options and the entry's (seen
    inside the measured model), ratios against plain attention, and --compile-mixers matching the entry by name
    and options (torch.compile replaced by the identity: the filter is what is tested)."""
    measured = []
    real_measure = bench.measure

    def spy(model, *args, **kwargs):
        measured.append(model)
        return real_measure(model, *args, **kwargs)

    monkeypatch.setattr(bench, "measure", spy)
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: model)
    bench.main(["--mixers", "attention", "mamba", "mamba{ssm_heads: 8}", "--resolutions", "32", "--batch", "2",
                "--dim", "32", "--depth", "1", "--warmup", "1", "--repeats", "1", "--compile",
                "--compile-mixers", "mamba{ ssm_heads:  8 }", "--size-matched", "", "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    assert [r["model"] for r in rows] == ["attention", "mamba", "mamba{ssm_heads: 8}", "mamba{ssm_heads: 8} +compile"]
    heads = [[s.heads for s in m.encoder.stack.blocks[0].mixer.ssm] for m in measured[1:]]
    assert heads == [[None, None], [8, 8], [8, 8]]
    assert all(float(r["infer_x_attn"]) > 0 for r in rows[1:])
    for bad in ("mamba{ssm_heads: 7}", "mamba{ssm_head: 8}", "mamba{ssm_heads: 8"):
        with pytest.raises(SystemExit):
            bench.main(["--mixers", bad, "--resolutions", "32", "--out", str(tmp_path)])
        assert f"--mixers entry {bad!r}" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # YAML needs the space after the colon: {"ssm_heads:8": None} matches nothing
        bench.main(["--mixers", "mamba{ssm_heads: 8}", "--compile", "--compile-mixers", "mamba{ssm_heads:8}",
                    "--resolutions", "32", "--out", str(tmp_path)])
    assert "--compile-mixers entry 'mamba{ssm_heads:8}' matches no --mixers entry" in capsys.readouterr().err


def stub_measure(monkeypatch):
    """`bench.measure` replaced by a constant row: what is tested is around the measurement."""
    monkeypatch.setattr(bench, "measure", lambda *args, **kwargs: {"latency_ms": 1.0, "throughput": 1.0})


def test_a_1d_sweep_heads_its_sequence_batch_and_keeps_stdout_for_results(tmp_path, monkeypatch, capsys):
    """A lengths-only run: the header names the batch its rows ran at (--seq-batch), not the unused image batch,
    and no hint names --batch; the kernel paths go to stderr, not into the printed table; the last line says
    where the results are (no bench.png: there are no resolution rows to plot)."""
    from infomamba.ops import dispatch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dispatch, "_announced", set())
    out_dir = tmp_path / "r"
    bench.main(["--mixers", "infomamba", "attention", "--resolutions", "--lengths", "32", "--seq-batch", "2",
                "--dim", "32", "--depth", "1", "--warmup", "1", "--repeats", "1", "--dtype", "fp32",
                "--size-matched", "", "--out", str(out_dir)])
    out, err = capsys.readouterr()
    header = out.splitlines()[0]
    assert "; sequence batch 2;" in header and "image" not in header and "batch 64" not in header
    assert not [line for line in out.splitlines() if line.startswith("[infomamba]")]
    assert "[infomamba] hash bucketing: using the PyTorch reference (CPU) path" in err.splitlines()
    assert "no CUDA device" not in err
    assert out.splitlines()[-1] == f"results in {out_dir}: bench.csv, bench.md, bench_lengths.png"


def test_the_header_names_the_batch_of_each_kind_of_row_present():
    def text(resolutions=(), lengths=(), kmax_sweep=()):
        return bench.batch_text(argparse.Namespace(resolutions=list(resolutions), lengths=list(lengths),
                                                   kmax_sweep=list(kmax_sweep), batch=4, seq_batch=2))

    assert text(resolutions=[32], lengths=[16]) == "image batch 4; sequence batch 2"
    assert text(resolutions=[32]) == text(kmax_sweep=[25]) == "image batch 4"
    assert text(lengths=[16]) == "sequence batch 2"


def test_each_run_writes_a_folder_of_its_own(tmp_path, monkeypatch, capsys):
    """Without --out a run claims the next runs/bench/version_N, so the next run does not overwrite it; an --out
    folder that holds an earlier run's results is refused before anything is measured."""
    stub_measure(monkeypatch)
    monkeypatch.chdir(tmp_path)
    command = ["--mixers", "attention", "--resolutions", "32", "--batch", "2", "--dim", "32", "--depth", "1",
               "--size-matched", ""]
    for n in range(2):
        bench.main(command)
        out, err = capsys.readouterr()
        folder = tmp_path / "runs" / "bench" / f"version_{n}"
        assert out.splitlines()[-1] == f"results in {folder.relative_to(tmp_path)}: bench.csv, bench.md, bench.png"
        assert f"results in {folder.relative_to(tmp_path)} (rewritten after every row)" in err
        assert (folder / "bench.csv").is_file()
    earlier = (tmp_path / "runs" / "bench" / "version_0" / "bench.csv").read_text()
    with pytest.raises(SystemExit):
        bench.main([*command, "--out", "runs/bench/version_0"])
    assert "--out runs/bench/version_0 holds an earlier run's bench.csv, bench.md, bench.png" in capsys.readouterr().err
    assert (tmp_path / "runs" / "bench" / "version_0" / "bench.csv").read_text() == earlier
    assert sorted(p.name for p in (tmp_path / "runs" / "bench").iterdir()) == ["version_0", "version_1"]


def test_a_kmax_sweep_alone_is_something_to_measure(tmp_path, monkeypatch, capsys):
    """`--resolutions` with no value and --kmax-sweep: image rows (the header says their batch) at their own
    resolution and tokens (the ratios to attention look rows up by tokens)."""
    stub_measure(monkeypatch)
    bench.main(["--mixers", "infomamba", "--resolutions", "--kmax-sweep", "4", "--kmax-resolution", "32",
                "--batch", "2", "--dim", "32", "--depth", "1", "--size-matched", "", "--out", str(tmp_path)])
    assert "; image batch 2;" in capsys.readouterr().out.splitlines()[0]
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    assert [(r["model"], r["resolution"], r["tokens"]) for r in rows] == [("infomamba k_max=4", "32", "4")]


def test_every_bench_option_has_a_help_text_naming_its_default():
    for action in bench.parser()._actions:
        assert action.help, action.option_strings
        default = action.default
        if default not in (None, False, [], argparse.SUPPRESS):
            shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
            help_text = action.help % {**vars(action), "choices": ""}
            assert f"default {shown}" in help_text or f"default: {shown}" in help_text, action.option_strings


def test_aux_loss_steps_optimise_eq14_as_fit_does():
    """With aux_loss the training step's loss is Eq. 14: the bucket embeddings, which only Eq. 8's MI-hash term
    reaches, get a gradient; under cross-entropy alone they get none."""
    from infomamba.config import EncoderConfig

    config = EncoderConfig(dim=32, depth=1, mixer="infomamba", mixer_options={"k_max": 8, "d_concept": 8})
    labels, tokens = torch.tensor([0, 1, 0, 1]), torch.randn(4, 16, 32)
    for aux_loss in (False, True):
        torch.manual_seed(0)
        model = bench.SequenceModel(config, classes=2, aux_loss=aux_loss)
        bench.train_loss(model, labels)(model(tokens)).backward()
        grad = model.encoder.stack.blocks[0].mixer.filter.buckets.grad
        assert (grad is not None and bool(grad.abs().sum() > 0)) == aux_loss


def test_inference_rows_time_a_prediction_and_training_steps_keep_the_loss_terms():
    """The inference call runs the mixers without the terms only a loss reads, as the tasks' predictions do; the
    training step with them (its Eq. 14 reads them)."""
    from infomamba.config import EncoderConfig
    from infomamba.mixers import training_terms

    config = EncoderConfig(dim=32, depth=1, mixer="infomamba", mixer_options={"k_max": 8, "d_concept": 8})
    model = bench.SequenceModel(config, classes=2, aux_loss=True)
    seen = []
    model.encoder.stack.blocks[0].mixer.register_forward_pre_hook(lambda *_: seen.append(training_terms()))
    tokens = torch.randn(2, 16, 32)
    bench.eager_forward(model.eval(), tokens, "fp32")()
    model.train()
    bench.train_loss(model, torch.tensor([0, 1]))(model(tokens)).backward()
    assert seen == [False, True]


def test_aux_loss_rows_on_cpu_and_its_usage_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        bench.main(["--aux-loss", "--resolutions", "32", "--out", str(tmp_path / "no_train")])
    assert "--aux-loss sets the training step's loss: give --train too" in capsys.readouterr().err
    bench.main(["--mixers", "infomamba", "attention", "--resolutions", "32", "--batch", "2", "--dim", "32",
                "--depth", "1", "--train", "--aux-loss", "--warmup", "1", "--repeats", "2", "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    assert [r["model"] for r in rows] == ["infomamba", "attention"]
    assert all(float(r["train_step_ms"]) > 0 for r in rows)
    assert "train loss Eq. 14 (cross-entropy + auxiliary terms)" in (tmp_path / "bench.md").read_text()


def test_the_rows_after_a_compiled_model_start_without_what_torch_compile_kept(tmp_path, monkeypatch):
    """torch._dynamo.reset (which also frees reduce-overhead's CUDA-graph pools) runs between a compiled model's last
    row and the next model's first: its image rows and its sequence rows, then the next mixer's rows."""
    events = []
    real_measure = bench.measure

    def spy(model, *args, **kwargs):
        events.append(("measure", model, getattr(model, "compiled_here", False)))
        return real_measure(model, *args, **kwargs)

    def identity_compile(model, **kwargs):
        model.compiled_here = True
        return model

    monkeypatch.setattr(bench, "measure", spy)
    monkeypatch.setattr(torch, "compile", identity_compile)
    monkeypatch.setattr(torch._dynamo, "reset", lambda: events.append(("reset", None, False)))
    bench.main(["--mixers", "attention", "mamba", "--resolutions", "32", "--lengths", "16", "--batch", "2",
                "--seq-batch", "2", "--dim", "32", "--depth", "1", "--warmup", "1", "--repeats", "1", "--compile",
                "--compile-mixers", "attention", "--size-matched", "", "--out", str(tmp_path)])
    measured = [(i, model, compiled) for i, (kind, model, compiled) in enumerate(events) if kind == "measure"]
    assert [compiled for _, _, compiled in measured] == [False, False, True, True, False, False]
    for (i, model, compiled), (j, after, _) in zip(measured, measured[1:]):
        if compiled and after is not model:
            assert ("reset", None, False) in events[i + 1:j], f"rows {i} -> {j}: no reset after the compiled model"


def test_the_timm_reference_gets_the_rows_the_mixers_get(tmp_path, monkeypatch):
    """--timm adds ViT-S rows at each resolution (built for that image size), compiled too under --compile
    (torch.compile replaced by a marker), but not when --compile-mixers picks mixers; timm itself is stubbed (absent
    here)."""
    import types

    built, compiled = [], []

    def create_model(name, img_size, num_classes):
        built.append((name, img_size))
        nn = torch.nn
        return nn.Sequential(nn.Conv2d(3, 8, 16, 16), nn.Flatten(2), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                             nn.Linear(8, num_classes))

    def marked_compile(model, **kwargs):
        compiled.append(model)
        return model

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model))
    monkeypatch.setattr(torch, "compile", marked_compile)
    common = ["--mixers", "attention", "--resolutions", "32", "48", "--batch", "2", "--dim", "32", "--depth", "1",
              "--warmup", "1", "--repeats", "1", "--timm", "--compile", "--size-matched", ""]
    bench.main([*common, "--out", str(tmp_path / "all")])
    rows = list(csv.DictReader(open(tmp_path / "all" / "bench.csv")))
    timm_rows = [(r["model"], r["resolution"]) for r in rows if r["model"].startswith("timm")]
    assert timm_rows == [("timm vit_small_patch16", "32"), ("timm vit_small_patch16", "48"),
                         ("timm vit_small_patch16 +compile", "32"), ("timm vit_small_patch16 +compile", "48")]
    assert built == [("vit_small_patch16_224", 32), ("vit_small_patch16_224", 48)] * 2
    assert len(compiled) == 2 + 2  # attention's image and sequence models, then a ViT-S a resolution
    bench.main([*common, "--compile-mixers", "attention", "--out", str(tmp_path / "picked")])
    rows = list(csv.DictReader(open(tmp_path / "picked" / "bench.csv")))
    assert [r["model"] for r in rows if r["model"].startswith("timm")] == ["timm vit_small_patch16"] * 2


def test_timm_missing_is_said_before_the_first_row(tmp_path, monkeypatch, capsys):
    """The bench had measured every row, then printed "timm is not installed" and ended with status 0."""
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(SystemExit):
        bench.main(["--mixers", "attention", "--resolutions", "32", "--timm", "--out", str(tmp_path / "out")])
    assert "--timm needs timm installed" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_no_row_starts_with_an_earlier_rows_input_alive(tmp_path, monkeypatch):
    """Each row's input (images, tokens) is freed once its row is measured, across resolutions, the 1-D sweep, the
    next mixer and the k_max sweep: a later row's held memory, and every peak of it, would otherwise carry it (a 1024 px
    batch of 64 is 0.75 GiB, which the 16,384-token rows had carried)."""
    earlier = []
    real_measure = bench.measure

    def spy(model, inputs, *args, **kwargs):
        gc.collect()
        alive = [shape for ref, shape in earlier if ref() is not None]
        assert not alive, f"a row of input {tuple(inputs.shape)} starts with earlier inputs alive: {alive}"
        earlier.append((weakref.ref(inputs), tuple(inputs.shape)))
        return real_measure(model, inputs, *args, **kwargs)

    monkeypatch.setattr(bench, "measure", spy)
    monkeypatch.setattr(bench, "plot", lambda *args: None)  # after every row; nothing here reads it
    bench.main(["--mixers", "attention", "mamba", "--resolutions", "32", "48", "--lengths", "16", "--batch", "2",
                "--seq-batch", "2", "--dim", "32", "--depth", "1", "--warmup", "1", "--repeats", "1", "--kmax-sweep",
                "4", "--kmax-resolution", "32", "--size-matched", "", "--out", str(tmp_path)])
    assert len(earlier) == 7


@pytest.mark.skipif(not torch.cuda.is_available(), reason="cuBLAS workspaces are CUDA's")
def test_every_row_carries_the_process_workspaces_alike(tmp_path, monkeypatch):
    """The first eager row and the first "+graphs" row start with as much carried memory as every later row: cuBLAS's
    workspaces (one per stream and thread it runs on, kept for the life of the process) are made before the first row,
    so no model holds them in its own peaks for having run first (cleared here first, as a fresh process has none)."""
    torch._C._cuda_clearCublasWorkspaces()
    monkeypatch.setattr(bench, "plot", lambda *args: None)
    bench.main(["--mixers", "attention", "mamba", "--resolutions", "32", "--batch", "2", "--dim", "32", "--depth", "1",
                "--warmup", "1", "--repeats", "1", "--train", "--cuda-graphs", "--size-matched", "",
                "--out", str(tmp_path)])
    carried_mib = [float(r["train_carried_gib"]) * 2**10 for r in csv.DictReader(open(tmp_path / "bench.csv"))]
    assert len(carried_mib) == 4 and max(carried_mib) - min(carried_mib) < 2, carried_mib


def test_storage_gib_counts_a_tensor_and_its_views_once():
    weight = torch.zeros(256, 1024)
    assert bench.storage_gib([weight, weight.t(), weight[:8], torch.zeros(1024)]) == (256 + 1) * 1024 * 4 / 2**30
