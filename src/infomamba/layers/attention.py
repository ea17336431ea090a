"""Softmax multi-head self-attention through scaled_dot_product_attention.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head) + mask) V     (Vaswani et al. 2017, Eq. 1)

Padded keys are masked; causal mode masks future keys. Quadratic in L: the `attention` mixer (the
Transformer / ViT baseline) and MambaVision's attention layers.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import require_positive


class SelfAttention(nn.Module):
    """Multi-head self-attention over (B, L, D) tokens.

    Args:
        dim: token width D.
        heads: number of heads (default: inner_dim // 64, at least 1).
        inner_dim: width of Q, K, V (default dim).
        qkv_bias: bias on the Q, K, V projection (ViT uses one).
        causal: token t attends to tokens <= t only.
    """

    def __init__(self, dim: int, heads: int | None = None, inner_dim: int | None = None, qkv_bias: bool = True,
                 causal: bool = False):
        super().__init__()
        self.causal = causal
        require_positive("attention", heads=heads, inner_dim=inner_dim)
        inner = inner_dim or dim
        self.heads = heads or max(1, inner // 64)
        if inner % self.heads:
            raise ValueError(f"attention inner_dim {inner} is not divisible by heads {self.heads}")
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, L, D), padding_mask: (B, L) True at padding -> (B, L, D)."""
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        mask = None
        if padding_mask is not None:
            mask = (~padding_mask)[:, None, None, :]
            if self.causal:
                mask = mask & torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal and mask is None)
        return self.proj(y.transpose(1, 2).reshape(B, L, -1))
