"""Every launch variant of the scan kernels compiles for the GPU (sm_90) on a machine without one
(`sm90_compile`): time-chunked or not, the first-pass-only modes, with and without padding and D (the padded
ones reading A as A_log and adding dt's bias, as the fused SSM op launches them); every candidate layout chunked.
"""
import pytest

pytest.importorskip("triton")
from infomamba.ops.selective_scan import triton as ss  # noqa: E402
from sm90_compile import (SCAN_ARGS, arg_types, assert_every_variant_compiles, compile_all,  # noqa: E402
                          layouts_and_registers_sm90, variants_in_subprocess)

MODES = [(False, False), (True, True), (False, True)]  # (first-pass-only mode, chunked)


def compile_every_variant() -> dict:
    """{variant: error or ''} for every (kernel, mode, padding) variant, compiled for sm_90."""
    from infomamba.ops.selective_scan import triton as ss

    def variants(kind):
        """Every mode of the first candidate, padded and not; every other candidate chunked and padded."""
        first, *others = ss.candidate_configs(kind, 16)
        yield from ((first, only, chunked, padded) for only, chunked in MODES for padded in (False, True))
        yield from ((cfg, False, True, True) for cfg in others)

    jobs = {}
    for kind, kernel, mode_flag in (("fwd", ss._scan_fwd_kernel, "STATES_ONLY"),
                                    ("bwd", ss._scan_bwd_kernel, "ADJOINT_ONLY")):
        types = arg_types(kernel, *SCAN_ARGS)
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


def backward_layouts() -> dict:
    """{A_LOG: (the register layouts of its TTGIR, registers a thread)} of the backward kernel's first candidate as
    the fused SSM op launches it (bf16, dt's bias and softplus inside), reading A or A_log, compiled for sm_90."""
    kernel, cfg = ss._scan_bwd_kernel, ss.candidate_configs("bwd", 16)[0]
    types = arg_types(kernel, *SCAN_ARGS)
    return {str(a_log): layouts_and_registers_sm90(kernel, types, dict(
        HAS_D=True, REVERSE=False, DT_SOFTPLUS=True, HAS_PAD=False, ADJOINT_ONLY=False, CHUNKED=False, A_LOG=a_log,
        HAS_DT_BIAS=True, CHUNK=ss.CHUNK, PREFETCH=False, BLOCK_T=cfg.block_t, D_IN=cfg.d_in, D_LANES=cfg.d_lanes,
        BLOCK_N=16), cfg.num_warps) for a_log in (False, True)}


def test_reading_A_log_keeps_the_backward_register_layout(tmp_path):
    """A_log arrives transposed like A, so that its load leaves the kernel's layouts (channels across lanes) as they
    are: read in A_log's own (d, n) layout it put the states across lanes, 216 registers a thread instead of 147."""
    result = variants_in_subprocess(__file__, "backward_layouts", tmp_path / "triton-cache")
    (layouts_a, registers_a), (layouts_log, registers_log) = result["False"], result["True"]
    assert layouts_log == layouts_a
    assert registers_log <= registers_a + 8, (registers_a, registers_log)  # the exp and dA * A, not a new layout
