"""Parameter/FLOP summary, and the size-match proof: configs/size_matched.yaml keeps every mixer within
±10% of InfoMamba's total parameters."""
import re
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from infomamba import Encoder, EncoderConfig, list_mixers
from infomamba import summary
from infomamba.summary import summarize, summary_lines, summary_table

SIZE_MATCHED = yaml.safe_load((Path(__file__).parents[1] / "configs" / "size_matched.yaml").read_text())


@pytest.mark.parametrize("setting", sorted(SIZE_MATCHED["settings"]))
def test_size_matched_within_tolerance(setting):
    spec = SIZE_MATCHED["settings"][setting]
    options = spec["mixer_options"]
    assert set(options) == set(list_mixers()), "every registered mixer needs size-matched options"

    def params(mixer: str) -> int:
        config = EncoderConfig(dim=spec["dim"], depth=spec["depth"], mixer=mixer, mixer_options=options[mixer])
        return summarize(config, spec["seq_len"], flops=False)["params_total"]

    reference = params(SIZE_MATCHED["reference"])
    off = {m: params(m) / reference - 1 for m in options}
    assert all(abs(r) <= SIZE_MATCHED["tolerance"] for r in off.values()), off
    sized = {m: o["max_len"] for m, o in options.items() if "max_len" in o}
    assert all(rows == spec["seq_len"] for rows in sized.values()), f"rows past seq_len, counted, never read: {sized}"


def test_of_two_settings_for_one_size_the_one_that_holds_the_sequences_is_taken():
    """dim 192, depth 6 has Fashion-MNIST's 49-token grid and the speech recipe's 1,024 frames: at 49 tokens
    Linformer's 1,024-row E and F of the longer setting are 0.75 M parameters no grid reads."""
    path = summary.SIZE_MATCHED
    assert summary.size_matched_options(path, 192, 6, 49)["linformer"]["max_len"] == 49
    for seq_len in (None, 50, 1024, 4096):
        assert summary.size_matched_options(path, 192, 6, seq_len)["linformer"]["max_len"] == 1024
    assert summary.size_matched_options(path, 192, 6, 49)["vmamba"] == {"expand": 2.75}


def test_counts_and_scan_flops_of_a_mamba_encoder():
    """dim 8, depth 1, E = 16, N = 4, dt_rank 1, conv 4: every matmul/conv counted, scans at 9 B L E N.

    The SSM's conv pads both ends and keeps the first L outputs, so the counter sees L + K - 1 of them."""
    D, E, N, R, K, L = 8, 16, 4, 1, 4, 10
    config = EncoderConfig(dim=D, depth=1, mixer="mamba", mixer_options={"d_state": N})
    result = summarize(config, L)
    per_direction = 2 * (L + K - 1) * E * K + 2 * L * E * (R + 2 * N) + 2 * L * R * E + 9 * L * E * N
    mixer = 2 * L * D * 2 * E + 2 * per_direction + 2 * L * E * D
    mlp = 2 * 2 * L * D * 4 * D
    assert result["flops"] == mixer + mlp
    assert result["params_mixer"] + result["params_other"] == result["params_total"]


def test_table_rows_relative_to_infomamba():
    table = summary_table(["infomamba", "mamba"], 16, 2, 12, {"mamba": {"expand": 3}}, flops=False)
    lines = table.splitlines()
    assert lines[2].startswith("| mixer |") and len(lines) == 6
    assert "| infomamba | defaults |" in lines[4] and "+0.0%" in lines[4]
    assert "| mamba | expand=3 |" in lines[5]


def test_flops_grow_linearly_for_mamba_and_quadratically_for_attention():
    def growth(mixer):
        f16, f32, f48 = (summarize(EncoderConfig(dim=8, depth=1, mixer=mixer), n)["flops"] for n in (16, 32, 48))
        return (f48 - f32) / (f32 - f16)

    assert growth("mamba") == 1.0
    assert growth("attention") > 1.0


