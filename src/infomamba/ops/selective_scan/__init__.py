"""Selective scan (Mamba-1 form, InfoMamba Eq. 11 with the injection folded into u), dispatched:
the Triton kernel (`triton.py`) on CUDA, the exact chunked reference (`reference.py`) elsewhere."""
from __future__ import annotations

from ..dispatch import kernel_for, optional_import
from .reference import selective_scan_reference, selective_scan_sequential

_triton = optional_import(__name__ + ".triton")

__all__ = ["selective_scan", "selective_scan_reference", "selective_scan_sequential"]


def selective_scan(u, delta, A, B, C, D=None, reverse=False):
    """y = scan(u, delta, A, B, C) + D u, see `reference.selective_scan_reference` for the contract."""
    kernel = kernel_for(_triton and _triton.selective_scan_triton, "selective_scan",
                        "selective scan", u.is_cuda)
    if kernel is not None:
        return kernel(u, delta, A, B, C, D, reverse=reverse)
    return selective_scan_reference(u, delta, A, B, C, D, reverse=reverse)
