"""Attention kernels w_t(ℓ) and diagonal mass of every softmax-attention layer, captured on real inputs.

The objects of paper §3.2 (H1: the causal kernel w_t(ℓ) of query t on key t - ℓ over a horizon of K lags)
and §5.5 (diagonal mass: "attention is unstructured (low diagonal mass)"). Every
`infomamba.layers.attention.SelfAttention` of a model is hooked: the `attention` mixer is one, and so are
MambaVision's attention layers. The hook recomputes the weights from the layer's own projection,

    P = softmax(Q K^T / sqrt(d_head) + mask),   [Q, K, V] = qkv(x)

with the layer's masks (padded keys, and future keys when it is causal), exactly what the layer's
`scaled_dot_product_attention` applies to V. Only some query rows are computed (`max_queries` per
sequence, evenly spaced over its real tokens), so the cost is O(B H q L), never an L x L map per layer.

Readings where the paper leaves a gap:
- Horizon. w_t is taken for queries whose K keys t, t - 1, .., t - K + 1 are all real tokens (t >= K - 1
  with right padding): a kernel cut short by the sequence start would be zero-padded, and an
  exponential mixture cannot fit that artificial cliff. Sequences shorter than K give no kernel.
- Non-causal layers (classification, vision: the paper's R2 regime) spread weight on later keys too.
  The reported kernel is the causal half (the paper's w_t); `directions=("past", "future")` also
  collects the anti-causal half w_t^-(ℓ) = P[t, t + ℓ] (what a reverse scan would have to fit). Since
  ε_exp is normalised per kernel, the share of the row the horizon holds is reported apart, as
  `horizon_mass` (mean Σ_ℓ w_t(ℓ)).
- Diagonal mass: the mean over real queries of P[t, t] (the weight a query puts on its own key), per
  head, over the same sampled query rows (in a causal layer the first queries have few keys, so a
  short sequence raises it; query 0 always puts 1 on itself).
- Images: ℓ counts tokens in the order the encoder sees them (row-major over the patch grid), the
  order of a 1-D scan; a 2-D kernel is not fitted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..layers.attention import SelfAttention
from .hooks import HookRecorder, layer_index

DIRECTIONS = ("past", "future")


def attention_rows(layer: SelfAttention, x: torch.Tensor, padding_mask: torch.Tensor | None,
                   queries: torch.Tensor) -> torch.Tensor:
    """Softmax weights of the query rows `queries` (B, q) (indices into L) -> (B, H, q, L), float32.

    Recomputed from the layer's `qkv` as its forward computes them: padded keys and, for a causal
    layer, keys after the query get weight 0.
    """
    B, L, _ = x.shape
    q, k, _ = layer.qkv(x).view(B, L, 3, layer.heads, -1).float().permute(2, 0, 3, 1, 4)
    index = queries[:, None, :, None].expand(B, layer.heads, queries.shape[1], q.shape[-1])
    q = torch.gather(q, 2, index)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    allowed = torch.ones(B, 1, queries.shape[1], L, dtype=torch.bool, device=x.device)
    if padding_mask is not None:
        allowed = allowed & (~padding_mask)[:, None, None, :]
    if layer.causal:
        allowed = allowed & (torch.arange(L, device=x.device)[None, None, None, :] <= queries[:, None, :, None])
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1)


def sample_queries(real: torch.Tensor, max_queries: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to `max_queries` real positions per sequence, evenly spaced.

    real: (B, L) True at real tokens -> (queries (B, q) indices, valid (B, q) bool); rows with fewer real
    tokens repeat index 0 where `valid` is False.
    """
    B, L = real.shape
    lengths = real.sum(1)
    q = int(min(max_queries, int(lengths.max()) if B else 0))
    queries = torch.zeros(B, q, dtype=torch.long, device=real.device)
    valid = torch.zeros(B, q, dtype=torch.bool, device=real.device)
    for b in range(B):
        positions = real[b].nonzero()[:, 0]
        if positions.numel() == 0:
            continue
        picks = torch.linspace(0, positions.numel() - 1, min(q, positions.numel()), device=real.device)
        chosen = positions[picks.round().long().unique()]
        queries[b, :chosen.numel()] = chosen
        valid[b, :chosen.numel()] = True
    return queries, valid


