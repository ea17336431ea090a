"""Where a training step's GPU time goes, per mixer: torch.profiler over one bf16 train step (or, with
`--inference`, one eval-mode forward under `torch.inference_mode`, as the bench's inference rows) of the bench
model (PatchEmbed -> Encoder -> head), the top kernels by self CUDA time, and wall vs GPU-busy time
(a large gap means launch overhead), then the ops (aten ops and autograd nodes) by the GPU time of the kernels
they launch, inclusive (nested ops count in each level), which names the op behind a generic elementwise
kernel; at the end, the selective-scan launches the autotuner picked. Complements `infomamba bench --train`.

    python benchmarks/profile_step.py --mixers infomamba mamba attention --resolution 224 --batch 64
    python benchmarks/profile_step.py --mixers infomamba --length 16384 --batch 8   # the bench's 1-D model
    python benchmarks/profile_step.py --compile ...   # the model under torch.compile (static shapes)
    python benchmarks/profile_step.py --inference --resolution 1024   # the bench's inference rows
    python benchmarks/profile_step.py --mixers 'infomamba{ssm_heads: 12}'   # a mixer with options (the SSD form)
    python benchmarks/profile_step.py --host 20   # where the eager step's host time goes: cProfile over 20 steps
    python benchmarks/profile_step.py --aux-loss   # the step `infomamba fit` runs: Eq. 14, the auxiliary terms too
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import torch
from torch.profiler import ProfilerActivity, profile

from infomamba.bench import BenchModel, SequenceModel, adamw, parse_mixer_entry, scan_config_lines, train_loss
from infomamba.config import EncoderConfig
from infomamba.mixers import without_training_terms
from infomamba.ops.selective_scan import triton as scan
from infomamba.summary import SIZE_MATCHED, size_matched_options


def op_table(events, rows: int) -> str:
    """The host-side events (aten ops, autograd nodes, custom ops, Python-level launches) as two markdown tables of
    `rows` rows: ranked by the GPU time of the kernels they launched (inclusive), and by their own host time (where
    an eager step that the GPU outpaces spends its time)."""
    host = [e for e in events if e.device_type == torch.autograd.DeviceType.CPU]
    lines = []
    for title, key in (("GPU ms (inclusive)", lambda e: e.device_time_total),
                       ("host ms (self)", lambda e: e.self_cpu_time_total)):
        ranked = sorted((e for e in host if key(e) > 0), key=key, reverse=True)[:rows]
        lines += ["", f"| op, by {title} | GPU ms (inclusive) | host ms (self) | host ms (inclusive) | calls |",
                  "|---|---|---|---|---|"]
        lines += [f"| {e.key[:90]} | {e.device_time_total / 1e3:.2f} | {e.self_cpu_time_total / 1e3:.2f} | "
                  f"{e.cpu_time_total / 1e3:.2f} | {e.count} |" for e in ranked]
    return "\n".join(lines)


def host_profile(step, steps: int, label: str, rows: int) -> str:
    """The wall per step of `steps` plain calls of `step`, then a cProfile of as many: its wall per step, the share
    before the final synchronize, and the `rows` Python functions with the most own (tottime) host time, then by
    cumulative time."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    plain = (time.perf_counter() - start) * 1e3 / steps
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    host = (time.perf_counter() - start) * 1e3 / steps
    torch.cuda.synchronize()
    wall = (time.perf_counter() - start) * 1e3 / steps
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(rows)
    stats.sort_stats("cumulative").print_stats(rows)
    return (f"\n== host {label}: {plain:.1f} ms a step plain; {wall:.1f} ms under cProfile ({host:.1f} ms of it "
            f"before the final synchronize), {steps} steps\n{out.getvalue()}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixers", nargs="+", default=["infomamba", "mamba", "attention"],
                   help="mixer names or NAME{yaml} entries, as `infomamba bench --mixers`")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--length", type=int, help="profile the 1-D sequence model at this many tokens instead")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--top", type=int, default=18)
    p.add_argument("--top-ops", type=int, default=30, help="rows of the op table (0: none)")
    p.add_argument("--compile", action="store_true", help="profile the torch.compile'd model")
    p.add_argument("--inference", action="store_true", help="profile an eval-mode forward instead of a train step")
    p.add_argument("--aux-loss", action="store_true",
                   help="the train step optimises Eq. 14 (cross-entropy plus the mixers' auxiliary terms), as "
                        "`infomamba fit` and `infomamba bench --train --aux-loss` do")
    p.add_argument("--host", type=int, default=0, metavar="STEPS",
                   help="instead of torch.profiler, cProfile STEPS eager steps: the Python functions by own host time")
    args = p.parse_args(argv)
    if args.aux_loss and (args.compile or args.inference):
        p.error("--aux-loss sets the train step's loss: not with --compile or --inference")
    device = torch.device("cuda")
    matched = size_matched_options(SIZE_MATCHED, args.dim, args.depth)
    for mixer, name, options in map(parse_mixer_entry, args.mixers):
        config = EncoderConfig(dim=args.dim, depth=args.depth, mixer=name,
                               mixer_options={**matched.get(name, {}), **options})
        model = (SequenceModel if args.length else BenchModel)(config, aux_loss=args.aux_loss)
        model = model.to(device).train(not args.inference)
        opt = adamw(model)
        run = torch.compile(model, dynamic=False) if args.compile else model
        shape = ((args.batch, args.length, args.dim) if args.length
                 else (args.batch, 3, args.resolution, args.resolution))
        inputs = torch.randn(*shape, device=device)
        labels = torch.randint(0, 1000, (args.batch,), device=device)
        loss_of = train_loss(model, labels)

        def train_step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = loss_of(run(inputs))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        def forward():
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16), without_training_terms():
                run(inputs)

        step = forward if args.inference else train_step

        for _ in range(4):
            step()
        torch.cuda.synchronize()
        if args.host:
            print(host_profile(step, args.host, f"{mixer} {shape}", args.top), flush=True)
            del model, run, opt
            continue
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize()
        wall = (time.perf_counter() - start) * 1e3
        events = prof.key_averages()
        # kernels, copies and memsets; a user annotation's GPU event (the optimizer step's, say) is the span of
        # its kernels, idle gaps included, and would count them twice
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA and not e.is_user_annotation]
        busy = sum(e.self_device_time_total for e in kernels) / 1e3
        size = f"{args.length} tokens" if args.length else f"{args.resolution}px"
        label = (f"{mixer}{' +compile' if args.compile else ''}{' inference' if args.inference else ''}"
                 f"{' Eq. 14' if args.aux_loss else ''} {size} "
                 f"batch {args.batch}")
        print(f"\n== {label}: wall {wall:.1f} ms (profiled), "
              f"GPU busy {busy:.1f} ms, kernels {sum(e.count for e in kernels)}", flush=True)
        print(events.table(sort_by="self_device_time_total", row_limit=args.top, max_name_column_width=70,
                           top_level_events_only=False), flush=True)
        if args.top_ops:
            print(op_table(events, args.top_ops), flush=True)
        del model, run, opt
    print("\n".join(scan_config_lines(scan.tuned_configs())), flush=True)


if __name__ == "__main__":
    main()
