"""One line to stdout in one write, so that the lines of DDP ranks sharing a pipe never interleave, and not in the
middle of a progress bar."""
from __future__ import annotations

import contextlib
import sys


def say(line: str) -> None:
    """Write `line` and its newline with a single write and flush (atomic on a pipe up to 4 KiB), with any tqdm bar
    (Lightning's progress bars) lifted off the terminal meanwhile and drawn again after it: else the line starts
    where a bar left the cursor, on the bar's own line."""
    with _bars_lifted():
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _bars_lifted():
    tqdm = sys.modules.get("tqdm.std")  # a bar exists only if tqdm was imported: never import it here
    if tqdm is None or not getattr(tqdm.tqdm, "_instances", None):
        return contextlib.nullcontext()
    return tqdm.tqdm.external_write_mode()
