"""What the SSM path would cost in the SSD form (Mamba-2), beside the Mamba-1 scan the project runs, on one GPU.

DESIGN.md ("One scan for every SSM mixer"): SSD is the special case of the Mamba-1 scan where dt and A are shared
within a head (A one scalar a head, for every state n), and a fast path for it may be added where measurement
favours it. SSD's chunked form (Dao & Gu 2024, the paper's `ssd_minimal_discrete`) turns the scan into batched
matmuls: within a chunk of Q positions an L x L-masked, decay-weighted (C B^T) product, across chunks a scan over
the chunks' end states. This script times that form as plain PyTorch (autograd for the backward, einsum and cuBLAS,
no custom kernel) against `selective_scan_triton` at the same width, state size and shapes, in one run: forward
and forward+backward ms and the forward+backward peak memory. It measures the form's promise only: the SSD form
changes the model (dt and A per head instead of per channel), which the recipes would have to show costs no
accuracy.

    python benchmarks/bench_ssd.py                           # B64 L1024, B16 L4096, B8 L16384; d 768 = 12 x 64
    python benchmarks/bench_ssd.py --shapes 64x196 --chunk 32
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_scan import time_ms  # noqa: E402  (benchmarks/ is a folder of scripts)


def segment_sums(x: torch.Tensor) -> torch.Tensor:
    """(..., Q) -> (..., Q, Q): entry [i, j] = x[j+1] + ... + x[i] for j <= i, -inf above the diagonal."""
    q = x.shape[-1]
    sums = torch.cumsum(x, dim=-1)
    out = sums[..., :, None] - sums[..., None, :]
    return out.masked_fill(~torch.tril(torch.ones(q, q, dtype=torch.bool, device=x.device)), float("-inf"))


def ssd_chunked(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                D: torch.Tensor | None, chunk: int) -> torch.Tensor:
    """y of the SSD scan: s_t = exp(dt_t A_h) s_{t-1} + dt_t x_t B_t^T per head h (state (p, n)), y_t = s_t C_t
    + D x_t, in chunks of `chunk` positions (L a multiple of it), fp32 inside.

    x: (batch, L, heads, p); dt: (batch, L, heads), positive; A: (heads,), negative; B, C: (batch, L, n), one
    group for every head (as the Mamba-1 scan shares B and C across channels); D: (heads * p,) or None.
    """
    batch, length, heads, p = x.shape
    if length % chunk:
        raise ValueError(f"L = {length} must be a multiple of the chunk ({chunk})")
    f = torch.float32
    X = (x.to(f) * dt.to(f)[..., None]).unflatten(1, (-1, chunk))             # (b, c, q, h, p)
    a = (dt.to(f) * A.to(f)).unflatten(1, (-1, chunk)).permute(0, 3, 1, 2)    # (b, h, c, q)
    Bc, Cc = (t.to(f).unflatten(1, (-1, chunk)) for t in (B, C))              # (b, c, q, n)
    a_cum = torch.cumsum(a, dim=-1)
    within = torch.exp(segment_sums(a))                                       # (b, h, c, q, q)
    y = torch.einsum("bcln,bcsn,bhcls,bcshp->bclhp", Cc, Bc, within, X)
    to_end = torch.exp(a_cum[..., -1:] - a_cum)                               # (b, h, c, q)
    states = torch.einsum("bcln,bhcl,bclhp->bchpn", Bc, to_end, X)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    across = torch.exp(segment_sums(F.pad(a_cum[..., -1], (1, 0))))           # (b, h, c + 1, c + 1)
    entering = torch.einsum("bhzc,bchpn->bzhpn", across, states)[:, :-1]      # the state entering each chunk
    y = y + torch.einsum("bcln,bchpn,bhcl->bclhp", Cc, entering, torch.exp(a_cum))
    y = y.reshape(batch, length, heads * p)
    if D is not None:
        y = y + D.to(f) * x.reshape(batch, length, heads * p).to(f)
    return y.to(x.dtype)


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
    dt = F.softplus(randn(batch, length, heads) - 1.0).to(dtype)
    A = -torch.exp(0.5 * randn(heads))
    B, C = randn(batch, length, n).to(dtype), randn(batch, length, n).to(dtype)
    return x, dt, A, B, C, randn(heads * p)


def timed(fn, args, reps_ms: int) -> dict:
    """Forward ms, forward+backward ms (`bench_scan.time_ms`: do_bench medians) and the forward+backward peak GiB."""
    leaves = [a.detach().clone().requires_grad_() if a.is_floating_point() else a for a in args]
    out = {"fwd": time_ms(lambda: fn(*args), reps_ms)}
    dy = torch.randn_like(fn(*leaves))
    out["fwdbwd"] = time_ms(lambda: fn(*leaves).backward(dy), reps_ms, leaves)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn(*leaves).backward(dy)
    torch.cuda.synchronize()
    out["peak_gib"] = (torch.cuda.max_memory_allocated() - base) / 2**30
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=["64x1024", "16x4096", "8x16384"], metavar="BxL")
    p.add_argument("--heads", type=int, default=12, help="heads x head width = d (768: ViT-S 384 x expand 2)")
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--n", type=int, default=16, help="states (the Mamba-1 scan's n; SSD's state is head-dim x n)")
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--reps-ms", type=int, default=100)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench_ssd.py times on a CUDA GPU")
    from infomamba.ops.selective_scan.triton import selective_scan_triton

    d = args.heads * args.head_dim
    print(f"device {torch.cuda.get_device_name()}; torch {torch.__version__}; bf16 inputs; d {d} = {args.heads} heads "
          f"x {args.head_dim}; n {args.n}; SSD chunk {args.chunk}\n")
    print("| batch x L | form | fwd ms | fwd+bwd ms | bwd / fwd | fwd+bwd peak GiB | max err vs Mamba-1 |")
    print("|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        batch, length = (int(v) for v in shape.split("x"))
        x, dt, A, B, C, D = inputs(batch, length, args.heads, args.head_dim, args.n, torch.bfloat16, "cuda")
        u, delta, A1 = as_mamba1(x, dt, A, args.n)
        with torch.no_grad():
            want = selective_scan_triton(u, delta, A1, B, C, D).float()
            err = ((ssd_chunked(x, dt, A, B, C, D, args.chunk).float() - want).abs().max() / want.abs().max()).item()
        rows = [("Mamba-1 scan (Triton, this project)", selective_scan_triton, (u, delta, A1, B, C, D), ""),
                ("SSD chunked (PyTorch einsum)", lambda *a: ssd_chunked(*a, args.chunk), (x, dt, A, B, C, D),
                 f"{err:.1e}")]
        for name, fn, fn_args, err_cell in rows:
            t = timed(fn, fn_args, args.reps_ms)
            ratio = (t["fwdbwd"] - t["fwd"]) / t["fwd"]
            print(f"| {batch} x {length} | {name} | {t['fwd']:.3f} | {t['fwdbwd']:.3f} | {ratio:.1f}x | "
                  f"{t['peak_gib']:.2f} | {err_cell} |", flush=True)
        del x, dt, A, B, C, D, u, delta, A1
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
