"""The SiLU gate g = y * SiLU(z) and its backward, and its readout form ((r + f h) * SiLU(z), `reference.py`),
dispatched: one fused elementwise Triton kernel per direction (`triton.py`) on CUDA, the PyTorch reference
elsewhere and for float64 (gradcheck)."""
from __future__ import annotations

import torch

from ..dispatch import kernel_unless_float64, optional_import
from .reference import (readout_gate_backward_reference, readout_gate_reference, silu_gate_backward_reference,
                        silu_gate_reference)

_triton = optional_import(__name__ + ".triton")

__all__ = ["readout_gate", "readout_gate_backward", "readout_gate_backward_reference", "readout_gate_reference",
           "silu_gate", "silu_gate_backward", "silu_gate_backward_reference", "silu_gate_reference"]


def _kernels(y: torch.Tensor, z: torch.Tensor):
    """The kernels' module where they run these inputs (CUDA, not sent to the reference, no float64), else None."""
    return kernel_unless_float64(_triton, "silu_gate", "SiLU gate", y, z)


def silu_gate(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """g = y * SiLU(z); contract of `silu_gate_reference`."""
    kernels = _kernels(y, z)
    return kernels.silu_gate_triton(y, z) if kernels else silu_gate_reference(y, z)


def silu_gate_backward(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, g_dtype: torch.dtype):
    """(g, dy, dz); contract of `silu_gate_backward_reference`."""
    kernels = _kernels(y, z)
    if kernels:
        return kernels.silu_gate_backward_triton(y, z, dg, g_dtype)
    return silu_gate_backward_reference(y, z, dg, g_dtype)


def readout_gate(r: torch.Tensor, h: torch.Tensor, f: torch.Tensor, z: torch.Tensor):
    """(y = r + f h, g = y * SiLU(z)); contract of `readout_gate_reference`."""
    kernels = _kernels(r, z)
    return kernels.readout_gate_triton(r, h, f, z) if kernels else readout_gate_reference(r, h, f, z)


def readout_gate_backward(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, h: torch.Tensor, f: torch.Tensor,
                          g_dtype: torch.dtype, dr_pool: torch.Tensor | None = None,
                          padding_mask: torch.Tensor | None = None):
    """(g, dy, dz, dh, df); contract of `readout_gate_backward_reference`."""
    kernels = _kernels(y, z)
    if kernels:
        return kernels.readout_gate_backward_triton(y, z, dg, h, f, g_dtype, dr_pool, padding_mask)
    return readout_gate_backward_reference(y, z, dg, h, f, g_dtype, dr_pool, padding_mask)
