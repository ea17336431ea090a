"""`infomamba bench`: latency, throughput, training-step time and peak memory per mixer and resolution
(paper Table 3 / Fig. 4), on one shared image backbone (PatchEmbed -> Encoder -> head), and per
sequence length on the same encoder fed (B, L, D) tokens (long text / speech).

    infomamba bench --mixers infomamba attention mamba --resolutions 224 384 512 1024 --dtype bf16 --train
    infomamba bench --mixers infomamba attention --resolutions --lengths 1024 4096 16384 --train
    infomamba bench ... --compile       # also each mixer under torch.compile (rows "<mixer> +compile")
    infomamba bench ... --compile --compile-modes default reduce-overhead   # + CUDA-graph replay rows
    infomamba bench ... --cuda-graphs   # + each eager step captured in one CUDA graph (rows "<mixer> +graphs")
    infomamba bench --kmax-sweep 25 50 100 200          # Fig. 4: InfoMamba latency vs k_max
    infomamba bench --mixers infomamba 'infomamba{ssm_heads: 12}' attention   # a mixer with options of its own
    infomamba bench ... --train --aux-loss   # the step optimises Eq. 14, as `infomamba fit` does, not cross-entropy

A --mixers entry is a mixer name, or NAME{yaml} with options (a YAML flow mapping) merged over the name's
size-matched options; its rows carry the entry as given as their label. The *_x_attn columns compare each row
with the row labelled plain `attention` of the same sweep and size.

Warm-up runs, CUDA synchronisation, median of repeats, the slowest beside it (a row whose slowest run is more than
twice its median is named on stderr: it was still warming up); the device, software versions and batches (images:
--batch, sequences: --seq-batch) head the output. Each run writes into a folder of its own, named up front (on
stderr) and at the end: a new runs/bench/version_N (one past the highest there, as `infomamba fit` numbers its
runs), or --out FOLDER, refused where it holds an earlier run's results. There go bench.csv, bench.md,
bench.png (throughput vs resolution, log-log, one line per mixer) and bench_lengths.png (likewise vs length),
rewritten after every row, so a cut run keeps its rows; on the GPU bench.md ends with the scan launches the
autotuner picked.

Size-matched mixer options come from the repository's configs/size_matched.yaml, found from any working
folder (--size-matched FILE for another file, '' for each mixer's defaults); rows that are not size-matched
are said so on stderr. Runs on CPU too: the defaults are sized for a GPU, so shrink them (--batch, --dim,
--depth, --resolutions, --warmup, --repeats, --dtype fp32; a line up front names those left at a default).
"""
from __future__ import annotations

import argparse
import csv
import gc
import importlib
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import torch
import torch.nn as nn

from .config import EncoderConfig
from .cuda_graphs import graphed_forward, graphed_train_step
from .encoder import Encoder
from .losses import LossWeights, total_loss
from .mixers import build_mixer, without_training_terms
from .arguments import non_negative, parse_mixer_entry, positive
from .ops.dispatch import optional_import
from .summary import command_size_matched_options


class SequenceModel(nn.Module):
    """(B, L, D) tokens -> Encoder -> mean -> head: the 1-D sweep, no frontend. `aux_loss`: the output is (logits,
    the encoder's per-block `MixerAux`), for a training step that optimises Eq. 14 (`train_loss`)."""

    def __init__(self, config: EncoderConfig, classes: int = 1000, aux_loss: bool = False):
        super().__init__()
        self.encoder = Encoder(config)
        self.head = nn.Linear(config.dim, classes)
        self.aux_loss = aux_loss

    def forward(self, tokens):
        return head_output(self, self.encoder(tokens))


class BenchModel(nn.Module):
    """Patch embedding (16 px, learned positions, resampled per resolution) -> Encoder -> mean -> head; `aux_loss`
    as `SequenceModel`'s."""

    def __init__(self, config: EncoderConfig, patch: int = 16, classes: int = 1000, base: int = 224,
                 aux_loss: bool = False):
        super().__init__()
        from infomamba.tasks.image.frontend import PatchEmbed

        self.patch = PatchEmbed(3, config.dim, patch, pos="learned", img_size=base)
        self.encoder = Encoder(config)
        self.head = nn.Linear(config.dim, classes)
        self.aux_loss = aux_loss

    def forward(self, images):
        tokens, grid = self.patch(images)
        return head_output(self, self.encoder(tokens, None, grid))


