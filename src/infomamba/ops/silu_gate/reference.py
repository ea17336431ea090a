"""The SiLU gate of the SSM mixers' output, g = y * SiLU(z) (Mamba's gate, Vim Algorithm 1; the last line of
InfoMamba's block), and its backward, in PyTorch: the CPU path and the Triton kernels' oracle.

With s = sigmoid(z) and dg the gradient of g:

    g  = y z s          dy = dg z s          dz = dg y s (1 + z (1 - s))

The backward's elementwise work runs in fp32 (or wider) and returns each result in its own dtype.

The readout form (InfoMamba's block output, Eq. 11-12: the scan readout r plus the filter stream F h, then the
gate) forms y = r + f h itself, in r's dtype, and its backward adds, from dy in fp32,

    dh = f dy            df = sum over tokens of h dy

and, given the gradient dr_pool (B, E) of r's mean over each sample's real tokens (the mixer's r_pool, Eq. 12-13),
r's gradient dr = dy + dr_pool / count at the real tokens (the mean reads r, not y: dh and df do not take it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def silu_gate_reference(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """g = y * SiLU(z), in the promoted dtype of y and z."""
    return y * F.silu(z)


def silu_gate_backward_reference(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, g_dtype: torch.dtype
                                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(g recomputed in g_dtype, dy in y's dtype, dz in z's dtype) for the gradient dg of g."""
    acc = torch.promote_types(torch.promote_types(y.dtype, z.dtype), torch.float32)
    zf, yf, dgf = z.to(acc), y.to(acc), dg.to(acc)
    s = torch.sigmoid(zf)
    silu = zf * s
    return ((yf * silu).to(g_dtype), (dgf * silu).to(y.dtype),
            (dgf * yf * s * (1 + zf * (1 - s))).to(z.dtype))


def readout_gate_reference(r: torch.Tensor, h: torch.Tensor, f: torch.Tensor, z: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(y = r + f h, formed in fp32 or wider and returned in r's dtype, g = y * SiLU(z)) for f (E,)."""
    acc = torch.promote_types(r.dtype, torch.float32)
    y = (r.to(acc) + f.to(acc) * h.to(acc)).to(r.dtype)
    return y, silu_gate_reference(y, z)


def mean_share(dr_pool: torch.Tensor, padding_mask: torch.Tensor | None, length: int) -> torch.Tensor:
    """What the gradient dr_pool (B, E) of a mean over each sample's real tokens (`layers/pooling.py`'s
    `masked_mean`) gives each of those tokens: dr_pool / count, fp32 (B, E)."""
    count = length if padding_mask is None else (~padding_mask).sum(1, keepdim=True).clamp_min(1)
    return dr_pool.float() / count


def readout_gate_backward_reference(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, h: torch.Tensor,
                                    f: torch.Tensor, g_dtype: torch.dtype, dr_pool: torch.Tensor | None = None,
                                    padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """(g, dy, dz) as `silu_gate_backward_reference`, then dh = f dy in h's dtype and df = sum of h dy over every
    token in f's dtype, both from dy unrounded. With dr_pool (B, E) (y, z, dg (B, L, E); padding_mask (B, L), True at
    padding), the returned dy is r's gradient: dy + `mean_share` at the real tokens, added before dy's rounding."""
    g, dy, dz = silu_gate_backward_reference(y, z, dg, g_dtype)
    acc = torch.promote_types(torch.promote_types(y.dtype, z.dtype), torch.float32)
    dy_acc = dg.to(acc) * F.silu(z.to(acc))
    df = (h.to(acc) * dy_acc).flatten(0, -2).sum(0)
    if dr_pool is not None:
        share = mean_share(dr_pool, padding_mask, y.shape[-2]).to(acc).unsqueeze(1)
        keep = 1.0 if padding_mask is None else (~padding_mask).unsqueeze(-1).to(acc)
        dy = (dy_acc + share * keep).to(y.dtype)
    return g, dy, dz, (f.to(acc) * dy_acc).to(h.dtype), df.to(f.dtype)
