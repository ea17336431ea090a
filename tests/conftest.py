"""Shared test setup. Without CUDA the Triton kernels run in Triton's interpreter: TRITON_INTERPRET=1
is set here, before anything imports triton (`import infomamba` does), and the interpreter is patched
once for speed and for NumPy 2.4."""
import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch



def _patch_interpreter() -> None:
    """Three test-only fixes to Triton 3.6's interpreter (they do not touch the kernels' semantics).

    1. It turns scalars into Python ints with int(1-element array), an error since NumPy 2.4.
    2. Its generic associative_scan calls the combine function once per element from Python; the
       combine here is elementwise, so calling it once per step on whole slices gives the same result
       in a fraction of the time.
    3. Every call of a @triton.jit function inside a kernel (tl.sum, tl.zeros, the kernels' helpers)
       re-patches triton.language (about 1 ms each); once per launch and module is enough.
    """
    import numpy as np
    from triton.runtime import interpreter

    patch_tensor = interpreter._patch_lang_tensor

    def patch_tensor_index(tensor, scope):
        patch_tensor(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.item()))

    def scan_by_slices(self, inputs):
        data = [np.moveaxis(x.handle.data, self.axis, 0) for x in inputs]
        outs = [np.empty_like(d) for d in data]
        acc = [d[0] for d in data]
        for out, a in zip(outs, acc):
            out[0] = a
        for step in range(1, data[0].shape[0]):
            ret = self.combine_fn.fn(*(self.to_tensor(a, x.dtype) for a, x in zip(acc, inputs)),
                                     *(self.to_tensor(d[step], x.dtype) for d, x in zip(data, inputs)))
            acc = [r.handle.data for r in (ret if isinstance(ret, tuple) else (ret,))]
            for out, a in zip(outs, acc):
                out[step] = a
        return [self.to_tensor(np.moveaxis(o, 0, self.axis), x.dtype) for o, x in zip(outs, inputs)]

    import triton.language as tl

    launch_kernel = interpreter.GridExecutor.__call__
    call_jit_function = interpreter.InterpretedFunction.__call__
    patched = set()  # triton.language modules already patched during the current launch
    langs_of = {}

    def launch_and_track(self, *args, **kwargs):
        patched.clear()
        patched.update(_langs(self.fn))
        try:
            return launch_kernel(self, *args, **kwargs)
        finally:
            patched.clear()

    def _langs(fn):
        if fn not in langs_of:
            langs_of[fn] = frozenset(id(m) for m in fn.__globals__.values() if m is tl or m is tl.core)
        return langs_of[fn]

    def call_helper(self, *args, **kwargs):
        langs = _langs(self.fn)
        if not patched or not langs <= patched:
            patched.update(langs)
            return call_jit_function(self, *args, **kwargs)
        try:
            return self.rewrite()(*args, **kwargs)
        except Exception as e:
            raise interpreter.InterpreterError(repr(e)) from e

    interpreter._patch_lang_tensor = patch_tensor_index
    interpreter.ScanOps.generic_scan = scan_by_slices
    interpreter.GridExecutor.__call__ = launch_and_track
    interpreter.InterpretedFunction.__call__ = call_helper


def _share_cores() -> None:
    """Under pytest-xdist, torch's intra-op threads of each worker get an equal share of the cores: every worker
    running as many threads as there are cores oversubscribes them (2 workers on 2 cores: the ASR overfit test took
    133 s in the suite against 20 s alone)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


_share_cores()
if not torch.cuda.is_available() and importlib.util.find_spec("triton") is not None:
    os.environ.setdefault("TRITON_INTERPRET", "1")
    if os.environ["TRITON_INTERPRET"] == "1":
        _patch_interpreter()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# Modules whose tests start fits in subprocesses (tens of seconds each, mostly waiting on their children's start):
# collected first, so that pytest-xdist hands them out while the quick tests can still fill the other worker, and no
# worker is left running one of them alone at the end.
SUBPROCESS_FITS = ("test_distributed.py", "test_resume.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in SUBPROCESS_FITS)
