"""Run a table's rows over seeds through the real CLI; write mean ± std, every run, and validation curves.

    python benchmarks/reproduce.py --table table5_imdb                       # rows x seeds of tables.yaml
    python benchmarks/reproduce.py --table table5_imdb --rows full no_mi --seeds 0 1 2 --docs docs/results.md
    python benchmarks/reproduce.py --table mixers_imdb --dry-run             # print the commands only
    python benchmarks/reproduce.py --name imdb_attention --seeds 0 1 -- \\
        --task text --config configs/imdb.yaml --model.encoder.mixer=attention   # one ad-hoc row
    python benchmarks/reproduce.py --table table5_imdb --max-steps 20 -- --data.root .devdata/imdb

Each row x seed is one run in its own subprocess, in `<out>/runs/<row>/seed<N>/`:
  fit   `infomamba fit --task T <base> <row> [overrides] --seed_everything N --run_dir .../fit`
  test  `infomamba test --task T --config .../fit/config.yaml --ckpt_path <best> --model.compile=false --run_dir
        .../test` (eager: one evaluation pass is not worth a compilation)
The CLI's `--run_dir` puts the run's config.yaml, metrics.csv (CSVLogger) and checkpoints/ exactly there,
so nothing is guessed: the test metrics are the last logged values of `.../test/metrics.csv`, the
validation curve is the `val_metric` column of `.../fit/metrics.csv`, and the checkpoint tested is the
fit's `checkpoints/best-*.ckpt` (the best on validation; `last.ckpt` when no validation ran).
Everything after `--` is appended to every fit command (so it overrides the table); test gets the same
minus trainer options (it runs on one device), except those in TEST_TRAINER_OPTIONS.

Resumable: a finished run is recorded in `<out>/results.json` (written atomically) and skipped when the
same command is given again; a run recorded with other arguments stops the runner (use another --out,
or --redo). An unfinished run continues: a fit that stopped (Ctrl-C, SIGTERM, a crash after its first
checkpoint) resumes from its `last.ckpt` with `--ckpt_path last`; a finished fit is not run again.
Ctrl-C, SIGTERM or SIGHUP (a closed terminal; not under nohup) to the runner stops the running fits at their next
step with last.ckpt written: the fits run in their own sessions and would otherwise go on unwatched.

While a fit runs, each of its epochs is shown as one line (with the table's val_metric); with --jobs N and no
OMP_NUM_THREADS set, each run gets cores / N threads.
After every finished run: `<out>/runs.csv` (one line per run, every test metric), `<out>/table.md`
(mean ± std per row, n seeds, each seed's value, the epochs the runs did), `<out>/curves.png` (validation
curves, mean over seeds per row, ± std shaded). `--docs docs/results.md` also writes (or replaces) the table's
section there, between `<!-- reproduce:NAME start -->` and `<!-- reproduce:NAME end -->`, with the command, device,
commit, dates and seeds, and copies the CSV, the PNG and results.json (as reproduce_NAME.json) next to it.
`--report-only` rewrites all of these from results.json without running anything (e.g. after copying
results.json back from a GPU machine). `--merge` adds the runs of other results.json files of the table
first, so seeds run in separate calls or on separate machines make one table:

    python benchmarks/reproduce.py --table mixers_imdb --merge docs/reproduce_mixers_imdb.json \
        /tmp/call2/results.json --report-only --docs docs/results.md

Relative paths in tables and overrides are taken from the repository root (the subprocesses run there).
One runner per --out at a time (a lock file refuses a second).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from infomamba.arguments import positive
from infomamba.tasks.registry import get_task

REPO = Path(__file__).resolve().parents[1]
TABLES = Path(__file__).with_name("tables.yaml")
CLI = [sys.executable, "-m", "infomamba.cli"]
QUIET = ["--trainer.enable_progress_bar=false"]  # progress bars make unreadable log files
TEST_TRAINER_OPTIONS = ("accelerator", "precision", "limit_test_batches", "enable_progress_bar",
                        "enable_model_summary", "deterministic")
EPOCH_LINE = re.compile(r"^\[infomamba\] epoch (\d+) step (\d+) \(([^)]*)\): (.*)$")
FIT_DONE_LINE = re.compile(r"^\[infomamba\] fit done in \S+ \(step (\d+)\)")


# ---- tables -----------------------------------------------------------------------------------------

@dataclass
class Table:
    name: str
    task: str = "text"
    base: list[str] = field(default_factory=list)
    rows: dict[str, list[str]] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    metrics: list[str] = field(default_factory=lambda: ["test/acc"])
    val_metric: str = ""
    mode: str = ""
    percent: bool = True
    title: str = ""

    def __post_init__(self):
        """val_metric and mode default to what the task picks its best checkpoint by (its `monitor`), and must
        be that: the tested checkpoint is the best by it, so "best val" by another metric would not be its."""
        try:
            monitor = get_task(self.task).monitor
        except KeyError as err:
            raise SystemExit(f"table {self.name}: {err.args[0]}") from None
        self.val_metric, self.mode = self.val_metric or monitor[0], self.mode or monitor[1]
        self.title = self.title or self.name
        if (self.val_metric, self.mode) != tuple(monitor):
            raise SystemExit(f"table {self.name}: val_metric {self.val_metric} ({self.mode}) is not what --task "
                             f"{self.task} chooses its best checkpoint by ({monitor[0]}, {monitor[1]})")


def load_table(name: str, path: Path = TABLES) -> Table:
    try:
        tables = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise SystemExit(f"--tables {path}: {err}") from None
    if name not in tables:
        raise SystemExit(f"no table {name!r} in {path}; tables: {', '.join(tables)}")
    spec = dict(tables[name])
    rows, paper = {}, {}
    for row, value in (spec.pop("rows", None) or {}).items():
        if isinstance(value, dict):
            if "paper" in value:
                paper[row] = float(value["paper"])
            value = value.get("args") or []
        rows[str(row)] = [str(a) for a in value]
    spec["base"] = [str(a) for a in spec.get("base") or []]
    return Table(name=name, rows=rows, paper=paper, **spec)


def adhoc_table(name: str, cli_args: list[str]) -> Table:
    """One row named `name` from a command line (`--task` and `--seed_everything` taken out of it)."""
    task, rest = take_option(cli_args, "--task")
    seed, rest = take_option(rest, "--seed_everything")
    return Table(name=name, task=task or "text", base=rest, rows={name: []}, seeds=[int(seed or 0)])


def take_option(args: list[str], key: str) -> tuple[str | None, list[str]]:
    """(value of `key` or None, args without it); `--key value` and `--key=value` both."""
    value, rest, i = None, [], 0
    while i < len(args):
        if args[i] == key and i + 1 < len(args):
            value, i = args[i + 1], i + 2
            continue
        if args[i].startswith(key + "="):
            value = args[i].split("=", 1)[1]
        else:
            rest.append(args[i])
        i += 1
    return value, rest


def option_groups(args: list[str]) -> list[list[str]]:
    """`--a 1 --b=2 --c x y` -> [['--a', '1'], ['--b=2'], ['--c', 'x', 'y']]."""
    groups: list[list[str]] = []
    for arg in args:
        if arg.startswith("--") or not groups:
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return groups


def test_overrides(extra: list[str]) -> list[str]:
    """The fit overrides that also apply to test: all but trainer options (test runs on one device)."""
    keep = []
    for group in option_groups(extra):
        key = group[0].split("=", 1)[0]
        if not key.startswith("--trainer.") or key[len("--trainer."):] in TEST_TRAINER_OPTIONS:
            keep += group
    return keep


def fit_args(table: Table, row: str, extra: list[str]) -> list[str]:
    """What identifies a run besides its seed: the fit command's arguments, before seed and folder."""
    return ["--task", table.task, *table.base, *table.rows[row], *QUIET, *extra]


