"""LocalMamba (Huang et al. 2024, "Visual State Space Model with Windowed Selective Scan"), LocalVim form.

    x, z   = in_proj(x_in)                                  (E = expand * D each)
    r_k    = Perm_k^-1 SSM_k(Perm_k x)                      one selective SSM per scan direction k
    y      = sum_k SCAttn(r_k * SiLU(z))                    (Fig. 3(b): spatial and channel attention)
    out    = out_proj(y)

Scan directions (Sec. 3: the local scan and the direction search space; `layers.grid`): `h`
row-major, `v` column-major, `wK` local scan (the grid cut into K x K windows, windows row-major,
tokens row-major inside each window; a border window that the grid does not fill holds fewer
tokens), each with a `_flip` (reversed) twin. Every direction is its own SSM stream (`SelectiveSSM`,
conv + scan in the direction's order). `directions` is one list for every layer, or one list per
layer (the output of the paper's direction search); the default is the released code's unsearched
LocalVim set ("h", "h_flip", "w2", "w2_flip"), and its forward half ("h", "w2") in causal mode.

Merge: the paper's SCAttn, both branches: channel gate sigmoid(W_c GELU(W_g mean_t LN(r)))
and spatial gate sigmoid(W_s [GELU(W_l LN(r_t)), GELU(W_g mean_t LN(r))]), applied to each
direction's gated output before the sum. The released code comments the spatial branch out and
shares one SCAttn between directions; we keep both branches (the paper) and share the module
(the code; the paper does not say).

1-D input (grid=None) is the 1 x L grid: windows are runs of contiguous tokens, so every
non-flipped direction reads tokens in sequence order and every flipped one in reverse; they stay
separate streams with their own parameters.

Causal: explicitly requested flipped directions are refused at build; the input must be 1-D (a
grid is refused at forward: column and window orders are not raster-causal); the SCAttn global
mean becomes the running mean over tokens <= t (our causal reading; the paper is image-only).
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.checks import require_positive
from ..layers.grid import MultiScan, grid_shape
from ..layers.pooling import masked_mean
from ..layers.split_projection import split_projection
from ..layers.ssm import dt_rank_auto
from . import Mixer, MixerAux, register_mixer

DEFAULT = ("h", "h_flip", "w2", "w2_flip")
DEFAULT_CAUSAL = ("h", "w2")


class SCAttn(nn.Module):
    """Spatial and channel attention (LocalMamba Fig. 3(b)): x * sigmoid(channel) * sigmoid(spatial)."""

    def __init__(self, channels: int, ratio: float, causal: bool):
        super().__init__()
        reduced = max(1, int(channels * ratio))
        self.causal = causal
        self.norm = nn.LayerNorm(channels)
        self.global_reduce = nn.Linear(channels, reduced)
        self.local_reduce = nn.Linear(channels, reduced)
        self.channel_select = nn.Linear(reduced, channels)
        self.spatial_select = nn.Linear(2 * reduced, 1)

    def _global_mean(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, 1, C) mean over real tokens, or (B, L, C) running mean over real tokens <= t (causal)."""
        if not self.causal:
            return masked_mean(x, padding_mask).unsqueeze(1)
        keep = torch.ones_like(x[..., :1])
        if padding_mask is not None:
            keep = (~padding_mask).unsqueeze(-1).to(x.dtype)
        return (x * keep).cumsum(1) / keep.cumsum(1).clamp_min(1.0)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        normed = self.norm(x)
        glob = F.gelu(self.global_reduce(self._global_mean(normed, padding_mask)))
        local = F.gelu(self.local_reduce(normed))
        channel = torch.sigmoid(self.channel_select(glob))
        spatial = torch.sigmoid(self.spatial_select(torch.cat([local, glob.expand_as(local)], dim=-1)))
        return x * channel * spatial


def layer_directions(directions, depth: int, layer_idx: int) -> list[str]:
    """The scan directions of layer `layer_idx`: `directions` is one list of direction names for every layer, or one
    such list per layer of the stack (`depth` of them); any other value is a one-line error saying what is expected."""
    expected = "a list of scan directions (or one list per layer)"
    if isinstance(directions, str):
        raise ValueError(f"localmamba directions must be {expected}, got the string {directions!r}: write "
                         f"[{directions!r}]")
    if not isinstance(directions, (list, tuple)):
        raise ValueError(f"localmamba directions must be {expected}, got {directions!r}")
    if directions and not isinstance(directions[0], str):
        if len(directions) != depth:
            raise ValueError(f"localmamba got {len(directions)} per-layer direction lists for depth {depth}")
        directions = directions[layer_idx]
        if not isinstance(directions, (list, tuple)):
            raise ValueError(f"localmamba directions must be {expected}, got {directions!r} for layer {layer_idx}")
    if not directions:
        raise ValueError("localmamba needs at least one scan direction")
    strange = [d for d in directions if not isinstance(d, str)]
    if strange:
        raise ValueError(f"localmamba directions must be names of scan directions, got {strange}")
    return list(directions)


@register_mixer("localmamba")
class LocalMambaMixer(Mixer):
    """LocalVim token mixer: windowed and global scan directions merged by SCAttn.

    Args:
        directions: scan directions for every layer (list of str) or per layer (list of lists, one
            per layer of the stack); default DEFAULT, or DEFAULT_CAUSAL in causal mode.
        expand: E = expand * D.  d_state, d_conv: SSM (conv per direction, in its order).
        dt_rank: rank of dt (default `dt_rank_auto(D)`, Mamba's "auto" ceil(D / 16)).
        ssm_heads: SSD (Mamba-2) form: dt and A shared within each of ssm_heads heads (must divide E);
            None: Mamba-1 per-channel form (`layers/ssm.py`).
        attn_ratio: SCAttn reduction.
    """

    causal_capable = True
    linear_time = True

    def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                 directions: list | None = None, expand: float = 2, d_state: int = 16, d_conv: int = 4,
                 dt_rank: int | None = None, attn_ratio: float = 0.125, ssm_heads: int | None = None):
        super().__init__()
        require_positive("localmamba", attn_ratio=attn_ratio)
        default = DEFAULT_CAUSAL if causal else DEFAULT
        directions = layer_directions(default if directions is None else directions, depth, layer_idx)
        flipped = [d for d in directions if d.endswith("_flip")]
        if causal and flipped:
            raise ValueError(f"causal localmamba cannot scan backwards; remove {flipped} from directions")
        self.causal = causal
        inner = int(expand * dim)
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.scans = MultiScan(inner, directions, d_state=d_state, d_conv=d_conv, heads=ssm_heads,
                               dt_rank=dt_rank_auto(dim) if dt_rank is None else dt_rank)
        self.attn = SCAttn(inner, attn_ratio, causal)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, grid=None):
        hw = grid_shape(x.shape[1], padding_mask, grid, self.causal)
        xs, z = split_projection(x, self.in_proj.weight, 2)
        readouts = self.scans(xs, padding_mask, hw)
        gate = F.silu(z)
        y = functools.reduce(torch.add, (self.attn(r * gate, padding_mask) for r in readouts))
        return self.out_proj(y), MixerAux()
