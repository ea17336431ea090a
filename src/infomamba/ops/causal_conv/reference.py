"""Depthwise causal (or anti-causal) conv + SiLU along time: the PyTorch reference of `triton.py`."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def causal_conv_silu_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                               reverse: bool = False) -> torch.Tensor:
    """SiLU of a depthwise convolution along time that runs in the scan's direction (PyTorch reference).

    x: (B, L, D); weight: (D, K); bias: (D,) or None. Forward: y_t = b + sum_i w_i x_{t-K+1+i}
    (causal, zeros before the start); reverse: y_t = b + sum_i w_i x_{t+K-1-i} (anti-causal, zeros
    after the end). Computed in x's dtype (weight and bias cast to it, as autocast would). Returns
    SiLU(y), (B, L, D) in x's dtype.
    """
    K = weight.shape[1]
    xt = x.flip(1).transpose(1, 2) if reverse else x.transpose(1, 2)
    bias = bias.to(x.dtype) if bias is not None else None
    y = F.conv1d(xt, weight.to(x.dtype).unsqueeze(1), bias, padding=K - 1, groups=weight.shape[0])[..., : x.shape[1]]
    y = F.silu(y).transpose(1, 2)
    return y.flip(1) if reverse else y
