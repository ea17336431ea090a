"""Kernel dispatch shared by every op with a Triton kernel: load it, or fall back, and say which path runs.

Set INFOMAMBA_KERNELS=reference to force the PyTorch references on CUDA too (debugging, benchmarks).
Each op announces its path once per process (stdout and the `infomamba.dispatch` logger).
"""
from __future__ import annotations

import importlib
import logging
import os

from .console import say

log = logging.getLogger(__name__)

_announced: set[tuple[str, str]] = set()


def announce(op: str, path: str) -> None:
    """Print '<op>: using the <path> path' the first time this (op, path) pair runs."""
    if (op, path) not in _announced:
        _announced.add((op, path))
        log.info("%s: using the %s path", op, path)
        say(f"[infomamba] {op}: using the {path} path")


def load_kernel(module: str, name: str):
    """`infomamba.kernels.<module>.<name>`, or None when kernels are disabled or Triton is missing."""
    if os.environ.get("INFOMAMBA_KERNELS", "").lower() == "reference":
        return None
    try:
        return getattr(importlib.import_module(f"infomamba.kernels.{module}"), name)
    except ImportError:
        return None
