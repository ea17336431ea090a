"""Batch-level image augmentation on normalised float images: random erasing (Zhong et al. 2020)."""
from __future__ import annotations

import math

import torch

# Random erasing, timm's defaults: erased share of the image area, aspect-ratio range (sampled
# log-uniformly) and tries at a rectangle that fits before a sample is left as it is.
ERASE_AREA = (0.02, 1 / 3)
ERASE_ASPECT = (0.3, 1 / 0.3)
ERASE_ATTEMPTS = 10


def random_erase(images: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A copy of normalised images (B, C, H, W) where each sample, with probability p, has one
    rectangle replaced by per-pixel standard-normal noise (timm's RandomErasing, "pixel" mode).

    The rectangle covers a share of the area drawn from ERASE_AREA with an aspect ratio drawn
    log-uniformly from ERASE_ASPECT, at a uniform position; of ERASE_ATTEMPTS draws the first that fits
    strictly inside the image is used, and a sample with none is left as it is. The same rectangle spans
    every channel; the noise differs per channel. This runs after normalisation, as in timm, so the noise
    has the data's scale (a constant or noise on uint8 pixels would not). Random draws come from
    `generator`, else the global RNG (which the DataLoader seeds per worker).
    """
    n, channels, height, width = images.shape
    device = images.device

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator, device=device)

    area = uniform(*ERASE_AREA, n, ERASE_ATTEMPTS) * (height * width)
    aspect = uniform(math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1]), n, ERASE_ATTEMPTS).exp()
    h, w = (area * aspect).sqrt().round().long(), (area / aspect).sqrt().round().long()
    fits = (h < height) & (w < width)
    first = fits.long().argmax(1, keepdim=True)
    h, w = h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1)
    erase = (torch.rand(n, generator=generator, device=device) < p) & fits.any(1)
    top = (uniform(0, 1, n) * (height - h + 1)).long().clamp(max=height - h)
    left = (uniform(0, 1, n) * (width - w + 1)).long().clamp(max=width - w)
    erased = images.clone()
    boxes = torch.stack([erase.nonzero().squeeze(1), top[erase], left[erase], h[erase], w[erase]], 1)
    for i, y, x, dy, dx in boxes.tolist():
        noise = torch.randn(channels, dy, dx, generator=generator, device=device, dtype=images.dtype)
        erased[i, :, y:y + dy, x:x + dx] = noise
    return erased
