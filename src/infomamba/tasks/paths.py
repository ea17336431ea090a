"""How a path the user gave is named when it is not there: with the working folder a relative one was read from
(a config's `data.root: ../shared/data/...` depends on where the command runs)."""
from __future__ import annotations

from pathlib import Path


def missing(label: str, path: str | Path, what: str = "does not exist") -> str:
    """'<label> <path> <what>', plus the working folder when `path` is relative."""
    where = "" if Path(path).is_absolute() else f" (relative to the working folder {Path.cwd()})"
    return f"{label} {path} {what}{where}"
