"""SelfAttention: softmax attention against its definition, padded keys and future keys masked."""
import math

import pytest
import torch

from infomamba.layers.attention import SelfAttention

DIM, L = 16, 9


def by_definition(attn: SelfAttention, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_head) + mask) V per head (Vaswani et al. Eq. 1); allowed: (B, L, L)."""
    B = x.shape[0]
    q, k, v = attn.qkv(x).view(B, L, 3, attn.heads, -1).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    return attn.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, -1))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_matches_the_definition(causal, padded):
    attn = SelfAttention(DIM, heads=2, causal=causal).eval()
    x = torch.randn(2, L, DIM)
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[1, 6:] = True
    allowed = (~mask if padded else torch.ones_like(mask))[:, None, :].expand(2, L, L)
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool).tril()
    with torch.no_grad():
        y = attn(x, mask if padded else None)
        want = by_definition(attn, x, allowed)
    torch.testing.assert_close(y, want, atol=1e-5, rtol=1e-5)


def test_heads_must_divide_the_width():
    assert SelfAttention(128).heads == 2
    with pytest.raises(ValueError, match="not divisible"):
        SelfAttention(DIM, heads=3)
