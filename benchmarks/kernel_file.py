"""An earlier copy of an op's Triton file, loaded beside the current one for side-by-side timing (`bench_gate.py`,
`bench_injection.py`)."""
from __future__ import annotations

import types


def load_kernel_file(path: str, package: str) -> types.ModuleType:
    """The kernels and launch functions of an earlier `<package>/triton.py` at `path`: its text up to its first custom
    op (the current file's custom ops are registered already), run as a module of `package`, so that its relative
    imports resolve."""
    text = open(path, encoding="utf-8").read()
    module = types.ModuleType(f"{package}.baseline_file")
    module.__package__ = package
    module.__file__ = path  # triton.jit reads each kernel's source from its file
    exec(compile(text[:text.index("@torch.library.custom_op")], path, "exec"), module.__dict__)
    return module
