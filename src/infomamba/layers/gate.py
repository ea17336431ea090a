"""The SSM mixers' gated output projection, out = W (y * SiLU(z)) (Mamba's gate, Vim Algorithm 1; the
last line of InfoMamba's block), as one autograd Function that keeps only y, z and W for backward.

Plain autograd would keep SiLU(z) and the product y * SiLU(z) as well, two more (B, L, E) tensors a
layer; here both are recomputed in backward from z (which the mixer's in_proj output holds anyway):

    g = y * SiLU(z);  dW = dout^T g;  dg = dout W;  dy = dg * SiLU(z);  dz = dg * y * SiLU'(z),
    SiLU'(z) = s (1 + z (1 - s)),  s = sigmoid(z).

Matmuls run in dout's dtype (bf16 under mixed precision, as autocast would), elementwise work in fp32
(or wider); gradients come back in each input's dtype. Traceable by torch.compile (no graph break: plain PyTorch inside).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class _GatedProjection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, z, weight):
        ctx.save_for_backward(y, z, weight)
        return F.linear(y * F.silu(z), weight.to(torch.promote_types(y.dtype, z.dtype)))

    @staticmethod
    def backward(ctx, dout):
        y, z, weight = ctx.saved_tensors
        acc = torch.promote_types(torch.promote_types(y.dtype, z.dtype), torch.float32)
        zf, yf = z.to(acc), y.to(acc)
        s = torch.sigmoid(zf)
        silu = zf * s
        g = (yf * silu).to(dout.dtype)
        dweight = (dout.flatten(0, -2).t() @ g.flatten(0, -2)).to(weight.dtype)
        dg = (dout @ weight.to(dout.dtype)).to(acc)
        dy = (dg * silu).to(y.dtype)
        dz = (dg * yf * s * (1 + zf * (1 - s))).to(z.dtype)
        return dy, dz, dweight


def gated_projection(y: torch.Tensor, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """F.linear(y * SiLU(z), weight) for y, z (..., E) and weight (D, E), without a bias."""
    return _GatedProjection.apply(y, z, weight)
