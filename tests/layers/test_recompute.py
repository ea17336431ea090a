"""`saved_as_recipe`: the tensor is not kept for backward, the gradients are those of keeping it, every other
saved tensor still reaches the hooks already active, and the recipe runs under the forward's autocast. `recomputed`:
compiled, the tensor is made again in the backward instead of saved, with the same gradients."""
import contextlib
import gc
import weakref

import torch
import torch.nn.functional as F

from compiled_saves import compiled_saves
from infomamba.layers.recompute import recomputed, saved_as_recipe


class Twice(torch.autograd.Function):
    """Saves its input itself (as the fused SSM op does)."""

    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return t * t

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return 2 * t * g


def grads(use_recipe: bool, autocast: bool = False):
    """Gradients of a loss with two ops that save t = linear(x, w), and a weakref to t, with or without the recipe."""
    torch.manual_seed(0)
    x, w, f = torch.randn(6, 5), torch.randn(4, 5, requires_grad=True), torch.randn(4, requires_grad=True)
    calls = []

    def recompute():
        calls.append(1)
        return F.linear(x, w.detach())

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        t = F.linear(x, w)
        with saved_as_recipe(t, recompute) if use_recipe else contextlib.nullcontext():
            loss = (f.to(t.dtype) * t).float().sum() + Twice.apply(t).float().sum()
    alive = weakref.ref(t)
    del t
    gc.collect()
    freed = alive() is None
    loss.backward()
    return w.grad, f.grad, freed, len(calls)


def test_the_tensor_is_freed_and_recomputed_once_for_both_uses():
    w_ref, f_ref, kept_freed, _ = grads(use_recipe=False)
    w_grad, f_grad, freed, calls = grads(use_recipe=True)
    assert not kept_freed and freed
    assert calls == 1
    torch.testing.assert_close(w_grad, w_ref, rtol=0, atol=0)
    torch.testing.assert_close(f_grad, f_ref, rtol=0, atol=0)


def test_the_recipe_runs_under_the_forward_autocast():
    w_ref, f_ref, _, _ = grads(use_recipe=False, autocast=True)
    w_grad, f_grad, freed, _ = grads(use_recipe=True, autocast=True)
    assert freed
    torch.testing.assert_close(w_grad, w_ref, rtol=0, atol=0)
    torch.testing.assert_close(f_grad, f_ref, rtol=0, atol=0)


def test_other_saved_tensors_reach_the_outer_hooks():
    seen = []

    def pack(x):
        seen.append(x)
        return ("outer", x)

    def unpack(packed):
        assert packed[0] == "outer"
        return packed[1]

    a = torch.randn(3, 4, requires_grad=True)
    f = torch.randn(4, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        t = a * 3.0  # saves nothing
        with saved_as_recipe(t, lambda: a.detach() * 3.0):
            loss = (f * t).sum()
    assert len(seen) == 1 and seen[0] is f
    loss.backward()
    torch.testing.assert_close(f.grad, 3.0 * a.detach().sum(0))
    torch.testing.assert_close(a.grad, 3.0 * f.detach().expand(3, 4))


def test_without_grad_nothing_changes():
    t = torch.randn(3)
    with torch.no_grad(), saved_as_recipe(t, lambda: 1 / 0):
        assert torch.equal(t * 2, t + t)


def test_compiled_a_recomputed_tensor_is_made_again_in_the_backward_not_saved():
    """t = x w^T read by a product that saves it: compiled plainly, the partitioner saves t (a matmul's output is not
    recomputed); made by `recomputed`, it saves x and w instead, and the gradients are the same."""
    def loss(x, w, make):
        t = make(F.linear, x, w)
        return (t * t).sum()

    def plain(fn, *args):
        return fn(*args)

    x, w = torch.randn(6, 5, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    got = {}
    for make in (plain, recomputed):
        value, saved = compiled_saves(lambda x, w: loss(x, w, make), x, w)
        value.backward()
        got[make.__name__] = (saved, value.detach(), x.grad.clone(), w.grad.clone())
        x.grad = w.grad = None
    assert (6, 4) in got["plain"][0] and (6, 4) not in got["recomputed"][0], got
    for a, b in zip(got["plain"][1:], got["recomputed"][1:]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    eager = loss(x, w, recomputed)
    eager.backward()
    torch.testing.assert_close(eager, got["recomputed"][1])
