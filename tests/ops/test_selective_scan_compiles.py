"""Every launch variant of the scan kernels compiles for the GPU (sm_90) on a machine without one
(`sm90_compile`): time-chunked or not, the first-pass-only modes, with and without padding and D (the padded
ones reading A as A_log and adding dt's bias, as the fused SSM op launches them); every candidate layout chunked.
"""
import pytest

pytest.importorskip("triton")
from infomamba.ops.selective_scan import triton as ss  # noqa: E402
from sm90_compile import assert_every_variant_compiles, compile_all  # noqa: E402

MODES = [(False, False), (True, True), (False, True)]  # (first-pass-only mode, chunked)
FP32_POINTERS = {"At_ptr", "D_ptr", "dtb_ptr", "dAp_ptr", "dB_ptr", "dC_ptr", "dDp_ptr", "ckpt_ptr", "xf_ptr", "S_ptr",
                 "W_ptr", "Dl_ptr"}
INTS = {"L", "LC", "N_TCHUNKS", "DIM", "NSTATE", "N_CHUNKS", "BC_BATCH", "BC_ROW"}


def compile_every_variant() -> dict:
    """{variant: error or ''} for every (kernel, mode, padding) variant, compiled for sm_90."""
    from infomamba.ops.selective_scan import triton as ss

    def arg_type(name):
        if name.endswith("_ptr"):
            return "*fp32" if name in FP32_POINTERS else "*i1" if name == "pad_ptr" else "*bf16"
        return "i32" if name in INTS else "constexpr"

    def variants(kind):
        """Every mode of the first candidate, padded and not; every other candidate chunked and padded."""
        first, *others = ss.candidate_configs(kind, 16)
        yield from ((first, only, chunked, padded) for only, chunked in MODES for padded in (False, True))
        yield from ((cfg, False, True, True) for cfg in others)

    jobs = {}
    for kind, kernel, mode_flag in (("fwd", ss._scan_fwd_kernel, "STATES_ONLY"),
                                    ("bwd", ss._scan_bwd_kernel, "ADJOINT_ONLY")):
        types = {n: arg_type(n) for n in kernel.arg_names}
        for cfg, only, chunked, padded in variants(kind):
            constants = dict(HAS_D=not padded, REVERSE=padded, DT_SOFTPLUS=True, HAS_PAD=padded, CHUNKED=chunked,
                             A_LOG=padded, HAS_DT_BIAS=padded,
                             BLOCK_T=cfg.block_t, D_IN=cfg.d_in, D_LANES=cfg.d_lanes, BLOCK_N=16,
                             **{mode_flag: only}, **({"CHUNK": ss.CHUNK} if kind == "bwd" else {}))
            variant = f"{kind} {tuple(cfg)} {mode_flag}={only} CHUNKED={chunked} HAS_PAD=A_LOG=HAS_DT_BIAS={padded}"
            jobs[variant] = (kernel, types, constants, cfg.num_warps)
    return compile_all(jobs)


def test_every_scan_kernel_variant_compiles_for_sm90(tmp_path):
    expected = sum(2 * len(MODES) + len(ss.candidate_configs(kind, 16)) - 1 for kind in ("fwd", "bwd"))
    assert_every_variant_compiles(__file__, "compile_every_variant", tmp_path / "triton-cache", expected)
