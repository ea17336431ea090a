"""CPU forward time of the encoder at L and 4L (linear growth check), one row per mixer.

    python benchmarks/encoder_cpu_scaling.py --length 1024 --mixers infomamba attention
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from infomamba import Encoder, EncoderConfig


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--mixers", nargs="+", default=["infomamba", "attention"])
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dim {args.dim}, depth {args.depth}, "
          f"batch {args.batch}, causal {args.causal}")
    print("| mixer | L | ms (median) | 4L | ms (median) | ratio 4L/L |")
    print("|---|---|---|---|---|---|")
    for mixer in args.mixers:
        enc = Encoder(EncoderConfig(dim=args.dim, depth=args.depth, mixer=mixer, causal=args.causal)).eval()
        row = []
        for length in (args.length, 4 * args.length):
            x = torch.randn(args.batch, length, args.dim)
            with torch.no_grad():
                row.append(median_ms(lambda: enc(x), args.repeats))
        print(f"| {mixer} | {args.length} | {row[0]:.1f} | {4 * args.length} | {row[1]:.1f} | {row[1] / row[0]:.2f} |")


if __name__ == "__main__":
    main()
