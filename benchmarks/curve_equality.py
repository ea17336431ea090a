"""Training curves of the fused SSM path and the PyTorch reference path, side by side (issue: fused SSM).

Same seed, data, model and optimizer; only INFOMAMBA_KERNELS differs ("" = the Triton ops on CUDA,
"reference" = the PyTorch reference of every op, or of the op folders named by --reference-ops). Task: generated ListOps (variable lengths, so the
padding masks are exercised), a small encoder per mixer, AdamW, bf16 autocast on CUDA. Prints the loss
of both paths every 20 steps and the largest difference; writes <out>/curve_equality_<dtype>.csv, .png.

    python benchmarks/curve_equality.py --mixers infomamba mamba --steps 200 --out docs
    python benchmarks/curve_equality.py --mixers 'infomamba{ssm_heads: 4}' --steps 200   # the SSD form
"""
from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import torch
import torch.nn as nn

from infomamba import Encoder, EncoderConfig
from infomamba.bench import parse_mixer_entry
from infomamba.layers.pooling import masked_mean
from infomamba.tasks.text.listops import NUM_CLASSES, VOCABULARY, generate_listops


def batches(n_steps: int, batch: int, device, seed: int = 0):
    """Fixed list of (tokens, padding_mask, labels) batches, ids 1.. for the vocabulary, 0 = padding."""
    ids = {tok: i + 1 for i, tok in enumerate(VOCABULARY)}
    data = generate_listops(n_steps * batch, max_length=160, seed=seed)
    out = []
    for s in range(n_steps):
        chunk = data[s * batch:(s + 1) * batch]
        seqs = [[ids[t] for t in text.split()] for text, _ in chunk]
        length = max(map(len, seqs))
        tokens = torch.zeros(batch, length, dtype=torch.long)
        for i, seq in enumerate(seqs):
            tokens[i, :len(seq)] = torch.tensor(seq)
        labels = torch.tensor([label for _, label in chunk])
        out.append((tokens.to(device), (tokens == 0).to(device), labels.to(device)))
    return out


class Classifier(nn.Module):
    def __init__(self, mixer: str, dim: int, depth: int):
        super().__init__()
        _, name, options = parse_mixer_entry(mixer)
        self.embed = nn.Embedding(len(VOCABULARY) + 1, dim)
        self.encoder = Encoder(EncoderConfig(dim=dim, depth=depth, mixer=name, mixer_options=options))
        self.head = nn.Linear(dim, NUM_CLASSES)

    def forward(self, tokens, padding_mask):
        out = self.encoder(self.embed(tokens), padding_mask)
        return self.head(masked_mean(out.hidden, padding_mask))


def curve(mixer: str, kernels: str, data, args, device) -> list[float]:
    os.environ["INFOMAMBA_KERNELS"] = kernels
    torch.manual_seed(0)
    model = Classifier(mixer, args.dim, args.depth).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    losses = []
    for tokens, mask, labels in data:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and args.dtype == "bf16"):
            loss = nn.functional.cross_entropy(model(tokens, mask), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixers", nargs="+", default=["infomamba", "mamba"],
                   help="mixer names, or NAME{yaml} with mixer options, e.g. 'infomamba{ssm_heads: 4}'")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--reference-ops", nargs="*", default=None,
                   help="op folders to swap for their reference (default: all), e.g. ssm_inner")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="autocast dtype on CUDA")
    p.add_argument("--out", default="runs/curve_equality")
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = batches(args.steps, args.batch, device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for mixer in args.mixers:
        swap = "reference" + (":" + ",".join(args.reference_ops) if args.reference_ops else "")
        fused, reference = curve(mixer, "", data, args, device), curve(mixer, swap, data, args, device)
        curves[mixer] = fused, reference
        diffs = [abs(a - b) for a, b in zip(fused, reference)]
        for step in range(0, args.steps, 20):
            print(f"{mixer} step {step}: fused {fused[step]:.4f} reference {reference[step]:.4f}", flush=True)
        print(f"{mixer}: final loss fused {fused[-1]:.4f} reference {reference[-1]:.4f}; max |diff| "
              f"{max(diffs):.4f} (step {diffs.index(max(diffs))}), mean |diff| {sum(diffs) / len(diffs):.4f}",
              flush=True)
        rows += [{"mixer": mixer, "step": s, "fused": a, "reference": b} for s, (a, b) in enumerate(zip(fused, reference))]
    stem = f"curve_equality_{args.dtype}" + ("_" + "_".join(args.reference_ops) if args.reference_ops else "")
    with open(out / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["mixer", "step", "fused", "reference"])
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5), squeeze=False)
    for ax, (mixer, (fused, reference)) in zip(axes[0], curves.items()):
        ax.plot(fused, label="fused Triton op")
        ax.plot(reference, label="PyTorch reference", linestyle="--")
        ax.set_title(f"{mixer}: ListOps training loss ({args.dtype})")
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=110)


if __name__ == "__main__":
    main()
