"""Where the SSD forward's bf16 roundings put its error: the chunked forward of `ops/ssd_scan/triton.py` emulated in
fp64 with its bf16 casts made explicit, in two product orders, against the exact y (the same walk in fp64 with no
rounding, on the same bf16 inputs; `ops/ssd_scan/reference.py` works in fp32).

- `early`: x~ = x dt and C exp(cs) rounded to bf16 before their products (the kernel before 2026-12-07);
- `late`: dt inside the fp32 (Q x Q) matrix, which is rounded once, x read as given, and exp(cs) scaling C S after
  its product (mamba-ssm's `_chunk_scan_fwd_kernel` order; the kernel since).

In both the state S stays fp32 and is rounded to bf16 for its products, as in the kernels; y is rounded to bf16 once
at the end. The floor is the exact y rounded to bf16. This is an emulation, not the GPU's kernel: tensor-core
accumulation order is not modelled (fp64 here). With fp16 casts it is the kernel run in Triton's interpreter, whose
fp16 products round as these do: over 99 % of y's elements equal (`tests/benchmarks/test_ssd_rounding.py`); the
interpreter's bf16 `tl.dot` is not the GPU's. The GPU's own figures are `tests/ops/test_ssd_scan_triton.py`'s
half-precision test and `bench_ssd.py`'s `rounding_ratio`: on an H100 the test's bf16 inputs gave 1.73x early and
1.43x late, as emulated, and the bench's 1.73-1.74x and 1.43-1.45x (docs/benchmarks.md, 5074ad6).

    python benchmarks/ssd_rounding.py --lengths 196 2048 16384 --heads 4
"""
from __future__ import annotations

import argparse

import torch

from bench_ssd import inputs

ORDERS = ("early", "late")


def to_bf16(t: torch.Tensor) -> torch.Tensor:
    """t rounded to bf16 and back to fp64."""
    return t.to(torch.bfloat16).double()


def chunked_forward(x, dt, A, B, C, D, chunk: int, order: str, rnd=to_bf16) -> torch.Tensor:
    """y (batch, L, heads, p) in fp64 of the kernel's chunk walk (x, B, C as given; dt, A, D fp32), `rnd` standing for
    each cast to bf16 that the kernel makes (the identity gives the exact chunked scan)."""
    x, dt, A, B, C, D = (t.double() for t in (x, dt, A, B, C, D))
    batch, L, heads, p = x.shape
    y = torch.empty_like(x)
    S = x.new_zeros(batch, heads, B.shape[-1], p)
    causal = torch.ones(chunk, chunk, dtype=torch.bool).tril()
    for start in range(0, L, chunk):
        xs, dts, Bs, Cs = (t[:, start:start + chunk] for t in (x, dt, B, C))
        q = xs.shape[1]
        a = dts * A
        cs, total = a.cumsum(1), a.sum(1)
        decay = torch.where(causal[:q, :q, None], (cs[:, :, None] - cs[:, None]).exp(), 0.0)
        M = torch.einsum("btn,bsn->bts", Cs, Bs)[..., None] * decay  # (batch, t, s, heads)
        if order == "early":
            intra = torch.einsum("btsh,bshp->bthp", rnd(M), rnd(xs * dts[..., None]))
            state = torch.einsum("bthn,bhnp->bthp", rnd(Cs[:, :, None] * cs.exp()[..., None]), rnd(S))
        else:
            intra = torch.einsum("btsh,bshp->bthp", rnd(M * dts[:, None]), xs)
            state = torch.einsum("btn,bhnp->bthp", Cs, rnd(S)) * cs.exp()[..., None]
        y[:, start:start + q] = intra + state + D.view(heads, p) * xs
        w = (total[:, None] - cs).exp() * dts
        S = S * total.exp()[..., None, None] + torch.einsum("bshn,bshp->bhnp", rnd(Bs[:, :, None] * w[..., None]), xs)
    return rnd(y)


def errors(length: int, heads: int, chunk: int, batch: int = 1) -> dict[str, float]:
    """Mean |y - exact| of each order, and of the exact y rounded to bf16 ('floor'), at the bench's inputs."""
    x, dt, A, B, C, D = inputs(batch, length, heads, 64, 16, torch.bfloat16, "cpu")
    exact = chunked_forward(x, dt, A, B, C, D, chunk, "late", rnd=lambda t: t)
    out = {"floor": (to_bf16(exact) - exact).abs().mean().item()}
    for order in ORDERS:
        out[order] = (chunked_forward(x, dt, A, B, C, D, chunk, order) - exact).abs().mean().item()
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=[196, 2048, 16384])
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--chunks", type=int, nargs="+", default=[32, 64])
    args = p.parse_args(argv)
    print("| L | chunk | mean err, x dt and C exp(cs) rounded first | mean err, dt in the matrix, exp(cs) after C S "
          "| exact y rounded to bf16 |")
    print("|---|---|---|---|---|")
    for length in args.lengths:
        for chunk in args.chunks:
            e = errors(length, args.heads, chunk)
            print(f"| {length} | {chunk} | {e['early']:.3e} ({e['early'] / e['floor']:.2f}x) "
                  f"| {e['late']:.3e} ({e['late'] / e['floor']:.2f}x) | {e['floor']:.3e} |", flush=True)


if __name__ == "__main__":
    main()
