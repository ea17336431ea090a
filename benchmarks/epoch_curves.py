"""Per-epoch curves from `infomamba fit` logs (the "[infomamba] epoch N step S (..s): name=value ..." lines),
one panel per group of logs, one line per log; for runs whose metrics were not kept otherwise (device calls).

    python benchmarks/epoch_curves.py docs/runs/speech_ab/*.log --group-by-prefix --metric train/task \
        --out docs/speech_ab_train_ctc.png
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

EPOCH_LINE = re.compile(r"^\[infomamba\] epoch (\d+) step (\d+) \([^)]*\): (.*)$")


def epoch_metrics(text: str) -> list[dict[str, float]]:
    """One dict per epoch line: 'epoch', 'step' and every name=value pair of the line."""
    rows = []
    for line in text.splitlines():
        match = EPOCH_LINE.match(line.strip())
        if match:
            row = {"epoch": float(match[1]), "step": float(match[2])}
            row.update((k, float(v)) for k, v in (pair.split("=", 1) for pair in match[3].split()))
            rows.append(row)
    return rows


def plot(groups: dict[str, dict[str, list[dict[str, float]]]], metric: str, out: Path) -> None:
    """groups: panel title -> {line label -> epoch rows}; x = epoch, y = `metric` (lines without it are skipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), sharey=True, squeeze=False)
    for ax, (title, runs) in zip(axes[0], groups.items()):
        for label, rows in runs.items():
            points = [(r["epoch"], r[metric]) for r in rows if metric in r]
            if points:
                ax.plot(*zip(*points), marker=".", label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(metric)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logs", nargs="+", type=Path)
    p.add_argument("--metric", default="train/task")
    p.add_argument("--group-by-prefix", action="store_true",
                   help="one panel per file-name prefix before the first '_' (else one panel)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    groups: dict[str, dict[str, list[dict[str, float]]]] = {}
    for log in sorted(args.logs):
        group, _, label = log.stem.partition("_") if args.group_by_prefix else ("", "", log.stem)
        rows = epoch_metrics(log.read_text())
        if not rows:
            raise SystemExit(f"{log}: no '[infomamba] epoch' lines")
        groups.setdefault(group, {})[label or log.stem] = rows
    found = {key for runs in groups.values() for rows in runs.values() for row in rows for key in row}
    if args.metric not in found:
        raise SystemExit(f"no log has {args.metric}; they have: {', '.join(sorted(found - {'epoch', 'step'}))}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(groups, args.metric, args.out)
    print(f"wrote {args.out} ({sum(map(len, groups.values()))} runs, {len(groups)} panels)")


if __name__ == "__main__":
    main()