def kernels_from_rows(rows: torch.Tensor, queries: torch.Tensor, valid: torch.Tensor, real: torch.Tensor,
                      horizon: int, direction: str = "past") -> tuple[torch.Tensor, torch.Tensor]:
    """w_t(ℓ) = P[t, t - ℓ] ("past") or P[t, t + ℓ] ("future"), ℓ = 0..K-1, of the sampled rows.

    rows: (B, H, q, L) weights, queries/valid: (B, q), real: (B, L) -> (kernels (B, H, q, K), ok (B, q)):
    ok where the query is valid and its K keys in that direction all lie on real tokens.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    B, H, q, L = rows.shape
    lags = torch.arange(horizon, device=rows.device)
    keys = queries[..., None] - lags if direction == "past" else queries[..., None] + lags   # (B, q, K)
    inside = (keys >= 0) & (keys < L)
    keys = keys.clamp(0, L - 1)
    key_real = torch.gather(real[:, None, :].expand(B, q, L), 2, keys) & inside
    ok = valid & key_real.all(-1)
    kernels = torch.gather(rows, 3, keys[:, None].expand(B, H, q, horizon))
    return kernels, ok


@dataclass
class LayerRecord:
    """What one attention layer saw: kernels per direction (n, H, K), diagonal weights (n, H)."""
    name: str
    index: int | None
    heads: int
    causal: bool
    kernels: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    diagonal: list[torch.Tensor] = field(default_factory=list)

    def stacked(self, direction: str) -> np.ndarray:
        """(n, H, K) float64 kernels of one direction (n may be 0)."""
        parts = self.kernels.get(direction, [])
        return torch.cat(parts).double().numpy() if parts else np.zeros((0, self.heads, 0))

    def diagonal_mass(self) -> np.ndarray:
        """(H,) mean weight on the query's own key over the sampled real queries."""
        if not self.diagonal:
            return np.full(self.heads, np.nan)
        return torch.cat(self.diagonal).double().mean(0).numpy()


class AttentionRecorder(HookRecorder):
    """Context manager: hooks every `SelfAttention` of `model` and records kernels and diagonal weights.

    Args:
        model: any module (a task module, an `Encoder`).
        horizon: K, the lags of each kernel.
        max_queries: query rows per sequence (evenly spaced over its real tokens).
        directions: ("past",) the causal kernel; add "future" for a non-causal layer's other half
            (ignored for causal layers, whose future weights are 0).
    """

    kind = SelfAttention

    def __init__(self, model: nn.Module, horizon: int = 32, max_queries: int = 64,
                 directions: tuple[str, ...] = ("past",)):
        if horizon < 2:
            raise ValueError(f"horizon must be >= 2 lags, got {horizon}")
        unknown = set(directions) - set(DIRECTIONS)
        if unknown:
            raise ValueError(f"unknown directions {sorted(unknown)}; choose from {DIRECTIONS}")
        super().__init__(model)
        self.horizon, self.max_queries, self.directions = horizon, max_queries, tuple(directions)
        self.records = {name: LayerRecord(name, layer_index(name), m.heads, m.causal)
                        for name, m in self.layers.items()}

    def register(self, name: str, layer: SelfAttention):
        def hook(layer: SelfAttention, args, kwargs, output) -> None:
            x = args[0] if args else kwargs["x"]
            padding_mask = args[1] if len(args) > 1 else kwargs.get("padding_mask")
            with torch.no_grad():
                self.observe(name, layer, x, padding_mask)
        return layer.register_forward_hook(hook, with_kwargs=True)

    def observe(self, name: str, layer: SelfAttention, x: torch.Tensor, padding_mask: torch.Tensor | None) -> None:
        """Record one forward of `layer` on x (B, L, D) (what the hook calls)."""
        B, L, _ = x.shape
        real = torch.ones(B, L, dtype=torch.bool, device=x.device) if padding_mask is None else ~padding_mask
        queries, valid = sample_queries(real, self.max_queries)
        if queries.shape[1] == 0:
            return
        rows = attention_rows(layer, x, padding_mask, queries)
        record = self.records[name]
        own = torch.gather(rows, 3, queries[:, None, :, None].expand(B, layer.heads, queries.shape[1], 1))[..., 0]
        record.diagonal.append(own.permute(0, 2, 1)[valid].cpu())                 # (n, H)
        for direction in self.directions:
            if direction == "future" and layer.causal:
                continue
            kernels, ok = kernels_from_rows(rows, queries, valid, real, self.horizon, direction)
            record.kernels.setdefault(direction, []).append(kernels.permute(0, 2, 1, 3)[ok].cpu())  # (n, H, K)
