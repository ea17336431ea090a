"""Concept assignment + entropy budget + top-q (Eq. 7 and §4.1's budget), dispatched: the fused Triton
kernel (`triton.py`) on CUDA, the PyTorch reference (`reference.py`) elsewhere."""
from __future__ import annotations

import torch

from ..dispatch import kernel_for, optional_import
from .reference import budget_scale, entropy_budget, sparse_assign_reference

_triton = optional_import(__name__ + ".triton")

__all__ = ["budget_scale", "entropy_budget", "sparse_assign", "sparse_assign_reference"]


def sparse_assign(logits: torch.Tensor, candidate: torch.Tensor, q_max: int):
    """(R, R_bar) of `sparse_assign_reference`."""
    kernel = kernel_for(_triton and _triton.sparse_assign_triton, "concept_assign",
                        "concept assignment", logits.is_cuda)
    if kernel is not None:
        return kernel(logits, candidate, q_max)
    return sparse_assign_reference(logits, candidate, q_max)
