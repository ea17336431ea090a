"""`infomamba bench`: latency, throughput, training-step time and peak memory per mixer and resolution
(paper Table 3 / Fig. 4), on one shared image backbone (PatchEmbed -> Encoder -> head).

    infomamba bench --mixers infomamba attention mamba --resolutions 224 384 512 1024 --dtype bf16
    infomamba bench --kmax-sweep 25 50 100 200          # Fig. 4: InfoMamba latency vs k_max

Warm-up runs, CUDA synchronisation, median of repeats; the device and software versions head the
output. Writes <out>/bench.csv, <out>/bench.md and <out>/bench.png (throughput vs resolution,
log-log, one line per mixer). Size-matched mixer options come from configs/size_matched.yaml when
given (--size-matched FILE). Runs on CPU too (use tiny --resolutions and --batch).
"""
from __future__ import annotations

import argparse
import csv
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn

from .config import EncoderConfig
from .encoder import Encoder
from .summary import size_matched_options


class BenchModel(nn.Module):
    """Patch embedding (16 px, learned positions, resampled per resolution) -> Encoder -> mean -> head."""

    def __init__(self, config: EncoderConfig, patch: int = 16, classes: int = 1000, base: int = 224):
        super().__init__()
        from infomamba.tasks.image.frontend import PatchEmbed

        self.patch = PatchEmbed(3, config.dim, patch, pos="learned", img_size=base)
        self.encoder = Encoder(config)
        self.head = nn.Linear(config.dim, classes)

    def forward(self, images):
        tokens, grid = self.patch(images)
        return self.head(self.encoder(tokens, None, grid).hidden.mean(1))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn, device, warmup: int, repeats: int) -> float:
    """Median wall time of fn() in ms, after warm-up, with device synchronisation."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(model: nn.Module, batch: int, res: int, device, dtype: str, warmup: int, repeats: int,
            train: bool) -> dict:
    images = torch.randn(batch, 3, res, res, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")
    row = {}
    model.eval()
    with torch.inference_mode(), autocast:
        row["latency_ms"] = time_ms(lambda: model(images), device, warmup, repeats)
    row["throughput"] = batch / row["latency_ms"] * 1e3
    if train:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        labels = torch.randint(0, 1000, (batch,), device=device)

        def step():
            with autocast:
                loss = nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        row["train_step_ms"] = time_ms(step, device, max(1, warmup // 2), max(1, repeats // 2))
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return row


def environment(device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    try:
        import triton
        tv = triton.__version__
    except ImportError:
        tv = "absent"
    return f"device {name}; torch {torch.__version__}; triton {tv}; python {platform.python_version()}"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label in dict.fromkeys(r["model"] for r in rows):
        pts = sorted((r["resolution"], r["throughput"]) for r in rows if r["model"] == label and r["throughput"])
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("resolution (px, patch 16)")
    ax.set_ylabel("throughput (img/s)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_outputs(rows: list[dict], out: Path, header: str, quiet: bool = False) -> None:
    """CSV, markdown and PNG of the rows so far (rewritten after every row, so a cut run keeps its data)."""
    out.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    lines = [header, "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r.get(k):.2f}" if isinstance(r.get(k), float) else str(r.get(k, ""))
                                       for k in keys) + " |")
    (out / "bench.md").write_text("\n".join(lines) + "\n")
    if not quiet:
        print("\n".join(lines), flush=True)
    plot([r for r in rows if r.get("sweep") == "resolution"], out / "bench.png")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="infomamba bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixers", nargs="+", default=["infomamba", "attention"])
    p.add_argument("--resolutions", nargs="+", type=int, default=[224, 384, 512, 1024])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--dtype", choices=["fp32", "tf32", "bf16"], default="bf16")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--train", action="store_true", help="also time a training step and record peak memory")
    p.add_argument("--kmax-sweep", nargs="*", type=int, default=[], help="InfoMamba k_max values (Fig. 4)")
    p.add_argument("--kmax-resolution", type=int, default=224)
    p.add_argument("--size-matched", default="configs/size_matched.yaml", help="YAML of size-matched mixer options")
    p.add_argument("--timm", action="store_true", help="add timm's vit_small_patch16_224 as a reference row")
    p.add_argument("--max-tokens-attention", type=int, default=4096,
                   help="skip quadratic mixers above this many tokens (memory)")
    p.add_argument("--out", default="runs/bench")
    args = p.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = args.dtype == "tf32"
    torch.backends.cudnn.allow_tf32 = args.dtype == "tf32"
    header = (f"{environment(device)}; dtype {args.dtype}; batch {args.batch}; dim {args.dim}; depth {args.depth}; "
              f"median of {args.repeats} after {args.warmup} warm-up")
    print(header, flush=True)
    matched = size_matched_options(args.size_matched, args.dim, args.depth)
    if "linformer" in matched:  # its static E/F tables must cover the longest sequence benchmarked
        matched["linformer"]["max_len"] = max((r // 16) ** 2 for r in args.resolutions)
    rows: list[dict] = []

    def run(label, model, res, sweep, extra):
        params = sum(p.numel() for p in model.parameters()) / 1e6
        tokens = (res // 16) ** 2
        try:
            row = measure(model, args.batch, res, device, args.dtype, args.warmup, args.repeats, args.train)
        except torch.OutOfMemoryError:
            row = {"latency_ms": float("nan"), "throughput": float("nan"), "note": "out of memory"}
            torch.cuda.empty_cache()
        rows.append({"sweep": sweep, "model": label, "resolution": res, "tokens": tokens,
                     "params_m": round(params, 2), **extra, **row})
        print(f"{label} {res}px: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                              for k, v in row.items()), flush=True)
        write_outputs(rows, Path(args.out), header, quiet=True)

    for mixer in args.mixers:
        config = EncoderConfig(dim=args.dim, depth=args.depth, mixer=mixer, mixer_options=matched.get(mixer, {}))
        model = BenchModel(config).to(device)
        for res in args.resolutions:
            if not getattr(model.encoder.stack.blocks[0].mixer, "linear_time", True) and \
                    (res // 16) ** 2 > args.max_tokens_attention:
                continue
            run(mixer, model, res, "resolution", {})
        del model
    if args.timm:
        try:
            import timm
        except ImportError:
            print("timm is not installed: no ViT-S reference row", flush=True)
        else:
            for res in args.resolutions:
                if (res // 16) ** 2 <= args.max_tokens_attention:
                    vit = timm.create_model("vit_small_patch16_224", img_size=res, num_classes=1000).to(device)
                    run("timm vit_small_patch16", vit, res, "resolution", {})
    for k in args.kmax_sweep:
        config = EncoderConfig(dim=args.dim, depth=args.depth, mixer="infomamba",
                               mixer_options={**matched.get("infomamba", {}), "k_max": k})
        run(f"infomamba k_max={k}", BenchModel(config).to(device), args.kmax_resolution, "kmax", {"k_max": k})
    write_outputs(rows, Path(args.out), header)
