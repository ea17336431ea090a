"""Options checked when a layer or a model is built: a 0 or negative size had built a degenerate model (an empty
concept filter, a state of width 0), NaN outputs (a temperature of 0), or silently become a default (heads=0); a
value out of its range or of the wrong type had failed later, deep inside torch (a negative learning rate in the
optimizer, a float size in torch.randn's overload listing), without naming the option."""
from __future__ import annotations

import math
import types
import typing

SCALARS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def require_positive(owner: str, **values) -> None:
    """ValueError naming every option of `values` (name -> value; None: not set) that is not > 0."""
    bad = [f"{name} must be > 0, got {value!r}" for name, value in values.items() if value is not None and
           not value > 0]
    if bad:
        raise ValueError(f"{owner}: {'; '.join(bad)}")


def require_within(owner: str, low: float, high: float = math.inf, *, include_high: bool = False, **values) -> None:
    """ValueError naming every option of `values` (None: not set) outside [low, high), or [low, high] with
    `include_high` (no upper bound at the default high): NaN is outside every range."""
    def inside(value) -> bool:
        return low <= value <= high if include_high else low <= value < high

    interval = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}{']' if include_high else ')'}"
    bad = [f"{name} must be {interval}, got {value!r}" for name, value in values.items() if value is not None and
           not inside(value)]
    if bad:
        raise ValueError(f"{owner}: {'; '.join(bad)}")


def require_types(owner: str, hints: dict[str, object], **values) -> None:
    """ValueError naming every option of `values` whose value does not fit its type hint in `hints` (name -> hint):
    int (not a bool), float (an int too), bool, str, each optionally `| None`. Options of other hints (a list, a
    union of two kinds) are left to their owner."""
    bad = [problem for name, value in values.items() if (problem := type_problem(name, value, hints.get(name)))]
    if bad:
        raise ValueError(f"{owner}: {'; '.join(bad)}")


def type_problem(name: str, value, hint) -> str | None:
    """Why `value` does not fit `hint` (see `require_types`), or None when it does or the hint is not judged."""
    kinds = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    scalars = [kind for kind in kinds if kind in SCALARS]
    if not scalars or len(scalars) + (type(None) in kinds) != len(kinds):
        return None
    if (value is None and type(None) in kinds) or any(fits(value, kind) for kind in scalars):
        return None
    expected = " or ".join([SCALARS[kind] for kind in scalars] + (["null"] if type(None) in kinds else []))
    return f"{name} must be {expected}, got {value!r} ({type(value).__name__})"


def fits(value, kind: type) -> bool:
    """Whether `value` is of the scalar `kind`, as YAML gives one: a bool is no number, an int is a float."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
