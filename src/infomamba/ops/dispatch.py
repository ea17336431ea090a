"""Kernel dispatch shared by every op folder (`ops/<op>/triton.py` beside `ops/<op>/reference.py`):
which path runs, said once.

INFOMAMBA_KERNELS=reference forces the PyTorch references on CUDA too (debugging, benchmarks);
INFOMAMBA_KERNELS=reference:ssm_inner,concept_assign forces them for the listed op folders only;
INFOMAMBA_KERNELS=triton runs the Triton kernels on CPU tensors as well, which only works under
Triton's interpreter (TRITON_INTERPRET=1; tests). Each op announces its path once per process
(stderr on the first rank, and the `infomamba.ops.dispatch` logger). The kernels' modules are imported with the op
(`optional_import`), so that choosing a path inside `torch.compile` is plain attribute access.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from types import ModuleType

import torch

from ..console import say

log = logging.getLogger(__name__)

_announced: set[tuple[str, str]] = set()


def announce(op: str, path: str) -> None:
    """Print '<op>: using the <path> path' the first time this (op, path) pair runs (eagerly: not while
    torch.compile traces); under torch.distributed only the first rank prints, every rank logs. On stderr: a
    diagnostic, which on stdout would land inside the tables that `infomamba summary` and `bench` print there."""
    if not torch.compiler.is_compiling() and (op, path) not in _announced:
        _announced.add((op, path))
        log.info("%s: using the %s path", op, path)
        if first_rank():
            say(f"[infomamba] {op}: using the {path} path", file=sys.stderr)


def first_rank() -> bool:
    """Whether this process is rank 0 of an initialised process group, or in none."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def optional_import(module: str) -> ModuleType | None:
    """The kernels' module `module`, or None where Triton is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def reference_forced(op: str) -> bool:
    """Whether INFOMAMBA_KERNELS sends op folder `op` to its reference ("reference" or "reference:op,...")."""
    mode = os.environ.get("INFOMAMBA_KERNELS", "").lower()
    return mode == "reference" or (mode.startswith("reference:") and op in mode.split(":", 1)[1].split(","))


def kernel_for(kernel, op: str, label: str, on_cuda: bool):
    """`kernel` (None where Triton is missing) when the input is on CUDA and op folder `op` is not sent to
    its reference, else None (the caller runs the reference); announces once which path `label` takes."""
    mode = os.environ.get("INFOMAMBA_KERNELS", "").lower()
    if kernel is None or reference_forced(op) or not (on_cuda or mode == "triton"):
        announce(label, "PyTorch reference on CUDA (slow: the Triton kernel is unavailable or disabled)"
                 if on_cuda else "PyTorch reference (CPU)")
        return None
    announce(label, "Triton kernel")
    return kernel


def kernel_unless_float64(kernel, op: str, label: str, *tensors: torch.Tensor):
    """`kernel_for` for `tensors` (the first says the device), except that float64 inputs always take the
    reference (gradcheck: the kernels compute in fp32)."""
    if any(t.dtype == torch.float64 for t in tensors):
        return None
    return kernel_for(kernel, op, label, tensors[0].is_cuda)


def on_device(t: torch.Tensor):
    """A Triton launch on the tensor's GPU (a no-op context for CPU tensors under TRITON_INTERPRET=1)."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def dot_precision(x: torch.Tensor) -> str:
    """A kernel's `tl.dot` input precision for operands of x's dtype: fp32 inputs get exact fp32 products ("ieee",
    not tf32: the references' tolerances); 16-bit ones are exact anyway."""
    return "ieee" if x.dtype == torch.float32 else "tf32"
