"""The fused-SSM issue's goals, read from `infomamba bench` CSVs: each given mixer against the size-matched
attention (and, for one goal, mamba) of the same run in the same mode (eager, `+graphs`, `+compile`, ...).

    python benchmarks/ssm_goals.py docs/runs/bench_ssd_bench_d5651f7_h200.csv \
        --mixers infomamba 'infomamba{ssm_heads: 12}'
    python benchmarks/ssm_goals.py docs/runs/bench_compile_all_{224,512,1024}_d4eba43_h100.csv  # a run a size

Several CSVs make one table: each ratio is taken within one CSV (one process), and a goal that two of them measure
in the same mode is refused.

The bench's own `*_x_attn` columns divide by eager attention whatever the row's mode; here a `+graphs` row is
compared with `attention +graphs`. Peaks: a row that replays CUDA graphs allocates its graph pool while the first
steps record, so its training footprint is the first step's peak (`train_first_peak_gib`); other rows use the peak
of the timed steps. Either is taken less `train_carried_gib`, what earlier rows of the run left allocated when the
row began (older CSVs lack it: their peaks are compared as they are, which favours the mixers measured first). A
goal whose rows the run lacks reads "n/a". Rows whose slowest timed training step is more than `UNEVEN` times their
median (`train_step_max_ms`; older CSVs lack it) are named after the tables: their median stands for the other
steps, and the slow one wants a look.
"""
from __future__ import annotations

import argparse
import csv
from typing import NamedTuple


class Goal(NamedTuple):
    """One line of the issue's goals: `ratio(row, reference row)` compared with `bound` (at most, or at least)."""
    text: str
    sweep: str
    size: int  # resolution (px) or tokens
    reference: str  # mixer whose row of the same mode and size is the reference
    measure: str
    bound: float
    at_most: bool


GOALS = [
    *(Goal("train peak <= attention's", "resolution", px, "attention", "peak", 1.0, True) for px in (224, 512, 1024)),
    Goal("train step <= 1.2x attention's", "resolution", 224, "attention", "step", 1.2, True),
    Goal("train step <= 0.8x attention's", "resolution", 512, "attention", "step", 0.8, True),
    Goal("train step <= 0.4x attention's", "resolution", 1024, "attention", "step", 0.4, True),
    Goal("inference >= 1.0x attention's", "resolution", 224, "attention", "throughput", 1.0, False),
    Goal("inference >= 1.5x attention's", "resolution", 512, "attention", "throughput", 1.5, False),
    Goal("inference >= 2.5x attention's", "resolution", 1024, "attention", "throughput", 2.5, False),
    *(Goal("train step within 1.3x of mamba's", "resolution", px, "mamba", "step", 1.3, True)
      for px in (224, 512, 1024)),
    *(Goal("inference latency within 1.3x of mamba's", "resolution", px, "mamba", "latency", 1.3, True)
      for px in (224, 512, 1024)),
    Goal("tokens/s >= 3x attention's", "length", 16384, "attention", "speedup", 3.0, False),
    Goal("train peak <= attention's", "length", 16384, "attention", "peak", 1.0, True),
]

UNEVEN = 1.5  # slowest timed step / median above which a row is named (`uneven`)

MODES = (" +compile(reduce-overhead)", " +compile", " +graphs")  # longest first: a label ends with at most one


def split_mode(label: str) -> tuple[str, str]:
    """("infomamba{ssm_heads: 12}", " +graphs") from "infomamba{ssm_heads: 12} +graphs"; ("attention", "")."""
    for mode in MODES:
        if label.endswith(mode):
            return label[: -len(mode)], mode
    return label, ""


def peak(row: dict, mode: str) -> float:
    """The row's own training footprint: its peak less the memory earlier rows left allocated."""
    replays = mode == " +graphs" or "reduce-overhead" in mode
    allocated = float(row["train_first_peak_gib" if replays else "train_peak_gib"])
    return allocated - float(row.get("train_carried_gib") or 0)


def ratio(goal: Goal, row: dict, ref: dict, mode: str) -> float:
    """The goal's measure of `row` against `ref` (both rows of one size and mode)."""
    if goal.measure == "peak":
        return peak(row, mode) / peak(ref, mode)
    if goal.measure == "step":
        return float(row["train_step_ms"]) / float(ref["train_step_ms"])
    if goal.measure == "latency":
        return float(row["latency_ms"]) / float(ref["latency_ms"])
    if goal.measure == "throughput":
        return float(row["throughput"]) / float(ref["throughput"])
    return float(ref["train_step_ms"]) / float(row["train_step_ms"])  # speedup: the same tokens a step


def row_size(row: dict) -> str:
    """A CSV row's size as written: its resolution, or in the length sweep its tokens ("" where the row has none)."""
    return row["resolution"] if row["sweep"] == "resolution" else row["tokens"]


