"""The selective SSM stream over an inner width, one scan direction per module, in the Mamba-1 form (per
channel dt and A, the default) or the SSD form of Mamba-2 (`heads`: dt and A shared within each head).

    u_t = SiLU(conv_d(x)_t) + P h_t                   (IMF, InfoMamba Eq. 11; P = diag(p))
    dt_t = softplus(W_dt W_x u_t + b_dt);  B_t = W_B u_t;  C_t = W_C u_t
    s_t = exp(dt_t A) s_{t-1} + dt_t B_t u_t;  r_t = C_t s_t + D u_t

Mamba-1: dt_t (E,), A (E, N), state (E, N). SSD (Dao & Gu 2024, "Transformers are SSMs"): H heads of
p = E / H channels, dt_t (H,) and A (H,) one scalar a head, so head h's state is an (N, p) matrix with
    S_t = exp(dt_t A_h) S_{t-1} + dt_t B_t^T u_t[h];  r_t[h] = C_t S_t + D[h] u_t[h]
(B_t, C_t (1, N) shared by every head, D still per channel).

Shared by every SSM mixer (InfoMamba, Vim/mamba, VMamba, LocalMamba, MambaVision). The conv runs
in the scan's direction (causal for the forward scan, anti-causal for the reverse one). Padded
positions are zeroed before the conv and get dt = u = 0, so the state skips them in both
directions. The math runs in `infomamba.ops.ssm_inner`: one fused op that saves only its inputs where
the Triton kernels run, its PyTorch reference elsewhere.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn

from ..ops.ssm_inner import ssm_inner, ssm_inner_pair
from .checks import require_positive
from .precision import compute_dtype


def dt_rank_auto(dim: int) -> int:
    """Mamba's "auto" rank of the dt projection, ceil(D / 16) of the block width D: the one rule every
    SSM mixer uses when its `dt_rank` option is left unset."""
    return math.ceil(dim / 16)


class SelectiveSSM(nn.Module):
    """One direction of a diagonal selective SSM over `inner` channels.

    Why the SSD form: with dt and A scalar per head, the decay between two positions is one number per head,
    so the scan within a chunk becomes matmuls (the masked, decay-weighted C B^T of the SSD paper, Eq. 16;
    `ops/ssd_scan`) and the state is shared by a head's channels. It is the special case of the Mamba-1 scan
    whose dt and A are repeated over each head's channels (and A over the states), which DESIGN.md ("One
    scan for every SSM mixer") allows as a fast path; the readout is computed by the same inner-path op.

    Args:
        inner: channel count of the scanned stream.
        d_state: state size n (a state of n per channel; in the SSD form n x p per head of p channels).
        d_conv: depthwise conv width (1 disables the conv).
        dt_rank: rank of the dt projection (mixers pass `dt_rank_auto(D)` unless told otherwise).
        reverse: scan from the last real token to the first.
        dt_min, dt_max: range of the initial step size (log-uniform, as in Mamba; one per channel or per head).
        heads: None: the Mamba-1 form (dt_proj (inner, dt_rank), A_log (inner, d_state), A = -(1..d_state) per
            channel, S4D-real). An int H dividing `inner`: the SSD form (dt_proj (H, dt_rank), A_log (H,)), with A
            initialised as Mamba-2 does: A uniform in [1, 16] per head, A_log = log A (A = -exp(A_log)).
            D is (inner,) ones in both forms.
    """

    def __init__(self, inner: int, dt_rank: int, d_state: int = 16, d_conv: int = 4,
                 reverse: bool = False, dt_min: float = 1e-3, dt_max: float = 0.1, heads: int | None = None):
        super().__init__()
        require_positive("the selective SSM", d_state=d_state, d_conv=d_conv, dt_rank=dt_rank, inner=inner)
        if heads is not None and (heads < 1 or inner % heads):
            raise ValueError(f"ssm_heads={heads} must divide the SSM's inner width {inner} (the SSD form's heads "
                             "split it)")
        self.reverse = reverse
        self.d_state = d_state
        self.dt_rank = dt_rank
        self.heads = heads
        rates = inner if heads is None else heads      # one step size (and decay) per channel or per head
        self.conv = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1) if d_conv > 1 else None
        self.x_proj = nn.Linear(inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, rates)
        dt = torch.exp(torch.rand(rates) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        if heads is None:
            A_log = torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(inner, 1)
        else:
            A_log = torch.log(torch.empty(heads, dtype=torch.float32).uniform_(1, 16))
        self.A_log = nn.Parameter(A_log)
        self.D = nn.Parameter(torch.ones(inner))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                h: torch.Tensor | None = None, p: torch.Tensor | None = None) -> torch.Tensor:
        """x, h: (B, L, inner), p: (inner,) -> readout r: (B, L, inner), through the one inner-path op.

        The projections' weights enter in autocast's dtype, cast here once a forward: the op's backward then reuses
        them as they are and returns their gradients in that dtype, which the cast's own backward takes to fp32
        (four casts a block fewer than casting inside the op both ways; the same values)."""
        conv_w, conv_b, *rest = self.op_params()
        return ssm_inner(x, conv_w, conv_b, h, p, *rest, padding_mask, self.reverse)

    def op_params(self) -> tuple:
        """(conv_w, conv_b, x_proj_w, dt_proj_w, dt_proj_b, A_log, D) as the inner-path ops take them."""
        conv_w = self.conv.weight[:, 0] if self.conv is not None else None
        conv_b = self.conv.bias if self.conv is not None else None
        return (conv_w, conv_b, compute_dtype(self.x_proj.weight), compute_dtype(self.dt_proj.weight),
                self.dt_proj.bias, self.A_log, self.D)


class SSMDirections(nn.ModuleList):
    """The scan directions of one mixer over the same x, h and p; called, the sum of their readouts.

    A forward and a reverse scan run as one op (`ops.ssm_inner.ssm_inner_pair`): the reverse scan's SSD forward
    kernel adds its readout into the forward scan's, and the backward's conv and injection kernels add the gradients
    of x and h of one direction into the other's, where autograd would add each pair of (B, L, E) tensors apart (the
    Mamba-1 scan's readout, and dx without a conv, are added by torch inside the op). A
    direction with hooks (the diagnostics' and the FLOP count's observe each call) runs alone, with the same values.
    """

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, h: torch.Tensor | None = None,
                p: torch.Tensor | None = None) -> torch.Tensor:
        if len(self) == 2 and not any(_hooked(d) for d in self):
            forward, reverse = self
            return ssm_inner_pair(x, h, p, padding_mask, forward.op_params(), reverse.op_params())
        return functools.reduce(torch.add, (direction(x, padding_mask, h, p) for direction in self))


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def ssm_directions(inner: int, causal: bool, **options) -> SSMDirections:
    """Forward scan only when causal, forward + reverse scans (separate parameters, Vim) otherwise; `options`
    go to every `SelectiveSSM` (`heads=H` for the SSD form, None or absent for Mamba-1)."""
    dirs = [False] if causal else [False, True]
    return SSMDirections(SelectiveSSM(inner, reverse=r, **options) for r in dirs)
