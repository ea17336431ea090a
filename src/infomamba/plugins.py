"""Plugins: the user's modules that register mixers (`@register_mixer`) or tasks (`register_task`), imported
before the CLI looks a mixer or task up by name, so that `infomamba fit --model.encoder.mixer=mine` finds them.

`load_plugins()` imports, in this order:

1. the entry points of group `infomamba.plugins` of the installed distributions, in the order Python finds
   them (sys.path order). An entry point's value is a module, or `module:attr` (the attribute is looked up,
   not called): importing the module is what registers its mixers and tasks.
2. the modules named in the environment variable `INFOMAMBA_PLUGINS`, comma-separated, in the order given.
   The working folder is appended to the end of sys.path first (if it is not on it): the `infomamba`
   console script's sys.path has the script's folder, not the working folder, and a plugin is usually a file
   of the project the command runs in. Appended, not prepended: no local file shadows an installed module.

Each plugin is imported once per process (a module named twice is loaded once). A plugin that fails to import
raises `PluginError`, whose message is one line naming the plugin, where it was declared and the error; the CLI
ends the command with it.

Example: a file `mymixers.py` in the project folder

    import torch.nn as nn
    from infomamba.mixers import Mixer, MixerAux, register_mixer

    @register_mixer("mlpmix")
    class MLPMix(Mixer):
        causal_capable = linear_time = True  # a per-token map: causal, linear in L
        def __init__(self, dim, *, causal=False, layer_idx=0, depth=1):
            super().__init__(); self.causal, self.proj = causal, nn.Linear(dim, dim)
        def forward(self, x, padding_mask=None, grid=None):
            return self.proj(x), MixerAux()

is declared for one command with `INFOMAMBA_PLUGINS=mymixers infomamba fit --model.encoder.mixer=mlpmix ...`,
or, in an installed package `mypkg`, for every command once in its pyproject.toml:

    [project.entry-points."infomamba.plugins"]
    mymixers = "mypkg.mymixers"
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback
from importlib.metadata import entry_points

GROUP = "infomamba.plugins"
ENV = "INFOMAMBA_PLUGINS"

_IMPORT_MACHINERY = os.path.dirname(importlib.__file__)  # its frames are left out of an error's location
_LOADED: dict[str, object] = {}  # plugin target ("module" or "module:attr") -> what loading it returned


class PluginError(ImportError):
    """A plugin failed to import; the message is one line: the plugin, where it was declared, the error."""


def load_plugins() -> list[str]:
    """Import the entry-point plugins, then those of `INFOMAMBA_PLUGINS` (see the module docstring); returns the
    targets declared now ("module" or "module:attr"), in load order and each once, for the caller to log."""
    names: list[str] = []
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        origin = f"entry point {ep.name!r} of distribution {dist.name if dist else '?'}"
        _load_once(ep.value, ep.load, origin, names)
    modules = _env_plugins()
    if modules:
        _append_working_folder()
    for module in modules:
        _load_once(module, lambda module=module: importlib.import_module(module), ENV, names)
    return names


def _env_plugins() -> list[str]:
    """The module names of `INFOMAMBA_PLUGINS` (blanks between commas ignored)."""
    return [name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip()]


def _append_working_folder() -> None:
    """Make modules of the working folder importable, as `python -m` would, without letting them shadow others."""
    here = os.getcwd()
    if here not in (os.path.abspath(entry or os.curdir) for entry in sys.path):
        sys.path.append(here)


def _load_once(target: str, load, origin: str, names: list[str]) -> None:
    """Call `load` for `target` unless done before in this process; any error becomes a one-line `PluginError`."""
    if target not in _LOADED:
        try:
            _LOADED[target] = load()
        except Exception as err:
            raise PluginError(f"plugin {target} ({origin}) failed to load: {_describe(err)}", name=target) from err
    if target not in names:
        names.append(target)


def _describe(err: Exception) -> str:
    """`Type: first line of the message (at file:line)`, the line being the innermost module-level statement that
    was running (the plugin's line that failed, or called what failed): the CLI shows this line, not a traceback."""
    message = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {message[0]}" if message else type(err).__name__
    bodies = [f for f in traceback.extract_tb(err.__traceback__)
              if f.name == "<module>" and not f.filename.startswith(("<frozen", _IMPORT_MACHINERY))]
    return f"{text} (at {bodies[-1].filename}:{bodies[-1].lineno})" if bodies else text