def rows_by_key(rows: list[dict]) -> dict[tuple[str, str, str, int], dict]:
    """(mixer label, mode, sweep, size) -> row, size the resolution or, in the length sweep, the tokens."""
    table = {}
    for row in rows:
        mixer, mode = split_mode(row["model"])
        size = row_size(row)
        if size and row.get("train_step_ms"):
            table[(mixer, mode, row["sweep"], int(size))] = row
    return table


def assess(runs: dict[str, list[dict]], mixer: str) -> list[tuple[Goal, dict[str, tuple[float, bool] | None]]]:
    """Per goal, per mode the mixer has rows in: (ratio, met), or None where no run has both rows it needs. `runs`
    maps a name (the CSV's path) to its rows; a ratio's two rows come from one run, and a goal that two runs measure
    in one mode is a ValueError naming them."""
    tables = {name: rows_by_key(rows) for name, rows in runs.items()}
    modes = sorted({mode for table in tables.values() for (m, mode, _, _) in table if m == mixer},
                   key=lambda m: (m != "", m))
    out = []
    for goal in GOALS:
        cells: dict[str, tuple[float, bool] | None] = {}
        for mode in modes:
            keys = ((mixer, mode, goal.sweep, goal.size), (goal.reference, mode, goal.sweep, goal.size))
            pairs = {name: [table[k] for k in keys] for name, table in tables.items() if all(k in table for k in keys)}
            if len(pairs) > 1:
                raise ValueError(f"{' and '.join(pairs)} both measure '{goal.text}' at {goal.size} "
                                 f"({mode.strip() or 'eager'}): give one of them")
            if not pairs:
                cells[mode] = None
                continue
            [(row, ref)] = pairs.values()
            value = ratio(goal, row, ref, mode)
            cells[mode] = (value, value <= goal.bound if goal.at_most else value >= goal.bound)
        out.append((goal, cells))
    return out


def size_label(sweep: str, size: int) -> str:
    """A size as the tables print it: "224 px" in the resolution sweep, "16,384 tokens" in the length sweep."""
    return f"{size} px" if sweep == "resolution" else f"{size:,} tokens"


def markdown(mixer: str, assessed) -> str:
    """A table of the goals the run measured (a column per mode), then a line naming those it did not."""
    modes = list(assessed[0][1]) if assessed else []
    lines = [f"| {mixer}: goal | size | " + " | ".join(m.strip() or "eager" for m in modes) + " |",
             "|---|---|" + "---|" * len(modes)]
    missing = []
    for goal, cells in assessed:
        size = size_label(goal.sweep, goal.size)
        if not any(cells.values()):
            missing.append(f"{goal.text} at {size}")
            continue
        shown = [f"{c[0]:.2f}x ({'met' if c[1] else 'not met'})" if c else "n/a" for c in cells.values()]
        lines.append(f"| {goal.text} | {size} | " + " | ".join(shown) + " |")
    if missing:
        lines.append(f"\nNot measured: {'; '.join(missing)}.")
    return "\n".join(lines)


def uneven(rows: list[dict]) -> list[str]:
    """A line "label at size: median M ms, slowest S ms" for each row whose slowest timed training step is more than
    UNEVEN times its median (rows without `train_step_max_ms`, from older CSVs, are skipped)."""
    out = []
    for row in rows:
        median, slowest = row.get("train_step_ms"), row.get("train_step_max_ms")
        if median and slowest and float(slowest) > UNEVEN * float(median):
            size = size_label(row["sweep"], int(row_size(row)))
            out.append(f"{row['model']} at {size}: median {float(median):.2f} ms, slowest {float(slowest):.2f} ms")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", nargs="+", help="bench.csv of `infomamba bench --train` runs (one table of them all)")
    p.add_argument("--mixers", nargs="+", default=["infomamba"], help="row labels as the bench wrote them")
    args = p.parse_args(argv)
    runs = {}
    for path in args.csv:
        with open(path, newline="") as f:
            runs[path] = list(csv.DictReader(f))
    labels = {split_mode(r["model"])[0] for rows in runs.values() for r in rows}
    for mixer in args.mixers:
        if mixer not in labels:
            raise SystemExit(f"{', '.join(args.csv)}: no rows of {mixer!r}; the mixers: {', '.join(sorted(labels))}")
        try:
            print(markdown(mixer, assess(runs, mixer)) + "\n")
        except ValueError as err:
            raise SystemExit(f"ssm_goals: {err}") from None
    slow = [line for rows in runs.values() for line in uneven(rows)]
    if slow:
        print(f"Rows with a timed training step over {UNEVEN}x their median: " + "; ".join(slow) + ".")


if __name__ == "__main__":
    main()
