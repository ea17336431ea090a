"""Triton SiLU gate (`ops/silu_gate/triton.py`) against its reference: g forward, and (g, dy, dz) backward, for
contiguous inputs and a z that is the second half of a wider tensor (in_proj's output, read through its row
stride), a width that is not a multiple of the kernel's tile and several tiles of rows. On a machine without CUDA
the kernels run in Triton's interpreter (conftest.py) on fp32 and bf16 inputs; both sides compute in fp32.
"""
import pytest
import torch

pytest.importorskip("triton")
from infomamba.ops.silu_gate import silu_gate, silu_gate_backward  # noqa: E402
from infomamba.ops.silu_gate.reference import silu_gate_backward_reference, silu_gate_reference  # noqa: E402
from infomamba.ops.silu_gate.triton import silu_gate_backward_triton, silu_gate_triton  # noqa: E402
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
    """{variant: error or ''}: both kernels with bf16 activations and fp32 or bf16 results, for sm_90."""
    from infomamba.ops.silu_gate import triton as sg

    jobs = {}
    for kernel, out_ptrs in ((sg._gate_fwd_kernel, ("g_ptr",)), (sg._gate_bwd_kernel, ("g_ptr", "dy_ptr", "dz_ptr"))):
        for out in ("bf16", "fp32"):
            types = {n: ("*" + (out if n in out_ptrs else "bf16")) if n.endswith("_ptr") else "i32"
                     for n in kernel.arg_names if not n.startswith("BLOCK")}
            for block_r, block_e in ((16, 256), (1024, 4)):
                jobs[f"{kernel.fn.__name__} out={out} {block_r}x{block_e}"] = (
                    kernel, types, dict(BLOCK_R=block_r, BLOCK_E=block_e), 4)
    return compile_all(jobs)


def test_every_kernel_variant_compiles_for_sm90(tmp_path):
    assert_every_variant_compiles(__file__, "compile_every_variant", tmp_path / "triton-cache", 8)
