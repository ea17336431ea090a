"""The scan kernels compile for the GPU (sm_90) on a machine without one.

The other scan tests run the kernels in Triton's interpreter on CPU, which executes the Python
source and never compiles it: a kernel that only the compiler rejects (a constexpr branch with
mismatched types, a loop-carried value changing type) would pass them and fail on every GPU. Here
each launch variant the launchers can pick (time-chunked or not, the first-pass-only modes, with and
without padding and D; every candidate layout chunked) is compiled ahead of time to an sm_90 cubin
with Triton's own ptxas, in a subprocess without TRITON_INTERPRET (under it, @triton.jit yields
interpreter objects that cannot be compiled).
"""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")
from infomamba.ops.selective_scan import triton as ss  # noqa: E402

MODES = [(False, False), (True, True), (False, True)]  # (first-pass-only mode, chunked)
FP32_POINTERS = {"At_ptr", "D_ptr", "dAp_ptr", "dB_ptr", "dC_ptr", "dDp_ptr", "ckpt_ptr", "xf_ptr", "S_ptr",
                 "W_ptr", "Dl_ptr"}
INTS = {"L", "LC", "N_TCHUNKS", "DIM", "NSTATE", "N_CHUNKS"}


def compile_every_variant() -> dict:
    """{variant: error or ''} for every (kernel, mode, padding) variant, compiled for sm_90."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from infomamba.ops.selective_scan import triton as ss

    def arg_type(name):
        if name.endswith("_ptr"):
            return "*fp32" if name in FP32_POINTERS else "*i1" if name == "pad_ptr" else "*bf16"
        return "i32" if name in INTS else "constexpr"

    def variants(kind):
        """Every mode of the first candidate, padded and not; every other candidate chunked and padded."""
        first, *others = ss.candidate_configs(kind, 16)
        yield from ((first, only, chunked, padded) for only, chunked in MODES for padded in (False, True))
        yield from ((cfg, False, True, True) for cfg in others)

    results = {}
    for kind, kernel, mode_flag in (("fwd", ss._scan_fwd_kernel, "STATES_ONLY"),
                                    ("bwd", ss._scan_bwd_kernel, "ADJOINT_ONLY")):
        for cfg, only, chunked, padded in variants(kind):
            constants = dict(HAS_D=not padded, REVERSE=padded, DT_SOFTPLUS=True, HAS_PAD=padded, CHUNKED=chunked,
                             BLOCK_T=cfg.block_t, D_IN=cfg.d_in, D_LANES=cfg.d_lanes, BLOCK_N=16,
                             **{mode_flag: only}, **({"CHUNK": ss.CHUNK} if kind == "bwd" else {}))
            names = kernel.arg_names
            source = ASTSource(kernel, {n: arg_type(n) for n in names},
                               constexprs={(names.index(n),): v for n, v in constants.items()})
            variant = f"{kind} {tuple(cfg)} {mode_flag}={only} CHUNKED={chunked} HAS_PAD={padded}"
            try:
                compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                                          options={"num_warps": cfg.num_warps})
                results[variant] = "" if compiled.asm.get("cubin") else "no cubin"
            except Exception as e:  # reported per variant by the test
                results[variant] = f"{type(e).__name__}: {e}"[:400]
    return results


def test_every_scan_kernel_variant_compiles_for_sm90(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    code = ("import importlib.util, json, sys; spec = importlib.util.spec_from_file_location('t', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "print(json.dumps(m.compile_every_variant()))")
    run = subprocess.run([sys.executable, "-c", code, __file__], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    expected = sum(2 * len(MODES) + len(ss.candidate_configs(kind, 16)) - 1 for kind in ("fwd", "bwd"))
    assert len(results) == expected
    failed = {variant: error for variant, error in results.items() if error}
    assert not failed, failed
