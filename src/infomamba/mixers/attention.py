"""Softmax multi-head self-attention (the Transformer / ViT baseline), `layers.attention.SelfAttention`.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head) + mask) V     (Vaswani et al. 2017, Eq. 1)

Padded keys are masked; causal mode masks future keys. Quadratic in L by design: this is the
baseline the linear-time mixers are measured against.
"""
from __future__ import annotations

import torch

from ..layers.attention import SelfAttention
from . import Mixer, MixerAux, register_mixer


@register_mixer("attention")
class AttentionMixer(SelfAttention, Mixer):
    """Multi-head self-attention (quadratic in L); its parameters are the layer's (`qkv`, `proj`).

    Args:
        heads: number of heads (default: inner_dim // 64, at least 1).
        inner_dim: width of Q, K, V (default dim; the size-matching knob).
        qkv_bias: bias on the Q, K, V projection (ViT uses one).
    """

    causal_capable = True
    linear_time = False

    def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                 heads: int | None = None, inner_dim: int | None = None, qkv_bias: bool = True):
        super().__init__(dim, heads=heads, inner_dim=inner_dim, qkv_bias=qkv_bias, causal=causal)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, grid=None):
        return super().forward(x, padding_mask), MixerAux()
