"""A forward pass, or a whole training step, captured once in a CUDA graph and replayed, without torch.compile.

At 196 tokens (224 px, batch 64) an eager InfoMamba training step is launch-bound: on the H200 the GPU is busy
57 of its 262 ms (`benchmarks/profile_step.py`, docs/benchmarks.md), with about 3,600 launches per step. Replaying
a captured graph issues them all in one call. torch.compile's `reduce-overhead` mode does this too, but compiling
InfoMamba for it took most of a 570 s budget on the H200; capturing the eager step takes a few steps' time.

This is PyTorch's whole-network capture (the `torch.cuda.graph` recipe): warm-up steps on a side stream (the Triton
autotuners pick their launches there, outside the capture), then one step recorded. The recorded step is then
fixed: the same input tensors (copy new data into them), shapes, autocast dtype, learning rate and code path on
every replay; the optimizer must be built with `capturable=True` (its step count lives on the GPU). Random ops
(dropout, drop-path, Gumbel noise) draw fresh numbers on each replay. Autocast runs with its weight-cast cache
off, as capture requires. Activations and gradients live in the graph's private memory pool for as long as the
returned function does.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn


def _autocast(dtype: torch.dtype | None):
    return torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=False)


def _warm_up(fn: Callable[[], object], steps: int) -> None:
    """fn() `steps` times on a side stream, as capture requires of the work it records."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(steps):
            fn()
    torch.cuda.current_stream().wait_stream(side)


def _recorded(fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """`fn()` recorded once into a CUDA graph; returns a function that replays it and returns the tensor `fn`
    returned while recording (each replay overwrites it)."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = fn()

    def replay() -> torch.Tensor:
        graph.replay()
        return output
    return replay


def graphed_forward(model: nn.Module, inputs: torch.Tensor, autocast_dtype: torch.dtype | None = None,
                    warmup: int = 3) -> Callable[[], torch.Tensor]:
    """A function that replays `model(inputs)` (no gradients) and returns its output tensor, which each replay
    overwrites."""
    def forward():
        with torch.no_grad(), _autocast(autocast_dtype):
            return model(inputs)

    _warm_up(forward, warmup)
    return _recorded(forward)


def graphed_train_step(model: nn.Module, loss_fn: Callable[[torch.Tensor], torch.Tensor],
                       optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
                       autocast_dtype: torch.dtype | None = None, warmup: int = 3) -> Callable[[], torch.Tensor]:
    """A function that replays one training step, `loss_fn(model(inputs))`, its backward and `optimizer.step()`,
    and returns the loss tensor, which each replay overwrites. The gradients are written, not accumulated, by every
    replay (they are None when the step is recorded). `optimizer` needs `capturable=True`."""
    if not all(group.get("capturable", False) for group in optimizer.param_groups):
        raise ValueError(f"graphed_train_step: build {type(optimizer).__name__} with capturable=True "
                         "(its step count must live on the GPU to be replayed)")

    def step():
        with _autocast(autocast_dtype):
            loss = loss_fn(model(inputs))
        loss.backward()
        optimizer.step()
        return loss

    def warm():
        optimizer.zero_grad(set_to_none=True)
        step()

    _warm_up(warm, warmup)
    optimizer.zero_grad(set_to_none=True)
    return _recorded(step)
