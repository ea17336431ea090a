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

import copy
import dataclasses
import functools
import warnings
from typing import Callable

import torch
import torch.nn as nn

from .encoder import EncoderOutput
from .mixers import MixerAux, training_terms


def _autocast(dtype: torch.dtype | None):
    return torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=False)


@functools.cache
def _side_stream(device: int) -> torch.cuda.Stream:
    """The one stream a device's warm-ups run on. cuBLAS gets a workspace for each stream (and thread) it runs on
    (32 MiB on sm_90, from the caching allocator, kept until the process ends), and `torch.cuda.Stream()` hands out
    the next of 32 pooled streams: a new stream per capture left two more workspaces each time, up to about 2 GiB."""
    return torch.cuda.Stream(device)


def _warm_up(fn: Callable[[], object], steps: int) -> None:
    """fn() `steps` times on a side stream, as capture requires of the work it records."""
    side = _side_stream(torch.cuda.current_device())
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(steps):
            fn()
    torch.cuda.current_stream().wait_stream(side)


def _recorded(fn: Callable[[], object], pool=None) -> Callable[[], object]:
    """`fn()` recorded once into a CUDA graph (in the memory pool `pool`, a `torch.cuda.graph_pool_handle()`, or a
    pool of its own); returns a function that replays it and returns what `fn` returned while recording (each replay
    overwrites it)."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
        output = fn()

    def replay() -> object:
        graph.replay()
        return output
    return replay


def graphed_forward(model: nn.Module, inputs: torch.Tensor | tuple[torch.Tensor, ...],
                    autocast_dtype: torch.dtype | None = None, warmup: int = 3, pool=None) -> Callable[[], object]:
    """A function that replays `model(inputs)` (`model(*inputs)` for a tuple; no gradients) and returns its output,
    which each replay overwrites; `pool` as `_recorded`'s."""
    args = inputs if isinstance(inputs, tuple) else (inputs,)

    def forward():
        with torch.no_grad(), _autocast(autocast_dtype):
            return model(*args)

    _warm_up(forward, warmup)
    return _recorded(forward, pool)


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


def _make_graphed(module: nn.Module, sample: tuple[torch.Tensor, ...]):
    """torch.cuda.make_graphed_callables(module, sample), captured in "thread_local" mode: torch 2.11's takes no
    capture mode, so `torch.cuda.graph`, which it opens for its captures, is given one for the call.

    In the default "global" mode a CUDA call from any other thread invalidates the capture. A DataLoader with
    `pin_memory=True` runs such a thread, which allocates pinned host memory for the next batch, and each capture
    first empties the pinned-memory cache: on the H200 a speech fit (two fits side by side, 7 loader workers each)
    died in its first capture with cudaErrorStreamCaptureInvalidated (docs/results.md). In "thread_local" mode only
    the capturing thread's own unsafe calls do; the pinning thread's buffers never enter the graph. Only one
    capture may run in a process at a time, so swapping the module attribute for the call is safe."""
    graph = torch.cuda.graph
    torch.cuda.graph = functools.partial(graph, capture_error_mode="thread_local")
    try:
        return torch.cuda.make_graphed_callables(module, sample)
    finally:
        torch.cuda.graph = graph


_AUX_FIELDS = tuple(f.name for f in dataclasses.fields(MixerAux))


class _FlatEncoder(nn.Module):
    """The encoder as make_graphed_callables takes it: tensors in, a flat tuple of tensors out (the aux fields a
    mixer leaves None are left out; `present` records which are there), the grid fixed."""

    def __init__(self, encoder: nn.Module, grid: tuple[int, int] | None):
        super().__init__()
        self.encoder = encoder
        self.grid = grid
        self.present: list[list[bool]] = []

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        out = self.encoder(x, padding_mask, self.grid)
        fields = [[getattr(aux, name) for name in _AUX_FIELDS] for aux in out.aux]
        self.present = [[value is not None for value in block] for block in fields]
        return (out.hidden, *(value for block in fields for value in block if value is not None))

    def output(self, flat: tuple[torch.Tensor, ...], padding_mask: torch.Tensor | None) -> EncoderOutput:
        """The EncoderOutput that `flat` (what forward returned) stands for."""
        values = iter(flat[1:])
        aux = [MixerAux(*(next(values) if there else None for there in block)) for block in self.present]
        return EncoderOutput(flat[0], padding_mask, aux)


