"""The SSD (Mamba-2) form of the scan against the Mamba-1 scan the project runs, on one GPU.

DESIGN.md ("One scan for every SSM mixer"): SSD is the special case of the Mamba-1 scan where dt and A are shared
within a head (A one scalar a head, for every state n). Rows per shape, at the same width, state size and inputs:
the Mamba-1 Triton scan (`ops/selective_scan`, dt and A repeated over each head's channels), the SSD chunked
reference in plain PyTorch (`ops/ssd_scan/reference.py`: einsum, autograd backward) and the SSD Triton kernels
(`ops/ssd_scan/triton.py`). Forward and forward+backward ms (do_bench medians), backward / forward, the
forward+backward peak memory, each SSD row's largest deviation from the Mamba-1 output, and every row's mean error
against the exact y (the reference in fp32 on the same bf16 inputs) over that of the exact y rounded once to bf16
(`rounding_ratio`). `--configs` times the SSD kernels at other launch configs (each
`BLOCK_P,WARPS,STAGES/WARPS,STAGES`, forward / backward) and `--chunks` at other chunk lengths (each `Q` for one
chunk throughout, or `Y/Q`: chunks of Y in the forward that writes y and of Q in the backward, Y forced where
`y_chunk` would pick another; default the kernel's). `--profile` adds, per shape, the SSD Triton op's kernel-only
GPU time (torch.profiler, 10 steps averaged) of a forward and of a forward+backward at its shipped launch, their
backward / forward ratio, and each kernel's share: where the backward's time goes, and the ratio free of host time;
and the forward kernel's two walks timed apart (writing y, and writing only the chunk states, as the backward
recomputes them). `--mamba-ssm DIR` adds rows of Dao & Gu's own SSD Triton kernels (`mamba_chunk_scan_combined` from
a clone of state-spaces/mamba, nothing built) on the same inputs, and with `--profile` their kernel split beside
this project's.

    python benchmarks/bench_ssd.py                           # B64 L1024, B16 L4096, B8 L16384; d 768 = 12 x 64
    python benchmarks/bench_ssd.py --shapes 64x196 --chunks 32 64 --configs 64,4,2/8,1 32,4,2/4,1
    python benchmarks/bench_ssd.py --shapes 64x196 --graphs --no-reference --chunks 32 64 32/64   # GPU time alone
    git clone https://github.com/state-spaces/mamba /tmp/mamba
    python benchmarks/bench_ssd.py --shapes 64x196 64x1024 --no-reference --mamba-ssm /tmp/mamba --graphs --profile
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F
import triton.testing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_scan import time_ms  # noqa: E402  (benchmarks/ is a folder of scripts)

from infomamba.ops.ssd_scan import ssd_scan_reference  # noqa: E402


def as_mamba1(x, dt, A, n: int):
    """The Mamba-1 scan's (u, delta, A) for the same SSD problem: dt repeated over each head's channels, A over them
    and over the n states."""
    p = x.shape[-1]
    return x.flatten(2), dt.repeat_interleave(p, dim=-1), A.repeat_interleave(p)[:, None].expand(-1, n).contiguous()


def inputs(batch: int, length: int, heads: int, p: int, n: int, dtype, device):
    g = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(device)

    x = randn(batch, length, heads, p).to(dtype)
    dt = F.softplus(randn(batch, length, heads) - 1.0)
    A = -torch.exp(0.5 * randn(heads))
    B, C = randn(batch, length, n).to(dtype), randn(batch, length, n).to(dtype)
    return x, dt, A, B, C, randn(heads * p)


def parse_chunks(text: str) -> tuple[int, int]:
    """'Q' -> (Q, Q), 'Y/Q' -> (Y, Q): the chunk lengths of the forward that writes y and of the backward."""
    y, _, q = text.partition("/")
    return int(y), int(q or y)


def set_chunks(ssd, chunk: tuple[int, int] | None, shipped) -> None:
    """The SSD kernels' chunk lengths: `chunk` (Y, Q) forced (the forward that writes y takes Y whatever
    `ssd.y_chunk` would pick), or with None the `shipped` (y_chunk, CHUNK)."""
    if chunk is None:
        ssd.y_chunk, ssd.CHUNK = shipped
    else:
        ssd.y_chunk, ssd.CHUNK = (lambda programs, sms: chunk[0]), chunk[1]


def parse_config(text: str) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """'BLOCK_P,WARPS,STAGES/WARPS,STAGES' -> (forward config, backward config)."""
    fwd, bwd = text.split("/")
    f, b = tuple(int(v) for v in fwd.split(",")), tuple(int(v) for v in bwd.split(","))
    if len(f) != 3 or len(b) != 2:
        raise ValueError(f"--configs entries are BLOCK_P,WARPS,STAGES/WARPS,STAGES, got {text!r}")
    return f, b


def rounding_ratio(got: torch.Tensor, exact: torch.Tensor, dtype: torch.dtype = torch.bfloat16) -> float:
    """Mean |got - exact| over the mean error of `exact` rounded once to `dtype` (1.0: no error beyond that one
    rounding; `benchmarks/ssd_rounding.py` emulates where the SSD forward's roundings put it)."""
    exact = exact.double()
    return ((got.double() - exact).abs().mean() / (exact.to(dtype).double() - exact).abs().mean()).item()


def timed(fn, args, reps_ms: int, graphs: bool = False) -> dict:
    """Forward ms, forward+backward ms (`bench_scan.time_ms`: do_bench medians; with `graphs`, means of the calls
    replayed as CUDA graphs, `triton.testing.do_bench_cudagraph`: no host time, which a do_bench median at a small
    shape is) and the forward+backward peak GiB."""
    leaves = [a.detach().clone().requires_grad_() if a.is_floating_point() else a for a in args]
    dy = torch.randn_like(fn(*leaves))
    if graphs:
        inputs = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]
        out = {"fwd": triton.testing.do_bench_cudagraph(lambda: fn(*args), rep=reps_ms),
               "fwdbwd": triton.testing.do_bench_cudagraph(
                   lambda: torch.autograd.grad(fn(*leaves), inputs, dy), rep=reps_ms)}
    else:
        out = {"fwd": time_ms(lambda: fn(*args), reps_ms),
               "fwdbwd": time_ms(lambda: fn(*leaves).backward(dy), reps_ms, leaves)}
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn(*leaves).backward(dy)
    torch.cuda.synchronize()
    out["peak_gib"] = (torch.cuda.max_memory_allocated() - base) / 2**30
    return out


