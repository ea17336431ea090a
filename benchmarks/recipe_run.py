"""Fit a recipe, then test its best-on-validation checkpoint; print and save one JSON summary.

    python benchmarks/recipe_run.py --name imdb_infomamba --out runs/results -- \
        --task text --config configs/imdb.yaml --model.encoder.mixer=infomamba

Everything after `--` goes to `infomamba fit` (and, minus trainer options, to `infomamba test`).
The summary holds the test metrics, the best validation score, the wall time of fit and test, and
the command, so docs/results.md can quote them.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path


def newest(root: Path) -> Path:
    return max(root.glob("*/version_*"), key=lambda p: p.stat().st_mtime)


def metrics(run: Path) -> dict[str, float]:
    merged: dict[str, float] = {}
    with (run / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            merged.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", default="runs/results")
    parser.add_argument("cli", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    fit_args = [a for a in args.cli if a != "--"]
    task = fit_args[fit_args.index("--task") + 1] if "--task" in fit_args else "text"
    root = Path(args.out) / args.name
    logs = [f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}"]
    cmd = [sys.executable, "-m", "infomamba.cli"]
    start = time.time()
    subprocess.run([*cmd, "fit", *fit_args, *logs], check=True)
    fit_s = time.time() - start
    run = newest(root)
    best = sorted((run / "checkpoints").glob("best-*.ckpt"))
    ckpt = best[-1] if best else run / "checkpoints" / "last.ckpt"
    start = time.time()
    subprocess.run([*cmd, "test", "--task", task, "--config", str(run / "config.yaml"), "--ckpt_path", str(ckpt),
                    "--trainer.devices=1", *logs], check=True)
    test_s = time.time() - start
    fit_metrics, test_metrics = metrics(run), metrics(newest(root))
    summary = {
        "name": args.name, "fit_command": "infomamba fit " + " ".join(fit_args), "checkpoint": ckpt.name,
        "fit_seconds": round(fit_s, 1), "test_seconds": round(test_s, 1),
        "epochs_done": int(fit_metrics.get("epoch", -1)) + 1,
        "val": {k: v for k, v in fit_metrics.items() if k.startswith("val/") and ("acc" in k or "wer" in k or "cer" in k)},
        "test": {k: v for k, v in test_metrics.items() if k.startswith("test/") and ("acc" in k or "wer" in k or "cer" in k)},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    print("SUMMARY " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
