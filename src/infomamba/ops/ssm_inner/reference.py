"""The selective-SSM inner path after in_proj, in plain PyTorch: the CPU path and the oracle of `triton.py`.

    x~_t  = x_t at real tokens, 0 at padding
    u_t   = SiLU(conv_d(x~)_t) + p * h_t        (conv in the scan's direction; P h_t with P = diag(p), Eq. 11)
    [dt~_t, B_t, C_t] = W_x u_t;  dt_t = softplus(W_dt dt~_t + b_dt)   (0 at padding)
    s_t   = exp(dt_t A) s_{t-1} + dt_t B_t u_t;  r_t = C_t s_t + D u_t,  A = -exp(A_log)

(InfoMamba Eq. 11 with the IMF injection folded into the selective input, DESIGN.md; Mamba-1's
inner path.) Padded positions get u = dt = 0, so the state passes them unchanged in either direction.

Two forms, told apart by A_log's rank (`scan`):
- Mamba-1 (A_log (E, N)): dt_t (E,) and A (E, N) per channel, the scan of `ops/selective_scan`.
- SSD, Mamba-2 (A_log (H,), H heads dividing E): dt_t (H,) and A (H,) shared by the E / H channels of each
  head, the scan of `ops/ssd_scan` over u viewed as (H, E / H); the special case of the Mamba-1 scan whose dt
  and A are repeated within each head (DESIGN.md "One scan for every SSM mixer"). D stays per channel.
The helpers below are the one definition of each step; `triton.py` recomputes with the same ones.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..causal_conv import causal_conv_silu_reference
from ..selective_scan import selective_scan_reference
from ..ssd_scan import ssd_scan_reference


def keep_mask(padding_mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """(B, L, 1) 1 at real tokens, 0 at padding, in `like`'s dtype; None without padding."""
    return None if padding_mask is None else (~padding_mask).unsqueeze(-1).to(like.dtype)


