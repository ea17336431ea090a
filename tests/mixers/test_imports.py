"""Layering (DESIGN.md): a mixer imports `infomamba.layers`, `infomamba.ops` and the registry only,
never another mixer; the library side (package, encoder, mixers) never pulls in a task or torchvision."""
import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import infomamba.mixers as registry

MIXER_DIR = Path(registry.__file__).parent
MIXER_MODULES = sorted(info.name for info in pkgutil.iter_modules(registry.__path__))
ALLOWED = ("infomamba.layers", "infomamba.ops")


def internal_imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, imported name or None) for every import of an `infomamba` module in a mixer file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "infomamba"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = registry.__name__.split(".")  # a mixer file's package
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            if module.split(".")[0] == "infomamba":
                found += [(module, alias.name) for alias in node.names]
    return found


def test_the_parser_sees_relative_and_absolute_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import math\nfrom ..layers.grid import GridConv\nfrom . import register_mixer, vmamba\n"
                      "from .attention import AttentionMixer\nimport infomamba.tasks\n")
    assert internal_imports(source) == [
        ("infomamba.layers.grid", "GridConv"), ("infomamba.mixers", "register_mixer"), ("infomamba.mixers", "vmamba"),
        ("infomamba.mixers.attention", "AttentionMixer"), ("infomamba.tasks", None)]


@pytest.mark.parametrize("module", MIXER_MODULES)
def test_a_mixer_imports_layers_ops_and_the_registry_only(module):
    bad = []
    for imported, name in internal_imports(MIXER_DIR / f"{module}.py"):
        if imported == registry.__name__:
            if name in MIXER_MODULES:
                bad.append(f"{imported}.{name}")
        elif not imported.startswith(tuple(p + "." for p in ALLOWED)) and imported not in ALLOWED:
            bad.append(imported)
    assert bad == [], f"infomamba.mixers.{module} imports {bad}"


LIBRARY = ["infomamba", "infomamba.encoder", *(f"infomamba.mixers.{m}" for m in MIXER_MODULES)]
# One interpreter that has imported torch (which imports no infomamba module and no torchvision) forks a child per
# module; each child imports its module alone and reports what is loaded.
PROBE = """
import importlib, json, os, sys, torch
for name in sys.argv[1:]:
    read, write = os.pipe()
    if os.fork() == 0:
        importlib.import_module(name)
        os.write(write, json.dumps(sorted(sys.modules)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        print(name, pipe.read())
    assert os.wait()[1] == 0, name
"""


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str]]:
    """The modules loaded by importing each library module alone, checked in clean interpreters: the test session
    itself has imported whatever other tests need."""
    probe = subprocess.run([sys.executable, "-c", PROBE, *LIBRARY], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr[-3000:]  # an import that raises: its traceback
    return {name: json.loads(modules) for name, modules in (line.split(" ", 1) for line in probe.stdout.splitlines())}


@pytest.mark.parametrize("module", LIBRARY)
def test_library_imports_no_task_and_no_torchvision(module, loaded):
    assert [m for m in loaded[module] if m == "infomamba.tasks" or m.startswith("infomamba.tasks.")] == []
    assert [m for m in loaded[module] if m.split(".")[0] == "torchvision"] == []
    other_mixers = [m for m in loaded[module] if m.startswith("infomamba.mixers.") and m != module]
    assert other_mixers == [], f"{module} loads {other_mixers}"
