"""The SSM mixers' gated output projection, out = W (y * SiLU(z)) (Mamba's gate, Vim Algorithm 1; the
last line of InfoMamba's block), as one autograd Function that keeps only y, z and W for backward.

Plain autograd would keep SiLU(z) and the product y * SiLU(z) as well, two more (B, L, E) tensors a
layer; here both are recomputed in backward from z (which the mixer's in_proj output holds anyway):

    g = y * SiLU(z);  dW = dout^T g;  dg = dout W;  dy = dg * SiLU(z);  dz = dg * y * SiLU'(z),
    SiLU'(z) = s (1 + z (1 - s)),  s = sigmoid(z).

InfoMamba's readout y = r + F h (Eq. 11-12: the scan readout and the filter stream through F = diag(f)) is formed
by the gate's own kernel (`gated_readout`): it writes y, which this Function keeps as it keeps y above, and its
backward adds dh = F dy and df = sum_t h_t dy_t, with dr = dy. `gated_readout` also returns r_pool, r's mean over
each sample's real tokens (the mixer's pooled readout for Eq. 12-13), so that its gradient reaches r inside the
gate's backward kernel: dr = dy + dr_pool / count at the real tokens, where autograd would add a broadcast (B, L, E)
gradient into dr apart.

Matmuls run in dout's dtype (bf16 under mixed precision, as autocast would); the elementwise work is the op
`ops.silu_gate` (one Triton kernel per direction on CUDA, fp32 inside), gradients come back in each input's
dtype. Traceable by torch.compile (no graph break: the kernels are custom ops with fake implementations).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops.silu_gate import readout_gate, readout_gate_backward, silu_gate, silu_gate_backward
from .pooling import masked_mean


class _GatedProjection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, h, f, z, weight, padding_mask, pool):
        ctx.set_materialize_grads(False)  # r_pool unread: its gradient comes as None, not a tensor of zeros
        if h is None:
            g, r_pool = silu_gate(y, z), None
        else:
            r_pool = masked_mean(y, padding_mask) if pool else None
            y, g = readout_gate(y, h, f, z)
        ctx.save_for_backward(y, z, h, f, weight, padding_mask)
        return F.linear(g, weight.to(g.dtype)), r_pool

    @staticmethod
    def backward(ctx, dout, dr_pool):
        y, z, h, f, weight, padding_mask = ctx.saved_tensors
        if dout is None:  # the output unread (gradcheck's undefined-gradient check): r_pool's gradient alone
            dout = y.new_zeros(*y.shape[:-1], weight.shape[0])
        dg = dout @ weight.to(dout.dtype)
        if h is None:
            (g, dy, dz), dh, df = silu_gate_backward(y, z, dg, dout.dtype), None, None
        else:
            g, dy, dz, dh, df = readout_gate_backward(y, z, dg, h, f, dout.dtype, dr_pool, padding_mask)
        dweight = (dout.flatten(0, -2).t() @ g.flatten(0, -2)).to(weight.dtype)
        return dy, dh, df, dz, dweight, None, None


def gated_projection(y: torch.Tensor, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """F.linear(y * SiLU(z), weight) for y, z (..., E) and weight (D, E), without a bias."""
    return _GatedProjection.apply(y, None, None, z, weight, None, False)[0]


def gated_readout(r: torch.Tensor, h: torch.Tensor, f: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                  padding_mask: torch.Tensor | None = None, pool: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(F.linear((r + f * h) * SiLU(z), weight), `masked_mean(r, padding_mask)`) for r, h, z (B, L, E), f (E,),
    weight (D, E) (no bias) and padding_mask (B, L), True at padding: `gated_projection` of y = r + f h, with y
    formed inside the gate's kernel, and r's mean over each sample's real tokens (None without `pool`), whose
    gradient the gate's backward kernel adds into r's."""
    return _GatedProjection.apply(r, h, f, z, weight, padding_mask, pool)
