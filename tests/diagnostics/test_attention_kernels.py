"""Attention kernels and diagonal mass: the recomputed weights are the layer's own (they reproduce its
output), kernels are read at the right lags, and an identity attention has diagonal mass 1 and ε = 0."""
import numpy as np
import pytest
import torch

from infomamba import Encoder, EncoderConfig
from infomamba.diagnostics.attention_kernels import (AttentionRecorder, attention_rows, kernels_from_rows,
                                                     layer_index, sample_queries)
from infomamba.diagnostics.report import summarize_attention
from infomamba.layers.attention import SelfAttention


def padded(B: int, L: int, lengths: list[int]) -> torch.Tensor:
    return torch.arange(L)[None, :] >= torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("causal", [False, True])
def test_recomputed_weights_reproduce_the_layer_output(causal):
    torch.manual_seed(0)
    layer = SelfAttention(16, heads=2, causal=causal).eval()
    B, L = 3, 9
    x = torch.randn(B, L, 16)
    for padding_mask in (None, padded(B, L, [9, 5, 7])):
        queries = torch.arange(L).expand(B, L)
        rows = attention_rows(layer, x, padding_mask, queries)                      # (B, H, L, L)
        v = layer.qkv(x).view(B, L, 3, layer.heads, -1)[:, :, 2].transpose(1, 2)
        y = layer.proj((rows @ v).transpose(1, 2).reshape(B, L, -1))
        torch.testing.assert_close(y, layer(x, padding_mask), atol=1e-5, rtol=1e-5)
        if causal:
            assert (rows.triu(1) == 0).all()
        if padding_mask is not None:
            assert (rows[1, :, :, 5:] == 0).all()


def test_kernels_are_read_at_lags_t_minus_l_and_t_plus_l():
    B, H, L, K = 2, 1, 10, 4
    real = ~padded(B, L, [10, 6])
    queries, valid = sample_queries(real, max_queries=10)
    t = queries[:, None, :, None].float()
    rows = (100 * t + torch.arange(L).float()).expand(B, H, queries.shape[1], L)     # rows[t, j] = 100 t + j
    past, ok = kernels_from_rows(rows, queries, valid, real, K, "past")
    lags = torch.arange(K).float()
    for b in range(B):
        for i in range(queries.shape[1]):
            q = int(queries[b, i])
            assert bool(ok[b, i]) == (bool(valid[b, i]) and q >= K - 1)
            if ok[b, i]:
                torch.testing.assert_close(past[b, 0, i], 100 * q + q - lags)
    future, ok = kernels_from_rows(rows, queries, valid, real, K, "future")
    lengths = real.sum(1)
    for b in range(B):
        for i in range(queries.shape[1]):
            q = int(queries[b, i])
            assert bool(ok[b, i]) == (bool(valid[b, i]) and q + K - 1 < int(lengths[b]))
            if ok[b, i]:
                torch.testing.assert_close(future[b, 0, i], 100 * q + q + lags)


def test_queries_are_evenly_spaced_real_positions():
    real = ~padded(3, 20, [20, 7, 0])
    queries, valid = sample_queries(real, max_queries=5)
    assert queries.shape == (3, 5)
    assert queries[0].tolist() == [0, 5, 10, 14, 19] and valid[0].all()
    assert queries[1].tolist() == [0, 2, 3, 4, 6] and valid[1].all()
    assert not valid[2].any()


def identity_attention(L: int, causal: bool) -> tuple[SelfAttention, torch.Tensor]:
    """One head whose Q = K = 10 x on one-hot tokens: softmax(Q K^T / sqrt(d)) = I up to e^-25."""
    layer = SelfAttention(L, heads=1, causal=causal)
    with torch.no_grad():
        layer.qkv.weight.zero_()
        layer.qkv.bias.zero_()
        layer.qkv.weight[:L] = 10 * torch.eye(L)
        layer.qkv.weight[L:2 * L] = 10 * torch.eye(L)
    return layer, torch.eye(L).expand(2, L, L)


@pytest.mark.parametrize("causal", [False, True])
def test_identity_attention_has_diagonal_mass_one_and_fits_exactly(causal):
    L, K = 12, 4
    layer, x = identity_attention(L, causal)
    with AttentionRecorder(layer, horizon=K, max_queries=L, directions=("past", "future")) as recorder, torch.no_grad():
        layer(x, padded(2, L, [12, 9]))
    record = recorder.records[""]
    np.testing.assert_allclose(record.diagonal_mass(), [1.0], atol=1e-9)
    assert torch.cat(record.diagonal).shape == (12 + 9, 1)               # every real query, none padded
    kernels = record.stacked("past")
    assert kernels.shape == ((12 - K + 1) + (9 - K + 1), 1, K)
    np.testing.assert_allclose(kernels[:, 0], np.eye(K)[0].repeat(len(kernels)).reshape(K, -1).T, atol=1e-9)
    assert ("future" in record.kernels) == (not causal)                   # a causal layer has no future half
    summary = summarize_attention(record, [1, 2])
    assert summary["eps_exp_mean"]["1"] < 1e-12 and summary["diagonal_mass_mean"] == pytest.approx(1.0)
    assert summary["horizon_mass"] == pytest.approx([1.0])


def test_uniform_causal_attention_has_diagonal_mass_one_over_t():
    layer = SelfAttention(8, heads=2, causal=True)
    with torch.no_grad():
        layer.qkv.weight.zero_()  # Q = K = 0: every allowed key gets the same weight 1 / (t + 1)
    with AttentionRecorder(layer, horizon=2, max_queries=6) as recorder, torch.no_grad():
        layer(torch.randn(1, 6, 8))
    expected = np.mean([1 / (t + 1) for t in range(6)])
    np.testing.assert_allclose(recorder.records[""].diagonal_mass(), [expected] * 2, rtol=1e-6)


def test_recorder_finds_every_attention_layer_of_an_encoder():
    attention = Encoder(EncoderConfig(dim=16, depth=2, mixer="attention", mixer_options={"heads": 2})).eval()
    vision = Encoder(EncoderConfig(dim=16, depth=4, mixer="mambavision", mixer_options={"d_state": 4})).eval()
    x = torch.randn(2, 10, 16)
    for encoder, expected in ((attention, [0, 1]), (vision, [2, 3])):
        with AttentionRecorder(encoder, horizon=4) as recorder, torch.no_grad():
            encoder(x, padded(2, 10, [10, 6]))
        assert [r.index for r in recorder.records.values()] == expected
        for record in recorder.records.values():
            assert record.stacked("past").shape == (7 + 3, record.heads, 4)
    assert not attention.stack.blocks[0].mixer._forward_hooks  # hooks are removed on exit
    assert layer_index("encoder.stack.blocks.11.mixer.attention") == 11 and layer_index("attn") is None
