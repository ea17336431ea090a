"""What the SSD scan's kernels hold on an sm_90 SM, from a compile on a machine without a GPU.

Compiles the three kernels of `ops/ssd_scan` (the forward chunk walk, the state-adjoint walk and the chunk-parallel
backward) in the fused SSM op's form (bf16, dt_pre with its bias and the padding mask, A_log, D; p 64, n 16, chunk
`CHUNK`) for sm_90 with Triton's own ptxas, at the launch the op uses and at the `--warps` given, and prints from each
cubin (Triton's cuobjdump): registers a thread, the bytes a thread spills to local memory (STACK) and its spill
stores and loads, shared memory a program, SASS instructions, and how many programs an SM holds by registers
(65,536 a Hopper SM) and by shared memory (227 KiB a block at most, 228 KiB an SM). Each kernel is compiled as Triton
specialises it for the 1024 px launch (B 64, L 4096, 12 heads of 64): the tensors 16-byte aligned and L, the chunk
count and x's and dt's batch and row strides multiples of 16 (`LAUNCH_DIVISIBLE`; B and C, views into a projection's
output, and the head count are left unhinted); `--no-hints` compiles without (every x, dy and dx access a scalar
load or store with its own address: more registers and spill than any launch has). A kernel with no loop to pipeline
(the chunk backward: one chunk a program) hides its memory latency only with the other programs on its SM, so that
count bounds it. Run it without TRITON_INTERPRET (under the interpreter nothing is compiled).

    python benchmarks/ssd_resources.py                    # the shipped launches
    python benchmarks/ssd_resources.py --warps 4 8        # the chunk backward at 4 and 8 warps too
    python benchmarks/ssd_resources.py --no-hints         # without the launch's divisibility
"""
from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests", "ops"))

# tests/ops: what the *_compiles tests compile with
from sm90_compile import _compiled, cuobjdump  # noqa: E402
from test_ssd_scan_compiles import FUSED_STEP, types  # noqa: E402

REGISTERS_AN_SM = 65536
SHARED_AN_SM = 228 * 1024
# What the 1024 px launch passes as multiples of 16: every tensor but B and C, and these integers
LAUNCH_DIVISIBLE = frozenset({"x_ptr", "dt_ptr", "A_ptr", "dtb_ptr", "pad_ptr", "D_ptr", "y_ptr", "st_ptr", "dy_ptr",
                              "dst_ptr", "dx_ptr", "ddt_ptr", "dB_ptr", "dC_ptr", "dA_ptr", "dD_ptr",
                              "L", "n_chunks", "s_xb", "s_xl", "s_dtb"})


def resources(kernel, constants: dict, warps: int, stages: int, divisible: frozenset = LAUNCH_DIVISIBLE) -> dict:
    """Registers, spill and shared memory of `kernel` compiled for sm_90 (`divisible`: the arguments known to be
    multiples of 16), and the programs an SM holds."""
    compiled = _compiled(kernel, types(kernel, "bf16", fused=True), constants, warps, stages, divisible)
    usage = cuobjdump(compiled, "-res-usage")
    sass = cuobjdump(compiled, "-sass")
    registers = int(re.search(r"REG:(\d+)", usage).group(1))
    shared = compiled.metadata.shared
    return {"warps": warps, "stages": stages, "registers": registers,
            "spill_bytes": int(re.search(r"STACK:(\d+)", usage).group(1)),
            "spill_stores": len(re.findall(r"\bSTL\b", sass)), "spill_loads": len(re.findall(r"\bLDL\b", sass)),
            "shared_bytes": shared, "instructions": len(re.findall(r"/\*[0-9a-f]{4,}\*/\s+\S", sass)),
            "programs_by_registers": REGISTERS_AN_SM // (registers * 32 * warps),
            "programs_by_shared": SHARED_AN_SM // shared if shared else None}


def launches(warps: list[int]) -> list[tuple[str, object, dict, int, int]]:
    """(name, kernel, constexprs, warps, stages) of each kernel as the fused op launches it, and of the chunk backward
    at each of `warps`."""
    from infomamba.ops.ssd_scan import triton as ssd

    shape = dict(P=64, N=16, Q=ssd.CHUNK, PREC="tf32", REVERSE=True, **FUSED_STEP)
    block_p, walk_warps, walk_stages = ssd.FWD_CONFIG
    bwd_warps, bwd_stages = ssd.BWD_CONFIG
    rows = [("forward walk (y)", ssd._ssd_fwd_kernel,
             dict(shape, BLOCK_P=block_p, HAS_D=True, WRITE_Y=True, SAVE_STATES=False, ACC=False), walk_warps,
             walk_stages),
            ("the backward's walks (states, state adjoints)", ssd._ssd_bwd_walks_kernel, dict(shape, BLOCK_P=block_p),
             walk_warps, walk_stages)]
    for w in sorted({bwd_warps, *warps}):
        rows.append((f"chunk backward{' (shipped)' if w == bwd_warps else ''}", ssd._ssd_bwd_chunk_kernel,
                     dict(shape, HAS_D=True), w, bwd_stages))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warps", type=int, nargs="*", default=[], help="also compile the chunk backward at these warps")
    p.add_argument("--no-hints", action="store_true", help="compile without the launch's divisibility")
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("ssd_resources.py compiles kernels: run it without TRITON_INTERPRET=1")
    print("| kernel | warps, stages | registers | spill bytes (stores / loads) | shared KiB | SASS instructions | "
          "programs an SM by registers / shared memory |")
    print("|---|---|---|---|---|---|---|")
    for name, kernel, constants, warps, stages in launches(args.warps):
        r = resources(kernel, constants, warps, stages, frozenset() if args.no_hints else LAUNCH_DIVISIBLE)
        print(f"| {name} | {warps}, {stages} | {r['registers']} | {r['spill_bytes']} ({r['spill_stores']} / "
              f"{r['spill_loads']}) | {r['shared_bytes'] / 1024:.1f} | {r['instructions']} | "
              f"{r['programs_by_registers']} / {r['programs_by_shared']} |")


if __name__ == "__main__":
    main()
