"""Host cost of the project's way of exposing a kernel to autograd: a `torch.library` custom op with registered
autograd (what every fused op here is, so that torch.compile traces it) against a plain `torch.autograd.Function`
with the same trivial body (a clone), per call, forward alone and forward+backward, on this machine's CPU.

The eager 224 px training step is bound by its host (docs/benchmarks.md); this says what the custom-op dispatch
itself costs a call there, apart from the bodies' own work. Both variants take the signature of the fused SSM op
(a tensor, an optional tensor, three more tensors and a flag).

    python benchmarks/dispatch_overhead.py --calls 2000
"""
from __future__ import annotations

import argparse
import time
from typing import Optional

import torch
from torch import Tensor


@torch.library.custom_op("infomamba_bench::clone", mutates_args=())
def clone_op(x: Tensor, a: Optional[Tensor], b: Tensor, c: Tensor, d: Tensor, flag: bool) -> Tensor:
    return x.clone()


@clone_op.register_fake
def _(x, a, b, c, d, flag):
    return torch.empty_like(x)


@torch.library.custom_op("infomamba_bench::clone_backward", mutates_args=())
def clone_backward_op(dy: Tensor, x: Tensor) -> Tensor:
    return dy.clone()


@clone_backward_op.register_fake
def _(dy, x):
    return torch.empty_like(dy)


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _backward(ctx, dy):
    return clone_backward_op(dy, *ctx.saved_tensors), None, None, None, None, None


clone_op.register_autograd(_backward, setup_context=_setup_context)


class CloneFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, a, b, c, d, flag):
        ctx.save_for_backward(x)
        return x.clone()

    @staticmethod
    def backward(ctx, dy):
        return dy.clone(), None, None, None, None, None


def per_call_us(fn, calls: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=2000)
    args = p.parse_args(argv)
    x = torch.randn(4, 4, requires_grad=True)
    others = [torch.randn(3) for _ in range(3)]
    base = per_call_us(lambda: x.sum().backward(), args.calls)
    print("| exposed as | forward us a call | forward+backward us a call (less a sum's) |\n|---|---|---|")
    for name, fn in (("torch.library custom op", clone_op), ("torch.autograd.Function", CloneFunction.apply)):
        fwd = per_call_us(lambda: fn(x, None, *others, False), args.calls)
        both = per_call_us(lambda: fn(x, None, *others, False).sum().backward(), args.calls) - base
        print(f"| {name} | {fwd:.1f} | {both:.1f} |")


if __name__ == "__main__":
    main()
