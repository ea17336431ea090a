"""Recording what chosen layers of a model see during a forward, through module hooks."""
from __future__ import annotations

import re

import torch.nn as nn


def layer_index(name: str) -> int | None:
    """The encoder block a module belongs to, read from its name (`...blocks.3.mixer` -> 3)."""
    found = re.search(r"blocks\.(\d+)", name)
    return int(found.group(1)) if found else None


class HookRecorder:
    """Context manager: while active, `register(name, layer)` hooks every module of type `kind` in `model`
    (`self.layers`, by name); leaving removes the hooks."""

    kind: type[nn.Module]

    def __init__(self, model: nn.Module):
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, self.kind)}
        self._handles: list = []

    def register(self, name: str, layer: nn.Module):
        """Register this recorder's hook on `layer`; returns the hook's handle."""
        raise NotImplementedError

    def __enter__(self):
        self._handles = [self.register(name, layer) for name, layer in self.layers.items()]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