def test_the_ssd_forms_scan_is_counted_once():
    """ssm_heads: the SSD scan is chunked matmuls the counter sees whole; Mamba-1's 9 B L E N had been added on top."""
    config = EncoderConfig(dim=16, depth=1, mixer="mamba", mixer_options={"ssm_heads": 4})
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        Encoder(config).eval()(torch.randn(1, 24, 16))
    assert summarize(config, 24)["flops"] == counter.get_total_flops()


@pytest.mark.parametrize("mixer", list_mixers())
def test_flops_counted_on_the_meta_device_equal_those_of_a_cpu_forward(mixer):
    config = EncoderConfig(dim=16, depth=2, mixer=mixer, mixer_options={"max_len": 32} if mixer == "linformer" else {})
    counted, correction = summary._scan_flops(Encoder(config).eval(), torch.randn(2, 24, 16), (4, 6))
    assert summarize(config, 24, batch=2, grid=(4, 6))["flops"] == counted + correction


def test_rows_come_one_mixer_at_a_time(monkeypatch):
    counted = []
    count = summary._scan_flops
    monkeypatch.setattr(summary, "_scan_flops", lambda *args: counted.append(args) or count(*args))
    lines = summary_lines(["attention", "mamba"], 16, 1, 12)
    assert [next(lines) for _ in range(4)][0] == "dim 16, depth 1, seq_len 12, batch 1" and not counted
    assert next(lines).startswith("| attention |") and len(counted) == 1
    assert next(lines).startswith("| mamba |") and len(counted) == 2


def test_the_size_matched_default_applies_from_any_folder(tmp_path, monkeypatch, capsys):
    """Run from a folder without configs/, the rows still get the repository's size-matched options."""
    monkeypatch.chdir(tmp_path)
    setting = SIZE_MATCHED["settings"]["text"]
    summary.main(["--dim", str(setting["dim"]), "--depth", str(setting["depth"]), "--mixers", "infomamba",
                  "attention", "--no-flops"])
    out, err = capsys.readouterr()
    attention = next(line for line in out.splitlines() if line.startswith("| attention |"))
    options = ", ".join(f"{k}={v}" for k, v in setting["mixer_options"]["attention"].items())
    assert f"| attention | {options} |" in attention
    assert abs(float(attention.split("|")[5].strip().rstrip("%"))) <= 100 * SIZE_MATCHED["tolerance"]
    assert "NOT size-matched" not in err


def test_rows_not_size_matched_are_an_error_or_said_so(tmp_path, monkeypatch, capsys):
    """A --size-matched file that is not there is a one-line error; without the repository's file (an installed
    package), or without a setting for the dim and depth, one line on stderr says the rows are not size-matched."""
    with pytest.raises(SystemExit):
        summary.main(["--size-matched", str(tmp_path / "size_matchd.yaml"), "--mixers", "attention", "--no-flops"])
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1].endswith(f"error: size-matched options: no file {tmp_path}/size_matchd.yaml")

    monkeypatch.setattr(summary, "SIZE_MATCHED", tmp_path / "absent.yaml")
    summary.main(["--mixers", "attention", "--no-flops"])
    out, err = capsys.readouterr()
    assert "| attention | defaults |" in out
    assert len(notes(err)) == 1 and "NOT size-matched" in err and "--size-matched FILE" in err

    summary.main(["--dim", "16", "--depth", "1", "--mixers", "attention", "--no-flops",
                  "--size-matched", str(Path(__file__).parents[1] / "configs" / "size_matched.yaml")])
    err = capsys.readouterr().err
    assert len(notes(err)) == 1 and "NOT size-matched" in err and "no setting for dim 16, depth 1" in err


def notes(err: str) -> list[str]:
    """The lines of stderr other than the time taken, which ends every run."""
    lines = err.splitlines()
    assert re.fullmatch(r"\(\d+ mixers in [\d.]+s\)", lines[-1]), lines
    return lines[:-1]


def test_stdout_is_the_table_alone(monkeypatch, capsys):
    """`infomamba summary ... > table.md` is a markdown table: the kernel paths the FLOP count's forward announces
    and the time taken go to stderr, not between the table's header and its rows."""
    from infomamba.ops import dispatch

    monkeypatch.setattr(dispatch, "_announced", set())
    summary.main(["--dim", "16", "--depth", "1", "--mixers", "infomamba", "mamba", "--size-matched", ""])
    out, err = capsys.readouterr()
    caption, blank, *table = out.splitlines()
    assert caption == "dim 16, depth 1, seq_len 196, batch 1" and blank == ""
    assert [line.split("|")[1].strip() for line in table] == ["mixer", "---", "infomamba", "mamba"]
    assert "using the PyTorch reference (CPU) path" in err


def test_every_summary_option_has_a_help_string():
    assert all(action.help for action in summary.parser()._actions)


def test_a_tiny_models_row_shows_its_size():
    """Below 0.1 M parameters or GFLOPs the cells keep two significant digits (they read 0.00)."""
    row = summary_table(["attention"], 8, 1, 4).splitlines()[-1]
    cells = [cell.strip() for cell in row.split("|")[3:7]]
    assert cells[2] == "-" and all(float(cells[i]) > 0 for i in (0, 1, 3)), row


@pytest.mark.parametrize("option", ["--dim", "--depth", "--seq-len"])
def test_a_size_below_one_is_a_one_line_error(option, capsys):
    with pytest.raises(SystemExit):
        summary.main([option, "0", "--mixers", "attention"])
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"argument {option}: 0: give at least 1")


def test_a_seq_len_past_a_mixers_max_len_is_counted_with_one_that_holds_it(capsys):
    """Linformer and VMI-SA have per-position parameters of max_len rows: `--seq-len 2048` had ended the FLOP count in
    Linformer's traceback (built for its default or size-matched 1,024 or 196 rows). Such a mixer is counted built for
    the sequence, said on stderr; one whose max_len holds it keeps it."""
    summary.main(["--dim", "16", "--depth", "1", "--seq-len", "24", "--mixers", "linformer", "vmisa",
                  "--size-matched", "", "--no-flops"])
    out, err = capsys.readouterr()
    assert "| linformer | defaults |" in out and "| vmisa | defaults |" in out and notes(err) == []
    summary.main(["--dim", "16", "--depth", "1", "--seq-len", "2048", "--mixers", "linformer", "vmisa", "attention",
                  "--size-matched", ""])
    out, err = capsys.readouterr()
    assert "| linformer | max_len=2048 |" in out and "| vmisa | defaults |" in out
    assert [line for line in notes(err) if "max_len" in line] == [
        "infomamba summary: linformer counted with max_len=2048: its max_len 1024 is shorter than --seq-len 2048"]
    assert summary.holding("linformer", {"max_len": 196, "proj_len": 8}, 200) == {"max_len": 200, "proj_len": 8}
    assert summary.holding("attention", {}, 10**6) == {}


def test_an_entry_with_options_gets_its_own_row_as_in_bench(capsys):
    """`--mixers 'mamba{ssm_heads: 4}'`, as bench takes it, had been argparse's "invalid choice": a row labelled by
    the entry as given, counted with its options over the name's (size-matched) ones; a bad entry is one line."""
    summary.main(["--dim", "32", "--depth", "1", "--mixers", "mamba", "mamba{ssm_heads: 4}", "--no-flops",
                  "--size-matched", ""])
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in capsys.readouterr().out.splitlines()[4:]}
    assert rows == {"mamba": "defaults", "mamba{ssm_heads: 4}": "ssm_heads=4"}
    counted = summary.entry_configs(["mamba{ssm_heads: 4}"], 32, 1, {"mamba": {"expand": 3}})
    assert counted["mamba{ssm_heads: 4}"].mixer_options == {"expand": 3, "ssm_heads": 4}
    for bad, message in (("mamba{ssm_head: 4}", "got unknown option(s) ['ssm_head']"),
                         ("mamba{ssm_heads: 4", "options go in one pair of braces"),
                         ("linformer{max_len: 8}", "max_len=8 is shorter than --seq-len 196")):
        with pytest.raises(SystemExit):
            summary.main(["--dim", "32", "--depth", "1", "--mixers", bad, "--no-flops", "--size-matched", ""])
        said = capsys.readouterr().err.splitlines()[-1]
        assert f"error: --mixers entry {bad!r}: " in said and message in said, said
