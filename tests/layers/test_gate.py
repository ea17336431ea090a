import pytest
import torch
import torch.nn.functional as F

from infomamba.layers.gate import gated_projection, gated_readout
from infomamba.layers.pooling import masked_mean


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_plain_autograd(dtype):
    y, z = torch.randn(2, 7, 12, dtype=dtype, requires_grad=True), torch.randn(2, 7, 12, dtype=dtype, requires_grad=True)
    w = torch.randn(5, 12, dtype=dtype, requires_grad=True)
    dout = torch.randn(2, 7, 5, dtype=dtype)
    got = torch.autograd.grad(gated_projection(y, z, w), (y, z, w), dout)
    want = torch.autograd.grad(F.linear(y * F.silu(z), w), (y, z, w), dout)
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e)


def test_gradcheck():
    args = [torch.randn(*shape, dtype=torch.float64, requires_grad=True) for shape in ((1, 3, 4), (1, 3, 4), (2, 4))]
    assert torch.autograd.gradcheck(gated_projection, args)


def test_keeps_only_its_inputs_for_backward():
    y, z = torch.randn(2, 7, 12, requires_grad=True), torch.randn(2, 7, 12, requires_grad=True)
    w = torch.randn(5, 12, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        gated_projection(y, z, w)
    assert {t.data_ptr() for t in saved} <= {y.data_ptr(), z.data_ptr(), w.data_ptr()}


def test_bf16_autocast_gives_bf16_output_and_input_dtype_gradients():
    y, z = torch.randn(3, 8, dtype=torch.bfloat16, requires_grad=True), torch.randn(3, 8, dtype=torch.bfloat16, requires_grad=True)
    w = torch.randn(4, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = gated_projection(y, z, w)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert y.grad.dtype == torch.bfloat16 and z.grad.dtype == torch.bfloat16 and w.grad.dtype == torch.float32


def _readout_args(dtype):
    g = torch.Generator().manual_seed(0)
    r, h, z = (torch.randn(2, 7, 12, generator=g, dtype=dtype, requires_grad=True) for _ in range(3))
    f = torch.randn(12, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(5, 12, generator=g, dtype=dtype, requires_grad=True)
    return r, h, f, z, w


@pytest.mark.parametrize("pad", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_readout_matches_plain_autograd(dtype, pad):
    """(r + f h) * SiLU(z) through W, and r's mean over each sample's real tokens: the values and the gradients of
    r, h, f, z and W from both outputs (the mean's gradient reaches r only, at its real tokens)."""
    r, h, f, z, w = args = _readout_args(dtype)
    mask = torch.tensor([[False] * 7, [True, True] + [False] * 4 + [True]]) if pad else None
    dout, dpool = torch.randn(2, 7, 5, dtype=dtype), torch.randn(2, 12, dtype=dtype)
    out, pooled = gated_readout(*args, mask)
    got = torch.autograd.grad((out, pooled), args, (dout, dpool))
    want_out, want_pooled = F.linear((r + f * h) * F.silu(z), w), masked_mean(r, mask)
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(pooled, want_pooled)
    want = torch.autograd.grad((want_out, want_pooled), args, (dout, dpool))
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e)


def test_readout_gradcheck():
    r, h, f, z, w = _readout_args(torch.float64)
    mask = torch.tensor([[False] * 7, [True] + [False] * 6])
    assert torch.autograd.gradcheck(lambda *a: gated_readout(*a, mask), (r, h, f, z, w))


def test_readout_keeps_y_z_h_f_w_and_not_r():
    """The backward reads y = r + f h as the forward rounded it, so y is kept (one (B, L, E) tensor, as
    gated_projection keeps its y) and r is not; h is kept too (InfoMamba saves it as its recipe)."""
    r, h, f, z, w = _readout_args(torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out, _ = gated_readout(r, h, f, z, w)
    ptrs = {t.data_ptr() for t in saved}
    assert r.data_ptr() not in ptrs and {h.data_ptr(), f.data_ptr(), z.data_ptr(), w.data_ptr()} <= ptrs
    assert len(ptrs) == 5
    assert out.shape == (2, 7, 5)
