"""Every launch variant of the conv kernels compiles for the GPU (sm_90) on a machine without one
(`sm90_compile`): both kernels, every candidate config in both directions with padding (and, in the forward,
the fused P h injection) and 4 taps; the first config also without padding and with 3 taps, and the backward's
also without bias (with and without padding) and with 1 and 8 taps; the backward's launch config adding dx into
another's in both directions; x in bf16 with its row stride, the
parameters in fp32, as the fused SSM op launches them under autocast."""
import itertools

import pytest

pytest.importorskip("triton")
from infomamba.ops.causal_conv import triton as cc  # noqa: E402
from sm90_compile import CONV_ARGS, arg_types, assert_every_variant_compiles, compile_all  # noqa: E402


def compile_every_variant() -> dict:
    """{variant: error or ''} for every (kernel, config, direction, padding, taps) variant, compiled for sm_90."""
    from infomamba.ops.causal_conv import triton as cc

    jobs = {}
    for kind, kernel, configs in (("fwd", cc._conv_fwd_kernel, cc.FWD_CANDIDATES),
                                  ("bwd", cc._conv_bwd_kernel, cc.BWD_CANDIDATES)):
        types = arg_types(kernel, *CONV_ARGS)
        first = [(configs[0], S, padded, K, True) for S in (-1, 1) for padded, K in ((False, 4), (True, 3))]
        if kind == "bwd":
            first += [(configs[0], S, padded, 4, False) for S in (-1, 1) for padded in (False, True)]
            first += [(configs[0], S, True, K, True) for S in (-1, 1) for K in (1, 8)]
        for cfg, S, padded, K, bias in [*itertools.product(configs, (-1, 1), (True,), (4,), (True,)), *first]:
            constants = dict(K=K, S=S, HAS_BIAS=bias, HAS_PAD=padded, BLOCK_D=cfg.block_d)
            if kind == "fwd":
                constants.update(HAS_H=padded, HAS_P=padded, BLOCK_T=cfg.block_t)
            else:
                constants.update(CHUNK=cfg.block_t, ACC=False)
            variant = f"{kind} {tuple(cfg)} S={S} HAS_PAD={padded} K={K} HAS_BIAS={bias}"
            jobs[variant] = (kernel, types, constants, cfg.num_warps)
    cfg = cc.BWD_CONFIG
    for S in (-1, 1):
        jobs[f"bwd {tuple(cfg)} S={S} adding dx into the other direction's"] = (
            cc._conv_bwd_kernel, arg_types(cc._conv_bwd_kernel, *CONV_ARGS),
            dict(K=4, S=S, HAS_BIAS=True, HAS_PAD=True, BLOCK_D=cfg.block_d, CHUNK=cfg.block_t, ACC=True),
            cfg.num_warps)
    return compile_all(jobs)


def test_every_conv_kernel_variant_compiles_for_sm90(tmp_path):
    assert_every_variant_compiles(__file__, "compile_every_variant", tmp_path / "triton-cache",
                                  2 * (len(cc.FWD_CANDIDATES) + len(cc.BWD_CANDIDATES)) + 18)
