"""The bidirectional pair op (`ops/ssm_inner/triton.py`'s `ssm_inner_pair`) against the sum of its two directions'
references: the readout and the gradients of x, h, p and both directions' parameters, in both SSM forms, with and
without conv, injection and padding. The pair's reverse scan adds its readout into the forward scan's (in the SSD
forward kernel; by torch after the Mamba-1 scan), and its backward kernels add one direction's dx (conv backward; by
torch without a conv) and dh (injection backward) into the other's: a dropped or doubled term fails here. Without
CUDA the kernels run in Triton's interpreter in fp32; on CUDA in fp32 and bf16.
"""
import pytest
import torch

import test_ssm_inner as mamba1  # tests/ops is on the path
import test_ssm_inner_ssd_triton as ssd_form
from infomamba.ops.ssd_scan import triton as ssd
from infomamba.ops.ssm_inner import ssm_inner_pair, ssm_inner_pair_reference
from infomamba.ops.ssm_inner.triton import ssm_inner_pair_triton
from test_ssm_inner import DEVICE, DTYPES, assert_close_rel

PARAMS = ("conv_w", "conv_b", "x_proj_w", "dt_proj_w", "dt_proj_b", "A_log", "D")
TOL = {torch.float32: 2e-4, torch.bfloat16: 5e-2}


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    monkeypatch.setenv("INFOMAMBA_SCAN_AUTOTUNE", "0")
    monkeypatch.setattr(mamba1.scan, "CHUNK", 16)
    monkeypatch.setattr(ssd, "CHUNK", 16)


def pair_inputs(form: str, dtype: torch.dtype, **options):
    """(x, h, p, mask, forward params, reverse params): the two directions' parameters drawn apart."""
    make = mamba1.make_inputs if form == "mamba1" else ssd_form.make_inputs
    first, mask = make(dtype=dtype, **options)
    second, _ = make(dtype=dtype, seed=1, **options)
    return (first["x"], first["h"], first["p"], mask, tuple(first[k] for k in PARAMS),
            tuple(second[k] for k in PARAMS))


def readout_and_grads(fn, x, h, p, mask, forward, reverse, dy):
    y = fn(x, h, p, mask, forward, reverse)
    leaves = [t for t in (x, h, p, *forward, *reverse) if t is not None]
    return y, torch.autograd.grad(y, leaves, dy)


def exact(t):
    return t.detach().float().requires_grad_(True) if t is not None else None


CASES = [("mamba1", dict(conv=True, inject="p", pad="left")), ("mamba1", dict(conv=False, inject=None, pad=None)),
         ("ssd", dict(conv=True, inject=True, pad="right")), ("ssd", dict(conv=False, inject=True, pad=None)),
         ("ssd", dict(conv=True, inject=False, pad="left"))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form,options", CASES, ids=[f"{f}-{'-'.join(map(str, o.values()))}" for f, o in CASES])
def test_pair_matches_the_sum_of_its_directions(form, options, dtype):
    x, h, p, mask, forward, reverse = pair_inputs(form, dtype, **options)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(DEVICE, dtype)
    y, grads = readout_and_grads(ssm_inner_pair_triton, x, h, p, mask, forward, reverse, dy)
    want, want_grads = readout_and_grads(ssm_inner_pair_reference, exact(x), exact(h), exact(p), mask,
                                         tuple(map(exact, forward)), tuple(map(exact, reverse)), dy.float())
    assert y.dtype == dtype
    assert_close_rel(y, want, TOL[dtype], "y")
    names = [n for n, t in zip(("x", "h", "p", *PARAMS, *(f"{k} (reverse)" for k in PARAMS)),
                               (x, h, p, *forward, *reverse)) if t is not None]
    for name, g, g_want in zip(names, grads, want_grads, strict=True):
        assert_close_rel(g, g_want, TOL[dtype], f"d{name}")
    if mask is not None:
        assert (grads[0][mask] == 0).all(), "padded inputs must get no gradient"


def test_dispatch_runs_the_pair_op_when_kernels_run(monkeypatch):
    x, h, p, mask, forward, reverse = pair_inputs("ssd", torch.float32, conv=True, inject=True, pad="left")
    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    assert torch.equal(ssm_inner_pair(x, h, p, mask, forward, reverse),
                       ssm_inner_pair_triton(x, h, p, mask, forward, reverse))
    monkeypatch.setenv("INFOMAMBA_KERNELS", "reference")
    assert torch.equal(ssm_inner_pair(x, h, p, mask, forward, reverse),
                       ssm_inner_pair_reference(x, h, p, mask, forward, reverse))
