"""MambaVision (Hatamizadeh & Kautz 2024, "MambaVision: A Hybrid Mamba-Transformer Vision Backbone").

MambaVision mixer (Sec. 3.2), the layers before the attention ones:

    x1  = Scan(SiLU(Conv(Linear_{D -> E/2}(x_in))))          selective SSM branch
    x2  = SiLU(Conv(Linear_{D -> E/2}(x_in)))                 symmetric branch, no scan
    out = Linear_{E -> D}(Concat(x1, x2))                     (E = expand * D; the paper: E = D)

The scan is one forward `SelectiveSSM` (the paper scans once, also on images) with d_conv=1: the
branch's conv comes first and the SSM applies the SiLU. The paper replaces Mamba's causal conv
with a regular one: both branch convs use 'same' padding here, and causal padding (taps t-k+1..t)
in causal mode, so causal MambaVision sees inputs <= t in both branches.

Hybrid pattern (Sec. 3.3): self-attention replaces the mixer in the last floor(N/2) blocks of a
stage of N blocks (the released code: range(N//2 + 1, N) for odd N, range(N//2, N) for even N);
our encoder is one stage of `depth` blocks. `attn_layers` is
"last_half" or an explicit list of layer indices ([] for a pure MambaVision-mixer stack). Those
layers are the `attention` mixer's layer, `layers.attention.SelfAttention` (causal in causal mode),
Q/K/V width `attn_inner_dim` (the paper: D; a size-matching knob like `expand`).

A grid is ignored (raster order), as in MambaVision, which flattens each window into a sequence.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.attention import SelfAttention
from ..layers.checks import require_positive
from ..layers.grid import GridConv
from ..layers.split_projection import split_projection
from ..layers.ssm import SelectiveSSM, dt_rank_auto
from . import Mixer, MixerAux, register_mixer


def attention_layers(attn_layers: str | list[int], depth: int) -> list[int]:
    """Indices of the blocks that use self-attention."""
    if attn_layers == "last_half":
        return list(range(depth // 2 + 1, depth)) if depth % 2 else list(range(depth // 2, depth))
    if isinstance(attn_layers, str):
        raise ValueError(f"mambavision attn_layers must be 'last_half' or a list of layer indices, got {attn_layers!r}")
    odd = [i for i in attn_layers if isinstance(i, bool) or not isinstance(i, int)]
    if odd:
        raise ValueError(f"mambavision attn_layers must be layer indices (ints), got {odd} in {attn_layers!r}")
    outside = [i for i in attn_layers if not 0 <= i < depth]
    if outside:
        raise ValueError(f"mambavision attn_layers {outside} lie outside the {depth} layers")
    return sorted(attn_layers)


@register_mixer("mambavision")
class MambaVisionMixer(Mixer):
    """MambaVision mixer, or self-attention in the layers `attn_layers` selects.

    Args:
        expand: E = expand * D (the two branches get E/2 each; the paper uses 1).
        d_state: SSM state size (paper 8).  d_conv: branch conv width (paper 3).
        dt_rank: rank of dt (default `dt_rank_auto(D)`, ceil(D / 16)).
        ssm_heads: SSD (Mamba-2) form: dt and A shared within each of ssm_heads heads (must divide E/2,
            the scanned half); None: Mamba-1 per-channel form (`layers/ssm.py`).
        attn_layers: "last_half" or a list of layer indices.  heads: attention heads (default width // 64).
        attn_inner_dim: Q, K, V width of the attention layers (default D, the paper's).
    """

    causal_capable = True
    linear_time = False  # the attention layers are quadratic; instances without attention say True

    def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                 expand: float = 1, d_state: int = 8, d_conv: int = 3, dt_rank: int | None = None,
                 attn_layers: str | list[int] = "last_half", heads: int | None = None,
                 attn_inner_dim: int | None = None, ssm_heads: int | None = None):
        super().__init__()
        self.causal = causal
        self.uses_attention = layer_idx in attention_layers(attn_layers, depth)
        self.linear_time = not self.uses_attention
        if self.uses_attention:
            self.attention = SelfAttention(dim, heads=heads, inner_dim=attn_inner_dim, causal=causal)
            return
        inner = int(expand * dim)
        require_positive("mambavision", d_conv=d_conv, **{"int(expand * dim)": inner})
        if inner % 2:
            raise ValueError(f"mambavision inner width expand * dim = {inner} must be even (two halves)")
        half = inner // 2
        self.in_proj = nn.Linear(dim, inner, bias=False)
        self.conv_x = GridConv(half, (1, d_conv), causal)
        self.conv_z = GridConv(half, (1, d_conv), causal)
        self.ssm = SelectiveSSM(half, dt_rank_auto(dim) if dt_rank is None else dt_rank, d_state=d_state, d_conv=1,
                                heads=ssm_heads)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, grid=None):
        if self.uses_attention:
            return self.attention(x, padding_mask), MixerAux()
        line = (1, x.shape[1])
        xs, z = split_projection(x, self.in_proj.weight, 2)
        r = self.ssm(self.conv_x(xs, padding_mask, line), padding_mask)
        y = torch.cat([r, F.silu(self.conv_z(z, padding_mask, line))], dim=-1)
        return self.out_proj(y), MixerAux()
