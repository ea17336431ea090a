"""Selective-scan speed on one GPU: the Triton kernel against the PyTorch references and fla.

Rows per shape and dtype (median of triton.testing.do_bench, ms):
  triton      infomamba.ops.selective_scan.triton.selective_scan_triton (autotuned on first call)
  reference   infomamba.ops.selective_scan.reference.selective_scan_reference, the chunked PyTorch scan, on the GPU
  sequential  infomamba.ops.selective_scan.reference.selective_scan_sequential, the per-token loop (the definition); only
              at the smallest shape unless --sequential
  fla         fla.ops.simple_gla.chunk_simple_gla (12 heads x 64, state 64 x 64; the speed anchor of
              DESIGN.md "Scan kernels"), bf16 only, when fla is importable; a refused backward is
              printed with its message
GB/s counts the forward's compulsory traffic (u, delta, B, C read, y written; q, k, v, g read and o
written for fla) against the H100 copy bandwidth (3.0 TB/s). "ex2 floor" is the time the forward's
exps alone need at the GPU's MUFU rate (16 per clock per SM), a lower bound for the Mamba-1 scan.
"max err" is the Triton forward's largest deviation from the reference, relative to its largest |y|.

    python benchmarks/bench_scan.py                 # B64 L196/576/1024 and B16 L4096, bf16 + fp32
    python benchmarks/bench_scan.py --quick         # a seconds-long smoke run of every row
    python benchmarks/bench_scan.py --baseline OLD.py   # also time an earlier version of the kernel file
    python benchmarks/bench_scan.py --sweep         # time every config of SWEEP for each kernel (bf16)
    python benchmarks/bench_scan.py --sweep --fused # ... launched as the fused SSM op launches them
    python benchmarks/bench_scan.py --shapes 8x16384 --dtypes bfloat16   # other batch x length shapes
    python benchmarks/bench_scan.py --shapes 8x16384 --chunks 9 17 33 65   # the tuned layouts, other chunk counts
"""
from __future__ import annotations

import argparse
import importlib.util

import torch
import triton
import triton.testing

from infomamba.ops.selective_scan import triton as ss
from infomamba.ops.selective_scan import selective_scan_reference, selective_scan_sequential

COPY_BANDWIDTH_GBS = 3000.0
MUFU_EX2_PER_CLOCK_PER_SM = 16
FULL_SHAPES = [(64, 196), (64, 576), (64, 1024), (16, 4096)]
QUICK_SHAPES = [(2, 64)]
# (d_in, d_lanes, num_warps) x block_t per kernel, for --sweep: the autotuner's candidates and layouts
# that split n over more lanes (fewer registers per thread, more warps per SM).
SWEEP = {
    "fwd": ([(1, 32, 1), (1, 16, 1), (1, 8, 1), (1, 64, 2), (1, 32, 2)], (2, 4, 8, 16)),
    "bwd": ([(4, 8, 1), (2, 8, 1), (1, 8, 1), (2, 16, 1), (1, 16, 1), (1, 32, 1), (2, 8, 2)], (1, 2, 4)),
}


def scan_inputs(batch, length, d, n, dtype):
    u = torch.randn(batch, length, d, device="cuda", dtype=dtype)
    delta = torch.nn.functional.softplus(torch.randn(batch, length, d, device="cuda") - 1.0).to(dtype)
    A = -torch.exp(0.5 * torch.randn(d, n, device="cuda"))
    B = torch.randn(batch, length, n, device="cuda", dtype=dtype)
    C = torch.randn(batch, length, n, device="cuda", dtype=dtype)
    D = torch.randn(d, device="cuda")
    return [u, delta, A, B, C, D]


def fla_inputs(batch, length, d, dtype, heads=12):
    head_dim = d // heads
    q, k, v = (torch.randn(batch, length, heads, head_dim, device="cuda", dtype=dtype) for _ in range(3))
    g = torch.nn.functional.logsigmoid(torch.randn(batch, length, heads, device="cuda")).to(dtype)
    return [q, k, v, g]


