"""The SSM's depthwise conv + SiLU in the scan's direction, dispatched: the fused channels-last Triton
kernel (`triton.py`) on CUDA, the channels-first conv1d reference (`reference.py`) elsewhere."""
from __future__ import annotations

import torch

from ..dispatch import kernel_for, optional_import
from .reference import causal_conv_silu_reference

_triton = optional_import(__name__ + ".triton")

__all__ = ["causal_conv_silu", "causal_conv_silu_reference"]


def causal_conv_silu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     reverse: bool = False) -> torch.Tensor:
    """SiLU(depthwise conv(x)) in the scan's direction; contract of `causal_conv_silu_reference`."""
    kernel = kernel_for(_triton and _triton.causal_conv_silu_triton, "causal_conv",
                        "causal conv + SiLU", x.is_cuda)
    if kernel is not None:
        return kernel(x, weight, bias, reverse=reverse)
    return causal_conv_silu_reference(x, weight, bias, reverse=reverse)
