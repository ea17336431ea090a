"""Records the shape of every tensor any op produces (forward and backward), for the L x L audit."""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class ShapeAudit(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.records: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.records.append((str(func), tuple(t.shape)))
        return out

    def quadratic(self, L: int) -> list[tuple[str, tuple[int, ...]]]:
        """Ops whose output holds two or more axes of size L."""
        return [(f, s) for f, s in self.records if sum(1 for n in s if n == L) >= 2]
