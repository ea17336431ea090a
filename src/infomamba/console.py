"""One line to stdout (or another stream) in one write, so that the lines of DDP ranks sharing a pipe never
interleave, and not in the middle of a progress bar; a reader of the stream that died drops the line, not the run.
The project's warnings read as one line each (`one_line_warnings`)."""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import TextIO

PACKAGE = Path(__file__).resolve().parent
PYTHON_FORMAT = warnings.formatwarning  # Python's own: file:line: Category: message, then the source line


def say(line: str, file: TextIO | None = None) -> None:
    """Write `line` and its newline to `file` (default stdout; diagnostics pass sys.stderr) with a single write and
    flush (atomic on a pipe up to 4 KiB), with any tqdm bar (Lightning's progress bars) lifted off the terminal
    meanwhile and drawn again after it: else the line starts where a bar left the cursor, on the bar's own line.

    A stream that is closed, or whose reader died (`infomamba fit ... | tee log` with tee killed: a broken pipe),
    drops the line instead of raising: a training run must not end because its log reader did."""
    stream = sys.stdout if file is None else file
    if stream is None or stream.closed:
        return
    with _bars_lifted(stream):
        try:
            stream.write(line + "\n")
            stream.flush()
        except BrokenPipeError:
            _to_devnull(stream)


def _to_devnull(stream: TextIO) -> None:
    """Point the file descriptor of `stream`, whose reader is gone, at /dev/null: the bytes left in its buffer and
    every later write to it (a line, a print elsewhere in the run, a progress bar) then go nowhere instead of
    raising the broken pipe again. A stream without a descriptor (a StringIO) is left as it is."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class PipeSafe:
    """`stream` whose reader may die: a write or flush that meets a broken pipe points the descriptor at /dev/null
    (`_to_devnull`) and is dropped, so whatever writes there (Lightning's progress bars, print) goes on. Everything
    else is the stream's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _to_devnull(self._stream)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _to_devnull(self._stream)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def guard_pipes() -> None:
    """Make stdout and stderr `PipeSafe` for the rest of the process: `infomamba fit ... | tee log` goes on training
    (and checkpointing) when tee dies, instead of ending at the next progress-bar update."""
    sys.stdout, sys.stderr = (s if isinstance(s, PipeSafe) else PipeSafe(s) for s in (sys.stdout, sys.stderr))


def _bars_lifted(stream: TextIO):
    """The tqdm bars drawn where a line to `stream` shows (on it, or on the terminal that stdout and stderr share)
    cleared for the line, and drawn again after it."""
    tqdm = sys.modules.get("tqdm.std")  # a bar exists only if tqdm was imported: never import it here
    if tqdm is None or not getattr(tqdm.tqdm, "_instances", None):
        return contextlib.nullcontext()
    return tqdm.tqdm.external_write_mode(file=stream)


def format_warning(message, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
    """A warning raised from infomamba's modules as one line, `[infomamba] warning: <message>` (a category other than
    UserWarning is named in place of "warning"); any other warning as Python formats it."""
    if not Path(filename).resolve().is_relative_to(PACKAGE):
        return PYTHON_FORMAT(message, category, filename, lineno, line)
    kind = "warning" if category is UserWarning else category.__name__
    return f"[infomamba] {kind}: {message}\n"


def one_line_warnings() -> None:
    """Format warnings by `format_warning` for the rest of the process: a message for the user (`rank_zero_warn` in
    a data module, a callback) had been two lines, the path and line of the call, then the call's source line. Where
    a warning goes, and which are shown, stay as they were."""
    warnings.formatwarning = format_warning
