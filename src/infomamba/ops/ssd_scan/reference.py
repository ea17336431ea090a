"""SSD scan (Mamba-2 form): the exact chunked PyTorch reference, the CPU path and the oracle of `triton.py`.

The Mamba-1 scan of `ops/selective_scan` with dt and A shared within a head (DESIGN.md "One scan for every
SSM mixer"; Dao & Gu 2024, "Transformers are SSMs", Eq. 16 and its chunked algorithm, Listing 1). Per head h
the state is a (n, p) matrix:

    s_t = exp(dt_t A_h) s_{t-1} + dt_t B_t^T x_t        (B_t: (1, n), x_t: (1, p) the head's channels)
    y_t = C_t s_t + D x_t

Within a chunk of Q positions the scan is a matmul (the masked, decay-weighted C B^T "attention" of the
SSD paper, Eq. 16), across chunks a recurrence over the chunks' end states. State and accumulation in fp32.
Padding: dt = x = 0 at a position leaves the state unchanged, so callers zero both at padded positions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..selective_scan.reference import selective_scan_sequential


def segment_sums(a: torch.Tensor) -> torch.Tensor:
    """(..., Q) -> (..., Q, Q): entry [i, j] = a[j+1] + ... + a[i] for j <= i, -inf above the diagonal. Summed
    segment by segment (the SSD paper's `segsum`), not as a difference of two cumulative sums, which would lose
    about eps * |cumulative sum| in fp32 where the sums grow large (A up to -16)."""
    q = a.shape[-1]
    below = torch.tril(torch.ones(q, q, dtype=torch.bool, device=a.device), diagonal=-1)
    sums = torch.cumsum(a[..., None].expand(*a.shape, q).masked_fill(~below, 0.0), dim=-2)
    return sums.masked_fill(~torch.tril(torch.ones(q, q, dtype=torch.bool, device=a.device)), float("-inf"))


def ssd_scan_reference(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                       D: torch.Tensor | None = None, reverse: bool = False, chunk: int = 64) -> torch.Tensor:
    """y of the SSD scan in chunks of `chunk` positions (the SSD paper's chunked algorithm; L padded to a
    multiple of the chunk with dt = x = 0, which leaves the state unchanged).

    Args:
        x: (batch, L, heads, p) the scanned stream, p channels a head.
        dt: (batch, L, heads) positive step sizes (already softplus-ed; 0 at padding).
        A: (heads,) negative decay rates.  B, C: (batch, L, n), one group shared by every head.
        D: (heads * p,) skip connection or None.  reverse: scan from the last position to the first.
    Returns:
        y: (batch, L, heads, p) in x's dtype.
    """
    if reverse:
        return ssd_scan_reference(x.flip(1), dt.flip(1), A, B.flip(1), C.flip(1), D, chunk=chunk).flip(1)
    batch, length, heads, p = x.shape
    f = torch.float32
    pad = -length % chunk
    X = F.pad((x.to(f) * dt.to(f)[..., None]), (0, 0, 0, 0, 0, pad)).unflatten(1, (-1, chunk))  # (b, c, q, h, p)
    a = F.pad(dt.to(f) * A.to(f), (0, 0, 0, pad)).unflatten(1, (-1, chunk)).permute(0, 3, 1, 2)  # (b, h, c, q)
    Bc, Cc = (F.pad(t.to(f), (0, 0, 0, pad)).unflatten(1, (-1, chunk)) for t in (B, C))     # (b, c, q, n)
    a_cum = torch.cumsum(a, dim=-1)
    within = torch.exp(segment_sums(a))                                                  # (b, h, c, q, q)
    y = torch.einsum("bcln,bcsn,bhcls,bcshp->bclhp", Cc, Bc, within, X)
    to_end = torch.exp(a_cum[..., -1:] - a_cum)                                          # (b, h, c, q)
    states = torch.einsum("bcln,bhcl,bclhp->bchpn", Bc, to_end, X)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    across = torch.exp(segment_sums(F.pad(a_cum[..., -1], (1, 0))))                      # (b, h, c + 1, c + 1)
    entering = torch.einsum("bhzc,bchpn->bzhpn", across, states)[:, :-1]                 # state entering each chunk
    y = y + torch.einsum("bcln,bchpn,bhcl->bclhp", Cc, entering, torch.exp(a_cum))
    y = y.flatten(1, 2)[:, :length]
    if D is not None:
        y = y + D.to(f).view(heads, p) * x.to(f)
    return y.to(x.dtype)


def ssd_scan_sequential(x, dt, A, B, C, D=None, reverse=False):
    """The definition, through the Mamba-1 scan one token at a time: dt repeated over each head's p channels, A
    over them and over the n states (tests only)."""
    batch, length, heads, p = x.shape
    A1 = A.repeat_interleave(p)[:, None].expand(-1, B.shape[-1])
    y = selective_scan_sequential(x.flatten(2), dt.repeat_interleave(p, dim=-1), A1, B, C, D, reverse)
    return y.view(batch, length, heads, p)