def _profiled_kernels(step, steps: int) -> list:
    """The CUDA kernels' profiler events of `steps` calls of `step` (after one warm-up call), largest first."""
    from torch.profiler import ProfilerActivity, profile
    step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    # kernels, copies and memsets; a user annotation's GPU event (the optimizer step's, say) is the span of
    # its kernels, idle gaps included, and would count them twice
    kernels = [e for e in prof.key_averages()
               if e.device_type == torch.autograd.DeviceType.CUDA and not e.is_user_annotation]
    return sorted(kernels, key=lambda e: e.self_device_time_total, reverse=True)


def kernel_split(fn, args, steps: int = 10) -> str:
    """GPU time of a forward and of a forward+backward of `fn` (kernels only, mean over `steps`: no host time, which
    the do_bench columns include where the host is slower than the GPU), the backward / forward ratio from them,
    and each kernel's share of the forward+backward. The backward is `torch.autograd.grad`, so no gradient is
    accumulated into a leaf (no add kernels of the benchmark's own)."""
    leaves = [a.detach().clone().requires_grad_() if a.is_floating_point() else a for a in args]
    inputs = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]
    dy = torch.randn_like(fn(*leaves))
    with torch.no_grad():
        fwd = _profiled_kernels(lambda: fn(*leaves), steps)
    both = _profiled_kernels(lambda: torch.autograd.grad(fn(*leaves), inputs, dy), steps)
    fwd_ms, both_ms = (sum(e.self_device_time_total for e in k) / steps / 1e3 for k in (fwd, both))
    lines = [f"  GPU ms: forward {fwd_ms:.3f}, forward+backward {both_ms:.3f}, backward / forward "
             f"{(both_ms - fwd_ms) / fwd_ms:.2f}x (kernel time only)"]
    lines += [f"  {e.self_device_time_total / steps / 1e3:8.3f} ms  {e.count / steps:4.1f} calls  {e.key[:100]}"
              for e in both]
    return "\n".join(lines)


