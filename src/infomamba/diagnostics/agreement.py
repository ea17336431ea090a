"""Agreement of two models on the same test samples (paper §5.5: "the joint correctness between ViT and
Mamba drops significantly ... a sharp decrease in agreement").

For predictions a and b of two models and the labels y, over the same n samples:

    both_right = #{a = y and b = y} / n      both_wrong = #{a != y and b != y} / n
    disagree   = #{exactly one of a, b is right} / n = a_only_right + b_only_right

(the three sum to 1), plus `same_prediction` = #{a = b} / n, which also counts two identical wrong
answers. The paper does not define "agreement" further; these are the fractions it names. A prediction
is right when it equals its label (a class id, or a whole transcript for speech).
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence


def agreement(a: Sequence[Hashable], b: Sequence[Hashable], labels: Sequence[Hashable]) -> dict:
    """The fractions of the module docstring (and the count n, and each model's accuracy)."""
    if not len(a) == len(b) == len(labels):
        raise ValueError(f"agreement needs one prediction per label: {len(a)} and {len(b)} predictions, "
                         f"{len(labels)} labels")
    n = len(labels)
    if n == 0:
        raise ValueError("agreement of zero samples")
    right_a = [p == y for p, y in zip(a, labels)]
    right_b = [p == y for p, y in zip(b, labels)]
    count = {
        "both_right": sum(ra and rb for ra, rb in zip(right_a, right_b)),
        "both_wrong": sum(not ra and not rb for ra, rb in zip(right_a, right_b)),
        "a_only_right": sum(ra and not rb for ra, rb in zip(right_a, right_b)),
        "b_only_right": sum(rb and not ra for ra, rb in zip(right_a, right_b)),
        "same_prediction": sum(p == q for p, q in zip(a, b)),
    }
    out = {"n": n, **{k: v / n for k, v in count.items()}}
    out["disagree"] = out["a_only_right"] + out["b_only_right"]
    out["accuracy_a"] = sum(right_a) / n
    out["accuracy_b"] = sum(right_b) / n
    return out
