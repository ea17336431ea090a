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


def first_rows(state_dict: dict, keys: list[str], rows: int, dim: int) -> None:
    """Cut the tensors at `keys` of a state_dict being loaded to their first `rows` along `dim` where they have more:
    the per-position table of a model built for longer sequences (an image model from before the image task sized
    max_len to its grid), whose rows past `rows` no sequence this model accepts reads. In place, as
    `_load_from_state_dict` hooks rewrite what they load."""
    for key in keys:
        tensor = state_dict.get(key)
        if tensor is not None and tensor.shape[dim] > rows:
            state_dict[key] = tensor.narrow(dim, 0, rows)
