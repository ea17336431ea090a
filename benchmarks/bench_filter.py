"""Concept-filter speed on one GPU, stage by stage (InfoMamba §4.1, Eq. 7-10), side by side in one run.

Rows at the shapes InfoMamba-S meets (batch 64, L 196 / 576 / 1024, D 384, inner 768, k 100, d_c 64,
q_max 8, 16 buckets), bf16 autocast, forward and forward+backward medians (triton.testing.do_bench):

  assign+top-q  reference   `sparse_assign_reference`: softmax, entropy budget, top-k, renormalise,
                             densify, as separate PyTorch ops
  assign+top-q  triton      `infomamba.ops.concept_assign.triton`: the same in one fused kernel
  pool+scatter  dense       `pool_concepts` + `scatter_concepts`: two batched matmuls with dense R_bar
  pool+scatter  index       the previous formulation: gather / scatter_add of each token's q_max
                             kept entries (n q d values through atomics), kept here as the baseline
  filter        reference   the whole ConceptFilter with INFOMAMBA_KERNELS=reference
  filter        triton      the whole ConceptFilter, kernels on
  mixer         infomamba / mamba   one InfoMamba mixer vs one Vim-style mixer of the same width

    python benchmarks/bench_filter.py            # needs a CUDA GPU
    python benchmarks/bench_filter.py --shapes 64x4096 --k 104   # 1024 px tokens; k a multiple of 8
    python benchmarks/bench_filter.py --profile  # also a torch.profiler table of one encoder forward
"""
from __future__ import annotations

import argparse
import os

import torch
import triton
import triton.testing

from infomamba.layers.concepts import ConceptFilter, pool_concepts, scatter_concepts
from infomamba.ops.concept_assign import sparse_assign, sparse_assign_reference
from infomamba.mixers import build_mixer

SHAPES = [(64, 196), (64, 576), (64, 1024)]


def index_pool_scatter(x, weight, index, k):
    """Z = R_bar^T X and sum_i R_bar_ti z_i through each token's q_max (index, weight) pairs
    (gather / scatter_add)."""
    B, L, D = x.shape
    q_max = index.shape[-1]
    contrib = (weight.unsqueeze(-1) * x.unsqueeze(2)).reshape(B, L * q_max, D)
    flat = index.reshape(B, L * q_max)
    num = contrib.new_zeros(B, k, D).scatter_add_(1, flat.unsqueeze(-1).expand(-1, -1, D), contrib)
    mass = weight.new_zeros(B, k).scatter_add_(1, flat, weight.reshape(B, -1))
    Z = num / mass.clamp_min(1e-6).unsqueeze(-1)
    gathered = Z.gather(1, flat.unsqueeze(-1).expand(-1, -1, D)).view(B, L, q_max, D)
    return (weight.unsqueeze(-1) * gathered).sum(2)


def dense_pool_scatter(x, R_bar):
    Z, _ = pool_concepts(x, R_bar, None, None)
    return scatter_concepts(Z, R_bar, None)


def measure(fn, leaves, reps_ms):
    """(fwd ms, fwd+bwd ms) of fn() under bf16 autocast; backward of the sum of its outputs."""
    def fwd():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return fn()

    def fwdbwd():
        out = fwd()
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.float().sum() for o in outs).backward()

    kwargs = dict(warmup=max(5, reps_ms // 4), rep=reps_ms, return_mode="median")
    with torch.no_grad():
        t_fwd = triton.testing.do_bench(fwd, **kwargs)
    return t_fwd, triton.testing.do_bench(fwdbwd, grad_to_none=leaves, **kwargs)


def with_kernels(enabled: bool, fn):
    def run():
        previous = os.environ.get("INFOMAMBA_KERNELS")
        os.environ["INFOMAMBA_KERNELS"] = "" if enabled else "reference"
        try:
            return fn()
        finally:
            os.environ["INFOMAMBA_KERNELS"] = previous or ""
    return run


def profile_encoder(batch: int, length: int, dim: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    from infomamba.config import EncoderConfig
    from infomamba.encoder import Encoder

    for mixer in ("infomamba", "mamba"):
        enc = Encoder(EncoderConfig(dim=dim, depth=12, mixer=mixer)).cuda().eval()
        x = torch.randn(batch, length, dim, device="cuda")
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            for _ in range(3):
                enc(x)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                enc(x)
                torch.cuda.synchronize()
        print(f"\n### torch.profiler, {mixer} encoder forward (B{batch}, L{length}, dim {dim}, depth 12, bf16)\n")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--q-max", type=int, default=8)
    parser.add_argument("--reps-ms", type=int, default=100)
    parser.add_argument("--shapes", nargs="+", default=[f"{b}x{n}" for b, n in SHAPES], metavar="BxL")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_filter.py needs a CUDA GPU")
    props = torch.cuda.get_device_properties(0)
    print(f"device: {props.name}; torch {torch.__version__}, triton {triton.__version__}; dim {args.dim}, "
          f"inner {2 * args.dim}, k {args.k}, q_max {args.q_max}, bf16 autocast\n")
    print("| batch | L | stage | impl | fwd ms | fwd+bwd ms |")
    print("|---|---|---|---|---|---|")
    for batch, length in (tuple(int(v) for v in shape.split("x")) for shape in args.shapes):
        torch.manual_seed(0)
        dev = dict(device="cuda")
        x = torch.randn(batch, length, args.dim, **dev, requires_grad=True)
        logits = torch.randn(batch, length, args.k, **dev, requires_grad=True)
        candidate = (torch.rand(batch, length, args.k, **dev) < 0.2).float()
        _, R_bar = sparse_assign_reference(logits.detach(), candidate, args.q_max)
        weight, index = R_bar.topk(args.q_max, dim=-1)
        R_bar.requires_grad_()
        weight.requires_grad_()
        filt = ConceptFilter(args.dim, 2 * args.dim, k_max=args.k, q_max=args.q_max).cuda()
        mixers = {name: build_mixer(name, args.dim).cuda() for name in ("infomamba", "mamba")}
        rows = [
            ("assign+top-q", "reference", lambda: sparse_assign_reference(logits, candidate, args.q_max), [logits]),
            ("assign+top-q", "triton", with_kernels(True, lambda: sparse_assign(logits, candidate, args.q_max)),
             [logits]),
            ("pool+scatter", "dense", lambda: dense_pool_scatter(x, R_bar), [x, R_bar]),
            ("pool+scatter", "index", lambda: index_pool_scatter(x, weight, index, args.k), [x, weight]),
            ("filter", "reference", with_kernels(False, lambda: filt(x)[0]), [x]),
            ("filter", "triton", with_kernels(True, lambda: filt(x)[0]), [x]),
            ("mixer", "infomamba", lambda: mixers["infomamba"](x)[0], [x]),
            ("mixer", "mamba", lambda: mixers["mamba"](x)[0], [x]),
        ]
        for stage, impl, fn, leaves in rows:
            try:
                fwd, fwdbwd = measure(fn, leaves, args.reps_ms)
                cells = f"{fwd:.3f} | {fwdbwd:.3f}"
            except Exception as e:  # a missing kernel or OOM is reported in its row, the others still run
                cells = f"error: {type(e).__name__}: {str(e).splitlines()[0][:120]} |"
            print(f"| {batch} | {length} | {stage} | {impl} | {cells} |", flush=True)
        del x, logits, candidate, R_bar, weight, index, filt, mixers
        torch.cuda.empty_cache()
    if args.profile:
        profile_encoder(64, 196, args.dim)


if __name__ == "__main__":
    main()