def walk_modes(x, dt, A, B, C, D) -> str:
    """GPU ms of the walks (`triton.testing.do_bench_cudagraph`, no host time): the forward's, writing y, and the
    backward's launch of two, writing the state entering every chunk and the adjoint of the state leaving it."""
    from infomamba.ops.ssd_scan import triton as ssd
    xs, dts, As, Bs, Cs, Ds = ssd._inputs(x, dt, A, B, C, D)
    dy = torch.randn_like(xs)
    y_ms = triton.testing.do_bench_cudagraph(lambda: ssd._forward(xs, dts, As, Bs, Cs, Ds, False), rep=100)
    walks_ms = triton.testing.do_bench_cudagraph(lambda: ssd._walks(xs, dts, As, Bs, Cs, dy, False), rep=100)
    return (f"  forward kernel: {y_ms:.3f} ms writing y; the backward's walks: {walks_ms:.3f} ms writing the chunk "
            "states and their adjoints")


def load_mamba_ssm(root: str):
    """`mamba_chunk_scan_combined` (Dao & Gu's SSD Triton kernels) from `root`, a clone of state-spaces/mamba, to time
    against: its packages are made without running their `__init__` files, which import the CUDA extensions a source
    tree has not built; the SSD kernels need only Triton and einops."""
    import importlib
    import types
    for name in ("mamba_ssm", "mamba_ssm.ops", "mamba_ssm.ops.triton", "mamba_ssm.utils"):
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(root, *name.split("."))]
        sys.modules[name] = package
    return importlib.import_module("mamba_ssm.ops.triton.ssd_combined").mamba_chunk_scan_combined


