"""torchvision: needed by the image task only, yet able to break every task.

torchmetrics, which Lightning imports, imports torchvision whenever its package metadata is installed.
A torchvision built for another torch (pip pairs them loosely) then fails inside that import, e.g.
`RuntimeError: operator torchvision::nms does not exist`, and `import lightning` fails for text and
speech too. `hide_broken_torchvision()` runs before any task imports Lightning: it imports torchvision
once and, if that fails, makes it look not installed (its import and its metadata both report it
missing), so torchmetrics skips it; the failure is kept for the image task's message.

Availability probes must see it missing too, not fail: transformers, which torchmetrics imports where it is
installed, asks `importlib.util.find_spec("torchvision")` when imported. `None` in sys.modules is what makes
that probe return None and `import torchvision` raise ModuleNotFoundError; a finder on sys.meta_path could only
raise from the probe, since one returning None hands the search on to the finder that finds torchvision.
"""
from __future__ import annotations

import importlib.abc
import importlib.metadata
import sys

IMAGE_EXTRA = "pip install 'infomamba[image]'"
_probed = False
_failure: str | None = None  # why importing torchvision failed, in one line


class _Hidden(importlib.abc.MetaPathFinder):
    """First on sys.meta_path: `importlib.metadata.version("torchvision")` fails as for a package that is not
    installed (PackageNotFoundError); imports are left to sys.modules."""

    def find_spec(self, fullname, path=None, target=None):
        return None

    def find_distributions(self, context=importlib.metadata.DistributionFinder.Context()):
        if (context.name or "").lower() == "torchvision":
            raise importlib.metadata.PackageNotFoundError("torchvision")
        return iter(())


def hide_broken_torchvision() -> None:
    """Import torchvision once; if that raises, hide it from everything imported afterwards."""
    global _probed, _failure
    if _probed:
        return
    _probed = True
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # a mismatched build raises RuntimeError, OSError or ImportError
        _failure = f"{type(err).__name__}: {err}".splitlines()[0]
        for name in [m for m in sys.modules if m.partition(".")[0] == "torchvision"]:
            del sys.modules[name]
        sys.modules["torchvision"] = None
        sys.meta_path.insert(0, _Hidden())


def require_torchvision() -> None:
    """Raise a one-line ImportError naming the fix when torchvision cannot be used."""
    hide_broken_torchvision()
    if _failure is not None:
        raise ImportError(f"the image task needs a torchvision that works with this torch: {IMAGE_EXTRA} "
                          f"({_failure})")
