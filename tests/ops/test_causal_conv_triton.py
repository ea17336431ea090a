"""Triton causal conv + SiLU (kernels/causal_conv.py) against `causal_conv_silu_reference` of
infomamba.ssm.

Output and the gradients of x, weight and bias, both directions, K in {1, 2, 4}, L in {1, 5, 37}
(L < K and L not a multiple of the tile), D = 70. The tiles are shrunk (8 steps, 64 channels; the backward's
chunks 8 scan positions) so that these small shapes span several time tiles, backward chunks and channel
tiles, with partial ones at both ends; the backward's walk is also checked at every K from 1 to 8 with chunks
shorter than its halo. On a machine without CUDA the kernels run in Triton's
interpreter (TRITON_INTERPRET=1 is set here, before triton is imported; conftest.py patches the
interpreter) in fp32; on CUDA the same tests also run with bf16 x (fp32 parameters, as under autocast).
The launches as the fused SSM op makes them (x a strided view, the padding mask, the fused u = SiLU(conv)
+ p h epilogue) run in fp32 and bf16 everywhere.

Tolerances are relative to the largest magnitude of the reference tensor (at least 1): fp32 1e-5,
bf16 2e-2 (the reference rounds the conv to bf16 before the SiLU; the kernel does not).
"""
import pytest
import torch

ON_CUDA = torch.cuda.is_available()
triton = pytest.importorskip("triton")

from infomamba.ops.causal_conv import triton as causal_conv
from infomamba.ops.causal_conv.triton import causal_conv_silu_triton
from infomamba.ops.causal_conv import causal_conv_silu_reference
from infomamba.ops.ssm_inner.reference import keep_mask, masked, scan_input

DEVICE = "cuda" if ON_CUDA else "cpu"
FP32, BF16 = torch.float32, torch.bfloat16
DTYPES = [FP32, BF16] if ON_CUDA else [FP32]
TOL = {FP32: 1e-5, BF16: 2e-2}
D = 70


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch):
    monkeypatch.setattr(causal_conv, "FWD_CONFIG", causal_conv.ConvConfig(block_t=8, block_d=64, num_warps=4))
    monkeypatch.setattr(causal_conv, "BWD_CONFIG", causal_conv.ConvConfig(block_t=8, block_d=64, num_warps=4))


def make_inputs(batch, length, K, dtype=FP32, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, D, generator=g).to(DEVICE, dtype)
    weight = (torch.randn(D, 1, K, generator=g) / K**0.5).to(DEVICE)[:, 0]  # as SelectiveSSM passes it
    b = torch.randn(D, generator=g).to(DEVICE) if bias else None
    return x, weight, b


def run(fn, x, weight, bias, reverse, seed=1):
    """(y, dx, dweight, dbias) of fn for loss = <dy, y>, under bf16 autocast (as in training) for bf16
    x: the reference's conv1d then casts the fp32 parameters."""
    x = x.detach().requires_grad_()
    weight = weight.detach().requires_grad_()
    bias = bias.detach().requires_grad_() if bias is not None else None
    with torch.autocast(DEVICE, dtype=BF16, enabled=x.dtype == BF16):
        y = fn(x, weight, bias, reverse=reverse)
    g = torch.Generator().manual_seed(seed)
    (y * torch.randn(y.shape, generator=g).to(DEVICE, y.dtype)).sum().backward()
    return y.detach(), x.grad, weight.grad, bias.grad if bias is not None else None


def assert_close(got, want, tol, what):
    assert got.dtype == want.dtype and got.shape == want.shape, what
    scale = max(1.0, want.abs().max().item())
    err = (got.float() - want.float()).abs().max().item()
    assert err <= tol * scale, f"{what}: max error {err:.3g} > {tol:g} x {scale:.3g}"


