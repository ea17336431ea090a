"""One line to stdout in one write, so that the lines of DDP ranks sharing a pipe never interleave."""
from __future__ import annotations

import sys


def say(line: str) -> None:
    """Write `line` and its newline with a single write and flush (atomic on a pipe up to 4 KiB)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
