"""benchmarks/op_count.py: ops a training step dispatches per block, counted on fake tensors.

At 224 px the eager InfoMamba step is launch-bound (docs/benchmarks.md), so this count is the number its
eager step time follows there."""
import os

import pytest

from benchmark_scripts import load


@pytest.fixture(scope="module")
def op_count():
    return load("op_count")


def totals(counts):
    return {phase: sum(v for (p, _, _), v in counts.items() if p == phase) for phase in ("forward", "backward")}


def test_each_fused_kernel_counts_once_and_views_not_at_all(op_count):
    before = os.environ.get("INFOMAMBA_KERNELS")
    counts = op_count.block_ops("mamba", 64, {})
    assert os.environ.get("INFOMAMBA_KERNELS") == before  # the count leaves the process's kernel choice alone
    ops = {}
    for (phase, _, name), v in counts.items():
        ops[phase, name] = ops.get((phase, name), 0) + v
    assert ops["forward", "ssm_inner"] == 2 and ops["backward", "ssm_inner_backward"] == 2  # bidirectional
    assert not any(name in op_count.NO_LAUNCH for _, name in ops)
    assert ops["forward", "mm"] >= 2  # in_proj and the gated out_proj


def test_infomamba_block_dispatches_at_most_2_85x_mamba(op_count):
    """The concept filter's ops on top of the selective SSM, per block (forward + backward, dim 384, 196
    tokens): 3.06x mamba's (248 vs 81) before Eq. 9's V, Q, K came from one matmul and the MI-hash loss took
    a plain mean where nothing is padded; 2.81x (228) after."""
    infomamba, mamba = (sum(totals(op_count.block_ops(m, 384, {})).values()) for m in ("infomamba", "mamba"))
    assert infomamba <= 2.85 * mamba, f"infomamba {infomamba} ops per block, mamba {mamba}"
