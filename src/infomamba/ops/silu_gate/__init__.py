"""The SiLU gate g = y * SiLU(z) and its backward, dispatched: one fused elementwise Triton kernel per direction
(`triton.py`) on CUDA, the PyTorch reference (`reference.py`) elsewhere and for float64 (gradcheck)."""
from __future__ import annotations

import torch

from ..dispatch import kernel_unless_float64, optional_import
from .reference import silu_gate_backward_reference, silu_gate_reference

_triton = optional_import(__name__ + ".triton")

__all__ = ["silu_gate", "silu_gate_backward", "silu_gate_backward_reference", "silu_gate_reference"]


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
