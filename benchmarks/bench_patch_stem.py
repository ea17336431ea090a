"""The image patch stem on one GPU: the conv of kernel = stride = patch (`F.conv2d`, as cuDNN runs it) beside
`tasks/image/frontend.patchify` (the same sums as one matmul), under bf16 autocast as in training.

Per resolution: forward and forward+backward ms (`triton.testing.do_bench_cudagraph`: replayed in a CUDA graph, so
no host time), the backward giving the weight's and bias's gradients only (images need none), and the largest
difference between the two outputs relative to the conv's largest magnitude.

    python benchmarks/bench_patch_stem.py                       # batch 64, 224 / 512 / 1024 px, 3 -> 384, patch 16
    python benchmarks/bench_patch_stem.py --cudnn-benchmark     # cuDNN's autotuner on for the conv rows
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
import triton.testing

from infomamba.tasks.image.frontend import patchify


def conv_tokens(images, weight, bias, patch):
    return F.conv2d(images, weight, bias, stride=patch).flatten(2).transpose(1, 2).contiguous()


def timed(fn, params) -> tuple[float, float]:
    """(forward ms, forward+backward ms) of fn() under bf16 autocast, each replayed in a CUDA graph."""
    def forward():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return fn()

    def both():
        out = forward()
        torch.autograd.grad(out, params, torch.ones_like(out))

    with torch.no_grad():
        fwd = triton.testing.do_bench_cudagraph(forward, rep=100)
    return fwd, triton.testing.do_bench_cudagraph(both, rep=100)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolutions", type=int, nargs="+", default=[224, 512, 1024])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--cudnn-benchmark", action="store_true")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench_patch_stem.py times on a CUDA GPU")
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    g = torch.Generator(device="cuda").manual_seed(0)
    weight = (torch.randn(args.dim, 3, args.patch, args.patch, device="cuda", generator=g) * 0.02).requires_grad_()
    bias = torch.zeros(args.dim, device="cuda", requires_grad=True)
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | batch {args.batch}, 3 -> {args.dim}, patch "
          f"{args.patch}, bf16 autocast, cudnn.benchmark {args.cudnn_benchmark}\n")
    print("| resolution | stem | fwd ms | fwd+bwd ms | max diff / max |")
    print("|---|---|---|---|---|")
    for size in args.resolutions:
        images = torch.randn(args.batch, 3, size, size, device="cuda", generator=g)
        rows = {"F.conv2d (cuDNN)": lambda: conv_tokens(images, weight, bias, args.patch),
                "patchify (matmul)": lambda: patchify(images, weight, bias, args.patch)}
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            want, got = (fn().float() for fn in rows.values())
        diff = ((got - want).abs().max() / want.abs().max()).item()
        for name, fn in rows.items():
            fwd, both = timed(fn, (weight, bias))
            print(f"| {size} | {name} | {fwd:.3f} | {both:.3f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