def data_roots(args: list[str]) -> list[Path]:
    """The data folders a fit reads: `--data.root` on its command line and `data.root` of its --config files."""
    roots = []
    for group in option_groups(args):
        key, _, value = group[0].partition("=")
        value = value or (group[1] if len(group) > 1 else "")
        if key == "--config" and (REPO / value).is_file():
            value = ((yaml.safe_load((REPO / value).read_text()) or {}).get("data") or {}).get("root") or ""
        elif key != "--data.root":
            continue
        if value:
            roots.append((REPO / value).resolve())
    return roots


def fit_command(cli: list[str], args: list[str], seed: int, run_dir: Path, resume: bool = False) -> list[str]:
    return [*cli, "fit", *args, "--seed_everything", str(seed), "--run_dir", str(run_dir),
            *(["--ckpt_path", "last"] if resume else [])]


def test_command(cli: list[str], task: str, fit_dir: Path, ckpt: Path | str, test_dir: Path,
                 extra: list[str]) -> list[str]:
    """The test of a fit's best checkpoint, eager even when the fit compiled: compiling the evaluation graph costs
    more than the one pass it would speed up (a CUDA-graph Fashion-MNIST test was still compiling when its guard
    stopped it), and the metrics do not depend on it."""
    return [*cli, "test", "--task", task, "--config", str(fit_dir / "config.yaml"), "--ckpt_path", str(ckpt),
            *QUIET, *test_overrides(extra), "--model.compile=false", "--trainer.devices=1", "--run_dir", str(test_dir)]


