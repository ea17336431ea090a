"""Masked pooling shared by mixers (pooled streams for the losses) and task heads."""
from __future__ import annotations

import torch


def masked_mean(x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over dim 1 of (B, L, D) ignoring positions where padding_mask (B, L) is True."""
    if padding_mask is None:
        return x.mean(dim=1)
    keep = (~padding_mask).unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)


def masked_token_mean(values: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-token values (B, L) over every real position of the batch (a scalar)."""
    if padding_mask is None:
        return values.mean()
    keep = (~padding_mask).to(values.dtype)
    return (values * keep).sum() / keep.sum().clamp_min(1.0)


def zero_padding(x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
    """x with padded positions set to zero (B, L, ...)."""
    if padding_mask is None:
        return x
    return x.masked_fill(padding_mask.view(*padding_mask.shape, *([1] * (x.dim() - 2))), 0.0)
