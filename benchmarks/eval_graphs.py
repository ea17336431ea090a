"""Evaluation with `model.cuda_graphs` against eager evaluation: the image task's model (patch stem, encoder, head;
`ImageClassifier`) in eval mode under `torch.inference_mode` and bf16 autocast, as a validation step runs it, and
inside `predicting()` as `infomamba predict` runs it; images a second, the first calls (captures) left out, and the
largest difference between the two paths' logits. Each mixer with the size-matched options of `--dim`/`--depth`.

    python benchmarks/eval_graphs.py --mixers 'infomamba{ssm_heads: 12}' attention --resolutions 224 512
"""
from __future__ import annotations

import argparse
import contextlib
import time

import torch

from infomamba.bench import parse_mixer_entry
from infomamba.config import EncoderConfig
from infomamba.summary import SIZE_MATCHED, size_matched_options
from infomamba.tasks.image.module import ImageClassifier


@contextlib.contextmanager
def evaluating(model: ImageClassifier, predicting: bool):
    """Inference mode, and with `predicting` the task's `predicting()` (the mixers' loss-only terms left out)."""
    with torch.inference_mode(), model.predicting() if predicting else contextlib.nullcontext():
        yield


def images_per_second(model, images: torch.Tensor, predicting: bool, repeats: int) -> tuple[float, torch.Tensor]:
    """(images a second over `repeats` calls after three, the last call's logits) of `model(images)` (`evaluating`)."""
    with evaluating(model, predicting), torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(3):
            model(images)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            logits = model(images)[0]
        torch.cuda.synchronize()
    return repeats * images.shape[0] / (time.perf_counter() - start), logits.float()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixers", nargs="+", default=["infomamba{ssm_heads: 12}", "attention"])
    p.add_argument("--resolutions", nargs="+", type=int, default=[224])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("eval_graphs.py: CUDA graphs need a CUDA device")
    matched = size_matched_options(SIZE_MATCHED, args.dim, args.depth)
    print("| model | px | run as | eager img/s | cuda_graphs img/s | speed-up | max abs logit diff |\n"
          "|---|---|---|---|---|---|---|", flush=True)
    for entry in args.mixers:
        label, mixer, options = parse_mixer_entry(entry)
        for px in args.resolutions:
            encoder = EncoderConfig(dim=args.dim, depth=args.depth, mixer=mixer,
                                    mixer_options={**matched.get(mixer, {}), **options})
            torch.manual_seed(0)
            eager = ImageClassifier(num_classes=1000, encoder=encoder, image_size=px).cuda().eval()
            graphed = ImageClassifier(num_classes=1000, encoder=encoder, image_size=px, cuda_graphs=True).cuda().eval()
            graphed.load_state_dict(eager.state_dict())
            images = torch.randn(args.batch, 3, px, px, device="cuda")
            for run_as, predicting in (("validation", False), ("prediction", True)):
                plain, plain_logits = images_per_second(eager, images, predicting, args.repeats)
                fast, fast_logits = images_per_second(graphed, images, predicting, args.repeats)
                print(f"| {label} | {px} | {run_as} | {plain:,.0f} | {fast:,.0f} | {fast / plain:.2f}x | "
                      f"{(fast_logits - plain_logits).abs().max().item():.2e} |", flush=True)


if __name__ == "__main__":
    main()
