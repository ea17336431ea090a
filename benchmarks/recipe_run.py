"""Fit a recipe once, then test its best-on-validation checkpoint: `benchmarks/reproduce.py` with one ad-hoc row.

    python benchmarks/recipe_run.py --name imdb_infomamba --out runs/results -- \
        --task text --config configs/imdb.yaml --model.encoder.mixer=infomamba

is `python benchmarks/reproduce.py --name imdb_infomamba --out runs/results/imdb_infomamba --summary -- ...`
(kept for the scripts in benchmarks/gpu/): the run goes to runs/results/imdb_infomamba/runs/..., its record
to results.json there, and a `SUMMARY <json>` line is printed. Running it again skips a finished run.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", default="runs/results")
    args = parser.parse_args(argv[:split])
    spec = importlib.util.spec_from_file_location("reproduce", Path(__file__).with_name("reproduce.py"))
    reproduce = importlib.util.module_from_spec(spec)
    sys.modules["reproduce"] = reproduce
    spec.loader.exec_module(reproduce)
    return reproduce.main(["--name", args.name, "--out", str(Path(args.out) / args.name), "--summary", "--",
                           *argv[split + 1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
