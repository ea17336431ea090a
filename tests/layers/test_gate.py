import pytest
import torch
import torch.nn.functional as F

from infomamba.layers.gate import gated_projection


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