def check_against_reference(x, weight, bias, reverse, tol):
    got = run(causal_conv_silu_triton, x, weight, bias, reverse)
    want = run(causal_conv_silu_reference, x, weight, bias, reverse)
    for name, g, w in zip(("y", "dx", "dweight", "dbias"), got, want):
        if name == "dbias" and bias is None:
            assert g is None and w is None
        else:
            assert_close(g, w, tol, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("length", [1, 5, 37])
@pytest.mark.parametrize("K", [1, 2, 4])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_matches_reference(reverse, K, length, dtype):
    x, weight, bias = make_inputs(2, length, K, dtype)
    check_against_reference(x, weight, bias, reverse, TOL[dtype])


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_without_bias(reverse):
    x, weight, _ = make_inputs(2, 5, 4, bias=False)
    check_against_reference(x, weight, None, reverse, TOL[FP32])


def test_non_contiguous_and_empty():
    """x a transposed view (copied by the kernel), K = 3 (not a power of 2); empty batch and L = 0
    give empty outputs and zero parameter gradients."""
    x, weight, bias = make_inputs(2, 11, 3)
    x = x.transpose(0, 1).contiguous().transpose(0, 1)
    assert not x.is_contiguous()
    check_against_reference(x, weight, bias, True, TOL[FP32])
    for empty in (x[:0], x[:, :0]):
        y, dx, dweight, dbias = run(causal_conv_silu_triton, empty, weight, bias, False)
        assert y.shape == dx.shape == empty.shape
        assert dweight.shape == weight.shape and not dweight.any() and not dbias.any()


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_causality(reverse):
    """Perturbing x at step t changes y exactly at t..t+K-1 (forward) or t-K+1..t (reverse): sample
    j + 1 of the batch is sample 0 perturbed at step j. Exact sets, so a swapped direction fails."""
    K, L = 4, 12
    x, weight, bias = make_inputs(1, L, K)
    weight = weight.abs() + 0.1  # no zero tap, so every reachable step changes
    xs = x.repeat(L + 1, 1, 1)
    steps = torch.arange(L)
    xs[steps + 1, steps] += 1.0
    y = causal_conv_silu_triton(xs, weight, bias, reverse=reverse)
    changed = (y[1:] != y[:1]).any(-1)
    for t in range(L):
        want = range(max(0, t - K + 1), t + 1) if reverse else range(t, min(L, t + K))
        assert changed[t].nonzero().flatten().tolist() == list(want), f"perturbed at {t}"


@pytest.mark.parametrize("config", causal_conv.FWD_CANDIDATES + causal_conv.BWD_CANDIDATES, ids=str)
def test_every_swept_config_matches_reference(config, monkeypatch):
    """The launch shapes `benchmarks/bench_conv.py --sweep` may pick from, forward and backward, at a
    length that spans several tiles and a width that is not a multiple of block_d."""
    monkeypatch.setattr(causal_conv, "FWD_CONFIG", config)
    monkeypatch.setattr(causal_conv, "BWD_CONFIG", config)
    x, weight, bias = make_inputs(2, 75, 4)
    for reverse in (False, True):
        check_against_reference(x, weight, bias, reverse, TOL[FP32])


def padding(batch, length, kind):
    """(B, L) True at padding: sample 0 padded on the right, sample 1 on the left ("both"), or None."""
    if kind is None:
        return None
    mask = torch.zeros(batch, length, dtype=torch.bool, device=DEVICE)
    mask[0, length - 9:] = True
    mask[1, :7] = True
    return mask


@pytest.mark.parametrize("dtype", [FP32, BF16], ids=str)
@pytest.mark.parametrize("pad", [None, "both"])
@pytest.mark.parametrize("inject", [None, "p", "identity"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_fused_scan_input_from_a_strided_x(reverse, inject, pad, dtype):
    """The fused SSM op's use of the kernels: x the first half of in_proj's (B, L, 2D) output (a view, read
    through its batch and row strides), padding masked on load, and the forward's epilogue u = SiLU(conv(x~))
    + p h, 0 at padding, against the reference's `scan_input` on a contiguous copy; the backward's dx (0 at
    padding), dweight and dbias against autograd through the reference conv of x~. Padding holds garbage x, so
    a kernel that read it, or read x at the wrong rows, fails; both directions reach the padding (left padding
    in the forward direction, right padding in reverse)."""
    batch, length, K = 2, 37, 4
    xz, weight, bias = make_inputs(batch, length, K, dtype)
    xz = torch.cat([xz, torch.randn(xz.shape, generator=torch.Generator().manual_seed(2)).to(DEVICE, dtype)], -1)
    x = xz[..., :D]
    assert x.stride() == (length * 2 * D, 2 * D, 1)
    g = torch.Generator().manual_seed(3)
    h = torch.randn(x.shape, generator=g).to(DEVICE, dtype) if inject else None
    p = torch.randn(D, generator=g).to(DEVICE) if inject == "p" else None
    dy = torch.randn(x.shape, generator=g).to(DEVICE, dtype)
    mask = padding(batch, length, pad)
    keep = keep_mask(mask, x)
    tol = TOL[dtype]

    u = causal_conv.conv_forward(x, weight, bias, reverse, h=h, p=p, padding_mask=mask)
    _, u_ref = scan_input(x.contiguous(), weight, bias, h, p, keep, reverse)
    assert_close(u, u_ref, tol, "u")

    dx, dweight, dbias = causal_conv.conv_backward(x, weight, bias, dy, reverse, padding_mask=mask)
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    y_ref = causal_conv_silu_reference(masked(leaves[0], keep), *leaves[1:], reverse=reverse)
    dx_ref, dweight_ref, dbias_ref = torch.autograd.grad(y_ref, leaves, dy)
    assert_close(dx, dx_ref, tol, "dx")
    assert_close(dweight, dweight_ref, tol, "dweight")
    assert_close(dbias, dbias_ref, tol, "dbias")
    if mask is not None:
        assert not u[mask].any() and not dx[mask].any(), "padded positions must give u = 0 and dx = 0"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("chunk", [1, 3])
@pytest.mark.parametrize("K", range(1, 9))
def test_backward_walk_at_every_tap_count(K, chunk, dtype, monkeypatch):
    """The backward's scan-order walk (chunks of `chunk` positions, each walking the K - 1 positions on either
    side too) at every K from 1 to 8: chunks of 1 and 3 positions are shorter than the halo at large K, L 19 is
    no multiple of 3 and L 5 is shorter than K from K 6; x strided, padding on either side (at L 5 sample 1
    is all padding), so that chunk boundaries fall inside padding in both directions. dx, dweight and dbias
    against autograd through the reference conv of x~: a window rotated wrongly, or a halo position added to dw
    by two chunks, fails."""
    monkeypatch.setattr(causal_conv, "BWD_CONFIG", causal_conv.ConvConfig(block_t=chunk, block_d=128, num_warps=2))
    for length in (5, 19):
        xz, weight, bias = make_inputs(2, length, K, dtype, seed=K)
        x = torch.cat([xz, xz.flip(1)], -1)[..., :D]
        dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(K + 1)).to(DEVICE, dtype)
        mask = padding(2, length, "both")
        for reverse in (False, True):
            dx, dweight, dbias = causal_conv.conv_backward(x, weight, bias, dy, reverse, padding_mask=mask)
            leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
            y_ref = causal_conv_silu_reference(masked(leaves[0], keep_mask(mask, x)), *leaves[1:], reverse=reverse)
            for name, got, want in zip(("dx", "dweight", "dbias"), (dx, dweight, dbias),
                                       torch.autograd.grad(y_ref, leaves, dy)):
                assert_close(got, want, TOL[dtype], f"{name} L {length} reverse {reverse}")
            assert not dx[mask].any(), "dx must be 0 at padding"
