"""Image frontend: convolutional patchify plus a 2-D positional embedding.

`PatchEmbed` maps images (B, C, H_img, W_img) to tokens (B, H * W, dim) in row-major order
(token r * W + c is patch row r, column c) and returns the patch grid (H, W) that 2-D mixers read.
The patchify is one conv of kernel = stride = patch ("patch", ViT) or a convolutional stem ("conv",
`conv_stem`). Any resolution divisible by the patch size works: the learned positional table lives at a base grid
and is resampled bicubically to other grids (as timm's `resample_abs_pos_embed` does); the fixed
2-D sin-cos embedding is computed for whatever grid arrives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...layers.precision import compute_dtype

POS_KINDS = ("learned", "sincos")
STEM_KINDS = ("patch", "conv")


def resample_pos_embed(pos_embed: Tensor, grid: tuple[int, int]) -> Tensor:
    """Resample a learned positional table (h, w, D) to `grid` (H, W).

    Bicubic with antialiasing, in fp32, like timm's `resample_abs_pos_embed`. At the table's own
    grid the table itself is returned (exact identity, gradients flow straight through).
    """
    if tuple(pos_embed.shape[:2]) == tuple(grid):
        return pos_embed
    x = pos_embed.permute(2, 0, 1).unsqueeze(0).float()  # (1, D, h, w)
    x = F.interpolate(x, size=tuple(grid), mode="bicubic", align_corners=False, antialias=True)
    return x.squeeze(0).permute(1, 2, 0).to(pos_embed.dtype)


def sincos_pos_embed(
    grid: tuple[int, int],
    dim: int,
    temperature: float = 10000.0,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Fixed 2-D sin-cos embedding (H * W, dim), rows in row-major order.

    The first half of the channels encodes the patch row (sin then cos), the second half the
    column, each over dim / 4 geometric frequencies (the MAE / ViT 2-D recipe); dim % 4 == 0.
    """
    if dim % 4 != 0:
        raise ValueError(f"sincos positional embedding needs dim divisible by 4, got dim={dim}")
    h, w = grid
    rows, cols = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    n_freq = dim // 4
    omega = temperature ** (-torch.arange(n_freq, device=device, dtype=torch.float32) / n_freq)
    y = rows.reshape(-1, 1) * omega
    x = cols.reshape(-1, 1) * omega
    return torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=1).to(dtype)


def patchify(images: Tensor, weight: Tensor, bias: Tensor | None, patch: int) -> Tensor:
    """The conv of kernel = stride = `patch` (weight (dim, C, patch, patch)) as one matmul over the flattened
    non-overlapping patches: images (B, C, H_img, W_img) -> tokens (B, H * W, dim), row-major and contiguous.

    The same sums as `F.conv2d`. cuDNN ran that conv on a generic kernel for 3-channel bf16 images; here it is a
    cast, one copy that lays the patches out as rows, and a GEMM of (B H W, C patch^2) by (C patch^2, dim): at 1024
    px, batch 64, forward+backward 1.7 ms against the conv's 15.1 on an H100 (`benchmarks/bench_patch_stem.py`).
    """
    B, C, height, width = images.shape
    H, W = height // patch, width // patch
    rows = compute_dtype(images).reshape(B, C, H, patch, W, patch).permute(0, 2, 4, 1, 3, 5)
    return F.linear(rows.reshape(B, H * W, C * patch * patch), weight.flatten(1), bias)


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(int(v) < 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_stem(in_chans: int, dim: int, patch_size: int) -> nn.Sequential:
    """The convolutional stem of Xiao et al. 2021 ("Early Convolutions Help Transformers See Better").

    log2(patch_size) 3x3 stride-2 convs, each followed by BatchNorm and ReLU, widths doubling up to `dim`
    (dim / 2^(n-1), ..., dim / 2, dim), then a 1x1 conv to `dim`: the same token grid as a patchify of
    `patch_size`, but each token sees an overlapping, deeper receptive field. Their stem uses widths
    48, 96, 192, 384 for 16-pixel patches and dim 384; for other patch sizes we keep "double to dim".
    """
    n = patch_size.bit_length() - 1
    if patch_size < 2 or 1 << n != patch_size:
        raise ValueError(f"stem='conv' needs a power-of-two patch_size >= 2, got patch_size={patch_size}")
    widths = [max(1, dim >> (n - 1 - i)) for i in range(n)]
    layers: list[nn.Module] = []
    for c_in, c_out in zip([in_chans, *widths[:-1]], widths):
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Conv2d(widths[-1], dim, 1))


