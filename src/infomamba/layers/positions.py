"""Token positions that padding never shifts: the rank of each token among its sample's real tokens.

Mixers with per-position parameters (Linformer's E, F rows; VMI-SA's alpha_i, beta_i and mask M)
index them with these positions, so a padded sample uses exactly the rows it would use alone,
wherever its padding sits.
"""
from __future__ import annotations

import torch


def real_positions(padding_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) index of each token among its sample's real tokens (padded tokens get their
    predecessor's index; callers mask them)."""
    return ((~padding_mask).long().cumsum(1) - 1).clamp_min(0)
