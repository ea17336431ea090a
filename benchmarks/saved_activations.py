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
"""
from __future__ import annotations

import argparse
import os

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from infomamba import Encoder, EncoderConfig
from infomamba.summary import size_matched_options


def saved_bytes_per_token(mixer: str, dim: int, options: dict, batch: int = 2, length: int = 256) -> float:
    enc = Encoder(EncoderConfig(dim=dim, depth=1, mixer=mixer, mixer_options=options))
    seen: dict[int, int] = {}

    def pack(t):
        if t.dim() >= 2 and t.shape[0] in (batch, batch * length):
            storage = t.untyped_storage()
            seen.setdefault(storage._cdata, storage.nbytes())
        return t

    with FakeTensorMode(allow_non_fake_inputs=True):
        x = torch.randn(batch, length, dim, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
                torch.autocast("cpu", dtype=torch.bfloat16):
            enc(x)
    return sum(seen.values()) / (batch * length)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixers", nargs="+", default=["infomamba", "attention", "mamba"])
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--tokens", type=int, default=4096, help="tokens a sample in the projection (1024 px: 4096)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size-matched", default="configs/size_matched.yaml")
    args = p.parse_args(argv)
    os.environ["INFOMAMBA_KERNELS"] = "triton"
    matched = size_matched_options(args.size_matched, args.dim, args.depth)
    print(f"| mixer | saved bytes / token / layer | activations at batch {args.batch} x {args.tokens} tokens "
          f"x {args.depth} layers (GiB) |\n|---|---|---|")
    for mixer in args.mixers:
        per_token = saved_bytes_per_token(mixer, args.dim, matched.get(mixer, {}), length=args.tokens)
        total = per_token * args.batch * args.tokens * args.depth / 2**30
        print(f"| {mixer} | {per_token:,.0f} | {total:.1f} |", flush=True)


if __name__ == "__main__":
    main()