class _EvalGraph:
    """One evaluation signature's forward (no gradients) recorded in a CUDA graph: each call copies its input and
    padding mask into the recorded buffers, replays, and returns clones of the outputs, which the next replay of any
    evaluation graph may overwrite (they share one memory pool)."""

    def __init__(self, encoder: nn.Module, x: torch.Tensor, padding_mask: torch.Tensor | None,
                 grid: tuple[int, int] | None, autocast: torch.dtype | None, pool):
        self.flat = _FlatEncoder(encoder, grid)
        self.inputs = tuple(t.clone() for t in (x, padding_mask) if t is not None)
        self.replay = graphed_forward(self.flat, self.inputs, autocast, warmup=2, pool=pool)

    def __call__(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> EncoderOutput:
        for buffer, given in zip(self.inputs, (x, padding_mask)):
            buffer.copy_(given)
        return self.flat.output(tuple(t.clone() for t in self.replay()), padding_mask)


class GraphedEncoder:
    """An encoder replayed as CUDA graphs: what `infomamba fit --model.cuda_graphs=true` runs. Training: the forward
    and backward, each one graph (PyTorch's partial-network capture, `torch.cuda.make_graphed_callables`); the
    optimizer step, the loss and the task's frontend and head stay eager, and gradients reach the parameters through
    autograd as usual, so gradient clipping, schedulers and checkpoints are unchanged. Evaluation (eval mode, no
    gradients: validation, test, predictions): the forward as one graph (`_EvalGraph`), its outputs cloned.

    One capture per input signature (shape, dtype, padding-mask shape, grid, autocast dtype; for evaluation also
    whether the mixers report their loss terms and whether inference mode is on), at most `max_shapes` for training
    and as many for evaluation: fixed-size batches (images; the last, smaller batch is a second capture) replay, and
    an input seen after the cap, a CPU tensor, or a call that is neither training with gradients nor evaluation
    without runs the eager encoder. Capturing costs a few eager calls (warm-up calls on a side stream, then one
    recorded). Each training capture keeps its activations in its own memory pool for the rest of the run; the
    evaluation captures share one. A training replay overwrites the gradients of the previous one, so gradients must
    not be accumulated over several batches (`accumulate_grad_batches` > 1): the task refuses it.
    """

    def __init__(self, encoder: nn.Module, max_shapes: int = 4):
        self.encoder = encoder
        self.max_shapes = max_shapes
        self.graphs: dict[tuple, _FlatEncoder] = {}
        self.eval_graphs: dict[tuple, _EvalGraph] = {}
        self.eval_pool = None
        self.warned: set[str] = set()

    def __call__(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                 grid: tuple[int, int] | None = None):
        training = self.encoder.training
        if not x.is_cuda or training != torch.is_grad_enabled():
            return self.encoder(x, padding_mask, grid)
        autocast = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
        key = (tuple(x.shape), x.dtype, None if padding_mask is None else tuple(padding_mask.shape), grid, autocast)
        if training:
            graphed = self._captured(self.graphs, (*key, x.requires_grad), "training", x,
                                     lambda: self._capture(x, padding_mask, grid, autocast))
            if graphed is None:
                return self.encoder(x, padding_mask, grid)
            return graphed.output(graphed(x) if padding_mask is None else graphed(x, padding_mask), padding_mask)
        graphed = self._captured(self.eval_graphs, (*key, training_terms(), torch.is_inference_mode_enabled()),
                                 "evaluation", x, lambda: self._capture_eval(x, padding_mask, grid, autocast))
        return self.encoder(x, padding_mask, grid) if graphed is None else graphed(x, padding_mask)

    def _captured(self, graphs: dict, key: tuple, kind: str, x: torch.Tensor, capture: Callable[[], object]):
        """The capture of `key` in `graphs`, made by `capture()` if new and under the cap; None past the cap (warned
        once for each `kind`)."""
        graphed = graphs.get(key)
        if graphed is None:
            if len(graphs) >= self.max_shapes:
                if kind not in self.warned:
                    warnings.warn(f"cuda_graphs: {self.max_shapes} {kind} batch shapes captured; batches of other "
                                  f"shapes (this one: {tuple(x.shape)}) run eagerly. Fixed shapes replay (text, "
                                  "speech: data.pad_multiple)", stacklevel=3)
                    self.warned.add(kind)
                return None
            graphed = graphs[key] = capture()
        return graphed

    def _capture(self, x, padding_mask, grid, autocast: torch.dtype | None) -> _FlatEncoder:
        sample = (x.detach().clone().requires_grad_(x.requires_grad),)
        if padding_mask is not None:
            sample += (padding_mask.clone(),)
        with _autocast(autocast):
            return _make_graphed(_FlatEncoder(self.encoder, grid), sample)

    def _capture_eval(self, x, padding_mask, grid, autocast: torch.dtype | None) -> _EvalGraph:
        if self.eval_pool is None:
            self.eval_pool = torch.cuda.graph_pool_handle()
        return _EvalGraph(self.encoder, x, padding_mask, grid, autocast, self.eval_pool)

    def __deepcopy__(self, memo):
        """A copy (an averaged model, say) gets the copied encoder and no captures (graphs cannot be copied)."""
        return GraphedEncoder(copy.deepcopy(self.encoder, memo), self.max_shapes)
