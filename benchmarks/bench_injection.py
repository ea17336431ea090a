"""The fused SSM op's injection backward alone (`ops/ssm_inner/triton.py`: du = du_scan + d W_x at real tokens,
dh = P du added into the other direction's dh, dp = sum du h), on the GPU at the bench model's shapes (batch x
tokens rows, E = 768 channels, x_proj's K = R + 2N = 56, bf16 as under autocast). Kernel ms by
`triton.testing.do_bench_cudagraph` (replayed in a CUDA graph: no host time). `--baseline FILE` times an earlier
`ops/ssm_inner/triton.py` beside the current one, whose kernel took the product d W_x from a torch matmul (timed with
it); `--configs` times the current kernel at other blocks: ROWS,WEIGHTS,TILES,WARPS (rows a tile, elements of W_x's
block a program holds, tiles a program walks, warps).

    python benchmarks/bench_injection.py --rows 64x196 64x4096 \
        --baseline .devdata/base/src/infomamba/ops/ssm_inner/triton.py --configs 32,4096,4,4
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

from infomamba.ops.ssm_inner import triton as current


def launch(module: types.ModuleType, fused: bool, rows: int, dim: int, k: int, accumulate: bool):
    """One injection backward on fresh inputs: `fused`, the kernel forms d W_x; else a matmul hands it the product."""
    g = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape, dtype=torch.bfloat16):
        return torch.randn(*shape, device="cuda", generator=g).to(dtype)
    a, h, d, w = rand(1, rows, dim), rand(1, rows, dim), rand(1, rows, k), rand(k, dim)
    p = rand(dim, dtype=torch.float32)
    into = rand(1, rows, dim) if accumulate else None
    if fused:
        return lambda: module._injection_backward(a, d, w, h, p, None, into)
    return lambda: module._injection_backward(a, d @ w, h, p, None, into)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=["64x196", "64x4096"], help="batch x tokens")
    p.add_argument("--dim", type=int, default=768, help="E, the SSM's inner width")
    p.add_argument("--k", type=int, default=56, help="x_proj's output width R + 2N")
    p.add_argument("--baseline", help="an earlier ops/ssm_inner/triton.py, timed beside the current one")
    p.add_argument("--configs", nargs="*", default=[], help="ROWS,WEIGHTS,TILES,WARPS of the current kernel")
    args = p.parse_args()
    shipped = (current._INJECTION_ROWS, current._INJECTION_TILE_WEIGHTS, current._INJECTION_TILES,
               current._INJECTION_WARPS)
    configs = [shipped] + [tuple(int(v) for v in c.split(",")) for c in args.configs]
    baseline = load_kernel_file(args.baseline, "infomamba.ops.ssm_inner") if args.baseline else None
    print(torch.cuda.get_device_name(), f"| bf16 inputs, E = {args.dim}, K = {args.k}")
    print("| rows | dh added into | code | blocks (rows, weights, tiles, warps) | ms | GB moved | GB/s |")
    print("|---|---|---|---|---|---|---|")
    for shape in args.rows:
        batch, tokens = (int(v) for v in shape.split("x"))
        rows = batch * tokens
        for accumulate in (False, True):
            moved = (4 + accumulate) * rows * args.dim * 2 / 1e9  # a, h, (dh), du, dh: the fused kernel's least
            if baseline is not None:
                ms = triton.testing.do_bench_cudagraph(
                    launch(baseline, False, rows, args.dim, args.k, accumulate), rep=100)
                print(f"| {shape} | {accumulate} | baseline (matmul + kernel) | | {ms:.4f} | {moved:.3f} | "
                      f"{moved / ms * 1e3:,.0f} |", flush=True)
            for config in configs:
                (current._INJECTION_ROWS, current._INJECTION_TILE_WEIGHTS, current._INJECTION_TILES,
                 current._INJECTION_WARPS) = config
                ms = triton.testing.do_bench_cudagraph(launch(current, True, rows, args.dim, args.k, accumulate),
                                                       rep=100)
                print(f"| {shape} | {accumulate} | current | {config} | {ms:.4f} | {moved:.3f} | "
                      f"{moved / ms * 1e3:,.0f} |", flush=True)
        (current._INJECTION_ROWS, current._INJECTION_TILE_WEIGHTS, current._INJECTION_TILES,
         current._INJECTION_WARPS) = shipped


if __name__ == "__main__":
    main()
