"""argparse types and argument readers shared by the plain-argparse commands (`bench`, `summary`, `diagnose`): a bad
value is their usage line and one message naming it, not a traceback from deep in the model."""
from __future__ import annotations

import argparse

import yaml


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


def parse_mixer_entry(entry: str) -> tuple[str, str, dict]:
    """A --mixers entry, `NAME` or `NAME{yaml}` (e.g. `infomamba{ssm_heads: 12}`), as (row label: the entry as
    given, mixer name, the options in the braces, {} without). ValueError with a one-line reason otherwise."""
    name, brace, rest = entry.partition("{")
    if not brace:
        return entry, entry, {}
    if not rest.endswith("}"):
        raise ValueError(f"--mixers entry {entry!r}: options go in one pair of braces at its end, NAME{{key: value}}")
    try:
        options = yaml.safe_load("{" + rest)
    except yaml.YAMLError as err:
        reason = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"--mixers entry {entry!r}: its options are not a YAML mapping ({reason})") from None
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise ValueError(f"--mixers entry {entry!r}: its options must be a YAML mapping of option names")
    return entry, name.strip(), options
