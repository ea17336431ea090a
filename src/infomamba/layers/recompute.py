"""One activation saved for backward as the recipe that made it instead of its memory.

Autograd keeps every tensor that an op of the forward saves until that op's backward has run. For a tensor that is
cheap to make again from tensors autograd keeps anyway, `saved_as_recipe(t, recompute)` replaces those copies with
`recompute`: inside the block, each op that saves `t` itself (not a view of it) saves a token instead, and the
first backward use of the token runs `recompute()` under the autocast state of the forward (so the same kernels
give the same values); the later uses of the same backward share that result, which is dropped after the last one.
Everything else saved inside the block goes to the saved-tensor hooks already active (e.g. `save_on_cpu`), or is
kept as usual. Under torch.compile the block is a plain block: there `recomputed(fn, *args)`, where the tensor is
made, marks fn's ops for Inductor's partitioner to run again in the backward rather than save their output.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Callable

import torch
from torch.utils.checkpoint import checkpoint


def recomputed(fn: Callable[..., torch.Tensor], *args) -> torch.Tensor:
    """fn(*args). While torch.compile traces with grad, fn runs as an activation-checkpoint region: its ops are
    tagged for recomputation, so the partitioner keeps args (which fn's own backward keeps anyway) and makes the
    output again in the backward instead of saving it for the ops that read it, as `saved_as_recipe` does eagerly.
    Eagerly a plain call (a checkpoint there would not stop the readers outside fn from saving the output)."""
    if torch.compiler.is_compiling() and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def _outer_hooks():
    """The saved-tensor hooks active before ours (pack, unpack), or identities."""
    top = torch._C._autograd._top_saved_tensors_default_hooks(False)
    return top if top is not None else (lambda x: x, lambda x: x)


class _Recipe:
    """The token saved in place of the tensor: recomputes it once per backward, shared by the uses."""

    def __init__(self, recompute: Callable[[], torch.Tensor], device_type: str):
        self.recompute = recompute
        self.device_type = device_type
        self.autocast = (torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type))
        self.uses = 0
        self.value = None

    def unpack(self) -> torch.Tensor:
        if self.value is None:
            enabled, dtype = self.autocast
            # no weight-cast cache: a recompute uses each cast once, and a CUDA-graph capture must leave none in it
            with torch.no_grad(), torch.autocast(self.device_type, dtype=dtype, enabled=enabled, cache_enabled=False):
                self.value = self.recompute()
        value = self.value
        self.uses -= 1
        if self.uses <= 0:
            self.value = None
        return value


@contextlib.contextmanager
def saved_as_recipe(t: torch.Tensor | None, recompute: Callable[[], torch.Tensor]):
    """Inside the block, autograd saves `t` as `recompute` (a function of no arguments that returns a tensor equal
    to t, from tensors that stay alive anyway). A no-op for None, without grad, or while torch.compile traces."""
    if t is None or not (torch.is_grad_enabled() and t.requires_grad) or torch.compiler.is_compiling():
        yield
        return
    recipe = _Recipe(recompute, t.device.type)
    outer_pack, outer_unpack = _outer_hooks()
    target = weakref.ref(t)  # autograd keeps the pack hook with what it saved: a strong reference would keep t

    def pack(x):
        if x is target():
            recipe.uses += 1
            return recipe
        return outer_pack(x)

    def unpack(x):
        return x.unpack() if x is recipe else outer_unpack(x)

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield
