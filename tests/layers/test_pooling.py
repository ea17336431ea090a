import torch

from infomamba.layers.pooling import masked_mean, masked_token_mean


def test_masked_mean_ignores_padded_positions():
    x = torch.randn(2, 5, 3)
    pad = torch.tensor([[False, False, False, True, True], [False] * 5])
    pooled = masked_mean(x, pad)
    torch.testing.assert_close(pooled[0], x[0, :3].mean(0))
    torch.testing.assert_close(pooled[1], x[1].mean(0))
    torch.testing.assert_close(masked_mean(x, None), x.mean(1))


def test_masked_token_mean_is_the_mean_over_real_tokens_of_the_batch():
    values = torch.randn(2, 4)
    pad = torch.tensor([[False, True, True, True], [False, False, False, True]])
    torch.testing.assert_close(masked_token_mean(values, pad), values[~pad].mean())
    torch.testing.assert_close(masked_token_mean(values, None), values.mean())
    torch.testing.assert_close(masked_token_mean(values, torch.zeros_like(pad)), values.mean())


def test_masked_token_mean_of_an_all_padded_batch_is_zero_not_nan():
    values = torch.randn(2, 3, requires_grad=True)
    loss = masked_token_mean(values, torch.ones(2, 3, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(values.grad == 0)
