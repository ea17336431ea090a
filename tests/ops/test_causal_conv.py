import pytest
import torch
import torch.nn.functional as F

from infomamba.ops.causal_conv import causal_conv_silu_reference


def conv_by_definition(x, w, b, reverse):
    """y_t = b + sum_i w_i x_{t-K+1+i} (forward) or x_{t+K-1-i} (reverse), zeros outside the sequence."""
    B, L, D = x.shape
    K = w.shape[1]
    y = b.expand(B, L, D).clone()
    for t in range(L):
        for i in range(K):
            s = t + K - 1 - i if reverse else t - K + 1 + i
            if 0 <= s < L:
                y[:, t] += w[:, i] * x[:, s]
    return F.silu(y)


@pytest.mark.parametrize("reverse", [False, True])
def test_conv_reference_runs_in_the_scan_direction(reverse):
    x, w, b = torch.randn(2, 9, 5), torch.randn(5, 4), torch.randn(5)
    torch.testing.assert_close(causal_conv_silu_reference(x, w, b, reverse), conv_by_definition(x, w, b, reverse))
