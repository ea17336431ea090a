"""The user's and the run's files: how a path the user gave is named when it is not there (with the working folder
a relative one was read from: a config's `data.root: ../shared/data/...` depends on where the command runs), which
files of a data folder are hidden, and how a small text file is written whole (`write_atomic`)."""
from __future__ import annotations

import os
from pathlib import Path


def missing(label: str, path: str | Path, what: str = "does not exist") -> str:
    """'<label> <path> <what>', plus the working folder when `path` is relative."""
    where = "" if Path(path).is_absolute() else f" (relative to the working folder {Path.cwd()})"
    return f"{label} {path} {what}{where}"


def is_hidden(path: str | Path, root: str | Path) -> bool:
    """Whether `path` or a folder between `root` and it has a name starting with "." (macOS writes a `._x.png` of
    metadata beside every `x.png` it copies to other file systems)."""
    return any(part.startswith(".") for part in Path(os.path.relpath(path, root)).parts)


OS_METADATA = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini"})  # what Windows writes into folders it shows


def is_os_metadata(path: str | Path) -> bool:
    """Whether `path` is a file the operating system writes beside a user's files (Windows' Thumbs.db thumbnail
    cache, desktop.ini), which a reader of every file in a folder would otherwise take for data."""
    return Path(path).name.lower() in OS_METADATA


def write_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to a temporary file beside `path`, then rename it over `path`: never a half-written
    file, nor a temporary one left by a failed write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
