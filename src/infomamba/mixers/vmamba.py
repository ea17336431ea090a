"""VMamba SS2D (Liu et al. 2024, "VMamba: Visual State Space Model"), the 2-D selective-scan mixer.

    x, z = in_proj(x_in)                                   (E = expand * D each)
    u    = DWConv2d(x) on the (H, W) grid                  (one conv shared by every route)
    r_k  = S6_k(cross_scan_k(SiLU(u)))   k in {row-major, column-major, and their reverses}
    y    = LN(sum_k cross_merge_k(r_k))                    (routes summed back in row-major order)
    out  = out_proj(y * SiLU(z))

This is the SS2D of the first VMamba release (with the SiLU(z) gate; later releases dropped it).
Each route is a `SelectiveSSM` with its own x_proj / dt / A / D (separate parameters per route, as
in SS2D) and no 1-D conv of its own (d_conv=1): the 2-D depthwise conv above replaces it; the SSM
applies the SiLU. Cross-scan/merge is `layers.grid.MultiScan` with the directions h, h_flip, v, v_flip.

1-D input (grid=None) is read as a 1 x L image: the conv becomes a 1-D conv (middle kernel row)
and column-major order equals row-major order, so SS2D degrades to a bidirectional scan, each of
the two orders run by two routes with separate parameters.

Padding: allowed on 1-D input only (a grid with a padding mask is refused; images have none).
Causal: refused at build. The cross-scan reads every route in both directions of the grid; the
causal 1-D reduction of SS2D is a forward Mamba scan, which is the `mamba` mixer.
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn

from ..layers.checks import require_positive
from ..layers.grid import GridConv, MultiScan, grid_shape
from ..layers.gate import gated_projection
from ..layers.split_projection import split_projection
from ..layers.ssm import dt_rank_auto
from . import Mixer, MixerAux, causal_mixers, register_mixer


@register_mixer("vmamba")
class VMambaMixer(Mixer):
    """SS2D token mixer.

    Args:
        expand: E = expand * D.  d_state: SSM state size.  d_conv: 2-D depthwise conv size (VMamba: 3).
        dt_rank: rank of dt (default `dt_rank_auto(D)`, ceil(D / 16) as in VMamba).
        ssm_heads: SSD (Mamba-2) form: dt and A shared within each of ssm_heads heads (must divide E);
            None: Mamba-1 per-channel form (`layers/ssm.py`).
    """

    causal_capable = False
    linear_time = True
    routes = ("h", "h_flip", "v", "v_flip")

    def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                 expand: float = 2, d_state: int = 16, d_conv: int = 3, dt_rank: int | None = None,
                 ssm_heads: int | None = None):
        super().__init__()
        if causal:
            raise ValueError("vmamba (SS2D) cannot be causal: its cross-scan reads the grid in both directions "
                             f"and its 2-D conv sees both sides; causal models can use {', '.join(causal_mixers())}")
        self.causal = causal
        inner = int(expand * dim)
        require_positive("vmamba", d_conv=d_conv, **{"int(expand * dim)": inner})
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.conv = GridConv(inner, (d_conv, d_conv))
        self.scans = MultiScan(inner, self.routes, d_state=d_state, d_conv=1, heads=ssm_heads,
                               dt_rank=dt_rank_auto(dim) if dt_rank is None else dt_rank)
        self.out_norm = nn.LayerNorm(inner)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, grid=None):
        hw = grid_shape(x.shape[1], padding_mask, grid, self.causal)
        xs, z = split_projection(x, self.in_proj.weight, 2)
        r = functools.reduce(torch.add, self.scans(self.conv(xs, padding_mask, hw), padding_mask, hw))
        return gated_projection(self.out_norm(r), z, self.out_proj.weight), MixerAux()
