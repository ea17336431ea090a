"""The SSM mixers' gated output projection, out = W (y * SiLU(z)) (Mamba's gate, Vim Algorithm 1; the
last line of InfoMamba's block), as one autograd Function that keeps only y, z and W for backward.

Plain autograd would keep SiLU(z) and the product y * SiLU(z) as well, two more (B, L, E) tensors a
layer; here both are recomputed in backward from z (which the mixer's in_proj output holds anyway):

    g = y * SiLU(z);  dW = dout^T g;  dg = dout W;  dy = dg * SiLU(z);  dz = dg * y * SiLU'(z),
    SiLU'(z) = s (1 + z (1 - s)),  s = sigmoid(z).

Matmuls run in dout's dtype (bf16 under mixed precision, as autocast would); the elementwise work is the op
`ops.silu_gate` (one Triton kernel per direction on CUDA, fp32 inside), gradients come back in each input's
dtype. Traceable by torch.compile (no graph break: the kernels are custom ops with fake implementations).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops.silu_gate import silu_gate, silu_gate_backward


class _GatedProjection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, z, weight):
        ctx.save_for_backward(y, z, weight)
        return F.linear(silu_gate(y, z), weight.to(torch.promote_types(y.dtype, z.dtype)))

    @staticmethod
    def backward(ctx, dout):
        y, z, weight = ctx.saved_tensors
        g, dy, dz = silu_gate_backward(y, z, dout @ weight.to(dout.dtype), dout.dtype)
        dweight = (dout.flatten(0, -2).t() @ g.flatten(0, -2)).to(weight.dtype)
        return dy, dz, dweight


def gated_projection(y: torch.Tensor, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """F.linear(y * SiLU(z), weight) for y, z (..., E) and weight (D, E), without a bias."""
    return _GatedProjection.apply(y, z, weight)
