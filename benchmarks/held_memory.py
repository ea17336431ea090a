"""What is allocated on the GPU when each `infomamba bench` row begins, and where it was allocated: the bench runs
with CUDA memory history recorded, and before each row's measurement its live blocks are summed by the Python lines
that allocated them, the CUDA tensors Python still reaches are listed with what holds them, and the cuBLAS
workspaces are cleared (what that frees is printed). A row's `train_carried_gib` says how much an earlier row left;
this says what. Every argument goes to `infomamba bench`; CUDA only.

    python benchmarks/held_memory.py --mixers 'infomamba{ssm_heads: 12}' attention --resolutions 224 \\
        --lengths 16384 --max-tokens-attention 16384 --batch 64 --dim 384 --depth 12 --dtype bf16 --train --cuda-graphs
"""
from __future__ import annotations

import collections
import gc
import sys

import torch

from infomamba import bench

TOP = 12  # allocation sites printed a row
MIN_TENSOR = 2**20  # bytes: smaller tensors Python reaches are not listed


def allocation_site(frames: list[dict]) -> str:
    """The innermost Python lines outside torch of an allocation's stack (up to four, innermost first); "?" for a
    block allocated with no Python frame on the stack (by the CUDA libraries, say)."""
    python = [f for f in frames if f["filename"].endswith(".py")]
    ours = [f for f in python if "/torch/" not in f["filename"]] or python
    return " <- ".join(f"{f['filename'].rsplit('/', 1)[-1]}:{f['line']}" for f in ours[:4]) or "?"


def live_blocks(snapshot: dict) -> tuple[collections.Counter, collections.Counter]:
    """(bytes, blocks) of the allocated blocks of a `torch.cuda.memory._snapshot()`, by `allocation_site`."""
    size, count = collections.Counter(), collections.Counter()
    for segment in snapshot["segments"]:
        for block in segment["blocks"]:
            if block["state"] == "active_allocated":
                site = allocation_site(block.get("frames") or [])
                size[site] += block["size"]
                count[site] += 1
    return size, count


def report(model: torch.nn.Module, inputs: torch.Tensor) -> None:
    gc.collect()
    torch.cuda.empty_cache()
    size, count = live_blocks(torch.cuda.memory._snapshot())
    mine = bench.row_tensors(model, inputs)
    own = bench.storage_gib(mine)
    print(f"== row of input {tuple(inputs.shape)}: allocated {torch.cuda.memory_allocated() / 2**30:.3f} GiB, "
          f"its parameters, buffers and input {own:.3f}", flush=True)
    for site, n in size.most_common(TOP):
        print(f"   {n / 2**20:9.1f} MiB {count[site]:5d} blocks  {site}", flush=True)
    ids = {id(t) for t in mine}
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and obj.is_cuda and id(obj) not in ids \
                and obj.untyped_storage().nbytes() >= MIN_TENSOR:
            holders = [type(r).__name__ for r in gc.get_referrers(obj)][:4]
            print(f"   reached from Python: {tuple(obj.shape)} {obj.dtype} "
                  f"{obj.untyped_storage().nbytes() / 2**20:.1f} MiB, held by {holders}", flush=True)
    before = torch.cuda.memory_allocated()
    torch._C._cuda_clearCublasWorkspaces()
    print(f"   cuBLAS workspaces cleared: {(before - torch.cuda.memory_allocated()) / 2**20:.1f} MiB", flush=True)


def main(argv: list[str]) -> None:
    if not torch.cuda.is_available():
        sys.exit("held_memory.py reads CUDA memory: run it on a GPU")
    torch.cuda.memory._record_memory_history(max_entries=500_000)
    measure = bench.measure

    def reported(model, inputs, *args, **kwargs):
        report(model, inputs)
        return measure(model, inputs, *args, **kwargs)

    bench.measure = reported
    bench.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
