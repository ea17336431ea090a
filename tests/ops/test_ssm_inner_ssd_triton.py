"""The fused SSM inner op in the SSD form (A_log of shape (H,): `ops/ssm_inner/triton.py` with the kernels of
`ops/ssd_scan/triton.py`) against the inner path's reference: values and the gradients of every input, both
directions, with and without conv, the injection P h and padding on either side. Without CUDA the kernels run in
Triton's interpreter (tests/conftest.py) in fp32; on CUDA in fp32 and bf16 (the oracle: the reference in fp32 on
the same inputs)."""
import pytest
import torch

from infomamba.ops.ssd_scan import triton as ssd
from infomamba.ops.ssm_inner.triton import ssm_inner_triton
from test_ssm_inner import DEVICE, DTYPES, assert_fused_matches_reference  # tests/ops is on the path (sm90_compile too)

TOL = {torch.float32: 2e-4, torch.bfloat16: 5e-2}


@pytest.fixture(autouse=True)
def _small_chunk(monkeypatch):
    monkeypatch.setattr(ssd, "CHUNK", 16)
    monkeypatch.setattr(ssd, "Y_CHUNK", 32)


def make_inputs(B=2, L=37, E=32, H=2, N=16, R=2, K=4, conv=True, inject=True, pad=None, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(DEVICE)

    params = dict(
        x=randn(B, L, E).to(dtype), conv_w=randn(E, K, scale=0.5) if conv else None,
        conv_b=randn(E, scale=0.1) if conv else None, h=randn(B, L, E, scale=0.3).to(dtype) if inject else None,
        p=randn(E, scale=0.5) if inject else None, x_proj_w=randn(R + 2 * N, E, scale=E ** -0.5),
        dt_proj_w=randn(H, R, scale=R ** -0.5), dt_proj_b=randn(H, scale=0.5) - 1.0,
        A_log=torch.log(torch.rand(H, generator=g) * 15 + 1).to(DEVICE), D=randn(E))
    for t in params.values():
        if t is not None:
            t.requires_grad_(True)
    mask = None
    if pad is not None:
        mask = torch.zeros(B, L, dtype=torch.bool, device=DEVICE)
        mask[(0, slice(L - 9, None)) if pad == "right" else (1, slice(None, 7))] = True
    return params, mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("conv,inject,pad", [(True, True, None), (True, False, "right"), (False, True, "left")])
def test_fused_ssd_matches_reference(dtype, reverse, conv, inject, pad):
    params, mask = make_inputs(conv=conv, inject=inject, pad=pad, dtype=dtype)
    assert_fused_matches_reference(params, mask, reverse, dtype, TOL[dtype])


def test_kernel_widths_are_checked_up_front():
    params, mask = make_inputs(E=24, H=2)
    with pytest.raises(ValueError, match=r"p \(channels a head, E / ssm_heads\) a power of two >= 16, got 12"):
        ssm_inner_triton(*params.values(), mask, False)
