"""The selective SSM stream (Mamba-1 form) over an inner width, one scan direction per module.

    u_t = SiLU(conv_d(x)_t) + P h_t                   (IMF, InfoMamba Eq. 11; P = diag(p))
    dt_t = softplus(W_dt W_x u_t + b_dt);  B_t = W_B u_t;  C_t = W_C u_t
    s_t = exp(dt_t A) s_{t-1} + dt_t B_t u_t;  r_t = C_t s_t + D u_t

Shared by every SSM mixer (InfoMamba, Vim/mamba, VMamba, LocalMamba, MambaVision). The conv runs
in the scan's direction (causal for the forward scan, anti-causal for the reverse one). Padded
positions are zeroed before the conv and get dt = u = 0, so the state skips them in both
directions. The math runs in `infomamba.ops.ssm_inner`: one fused op that saves only its inputs where
the Triton kernels run, its PyTorch reference elsewhere.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..ops.ssm_inner import ssm_inner


def dt_rank_auto(dim: int) -> int:
    """Mamba's "auto" rank of the dt projection, ceil(D / 16) of the block width D: the one rule every
    SSM mixer uses when its `dt_rank` option is left unset."""
    return math.ceil(dim / 16)


class SelectiveSSM(nn.Module):
    """One direction of a diagonal selective SSM over `inner` channels.

    Args:
        inner: channel count of the scanned stream.
        d_state: state size n per channel.
        d_conv: depthwise conv width (1 disables the conv).
        dt_rank: rank of the dt projection (mixers pass `dt_rank_auto(D)` unless told otherwise).
        reverse: scan from the last real token to the first.
        dt_min, dt_max: range of the initial step size (log-uniform, as in Mamba).
    """

    def __init__(self, inner: int, dt_rank: int, d_state: int = 16, d_conv: int = 4,
                 reverse: bool = False, dt_min: float = 1e-3, dt_max: float = 0.1):
        super().__init__()
        self.reverse = reverse
        self.d_state = d_state
        self.dt_rank = dt_rank
        self.conv = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1) if d_conv > 1 else None
        self.x_proj = nn.Linear(inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, inner)
        dt = torch.exp(torch.rand(inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                h: torch.Tensor | None = None, p: torch.Tensor | None = None) -> torch.Tensor:
        """x, h: (B, L, inner), p: (inner,) -> readout r: (B, L, inner), through the one inner-path op."""
        conv_w = self.conv.weight[:, 0] if self.conv is not None else None
        conv_b = self.conv.bias if self.conv is not None else None
        return ssm_inner(x, conv_w, conv_b, h, p, self.x_proj.weight, self.dt_proj.weight, self.dt_proj.bias,
                         self.A_log, self.D, padding_mask, self.reverse)


def ssm_directions(inner: int, causal: bool, **options) -> nn.ModuleList:
    """Forward scan only when causal, forward + reverse scans (separate parameters, Vim) otherwise."""
    dirs = [False] if causal else [False, True]
    return nn.ModuleList(SelectiveSSM(inner, reverse=r, **options) for r in dirs)
