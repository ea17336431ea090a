"""Every launch variant of the conv kernels compiles for the GPU (sm_90) on a machine without one
(`sm90_compile`): both kernels, every candidate tile config in both directions with padding (and, in the
forward, the fused P h injection) and 4 taps; the first config also without padding and with 3 taps; x in bf16
with its row stride, the parameters in fp32, as the fused SSM op launches them under autocast."""
import itertools

import pytest

pytest.importorskip("triton")
from infomamba.ops.causal_conv import triton as cc  # noqa: E402
from sm90_compile import assert_every_variant_compiles, compile_all  # noqa: E402

FP32_POINTERS = {"w_ptr", "b_ptr", "p_ptr", "part_ptr"}
INTS = {"L", "D", "stride_b", "stride_l"}


def compile_every_variant() -> dict:
    """{variant: error or ''} for every (kernel, config, direction, padding, taps) variant, compiled for sm_90."""
    from infomamba.ops.causal_conv import triton as cc

    def arg_type(name):
        if name.endswith("_ptr"):
            return "*fp32" if name in FP32_POINTERS else "*i1" if name == "pad_ptr" else "*bf16"
        return "i32" if name in INTS else "constexpr"

    jobs = {}
    for kind, kernel, configs in (("fwd", cc._conv_fwd_kernel, cc.FWD_CANDIDATES),
                                  ("bwd", cc._conv_bwd_kernel, cc.BWD_CANDIDATES)):
        types = {n: arg_type(n) for n in kernel.arg_names}
        first = [(configs[0], S, padded, K) for S in (-1, 1) for padded, K in ((False, 4), (True, 3))]
        for cfg, S, padded, K in [*itertools.product(configs, (-1, 1), (True,), (4,)), *first]:
            constants = dict(K=K, S=S, HAS_BIAS=True, HAS_PAD=padded, BLOCK_T=cfg.block_t, BLOCK_D=cfg.block_d)
            if kind == "fwd":
                constants.update(HAS_H=padded, HAS_P=padded)
            else:
                constants.update(TILES=cfg.tiles, K_POW2=1 << (K - 1).bit_length())
            variant = f"{kind} {tuple(cfg)} S={S} HAS_PAD={padded} K={K}"
            jobs[variant] = (kernel, types, constants, cfg.num_warps)
    return compile_all(jobs)


def test_every_conv_kernel_variant_compiles_for_sm90(tmp_path):
    assert_every_variant_compiles(__file__, "compile_every_variant", tmp_path / "triton-cache",
                                  2 * (len(cc.FWD_CANDIDATES) + len(cc.BWD_CANDIDATES)) + 8)
