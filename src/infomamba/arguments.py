"""argparse types shared by the plain-argparse commands (`bench`, `summary`, `diagnose`): a bad value is their
usage line and one message naming it, not a traceback from deep in the model."""
from __future__ import annotations

import argparse


def positive(text: str) -> int:
    """A whole number >= 1 (a width, depth, length or count of 0 had been a traceback from the encoder)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give at least 1")
    return value
