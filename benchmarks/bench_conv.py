"""The SSM's depthwise conv + SiLU on one GPU: the fused Triton kernel beside the PyTorch reference.

Both directions, under bf16 autocast as in training, at the shapes InfoMamba-S meets (inner width 768, K = 4), bf16,
forward and forward+backward medians (triton.testing.do_bench, ms), and the forward's bandwidth (x read, y
written) against the H100 copy bandwidth (3.0 TB/s).

    python benchmarks/bench_conv.py
    python benchmarks/bench_conv.py --sweep     # every launch config of FWD/BWD_CANDIDATES, kernels alone
"""
from __future__ import annotations

import argparse

import torch
import triton
import triton.testing

from infomamba.ops.causal_conv import triton as conv
from infomamba.ops.causal_conv.triton import causal_conv_silu_triton
from infomamba.ops.causal_conv import causal_conv_silu_reference

SHAPES = [(64, 196), (64, 576), (64, 1024), (16, 4096)]
COPY_BANDWIDTH_GBS = 3000.0


def autocast(fn):
    """fn under bf16 autocast, as the encoder runs it (the reference's conv1d casts the fp32 weight)."""
    def run(*args, **kwargs):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return fn(*args, **kwargs)
    return run


def measure(fn, x, weight, bias, reverse):
    fn = autocast(fn)
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    kwargs = dict(warmup=25, rep=100, return_mode="median")
    fwd = triton.testing.do_bench(lambda: fn(x, weight, bias, reverse=reverse), **kwargs)
    dy = torch.randn_like(x)
    fwdbwd = triton.testing.do_bench(lambda: fn(*leaves, reverse=reverse).backward(dy), grad_to_none=leaves, **kwargs)
    return fwd, fwdbwd


def launch_times(batch: int, length: int) -> dict[str, dict]:
    """Median ms of the forward ("fwd") and backward ("bwd") launches alone per candidate config, at one shape;
    its tensors are freed on return."""
    kwargs = dict(warmup=25, rep=100, return_mode="median")
    x = torch.randn(batch, length, 768, device="cuda", dtype=torch.bfloat16)
    dy = torch.randn_like(x)
    weight, bias = torch.randn(768, 4, device="cuda") * 0.5, torch.randn(768, device="cuda") * 0.1
    return {"fwd": {c: triton.testing.do_bench(lambda: conv.conv_forward(x, weight, bias, False, c), **kwargs)
                    for c in conv.FWD_CANDIDATES},
            "bwd": {c: triton.testing.do_bench(lambda: conv.conv_backward(x, weight, bias, dy, False, c), **kwargs)
                    for c in conv.BWD_CANDIDATES}}


def sweep() -> None:
    """Median ms of the forward and backward launches alone for each candidate config (fastest first)."""
    for batch, length in [(64, 196), (64, 1024), (64, 4096), (8, 16384)]:
        times_by = launch_times(batch, length)
        for name, default in (("fwd", conv.FWD_CONFIG), ("bwd", conv.BWD_CONFIG)):
            times = times_by[name]
            ranked = ", ".join(f"({c.block_t},{c.block_d},{c.num_warps}) {t:.3f}"
                               for c, t in sorted(times.items(), key=lambda kv: kv[1]))
            print(f"B{batch} L{length} {name} (default {times[default]:.3f} ms): {ranked}", flush=True)
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> None:
    """The table, or with --sweep the launch configs; the arguments are parsed before the CUDA check, so that
    --help (and an argument error) works on a machine without a GPU."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweep", action="store_true", help="time every candidate launch config instead")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench_conv.py needs a CUDA GPU")
    if args.sweep:
        return sweep()
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}, triton {triton.__version__}; "
          f"D 768, K 4, bf16\n")
    print("| batch | L | direction | impl | fwd ms | fwd+bwd ms | fwd GB/s | % of 3.0 TB/s | max err |")
    print("|---|---|---|---|---|---|---|---|---|")
    for batch, length in SHAPES:
        x = torch.randn(batch, length, 768, device="cuda", dtype=torch.bfloat16)
        weight, bias = torch.randn(768, 4, device="cuda") * 0.5, torch.randn(768, device="cuda") * 0.1
        nbytes = 2 * x.numel() * x.element_size()
        for reverse in (False, True):
            ref = autocast(causal_conv_silu_reference)(x, weight, bias, reverse).float()
            err = ((causal_conv_silu_triton(x, weight, bias, reverse=reverse).float() - ref).abs().max()
                   / ref.abs().max()).item()
            for name, fn, err_cell in (("triton", causal_conv_silu_triton, f"{err:.1e}"),
                                       ("reference", causal_conv_silu_reference, "")):
                fwd, fwdbwd = measure(fn, x, weight, bias, reverse)
                gbs = nbytes / (fwd * 1e-3) / 1e9
                print(f"| {batch} | {length} | {'reverse' if reverse else 'forward'} | {name} | {fwd:.3f} | "
                      f"{fwdbwd:.3f} | {gbs:.0f} | {100 * gbs / COPY_BANDWIDTH_GBS:.0f}% | {err_cell} |", flush=True)
        del x
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
