"""The SSD (Mamba-2) form of the inner path's reference (`ops/ssm_inner/reference.py`, A_log of shape (H,)).

It is the Mamba-1 form whose dt and A are shared within each head: the SSD reference must equal the Mamba-1
reference run with the head-shared parameters repeated over each head's channels (dt_proj rows, dt bias, A_log
over channels and states), in values and in gradients (the repeated parameters' gradients summed per head), in
both directions, with padding on the right and on the left. The two paths share no scan code (chunked matmuls
vs the per-channel linear recurrence), so the comparison checks the SSD scan, its wiring (dt per head, u viewed
as heads of contiguous channels, N read from the weights) and its padding.

Gradients are compared relative to each gradient's largest entry (2e-5; a wrong wiring is off by O(1)). The SSD
reference sums its decays' exponents segment by segment (`ssd_scan.reference.segment_sums`): formed as differences
of cumulative sums they lost about eps * |sum| in fp32 (sums of -100 and below at A up to -16), 5e-5 of the largest
dA_log here.
"""
import pytest
import torch

from infomamba.ops.ssm_inner.reference import scan, ssm_inner_reference, state_size

B, L, E, H, N, R, K = 2, 37, 12, 3, 4, 2, 4
P = E // H
ORDER = ("x", "conv_w", "conv_b", "h", "p", "x_proj_w", "dt_proj_w", "dt_proj_b", "A_log", "D")


def ssd_params(seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    return dict(x=randn(B, L, E), conv_w=randn(E, K, scale=0.5), conv_b=randn(E, scale=0.1),
                h=randn(B, L, E, scale=0.3), p=randn(E, scale=0.5), x_proj_w=randn(R + 2 * N, E, scale=E ** -0.5),
                dt_proj_w=randn(H, R, scale=R ** -0.5), dt_proj_b=randn(H, scale=0.5) - 1.0,
                A_log=torch.log(torch.rand(H, generator=g) * 15 + 1), D=randn(E))


def repeated(ssd):
    """The Mamba-1 parameters of the same model: each head's dt row, dt bias and A over its P channels (and A
    over the N states)."""
    return dict(ssd, dt_proj_w=ssd["dt_proj_w"].repeat_interleave(P, 0),
                dt_proj_b=ssd["dt_proj_b"].repeat_interleave(P, 0),
                A_log=ssd["A_log"].repeat_interleave(P, 0)[:, None].expand(E, N))


def padding(kind):
    mask = torch.zeros(B, L, dtype=torch.bool)
    if kind == "right":
        mask[0, L - 9:] = True
    elif kind == "left":
        mask[1, :7] = True
    return mask if kind else None


def assert_close_rel(actual, expected, what, tol=2e-5):
    err = (actual - expected).abs().max() / expected.abs().max().clamp_min(1e-6)
    assert err <= tol, f"{what}: error {err:.2e} of the largest entry > {tol:.0e}"


def readout_and_grads(params, mask, reverse, dy):
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    y = ssm_inner_reference(*(leaves[k] for k in ORDER), mask, reverse)
    return y, dict(zip(leaves, torch.autograd.grad(y, list(leaves.values()), dy)))


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("pad", [None, "right", "left"])
def test_ssd_form_is_the_mamba1_form_with_head_shared_parameters(reverse, pad):
    ssd = ssd_params()
    mask = padding(pad)
    dy = torch.randn(B, L, E, generator=torch.Generator().manual_seed(1))
    y, grads = readout_and_grads(ssd, mask, reverse, dy)
    y1, grads1 = readout_and_grads(repeated(ssd), mask, reverse, dy)
    assert y.shape == (B, L, E)
    torch.testing.assert_close(y, y1, rtol=1e-5, atol=1e-5)
    for name in ("x", "conv_w", "conv_b", "h", "p", "x_proj_w", "D"):
        assert_close_rel(grads[name], grads1[name], f"d{name}")
    per_head = {"dt_proj_w": grads1["dt_proj_w"].unflatten(0, (H, P)).sum(1),
                "dt_proj_b": grads1["dt_proj_b"].unflatten(0, (H, P)).sum(1),
                "A_log": grads1["A_log"].unflatten(0, (H, P)).sum((1, 2))}
    for name, want in per_head.items():
        assert grads[name].shape == ssd[name].shape
        assert_close_rel(grads[name], want, f"d{name}")
        assert grads[name].abs().max() > 1e-4, f"d{name} vanishes: the test would not see a broken dt or A"
    if mask is not None:
        assert (grads["x"][mask] == 0).all() and (grads["h"][mask] == 0).all(), "padding must get no gradient"


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("pad", ["right", "left"])
def test_padding_is_invisible_to_real_tokens(reverse, pad):
    """A padded sample's real tokens read what the sample alone gives, whatever stands at its padding."""
    ssd = ssd_params()
    mask = padding(pad)
    row = 0 if pad == "right" else 1
    real = ~mask[row]
    noisy = dict(ssd, x=ssd["x"].masked_fill(mask[..., None], 0) + 5 * mask[..., None] * torch.randn(B, L, E),
                 h=ssd["h"] + 5 * mask[..., None] * torch.randn(B, L, E))
    with torch.no_grad():
        y = ssm_inner_reference(*(noisy[k] for k in ORDER), mask, reverse)
        alone_args = [ssd[k][row:row + 1, real] if k in ("x", "h") else ssd[k] for k in ORDER]
        alone = ssm_inner_reference(*alone_args, None, reverse)
    torch.testing.assert_close(y[row, real], alone[0], rtol=1e-5, atol=1e-5)
    assert (y[row, ~real] == 0).all()


def test_each_head_decays_with_its_own_rate_over_its_own_channels():
    """`scan` groups contiguous channels into heads: with dt = 1 and an impulse of size c + 1 into channel c at
    t = 0, channel c of head h = c // P reads (c + 1) exp(A_h t) (B = C = 1, N = 1)."""
    A = -torch.tensor([0.1, 1.0, 3.0])
    u = torch.zeros(1, 6, E)
    u[:, 0] = torch.arange(1.0, E + 1)
    ones = torch.ones(1, 6, 1)
    y = scan(u, torch.ones(1, 6, H), A, ones, ones, None, reverse=False)
    want = torch.exp(A[:, None] * torch.arange(6.0)).repeat_interleave(P, 0).T * torch.arange(1.0, E + 1)
    torch.testing.assert_close(y[0], want, rtol=1e-5, atol=1e-6)


def test_state_size_is_read_from_the_weights_in_either_form():
    ssd = ssd_params()
    assert state_size(ssd["x_proj_w"], ssd["dt_proj_w"]) == N
    assert state_size(ssd["x_proj_w"], repeated(ssd)["dt_proj_w"]) == N
