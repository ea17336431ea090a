"""Triton concept assignment (kernels/concept_assign.py) against `sparse_assign_reference` of
infomamba.concepts.

R, R_bar and the gradients of logits and candidate, for upstream gradients on both outputs or on one,
at k in {7, 16, 100} (padded to 8, 16, 128 lanes) and q_max in {1, 3, 8}. The rows of a batch span
temperatures from near-uniform to peaked assignments, so the entropy budget q_t varies across them
(asserted), and their candidate masks include a single candidate, all concepts, and fewer candidates
than q_t (the rule that kept entries must be positive). On a machine without CUDA the kernels run in
Triton's interpreter (TRITON_INTERPRET=1 is set here, before triton is imported; conftest.py patches
the interpreter) in fp32; on CUDA the same tests also run with bf16 logits.

Tolerances are relative to the largest magnitude of the reference tensor (at least 1): fp32 1e-5,
bf16 1e-2 (dlogits is rounded to bf16 by both sides).
"""
import pytest
import torch

ON_CUDA = torch.cuda.is_available()
triton = pytest.importorskip("triton")

from infomamba.ops.concept_assign import entropy_budget, sparse_assign_reference
from infomamba.ops.concept_assign.triton import sparse_assign_triton

DEVICE = "cuda" if ON_CUDA else "cpu"
FP32, BF16 = torch.float32, torch.bfloat16
DTYPES = [FP32, BF16] if ON_CUDA else [FP32]
TOL = {FP32: 1e-5, BF16: 1e-2}


