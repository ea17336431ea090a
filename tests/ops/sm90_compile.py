"""Compiling Triton kernels for the GPU (sm_90) on a machine without one, for the `*_compiles` tests.

Triton's interpreter (the other kernel tests on CPU) executes a kernel's Python source and never compiles
it: a kernel that only the compiler rejects (a constexpr branch with mismatched types, a loop-carried value
changing type) would pass them and fail on every GPU. These helpers compile launch variants ahead of time to
sm_90 cubins with Triton's own ptxas, in a subprocess without TRITON_INTERPRET (under it, @triton.jit yields
interpreter objects that cannot be compiled).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor


SCAN_ARGS = ({"At_ptr", "D_ptr", "dtb_ptr", "dAp_ptr", "dB_ptr", "dC_ptr", "dDp_ptr", "ckpt_ptr",
              "xf_ptr", "S_ptr", "W_ptr", "Dl_ptr"}, {"L", "LC", "N_TCHUNKS", "DIM", "NSTATE", "N_CHUNKS", "BC_BATCH",
                                                      "BC_ROW"})  # the scan kernels' fp32 pointers, i32 arguments
CONV_ARGS = ({"w_ptr", "b_ptr", "p_ptr", "part_ptr"}, {"L", "D", "stride_b", "stride_l"})  # the conv kernels' likewise


def arg_types(kernel, fp32_pointers: set, ints: set) -> dict:
    """Triton types of `kernel`'s arguments as the ops launch them: fp32 at `fp32_pointers`, the padding mask bool,
    the other tensors bf16, `ints` i32, the rest constexpr."""
    def arg_type(name):
        if name.endswith("_ptr"):
            return "*fp32" if name in fp32_pointers else "*i1" if name == "pad_ptr" else "*bf16"
        return "i32" if name in ints else "constexpr"

    return {name: arg_type(name) for name in kernel.arg_names}


def _compiled(kernel, arg_types: dict, constants: dict, num_warps: int, num_stages: int = 3,
              divisible: frozenset = frozenset()):
    """`kernel` compiled for sm_90 with these argument types ("*bf16", "i32", ..., "constexpr") and constexpr values;
    the arguments named in `divisible` are known multiples of 16 (pointers: 16-byte aligned), as Triton's launcher
    specialises a kernel for the arguments of a launch that are (`tt.divisibility`)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = kernel.arg_names
    source = ASTSource(kernel, {n: arg_types.get(n, "constexpr") for n in names},
                       constexprs={(names.index(n),): v for n, v in constants.items()},
                       attrs={(names.index(n),): [["tt.divisibility", 16]] for n in divisible if n in names})
    return triton.compile(source, target=GPUTarget("cuda", 90, 32),
                          options={"num_warps": num_warps, "num_stages": num_stages})


def compile_sm90(kernel, arg_types: dict, constants: dict, num_warps: int, num_stages: int = 3) -> str:
    """'' if `kernel` compiles to an sm_90 cubin (`_compiled`'s arguments), else the error."""
    try:
        return "" if _compiled(kernel, arg_types, constants, num_warps, num_stages).asm.get("cubin") else "no cubin"
    except Exception as e:  # reported per variant by the tests
        return f"{type(e).__name__}: {e}"[:400]


def cuobjdump(compiled, flag: str) -> str:
    """What Triton's own cuobjdump prints with `flag` ("-sass", "-res-usage") for a compiled kernel's cubin."""
    import triton

    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        return subprocess.run([tool, flag, f.name], capture_output=True, text=True, check=True).stdout


def registers(compiled) -> int:
    """Registers a thread of a compiled kernel, from cuobjdump's resource usage of its cubin."""
    return int(re.search(r"REG:(\d+)", cuobjdump(compiled, "-res-usage")).group(1))


def layouts_and_registers_sm90(kernel, arg_types: dict, constants: dict, num_warps: int) -> tuple[list[str], int]:
    """The register layouts (`#blocked` lines of the TTGIR) and the registers a thread (`registers`) of `kernel`
    compiled for sm_90 (`_compiled`'s arguments)."""
    compiled = _compiled(kernel, arg_types, constants, num_warps)
    layouts = [line for line in compiled.asm["ttgir"].splitlines() if line.startswith("#blocked")]
    return layouts, registers(compiled)


def compile_all(jobs: dict) -> dict:
    """{variant: error or ''} for jobs {variant: (kernel, arg_types, constants, num_warps[, num_stages])}
    (`compile_sm90`; Triton's default of 3 stages where a job gives none), compiled on every core at once (ptxas and
    the MLIR passes run outside the GIL; each compile has its own context)."""
    variants = list(jobs)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return dict(zip(variants, pool.map(lambda variant: compile_sm90(*jobs[variant]), variants)))


def variants_in_subprocess(test_file: str, function: str, cache_dir) -> dict:
    """{variant: error or ''}: `function()` of `test_file`, run in a Python without TRITON_INTERPRET."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(cache_dir)
    code = ("import importlib.util, json, sys; sys.path.insert(0, sys.argv[3]); "
            "spec = importlib.util.spec_from_file_location('t', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "print(json.dumps(getattr(m, sys.argv[2])()))")
    run = subprocess.run([sys.executable, "-c", code, test_file, function, os.path.dirname(test_file)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def assert_every_variant_compiles(test_file: str, function: str, cache_dir, count: int) -> None:
    """`function()` of `test_file` (`variants_in_subprocess`) compiled `count` variants, every one without error."""
    results = variants_in_subprocess(test_file, function, cache_dir)
    assert len(results) == count, sorted(results)
    failed = {variant: error for variant, error in results.items() if error}
    assert not failed, failed