# ---- run folders and their metrics --------------------------------------------------------------------

def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv rows as {column: float}, empty cells left out."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if k and v not in ("", None)} for row in csv.DictReader(f)]


def last_values(rows: list[dict[str, float]]) -> dict[str, float]:
    merged: dict[str, float] = {}
    for row in rows:
        merged.update(row)
    return merged


def val_curve(rows: list[dict[str, float]], key: str) -> list[list[float]]:
    """[[step, epoch, value], ...] of every validation, by step (a resumed run's repeated step: the last). The step
    is the one logged: Lightning logs a validation at the 0-based index of the training step before it."""
    by_step = {row["step"]: [row["step"], row.get("epoch", math.nan), row[key]] for row in rows if key in row}
    return [by_step[s] for s in sorted(by_step)]


def steps_trained(fit_log: Path) -> int | None:
    """The optimizer steps a finished fit trained, from the last "fit done ... (step N)" line of its log (attempts
    are appended to one log); None without one. metrics.csv cannot say: a fit stopped between two logged steps
    (max_steps, max_time) trained past the last one."""
    text = fit_log.read_text(errors="replace") if fit_log.is_file() else ""
    done = [FIT_DONE_LINE.match(line.strip()) for line in text.splitlines()]
    return next((int(match[1]) for match in reversed(done) if match), None)


def best_checkpoint(fit_dir: Path) -> Path:
    """The fit's best-on-validation checkpoint (ModelCheckpoint keeps one), else last.ckpt."""
    best = sorted((fit_dir / "checkpoints").glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime)
    return best[-1] if best else fit_dir / "checkpoints" / "last.ckpt"


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace `path` whole (temp file + rename), keeping its mode (a new file: the umask's, not mkstemp's 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        mode = path.stat().st_mode & 0o7777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Results:
    """`<out>/results.json`: {"table": name, "runs": [record, ...]}, one record per finished row x seed."""

    def __init__(self, out: Path, table: str):
        self.path, self.table = out / "results.json", table
        data = read_json(self.path) or {"table": table, "runs": []}
        if data.get("table") != table:
            raise SystemExit(f"{self.path} holds table {data.get('table')!r}, not {table!r}: use another --out")
        self.runs = {(r["row"], r["seed"]): r for r in data["runs"]}

    def add(self, record: dict) -> None:
        self.runs[(record["row"], record["seed"])] = record
        self.save()

    def merge(self, path: Path) -> int:
        """Add the runs of another results.json of this table (another call or machine); returns how many were new.
        A row x seed recorded differently in both stops: which one to keep is not this tool's guess."""
        if not path.is_file():
            raise SystemExit(f"--merge {path}: no such file")
        other = read_json(path)
        if other.get("table") != self.table:
            raise SystemExit(f"--merge {path}: holds table {other.get('table')!r}, not {self.table!r}")
        new = [r for r in other["runs"] if (r["row"], r["seed"]) not in self.runs]
        clash = [f"{r['row']} seed {r['seed']}" for r in other["runs"]
                 if self.runs.get((r["row"], r["seed"]), r) != r]
        if clash:
            raise SystemExit(f"--merge {path}: {', '.join(clash)} recorded differently in {self.path}; "
                             "use another --out")
        for record in new:
            self.runs[(record["row"], record["seed"])] = record
        if new:
            self.save()
        return len(new)

    def drop(self, key: tuple[str, int]) -> None:
        if self.runs.pop(key, None) is not None:
            self.save()

    def save(self) -> None:
        runs = sorted(self.runs.values(), key=lambda r: (r["row"], r["seed"]))
        atomic_write(self.path, json.dumps({"table": self.table, "runs": runs}, indent=1) + "\n")


# ---- reports ------------------------------------------------------------------------------------------

def aggregate(values: list[float]) -> tuple[float, float | None, int]:
    """(mean, sample standard deviation or None for a single value, n)."""
    if not values:
        return math.nan, None, 0
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values)


def fmt(mean: float, std: float | None, percent: bool) -> str:
    scale = 100.0 if percent else 1.0
    digits = 2 if percent else 4
    text = f"{mean * scale:.{digits}f}"
    return text + (f" ± {std * scale:.{digits}f}" if std is not None else " ± –")


def ordered(table: Table, records: list[dict]) -> dict[str, list[dict]]:
    """Records grouped by row, in the table's row order (rows no longer in the table at the end)."""
    rows: dict[str, list[dict]] = {}
    for row in [*table.rows, *sorted({r["row"] for r in records} - set(table.rows))]:
        found = sorted((r for r in records if r["row"] == row), key=lambda r: r["seed"])
        if found:
            rows[row] = found
    return rows


