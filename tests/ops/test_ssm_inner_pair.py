"""The bidirectional pair op (`ops/ssm_inner/triton.py`'s `ssm_inner_pair`) against the sum of its two directions'
references: the readout and the gradients of x, h, p and both directions' parameters, in both SSM forms, with and
without conv, injection and padding. The pair's reverse scan adds its readout into the forward scan's (in the SSD
forward kernel; by torch after the Mamba-1 scan), and its backward kernels add one direction's dx (conv backward; by
torch without a conv) and dh (injection backward) into the other's: a dropped or doubled term fails here. Without
CUDA the kernels run in Triton's interpreter in fp32; on CUDA in fp32 and bf16, where the oracle is the single-direction
op's (whose own bf16 error against the reference its tests bound).
"""
import pytest
import torch

import test_ssm_inner as mamba1  # tests/ops is on the path
import test_ssm_inner_ssd_triton as ssd_form
from infomamba.ops.ssd_scan import triton as ssd
from infomamba.ops.ssm_inner import ssm_inner_pair, ssm_inner_pair_reference
from infomamba.ops.ssm_inner.triton import ssm_inner_pair_triton, ssm_inner_triton
from test_ssm_inner import DEVICE, DTYPES, ON_CUDA, assert_close_rel

PARAMS = ("conv_w", "conv_b", "x_proj_w", "dt_proj_w", "dt_proj_b", "A_log", "D")
TOL = 2e-4


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    monkeypatch.setenv("INFOMAMBA_SCAN_AUTOTUNE", "0")
    monkeypatch.setattr(mamba1.scan, "CHUNK", 16)
    monkeypatch.setattr(ssd, "CHUNK", 16)
    monkeypatch.setattr(ssd, "Y_CHUNK", 32)


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


def leaf_names(x, h, p, forward, reverse) -> list[str]:
    names = ("x", "h", "p", *PARAMS, *(f"{k} (reverse)" for k in PARAMS))
    return [n for n, t in zip(names, (x, h, p, *forward, *reverse)) if t is not None]


CASES = [("mamba1", dict(conv=True, inject="p", pad="left")), ("mamba1", dict(conv=False, inject=None, pad=None)),
         ("mamba1", dict(conv=True, inject="identity", pad="right")),
         ("ssd", dict(conv=True, inject=True, pad="right")), ("ssd", dict(conv=False, inject=True, pad=None)),
         ("ssd", dict(conv=True, inject=False, pad="left"))]
IDS = [f"{form}-{'-'.join(map(str, options.values()))}" for form, options in CASES]


@pytest.mark.parametrize("form,options", CASES, ids=IDS)
def test_pair_matches_the_sum_of_its_directions(form, options):
    """fp32, against the reference of each direction summed."""
    x, h, p, mask, forward, reverse = pair_inputs(form, torch.float32, **options)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    y, grads = readout_and_grads(ssm_inner_pair_triton, x, h, p, mask, forward, reverse, dy)
    want, want_grads = readout_and_grads(ssm_inner_pair_reference, x, h, p, mask, forward, reverse, dy)
    assert_close_rel(y, want, TOL, "y")
    for name, g, g_want in zip(leaf_names(x, h, p, forward, reverse), grads, want_grads, strict=True):
        assert_close_rel(g, g_want, TOL, f"d{name}")
    if mask is not None:
        assert (grads[0][mask] == 0).all(), "padded inputs must get no gradient"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form,options", CASES[2:4] + CASES[5:],  # P = I; the SSD form with and without h
                         ids=IDS[2:4] + IDS[5:])
def test_pair_adds_what_the_single_direction_ops_give(form, options, dtype):
    """In the activation dtype, against the single-direction op run once a direction and summed by autograd: every
    parameter's gradient is the same computation, bit for bit (but where atomics sum); the readout, dx and dh differ
    only by where their sum is rounded (once in fp32 inside the kernels, against each term rounded first), dp by the
    order of its sum. (Against the reference in fp32, a bf16 run's error is that of each direction's own op, tested
    in `test_ssm_inner*.py`.)"""
    x, h, p, mask, forward, reverse = pair_inputs(form, dtype, **options)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(DEVICE, dtype)
    y, grads = readout_and_grads(ssm_inner_pair_triton, x, h, p, mask, forward, reverse, dy)

    def singles(x, h, p, mask, forward, reverse):
        return sum(ssm_inner_triton(x, params[0], params[1], h, p, *params[2:], mask, backwards)
                   for params, backwards in ((forward, False), (reverse, True)))

    want, want_grads = readout_and_grads(singles, x, h, p, mask, forward, reverse, dy)
    rounding = 1e-6 if dtype == torch.float32 else 2 ** -7  # relative to each tensor's largest entry
    assert_close_rel(y, want, rounding, "y")
    bitwise = form == "ssd" or not ON_CUDA  # the Mamba-1 scan's backward sums dB and dC by atomics on the GPU
    for name, g, g_want in zip(leaf_names(x, h, p, forward, reverse), grads, want_grads, strict=True):
        if name in ("x", "h", "p") or not bitwise:
            assert_close_rel(g, g_want, rounding, f"d{name}")
        else:
            assert torch.equal(g, g_want), f"d{name}"


def test_dispatch_runs_the_pair_op_when_kernels_run(monkeypatch):
    x, h, p, mask, forward, reverse = pair_inputs("ssd", torch.float32, conv=True, inject=True, pad="left")
    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    assert torch.equal(ssm_inner_pair(x, h, p, mask, forward, reverse),
                       ssm_inner_pair_triton(x, h, p, mask, forward, reverse))
    monkeypatch.setenv("INFOMAMBA_KERNELS", "reference")
    assert torch.equal(ssm_inner_pair(x, h, p, mask, forward, reverse),
                       ssm_inner_pair_reference(x, h, p, mask, forward, reverse))
