"""Concept assignment (InfoMamba Eq. 7) with the entropy-budgeted top-q sparsification: the PyTorch
reference of `triton.py`, and the budget formula both share (`budget_scale`)."""
from __future__ import annotations

import math

import torch


def budget_scale(k: int, q_max: int) -> float:
    """(q_max - 1) / log k, the factor of q_t = 1 + round(scale * H(R_t)); 0 at k = 1 (H = 0, q = 1).

    H(R_t) <= log k, so q_t spans [1, q_max] for every k >= 2 (k = 2 included: log 2 < 1)."""
    return (q_max - 1) / math.log(k) if k > 1 else 0.0


def entropy_budget(R: torch.Tensor, q_max: int) -> torch.Tensor:
    """q_t = 1 + round((q_max - 1) * H(R_t) / log k): (B, L, k) -> (B, L) long in [1, q_max]."""
    H = -(R * torch.log(R.clamp_min(1e-12))).sum(-1)
    q = 1 + torch.round(budget_scale(R.shape[-1], q_max) * H)
    return q.clamp(1, q_max).long()


def sparse_assign_reference(logits: torch.Tensor, candidate: torch.Tensor, q_max: int):
    """Eq. 7 and the budgeted top-q sparsification in PyTorch (the CPU path and the fused kernel's oracle).

    R = softmax(logits) in fp32; q_t = entropy_budget(R_t); R_bar keeps each token's q_t largest R_ti
    among its candidates (candidate_ti = 1) with R_ti > 0, renormalised to sum 1 (however small their
    mass; a row with none stays 0), as a dense (B, L, k) tensor with at most q_max non-zeros a row.
    Gradients reach the logits through R, and the candidate mask (straight-through from the Gumbel
    bucketing) through the kept entries only; q_t is a step function (no gradient). Returns (R, R_bar) in
    the logits' dtype (bf16 under autocast: the layers that read them run in bf16 anyway, and the copy
    saved for backward is then half the size).

    A kept entry must be positive: when a token has fewer than q_t candidates, top-k would otherwise
    keep zero entries chosen by tie-breaking, and their candidate gradient R_ti dL/dv_i with them.
    """
    R = logits.float().softmax(-1)
    values, index = (R * candidate).topk(min(q_max, R.shape[-1]), dim=-1)
    ranks = torch.arange(values.shape[-1], device=R.device)
    keep = (ranks < entropy_budget(R, q_max).unsqueeze(-1)) & (values > 0)
    values = values * keep
    weight = values / values.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    return R.to(logits.dtype), torch.zeros_like(R).scatter(-1, index, weight).to(logits.dtype)
