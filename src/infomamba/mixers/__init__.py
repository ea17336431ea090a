"""Token-mixer registry and the `Mixer` base: every mixer is one module in this package that
subclasses `Mixer` and registers itself by name.

    mixer = build_mixer(name, dim, causal=..., layer_idx=i, depth=n, **options)
    y, aux = mixer(x (B, L, D), padding_mask (B, L) bool True at padding | None, grid (H, W) | None)
    # y: (B, L, D), aux: MixerAux
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import pkgutil
import threading
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
import torch.nn as nn

from ..layers.checks import require_types


@dataclass
class MixerAux:
    """What a mixer reports beside its output, for the losses (`infomamba.losses`) and logging.

    Every field means the same in every mixer; a mixer without the quantity leaves it None. The losses train
    every stream reported here, so only InfoMamba layers (every Table 5 variant) report h_pool and r_pool: a
    baseline (mamba, vmamba, ...) has a recurrent readout too, but is trained as published, on the task loss
    alone (DESIGN.md: Eq. 12-13 act on every InfoMamba layer's streams).

    Args:
        h_pool: (B, E) the filter stream h_t (InfoMamba Eq. 10) averaged over each sample's real
            tokens: h_bar of Eq. 12-13.
        r_pool: (B, E) InfoMamba's recurrent readout r_t = C_t s_t (Eq. 11, with its D skip) averaged over each
            sample's real tokens: r_bar of Eq. 12-13.
        mi_hash: scalar, the MI-hash loss (Eq. 8) over the batch's real tokens.
        k_eff: scalar, concepts used by at least one real token of a sample, averaged over samples.
    """
    h_pool: torch.Tensor | None = None
    r_pool: torch.Tensor | None = None
    mi_hash: torch.Tensor | None = None
    k_eff: torch.Tensor | None = None


_predicting = threading.local()


@contextlib.contextmanager
def without_training_terms():
    """Predictions: inside, the mixers leave out what only a loss or a log reads (every `MixerAux` field stays None:
    InfoMamba's pooled streams, Eq. 8's term and k_eff) and compute the same output. The tasks' predictions and the
    bench's inference rows run inside; training, validation and testing report them (Eq. 14's parts and k_eff are
    logged there). Per thread: a prediction in one thread leaves another thread's training as it is; torch.compile
    guards on it (a compiled model compiles once more for predictions)."""
    before = getattr(_predicting, "on", False)
    _predicting.on = True
    try:
        yield
    finally:
        _predicting.on = before


def training_terms() -> bool:
    """Whether the mixers report `MixerAux`'s fields (False inside `without_training_terms`)."""
    return not getattr(_predicting, "on", False)


class Mixer(nn.Module):
    """Base of every token mixer. Subclasses declare, as class attributes:

    causal_capable: whether `causal=True` can be built; a mixer that cannot be causal refuses it at
        build time with a ValueError that says why.
    linear_time: no L x L tensor in any path (a mixer whose layers differ may refine it per instance,
        as MambaVision's attention layers do).
    max_len: the longest sequence an instance accepts, None for any (Linformer's E and F have max_len rows); a task
        refuses a fit whose data is longer before its first batch.

    Instances set `causal` (every path sees positions <= t only) and implement
    `forward(x, padding_mask=None, grid=None) -> (y, MixerAux)`.
    """

    mixer_name: ClassVar[str]
    causal_capable: ClassVar[bool]
    linear_time: bool
    causal: bool
    max_len: int | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        undeclared = [name for name in ("causal_capable", "linear_time") if name not in dir(cls)]
        if undeclared:
            raise TypeError(f"mixer {cls.__name__} must declare {undeclared} as class attributes")


_REGISTRY: dict[str, type[Mixer]] = {}


def register_mixer(name: str) -> Callable[[type[Mixer]], type[Mixer]]:
    """Class decorator: make a `Mixer` subclass buildable as `build_mixer(name, ...)`. A class of the same module
    and name replaces the one registered (a notebook cell or a reloaded module defines it again); another class under
    a taken name is refused."""

    def wrap(cls: type[Mixer]) -> type[Mixer]:
        if not issubclass(cls, Mixer):
            raise TypeError(f"mixer {name!r} ({cls.__module__}.{cls.__name__}) must subclass infomamba.mixers.Mixer")
        taken = _REGISTRY.get(name)
        if taken is not None and (taken.__module__, taken.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"mixer {name!r} registered twice ({taken.__module__}, {cls.__module__})")
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


