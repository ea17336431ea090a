"""Triton SiLU gate (`ops/silu_gate/triton.py`) against its reference: g forward, and (g, dy, dz) backward, and the
readout form ((y, g) forward, (g, dy, dz, dh, df) backward), for contiguous inputs and a z that is the second half
of a wider tensor (in_proj's output, read through its row stride), a width that is not a multiple of the kernel's
tile and several tiles of rows. On a machine without CUDA the kernels run in Triton's interpreter (conftest.py) on
fp32 and bf16 inputs; both sides compute in fp32.
"""
import pytest
import torch

pytest.importorskip("triton")
from infomamba.ops.silu_gate import silu_gate, silu_gate_backward  # noqa: E402
from infomamba.ops.silu_gate.reference import (readout_gate_backward_reference, readout_gate_reference,  # noqa: E402
                                               silu_gate_backward_reference, silu_gate_reference)
from infomamba.ops.silu_gate.triton import (readout_gate_backward_triton, readout_gate_triton,  # noqa: E402
                                            silu_gate_backward_triton, silu_gate_triton)
from sm90_compile import assert_every_variant_compiles, compile_all  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
FP32, BF16 = torch.float32, torch.bfloat16


def _inputs(dtype, strided: bool, shape=(3, 37, 300), seed=0):
    """y, z, dg with z in [-12, 12] (both SiLU tails); strided: z is a chunk of a (..., 2E) tensor."""
    g = torch.Generator().manual_seed(seed)
    y, dg = (torch.randn(*shape, generator=g).to(DEVICE, dtype) for _ in range(2))
    wide = (torch.randn(*shape[:-1], 2 * shape[-1], generator=g) * 4).clamp(-12, 12).to(DEVICE, dtype)
    z = wide.chunk(2, dim=-1)[1] if strided else wide[..., : shape[-1]].contiguous()
    return y, z, dg


def _close(got, want, dtype):
    assert got.dtype == want.dtype and got.shape == want.shape
    # bf16 results: both sides round one fp32 value, whose last bits may differ (sigmoid's own rounding)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == FP32 else dict(rtol=1.6e-2, atol=1e-2)
    torch.testing.assert_close(got.float(), want.float(), **tol)


@pytest.mark.parametrize("dtype", [FP32, BF16])
@pytest.mark.parametrize("strided", [False, True])
def test_forward_and_backward_match_the_reference(dtype, strided):
    y, z, dg = _inputs(dtype, strided)
    assert z.is_contiguous() != strided
    _close(silu_gate_triton(y, z), silu_gate_reference(y, z), dtype)
    for got, want in zip(silu_gate_backward_triton(y, z, dg, FP32), silu_gate_backward_reference(y, z, dg, FP32)):
        _close(got, want, dtype if got.dtype != FP32 else FP32)


def test_each_output_comes_in_its_own_dtype():
    y, z, dg = _inputs(FP32, strided=True)
    z, dg = z.to(BF16), dg.to(BF16)
    assert silu_gate_triton(y, z).dtype == FP32  # promoted, as y * SiLU(z)
    g, dy, dz = silu_gate_backward_triton(y, z, dg, BF16)
    assert (g.dtype, dy.dtype, dz.dtype) == (BF16, FP32, BF16)
    for got, want in zip((g, dy, dz), silu_gate_backward_reference(y, z, dg, BF16)):
        _close(got, want, BF16 if got.dtype == BF16 else FP32)


@pytest.mark.parametrize("shape", [(2, 0, 8), (2, 5, 0)], ids=["no tokens", "no channels"])
def test_empty_inputs_give_empty_outputs(shape):
    y, z, dg = (torch.randn(shape, device=DEVICE) for _ in range(3))
    assert silu_gate_triton(y, z).shape == shape
    assert [t.shape for t in silu_gate_backward_triton(y, z, dg, BF16)] == [shape] * 3


def test_shapes_must_match():
    y, z, dg = _inputs(FP32, strided=False)
    with pytest.raises(ValueError, match="one shape"):
        silu_gate_triton(y, z[:, :-1])
    with pytest.raises(ValueError, match="one shape"):
        silu_gate_backward_triton(y, z, dg[..., :-1], FP32)


