"""Where infomamba caches what it derives from data (tokenizers, vocabularies, data cards): never inside
the data. ``$INFOMAMBA_CACHE`` if set, else ``$XDG_CACHE_HOME/infomamba``, else ``~/.cache/infomamba``."""
from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    if os.environ.get("INFOMAMBA_CACHE"):
        return Path(os.environ["INFOMAMBA_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "infomamba"
