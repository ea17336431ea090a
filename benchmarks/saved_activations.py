"""Activation memory of training, device-independent: bytes that autograd keeps for backward per token and
layer, per mixer, counted with `torch.autograd.graph.saved_tensors_hooks` over one bf16-autocast forward of
one encoder block (distinct storages whose leading dim is the batch or batch x length; weights excluded),
and the implied total at a given batch x tokens x depth (counted at that many tokens: the filter's
(B, k, D) concept tensors do not grow with length). On the H200 the measured training peak of the
size-matched attention at 1024 px batch 64 (58.9 GiB, docs/benchmarks.md) is within 2.5% of this count
(60.3 GiB), so the count predicts which mixer fits before a GPU is at hand. The forward runs on fake
tensors (FakeTensorMode: shapes and dtypes, no data, no kernel launched) with INFOMAMBA_KERNELS=triton,
so the custom ops' fake implementations stand in for the kernels and the saves are the GPU path's.

    python benchmarks/saved_activations.py --mixers infomamba attention mamba --tokens 4096 --batch 64
    python benchmarks/saved_activations.py --mixers 'infomamba{ssm_heads: 12}' --by-tensor   # each kept tensor
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import NamedTuple

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_count import source_site  # noqa: E402  (benchmarks/ is a folder of scripts)

from infomamba import Encoder, EncoderConfig  # noqa: E402
from infomamba.bench import parse_mixer_entry  # noqa: E402
from infomamba.summary import SIZE_MATCHED, size_matched_options  # noqa: E402


class Saved(NamedTuple):
    """One storage autograd keeps: its bytes, the shape and dtype of its first saved view, and the infomamba
    source line that saved it first ("autograd" for a save from inside the engine; saved-tensor hooks such as
    `layers/recompute.py`'s are skipped)."""
    nbytes: int
    shape: tuple[int, ...]
    dtype: torch.dtype
    where: str


PROBE_BATCH = 2  # samples of the counted forward: the batch dim tells activations from weights


def saved_storages(mixer: str, dim: int, options: dict, batch: int = PROBE_BATCH, length: int = 256) -> list[Saved]:
    """The distinct activation storages one encoder block's forward keeps for backward."""
    enc = Encoder(EncoderConfig(dim=dim, depth=1, mixer=mixer, mixer_options=options))
    seen: dict[int, Saved] = {}

    def pack(t):
        if t.dim() >= 2 and t.shape[0] in (batch, batch * length):
            storage = t.untyped_storage()
            if storage._cdata not in seen:  # the site less the pack hooks that pass a save on
                seen[storage._cdata] = Saved(storage.nbytes(), tuple(t.shape), t.dtype, source_site(skip=("pack",)))
        return t

    with FakeTensorMode(allow_non_fake_inputs=True):
        x = torch.randn(batch, length, dim, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
                torch.autocast("cpu", dtype=torch.bfloat16):
            enc(x)
    return list(seen.values())


def saved_bytes_per_token(mixer: str, dim: int, options: dict, batch: int = PROBE_BATCH, length: int = 256) -> float:
    return sum(s.nbytes for s in saved_storages(mixer, dim, options, batch, length)) / (batch * length)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixers", nargs="+", default=["infomamba", "attention", "mamba"],
                   help="mixer names or NAME{yaml} entries, as `infomamba bench --mixers`")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--tokens", type=int, default=4096, help="tokens a sample in the projection (1024 px: 4096)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size-matched", default=str(SIZE_MATCHED))
    p.add_argument("--by-tensor", action="store_true", help="also list each kept storage, largest first")
    args = p.parse_args(argv)
    os.environ["INFOMAMBA_KERNELS"] = "triton"
    matched = size_matched_options(args.size_matched, args.dim, args.depth)
    print(f"| mixer | saved bytes / token / layer | activations at batch {args.batch} x {args.tokens} tokens "
          f"x {args.depth} layers (GiB) |\n|---|---|---|")
    listings = []
    for label, name, options in map(parse_mixer_entry, args.mixers):
        kept = saved_storages(name, args.dim, {**matched.get(name, {}), **options}, length=args.tokens)
        per_token = sum(s.nbytes for s in kept) / (PROBE_BATCH * args.tokens)
        total = per_token * args.batch * args.tokens * args.depth / 2**30
        print(f"| {label} | {per_token:,.0f} | {total:.1f} |", flush=True)
        listings.append((label, kept))
    for label, kept in listings if args.by_tensor else ():
        print(f"\n{label}, one block at batch {PROBE_BATCH} x {args.tokens} tokens:\n\n| bytes / token | shape | dtype "
              "| saved at |\n|---|---|---|---|")
        for s in sorted(kept, key=lambda s: -s.nbytes):
            dtype = str(s.dtype).removeprefix("torch.")
            print(f"| {s.nbytes / (PROBE_BATCH * args.tokens):,.0f} | {tuple(s.shape)} | {dtype} | {s.where} |")


if __name__ == "__main__":
    main()
