"""SSD scan (Mamba-2 form: dt and A shared within a head), dispatched: the Triton kernels (`triton.py`) on CUDA,
the exact chunked reference (`reference.py`) elsewhere."""
from __future__ import annotations

from ..dispatch import kernel_for, optional_import
from .reference import ssd_scan_reference, ssd_scan_sequential

_triton = optional_import(__name__ + ".triton")

__all__ = ["kernel_widths_fit", "tile_width", "ssd_scan", "ssd_scan_reference", "ssd_scan_sequential"]


def tile_width(v: int) -> bool:
    """Whether v is a width the Triton kernels' `tl.dot` tiles take: a power of two >= 16."""
    return v >= 16 and not v & (v - 1)


def kernel_widths_fit(p: int, n: int) -> bool:
    """Whether the Triton kernels take p channels a head and n states."""
    return tile_width(p) and tile_width(n)


def ssd_scan(x, dt, A, B, C, D=None, reverse=False):
    """y (batch, L, heads, p) of the SSD scan; the contract of `reference.ssd_scan_reference`."""
    kernel = kernel_for(_triton and _triton.ssd_scan_triton, "ssd_scan", "SSD scan", x.is_cuda)
    fn = kernel if kernel is not None else ssd_scan_reference
    return fn(x, dt, A, B, C, D, reverse=reverse)