def markdown_table(table: Table, records: list[dict]) -> str:
    unit = " (%)" if table.percent else ""
    head = ["row", "n", *(f"{m}{unit}" for m in table.metrics), f"{table.metrics[0]} by seed",
            f"best {table.val_metric}{unit}", "epochs", "steps", "fit wall (s, mean)"]
    if table.paper:
        head.insert(2 + len(table.metrics), "paper")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    scale = 100.0 if table.percent else 1.0
    for row, runs in ordered(table, records).items():
        cells = [row, str(len(runs))]
        for metric in table.metrics:
            values = [r["test"][metric] for r in runs if metric in r["test"]]
            cells.append(fmt(*aggregate(values)[:2], table.percent) if values else "–")
        if table.paper:
            cells.append(f"{table.paper[row]:g}" if row in table.paper else "")
        main = table.metrics[0]
        cells.append(", ".join(f"{r['seed']}: {r['test'][main] * scale:.2f}" for r in runs if main in r["test"]))
        vals = [r["val_best"] for r in runs if r.get("val_best") is not None]
        cells.append(fmt(*aggregate(vals)[:2], table.percent) if vals else "–")
        for key in ("epochs", "steps"):  # a guard's or a smoke run's (--max-steps) early stop shows here
            cells.append(", ".join(map(str, sorted({r[key] for r in runs if r.get(key) is not None}))) or "–")
        cells.append(f"{statistics.fmean(r['fit_s'] for r in runs):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


RECORD_COLUMNS = ["row", "seed", "val_best", "epochs", "steps", "fit_s", "test_s", "resumed", "checkpoint",
                  "run_dir", "device", "commit", "finished"]


def runs_csv(table: Table, records: list[dict]) -> str:
    tests = [*table.metrics, *sorted({k for r in records for k in r["test"]} - set(table.metrics))]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*RECORD_COLUMNS[:2], *tests, *RECORD_COLUMNS[2:]])
    for runs in ordered(table, records).values():
        for r in runs:
            writer.writerow([r["row"], r["seed"], *(r["test"].get(k, "") for k in tests),
                             *(r.get(k, "") for k in RECORD_COLUMNS[2:])])
    return out.getvalue()


def mean_curve(runs: list[dict]) -> tuple[list[float], list[float], list[float]]:
    """Validation curves of several seeds aligned by validation index: (mean steps trained, mean, std); a
    validation logged at step s (0-based) follows s + 1 steps of training."""
    curves = [r["curve"] for r in runs if r.get("curve")]
    steps, means, stds = [], [], []
    for k in range(max((len(c) for c in curves), default=0)):
        points = [c[k] for c in curves if k < len(c)]
        steps.append(statistics.fmean(p[0] + 1 for p in points))
        values = [p[2] for p in points]
        means.append(statistics.fmean(values))
        stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    return steps, means, stds


