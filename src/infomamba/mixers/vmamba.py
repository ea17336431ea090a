"""VMamba SS2D (Liu et al. 2024, "VMamba: Visual State Space Model"), the 2-D selective-scan mixer.

    x, z = in_proj(x_in)                                   (E = expand * D each)
    u    = DWConv2d(x) on the (H, W) grid                  (one conv shared by every route)
    r_k  = S6_k(cross_scan_k(SiLU(u)))   k in {row-major, column-major, and their reverses}
    y    = LN(sum_k cross_merge_k(r_k))                    (routes summed back in row-major order)
    out  = out_proj(y * SiLU(z))

This is the SS2D of the first VMamba release (with the SiLU(z) gate; later releases dropped it).
Each route is a `SelectiveSSM` with its own x_proj / dt / A / D (separate parameters per route, as
in SS2D) and no 1-D conv of its own (d_conv=1): the 2-D depthwise conv above replaces it; the SSM
applies the SiLU. Cross-scan/merge is `MultiScan` with LocalMamba's names h, h_flip, v, v_flip.

1-D input (grid=None) is read as a 1 x L image: the conv becomes a 1-D conv (middle kernel row)
and column-major order equals row-major order, so SS2D degrades to a bidirectional scan, each of
the two orders run by two routes with separate parameters.

Padding: allowed on 1-D input only (a grid with a padding mask is refused; images have none).
Causal: refused at build. The cross-scan reads every route in both directions of the grid; the
causal 1-D reduction of SS2D is a forward Mamba scan, which is the `mamba` mixer.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.pooling import masked_mean, zero_padding
from . import register_mixer
from .localmamba import MultiScan, grid_shape


class GridConv(nn.Module):
    """Depthwise conv over tokens on an (H, W) grid (1 x L for a sequence), zero padding.

    'same' padding (PyTorch's convention for even sizes: the extra tap on the right), or causal:
    on the 1 x L grid output t reads taps t - kw + 1 .. t only. Padded tokens are zeroed first.
    """

    def __init__(self, channels: int, kernel: tuple[int, int], causal: bool = False):
        super().__init__()
        kh, kw = kernel
        top, left = (kh - 1) // 2, (kw - 1) // 2
        self.pad = (kw - 1, 0, top, kh - 1 - top) if causal else (left, kw - 1 - left, top, kh - 1 - top)
        self.conv = nn.Conv2d(channels, channels, kernel, groups=channels)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None, hw: tuple[int, int]) -> torch.Tensor:
        B, L, C = x.shape
        x = zero_padding(x, padding_mask).transpose(1, 2).reshape(B, C, *hw)
        return self.conv(F.pad(x, self.pad)).reshape(B, C, L).transpose(1, 2)


@register_mixer("vmamba")
class VMambaMixer(nn.Module):
    """SS2D token mixer.

    Args:
        expand: E = expand * D.  d_state: SSM state size.  d_conv: 2-D depthwise conv size (VMamba: 3).
        dt_rank: rank of dt (default ceil(D / 16), as in VMamba).
    """

    linear_time = True
    routes = ("h", "h_flip", "v", "v_flip")

    def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                 expand: float = 2, d_state: int = 16, d_conv: int = 3, dt_rank: int | None = None):
        super().__init__()
        if causal:
            raise ValueError("vmamba (SS2D) cannot be causal: its cross-scan reads the grid in both directions "
                             "and its 2-D conv sees both sides; use the 'mamba' mixer (forward scan) for causal models")
        self.causal = causal
        inner = int(expand * dim)
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.conv = GridConv(inner, (d_conv, d_conv))
        self.scans = MultiScan(inner, self.routes, d_state=d_state, d_conv=1, dt_rank=dt_rank or math.ceil(dim / 16))
        self.out_norm = nn.LayerNorm(inner)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, grid=None):
        hw = grid_shape(x.shape[1], padding_mask, grid, self.causal)
        xs, z = self.in_proj(x).chunk(2, dim=-1)
        r = sum(self.scans(self.conv(xs, padding_mask, hw), padding_mask, hw))
        y = self.out_norm(r) * F.silu(z)
        return self.out_proj(y), {"r_pool": masked_mean(r, padding_mask)}
