"""The SiLU gate's kernels alone (`ops/silu_gate`): forward and backward, plain and in the readout form (InfoMamba's
y = r + f h, Eq. 11-12), on the GPU at the bench model's shapes (batch x tokens rows of E channels, bf16 throughout,
as under autocast). Per launch: kernel ms (`triton.testing.do_bench_cudagraph`: replayed in a CUDA graph,
so no host time), the bytes it must move (each (rows, E) operand read or written once) and the rate that makes.
`--baseline FILE` times an earlier `ops/silu_gate/triton.py` beside the current one (its kernels and launch
functions: the file's text before its custom ops, which are registered already).

    python benchmarks/bench_gate.py --rows 64x196 64x1024 64x4096 --dim 768
    python benchmarks/bench_gate.py --baseline .devdata/silu_gate_triton_01d2ffd.py
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

from infomamba.ops.silu_gate import triton as current

# (label, backward, readout, tensors of (rows, E) read and written)
LAUNCHES = (("forward", False, False, 3), ("backward", True, False, 6), ("readout forward", False, True, 5),
            ("readout backward", True, True, 8))


def launch(module: types.ModuleType, backward: bool, readout: bool, rows: int, dim: int):
    """A function that runs one launch of `module`'s gate on fresh inputs (z a view with row stride 2E, as the
    mixer's in_proj output gives it)."""
    g = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape, dtype=torch.bfloat16):
        return torch.randn(*shape, device="cuda", generator=g).to(dtype)
    y, h, dg = rand(rows, dim), rand(rows, dim), rand(rows, dim)
    z = rand(rows, 2 * dim)[:, dim:]
    f = rand(dim, dtype=torch.float32)
    hf = (h, f) if readout else (None, None)
    if backward:
        return lambda: module._gate_backward(y, z, dg, torch.bfloat16, *hf)
    return lambda: module._gate_forward(y, z, *hf)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=["64x196", "64x1024", "64x4096"], help="batch x tokens")
    p.add_argument("--dim", type=int, default=768, help="E, the SSM's inner width")
    p.add_argument("--baseline", help="an earlier ops/silu_gate/triton.py, timed beside the current one")
    args = p.parse_args()
    modules = [("current", current)]
    if args.baseline:
        modules.append(("baseline file", load_kernel_file(args.baseline, "infomamba.ops.silu_gate")))
    print(torch.cuda.get_device_name(), "| bf16 inputs, E =", args.dim)
    print("| rows | launch | kernels | ms | GB moved | GB/s |\n|---|---|---|---|---|---|")
    for shape in args.rows:
        batch, tokens = (int(v) for v in shape.split("x"))
        rows = batch * tokens
        for label, backward, readout, tensors in LAUNCHES:
            for name, module in modules:
                ms = triton.testing.do_bench_cudagraph(launch(module, backward, readout, rows, args.dim), rep=100)
                moved = tensors * rows * args.dim * 2 / 1e9
                print(f"| {shape} | {label} | {name} | {ms:.4f} | {moved:.3f} | {moved / ms * 1e3:,.0f} |")


if __name__ == "__main__":
    main()
