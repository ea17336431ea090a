"""Triton hash bucketing (`ops/hash_bucket/triton.py`) against its reference: the candidate sets C(b), the Gumbel
bucket sample and the MI-hash term, values and every gradient, for the model's 16 buckets and for bucket counts
that are not a power of two or are below 16, several programs of tokens, fp32 and bf16 inputs, and a token whose
mixture u is 0 (F.normalize's clamp). On a machine without CUDA the kernels run in Triton's interpreter
(conftest.py).
"""
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")
from infomamba.ops.hash_bucket import bucket_members, bucket_nll, gumbel_bucket  # noqa: E402
from infomamba.ops.hash_bucket.reference import (bucket_members_reference, bucket_nll_reference,  # noqa: E402
                                                 gumbel_bucket_reference)
from infomamba.ops.hash_bucket.triton import (bucket_members_triton, bucket_nll_triton,  # noqa: E402
                                              gumbel_bucket_triton)
from sm90_compile import assert_every_variant_compiles, compile_all  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
FP32, BF16 = torch.float32, torch.bfloat16
SHAPES = [(3, 61, 16, 64), (2, 45, 12, 48), (1, 7, 4, 8)]  # batch, tokens (several programs), buckets, d_concept


def _draw(shape, dtype, seed=0):
    B, L, nb, d = shape
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(B, L, nb, generator=g) * 2).to(DEVICE, dtype).requires_grad_()
    noise = torch.empty(B, L, nb).exponential_(generator=g).to(DEVICE)
    u = torch.randn(B, L, d, generator=g).to(DEVICE, dtype)
    dirs = F.normalize(torch.randn(nb, d, generator=g), dim=-1).to(DEVICE)
    return logits, noise, u.requires_grad_(), dirs.requires_grad_()


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == FP32 else dict(rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("dtype", [FP32, BF16])
@pytest.mark.parametrize("k, d, nb", [(100, 64, 16), (30, 48, 12), (5, 8, 3)])
def test_the_candidate_sets_match_the_reference(dtype, k, d, nb):
    """Every concept in the bucket of highest cosine, empty buckets (nb = 3: all concepts near one bucket) all 1."""
    g = torch.Generator().manual_seed(k)
    dirs = F.normalize(torch.randn(nb, d, generator=g), dim=-1)
    centers = torch.randn(k, d, generator=g) * (torch.rand(k, 1, generator=g) * 10 + 0.1)
    if nb == 3:
        centers = dirs[0] + 0.01 * centers
    centers, dirs = centers.to(DEVICE, dtype).requires_grad_(), dirs.to(DEVICE)
    got = bucket_members_triton(centers, dirs)
    assert got.dtype == FP32 and not got.requires_grad
    assert torch.equal(got, bucket_members_reference(centers, dirs))
    assert torch.equal(bucket_members(centers, dirs), bucket_members_reference(centers, dirs))
    if nb == 3:
        assert got.sum().item() == 3 * k


@pytest.mark.parametrize("dtype", [FP32, BF16])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_the_sample_and_its_gradient_match_the_reference(dtype, shape):
    logits, noise, _, _ = _draw(shape, dtype)
    got, want = gumbel_bucket_triton(logits, noise), gumbel_bucket_reference(logits, noise)
    assert got.dtype == FP32 and torch.equal(got, want.detach().round())  # the same bucket for every token
    weights = torch.randn(shape[:3], device=DEVICE)
    grad_got, = torch.autograd.grad((got * weights).sum(), logits)
    grad_want, = torch.autograd.grad((want * weights).sum(), logits)
    assert grad_got.dtype == dtype
    torch.testing.assert_close(grad_got.float(), grad_want.float(), **_tol(dtype))


@pytest.mark.parametrize("dtype", [FP32, BF16])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_the_term_and_its_gradients_match_the_reference(dtype, shape):
    logits, noise, u, dirs = _draw(shape, dtype)
    b = gumbel_bucket_reference(logits, noise).detach().round().requires_grad_()
    got, want = bucket_nll_triton(u, b, dirs, 0.1), bucket_nll_reference(u, b, dirs, 0.1)
    assert got.dtype == FP32 and got.shape == shape[:2]
    torch.testing.assert_close(got, want, **_tol(dtype))
    dnll = torch.randn(shape[:2], device=DEVICE)
    grads_got = torch.autograd.grad(got, (u, b, dirs), dnll)
    grads_want = torch.autograd.grad(want, (u, b, dirs), dnll)
    for name, g_got, g_want in zip(("u", "b", "bucket_dirs"), grads_got, grads_want):
        assert g_got.dtype == g_want.dtype, name
        # de sums over every token: compared relative to its largest entry
        scale = g_want.abs().max().item() if name == "bucket_dirs" else 1.0
        torch.testing.assert_close(g_got.float(), g_want.float(), rtol=_tol(dtype)["rtol"],
                                   atol=_tol(dtype)["atol"] * max(scale, 1.0), msg=name)


def test_a_token_whose_mixture_is_zero_gets_the_clamped_gradient():
    """u = 0: u^ = u / 1e-12 = 0, so every cosine is 0 and du = du^ / 1e-12 (no projection), as F.normalize."""
    logits, noise, u, dirs = _draw(SHAPES[2], FP32)
    with torch.no_grad():
        u[0, 0] = 0.0
    b = gumbel_bucket_reference(logits, noise).detach().round()
    dnll = torch.randn(u.shape[:2], device=DEVICE)
    got, = torch.autograd.grad(bucket_nll_triton(u, b, dirs, 0.1), u, dnll)
    want, = torch.autograd.grad(bucket_nll_reference(u, b, dirs, 0.1), u, dnll)
    assert got[0, 0].abs().max() > 1e6
    torch.testing.assert_close(got[0, 0], want[0, 0], rtol=1e-5, atol=0)
    torch.testing.assert_close(got[0, 1:], want[0, 1:], rtol=1e-5, atol=1e-5)


def test_shapes_must_agree():
    logits, noise, u, dirs = _draw(SHAPES[0], FP32)
    with pytest.raises(ValueError, match="noise must have the logits' shape"):
        gumbel_bucket_triton(logits, noise[:, 1:])
    b = torch.zeros(logits.shape, device=DEVICE)
    with pytest.raises(ValueError, match="must agree"):
        bucket_nll_triton(u, b, dirs[:, 1:], 0.1)
    with pytest.raises(ValueError, match="must agree"):
        bucket_members_triton(u[0, :, 1:], dirs)


def test_dispatch_runs_the_kernels_on_request_and_the_reference_for_float64(monkeypatch):
    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    logits, noise, u, dirs = _draw(SHAPES[1], FP32)
    b = gumbel_bucket(logits, noise)
    torch.testing.assert_close(b, gumbel_bucket_triton(logits, noise), rtol=0, atol=0)
    torch.testing.assert_close(bucket_nll(u, b, dirs, 0.1), bucket_nll_triton(u, b, dirs, 0.1), rtol=0, atol=0)
    u64, b64, dirs64 = u.double(), b.double(), dirs.double()
    torch.testing.assert_close(bucket_nll(u64, b64, dirs64, 0.1), bucket_nll_reference(u64, b64, dirs64, 0.1),
                               rtol=0, atol=0)


def test_torch_compile_traces_the_filter_in_training_without_a_graph_break(monkeypatch):
    from infomamba.layers.concepts import ConceptFilter

    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    torch._dynamo.reset()
    filt = ConceptFilter(16, 32, k_max=20, d_concept=8, n_buckets=4, q_max=4).to(DEVICE).train()
    x = torch.randn(2, 9, 16, device=DEVICE, requires_grad=True)

    def loss(x):
        h, aux = filt(x)
        return h.sum() + aux["mi_hash"]

    explained = torch._dynamo.explain(loss)(x)
    assert explained.graph_break_count == 0, explained.break_reasons


def compile_every_variant() -> dict:
    """{variant: error or ''}: the five kernels with bf16 inputs at the model's 16 buckets and with fp32 inputs at 12
    (a count that is not a power of two), for sm_90."""
    from infomamba.ops.hash_bucket import triton as hb

    jobs = {}
    fp32_ptrs = {"noise_ptr", "b_ptr", "nll_ptr", "e_ptr", "dnll_ptr", "db_ptr", "de_ptr", "member_ptr"}
    for dtype, nb in (("bf16", 16), ("fp32", 12)):
        for kernel in (hb._members_kernel, hb._gumbel_fwd_kernel, hb._gumbel_bwd_kernel, hb._nll_fwd_kernel,
                       hb._nll_bwd_kernel):
            types = {n: ("*fp32" if n in fp32_ptrs else "*" + dtype) if n.endswith("_ptr")
                     else "fp32" if n == "inv_tau" else "i32"
                     for n in kernel.arg_names if n != "NB" and not n.startswith("BLOCK")}
            consts = {n: v for n, v in dict(NB=nb, BLOCK_T=32, BLOCK_NB=16, BLOCK_D=64, BLOCK_K=128).items()
                      if n in kernel.arg_names}
            jobs[f"{kernel.fn.__name__} {dtype} nb={nb}"] = (kernel, types, consts, 8 if "BLOCK_K" in consts else 4)
    return compile_all(jobs)


def test_every_kernel_variant_compiles_for_sm90(tmp_path):
    assert_every_variant_compiles(__file__, "compile_every_variant", tmp_path / "triton-cache", 10)
