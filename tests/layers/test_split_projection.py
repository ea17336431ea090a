"""`layers/split_projection.py`: the input projection read in parts, against `F.linear(u, W).chunk(k, -1)`."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from infomamba.layers.split_projection import split_projection


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.__name__.split(".")[0])
        return func(*args, **(kwargs or {}))


def grads(fn, u, weight, readers):
    """Outputs and (du, dW) of a loss that reads each part through its reader (None: the part is not read)."""
    u, weight = u.detach().requires_grad_(), weight.detach().requires_grad_()
    parts = fn(u, weight)
    loss = sum(read(part) for part, read in zip(parts, readers) if read is not None)
    du, dw = torch.autograd.grad(loss, [u, weight])
    return parts, du, dw


def reference(parts):
    return lambda u, weight: F.linear(u, weight).chunk(parts, dim=-1)


@pytest.mark.parametrize("parts", [2, 3])
def test_values_and_gradients_match_the_linear_then_chunk(parts):
    g = torch.Generator().manual_seed(0)
    u, weight = torch.randn(3, 11, 8, generator=g), torch.randn(parts * 6, 8, generator=g)
    readers = [lambda t, i=i: (t.square() * (i + 1)).sum() for i in range(parts)]
    got, du, dw = grads(lambda u, w: split_projection(u, w, parts), u, weight, readers)
    want, du_want, dw_want = grads(reference(parts), u, weight, readers)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(du, du_want)
    torch.testing.assert_close(dw, dw_want)


def test_an_unread_part_gives_zero_rows_and_no_input_gradient():
    g = torch.Generator().manual_seed(1)
    u, weight = torch.randn(2, 5, 4, generator=g), torch.randn(6, 4, generator=g)
    readers = [None, lambda t: t.sin().sum()]
    _, du, dw = grads(lambda u, w: split_projection(u, w, 2), u, weight, readers)
    _, du_want, dw_want = grads(reference(2), u, weight, readers)
    assert (dw[:3] == 0).all()
    torch.testing.assert_close(du, du_want)
    torch.testing.assert_close(dw, dw_want)


def test_the_backward_concatenates_nothing():
    """The reason for the Function: autograd's backward of the chunk is a cat of the parts' gradients (the size of the
    whole output); this backward is matmuls on the parts."""
    u = torch.randn(2, 7, 8, requires_grad=True)
    weight = torch.randn(12, 8, requires_grad=True)
    for fn, has_cat in ((reference(2), True), (lambda u, w: split_projection(u, w, 2), False)):
        a, b = fn(u, weight)
        loss = (a * b).sum()
        with _Ops() as ops:
            loss.backward()
        assert ("cat" in ops.names) == has_cat, ops.names


def test_under_autocast_the_parts_are_bf16_and_the_weight_gradient_fp32():
    u = torch.randn(2, 6, 8, requires_grad=True)
    weight = torch.randn(12, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = split_projection(u, weight, 2)
        want = F.linear(u, weight).chunk(2, dim=-1)
    assert a.dtype == b.dtype == torch.bfloat16
    torch.testing.assert_close(torch.cat([a, b], -1), torch.cat(want, -1))
    (a.float() * b.float()).sum().backward()
    assert weight.grad.dtype == u.grad.dtype == torch.float32


def test_a_weight_that_does_not_split_is_refused():
    with pytest.raises(ValueError, match="7 rows do not split into 2 parts"):
        split_projection(torch.randn(1, 2, 4), torch.randn(7, 4), 2)
