"""Eq. 8's MI-hash term alone (`ops/hash_bucket`'s `bucket_nll`): its forward and backward kernels on the GPU at the
bench model's shapes (batch x tokens rows, u of d_concept lanes in bf16 as under autocast, the one-hot b and dnll in
fp32, 16 buckets). Per launch: kernel ms (`triton.testing.do_bench_cudagraph`: replayed in a CUDA graph, so no
host time; the backward's includes the sum of its per-program partial de), the bytes it must move and the rate
that makes. `--baseline FILE` times an earlier `ops/hash_bucket/triton.py` beside the current one (its kernels,
launched with the current launch arguments).

    python benchmarks/bench_hash.py --rows 64x196 64x4096
    python benchmarks/bench_hash.py --baseline .devdata/hash_bucket_triton_97b22a9.py
"""
from __future__ import annotations

import argparse
import os
import sys
import types

import torch
import triton

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_file import load_kernel_file  # noqa: E402  (benchmarks/ is a folder of scripts)

from infomamba.ops.hash_bucket import triton as current


def launch(module: types.ModuleType, backward: bool, rows: int, d: int, nb: int, tau: float = 0.1):
    """A function that runs one launch of `module`'s term kernel (and, backward, the sum of its partial de)."""
    g = torch.Generator(device="cuda").manual_seed(0)
    u = torch.randn(rows, d, device="cuda", generator=g).to(torch.bfloat16)
    b = torch.nn.functional.one_hot(torch.randint(0, nb, (rows,), device="cuda", generator=g), nb).float()
    dirs = torch.nn.functional.normalize(torch.randn(nb, d, device="cuda", generator=g), dim=-1)
    n_rows, block_t, programs = current._launch(u, max(d, nb), current._DOT_MIN)
    blocks = dict(NB=nb, BLOCK_T=block_t, BLOCK_NB=current._dot_block(nb), BLOCK_D=current._dot_block(d),
                  num_warps=4)
    if not backward:
        nll = torch.empty(rows, device="cuda")
        return lambda: module._nll_fwd_kernel[(programs,)](u, b, dirs, nll, n_rows, d, 1 / tau, **blocks)
    dnll = torch.randn(rows, device="cuda", generator=g)
    du, db = torch.empty_like(u), torch.empty_like(b)
    partial = torch.empty(programs, nb, d, device="cuda")

    def run():
        module._nll_bwd_kernel[(programs,)](u, b, dirs, dnll, du, db, partial, n_rows, d, 1 / tau, **blocks)
        return partial.sum(0)
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=["64x196", "64x1024", "64x4096"], help="batch x tokens")
    p.add_argument("--d", type=int, default=64, help="d_concept, u's width")
    p.add_argument("--buckets", type=int, default=16)
    p.add_argument("--baseline", help="an earlier ops/hash_bucket/triton.py, timed beside the current one")
    args = p.parse_args()
    modules = [("current", current)]
    if args.baseline:
        modules.append(("baseline file", load_kernel_file(args.baseline, "infomamba.ops.hash_bucket")))
    print(torch.cuda.get_device_name(), f"| u bf16 of {args.d} lanes, {args.buckets} buckets")
    print("| rows | launch | kernels | ms | GB moved | GB/s |\n|---|---|---|---|---|---|")
    for shape in args.rows:
        batch, tokens = (int(v) for v in shape.split("x"))
        rows = batch * tokens
        for label, backward in (("forward", False), ("backward", True)):
            # u (bf16), b (fp32) and the nll read / written forward; u, b, dnll read and du, db written backward
            moved = rows * (args.d * 2 + args.buckets * 4 + 4 + (args.d * 2 + args.buckets * 4 if backward else 0))
            for name, module in modules:
                ms = triton.testing.do_bench_cudagraph(launch(module, backward, rows, args.d, args.buckets), rep=100)
                print(f"| {shape} | {label} | {name} | {ms:.4f} | {moved / 1e9:.3f} | {moved / ms / 1e6:,.0f} |")


if __name__ == "__main__":
    main()