def plot_curves(table: Table, records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 100.0 if table.percent else 1.0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row, runs in ordered(table, records).items():
        steps, means, stds = mean_curve(runs)
        if not steps:
            continue
        mean = [m * scale for m in means]
        curves = sum(bool(r.get("curve")) for r in runs)
        line, = ax.plot(steps, mean, marker="o", markersize=3, label=f"{row} (n={curves})")
        if curves > 1:
            ax.fill_between(steps, [m - s * scale for m, s in zip(mean, stds)],
                            [m + s * scale for m, s in zip(mean, stds)], color=line.get_color(), alpha=0.15)
    ax.set_xlabel("training steps")
    ax.set_ylabel(table.val_metric + (" (%)" if table.percent else ""))
    ax.set_title(textwrap.fill(f"{table.title}: validation, mean ± std over seeds", 90), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def markers(name: str) -> tuple[str, str]:
    return f"<!-- reproduce:{name} start -->", f"<!-- reproduce:{name} end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with what lies between the markers of `name` replaced by `body` (appended if absent). A section
    moved under another heading keeps its heading's level: `body`'s first line, a heading, takes the level of the
    one it replaces."""
    start, end = markers(name)
    body = "\n" + body.strip("\n") + "\n"
    i, j = text.find(start), text.find(end)
    if i < 0 and j < 0:
        return text.rstrip("\n") + "\n\n" + start + body + end + "\n"
    if i < 0 or j < i:
        raise SystemExit(f"the markers {start} ... {end} are not in order (or one is missing): fix them by hand")
    old = re.match(r"\n(#+) ", text[i + len(start):j])
    if old:
        body = re.sub(r"^\n#+ ", f"\n{old[1]} ", body)
    return text[:i + len(start)] + body + text[j:]


def docs_section(table: Table, records: list[dict], png: str, csv_name: str, json_name: str) -> str:
    commands = sorted({r["command"] for r in records})
    devices = sorted({r["device"] for r in records})
    commits = sorted({r["commit"] for r in records})
    dates = sorted({r["finished"][:10] for r in records})
    seeds = sorted({r["seed"] for r in records})
    lines = [f"## {table.title}", "",
             "Command" + ("s" if len(commands) > 1 else "") + ": " + "; ".join(f"`{c}`" for c in commands), "",
             f"Device: {', '.join(devices)}. Commit: {', '.join(commits)}. "
             f"Date: {dates[0]}{' to ' + dates[-1] if len(dates) > 1 else ''}. Seeds: {', '.join(map(str, seeds))}. "
             f"Each run: `infomamba fit`, then `infomamba test` on its best-on-validation checkpoint "
             f"({table.val_metric}, {table.mode}); mean ± sample std over seeds.", "",
             markdown_table(table, records), f"![validation curves]({png})", "",
             f"Every run: [{csv_name}]({csv_name}); [{json_name}]({json_name}) for `--merge`."]
    return "\n".join(lines)


def write_reports(table: Table, results: Results, out: Path, docs: Path | None = None) -> None:
    records = list(results.runs.values())
    if not records:
        return
    atomic_write(out / "runs.csv", runs_csv(table, records))
    atomic_write(out / "table.md", markdown_table(table, records))
    plot_curves(table, records, out / "curves.png")
    if docs is not None:
        png, csv_name, json_name = (f"reproduce_{table.name}.{ext}" for ext in ("png", "csv", "json"))
        for source, name in ((out / "curves.png", png), (out / "runs.csv", csv_name), (results.path, json_name)):
            atomic_write(docs.parent / name, source.read_bytes())
        text = docs.read_text() if docs.is_file() else "# Training results (measured)\n"
        section = docs_section(table, records, png, csv_name, json_name)
        atomic_write(docs, replace_section(text, table.name, section))


# ---- running ------------------------------------------------------------------------------------------

def device_query(env: dict) -> subprocess.Popen:
    code = ("import os, torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() "
            "else f'CPU ({os.cpu_count()} cores)')")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env, cwd=REPO)


def git_commit() -> str:
    """The checkout's commit (+dirty), or $INFOMAMBA_COMMIT where the tree was copied without its history."""
    if os.environ.get("INFOMAMBA_COMMIT"):
        return os.environ["INFOMAMBA_COMMIT"]

    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError as err:
        raise SystemExit(f"{path}: not JSON ({err})") from None


class Run:
    """One row x seed: fit (resumed when it stopped), then test; `<seed dir>/state.json` says how far it got."""

    def __init__(self, table: Table, row: str, seed: int, extra: list[str], out: Path):
        self.table, self.row, self.seed, self.extra = table, row, seed, extra
        self.dir = out / "runs" / row / f"seed{seed}"
        self.fit_dir, self.test_dir, self.state_path = self.dir / "fit", self.dir / "test", self.dir / "state.json"
        self.args = fit_args(table, row, extra)
        self.stage, self.ckpt, self.log_offset = "", None, 0

    @property
    def label(self) -> str:
        return f"{self.row} seed {self.seed}"

    def state(self) -> dict:
        state = read_json(self.state_path)
        return state if state.get("args") == self.args else {"args": self.args, "fit_s": 0.0, "fit_done": False}

    def next_command(self, cli: list[str]) -> list[str]:
        """The next stage's command (fit or test), clearing what a killed attempt of it left behind."""
        state = self.state()
        if not state["fit_done"]:
            resume = bool(read_json(self.state_path).get("args") == self.args
                          and (self.fit_dir / "checkpoints" / "last.ckpt").is_file())
            if not resume:  # a fresh start: the time of an attempt thrown away is not this fit's
                shutil.rmtree(self.dir, ignore_errors=True)
                state = {"args": self.args, "fit_s": 0.0, "fit_done": False}
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.state_path, json.dumps(state))
            self.stage = "fit (resumed from last.ckpt)" if resume else "fit"
            return fit_command(cli, self.args, self.seed, self.fit_dir, resume)
        shutil.rmtree(self.test_dir, ignore_errors=True)
        self.stage, self.ckpt = "test", best_checkpoint(self.fit_dir)
        return test_command(cli, self.table.task, self.fit_dir, self.ckpt, self.test_dir, self.extra)

    def progress(self, log: Path) -> list[str]:
        """The epoch lines the running stage logged since the last call: 'epoch N step S (..s) <val_metric>=v'."""
        with log.open("rb") as f:
            f.seek(self.log_offset)
            text = f.read()
        complete = text[:text.rfind(b"\n") + 1]
        self.log_offset += len(complete)
        shown = []
        for line in complete.decode(errors="replace").splitlines():
            match = EPOCH_LINE.match(line.strip())
            if match:
                value = [p for p in match[4].split() if p.startswith(self.table.val_metric + "=")]
                shown.append(" ".join([f"epoch {match[1]} step {match[2]} ({match[3]})", *value]))
        return shown

    def stage_done(self, seconds: float) -> None:
        if self.stage.startswith("fit"):
            state = self.state()
            state.update(fit_s=state["fit_s"] + seconds, fit_done=True, resumed=self.stage != "fit")
            atomic_write(self.state_path, json.dumps(state))

    def stage_failed(self, seconds: float) -> None:
        if self.stage.startswith("fit"):
            state = self.state()
            state["fit_s"] += seconds  # a resumed fit's time is the sum of its attempts
            atomic_write(self.state_path, json.dumps(state))

    def record(self, test_s: float, out: Path, command: str, device: str, commit: str) -> dict:
        test = {k: v for k, v in last_values(read_metrics(self.test_dir / "metrics.csv")).items()
                if k.startswith("test/")}
        missing = [m for m in self.table.metrics if m not in test]
        if missing:
            raise RuntimeError(f"{self.test_dir / 'metrics.csv'} has no {', '.join(missing)} "
                               f"(it has: {', '.join(sorted(test)) or 'nothing'})")
        fit_rows = read_metrics(self.fit_dir / "metrics.csv")
        curve = val_curve(fit_rows, self.table.val_metric)
        values = [c[2] for c in curve]
        state = self.state()
        return {
            "row": self.row, "seed": self.seed, "test": test,
            "val_best": (max if self.table.mode == "max" else min)(values) if values else None,
            "curve": curve,
            "epochs": int(max((r["epoch"] for r in fit_rows if "epoch" in r), default=-1)) + 1,
            "steps": steps_trained(self.dir / "fit.log"),
            "fit_s": round(state["fit_s"], 1), "test_s": round(test_s, 1), "resumed": bool(state.get("resumed")),
            "checkpoint": str(self.ckpt.relative_to(out)), "run_dir": str(self.dir.relative_to(out)),
            "fit_args": self.args, "command": command, "device": device, "commit": commit,
            "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        }


def tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def describe(record: dict, table: Table) -> str:
    scale, unit = (100.0, "%") if table.percent else (1.0, "")
    value, best = record["test"].get(table.metrics[0]), record.get("val_best")
    shown = f"{table.metrics[0]}=" + (f"{value * scale:.2f}{unit}" if value is not None else "?")
    if best is not None:
        shown += f" best {table.val_metric}={best * scale:.2f}{unit}"
    return f"{shown}, fit {record['fit_s']:.0f}s test {record['test_s']:.0f}s"


def say(text: str) -> None:
    print(f"[reproduce] {text}", flush=True)


def run_all(runs: list[Run], table: Table, results: Results, out: Path, cli: list[str], jobs: int,
            devices: list[str], command: str, docs: Path | None, drop_checkpoints: bool, summary: bool) -> int:
    """Run `runs`, `jobs` at a time; returns the exit status (0: all recorded)."""
    env = dict(os.environ)
    if devices:
        env["CUDA_VISIBLE_DEVICES"] = devices[0]
    if jobs > 1 and "OMP_NUM_THREADS" not in env:  # as torchrun does: N runs of all cores each would thrash
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
        say(f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']} for each of {jobs} runs at once "
            f"({os.cpu_count()} cores; set it to choose)")
    query, device = device_query(env), None
    commit = git_commit()
    pending, active, failed, done = list(runs), {}, [], 0
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        say(f"{signal.Signals(signum).name}: no new runs; the running ones stop at their next step with "
            "last.ckpt written (rerun the same command to continue)" if len(stopping) == 1 else "stopping now")
        for proc in active:
            proc.send_signal(signal.SIGINT)

    handled = [signal.SIGINT, signal.SIGTERM] + [signal.SIGHUP] * (signal.getsignal(signal.SIGHUP) != signal.SIG_IGN)
    old = {s: signal.signal(s, on_signal) for s in handled}
    try:
        while active or (pending and not stopping):
            free = [i for i in range(jobs) if i not in {slot for _, _, _, slot in active.values()}]
            while pending and free and not stopping:
                run, slot = pending.pop(0), free.pop(0)
                launch(run, slot, active, cli, env, devices, start=True, total=len(runs), done=done)
            time.sleep(0.2)
            for run, log, _, _ in active.values():
                for line in run.progress(Path(log.name)):
                    say(f"      {run.label}: {line}")
            for proc in [p for p in active if p.poll() is not None]:
                run, log, began, slot = active.pop(proc)
                log.close()
                seconds = time.time() - began
                if proc.returncode != 0:
                    run.stage_failed(seconds)
                    if not stopping:
                        failed.append(run)
                        say(f"FAILED {run.label} ({run.stage}, exit {proc.returncode}); log {log.name}:\n"
                            + tail(Path(log.name)))
                    continue
                run.stage_done(seconds)
                if run.stage.startswith("fit"):
                    if not stopping:
                        launch(run, slot, active, cli, env, devices, start=False, total=len(runs), done=done)
                    continue
                if device is None:
                    device = (query.communicate()[0] or "").strip() or "unknown"
                try:
                    record = run.record(seconds, out, command, device, commit)
                except RuntimeError as err:
                    failed.append(run)
                    say(f"FAILED {run.label}: {err}")
                    continue
                results.add(record)
                done += 1
                if drop_checkpoints:
                    shutil.rmtree(run.fit_dir / "checkpoints", ignore_errors=True)
                write_reports(table, results, out, docs)
                say(f"done  {run.label}: {describe(record, table)} ({done}/{len(runs)})")
                if summary:
                    print("SUMMARY " + json.dumps({k: v for k, v in record.items() if k != "curve"}), flush=True)
    except BaseException:  # the runner itself broke: its runs stop with last.ckpt written, then it exits
        for proc in active:
            proc.send_signal(signal.SIGINT)
            proc.wait()
        raise
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if query.poll() is None:
            query.kill()
            query.wait()
    if stopping:
        say(f"stopped: {done} of {len(runs)} runs finished; rerun the same command to continue")
        return 130
    if failed:
        say(f"{len(failed)} run(s) failed: {', '.join(r.label for r in failed)}; rerun to retry them")
        return 1
    return 0


def launch(run: Run, slot: int, active: dict, cli: list[str], env: dict, devices: list[str], start: bool,
           total: int, done: int) -> None:
    cmd = run.next_command(cli)
    run_env = dict(env)
    if devices:
        run_env["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]
    if start:
        where = f" on GPU {run_env['CUDA_VISIBLE_DEVICES']}" if devices else ""
        say(f"start {run.label}: {run.stage}{where} ({done}/{total} done), logs in {run.dir}")
    log = open(run.dir / f"{run.stage.split()[0]}.log", "a")
    log.write(f"$ {shlex.join(cmd)}\n")
    log.flush()
    run.log_offset = log.tell()
    # Own session: a Ctrl-C at the terminal reaches the runner only, which passes one SIGINT on.
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=run_env, start_new_session=True)
    active[proc] = (run, log, time.time(), slot)


class OutLock:
    """One runner per --out: an exclusive lock on `<out>/.lock`, released when the process ends."""

    def __init__(self, out: Path):
        import fcntl

        out.mkdir(parents=True, exist_ok=True)
        self.file = open(out / ".lock", "w")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SystemExit(f"another reproduce.py is running with --out {out}") from None


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--table", help="a table of --tables")
    what.add_argument("--name", help="one ad-hoc row: the CLI arguments after -- (with --task, default text)")
    parser.add_argument("--tables", type=Path, default=TABLES, help="the tables file (default: %(default)s)")
    parser.add_argument("--rows", nargs="+", help="rows to run (default: all of the table)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the table's)")
    parser.add_argument("--out", type=Path, help="results folder (default: runs/reproduce/<table or name>)")
    parser.add_argument("--max-steps", type=int, help="--trainer.max_steps for every fit (smoke runs)")
    parser.add_argument("--max-epochs", type=int, help="--trainer.max_epochs for every fit")
    parser.add_argument("--jobs", type=positive, default=1, help="runs at once (default 1)")
    parser.add_argument("--devices", nargs="+", default=[],
                        help="CUDA devices handed out round-robin, one per job slot (CUDA_VISIBLE_DEVICES)")
    parser.add_argument("--redo", action="store_true", help="run the selected rows x seeds again even if recorded")
    parser.add_argument("--docs", type=Path, help="also write the table's section into this markdown file")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--report-only", action="store_true", help="rewrite the reports from results.json")
    parser.add_argument("--merge", nargs="+", type=Path, default=[],
                        help="results.json files of this table from other calls or machines (e.g. the "
                             "docs/reproduce_<table>.json that --docs writes): their runs join --out's first")
    parser.add_argument("--drop-checkpoints", action="store_true", help="delete a run's checkpoints once recorded")
    parser.add_argument("--summary", action="store_true", help="print a SUMMARY <json> line per finished run")
    parser.add_argument("--cli", default=shlex.join(CLI), help="the infomamba CLI command (default: %(default)s)")
    return parser.parse_args(argv[:split]), argv[split + 1:]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parse(argv)
    if args.table:
        table = load_table(args.table, args.tables)
        if any(a == "--task" or a.startswith("--task=") for a in extra):
            raise SystemExit(f"table {table.name} sets --task {table.task}; leave --task out of the overrides")
    else:
        table, extra = adhoc_table(args.name, extra), []
    extra += [f"--trainer.max_steps={args.max_steps}"] * (args.max_steps is not None)
    extra += [f"--trainer.max_epochs={args.max_epochs}"] * (args.max_epochs is not None)
    unknown = sorted(set(args.rows or []) - set(table.rows))
    if unknown:
        raise SystemExit(f"table {table.name} has no row {', '.join(unknown)}; rows: {', '.join(table.rows)}")
    rows = [r for r in table.rows if r in (args.rows or table.rows)]
    seeds = args.seeds if args.seeds is not None else table.seeds
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise SystemExit(f"seed {', '.join(map(str, twice))} given twice: each row x seed is one run and folder")
    out = (args.out or Path("runs/reproduce") / table.name).resolve()
    if out.exists() and not out.is_dir():
        raise SystemExit(f"--out {out} is a file: give a folder")
    if args.docs and args.docs.is_dir():
        raise SystemExit(f"--docs {args.docs} is a folder: give the markdown file (e.g. docs/results.md)")
    cli = shlex.split(args.cli)
    for root in {root for row in rows for root in data_roots(fit_args(table, row, extra))}:
        for flag, target in (("--out", out), ("--docs", args.docs and args.docs.resolve().parent)):
            if target and (target == root or root in target.parents):
                raise SystemExit(f"{flag} {target} is inside the data folder {root}: write results elsewhere")
    command = "python benchmarks/reproduce.py " + shlex.join(argv)

    lock = OutLock(out) if args.merge else None  # merging writes results.json: no runner may write it meanwhile
    results = Results(out, table.name)
    for path in args.merge:
        say(f"merged {results.merge(path)} run(s) of {path}")
    if args.report_only:
        if not results.runs:
            raise SystemExit(f"--report-only: no runs recorded in {results.path} (nor merged): nothing to report")
        write_reports(table, results, out, args.docs)
        say(f"reports of {len(results.runs)} recorded run(s) written to {out}"
            + (f" and {args.docs}" if args.docs else ""))
        return 0
    runs, skipped, changed = [], [], []
    for row in rows:
        for seed in seeds:
            run = Run(table, row, seed, extra, out)
            record = results.runs.get((row, seed))
            if record is not None and not args.redo:
                (skipped if record["fit_args"] == run.args else changed).append(run)
            else:
                runs.append(run)
    if changed:
        raise SystemExit("recorded in {} with other arguments: {}; use another --out, or --redo to run them "
                         "again".format(results.path, ", ".join(r.label for r in changed)))
    for run in skipped:
        say(f"skip  {run.label}: recorded ({describe(results.runs[(run.row, run.seed)], table)})")
    if args.dry_run:
        say(f"{len(runs)} run(s) to do, in {REPO}:")
        for run in runs:
            print(shlex.join(fit_command(cli, run.args, run.seed, run.fit_dir)))
            print(shlex.join(test_command(cli, table.task, run.fit_dir, run.fit_dir / "checkpoints" / "best-*.ckpt",
                                          run.test_dir, extra)))
        return 0
    lock = lock or OutLock(out)  # noqa: F841 (held until the process ends)
    for run in runs:
        if args.redo:
            results.drop((run.row, run.seed))
            shutil.rmtree(run.dir, ignore_errors=True)
    if not runs:
        write_reports(table, results, out, args.docs)
        say(f"nothing to run: all {len(skipped)} run(s) recorded in {results.path}")
        return 0
    say(f"{table.name}: {len(runs)} run(s) ({len(rows)} row(s) x seeds {' '.join(map(str, seeds))}, "
        f"{len(skipped)} already recorded), results in {out}")
    status = run_all(runs, table, results, out, cli, args.jobs, args.devices, command, args.docs,
                     args.drop_checkpoints, args.summary)
    if results.runs:
        say(f"table: {out / 'table.md'}\n" + (out / "table.md").read_text())
    return status


if __name__ == "__main__":
    sys.exit(main())