def head_output(model: nn.Module, out):
    """A bench model's output from its encoder's: the head's logits of the mean token, with the blocks' `MixerAux`
    beside them where the model was built with `aux_loss`."""
    logits = model.head(out.hidden.mean(1))
    return (logits, out.aux) if model.aux_loss else logits


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_times_ms(fn, device, warmup: int, repeats: int) -> list[float]:
    """Wall time of each of `repeats` calls of fn() in ms, after warm-up, each ended by a device synchronisation."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def time_ms(fn, device, warmup: int, repeats: int) -> float:
    """Median wall time of fn() in ms (`step_times_ms`)."""
    return statistics.median(step_times_ms(fn, device, warmup, repeats))


def new_step() -> None:
    """Tell CUDA-graph replay (torch.compile mode reduce-overhead) that the previous step's outputs are dead."""
    torch.compiler.cudagraph_mark_step_begin()


def train_warmup_steps(warmup: int) -> int:
    """Training steps run before the timed ones: half the inference warm-up, and at least two, since under
    CUDA-graph replay (reduce-overhead) the first step compiles and warms up and the second records the graphs;
    with one, a timed step recorded them (a 224 px InfoMamba step timed at 341 ms, replays take about 52)."""
    return max(2, warmup // 2)


def train_repeats(repeats: int) -> int:
    """Timed training steps: half the inference repeats, rounded up to an odd count of at least three, so that the
    median is one step's time and a single slow step (a late CUDA-graph recording, say) cannot move it, as it moves
    the median of two, their mean."""
    return max(3, repeats // 2) | 1


def _peak_gib(fn, device) -> float:
    """Peak GiB allocated while fn() runs (NaN off CUDA); the peak statistics are reset afterwards."""
    if device.type != "cuda":
        fn()
        return float("nan")
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return peak


def _autocast_dtype(dtype: str) -> torch.dtype | None:
    return torch.bfloat16 if dtype == "bf16" else None


def _autocast(inputs: torch.Tensor, dtype: str):
    return torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")


def train_loss(model: nn.Module, labels: torch.Tensor) -> Callable[[object], torch.Tensor]:
    """The loss a training step optimises from the model's output: cross-entropy of the logits, or for a model
    built with `aux_loss` (its output (logits, aux)) Eq. 14 with the default weights (`losses.total_loss`: the
    pooled streams' InfoNCE and redundancy terms and the MI-hash term beside it, as `infomamba fit` optimises)."""
    if not getattr(model, "aux_loss", False):
        return lambda logits: nn.functional.cross_entropy(logits, labels)
    weights = LossWeights()
    return lambda out: total_loss(nn.functional.cross_entropy(out[0], labels), out[1], labels, weights)["loss"]


def eager_forward(model: nn.Module, inputs: torch.Tensor, dtype: str) -> Callable[[], object]:
    """The inference call of an eager or compiled row: a prediction, without the mixers' loss-only terms
    (`without_training_terms`), as the tasks' predictions run."""
    def forward():
        new_step()
        with torch.inference_mode(), _autocast(inputs, dtype), without_training_terms():
            return model(inputs)
    return forward


def adamw(model: nn.Module, capturable: bool = False) -> torch.optim.AdamW:
    """The bench's optimizer, AdamW at lr 1e-4: torch's fused step where the parameters are on CUDA, as `infomamba
    fit` builds it there (`tasks.base.fused_step`; the bench has no gradient scaler), else torch's default."""
    on_cuda = all(p.is_cuda for p in model.parameters())
    return torch.optim.AdamW(model.parameters(), lr=1e-4, capturable=capturable, fused=on_cuda or None)


def eager_train_step(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, dtype: str,
                     warmup: int) -> Callable[[], object]:
    """An AdamW training step of an eager or compiled row, after its warm-up steps (`train_warmup_steps`)."""
    opt = adamw(model)
    loss_fn = train_loss(model, labels)

    def step():
        new_step()
        with _autocast(inputs, dtype):
            loss = loss_fn(model(inputs))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    time_ms(step, inputs.device, 0, train_warmup_steps(warmup))
    return step


def graphed_forward_call(model: nn.Module, inputs: torch.Tensor, dtype: str) -> Callable[[], object]:
    """The inference call of a "+graphs" row: the eager forward (a prediction, as `eager_forward`'s) captured in a
    CUDA graph (`cuda_graphs.py`)."""
    with without_training_terms():
        return graphed_forward(model, inputs, _autocast_dtype(dtype))


def graphed_train_step_call(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, dtype: str,
                            warmup: int) -> Callable[[], object]:
    """The training step of a "+graphs" row: the eager AdamW step (capturable) captured in a CUDA graph."""
    opt = adamw(model, capturable=True)
    return graphed_train_step(model, train_loss(model, labels), opt, inputs, _autocast_dtype(dtype),
                              warmup=train_warmup_steps(warmup))


class Runner(NamedTuple):
    """How a row runs its model: builders of the timed inference call and of the timed training step (which
    runs its own warm-up steps)."""
    forward: Callable[[nn.Module, torch.Tensor, str], Callable[[], object]]
    train_step: Callable[[nn.Module, torch.Tensor, torch.Tensor, str, int], Callable[[], object]]


EAGER = Runner(eager_forward, eager_train_step)
GRAPHED = Runner(graphed_forward_call, graphed_train_step_call)


def make_process_workspaces(device, dtype: str, runners: list[Runner], train: bool) -> None:
    """A small linear model through each row kind's inference call (and training step) before the first row. cuBLAS
    keeps a workspace for every stream and thread it has run on, for the life of the process (32 MiB on sm_90), made
    at its first matmul there: made here, every row carries them alike (`train_carried_gib`), where the first eager
    row and the first "+graphs" row would each have held a share in their own peaks (H100: 32 and 65 MiB,
    docs/benchmarks.md), whichever model ran first. CUDA only."""
    if device.type != "cuda":
        return
    model = nn.Linear(16, 16).to(device)
    inputs = torch.randn(8, 16, device=device)
    labels = torch.zeros(8, dtype=torch.long, device=device)
    for runner in runners:
        runner.forward(model, inputs, dtype)()
        if train:
            runner.train_step(model, inputs, labels, dtype, 1)()
    _sync(device)
    gc.collect()
    torch.cuda.empty_cache()


def row_tensors(model: nn.Module, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """A row's own tensors: its model's parameters and buffers, and `tensors` (inputs, labels)."""
    return [*model.parameters(), *model.buffers(), *tensors]


def storage_gib(tensors) -> float:
    """GiB of the distinct storages behind `tensors` (a tensor and its views count once)."""
    sizes = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(sizes.values()) / 2**30


def measure(model: nn.Module, inputs: torch.Tensor, device, dtype: str, warmup: int, repeats: int,
            train: bool, runner: Runner = EAGER) -> dict:
    """Inference latency/throughput (and its peak memory), then optionally one AdamW training step's time
    and peak memory; a training OOM is recorded in the row and leaves the inference numbers.

    `train_held_gib` is what was allocated when the training measurement began (the parameters, the inputs, and
    anything an earlier row left alive), after a garbage collection; `train_carried_gib` is that less the row's own
    tensors (parameters, buffers, inputs, labels): what earlier rows and the process (cuBLAS workspaces, say) left
    allocated, which every peak of the row includes and `benchmarks/ssm_goals.py` takes off before it compares peaks.
    `train_first_peak_gib` is the peak of the warm-up steps (the first step creates AdamW's state and tunes the
    kernels; in a "+graphs" row, the steps that warm up and record the graph, whose memory pool then stays reserved);
    `train_peak_gib` that of the timed steps after them, the memory a run needs from then on; `train_added_gib` that
    peak less the held memory, what training adds, which `mem_x_attn` compares. `train_step_ms` is the timed steps'
    median, `train_step_max_ms` the slowest of them: far apart, a step was slow (a late graph recording, say) and the
    median stands for the others. Likewise `latency_ms` is the timed forwards' median and `latency_max_ms` the
    slowest of them (a cold first forward with too few warm-up runs; `uneven_note`)."""
    batch = inputs.shape[0]
    cuda = device.type == "cuda"
    row = {}
    model.eval()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    forward = runner.forward(model, inputs, dtype)
    times = step_times_ms(forward, device, warmup, repeats)
    row["latency_ms"], row["latency_max_ms"] = statistics.median(times), max(times)
    del forward
    row["throughput"] = batch / row["latency_ms"] * 1e3
    row["infer_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
    if train:
        model.train()
        labels = torch.randint(0, 1000, (batch,), device=device)
        if cuda:
            gc.collect()
            torch.cuda.empty_cache()
            row["train_held_gib"] = torch.cuda.memory_allocated(device) / 2**30
            row["train_carried_gib"] = row["train_held_gib"] - storage_gib(row_tensors(model, inputs, labels))
        steps = []
        try:
            row["train_first_peak_gib"] = _peak_gib(
                lambda: steps.append(runner.train_step(model, inputs, labels, dtype, warmup)), device)
            times = step_times_ms(steps[0], device, 0, train_repeats(repeats))
            row["train_step_ms"], row["train_step_max_ms"] = statistics.median(times), max(times)
            row["train_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
            row["train_added_gib"] = row["train_peak_gib"] - row.get("train_held_gib", float("nan"))
        except torch.OutOfMemoryError:
            row["train_step_ms"] = row["train_peak_gib"] = float("nan")
            row["note"] = "training out of memory"
        steps.clear()
        model.zero_grad(set_to_none=True)
        if cuda:
            gc.collect()
            torch.cuda.empty_cache()
    return row


UNEVEN = 2.0
"""Slowest timed run / median of a row above which `uneven_note` speaks."""

SPREADS = (("inference", "latency_ms", "latency_max_ms"), ("training", "train_step_ms", "train_step_max_ms"))
"""The timings of a row that have a slowest run beside their median: (what is timed, median column, slowest)."""


def uneven_note(label: str, row: dict, warmup: int) -> str | None:
    """A one-line note naming the timings of `row` (of the model `label`) whose slowest timed run is more than UNEVEN
    times their median (a run still warming up: a cold first forward, a late compile or graph recording), or None.
    Their median stands for the steady runs; more --warmup moves the slow runs out of the timed ones."""
    slow = [f"{kind} {row[slowest]:.2f} ms against a median of {row[median]:.2f}" for kind, median, slowest in SPREADS
            if isinstance(row.get(slowest), float) and row.get(median, 0) > 0 and row[slowest] > UNEVEN * row[median]]
    if not slow:
        return None
    return (f"infomamba bench: note: {label}: a slowest timed run over {UNEVEN:g}x the median ({'; '.join(slow)}): "
            f"it was still warming up; give more --warmup (this run: {warmup})")


def forget_compiled() -> None:
    """Drops what torch.compile kept of the models compiled so far (`torch._dynamo.reset`): their code caches, so the
    next compiled model starts below the recompile limit, and reduce-overhead's CUDA-graph trees with their memory
    pools. Called after each model's rows, so that no row runs beside what an earlier compiled model left reserved.
    When the sweep reset only before each compile, attention's eager 1024 px training step, measured after InfoMamba
    compiled at six sizes, ran out of memory on an 80 GB H100 where it trains in 59 GiB on its own
    (docs/benchmarks.md)."""
    torch._dynamo.reset()


def environment(device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    try:
        import triton
        tv = triton.__version__
    except ImportError:
        tv = "absent"
    return f"device {name}; torch {torch.__version__}; triton {tv}; python {platform.python_version()}"


def plot(rows: list[dict], path: Path, x: str, xlabel: str, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label in dict.fromkeys(r["model"] for r in rows):
        pts = sorted((r[x], r["throughput"]) for r in rows
                     if r["model"] == label and r["throughput"] == r["throughput"])
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class Ratio(NamedTuple):
    """A `versus_attention` column: `column` = the row's `measure` / the attention row's. The printed and
    markdown tables head it with `better`, the direction that is better, which differs between the columns
    (throughput: higher; step time and memory: lower); the CSV keeps the bare `column`."""
    measure: str
    column: str
    better: str

    @property
    def heading(self) -> str:
        return f"{self.column} ({self.better})"


RATIOS = (Ratio("throughput", "infer_x_attn", "throughput: higher is better"),
          Ratio("train_step_ms", "train_x_attn", "step time: lower is better"),
          Ratio("train_added_gib", "mem_x_attn", "memory added: lower is better"))
HEADINGS = {ratio.column: ratio.heading for ratio in RATIOS}


def cell(value) -> str:
    """A value as the printed and markdown tables show it: floats to 2 decimals, NaN (what was not measured,
    e.g. CUDA memory on a CPU, or a row that ran out of memory) as n/a, anything else as it is."""
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.2f}"
    return str(value)


def versus_attention(rows: list[dict], reference: str = "attention") -> list[dict]:
    """Each row with its throughput, train-step time and training peak memory as multiples of the eager
    `reference` row of the same sweep and size (the issue's goals are stated so); rows without one as they are."""
    base = {(r["sweep"], r.get("resolution"), r["tokens"]): r for r in rows if r["model"] == reference}
    out = []
    for r in rows:
        ref = base.get((r["sweep"], r.get("resolution"), r["tokens"]))
        extra = {}
        if ref is not None and r["model"] != reference:
            for key, name, _ in RATIOS:
                if isinstance(r.get(key), float) and isinstance(ref.get(key), float) and ref[key] > 0:
                    extra[name] = r[key] / ref[key]
        out.append({**r, **extra})
    return out


PLOTS = (("resolution", "bench.png", "resolution", "resolution (px, patch 16)", "throughput (img/s)"),
         ("length", "bench_lengths.png", "tokens", "sequence length (tokens)", "throughput (sequences/s)"))
"""The plots: (sweep, file name, x column, x label, y label); each drawn where the run has rows of its sweep."""

OUTPUTS = ("bench.csv", "bench.md", *(name for _, name, *_ in PLOTS))
"""The files a run writes (`write_outputs`)."""


def write_outputs(rows: list[dict], out: Path, header: str, quiet: bool = False) -> None:
    """CSV, markdown and PNGs of the rows so far (rewritten after every row, so a cut run keeps its data)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = versus_attention(rows)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    lines = [header, "", "| " + " | ".join(HEADINGS.get(k, k) for k in keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(cell(r.get(k, "")) for k in keys) + " |")
    (out / "bench.md").write_text("\n".join(lines) + "\n")
    if not quiet:
        print("\n".join(lines), flush=True)
    for sweep, name, x, xlabel, ylabel in PLOTS:
        swept = [r for r in rows if r.get("sweep") == sweep]
        if swept:
            plot(swept, out / name, x, xlabel, ylabel)


def scan_config_lines(tuned: dict) -> list[str]:
    """Markdown lines naming the selective-scan launch the autotuner picked per kernel and shape bucket in this
    run (`ops/selective_scan/triton.py: tuned_configs()`): which layout, how many time chunks, and whether the
    backward prefetches."""
    if not tuned:
        return []
    lines = ["", "Selective-scan launches the autotuner picked:", "",
             "| kernel | n | d | batch bucket | L bucket | block_t, d_in, d_lanes, warps | time chunks | prefetch |",
             "|---|---|---|---|---|---|---|---|"]
    for (kind, block_n, dim, batch, length, *_), cfg in tuned.items():
        lines.append(f"| {kind} | {block_n} | {dim} | {batch} | {length} | "
                     f"{cfg.block_t}, {cfg.d_in}, {cfg.d_lanes}, {cfg.num_warps} | {cfg.chunks} | "
                     f"{'yes' if kind == 'fwd' or cfg.prefetch else 'no'} |")
    return lines


CPU_SIZES = {"batch": 2, "dim": 64, "depth": 2, "resolutions": [32, 64], "warmup": 1, "repeats": 3, "dtype": "fp32"}
"""The options whose defaults are sized for a GPU, each with a value sized for a CPU (`cpu_hint`)."""


def _flag(name: str, value) -> str:
    return f"--{name} " + (" ".join(map(str, value)) if isinstance(value, list) else str(value))


def cpu_hint(p: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The line printed up front when there is no CUDA device: the defaults (batch 64, dim 384, depth 12,
    224-1024 px, bf16, 5 warm-ups + 20 repeats) take minutes per row on a CPU, silent until the first row. It
    names the `CPU_SIZES` options left at their defaults and a smaller value of each (--batch only where the run
    has image rows: a 1-D sweep does not use it); None when none is left."""
    left = [name for name in CPU_SIZES if getattr(args, name) == p.get_default(name)
            and (name != "batch" or has_image_rows(args))]
    if not left:
        return None
    return (f"{p.prog}: no CUDA device, and the defaults are sized for a GPU (at all of them a row takes minutes on "
            "a CPU); left at a default: " + ", ".join(_flag(name, p.get_default(name)) for name in left)
            + "; smaller, e.g.: " + " ".join(_flag(name, CPU_SIZES[name]) for name in left))


def has_image_rows(args: argparse.Namespace) -> bool:
    """Whether the run has image rows, which take --batch: a resolution sweep (and its --timm rows) or a
    --kmax-sweep."""
    return bool(args.resolutions or args.kmax_sweep)


def batch_text(args: argparse.Namespace) -> str:
    """The header's batch of each kind of row the run has, and only those: images (--batch: the resolution sweep,
    --kmax-sweep and --timm) and sequences (--seq-batch: --lengths). One bare "batch" would name the image batch
    also where every row is a sequence row."""
    kinds = {"image batch": args.batch if has_image_rows(args) else None,
             "sequence batch": args.seq_batch if args.lengths else None}
    return "; ".join(f"{kind} {n}" for kind, n in kinds.items() if n is not None)


DEFAULT_ROOT = Path("runs") / "bench"
"""Where the runs go without --out, each in a `version_N` folder of its own, as `infomamba fit` runs go in
runs/<task>/version_N."""


def results_folder(out: str | None) -> Path:
    """The folder of this run's results, created: `out`, or for None a new `DEFAULT_ROOT/version_N` (one past the
    highest there). A run never overwrites another's: an `out` that holds a file of `OUTPUTS` is refused, a
    FileExistsError naming them."""
    if out is None:
        from .tasks.run_dir import claim_version  # Lightning's import time, only where it is used

        return DEFAULT_ROOT / f"version_{claim_version(DEFAULT_ROOT)}"
    folder = Path(out)
    earlier = [name for name in OUTPUTS if (folder / name).exists()]
    if earlier:
        raise FileExistsError(f"--out {folder} holds an earlier run's {', '.join(earlier)}: give a new folder, or "
                              f"leave --out out for a new {DEFAULT_ROOT}/version_N")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def written_line(folder: Path) -> str:
    """The run's last line: where its results are."""
    return f"results in {folder}: " + ", ".join(name for name in OUTPUTS if (folder / name).exists())


def patch_multiple(text: str) -> int:
    """An image size of the sweeps: a positive multiple of the 16 px patch."""
    value = positive(text)
    if value % 16:
        raise argparse.ArgumentTypeError(f"{value} px is not a multiple of the 16 px patch "
                                         f"(e.g. {value // 16 * 16 or 16})")
    return value


def parser() -> argparse.ArgumentParser:
    """The argument parser of `infomamba bench` (the module docstring is its description); every option's help
    names its default."""
    p = argparse.ArgumentParser(prog="infomamba bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixers", nargs="+", default=["infomamba", "attention"], metavar="MIXER",
                   help="mixer names, or NAME{yaml} with options over the size-matched ones (quote it in a shell), "
                   "e.g. 'infomamba{ssm_heads: 12}'; the row label is the entry as given (default infomamba "
                   "attention)")
    p.add_argument("--resolutions", nargs="*", type=patch_multiple, default=[224, 384, 512, 1024], metavar="PX",
                   help="image sizes (px, 16 px patches) of the resolution sweep; the flag alone for none, a 1-D "
                   "sweep only (default 224 384 512 1024)")
    p.add_argument("--lengths", nargs="*", type=positive, default=[], metavar="TOKENS",
                   help="sequence lengths of the 1-D sweep: (batch, length, dim) tokens into the same encoder, no "
                   "frontend (default none)")
    p.add_argument("--batch", type=positive, default=64,
                   help="images per batch of the resolution sweep, --kmax-sweep and --timm (default %(default)s)")
    p.add_argument("--seq-batch", type=positive, default=8,
                   help="sequences per batch of the 1-D sweep, --lengths (default %(default)s)")
    p.add_argument("--dim", type=positive, default=384, help="encoder width (default %(default)s)")
    p.add_argument("--depth", type=positive, default=12, help="encoder blocks (default %(default)s)")
    p.add_argument("--dtype", choices=["fp32", "tf32", "bf16"], default="bf16",
                   help="fp32; tf32: fp32 with TF32 matmuls; bf16: fp32 weights under bf16 autocast "
                   "(default %(default)s)")
    p.add_argument("--warmup", type=non_negative, default=5,
                   help="untimed runs before the timed ones (default %(default)s)")
    p.add_argument("--repeats", type=positive, default=20,
                   help="timed runs, the median reported; a training step is timed over half as many, an odd "
                   "count of at least 3 (default %(default)s)")
    p.add_argument("--train", action="store_true", help="also time an AdamW training step and record peak memory")
    p.add_argument("--aux-loss", action="store_true",
                   help="with --train: the step optimises Eq. 14, cross-entropy plus the mixers' auxiliary terms "
                   "(InfoMamba's pooled-stream InfoNCE, redundancy and MI-hash), as `infomamba fit` does; without "
                   "it cross-entropy alone, the same loss for every mixer (default off)")
    p.add_argument("--compile", action="store_true",
                   help="also time the mixers under torch.compile (rows '<mixer> +compile')")
    p.add_argument("--compile-mixers", nargs="*", default=None, metavar="MIXER",
                   help="with --compile: only these --mixers entries get compiled rows (default: every one); "
                   "an entry with options matches by name and options")
    p.add_argument("--compile-modes", nargs="+", default=["default"], metavar="MODE",
                   choices=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                   help="with --compile: one row per torch.compile mode, of %(choices)s (reduce-overhead replays "
                   "CUDA graphs; default: default)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="also time each mixer's eager forward and training step, each captured in one CUDA "
                   "graph and replayed (rows '<mixer> +graphs'; GPU only)")
    p.add_argument("--kmax-sweep", nargs="*", type=positive, default=[], metavar="K",
                   help="Fig. 4: one InfoMamba row per k_max value, at --kmax-resolution (default none)")
    p.add_argument("--kmax-resolution", type=patch_multiple, default=224, metavar="PX",
                   help="image size of the --kmax-sweep rows (default %(default)s)")
    p.add_argument("--size-matched", default=None, metavar="FILE",
                   help="YAML of size-matched mixer options, its setting for --dim and --depth applied (default the "
                   "repository's configs/size_matched.yaml, from any folder; '' for each mixer's defaults)")
    p.add_argument("--timm", action="store_true",
                   help="add timm's vit_small_patch16_224 as a reference row at each resolution, with its +graphs "
                   "and +compile rows where --cuda-graphs and --compile ask for them (--compile-mixers leaves it "
                   "eager)")
    p.add_argument("--max-tokens-attention", type=positive, default=4096, metavar="TOKENS",
                   help="skip quadratic mixers (and --timm) above this many tokens: their memory grows with the "
                   "square (default %(default)s)")
    p.add_argument("--out", default=None, metavar="FOLDER",
                   help="the folder of this run's bench.csv, bench.md and plots, created; refused where it holds "
                   f"an earlier run's (default: a new {DEFAULT_ROOT}/version_N, one past the highest there)")
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.cuda_graphs and device.type != "cuda":
        p.error("--cuda-graphs needs a CUDA device (CUDA graphs replay GPU work)")
    if args.aux_loss and not args.train:
        p.error("--aux-loss sets the training step's loss: give --train too")
    if args.aux_loss and args.compile:
        p.error("--aux-loss with --compile is not supported: the compiled model would return the mixers' aux records")
    try:  # said before the first row, not after the last
        timm = importlib.import_module("timm") if args.timm else None
    except ImportError:
        p.error("--timm needs timm installed (pip install timm) for its ViT-S reference rows")
    hint = cpu_hint(p, args) if device.type != "cuda" else None
    if hint:
        print(hint, file=sys.stderr, flush=True)
    torch.backends.cuda.matmul.allow_tf32 = args.dtype == "tf32"
    torch.backends.cudnn.allow_tf32 = args.dtype == "tf32"
    pixels = args.resolutions + ([args.kmax_resolution] if args.kmax_sweep else [])
    tokens = [(r // 16) ** 2 for r in pixels] + list(args.lengths)
    if not tokens:
        p.error("nothing to measure: give --resolutions, --lengths and/or --kmax-sweep")
    header = (f"{environment(device)}; dtype {args.dtype}; {batch_text(args)}; dim {args.dim}; depth {args.depth}; "
              f"median of {args.repeats} after {args.warmup} warm-up"
              + ("; train loss Eq. 14 (cross-entropy + auxiliary terms)" if args.aux_loss else ""))
    print(header, flush=True)
    try:
        matched = command_size_matched_options(args.size_matched, args.dim, args.depth, p.prog)
    except FileNotFoundError as err:
        p.error(str(err))
    try:
        entries = [parse_mixer_entry(e) for e in args.mixers]
        to_compile = None if args.compile_mixers is None else [parse_mixer_entry(e)[1:] for e in args.compile_mixers]
    except ValueError as err:
        p.error(str(err))
    for entry, key in zip(args.compile_mixers or [], to_compile or []):
        if key not in [(name, options) for _, name, options in entries]:
            p.error(f"--compile-mixers entry {entry!r} matches no --mixers entry (by name and options)")
    configs = {}
    for label, name, options in entries:  # every entry checked before the first (maybe long) measurement
        config = EncoderConfig(dim=args.dim, depth=args.depth, mixer=name,
                               mixer_options={**matched.get(name, {}), **options})
        try:
            config.validate()
            longest = build_mixer(name, args.dim, layer_idx=args.depth - 1, depth=args.depth,
                                  **config.mixer_options).max_len
        except (ValueError, TypeError) as err:
            p.error(f"--mixers entry {label!r}: {str(err).splitlines()[0]}")
        if longest is not None and "max_len" in options and longest < max(tokens):
            p.error(f"--mixers entry {label!r}: max_len={longest} is shorter than the longest sequence measured "
                    f"({max(tokens)} tokens)")
        if longest is not None and "max_len" not in options:  # Linformer's E, F, VMI-SA's alpha, beta: n rows
            config.mixer_options = {**config.mixer_options, "max_len": max(tokens)}
        configs[label] = config
    try:
        folder = results_folder(args.out)
    except FileExistsError as err:
        p.error(str(err))
    print(f"{p.prog}: results in {folder} (rewritten after every row)", file=sys.stderr, flush=True)
    rows: list[dict] = []
    make_process_workspaces(device, args.dtype, [EAGER, GRAPHED] if args.cuda_graphs else [EAGER], args.train)

    def run(label, model, inputs, sweep, extra, runner=EAGER, may_fail=False):
        params = sum(p.numel() for p in model.parameters()) / 1e6
        try:
            row = measure(model, inputs, device, args.dtype, args.warmup, args.repeats, args.train, runner)
        except torch.OutOfMemoryError:
            row = {"latency_ms": float("nan"), "throughput": float("nan"), "note": "out of memory"}
            torch.cuda.empty_cache()
        except Exception as err:  # a compiler failure is a row's result, not the end of the run
            if not may_fail:
                raise
            row = {"latency_ms": float("nan"), "throughput": float("nan"),
                   "note": f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"}
        rows.append({"sweep": sweep, "model": label, **extra, "params_m": round(params, 2), **row})
        print(f"{label} {extra}: " + ", ".join(f"{k}={cell(v)}" for k, v in row.items()), flush=True)
        note = uneven_note(f"{label} {extra}", row, args.warmup)
        if note:
            print(note, file=sys.stderr, flush=True)
        write_outputs(rows, folder, header, quiet=True)

    def too_long(model, tokens):
        return not model.encoder.stack.blocks[0].mixer.linear_time and tokens > args.max_tokens_attention

    def compiled(mode):
        def compile_model(model):
            # The whole model, static shapes, as a training job sees. Per-block (regional) compilation compiles
            # faster but measured slower on the H200 (InfoMamba 224 px step 167 vs 135 ms: no fusion across
            # blocks, one guarded call per block), and under reduce-overhead its one graph, replayed with each
            # block's parameters at other addresses, is re-recorded on every call (a 793 ms step).
            return torch.compile(model, dynamic=False, mode=mode)
        return compile_model

    def variants(name, options):
        """(label suffix, model wrapper, runner) of each row kind a --mixers entry (name, its options) gets."""
        rows = [("", lambda m: m, EAGER)]
        if args.cuda_graphs:
            rows.append((" +graphs", lambda m: m, GRAPHED))
        if args.compile and (to_compile is None or (name, options) in to_compile):
            rows += [(" +compile" + ("" if mode == "default" else f"({mode})"), compiled(mode), EAGER)
                     for mode in args.compile_modes]
        return rows

    for label, name, options in entries:
        config = configs[label]
        for suffix, wrap, runner in variants(name, options):
            model = BenchModel(config, aux_loss=args.aux_loss).to(device)
            fast = wrap(model)
            for res in args.resolutions:
                if not too_long(model, (res // 16) ** 2):
                    run(label + suffix, fast, torch.randn(args.batch, 3, res, res, device=device), "resolution",
                        {"resolution": res, "tokens": (res // 16) ** 2}, runner, may_fail=bool(suffix))
            del model, fast
            forget_compiled()
            model = SequenceModel(config, aux_loss=args.aux_loss).to(device)
            fast = wrap(model)
            for length in args.lengths:
                if not too_long(model, length):
                    run(label + suffix, fast, torch.randn(args.seq_batch, length, args.dim, device=device), "length",
                        {"tokens": length}, runner, may_fail=bool(suffix))
            del model, fast
            forget_compiled()
            torch.cuda.empty_cache() if device.type == "cuda" else None
    if args.timm:
        for suffix, wrap, runner in variants("timm", {}):
            for res in args.resolutions:
                if (res // 16) ** 2 <= args.max_tokens_attention:
                    vit = timm.create_model("vit_small_patch16_224", img_size=res, num_classes=1000).to(device)
                    fast = wrap(vit)
                    images = torch.randn(args.batch, 3, res, res, device=device)
                    run("timm vit_small_patch16" + suffix, fast, images, "resolution",
                        {"resolution": res, "tokens": (res // 16) ** 2}, runner, may_fail=bool(suffix))
                    del vit, fast, images
                    forget_compiled()
    for k in args.kmax_sweep:
        config = EncoderConfig(dim=args.dim, depth=args.depth, mixer="infomamba",
                               mixer_options={**matched.get("infomamba", {}), "k_max": k})
        run(f"infomamba k_max={k}", BenchModel(config, aux_loss=args.aux_loss).to(device),
            torch.randn(args.batch, 3, args.kmax_resolution, args.kmax_resolution, device=device), "kmax",
            {"resolution": args.kmax_resolution, "tokens": (args.kmax_resolution // 16) ** 2, "k_max": k})
    write_outputs(rows, folder, header)
    scan = optional_import("infomamba.ops.selective_scan.triton")
    lines = scan_config_lines(scan.tuned_configs() if scan is not None else {})
    if lines:
        with open(folder / "bench.md", "a") as f:
            f.write("\n".join(lines) + "\n")
        print("\n".join(lines), flush=True)
    print(written_line(folder), flush=True)


if __name__ == "__main__":
    main()
