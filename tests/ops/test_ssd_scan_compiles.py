"""Every launch variant of the SSD scan kernels compiles for the GPU (sm_90) on a machine without one (`sm90_compile`;
the interpreter tests never compile): the forward with y, with and without D; the backward's two walks in one
kernel (the forward's state pass and the state-adjoint pass); the chunk-parallel backward with and without D; x, B,
C in bf16 (both directions) and in fp32 (forward), at the launch configs the op uses (`FWD_CONFIG`, `BWD_CONFIG`,
`CHUNK`, and `Y_CHUNK` for the forward with y: block, warps and pipeline stages), p 64 and n 16; and each kernel in
the fused SSM op's form (dt_pre in bf16 with its bias and the padding mask, A_log), the forward also adding y into
the other direction's readout.
"""
import pytest

pytest.importorskip("triton")
from sm90_compile import assert_every_variant_compiles, compile_all  # noqa: E402

FP32 = {"dt_ptr", "A_ptr", "dtb_ptr", "D_ptr", "ddt_ptr", "dB_ptr", "dC_ptr", "dA_ptr", "dD_ptr"}
STEP = dict(DT_SOFTPLUS=False, HAS_PAD=False, A_LOG=False)
FUSED_STEP = dict(DT_SOFTPLUS=True, HAS_PAD=True, A_LOG=True)
INTS = {"L", "H", "n_chunks", "s_xb", "s_xl", "s_dtb", "s_dtl", "s_bb", "s_bl", "s_cb", "s_cl"}


def types(kernel, dtype: str, fused: bool = False) -> dict:
    """Argument types; `fused`: dt_pre and its gradient in the activation dtype, the padding mask bool."""
    def arg_type(name):
        if name == "pad_ptr":
            return "*i1"
        if fused and name in ("dt_ptr", "ddt_ptr"):
            return f"*{dtype}"
        if name.endswith("_ptr"):
            return "*fp32" if name in FP32 else f"*{dtype}"
        return "i32" if name in INTS else "constexpr"
    return {name: arg_type(name) for name in kernel.arg_names}


def compile_every_variant() -> dict:
    from infomamba.ops.ssd_scan import triton as ssd

    block_p, *walk = ssd.FWD_CONFIG  # (warps, stages) of the chunk walks, as launched
    bwd = ssd.BWD_CONFIG
    jobs = {}
    for dtype in ("bf16", "fp32"):
        shape = dict(P=64, N=16, Q=ssd.CHUNK, PREC="ieee" if dtype == "fp32" else "tf32")
        for reverse in (False, True) if dtype == "bf16" else (False,):
            for has_d in (True, False):
                jobs[f"fwd {dtype} reverse={reverse} D={has_d}"] = (
                    ssd._ssd_fwd_kernel, types(ssd._ssd_fwd_kernel, dtype),
                    dict(shape, **STEP, Q=ssd.Y_CHUNK, BLOCK_P=block_p, HAS_D=has_d, REVERSE=reverse, WRITE_Y=True,
                         SAVE_STATES=False, ACC=False), *walk)
            jobs[f"walks {dtype} reverse={reverse}"] = (
                ssd._ssd_bwd_walks_kernel, types(ssd._ssd_bwd_walks_kernel, dtype),
                dict(shape, **STEP, BLOCK_P=block_p, REVERSE=reverse), *walk)
            for has_d in (True, False):
                jobs[f"chunk bwd {dtype} reverse={reverse} D={has_d}"] = (
                    ssd._ssd_bwd_chunk_kernel, types(ssd._ssd_bwd_chunk_kernel, dtype),
                    dict(shape, **STEP, HAS_D=has_d, REVERSE=reverse), *bwd)
    shape = dict(P=64, N=16, Q=ssd.CHUNK, PREC="tf32", **FUSED_STEP, REVERSE=True)
    for acc in (False, True):
        jobs[f"fused fwd bf16 added into={acc}"] = (
            ssd._ssd_fwd_kernel, types(ssd._ssd_fwd_kernel, "bf16", fused=True),
            dict(shape, Q=ssd.Y_CHUNK, BLOCK_P=block_p, HAS_D=True, WRITE_Y=True, SAVE_STATES=False, ACC=acc), *walk)
    jobs["fused walks bf16"] = (ssd._ssd_bwd_walks_kernel, types(ssd._ssd_bwd_walks_kernel, "bf16", fused=True),
                                dict(shape, BLOCK_P=block_p), *walk)
    jobs["fused chunk bwd bf16"] = (ssd._ssd_bwd_chunk_kernel, types(ssd._ssd_bwd_chunk_kernel, "bf16", fused=True),
                                    dict(shape, HAS_D=True), *bwd)
    return compile_all(jobs)


def test_every_ssd_kernel_variant_compiles_for_sm90(tmp_path):
    assert_every_variant_compiles(__file__, "compile_every_variant", tmp_path / "triton-cache", 3 * (2 + 1 + 2) + 4)
