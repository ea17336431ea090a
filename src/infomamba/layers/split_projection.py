"""The SSM mixers' input projection read in parts, x, z = W u split in two (Mamba's in_proj: the scanned stream and the
gate; Vim Algorithm 1), as one autograd Function whose backward takes each part's gradient as it comes.

Autograd's backward of `F.linear(u, W).chunk(k, -1)` first concatenates the parts' gradients into one tensor of the
whole output's size (the split's backward, a `cat`: a read and a write of (B, L, k E)) and then runs the linear's
backward on it. Here the backward runs on the parts themselves, with W = [W_1; ...; W_k] by rows:

    du = sum_i dY_i W_i        (one matmul, then one addmm a further part, accumulating in place)
    dW_i = dY_i^T u            (each written into its rows of one dW)

The same sums, split at the parts' boundaries: du rounds the first part's product to u's dtype before the next adds
to it (one rounding more under bf16 than one matmul over the concatenated gradient). Matmuls run in u's dtype, as
autocast's would; the caller hands the weight in that dtype (`layers/precision.py`'s `compute_dtype`), whose cast's
own backward takes dW to the parameter's dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .precision import compute_dtype


class _SplitProjection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, weight, parts):
        ctx.save_for_backward(u, weight)
        ctx.parts = parts
        ctx.set_materialize_grads(False)  # an unread part's gradient comes as None, not a tensor of zeros
        return F.linear(u, weight).chunk(parts, dim=-1)

    @staticmethod
    def backward(ctx, *grads):
        u, weight = ctx.saved_tensors
        rows = u.reshape(-1, u.shape[-1])
        weights = weight.chunk(ctx.parts, dim=0)
        du = dweight = None
        if ctx.needs_input_grad[0]:
            for dy, w in zip(grads, weights):
                if dy is None:
                    continue
                dy = dy.reshape(-1, dy.shape[-1])
                du = dy @ w if du is None else du.addmm_(dy, w)
            du = du.view(u.shape) if du is not None else None
        if ctx.needs_input_grad[1]:
            dweight = torch.empty_like(weight)
            for dy, rows_out in zip(grads, dweight.chunk(ctx.parts, dim=0)):
                if dy is None:
                    rows_out.zero_()
                else:
                    torch.mm(dy.reshape(-1, dy.shape[-1]).t(), rows, out=rows_out)
        return du, dweight, None


def split_projection(u: torch.Tensor, weight: torch.Tensor, parts: int) -> tuple[torch.Tensor, ...]:
    """`F.linear(u, weight).chunk(parts, dim=-1)` for u (..., D) and weight (parts * E, D), without a bias, in
    autocast's dtype where autocast is on; the parts are views of one output."""
    if weight.shape[0] % parts:
        raise ValueError(f"split_projection: the weight's {weight.shape[0]} rows do not split into {parts} parts")
    return _SplitProjection.apply(compute_dtype(u), compute_dtype(weight), parts)
