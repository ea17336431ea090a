"""The bytes the SSD scan's kernels move to and from DRAM, counted by Nsight Compute, against their time: whether the
backward's time over the forward's follows its bytes over the forward's (both bandwidth-bound) or not.

Two roles. On the GPU, under ncu, `--launch BxL ...` runs the SSD op (`infomamba::ssd_scan`) forward and its
backward (`infomamba::ssd_scan_backward`, everything the backward of a training step launches: the states'
recompute, the state-adjoint walk, the chunk backward, torch's sums and casts) once a shape after a warm-up, between
cudaProfilerStart and cudaProfilerStop, at `bench_ssd.py`'s inputs (d 768 = 12 heads x 64, n 16, bf16). Then, on any
machine, `--ncu-csv FILE` reads ncu's CSV (one row a kernel and metric) and prints each kernel's DRAM bytes read and
written, the bytes its SMs asked of L2 (where measured), its time and DRAM bandwidth, and per shape the backward's
bytes and time over the forward's (`--plot`: as bars, by what each kernel is for). Kernels are told apart by launch
order: each shape launches one forward kernel, then the backward's kernels (its two walks in one launch, the chunk
backward, torch's sums and casts) until the next forward kernel.

    M=dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum
    M=$M,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sectors_srcunit_tex_op_write.sum
    ncu --clock-control none --profile-from-start off --csv --metrics $M \\
        python3 benchmarks/ssd_bytes.py --launch 64x196 64x1024 8x16384 > ncu_ssd_bytes.txt
    python3 benchmarks/ssd_bytes.py --ncu-csv ncu_ssd_bytes.txt --plot ssd_bytes.png

ncu flushes the caches before each kernel it measures (its default cache control), so each kernel reads from a cold
L2; what it writes is counted in DRAM only as far as L2 evicts it before the kernel ends (at B64 x L196 most of y
stays there), so DRAM bytes written undercount small outputs, and the L2 column counts every byte asked. Times are
those of single launches, not graph replays (`bench_ssd.py --graphs`).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import defaultdict

METRICS = {"dram__bytes_read.sum": "read", "dram__bytes_write.sum": "written", "gpu__time_duration.sum": "ns",
           "lts__t_sectors_srcunit_tex_op_read.sum": "l2_read", "lts__t_sectors_srcunit_tex_op_write.sum": "l2_written"}
SCALE = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "sector": 32,  # to bytes (an L2 sector: 32 bytes)
         "ns": 1, "nsecond": 1, "us": 1e3, "usecond": 1e3, "ms": 1e6, "msecond": 1e6}  # to nanoseconds
FORWARD_KERNEL = "_ssd_fwd_kernel"


def kernels(lines) -> list[dict]:
    """One dict a profiled kernel, in launch order: {'name', 'read', 'written' (DRAM bytes), 'ns'}, and 'l2_read',
    'l2_written' (bytes the SMs asked of L2) where ncu measured them, from ncu's CSV rows (lines of other output are
    skipped)."""
    rows = csv.reader(line for line in lines if line.startswith('"'))
    header = next(rows, None)
    if header is None:
        raise ValueError("no ncu CSV rows (lines starting with a quote) in the input")
    col = {name: header.index(name) for name in ("ID", "Kernel Name", "Metric Name", "Metric Unit", "Metric Value")}
    by_id: dict[int, dict] = {}
    for row in rows:
        metric = row[col["Metric Name"]]
        if metric not in METRICS:
            continue
        k = by_id.setdefault(int(row[col["ID"]]), {"name": row[col["Kernel Name"]]})
        unit = row[col["Metric Unit"]]
        if unit not in SCALE:
            raise ValueError(f"ncu metric {metric} in unit {unit!r}; expected one of {sorted(SCALE)}")
        k[METRICS[metric]] = float(row[col["Metric Value"]].replace(",", "")) * SCALE[unit]
    return [by_id[i] for i in sorted(by_id)]


def phases(launched: list[dict]) -> list[list[dict]]:
    """The kernels split at each forward kernel launch: forward (that kernel alone), backward (the kernels after it
    until the next forward kernel), forward, backward, ..."""
    out: list[list[dict]] = []
    for k in launched:
        if k["name"].startswith(FORWARD_KERNEL):
            out += [[k], []]
        elif not out:
            raise ValueError(f"the first profiled kernel is {k['name']!r}, not the SSD forward")
        else:
            out[-1].append(k)
    return out


def labelled(launched: list[dict], shapes: list[str]):
    """(shape, phase, kernel) for each kernel, its `phases` matched to the shapes in launch order."""
    split = phases(launched)
    if len(split) != 2 * len(shapes):
        raise ValueError(f"{len(split)} forward/backward phases for {len(shapes)} shapes ({shapes}): expected "
                         f"{2 * len(shapes)}")
    for i, ks in enumerate(split):
        for k in ks:
            yield shapes[i // 2], ("forward", "backward")[i % 2], k


def table(launched: list[dict], shapes: list[str]) -> str:
    """Each kernel's DRAM MB read and written, MB asked of L2 (where measured), microseconds and DRAM GB/s, then per
    shape the backward's bytes and time over the forward's."""
    lines = ["| batch x L | phase | kernel | DRAM MB read | DRAM MB written | L2 MB asked | us | DRAM GB/s |",
             "|---|---|---|---|---|---|---|---|"]
    totals = defaultdict(lambda: defaultdict(float))
    for shape, phase, k in labelled(launched, shapes):
        dram = k["read"] + k["written"]
        l2 = k.get("l2_read", 0.0) + k.get("l2_written", 0.0)
        lines.append(f"| {shape} | {phase} | {k['name'][:60]} | {k['read'] / 1e6:.1f} | {k['written'] / 1e6:.1f} | "
                     f"{l2 / 1e6:.1f} | {k['ns'] / 1e3:.1f} | {dram / k['ns']:.0f} |")
        for key, value in (("dram", dram), ("l2", l2), ("ns", k["ns"])):
            totals[shape, phase][key] += value
    lines += ["", "| batch x L | forward: DRAM MB, us, GB/s | backward: DRAM MB, us, GB/s | backward / forward: DRAM "
              "bytes, L2 bytes, time |", "|---|---|---|---|"]
    for shape in shapes:
        f, b = totals[shape, "forward"], totals[shape, "backward"]
        l2 = f"{b['l2'] / f['l2']:.2f}x" if f["l2"] else "-"
        lines.append(f"| {shape} | {f['dram'] / 1e6:.1f}, {f['ns'] / 1e3:.1f}, {f['dram'] / f['ns']:.0f} | "
                     f"{b['dram'] / 1e6:.1f}, {b['ns'] / 1e3:.1f}, {b['dram'] / b['ns']:.0f} | "
                     f"{b['dram'] / f['dram']:.2f}x, {l2}, {b['ns'] / f['ns']:.2f}x |")
    return "\n".join(lines)


PARTS = ("forward walk (y)", "walks (states, state adjoints)", "chunk backward", "torch sums and casts")


def part(kernel: dict) -> str:
    """What a kernel is for, by name: the forward walk, the backward's two walks (the states and their adjoints, one
    launch), its chunk backward, or torch's sums and casts."""
    name = kernel["name"]
    for prefix, what in zip((FORWARD_KERNEL, "_ssd_bwd_walks_kernel", "_ssd_bwd_chunk_kernel"), PARTS):
        if name.startswith(prefix):
            return what
    return PARTS[-1]


