"""VMI-SA (Zhang et al., "A Separable Self-attention Inspired by the State Space Model for Computer
Vision", VMINet, Sec. III-C).

    Q = DW-Conv(X) W^1,  V = DW-Conv(X) W^2                   (one depthwise conv, W^1, W^2 in R^{C x D})
    M in R^{L x D}: M[i, j] = 1 if j <= i else 0               (Eq. 8, 1-indexed: row i keeps its first i channels)
    causal (Eq. 9):  h_i = h_{i-1} + alpha_i (Q_i * V_i);  y_i = M_i * h_i + beta_i (Q_i * V_i)
    bidirectional (Eq. 10):  Y = Expand_L(sum_i alpha_i M_i * Q_i * V_i) + beta * (Q * V)
    out = Y W^out

alpha_i, beta_i are trainable per-position parameters ("a series of trainable parameters that
control the importance of each token"), so the mixer has a static `max_len`; the beta of Eq. 10
is read as the same per-token series as Eq. 9's beta_i. Position i of a token is its rank among
its sample's real tokens, so padding never shifts alpha, beta or M.

Gaps the paper leaves, filled here: the width D = expand * C; W^out (D -> C, with bias) maps Y back
to the token width; the DW-Conv size is `conv_size` x `conv_size` ('same' padding) on the grid, the
1 x L grid (its middle kernel row) on 1-D input, and causal on 1-D input in causal mode (a grid is
refused there). alpha starts at N(0, 0.02^2) truncated, beta at 1 (the released code's initial
values). The released code departs from the equations (ReLU6 on Q, BatchNorm after the conv, no M,
one scalar per term); we implement the equations.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..layers.checks import require_positive
from ..layers.grid import GridConv, grid_shape
from ..layers.pooling import zero_padding
from ..layers.positions import first_rows, real_positions
from . import Mixer, MixerAux, register_mixer


@register_mixer("vmisa")
class VMISAMixer(Mixer):
    """Vision-Mamba-inspired separable self-attention: Eq. 10, or Eq. 9 in causal mode.

    Args:
        expand: D = expand * C, the width of Q and V.  conv_size: depthwise conv size.
        max_len: number of positions with their own alpha_i, beta_i.
    """

    causal_capable = True
    linear_time = True

    def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                 expand: float = 2, conv_size: int = 7, max_len: int = 4096):
        super().__init__()
        self.causal = causal
        self.max_len = max_len
        inner = int(expand * dim)
        require_positive("vmisa", conv_size=conv_size, max_len=max_len, **{"int(expand * dim)": inner})
        self.conv = GridConv(dim, (conv_size, conv_size), causal)
        self.w1 = nn.Linear(dim, inner, bias=False)
        self.w2 = nn.Linear(dim, inner, bias=False)
        self.alpha = nn.Parameter(nn.init.trunc_normal_(torch.empty(max_len), std=0.02))
        self.beta = nn.Parameter(torch.ones(max_len))
        self.out_proj = nn.Linear(inner, dim)

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        first_rows(state_dict, [prefix + "alpha", prefix + "beta"], self.max_len, dim=0)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, grid=None):
        B, L, _ = x.shape
        if L > self.max_len:
            raise ValueError(f"vmisa built for max_len={self.max_len} got a sequence of {L} tokens")
        hw = grid_shape(L, padding_mask, grid, self.causal)
        c = self.conv(x, padding_mask, hw)
        qv = zero_padding(self.w1(c) * self.w2(c), padding_mask)                    # Q * V
        pos = torch.arange(L, device=x.device)[None] if padding_mask is None else real_positions(padding_mask)
        alpha, beta = self.alpha[pos].unsqueeze(-1), self.beta[pos].unsqueeze(-1)
        mask = (torch.arange(qv.shape[-1], device=x.device) <= pos.unsqueeze(-1)).to(qv.dtype)  # Eq. 8
        if self.causal:
            y = mask * torch.cumsum(alpha * qv, dim=1) + beta * qv                   # Eq. 9
        else:
            y = (alpha * mask * qv).sum(dim=1, keepdim=True) + beta * qv             # Eq. 10
        return self.out_proj(y), MixerAux()
