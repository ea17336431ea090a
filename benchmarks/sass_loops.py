"""Instructions a (t, d, n) element costs in the scan kernels' loops, from an sm_90 compile, no GPU needed.

The scan kernels are issue-bound: on the H200 the backward took 6.8x its forward at 1024 px (docs/benchmarks.md),
and their loops' SASS instructions per element are in the same ratio. This compiles the forward and backward
kernels as the fused SSM op launches them (bf16, dt's bias and softplus inside, A read as A_log, D, no padding, one
program per sample) for sm_90 with Triton's own ptxas, disassembles them with its cuobjdump, finds each loop (a
backward branch and the instructions up to it) and prints its length, its length per element (block_t x d_in x
d_lanes x n elements a program and loop iteration, over its 32 x num_warps threads) and its instruction mix. Run it
without TRITON_INTERPRET (under the interpreter nothing is compiled).

    python benchmarks/sass_loops.py                  # the first two candidates of each kernel at n = 16
    python benchmarks/sass_loops.py --candidates 5 --json
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests", "ops"))

# tests/ops: what the *_compiles tests compile with
from sm90_compile import SCAN_ARGS, _compiled, arg_types, cuobjdump, registers  # noqa: E402

SASS_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")


def sass_and_registers(kernel, constants: dict, num_warps: int) -> tuple[list[tuple[int, str]], int]:
    """[(address, instruction)] of `kernel` compiled for sm_90, and its registers a thread."""
    compiled = _compiled(kernel, arg_types(kernel, *SCAN_ARGS), constants, num_warps)
    text = cuobjdump(compiled, "-sass")
    instructions = [(int(m.group(1), 16), m.group(2)) for m in map(SASS_LINE.search, text.splitlines()) if m]
    return instructions, registers(compiled)


def opcode(instruction: str) -> str:
    """FFMA of '@!P0 FFMA.FTZ R1, R2, R3, R4': the opcode without its predicate and modifiers."""
    return re.sub(r"^@!?U?P\w+\s+", "", instruction).split()[0].split(".")[0]


def loops(instructions: list[tuple[int, str]]) -> list[tuple[int, int]]:
    """(first, last) indices of each loop: a branch to an earlier address, from its target to the branch."""
    index = {address: i for i, (address, _) in enumerate(instructions)}
    found = []
    for i, (address, instruction) in enumerate(instructions):
        target = re.search(r"\bBRA\b.*?0x([0-9a-f]+)", instruction)
        if target and int(target.group(1), 16) < address and int(target.group(1), 16) in index:
            found.append((index[int(target.group(1), 16)], i))
    return found


def kernel_loops(kind: str, candidates: int, block_n: int = 16) -> list[dict]:
    """Per candidate config of the `kind` ("fwd", "bwd") scan kernel: registers and, per loop, its instructions,
    instructions per element and opcode counts."""
    from infomamba.ops.selective_scan import triton as ss

    kernel, only = (ss._scan_fwd_kernel, "STATES_ONLY") if kind == "fwd" else (ss._scan_bwd_kernel, "ADJOINT_ONLY")
    rows = []
    for cfg in ss.candidate_configs(kind, block_n)[:candidates]:
        constants = dict(HAS_D=True, REVERSE=False, DT_SOFTPLUS=True, HAS_PAD=False, CHUNKED=False, A_LOG=True,
                         HAS_DT_BIAS=True, BLOCK_T=cfg.block_t, D_IN=cfg.d_in, D_LANES=cfg.d_lanes, BLOCK_N=block_n,
                         **{only: False})
        if kind == "bwd":
            constants.update(CHUNK=ss.CHUNK, PREFETCH=cfg.prefetch)
        instructions, registers = sass_and_registers(kernel, constants, cfg.num_warps)
        per_thread = cfg.block_t * cfg.block_d * block_n / (32 * cfg.num_warps)
        body = [[opcode(op) for _, op in instructions[first:last + 1]] for first, last in loops(instructions)]
        rows.append({"kernel": kind, "config": list(cfg), "registers": registers, "elements_per_thread": per_thread,
                     "loops": [{"instructions": len(ops), "per_element": len(ops) / per_thread,
                                "opcodes": dict(collections.Counter(ops).most_common())} for ops in body]})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", type=int, default=2, help="the first N candidate configs of each kernel")
    p.add_argument("--state", type=int, default=16, help="n, the states a channel")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead")
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("sass_loops.py compiles kernels: run it without TRITON_INTERPRET=1")
    rows = [row for kind in ("fwd", "bwd") for row in kernel_loops(kind, args.candidates, args.state)]
    if args.json:
        print(json.dumps(rows))
        return
    def per_element(row):
        return sum(loop["per_element"] for loop in row["loops"])

    fwd, bwd = (next(row for row in rows if row["kernel"] == kind) for kind in ("fwd", "bwd"))
    print(f"first candidates: the backward's loops {per_element(bwd) / per_element(fwd):.2f}x the forward's "
          f"instructions an element")
    for row in rows:
        total = per_element(row)
        print(f"{row['kernel']} {tuple(row['config'])}: {row['registers']} registers, "
              f"{row['elements_per_thread']:g} elements a thread and iteration, loops {total:.1f} instructions an "
              f"element in all")
        for loop in row["loops"]:
            mix = ", ".join(f"{k} {v}" for k, v in list(loop["opcodes"].items())[:12])
            print(f"  loop: {loop['instructions']} instructions, {loop['per_element']:.1f} an element; {mix}")


if __name__ == "__main__":
    main()