def plot(launched: list[dict], shapes: list[str], path: str) -> None:
    """Per shape, the forward's and the backward's DRAM MB and microseconds as bars stacked by `part`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sums = defaultdict(float)
    for shape, phase, k in labelled(launched, shapes):
        sums[shape, phase, part(k), "MB"] += (k["read"] + k["written"]) / 1e6
        sums[shape, phase, part(k), "us"] += k["ns"] / 1e3
    fig, axes = plt.subplots(2, len(shapes), figsize=(4 * len(shapes), 6), squeeze=False)
    for col, shape in enumerate(shapes):
        for row, unit in enumerate(("MB", "us")):
            ax = axes[row][col]
            for phase_i, phase in enumerate(("forward", "backward")):
                bottom = 0.0
                for part_i, name in enumerate(PARTS):
                    value = sums[shape, phase, name, unit]
                    ax.bar(phase_i, value, bottom=bottom, color=f"C{part_i}", label=name if phase_i and not col
                           and not row else None)
                    bottom += value
                ax.text(phase_i, bottom, f"{bottom:.0f}", ha="center", va="bottom", fontsize=8)
            ax.set_xticks([0, 1], ["forward", "backward"])
            ax.set_title(f"B{shape.replace('x', ' x L')}: {'DRAM MB' if unit == 'MB' else 'kernel time, us'}",
                         fontsize=9)
    fig.legend(loc="lower center", ncol=len(PARTS), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)


def launch(shapes: list[str]) -> None:
    """The SSD op's forward, then its backward, once a shape, between cudaProfilerStart and Stop (after a warm-up
    that compiles every kernel)."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_ssd import inputs  # benchmarks/ is a folder of scripts

    from infomamba.ops.ssd_scan.triton import ssd_scan_backward_op, ssd_scan_op

    calls = []
    for shape in shapes:
        batch, length = (int(v) for v in shape.split("x"))
        args = inputs(batch, length, 12, 64, 16, torch.bfloat16, "cuda")
        dy = torch.randn_like(args[0])
        calls.append((args, dy))
        ssd_scan_op(*args, False)
        ssd_scan_backward_op(dy, *args, False)
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for args, dy in calls:
        ssd_scan_op(*args, False)
        ssd_scan_backward_op(dy, *args, False)
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--launch", nargs="+", metavar="BxL", help="run the kernels for ncu (GPU)")
    p.add_argument("--ncu-csv", help="ncu's CSV output of a --launch run")
    p.add_argument("--shapes", nargs="+", default=["64x196", "64x1024", "8x16384"], metavar="BxL",
                   help="the shapes the --launch run took, in order (for --ncu-csv)")
    p.add_argument("--plot", metavar="PNG", help="with --ncu-csv: also draw each phase's bytes and time by part")
    args = p.parse_args(argv)
    if bool(args.launch) == bool(args.ncu_csv):
        p.error("give one of --launch and --ncu-csv")
    if args.launch:
        launch(args.launch)
        return
    with open(args.ncu_csv) as f:
        launched = kernels(f)
    print(table(launched, args.shapes))
    if args.plot:
        plot(launched, args.shapes, args.plot)


if __name__ == "__main__":
    main()
