"""Tokens on an (H, W) grid: the grid a mixer reads, scan orders over it, and a depthwise conv on it.

A 1-D sequence is the 1 x L grid. Scan directions (LocalMamba Sec. 3, VMamba's cross-scan):
`h` row-major, `v` column-major, `wK` local scan (the grid cut into K x K windows, windows
row-major, tokens row-major inside each window; a border window that the grid does not fill holds
fewer tokens), each with a `_flip` (reversed) twin. On the 1 x L grid every order is the sequence
order (flipped ones its reverse).
"""
from __future__ import annotations

import numbers
import re
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

from .pooling import zero_padding
from .ssm import SelectiveSSM

_DIRECTION = re.compile(r"^(h|v|w[1-9][0-9]*)(_flip)?$")


def is_size(side) -> bool:
    """An integer (a symbolic one under torch.compile's dynamic shapes too, left unspecialised), not a bool."""
    return isinstance(side, (numbers.Integral, torch.SymInt)) and not isinstance(side, bool)


def check_grid(grid, length: int) -> tuple[int, int]:
    """(H, W) of `grid`, or a ValueError unless it is a pair of positive integers with H * W = length (a float side
    had been truncated, a negative pair had passed for its product, and a mixer had met a wrong product as a reshape
    error or not at all)."""
    H, W = tuple(grid) if isinstance(grid, (tuple, list)) and len(grid) == 2 else (0, 0)
    if not (is_size(H) and is_size(W)) or H < 1 or W < 1 or H * W != length:
        raise ValueError(f"grid {grid!r} is not an (H, W) pair covering the {length} tokens (H, W positive integers, "
                         "H * W = L)")
    return H, W


def grid_shape(length: int, padding_mask: torch.Tensor | None, grid, causal: bool) -> tuple[int, int]:
    """(H, W) the tokens lie on: the grid (`check_grid`), or 1 x L for a 1-D sequence.

    Raises where a 2-D mixer cannot honour the contract: padding on a grid (images have none) and
    causal mode on a grid (a 2-D neighbourhood is not raster-causal).
    """
    if grid is None:
        return 1, length
    hw = check_grid(grid, length)
    if causal:
        raise ValueError(f"causal mode reads 1-D sequences only; got grid {hw}")
    if padding_mask is not None:
        raise ValueError(f"a grid {hw} comes with no padding_mask (images have no padding)")
    return hw


def check_direction(direction: str) -> None:
    if not _DIRECTION.match(direction):
        raise ValueError(f"unknown scan direction {direction!r}: expected h, v or wK (window K >= 1), "
                         f"optionally with '_flip'")


def route_place(direction: str, hw: tuple[int, int], device: torch.device | str) -> torch.Tensor | None:
    """Where each token (row-major) comes in the order `direction` reads them (flip aside), on `device`; None for
    the row-major order itself (always the case on a 1 x L grid). Kept from call to call (`_kept_place`), except
    while torch.compile traces (made in its graph: elementwise, of static shape) and while a CUDA graph is captured
    (whose kernels only run when it is replayed: a kept place would hold no values)."""
    base = direction.removesuffix("_flip")
    H, W = hw
    if base == "h" or H == 1:
        return None
    if torch.compiler.is_compiling() or _capturing(device):
        return _place(base, H, W, device)
    return _kept_place(base, H, W, device)


def _capturing(device: torch.device | str) -> bool:
    return torch.device(device).type == "cuda" and torch.cuda.is_current_stream_capturing()


@lru_cache(maxsize=256)
def _kept_place(base: str, H: int, W: int, device: torch.device | str) -> torch.Tensor:
    """`_place`, made outside inference mode: an inference tensor, made by a first call under
    `torch.inference_mode`, could not be saved for the backward of a later training step."""
    with torch.inference_mode(False):
        return _place(base, H, W, device)


def _place(base: str, H: int, W: int, device: torch.device | str) -> torch.Tensor:
    """The "v" or "w<k>" route's place of token (r, c) in closed form: column-major, or window by window (windows
    row-major, border windows holding fewer tokens, h x w of them) and row-major within a window. Elementwise, so
    that torch.compile traces it without a graph break (a route cut out of a padded grid by a mask broke it)."""
    r = torch.arange(H, device=device).view(H, 1)
    c = torch.arange(W, device=device).view(1, W)
    if base == "v":
        return (c * H + r).reshape(-1)
    k = int(base[1:])
    h = (H - r // k * k).clamp(max=k)
    w = (W - c // k * k).clamp(max=k)
    return (r // k * k * W + h * (c // k * k) + r % k * w + c % k).reshape(-1)


class MultiScan(nn.Module):
    """One `SelectiveSSM` per scan direction; returns each direction's readout in row-major order.

    LocalMamba's multi-direction scan, and VMamba's cross-scan / cross-merge (directions h, h_flip,
    v, v_flip). `ssm_options` go to every `SelectiveSSM` (dt_rank among them).
    """

    def __init__(self, inner: int, directions, **ssm_options):
        super().__init__()
        for direction in directions:
            check_direction(direction)
        self.directions = tuple(directions)
        self.ssms = nn.ModuleList(SelectiveSSM(inner, reverse=d.endswith("_flip"), **ssm_options)
                                  for d in self.directions)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None, hw: tuple[int, int]) -> list[torch.Tensor]:
        outs = []
        for direction, ssm in zip(self.directions, self.ssms):
            place = route_place(direction, hw, x.device)
            if place is None:
                outs.append(ssm(x, padding_mask))
                continue
            # a permuted order only exists on a real grid, where grid_shape has refused padding
            routed = torch.empty_like(x).index_copy(1, place, x)
            outs.append(ssm(routed).index_select(1, place))
        return outs


class GridConv(nn.Module):
    """Depthwise conv over tokens on an (H, W) grid (1 x L for a sequence), zero padding.

    'same' padding (PyTorch's convention for even sizes: the extra tap on the right), or causal:
    on the 1 x L grid output t reads taps t - kw + 1 .. t only. Padded tokens are zeroed first.
    """

    def __init__(self, channels: int, kernel: tuple[int, int], causal: bool = False):
        super().__init__()
        kh, kw = kernel
        top, left = (kh - 1) // 2, (kw - 1) // 2
        self.pad = (kw - 1, 0, top, kh - 1 - top) if causal else (left, kw - 1 - left, top, kh - 1 - top)
        self.conv = nn.Conv2d(channels, channels, kernel, groups=channels)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None, hw: tuple[int, int]) -> torch.Tensor:
        B, L, C = x.shape
        x = zero_padding(x, padding_mask).transpose(1, 2).reshape(B, C, *hw)
        return self.conv(F.pad(x, self.pad)).reshape(B, C, L).transpose(1, 2)