class PatchEmbed(nn.Module):
    """Conv patchify + positional embedding: images -> (tokens (B, H * W, dim), grid (H, W)).

    Args:
        in_chans: channels of the input images (1 for grayscale, 3 for RGB).
        dim: token width.
        patch_size: side of the square patches: tokens form the grid (H_img / patch_size, W_img / patch_size).
        stem: "patch" (one conv, kernel = stride = patch_size: non-overlapping patches, run as `patchify`) or "conv"
            (`conv_stem`: overlapping 3x3 stride-2 convs; patch_size a power of two).
        pos: "learned" (a trainable table at the base grid, bicubically resampled to other grids) or
            "sincos" (fixed 2-D sin-cos, no parameters; needs dim divisible by 4).
        img_size: base resolution (int or (height, width)) that fixes the learned table's grid
            img_size // patch_size; must be divisible by patch_size. Unused by "sincos".

    Tokens are row-major: token r * W + c comes from patch row r, column c. Inputs of any resolution
    divisible by `patch_size` are accepted; others raise a ValueError naming the size.
    """

    def __init__(
        self,
        in_chans: int,
        dim: int,
        patch_size: int = 16,
        pos: str = "learned",
        img_size: int | tuple[int, int] = 224,
        stem: str = "patch",
    ) -> None:
        super().__init__()
        if in_chans < 1 or dim < 1 or patch_size < 1:
            raise ValueError(
                f"in_chans, dim and patch_size must be >= 1, got {in_chans}, {dim}, {patch_size}"
            )
        if pos not in POS_KINDS:
            raise ValueError(f"pos must be one of {POS_KINDS}, got {pos!r}")
        if pos == "sincos" and dim % 4 != 0:
            raise ValueError(f"pos='sincos' needs dim divisible by 4, got dim={dim}")
        if stem not in STEM_KINDS:
            raise ValueError(f"stem must be one of {STEM_KINDS}, got {stem!r}")
        self.in_chans, self.dim, self.patch_size, self.pos, self.stem = in_chans, dim, patch_size, pos, stem
        self.proj = (conv_stem(in_chans, dim, patch_size) if stem == "conv"
                     else nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size))
        self.pos_embed: nn.Parameter | None = None
        if pos == "learned":
            base = _pair(img_size, "img_size")
            if base[0] % patch_size or base[1] % patch_size:
                raise ValueError(
                    f"img_size {base[0]}x{base[1]} is not divisible by patch_size {patch_size}"
                )
            self.base_grid = (base[0] // patch_size, base[1] // patch_size)
            self.pos_embed = nn.Parameter(torch.empty(*self.base_grid, dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def grid_for(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid (H, W) of an image of this size; ValueError if not divisible by patch_size."""
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(
                f"image size {height}x{width} is not divisible by patch_size {p}; resize or crop "
                f"to a multiple of {p} (e.g. {max(p, height // p * p)}x{max(p, width // p * p)})"
            )
        return height // p, width // p

    def position(self, grid: tuple[int, int], device: torch.device, dtype: torch.dtype) -> Tensor:
        """Positional embedding (H * W, dim) for `grid`, row-major."""
        if self.pos_embed is None:
            return sincos_pos_embed(grid, self.dim, device=device, dtype=dtype)
        return resample_pos_embed(self.pos_embed, grid).reshape(-1, self.dim).to(dtype)

    def forward(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """images (B, in_chans, H_img, W_img) -> (tokens (B, H * W, dim), (H, W))."""
        if images.ndim != 4 or images.shape[1] != self.in_chans:
            raise ValueError(
                f"expected images (B, {self.in_chans}, H, W), got shape {tuple(images.shape)}"
            )
        grid = self.grid_for(images.shape[-2], images.shape[-1])
        if self.stem == "patch":
            tokens = patchify(images, self.proj.weight, self.proj.bias, self.patch_size)
        else:
            # (B, H * W, dim) row-major in memory too: the transposed view of the conv's (B, dim, H * W) output would
            # make every residual add keep its strides and every LayerNorm copy it (at 1024 px, batch 64: 76
            # copies of 0.5 ms each per training step on the H200)
            tokens = self.proj(images).flatten(2).transpose(1, 2).contiguous()
        return tokens + self.position(grid, tokens.device, tokens.dtype), grid

    def extra_repr(self) -> str:
        base = f", base_grid={self.base_grid}" if self.pos_embed is not None else ""
        return f"patch_size={self.patch_size}, stem={self.stem!r}, pos={self.pos!r}{base}"
