"""The SSD Triton kernels' gradients in half precision against the exact ones: autograd through the SSD reference
(`ops/ssd_scan/reference.py`) in fp64 on the same half-precision inputs and output gradient, at `bench_ssd.py`'s
inputs (d = heads x head width, n states). Per input: the mean error over the mean error of the exact gradient
rounded once to the half dtype (for x, B and C, whose gradients come back in it; 1.0: no error beyond that
rounding), and the mean error relative to the exact gradient's mean magnitude (for every input: dt, A and D come
back in fp32, where the first ratio would measure fp32's rounding).

On a GPU in bf16 (the training dtype) or fp16. On a CPU in fp16 only, in Triton's interpreter (TRITON_INTERPRET=1,
with the test suite's interpreter patches from tests/conftest.py): its fp16 products round as `ssd_rounding.py`'s
emulation does, its bf16 ones do not.

    TRITON_INTERPRET=1 python benchmarks/ssd_grad_rounding.py --shapes 2x512 2x2048 --heads 4 --dtype float16
    python benchmarks/ssd_grad_rounding.py --shapes 64x196 8x4096                       # GPU, bf16
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

if os.environ.get("TRITON_INTERPRET") == "1":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    importlib.import_module("conftest")  # the test suite's patches of the interpreter

import torch  # noqa: E402

from bench_ssd import inputs, rounding_ratio  # noqa: E402  (benchmarks/ is a folder of scripts)
from infomamba.ops.ssd_scan import ssd_scan_reference  # noqa: E402
from infomamba.ops.ssd_scan.triton import ssd_scan_triton  # noqa: E402

NAMES = ("x", "dt", "A", "B", "C", "D")


def gradient_errors(batch: int, length: int, heads: int, p: int, n: int, dtype, device) -> dict[str, tuple]:
    """{input name: (mean error / exact gradient's rounding to dtype, or None for fp32 gradients; mean error / mean
    |exact gradient|)} of the kernels' backward at `inputs`, with a unit-normal output gradient in dtype."""
    args = inputs(batch, length, heads, p, n, dtype, device)
    dy = torch.randn(batch, length, heads, p, generator=torch.Generator().manual_seed(1)).to(device, dtype)
    leaves = [t.clone().requires_grad_() for t in args]
    got = torch.autograd.grad(ssd_scan_triton(*leaves), leaves, dy)
    exact_leaves = [t.double().requires_grad_() for t in args]
    exact = torch.autograd.grad(ssd_scan_reference(*exact_leaves), exact_leaves, dy.double())
    out = {}
    for name, g, e in zip(NAMES, got, exact):
        ratio = rounding_ratio(g, e, dtype) if g.dtype == dtype else None
        out[name] = (ratio, ((g.double() - e).abs().mean() / e.abs().mean()).item())
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=["64x196", "8x4096"], metavar="BxL")
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--dtype", choices=["bfloat16", "float16"], default="bfloat16")
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and (args.dtype != "float16" or os.environ.get("TRITON_INTERPRET") != "1"):
        raise SystemExit("off a GPU: --dtype float16 under TRITON_INTERPRET=1 (the interpreter's bf16 products are not "
                         "a GPU's)")
    dtype = getattr(torch, args.dtype)
    print(f"device {torch.cuda.get_device_name() if device == 'cuda' else 'cpu (Triton interpreter)'}; {args.dtype}; "
          f"{args.heads} heads x {args.head_dim}; n {args.n}\n")
    print("| batch x L | " + " | ".join(f"d{name}" for name in NAMES) + " |")
    print("|---|" + "---|" * len(NAMES))
    for shape in args.shapes:
        batch, length = (int(v) for v in shape.split("x"))
        e = gradient_errors(batch, length, args.heads, args.head_dim, args.n, dtype, device)
        cells = [(f"{r:.2f}x, " if r is not None else "") + f"{rel:.2e}" for r, rel in (e[name] for name in NAMES)]
        print(f"| {shape} | " + " | ".join(cells) + " |", flush=True)
    print("\nEach cell: mean error over the exact gradient's rounding to the dtype (half-precision gradients), then "
          "the mean error relative to the exact gradient's mean magnitude.")


if __name__ == "__main__":
    main()
