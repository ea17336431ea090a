"""Token-mixer registry: every mixer is one module in this package that registers itself by name.

    mixer = build_mixer(name, dim, causal=..., layer_idx=i, depth=n, **options)
    y, aux = mixer(x (B, L, D), padding_mask (B, L) bool True at padding | None, grid (H, W) | None)
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Callable

import torch.nn as nn

_REGISTRY: dict[str, type[nn.Module]] = {}


def register_mixer(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a mixer buildable as `build_mixer(name, ...)`."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"mixer {name!r} registered twice ({_REGISTRY[name].__module__}, {cls.__module__})")
        _REGISTRY[name] = cls
        cls.mixer_name = name
        return cls

    return wrap


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def list_mixers() -> list[str]:
    """Names of every registered mixer, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def mixer_class(name: str) -> type[nn.Module]:
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown mixer {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def mixer_options(name: str) -> dict[str, object]:
    """The options a mixer accepts beyond the contract arguments, with their defaults."""
    params = inspect.signature(mixer_class(name).__init__).parameters
    contract = {"self", "dim", "causal", "layer_idx", "depth"}
    return {k: p.default for k, p in params.items() if k not in contract and p.kind == p.KEYWORD_ONLY}


def build_mixer(name: str, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                **options) -> nn.Module:
    """Build a registered mixer; unknown options are rejected with the list of accepted ones."""
    cls = mixer_class(name)
    accepted = mixer_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"mixer {name!r} got unknown option(s) {unknown}; accepted: {sorted(accepted)}")
    return cls(dim, causal=causal, layer_idx=layer_idx, depth=depth, **options)
