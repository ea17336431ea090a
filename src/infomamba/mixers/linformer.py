"""Linformer (Wang et al. 2020, "Linformer: Self-Attention with Linear Complexity").

    head_i = softmax(Q_i (E_i K_i)^T / sqrt(d_head)) (F_i V_i)          (Eq. 7)

E_i, F_i in R^{k x n} project the n keys / values down to k = `proj_len` rows, so the attention
map is n x k: linear in n. Parameter sharing (Sec. 4): `sharing="none"` one E_i, F_i per head,
"headwise" one E, F for all heads, "kv" one E for keys and values of all heads. Layerwise sharing
(one E for the whole stack) is not offered: every mixer is built on its own.

Length: E and F are static parameters of `max_len` positions (n in the paper), so a sequence of
length L uses their first L positions (E[:, :L]); longer sequences are refused. Position t of a
sample is its rank among the sample's real tokens, so a padded sample projects with exactly the
rows it would use alone (E[:L_real]), wherever its padding sits.

Padding: the projection mixes positions, so padding invariance holds only in that sense: padded
rows of E and F are zeroed (the padded keys and values contribute nothing to E K and F V), and
with the length-sliced E each sample's outputs equal the sample's outputs alone. Padded queries
produce outputs that the encoder discards.

Causal: refused at build. E K mixes every position into each of the k projected keys, so the
output at t would read the future; Linformer has no causal form (Sec. 4 uses it for encoders).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.checks import require_positive
from ..layers.positions import first_rows, real_positions
from . import Mixer, MixerAux, causal_mixers, register_mixer

SHARING = ("none", "headwise", "kv")


@register_mixer("linformer")
class LinformerMixer(Mixer):
    """Linformer self-attention with low-rank projected keys and values.

    Args:
        heads: number of heads (default inner_dim // 64, at least 1).  inner_dim: Q, K, V width (default dim).
        proj_len: k, projected length.  max_len: n, the longest sequence (E, F have n rows).
        sharing: "none" (per head), "headwise" or "kv" (Sec. 4).  qkv_bias: bias on the Q, K, V projection.
    """

    causal_capable = False
    linear_time = True

    def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                 heads: int | None = None, inner_dim: int | None = None, proj_len: int = 256,
                 max_len: int = 1024, sharing: str = "headwise", qkv_bias: bool = True):
        super().__init__()
        if causal:
            raise ValueError("linformer cannot be causal: its projections E, F mix every position of the sequence "
                             f"into each projected key/value; causal models can use {', '.join(causal_mixers())}")
        if sharing not in SHARING:
            raise ValueError(f"linformer sharing must be one of {SHARING}, got {sharing!r}")
        require_positive("linformer", heads=heads, inner_dim=inner_dim, proj_len=proj_len, max_len=max_len)
        inner = inner_dim or dim
        self.heads = heads or max(1, inner // 64)
        if inner % self.heads:
            raise ValueError(f"linformer inner_dim {inner} is not divisible by heads {self.heads}")
        self.causal = causal
        self.max_len = max_len
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim)
        n_proj = self.heads if sharing == "none" else 1
        self.E = nn.Parameter(self._init(n_proj, max_len, proj_len))
        if sharing == "kv":
            self.register_parameter("F", None)
        else:
            self.F = nn.Parameter(self._init(n_proj, max_len, proj_len))

    @staticmethod
    def _init(n_proj: int, max_len: int, proj_len: int) -> torch.Tensor:
        """Xavier-normal over (n, k), per head: the initialisation the authors recommend."""
        return torch.randn(n_proj, max_len, proj_len) * (2.0 / (max_len + proj_len)) ** 0.5

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        first_rows(state_dict, [prefix + "E", prefix + "F"], self.max_len, dim=1)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _rows(self, proj: torch.Tensor, padding_mask: torch.Tensor | None, length: int) -> torch.Tensor:
        """The rows of E (or F) for each token: (1 or B, n_proj, L, k), zero at padding."""
        if padding_mask is None:
            return proj[:, :length].unsqueeze(0)
        rows = proj[:, real_positions(padding_mask)].transpose(0, 1)
        return rows * (~padding_mask)[:, None, :, None].to(rows.dtype)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, grid=None):
        B, L, _ = x.shape
        if L > self.max_len:
            raise ValueError(f"linformer built for max_len={self.max_len} got a sequence of {L} tokens")
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        E = self._rows(self.E, padding_mask, L)
        Fp = E if self.F is None else self._rows(self.F, padding_mask, L)
        k = E.transpose(-1, -2) @ k          # (B, heads, k, d_head)
        v = Fp.transpose(-1, -2) @ v
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, L, -1)), MixerAux()