def test_dispatch_runs_the_kernel_on_request_and_the_reference_for_float64(monkeypatch):
    """INFOMAMBA_KERNELS=triton sends CPU tensors to the kernel (the interpreter); float64 always takes the
    reference (gradcheck), whose result in float64 differs from a float32 computation."""
    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    y, z, dg = _inputs(FP32, strided=True)
    torch.testing.assert_close(silu_gate(y, z), silu_gate_triton(y, z), rtol=0, atol=0)
    for got, want in zip(silu_gate_backward(y, z, dg, FP32), silu_gate_backward_triton(y, z, dg, FP32)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    y64, z64 = y.double(), z.double()
    torch.testing.assert_close(silu_gate(y64, z64), silu_gate_reference(y64, z64), rtol=0, atol=0)


def test_torch_compile_traces_the_kernels_without_a_graph_break(monkeypatch):
    from infomamba.layers.gate import gated_projection

    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    torch._dynamo.reset()
    y, z, _ = _inputs(FP32, strided=True)
    w = torch.randn(5, y.shape[-1], device=DEVICE, requires_grad=True)
    explained = torch._dynamo.explain(lambda y, z: gated_projection(y, z, w).sum())(y.requires_grad_(), z)
    assert explained.graph_break_count == 0, explained.break_reasons


def compile_every_variant() -> dict:
    """{variant: error or ''}: both kernels with bf16 activations and fp32 or bf16 results, plain and in the readout
    form (f and the df partials fp32), for sm_90."""
    from infomamba.ops.silu_gate import triton as sg

    jobs = {}
    for kernel, out_ptrs in ((sg._gate_fwd_kernel, ("g_ptr",)), (sg._gate_bwd_kernel, ("g_ptr", "dy_ptr", "dz_ptr"))):
        for out in ("bf16", "fp32"):
            types = {n: ("*" + ("fp32" if n in ("f_ptr", "part_ptr", "share_ptr") else "i1" if n == "pad_ptr"
                                else out if n in out_ptrs else "bf16"))
                     if n.endswith("_ptr") else "i32" for n in kernel.arg_names
                     if n not in ("HAS_H", "HAS_SHARE", "HAS_PAD", "BLOCK_R", "BLOCK_E", "TILES")}
            for has_h in (False, True):
                readout_bwd = has_h and "TILES" in kernel.arg_names  # the launches `_gate_backward` makes
                elements = sg._READOUT_TILE if readout_bwd else sg._ELEMENTS_PER_PROGRAM
                for block_e in (256, 4):
                    constants = dict(HAS_H=has_h, BLOCK_R=elements // block_e, BLOCK_E=block_e)
                    shares = ((False, False),)
                    if "TILES" in kernel.arg_names:
                        constants["TILES"] = sg._READOUT_TILES if has_h else 1
                        shares = ((False, False), (True, False), (True, True)) if has_h else ((False, False),)
                    for share, pad in shares:
                        if "TILES" in kernel.arg_names:
                            constants = dict(constants, HAS_SHARE=share, HAS_PAD=pad)
                        jobs[f"{kernel.fn.__name__} out={out} readout={has_h} {elements // block_e}x{block_e} "
                             f"share={share} pad={pad}"] = (kernel, types, constants, 4)
    return compile_all(jobs)


def test_every_kernel_variant_compiles_for_sm90(tmp_path):
    assert_every_variant_compiles(__file__, "compile_every_variant", tmp_path / "triton-cache", 24)


def _readout_inputs(dtype, strided: bool, tokens: int = 300):
    """r, h, z, dg as `_inputs` over 4 x `tokens` rows (at 300, 1,200: several programs of the backward's row
    tiles, so that the df partials are summed) and f (E,) fp32, as the mixer's parameter."""
    r, z, dg = _inputs(dtype, strided, shape=(4, tokens, 300))
    g = torch.Generator().manual_seed(5)
    h = torch.randn(r.shape, generator=g).to(DEVICE, dtype)
    f = torch.randn(r.shape[-1], generator=g).to(DEVICE)
    return r, h, f, z, dg


@pytest.mark.parametrize("dtype", [FP32, BF16])
@pytest.mark.parametrize("strided", [False, True])
def test_readout_form_matches_the_reference(dtype, strided):
    """(y = r + f h, g) forward and (g, dy, dz, dh, df) backward of the readout form against its reference, with y
    in r's dtype and df summed over every token (fp32, relative to its size: a sum over 1,200 rows). g is checked
    against the gate of the kernel's own y: in bf16 the two y may differ in their last bit, which g scales by up to
    SiLU(12)."""
    r, h, f, z, dg = _readout_inputs(dtype, strided)
    y, g = readout_gate_triton(r, h, f, z)
    _close(y, readout_gate_reference(r, h, f, z)[0], dtype)
    _close(g, silu_gate_reference(y, z), dtype)
    got = readout_gate_backward_triton(y, z, dg, h, f, FP32)
    want = readout_gate_backward_reference(y, z, dg, h, f, FP32)
    for name, g_, w in zip(("g", "dy", "dz", "dh"), got[:4], want[:4]):
        _close(g_, w, dtype if g_.dtype != FP32 else FP32)
    assert got[4].dtype == FP32 and got[4].shape == f.shape
    torch.testing.assert_close(got[4], want[4], rtol=1e-4, atol=1e-4 * want[4].abs().max().item())


@pytest.mark.parametrize("dtype", [FP32, BF16])
@pytest.mark.parametrize("pad", [False, True], ids=["unpadded", "padded"])
def test_readout_backward_adds_the_pooled_readouts_gradient_into_r_only(dtype, pad):
    """With dr_pool, the gradient of r's mean over each sample's real tokens, the returned dy is r's gradient:
    dy + dr_pool / count at the real tokens of its own sample (4 samples of 100 tokens: the backward's programs of
    128 rows cross samples), 0 more at padding; dh and df stay those of y's gradient."""
    r, h, f, z, dg = _readout_inputs(dtype, strided=True, tokens=100)
    y, _ = readout_gate_triton(r, h, f, z)
    dr_pool = torch.randn(r.shape[0], r.shape[-1], generator=torch.Generator().manual_seed(7)).to(DEVICE)
    mask = None
    if pad:
        mask = torch.zeros(r.shape[:2], dtype=torch.bool, device=DEVICE)
        mask[0, :37] = mask[2, 83:] = True
    got = readout_gate_backward_triton(y, z, dg, h, f, FP32, dr_pool, mask)
    want = readout_gate_backward_reference(y, z, dg, h, f, FP32, dr_pool, mask)
    plain = readout_gate_backward_reference(y, z, dg, h, f, FP32)
    for g_, w in zip(got[:4], want[:4]):
        _close(g_, w, dtype if g_.dtype != FP32 else FP32)
    torch.testing.assert_close(got[4], plain[4], rtol=1e-4, atol=1e-4 * plain[4].abs().max().item())
    _close(got[3], plain[3], dtype)
    count = 100 if mask is None else (~mask).sum(1, keepdim=True)
    added = (dr_pool / count).unsqueeze(1) * (1.0 if mask is None else (~mask).unsqueeze(-1))
    _close(got[1], (plain[1].float() + added).to(dtype), dtype)


def test_readout_form_checks_f_and_handles_empty_inputs():
    r, h, f, z, dg = _readout_inputs(FP32, strided=False)
    with pytest.raises(ValueError, match=r"f must have shape \(300,\)"):
        readout_gate_triton(r, h, f[:-1], z)
    empty = [t[:, :0] for t in (r, h, z, dg)]
    y, g = readout_gate_triton(empty[0], empty[1], f, empty[2])
    assert y.shape == g.shape == empty[0].shape
    *_, df = readout_gate_backward_triton(y, empty[2], empty[3], empty[1], f, FP32)
    assert (df == 0).all() and df.shape == f.shape
