"""The compute dtype of mixed precision, applied once per tensor that several layers read; and the terms that
must not take it (`full_precision`)."""
from __future__ import annotations

import contextlib

import torch


def compute_dtype(x: torch.Tensor) -> torch.Tensor:
    """x in autocast's dtype where autocast is on (else x unchanged).

    Autocast casts an fp32 activation afresh for every matmul that reads it, and each such matmul saves
    its own half-precision copy for backward. A mixer reads its normalised input in up to four
    projections (InfoMamba: in_proj, W_r, the hash head and the concept pooling), so casting once before
    the mixer keeps one copy instead of four (measured with benchmarks/saved_activations.py: 2.3 KB less
    per token and layer at dim 384, about 6.7 GiB of a 1024 px, batch 64, depth 12 training step).

    Under torch.compile the device is a real one (autocast's availability query, for devices without
    autocast such as meta, is a function dynamo cannot trace: it would break the encoder's graph at every block).
    """
    device = x.device.type
    if autocasts(device) and torch.is_autocast_enabled(device) and x.is_floating_point():
        return x.to(torch.get_autocast_dtype(device))
    return x


def autocasts(device: str) -> bool:
    """Whether autocast exists for `device` (not for meta, which `summary` runs on); under torch.compile the device
    is a real one, and the query is not traced (see `compute_dtype`)."""
    return torch.compiler.is_compiling() or torch.amp.is_autocast_available(device)


def full_precision(device: str):
    """A context with autocast off on `device`: the losses whose `.float()` inputs autocast would otherwise feed to
    bf16 matmuls (Eq. 8's bucket likelihood, Eq. 12, Eq. 13)."""
    return torch.autocast(device, enabled=False) if autocasts(device) else contextlib.nullcontext()
