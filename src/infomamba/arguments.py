"""argparse types shared by the plain-argparse commands (`bench`, `summary`, `diagnose`): a bad value is their
usage line and one message naming it, not a traceback from deep in the model."""
from __future__ import annotations

import argparse


def whole_number(text: str) -> int:
    """`text` as an int, or argparse's error naming it."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive(text: str) -> int:
    """A whole number >= 1 (a width, depth, length or count of 0 had been a traceback from the encoder)."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give at least 1")
    return value


def non_negative(text: str) -> int:
    """A whole number >= 0 (a count that may be none, as bench's --warmup; a negative one had passed as 0)."""
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: give 0 or more")
    return value