def as_mamba_ssm(fn, chunk: int):
    """This project's SSD contract (x, dt, A, B, C, D) on mamba-ssm's: one B/C group, D per channel, chunk `chunk`."""
    def scan(x, dt, A, B, C, D):
        return fn(x, dt, A, B[:, :, None], C[:, :, None], chunk, D=D.view(x.shape[2], x.shape[3]))
    return scan


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=["64x1024", "16x4096", "8x16384"], metavar="BxL")
    p.add_argument("--heads", type=int, default=12, help="heads x head width = d (768: ViT-S 384 x expand 2)")
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--n", type=int, default=16, help="states (the Mamba-1 scan's n; SSD's state is head-dim x n)")
    p.add_argument("--chunks", type=parse_chunks, nargs="+", default=None,
                   help="SSD chunk lengths, Q or Y/Q (default: the kernel's)")
    p.add_argument("--configs", nargs="+", default=None, help="SSD kernel configs (default: the kernel's)")
    p.add_argument("--no-reference", action="store_true", help="skip the PyTorch SSD reference row")
    p.add_argument("--reps-ms", type=int, default=100)
    p.add_argument("--graphs", action="store_true",
                   help="time the calls replayed as CUDA graphs (GPU time alone: small shapes are host-bound)")
    p.add_argument("--profile", action="store_true", help="per shape, each kernel's GPU ms in one fwd+bwd")
    p.add_argument("--mamba-ssm", metavar="DIR", default=None,
                   help="a clone of state-spaces/mamba: time its SSD kernels (mamba_chunk_scan_combined) too")
    p.add_argument("--mamba-ssm-chunks", type=int, nargs="+", default=[256, 64],
                   help="mamba-ssm's chunk lengths (Mamba-2 trains with 256)")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench_ssd.py times on a CUDA GPU")
    from infomamba.ops.selective_scan.triton import selective_scan_triton
    from infomamba.ops.ssd_scan import triton as ssd

    shipped = (ssd.y_chunk, ssd.CHUNK)
    mamba_ssm = load_mamba_ssm(args.mamba_ssm) if args.mamba_ssm else None
    chunks = args.chunks or [None]
    configs = [parse_config(c) for c in args.configs] if args.configs else [(ssd.FWD_CONFIG, ssd.BWD_CONFIG)]
    d = args.heads * args.head_dim
    print(f"device {torch.cuda.get_device_name()}; torch {torch.__version__}; bf16 inputs; d {d} = {args.heads} heads "
          f"x {args.head_dim}; n {args.n}\n")
    print("| batch x L | form | fwd ms | fwd+bwd ms | bwd / fwd | fwd+bwd peak GiB | max err vs Mamba-1 "
          "| mean err / bf16 rounding of exact y |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        batch, length = (int(v) for v in shape.split("x"))
        x, dt, A, B, C, D = inputs(batch, length, args.heads, args.head_dim, args.n, torch.bfloat16, "cuda")
        u, delta, A1 = as_mamba1(x, dt, A, args.n)
        with torch.no_grad():
            want = selective_scan_triton(u, delta, A1, B, C, D).float()
            exact = ssd_scan_reference(x.float(), dt, A, B.float(), C.float(), D).flatten(2)  # fp32, same inputs
        mamba1_cells = f" | {rounding_ratio(want, exact):.2f}x"

        def err(fn):
            with torch.no_grad():
                got = fn(x, dt, A, B, C, D).flatten(2).float()
            return f"{((got - want).abs().max() / want.abs().max()).item():.1e} | {rounding_ratio(got, exact):.2f}x"

        rows = [("Mamba-1 scan (Triton)", selective_scan_triton, (u, delta, A1, B, C, D), mamba1_cells)]
        if not args.no_reference:
            rows.append(("SSD chunked reference (PyTorch)", ssd_scan_reference, (x, dt, A, B, C, D),
                         err(ssd_scan_reference)))
        for q in args.mamba_ssm_chunks if mamba_ssm else ():
            scan = as_mamba_ssm(mamba_ssm, q)
            rows.append((f"mamba-ssm SSD (Triton), chunk {q}", scan, (x, dt, A, B, C, D), err(scan)))
        for name, fn, fn_args, err_cell in rows:
            t = timed(fn, fn_args, args.reps_ms, args.graphs)
            print(f"| {batch} x {length} | {name} | {t['fwd']:.3f} | {t['fwdbwd']:.3f} | "
                  f"{(t['fwdbwd'] - t['fwd']) / t['fwd']:.1f}x | {t['peak_gib']:.2f} | {err_cell} |", flush=True)
        for chunk in chunks:
            for fwd_cfg, bwd_cfg in configs:
                set_chunks(ssd, chunk, shipped)
                ssd.FWD_CONFIG, ssd.BWD_CONFIG = fwd_cfg, bwd_cfg
                label = (f"{ssd.Y_CHUNK} or {ssd.CHUNK} (y_chunk)/{ssd.CHUNK}" if chunk is None else chunk[1]
                         if chunk[0] == chunk[1] else "%d/%d" % chunk)
                name = f"SSD Triton, chunk {label}, fwd {fwd_cfg}, bwd {bwd_cfg}"
                try:
                    t = timed(ssd.ssd_scan_triton, (x, dt, A, B, C, D), args.reps_ms, args.graphs)
                    e = err(ssd.ssd_scan_triton)
                except Exception as exc:  # a config the compiler refuses (shared memory, registers): say which
                    print(f"| {batch} x {length} | {name} | {type(exc).__name__}: {str(exc).splitlines()[0][:120]} "
                          "| | | | | |", flush=True)
                    continue
                print(f"| {batch} x {length} | {name} | {t['fwd']:.3f} | {t['fwdbwd']:.3f} | "
                      f"{(t['fwdbwd'] - t['fwd']) / t['fwd']:.1f}x | {t['peak_gib']:.2f} | {e} |", flush=True)
        if args.profile:
            set_chunks(ssd, chunks[0], shipped)
            ssd.FWD_CONFIG, ssd.BWD_CONFIG = configs[0]
            print(f"\n{batch} x {length}, SSD Triton, kernels of one forward+backward:\n"
                  f"{kernel_split(ssd.ssd_scan_triton, (x, dt, A, B, C, D))}\n{walk_modes(x, dt, A, B, C, D)}\n",
                  flush=True)
            for q in args.mamba_ssm_chunks if mamba_ssm else ():
                print(f"{batch} x {length}, mamba-ssm SSD, chunk {q}, kernels of one forward+backward:\n"
                      f"{kernel_split(as_mamba_ssm(mamba_ssm, q), (x, dt, A, B, C, D))}\n", flush=True)
        del x, dt, A, B, C, D, u, delta, A1, want, exact
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