def masked(t: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    return t if keep is None else t * keep.to(t.dtype)


def projections(u: torch.Tensor, x_proj_w: torch.Tensor, dt_proj_w: torch.Tensor, dt_proj_b: torch.Tensor | None,
                d_state: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dt~, B, C, dt before softplus) from u, matmuls in u's dtype (bf16 under mixed precision); dt~, B and C
    are views of one (..., R + 2N) x_proj output (the Triton scan reads B and C through their row stride).
    dt_proj_b None: dt before its bias too (the Triton scan adds the bias itself). dt before softplus has
    dt_proj_w's row count, E (Mamba-1) or H (SSD); `d_state` is N (`state_size` reads it from the weights)."""
    dt_rank = dt_proj_w.shape[1]
    dt_low, B, C = F.linear(u, x_proj_w.to(u.dtype)).split([dt_rank, d_state, d_state], dim=-1)
    dt_pre = F.linear(dt_low, dt_proj_w.to(u.dtype), dt_proj_b.to(u.dtype) if dt_proj_b is not None else None)
    return dt_low, B, C, dt_pre


def state_size(x_proj_w: torch.Tensor, dt_proj_w: torch.Tensor) -> int:
    """N, the state size, from x_proj's R + 2N output rows and dt_proj's rank R (either form)."""
    return (x_proj_w.shape[0] - dt_proj_w.shape[1]) // 2


def step_size(dt_pre: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """dt = softplus(dt_pre) in fp32, 0 at padding: (B, L, E) per channel or (B, L, H) per head."""
    return masked(F.softplus(dt_pre.float()), keep)


def state_matrix(A_log: torch.Tensor) -> torch.Tensor:
    """A = -exp(A_log) in fp32: (E, N) per channel and state, or (H,) one rate a head (SSD)."""
    return -torch.exp(A_log.float())


def scan(u: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
         D: torch.Tensor | None, reverse: bool) -> torch.Tensor:
    """r (B, L, E) in u's dtype: the Mamba-1 reference scan for A (E, N) and dt (B, L, E), the SSD reference
    scan for A (H,) and dt (B, L, H), over u (B, L, E) viewed as H heads of E / H channels."""
    if A.dim() == 2:
        return selective_scan_reference(u, dt, A, B, C, D, reverse=reverse)
    return ssd_scan_reference(u.unflatten(-1, (A.shape[0], -1)), dt, A, B, C, D, reverse=reverse).flatten(2)


def injected(u: torch.Tensor, h: torch.Tensor | None, p: torch.Tensor | None) -> torch.Tensor:
    """u + P h in u's dtype (P = diag(p); p None: P = I; h None: no injection)."""
    if h is None:
        return u
    return u + (h.to(u.dtype) if p is None else p.to(u.dtype) * h.to(u.dtype))


def scan_input(x: torch.Tensor, conv_w: torch.Tensor | None, conv_b: torch.Tensor | None, h: torch.Tensor | None,
               p: torch.Tensor | None, keep: torch.Tensor | None,
               reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(x~, u): x masked, and u = SiLU(conv(x~)) + P h, 0 at padding (no conv: u = SiLU(x~) + P h). The conv
    kernel of `triton.py` forms u from x in one launch (`causal_conv.triton.conv_forward`)."""
    xm = masked(x, keep)
    u = F.silu(xm) if conv_w is None else causal_conv_silu_reference(xm, conv_w, conv_b, reverse)
    return xm, masked(injected(u, h, p), keep)


def ssm_inner_reference(x: torch.Tensor, conv_w: torch.Tensor | None, conv_b: torch.Tensor | None,
                        h: torch.Tensor | None, p: torch.Tensor | None, x_proj_w: torch.Tensor, dt_proj_w: torch.Tensor,
                        dt_proj_b: torch.Tensor, A_log: torch.Tensor, D: torch.Tensor,
                        padding_mask: torch.Tensor | None, reverse: bool) -> torch.Tensor:
    """Readout r (B, L, E) in x's dtype of the module docstring's path, in either form (A_log's rank).

    Args:
        x: (B, L, E) the scanned stream after in_proj.  conv_w: (E, K) depthwise taps (w_{K-1} on the
        current step) or None for no conv (then u = SiLU(x)); conv_b: (E,) or None.
        h: (B, L, E) injected into u after the conv as P h (InfoMamba's filter output), or None;
        p: (E,) the diagonal of P, or None for P = I.  x_proj_w: (R + 2N, E).
        dt_proj_w, dt_proj_b, A_log: Mamba-1 form (E, R), (E,), (E, N); SSD form (H, R), (H,), (H,) with H
            heads dividing E.  D: (E,).  padding_mask: (B, L) True at padding, or None.
        reverse: scan (and conv) from the last token to the first.
    """
    keep = keep_mask(padding_mask, x)
    _, u = scan_input(x, conv_w, conv_b, h, p, keep, reverse)
    _, B, C, dt_pre = projections(u, x_proj_w, dt_proj_w, dt_proj_b, state_size(x_proj_w, dt_proj_w))
    return scan(u, step_size(dt_pre, keep), state_matrix(A_log), B, C, D, reverse)


def ssm_inner_pair_reference(x: torch.Tensor, h: torch.Tensor | None, p: torch.Tensor | None,
                             padding_mask: torch.Tensor | None, forward: tuple, reverse: tuple) -> torch.Tensor:
    """r_forward + r_reverse: a forward and a reverse scan over the same x, h, p (a bidirectional mixer's two
    directions), each direction's parameters a tuple (conv_w, conv_b, x_proj_w, dt_proj_w, dt_proj_b, A_log, D) as
    `ssm_inner_reference` takes them."""
    def readout(params, backwards):
        conv_w, conv_b, *rest = params
        return ssm_inner_reference(x, conv_w, conv_b, h, p, *rest, padding_mask, backwards)
    return readout(forward, False) + readout(reverse, True)
