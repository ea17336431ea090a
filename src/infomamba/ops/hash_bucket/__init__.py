"""Eq. 8's hash bucketing, dispatched: the candidate sets C(b), the straight-through Gumbel bucket sample and the
MI-hash term as Triton kernels (`triton.py`) on CUDA, the PyTorch reference (`reference.py`) elsewhere and for
float64 (gradcheck)."""
from __future__ import annotations

import torch

from ..dispatch import kernel_unless_float64, optional_import
from .reference import bucket_members_reference, bucket_nll_reference, gumbel_bucket_reference, one_hot

_triton = optional_import(__name__ + ".triton")

__all__ = ["bucket_members", "bucket_members_reference", "bucket_nll", "bucket_nll_reference", "gumbel_bucket",
           "gumbel_bucket_reference", "one_hot"]


def _kernels(*tensors: torch.Tensor):
    """The kernels' module where they run these inputs (CUDA, not sent to the reference, no float64), else None."""
    return kernel_unless_float64(_triton, "hash_bucket", "hash bucketing", *tensors)


def bucket_members(centers: torch.Tensor, bucket_dirs: torch.Tensor) -> torch.Tensor:
    """C(b) (n_buckets, k) fp32, no gradient; contract of `bucket_members_reference`."""
    kernels = _kernels(centers, bucket_dirs)
    if kernels:
        return kernels.bucket_members_triton(centers, bucket_dirs)
    return bucket_members_reference(centers.detach(), bucket_dirs.detach())


def gumbel_bucket(logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """b (..., n_buckets) fp32; contract of `gumbel_bucket_reference`."""
    kernels = _kernels(logits, noise)
    return kernels.gumbel_bucket_triton(logits, noise) if kernels else gumbel_bucket_reference(logits, noise)


def bucket_nll(u: torch.Tensor, b: torch.Tensor, bucket_dirs: torch.Tensor, tau_hash: float) -> torch.Tensor:
    """nll (...,) fp32; contract of `bucket_nll_reference`."""
    kernels = _kernels(u, b, bucket_dirs)
    if kernels:
        return kernels.bucket_nll_triton(u, b, bucket_dirs, tau_hash)
    return bucket_nll_reference(u, b, bucket_dirs, tau_hash)
