"""The modality-agnostic encoder: a stack of pre-norm blocks around any registered token mixer.

    x = x + DropPath(Dropout(mixer(norm1(x), padding_mask, grid)))
    x = x + DropPath(MLP(norm2(x)))

Embedding-free: tasks bring their own frontend (token embedding, patch embedding, conv subsampling)
and pass (B, L, D) tokens, a padding mask (True at padding) and, for images, the (H, W) grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .config import EncoderConfig
from .layers.grid import check_grid
from .layers.pooling import zero_padding
from .layers.precision import compute_dtype
from .mixers import Mixer, MixerAux, build_mixer, contract_output


@dataclass
class EncoderOutput:
    """hidden: (B, L, D), zero at padding; aux: one `MixerAux` per block from its mixer (pooled
    streams, MI-hash, k_eff), read by `infomamba.losses`."""
    hidden: torch.Tensor
    padding_mask: torch.Tensor | None
    aux: list[MixerAux] = field(default_factory=list)


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability p (training only)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)


def make_norm(kind: str, dim: int) -> nn.Module:
    return nn.RMSNorm(dim) if kind == "rmsnorm" else nn.LayerNorm(dim)


class Block(nn.Module):
    """norm -> mixer -> residual -> norm -> MLP -> residual."""

    def __init__(self, config: EncoderConfig, layer_idx: int):
        super().__init__()
        dim = config.dim
        self.norm1 = make_norm(config.norm, dim)
        self.mixer = build_mixer(config.mixer, dim, causal=config.causal, layer_idx=layer_idx,
                                 depth=config.depth, **config.mixer_options)
        self.norm2 = make_norm(config.norm, dim)
        hidden = int(dim * config.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(config.dropout),
                                 nn.Linear(hidden, dim))
        self.dropout = nn.Dropout(config.dropout)
        rate = config.drop_path * layer_idx / max(config.depth - 1, 1)
        self.drop_path = DropPath(rate)

    def forward(self, x, padding_mask=None, grid=None):
        normed = compute_dtype(self.norm1(x))
        y, aux = contract_output(self.mixer(normed, padding_mask, grid), normed, self.mixer)
        x = x + self.drop_path(self.dropout(y))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return zero_padding(x, padding_mask), aux


class PlainStack(nn.Module):
    """Blocks applied in order."""

    def __init__(self, blocks: nn.ModuleList):
        super().__init__()
        self.blocks = blocks

    def forward(self, x, padding_mask=None, grid=None):
        auxes = []
        for block in self.blocks:
            x, aux = block(x, padding_mask, grid)
            auxes.append(aux)
        return x, auxes


class Encoder(nn.Module):
    """`Encoder(EncoderConfig(...))(x, padding_mask=None, grid=None) -> EncoderOutput`.

    grid: (H, W) of image tokens in row-major order; None reads them as a 1 x L row, which the 2-D mixers (vmamba,
    localmamba, vmisa) then scan as a sequence: pass it for images."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        config.validate()
        self.config = config
        blocks = nn.ModuleList(Block(config, i) for i in range(config.depth))
        if config.cross_layer == "sparx":
            from .cross_layer import SPARX_OPTIONS, SparXStack
            unknown = sorted(set(config.cross_layer_options) - set(SPARX_OPTIONS))
            if unknown:
                raise ValueError(f"encoder.cross_layer_options got unknown option(s) {unknown}; accepted: "
                                 f"{list(SPARX_OPTIONS)}")
            self.stack = SparXStack(blocks, config.dim, **{"causal": config.causal, **config.cross_layer_options})
        else:
            self.stack = PlainStack(blocks)
        self.norm = make_norm(config.norm, config.dim)

    def longest_sequence(self) -> int | None:
        """The longest sequence every mixer accepts (`Mixer.max_len`), None where none has a limit."""
        return min((m.max_len for m in self.modules() if isinstance(m, Mixer) and m.max_len is not None), default=None)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                grid: tuple[int, int] | None = None) -> EncoderOutput:
        if x.dim() != 3 or x.shape[-1] != self.config.dim:
            raise ValueError(f"Encoder expects x of shape (B, L, {self.config.dim}), got {tuple(x.shape)}")
        if padding_mask is not None and (padding_mask.shape != x.shape[:2] or padding_mask.dtype != torch.bool):
            raise ValueError(f"padding_mask must be bool of shape {tuple(x.shape[:2])}, "
                             f"got {padding_mask.dtype} {tuple(padding_mask.shape)}")
        if grid is not None:
            grid = check_grid(grid, x.shape[1])
        x = zero_padding(x, padding_mask)
        x, aux = self.stack(x, padding_mask, grid)
        return EncoderOutput(zero_padding(self.norm(x), padding_mask), padding_mask, aux)
