"""Sizes and temperatures checked when a layer is built: a 0 or negative one had built a degenerate model (an empty
concept filter, a state of width 0), NaN outputs (a temperature of 0), or silently become a default (heads=0)."""
from __future__ import annotations


def require_positive(owner: str, **values) -> None:
    """ValueError naming every option of `values` (name -> value; None: not set) that is not > 0."""
    bad = [f"{name} must be > 0, got {value!r}" for name, value in values.items() if value is not None and
           not value > 0]
    if bad:
        raise ValueError(f"{owner}: {'; '.join(bad)}")
