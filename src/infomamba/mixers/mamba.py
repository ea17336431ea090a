"""Bidirectional Mamba (Vim, Zhu et al. 2024, "Vision Mamba"), the Vim block of Algorithm 1.

    x, z   = in_proj(x_in)                                    (E = expand * D each)
    y_fwd  = SSM_fwd(x)      y_bwd = SSM_bwd(x)               (conv + selective scan per direction,
                                                               separate parameters)
    out    = out_proj((y_fwd + y_bwd) * SiLU(z))

Algorithm 1 sums the two gated directions, which is what we do; Vim's released models halve the sum
(`if_divide_out`), a constant that out_proj absorbs. Causal mode keeps the forward direction only
(the Mamba block of Gu & Dao 2023). Padding: `SelectiveSSM` runs each direction over every
sample's real tokens only. A grid is ignored: tokens are read in raster order, as Vim does.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..layers.gate import gated_projection
from ..layers.split_projection import split_projection
from ..layers.ssm import dt_rank_auto, ssm_directions
from . import Mixer, MixerAux, register_mixer


@register_mixer("mamba")
class MambaMixer(Mixer):
    """Vim / Mamba token mixer.

    Args:
        expand: E = expand * D.  d_state: SSM state size.  d_conv: causal conv width per direction.
        dt_rank: rank of dt (default `dt_rank_auto(D)`, Mamba's "auto" ceil(D / 16)).
        ssm_heads: SSD (Mamba-2) form: dt and A shared within each of ssm_heads heads (must divide E);
            None: Mamba-1 per-channel form (`layers/ssm.py`).
    """

    causal_capable = True
    linear_time = True

    def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                 expand: float = 2, d_state: int = 16, d_conv: int = 4, dt_rank: int | None = None,
                 ssm_heads: int | None = None):
        super().__init__()
        self.causal = causal
        inner = int(expand * dim)
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.ssm = ssm_directions(inner, causal, d_state=d_state, d_conv=d_conv, heads=ssm_heads,
                                  dt_rank=dt_rank_auto(dim) if dt_rank is None else dt_rank)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, grid=None):
        xs, z = split_projection(x, self.in_proj.weight, 2)
        r = self.ssm(xs, padding_mask)
        return gated_projection(r, z, self.out_proj.weight), MixerAux()