def make_inputs(k, q_max, batch=2, length=7, dtype=FP32, seed=0):
    """Logits with a per-token temperature from 0.1 (near uniform) to 10 (peaked) and candidate masks
    of density 0.3, at least one candidate a token; token (0, 0) has one, token (0, 1) all k.

    A token's logits are a shuffled grid on [-2, 2) times its scale: no two are equal, in bf16 too (the
    grid step is 2.5 bf16 ulps at least), so no tie decides what top-q keeps.
    """
    g = torch.Generator().manual_seed(seed)
    scale = torch.logspace(-1, 1, batch * length).view(batch, length, 1)
    grid = torch.rand(batch, length, k, generator=g).argsort(-1)
    logits = (grid * (4.0 / k) - 2.0) * scale
    candidate = (torch.rand(batch, length, k, generator=g) < 0.3).float()
    tokens = torch.arange(batch * length)
    candidate.view(-1, k)[tokens, torch.randint(k, tokens.shape, generator=g)] = 1.0
    candidate[0, 0] = 0.0
    candidate[0, 0, k // 2] = 1.0
    candidate[0, 1] = 1.0
    q = entropy_budget(logits.softmax(-1), q_max)
    if q_max > 1:
        assert q.unique().numel() > 1, "the budget must vary across tokens"
        assert (candidate.sum(-1) < q).any(), "some token must have fewer candidates than its budget"
    return logits.to(DEVICE, dtype), candidate.to(DEVICE)


def run(fn, logits, candidate, q_max, upstream, seed=1):
    """(R, R_bar, dlogits, dcandidate) of fn for loss = <dR, R> + <dR_bar, R_bar> over the outputs
    named in `upstream`."""
    logits = logits.clone().requires_grad_()
    candidate = candidate.clone().requires_grad_()
    R, R_bar = fn(logits, candidate, q_max)
    g = torch.Generator().manual_seed(seed)
    dR, dR_bar = (torch.randn(R.shape, generator=g).to(DEVICE) for _ in range(2))
    loss = sum((out * grad).sum() for name, out, grad in (("R", R, dR), ("R_bar", R_bar, dR_bar))
               if name in upstream)
    loss.backward()
    return R.detach(), R_bar.detach(), logits.grad, candidate.grad


def assert_close(got, want, tol, what):
    assert got.dtype == want.dtype and got.shape == want.shape, what
    scale = max(1.0, want.abs().max().item())
    err = (got.float() - want.float()).abs().max().item()
    assert err <= tol * scale, f"{what}: max error {err:.3g} > {tol:g} x {scale:.3g}"


def check_against_reference(logits, candidate, q_max, upstream, tol):
    """Without an upstream gradient on R_bar the candidate gets none (None) from either."""
    got = run(sparse_assign_triton, logits, candidate, q_max, upstream)
    want = run(sparse_assign_reference, logits, candidate, q_max, upstream)
    for name, g, w in zip(("R", "R_bar", "dlogits", "dcandidate"), got, want):
        if name == "dcandidate" and "R_bar" not in upstream:
            assert g is None and w is None
        else:
            assert_close(g, w, tol, name)
    return got


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("upstream", [("R", "R_bar"), ("R_bar",), ("R",)], ids="+".join)
@pytest.mark.parametrize("q_max", [1, 3, 8])
@pytest.mark.parametrize("k", [7, 16, 100])
def test_matches_reference(k, q_max, upstream, dtype):
    logits, candidate = make_inputs(k, q_max, dtype=dtype)
    R, R_bar, _, _ = check_against_reference(logits, candidate, q_max, upstream, TOL[dtype])
    kept = (R_bar > 0).sum(-1)
    assert torch.equal(kept, torch.minimum(entropy_budget(R, q_max), candidate.sum(-1).long()))
    assert kept.max() <= q_max
    torch.testing.assert_close(R_bar.sum(-1), torch.ones_like(R_bar[..., 0]))


def test_static_assignment_path():
    """static_rr's call: logits an expanded view of a (L, k) parameter, candidate all ones without
    grad; plus more leading dimensions and an empty batch."""
    k, q_max = 100, 8
    R0 = (make_inputs(k, q_max, batch=1)[0][0] * 3).requires_grad_()
    ones = torch.ones(3, *R0.shape, device=DEVICE)
    outs, grads = [], []
    for fn in (sparse_assign_triton, sparse_assign_reference):
        R0.grad = None
        R, R_bar = fn(R0.unsqueeze(0).expand(3, -1, -1), ones, q_max)
        (R_bar * torch.arange(k, device=DEVICE)).sum().backward()
        outs.append(R_bar.detach())
        grads.append(R0.grad)
    assert_close(outs[0], outs[1], TOL[FP32], "R_bar")
    assert_close(grads[0], grads[1], TOL[FP32], "dR0")

    logits, candidate = make_inputs(16, 3, batch=2, length=12)
    logits, candidate = logits.view(2, 3, 4, 16), candidate.view(2, 3, 4, 16)
    check_against_reference(logits, candidate, 3, ("R", "R_bar"), TOL[FP32])
    empty = run(sparse_assign_triton, logits[:0], candidate[:0], 3, ("R", "R_bar"))
    assert all(t.shape == (0, 3, 4, 16) for t in empty)


def test_tiny_candidate_mass_is_still_normalised():
    """A token whose candidates hold ~1e-17 of the mass still gets an R_bar summing to 1, and the
    kernel's values and gradients match the reference's there; next to it an ordinary token."""
    k, q_max = 16, 3
    logits = torch.linspace(0.0, 3.0, k).repeat(1, 2, 1)
    logits[0, 0, :12] = 40.0  # high entropy (q = 3) on 12 concepts, the candidates 12-15 hold ~e^-40
    candidate = torch.zeros(1, 2, k)
    candidate[0, :, 12:] = 1.0
    logits, candidate = logits.to(DEVICE), candidate.to(DEVICE)
    got = run(sparse_assign_triton, logits, candidate, q_max, ("R_bar",))
    want = run(sparse_assign_reference, logits, candidate, q_max, ("R_bar",))
    assert entropy_budget(want[0], q_max).tolist() == [[3, 3]]
    assert want[0][0, 0, 12:].sum() < 1e-12
    torch.testing.assert_close(want[1].sum(-1), torch.ones(1, 2, device=DEVICE))
    for name, g, w in zip(("R", "R_bar", "dlogits", "dcandidate"), got, want):
        scale = w.abs().max().clamp_min(1.0)
        torch.testing.assert_close(g / scale, w / scale, rtol=1e-4, atol=1e-6, msg=name)


def test_single_concept():
    """k = 1: R = 1, budget 1, R_bar = 1 on a candidate, 0 on a non-candidate, as in the reference."""
    logits = torch.randn(2, 3, 1, device=DEVICE)
    candidate = torch.ones(2, 3, 1, device=DEVICE)
    candidate[1, 2] = 0.0
    R, R_bar, dlogits, dcandidate = run(sparse_assign_triton, logits, candidate, 4, ("R", "R_bar"))
    assert torch.equal(R, torch.ones_like(R)) and torch.equal(R_bar, candidate)
    assert not dlogits.any() and not dcandidate.any()
    want = run(sparse_assign_reference, logits, candidate, 4, ("R", "R_bar"))
    assert torch.equal(want[1], candidate)


@pytest.mark.skipif(not ON_CUDA, reason="the filter dispatches to the kernel on CUDA only")
def test_concept_filter_with_the_kernel_matches_the_reference_path(monkeypatch):
    """The whole ConceptFilter (eval: no Gumbel noise) on CUDA, kernel path vs INFOMAMBA_KERNELS=reference:
    output and every parameter gradient."""
    from infomamba.layers.concepts import ConceptFilter

    filt = ConceptFilter(32, 64, k_max=40, d_concept=16, n_buckets=4, q_max=8).to(DEVICE).eval()
    x = torch.randn(3, 50, 32, device=DEVICE)
    results = []
    for mode in ("", "reference"):
        monkeypatch.setenv("INFOMAMBA_KERNELS", mode)
        filt.zero_grad()
        h, aux = filt(x)
        (h.square().sum() + aux["mi_hash"]).backward()
        results.append([h] + [p.grad.clone() for p in filt.parameters() if p.grad is not None])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_small_k_budget_spans_one_to_q_max_in_reference_and_kernel(k):
    """One budget formula for both (`budget_scale`): a uniform row (H = log k) gets q_max, a one-hot row
    gets 1, for every k >= 2 (k = 2 too, where log k < 1); k = 1 always gets 1."""
    q_max = 8
    uniform = torch.zeros(1, 1, k)
    peaked = torch.full((1, 1, k), -30.0)
    peaked[..., 0] = 30.0
    logits = torch.cat([uniform, peaked], 1)
    R = logits.softmax(-1)
    q = entropy_budget(R, q_max)
    assert q[0, 0] == (q_max if k > 1 else 1) and q[0, 1] == 1
    candidate = torch.ones_like(logits)
    for fn in (sparse_assign_reference, sparse_assign_triton):
        _, R_bar = fn(logits.to(DEVICE), candidate.to(DEVICE), q_max)
        assert (R_bar[0, 0] > 0).sum() == k, fn.__name__  # min(q_max, k) kept on the uniform row
        assert (R_bar[0, 1] > 0).sum() == 1, fn.__name__


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("q_max", [1, 2, 8])
def test_small_k_matches_reference(k, q_max):
    g = torch.Generator().manual_seed(k * 10 + q_max)
    logits = (torch.randn(2, 9, k, generator=g) * torch.logspace(-2, 1, 9).view(1, 9, 1)).to(DEVICE)
    candidate = (torch.rand(2, 9, k, generator=g) < 0.7).float().to(DEVICE)
    check_against_reference(logits, candidate, q_max, ("R", "R_bar"), TOL[torch.float32])