def causal_mixers() -> list[str]:
    """Names of the registered mixers that can be built causal, sorted (for the refusals of those that cannot)."""
    return [name for name in list_mixers() if _REGISTRY[name].causal_capable]


def mixer_class(name: str) -> type[Mixer]:
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown mixer {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def mixer_options(name: str) -> dict[str, object]:
    """The options a mixer accepts beyond the contract arguments, with their defaults."""
    params = inspect.signature(mixer_class(name).__init__).parameters
    contract = {"self", "dim", "causal", "layer_idx", "depth"}
    return {k: p.default for k, p in params.items() if k not in contract and p.kind == p.KEYWORD_ONLY}


def sized_options(name: str, options: dict, tokens: int) -> dict:
    """`options` of mixer `name`, with `max_len` = `tokens` where the mixer takes one (rows of per-position
    parameters: Linformer's E and F, VMI-SA's alpha and beta) and `options` set none: a model whose sequences are
    all `tokens` long (an image grid) never reads the rows past them, which the default max_len would build and
    count in its size (Linformer's 1,024 rows on a 49-token grid: 0.75 M parameters at dim 192, depth 6)."""
    if "max_len" in options or "max_len" not in mixer_options(name):
        return dict(options)
    return {**options, "max_len": tokens}


def option_hints(name: str) -> dict[str, object]:
    """The type hints of a mixer's options (`mixer_options`), as types (its module's annotations are strings); left
    as strings, and so unchecked, where one names what a plugin's module imports for type checkers only."""
    try:
        params = inspect.signature(mixer_class(name).__init__, eval_str=True).parameters
    except NameError:
        params = inspect.signature(mixer_class(name).__init__).parameters
    accepted = mixer_options(name)
    return {k: p.annotation for k, p in params.items() if k in accepted}


def contract_output(result, x: torch.Tensor, mixer: nn.Module) -> tuple[torch.Tensor, MixerAux]:
    """`result` of `mixer(x, ...)` as (y, aux), checked against the contract (DESIGN.md): a pair of y with x's shape
    and a `MixerAux`. A mixer that breaks it is named in one line here, instead of being unpacked along the batch
    (a bare tensor) or broadcast (a wrong length) into a silently wrong output."""
    name = type(mixer).__name__
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"mixer {name} must return (y, MixerAux), got {type(result).__name__}")
    y, aux = result
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise ValueError(f"mixer {name} returned y of shape {tuple(getattr(y, 'shape', ()))} for an input of shape "
                         f"{tuple(x.shape)}; y must have the input's shape")
    if not isinstance(aux, MixerAux):
        raise TypeError(f"mixer {name} must return a MixerAux beside y, got {type(aux).__name__}")
    return y, aux


def build_mixer(name: str, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                **options) -> Mixer:
    """Build a registered mixer; unknown options are rejected with the list of accepted ones, an option of the wrong
    type (a float or a bool for a size) naming it and its value, and `causal` with a mixer whose class is not
    `causal_capable` (the built-in ones refuse it themselves, saying why)."""
    cls = mixer_class(name)
    accepted = mixer_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"mixer {name!r} got unknown option(s) {unknown}; accepted: {sorted(accepted)}")
    require_types(f"mixer {name!r}", option_hints(name), **options)
    try:
        mixer = cls(dim, causal=causal, layer_idx=layer_idx, depth=depth, **options)  # its own refusal says why
    except ValueError as err:  # named for the mixer where a layer inside it refused (an SSM's heads, a size)
        if str(err).startswith((name, "mixer ")):
            raise
        raise ValueError(f"mixer {name!r}: {err}") from err
    if causal and not cls.causal_capable:
        raise ValueError(f"mixer {name!r} cannot be causal (its class declares causal_capable = False)")
    return mixer
