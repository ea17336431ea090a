"""Where a bench row's training peak goes: `infomamba bench` with CUDA memory history recorded across each row's
warm-up training steps (the steps whose peak is the row's `train_first_peak_gib`: AdamW's state made, and with
torch.compile the compile run), the allocator's trace replayed to the event of the peak, and the blocks live then
summed by the Python lines that allocated them (`held_memory.allocation_site`; the lines of generated code, such as
Inductor's, by their source text), beside what was allocated before the steps began. Every argument goes
to `infomamba bench`, whose row line follows each report; CUDA only.

    python benchmarks/peak_memory.py --mixers 'infomamba{ssm_heads: 12}' attention --resolutions 224 --batch 64 \\
        --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 3 --train --compile --compile-modes reduce-overhead
"""
from __future__ import annotations

import collections
import linecache
import os
import re
import sys
from typing import NamedTuple

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from held_memory import allocation_site  # noqa: E402  (benchmarks/ is a folder of scripts)

from infomamba import bench  # noqa: E402

TOP = 16  # allocation sites printed a row
MAX_ENTRIES = 4_000_000  # trace events kept: a compile run allocates far more than a step


BEFORE = "(allocated before the steps)"


class Peak(NamedTuple):
    """The blocks live at the trace's peak, their bytes by allocation site (`BEFORE`: what was allocated when the
    trace began and is not yet freed), the peak's bytes, and the site of the allocation that reached it."""
    by_site: collections.Counter
    bytes: int
    at: str


def peak_of_trace(events: list[dict], held: int, site=allocation_site) -> Peak:
    """Replays a device's allocator trace (`torch.cuda.memory._snapshot()["device_traces"][device]`) from `held`
    bytes allocated: an `alloc` makes a block live, its `free_completed` (the allocator takes it back once the
    streams that used it are done: `memory_allocated` drops then) ends it, also for a block allocated before the
    trace began (its event carries its size); the blocks live at the largest total, summed by `site(frames)`. Two
    passes: the first finds the peak's event, the second stops there."""
    def replay(stop: int):
        live: dict[int, dict] = {}
        total = best = before = held
        best_at = -1
        for i, event in enumerate(events[:stop]):
            if event["action"] == "alloc":
                live[event["addr"]] = event
                total += event["size"]
                if total > best:
                    best, best_at = total, i
            elif event["action"] == "free_completed":
                if live.pop(event["addr"], None) is None:
                    before -= event["size"]
                total -= event["size"]
        return live, before, best, best_at

    _, _, best, best_at = replay(len(events))
    live, before, _, _ = replay(best_at + 1)
    by_site: collections.Counter = collections.Counter({BEFORE: before})
    for event in live.values():
        by_site[site(event.get("frames") or [])] += event["size"]
    return Peak(by_site, best, site(events[best_at].get("frames") or []) if best_at >= 0 else "(no allocation)")


def report(held: int, peak: Peak, files: dict[str, str]) -> None:
    print(f"== training warm-up steps: allocated before them {held / 2**30:.3f} GiB, peak {peak.bytes / 2**30:.3f} "
          f"GiB, reached by an allocation at {peak.at}", flush=True)
    sites = by_source(peak.by_site, files)
    for where, n in sites.most_common(TOP):
        print(f"   {n / 2**20:9.1f} MiB  {where}", flush=True)
    rest = sum(n for _, n in sites.most_common()[TOP:])
    print(f"   {rest / 2**20:9.1f} MiB  at {max(len(sites) - TOP, 0)} other sites", flush=True)


def by_source(by_site: collections.Counter, files: dict[str, str]) -> collections.Counter:
    """`by_site` with each site whose innermost line is not the project's (a module Inductor generated, say, where
    every buffer has a line of its own) keyed by that line's source text with buffer names left out and its file,
    so that the buffers of one shape made by one module are summed."""
    merged: collections.Counter = collections.Counter()
    for where, n in by_site.items():
        name, _, line = where.split(" <- ")[0].rpartition(":")
        path = files.get(name)
        text = linecache.getline(path, int(line)).strip() if path and "/infomamba/" not in path and line.isdigit() \
            else ""
        merged[f"{re.sub(r'buf[0-9]+', 'buf', text)[:100]}  [{name}]" if text else where] += n
    return merged


def frame_files(events: list[dict]) -> dict[str, str]:
    """Base name -> full path of every Python file in the trace's frames (`allocation_site` keeps base names)."""
    return {f["filename"].rsplit("/", 1)[-1]: f["filename"] for e in events for f in e.get("frames") or []}


def main(argv: list[str]) -> None:
    if not torch.cuda.is_available():
        sys.exit("peak_memory.py reads CUDA memory: run it on a GPU")
    measure = bench.measure
    first_peak = bench._peak_gib

    def traced_peak(fn, device):
        torch.cuda.synchronize(device)
        held = torch.cuda.memory_allocated(device)
        torch.cuda.memory._record_memory_history(max_entries=MAX_ENTRIES, stacks="python", clear_history=True)
        try:
            return first_peak(fn, device)
        finally:
            events = torch.cuda.memory._snapshot()["device_traces"][device.index or 0]
            torch.cuda.memory._record_memory_history(enabled=None)
            report(held, peak_of_trace(events, held), frame_files(events))

    def traced(model, inputs, *args, **kwargs):
        bench._peak_gib = traced_peak  # measure's one call of it: the warm-up steps' peak
        try:
            return measure(model, inputs, *args, **kwargs)
        finally:
            bench._peak_gib = first_peak

    bench.measure = traced
    bench.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
