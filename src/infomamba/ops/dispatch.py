"""Kernel dispatch shared by every op folder (`ops/<op>/triton.py` beside `ops/<op>/reference.py`): load it, or fall back, and say which path runs.

Set INFOMAMBA_KERNELS=reference to force the PyTorch references on CUDA too (debugging, benchmarks).
Each op announces its path once per process (stdout and the `infomamba.dispatch` logger).
"""
from __future__ import annotations

import importlib
import logging
import os

from ..console import say

log = logging.getLogger(__name__)

_announced: set[tuple[str, str]] = set()


def announce(op: str, path: str) -> None:
    """Print '<op>: using the <path> path' the first time this (op, path) pair runs."""
    if (op, path) not in _announced:
        _announced.add((op, path))
        log.info("%s: using the %s path", op, path)
        say(f"[infomamba] {op}: using the {path} path")


def load_kernel(op: str, name: str):
    """`infomamba.ops.<op>.triton.<name>`, or None when kernels are disabled or Triton is missing."""
    if os.environ.get("INFOMAMBA_KERNELS", "").lower() == "reference":
        return None
    try:
        return getattr(importlib.import_module(f"infomamba.ops.{op}.triton"), name)
    except ImportError:
        return None


def kernel_for(op: str, name: str, label: str, on_cuda: bool):
    """The Triton kernel `name` of op folder `op` when the input is on CUDA and the kernel loads, else
    None (the caller runs the reference); announces once which path `label` takes."""
    if not on_cuda:
        announce(label, "PyTorch reference (CPU)")
        return None
    kernel = load_kernel(op, name)
    announce(label, "Triton kernel" if kernel is not None
             else "PyTorch reference on CUDA (slow: the Triton kernel is unavailable or disabled)")
    return kernel