def time_ms(fn, reps_ms, leaves=None):
    return triton.testing.do_bench(fn, warmup=max(5, reps_ms // 4), rep=reps_ms, grad_to_none=leaves,
                                   return_mode="median")


def measure(fn, args, reps_ms):
    """Forward and forward+backward medians (ms) of fn(*args), or the error that stopped each."""
    leaves = [a.detach().clone().requires_grad_() if a.is_floating_point() else a for a in args]
    result = {}
    try:
        result["fwd"] = time_ms(lambda: fn(*args), reps_ms)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {"fwd": "OOM", "fwdbwd": "OOM"}
    except Exception as e:
        return {"fwd": f"error: {type(e).__name__}: {str(e).splitlines()[0][:160]}", "fwdbwd": ""}
    try:
        out = fn(*leaves)
        dy = torch.randn_like(out)
        result["fwdbwd"] = time_ms(lambda: fn(*leaves).backward(dy), reps_ms, leaves)
    except torch.cuda.OutOfMemoryError:
        result["fwdbwd"] = "OOM"
    except Exception as e:  # fla refuses its backward on Hopper with Triton < 3.7.1 (DESIGN.md)
        result["fwdbwd"] = f"refused: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
    torch.cuda.empty_cache()
    return result


def load_fla():
    try:
        from fla.ops.simple_gla import chunk_simple_gla
    except Exception as e:
        print(f"fla not importable ({type(e).__name__}: {e}); its rows are skipped\n")
        return None

    def run(q, k, v, g):
        return chunk_simple_gla(q=q, k=k, v=v, g=g)[0]
    return run


def load_baseline(path: str):
    """selective_scan_triton from an earlier copy of kernels/selective_scan.py (side-by-side rows)."""
    spec = importlib.util.spec_from_file_location("baseline_selective_scan", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.selective_scan_triton


def fused_launch(delta: torch.Tensor, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(dt, A's argument, options) of the scan kernels as the fused SSM op launches them (`ops/ssm_inner`): dt before
    its bias and softplus, A_log transposed, the bias added in the kernel. Their register layouts differ from the
    plain launch's (docs/benchmarks.md: A_log's layout)."""
    dt_pre = torch.log(torch.expm1(delta.float().clamp_min(1e-4))).to(delta.dtype)  # softplus(dt_pre) = delta
    bias = 0.1 * torch.randn(delta.shape[-1], device=delta.device)
    return dt_pre - bias.to(delta.dtype), torch.log(-A).t().contiguous(), dict(dt_softplus=True, a_log=True,
                                                                               dt_bias=bias)


def sweep(shapes, d, n, fused: bool) -> None:
    """Forward and backward time of every SWEEP config at each shape (bf16), fastest first per kernel; with `fused`
    launched as the fused SSM op launches them (`fused_launch`)."""
    print("\n| kernel | batch | L | block_t, d_in, d_lanes, warps | ms |")
    print("|---|---|---|---|---|")
    for batch, length in shapes:
        u, delta, A, B, C, D = scan_inputs(batch, length, d, n, torch.bfloat16)
        At, options = A.t().contiguous(), {}
        if fused:
            delta, At, options = fused_launch(delta, A)
        dy = torch.randn_like(u)
        for kind, (layouts, block_ts) in SWEEP.items():
            results = []
            for (d_in, d_lanes, warps) in layouts:
                for block_t in block_ts:
                    cfg = ss.ScanConfig(block_t, d_in, d_lanes, warps)
                    with ss.force_config(**{kind: cfg}):
                        run = ((lambda: ss._forward(u, delta, At, B, C, D, False, **options)) if kind == "fwd" else
                               (lambda: ss._backward(u, delta, At, B, C, D, dy, False, **options)))
                        try:
                            results.append((time_ms(run, 50), cfg))
                        except Exception as e:
                            print(f"| {kind} | {batch} | {length} | {tuple(cfg)} | {type(e).__name__} |")
            for ms, cfg in sorted(results):
                print(f"| {kind} | {batch} | {length} | {tuple(cfg)} | {ms:.3f} |", flush=True)
        del u, delta, A, B, C, D, dy
        torch.cuda.empty_cache()


def chunk_sweep(shapes, d, n, counts) -> None:
    """Forward and backward ms at each shape with the autotuner's layout for it and each number of time chunks in
    `counts` (bf16, launched as the fused SSM op launches them): whether `time_chunked`'s one chunked variant (two
    waves of programs) is the count to time."""
    print("\n| kernel | batch | L | layout (block_t, d_in, d_lanes, warps, prefetch) | chunks | ms |")
    print("|---|---|---|---|---|---|")
    for batch, length in shapes:
        u, delta, A, B, C, D = scan_inputs(batch, length, d, n, torch.bfloat16)
        delta, At, options = fused_launch(delta, A)
        dy = torch.randn_like(u)
        runs = {"fwd": lambda: ss._forward(u, delta, At, B, C, D, False, **options),
                "bwd": lambda: ss._backward(u, delta, At, B, C, D, dy, False, **options)}
        buckets = (d, triton.next_power_of_2(batch), triton.next_power_of_2(length))
        for kind, run in runs.items():
            run()
            picked = next(cfg for key, cfg in ss.tuned_configs().items() if key[0] == kind and key[2:5] == buckets)
            for count in sorted({picked.chunks, *counts}):
                with ss.force_config(**{kind: picked._replace(chunks=count)}):
                    ms = time_ms(run, 100)
                mark = " (autotuned)" if count == picked.chunks else ""
                print(f"| {kind} | {batch} | {length} | {(*picked[:4], picked.prefetch)} | {count}{mark} | {ms:.3f} |",
                      flush=True)
        del u, delta, A, B, C, D, dy
        torch.cuda.empty_cache()


def fmt(value):
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, short timings: a smoke run")
    parser.add_argument("--sequential", action="store_true", help="time the per-token loop at every shape")
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--d", type=int, default=768, help="channels (ViT-S width 384 x expand 2)")
    parser.add_argument("--n", type=int, default=16, help="state size per channel")
    parser.add_argument("--reps-ms", type=int, default=200, help="do_bench measuring time per entry")
    parser.add_argument("--baseline", help="an earlier kernels/selective_scan.py, timed beside the current one")
    parser.add_argument("--sweep", action="store_true", help="time every SWEEP config per kernel, then exit")
    parser.add_argument("--fused", action="store_true",
                        help="with --sweep: launch the kernels as the fused SSM op does (dt's softplus, A_log)")
    parser.add_argument("--shapes", nargs="+", metavar="BxL",
                        help="batch x length pairs instead of the defaults, e.g. 64x196 8x16384")
    parser.add_argument("--chunks", nargs="+", type=int, metavar="K",
                        help="time the autotuner's layouts at these numbers of time chunks (`chunk_sweep`), then exit")
    parser.add_argument("--clock-ghz", type=float, default=1.98,
                        help="SM clock for the ex2 floor (H100 SXM max boost)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_scan.py needs a CUDA GPU")
    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    if args.shapes:
        shapes = [tuple(int(v) for v in shape.split("x")) for shape in args.shapes]
    d = 128 if args.quick else args.d
    reps_ms = 20 if args.quick else args.reps_ms
    props = torch.cuda.get_device_properties(0)
    if args.chunks:
        chunk_sweep(shapes, d, args.n, args.chunks)
        return
    if args.sweep:
        sweep([(64, 196), (64, 1024), (16, 4096)] if not args.quick else shapes, d, args.n, args.fused)
        return
    fla = load_fla()
    baseline = load_baseline(args.baseline) if args.baseline else None

    print(f"device: {props.name}, {props.multi_processor_count} SMs; torch {torch.__version__}, "
          f"triton {triton.__version__}; d={d}, n={args.n}\n")
    print("| batch | L | dtype | impl | fwd ms | fwd+bwd ms | fwd GB/s | % of 3.0 TB/s | ex2 floor ms "
          "| max err |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        elsize = torch.empty((), dtype=dtype).element_size()
        for batch, length in shapes:
            inputs = scan_inputs(batch, length, d, args.n, dtype)
            scan_bytes = batch * length * (3 * d + 2 * args.n) * elsize
            ex2_floor_ms = batch * length * d * args.n / (
                props.multi_processor_count * MUFU_EX2_PER_CLOCK_PER_SM * args.clock_ghz * 1e9) * 1e3
            try:
                y_ref = selective_scan_reference(*inputs).float()
                y_tri = ss.selective_scan_triton(*inputs).float()
                err = f"{((y_tri - y_ref).abs().max() / y_ref.abs().max()).item():.1e}"
                del y_ref, y_tri
            except torch.cuda.OutOfMemoryError:
                err = "ref OOM"
            torch.cuda.empty_cache()
            rows = [("triton", ss.selective_scan_triton, inputs, scan_bytes, err),
                    ("reference", selective_scan_reference, inputs, scan_bytes, "")]
            if baseline is not None:
                rows.insert(1, ("triton (baseline file)", baseline, inputs, scan_bytes, ""))
            if args.sequential or (batch, length) == shapes[0]:
                rows.append(("sequential", selective_scan_sequential, inputs, scan_bytes, ""))
            if fla is not None and dtype == torch.bfloat16:
                fla_args = fla_inputs(batch, length, d, dtype)
                fla_bytes = batch * length * (4 * d + 12) * elsize
                rows.append(("fla chunk_simple_gla", fla, fla_args, fla_bytes, ""))
            for name, fn, fn_args, nbytes, err_cell in rows:
                t = measure(fn, fn_args, reps_ms)
                gbs = nbytes / (t["fwd"] * 1e-3) / 1e9 if isinstance(t["fwd"], float) else None
                cells = [batch, length, dtype_name, name, fmt(t["fwd"]), fmt(t["fwdbwd"]),
                         f"{gbs:.0f}" if gbs else "", f"{100 * gbs / COPY_BANDWIDTH_GBS:.0f}%" if gbs else "",
                         f"{ex2_floor_ms:.3f}" if name != "fla chunk_simple_gla" else "", err_cell]
                print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
            del inputs
            torch.cuda.empty_cache()
    print("\nconfigs picked by the autotuner (kind, n, d, batch bucket, L bucket, dtypes, device): config")
    for key, config in ss.tuned_configs().items():
        print(f"- {key}: {tuple(config)}")


if __name__ == "__main__":
    main()
