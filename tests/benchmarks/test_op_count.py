"""benchmarks/op_count.py: ops a training step dispatches per block, counted on fake tensors.

At 224 px the eager InfoMamba step is launch-bound (docs/benchmarks.md), so this count is the number its
eager step time follows there."""
import collections
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
    assert "ssm_inner" not in {name for _, name in ops}  # counted from inside, its launches one by one
    assert ops["forward", "conv_fwd_kernel"] == ops["forward", "scan_fwd_kernel"] == 2  # bidirectional
    assert ops["backward", "conv_fwd_kernel"] == 2  # the backward recomputes the conv output
    assert ops["backward", "conv_bwd_kernel"] == ops["backward", "scan_bwd_kernel"] == 2
    assert not any(name in op_count.NO_LAUNCH for _, name in ops)
    assert ops["forward", "mm"] >= 6  # in_proj, the gated out_proj, and x_proj and dt_proj in each direction


def test_the_fused_ssm_op_reads_its_inputs_in_place(op_count):
    """The fused op's own launches per direction (bf16 autocast, no padding): the forward was 14 (the conv, the
    scan and 12 eager ops) while x, u, B and C were copied and P h formed apart; with the conv kernel reading x
    through its strides and forming u = SiLU(conv) + P h, and the scan reading B and C as views, 11 (the weight
    casts, the x_proj and dt_proj matmuls, A = -exp(A_log) and its transposed copy); the backward 27 -> 24. With
    the scan kernels reading A_log and forming A and dA_log = dA A themselves, 8 and 20; adding dt's bias
    themselves, 6 and 18; casting x_proj's and dt_proj's weights once in the backward, 6 and 16; handing the kernels
    A_log transposed (a copy of n x d values each way: read in its own layout it set the backward kernel's register
    layout, tests/ops/test_selective_scan_compiles.py), 7 and 17; taking x_proj's and dt_proj's weights in
    autocast's dtype (cast once a forward in `layers/ssm.py`, whose cast's backward takes their gradients to fp32),
    5 and 13. The backward counts 23 since the launchers' own glue is counted too (the conv's and the scan's sums of
    partials, their copies, dB and dC zeroed and cast), not only their launches; 21 with dB and dC side by side in
    one buffer (one zero, one cast). With both directions one op (`ssm_inner_pair`) the sum of their readouts is
    counted inside it (the Mamba-1 scan's is torch's add: its autotuner times its launches on the output), 11 forward;
    the backward's add of the directions' dx is inside its conv kernel. 20 backward since the injection kernel forms
    x_proj's input gradient [d dt~, dB, dC] W_x itself (no matmul writing it)."""
    counts = op_count.block_ops("mamba", 64, {})
    op_folders = ("ssm_inner", "selective_scan", "causal_conv")
    inside = {phase: sum(v for (p, where, _), v in counts.items() if p == phase and where.split("/")[0] in op_folders)
              for phase in ("forward", "backward")}
    assert inside == {"forward": 2 * 5 + 1, "backward": 2 * 20}, inside


def test_the_ssd_form_forms_dt_and_a_inside_its_kernels(op_count):
    """The fused op's own launches per direction in the SSD form (`ssm_heads`): 11 forward and 33 backward while
    PyTorch formed dt = softplus(dt_pre + bias) (masked), A = -exp(A_log), the sigmoid of dt's gradient and the casts
    around the kernels; 6 and 24 with the kernels reading dt_pre, the bias, the mask and A_log; 6 and 22 with dB and
    dC side by side in one tensor (one sum over heads, one cast); 4 and 18 with the projections' weights taken in
    autocast's dtype; 4 and 21 counting the conv backward's sums and copies too. The Mamba-1 form's backward takes
    21 too: the state-adjoint pass and the sums over heads here, dA's transposed copy there. Both 20 since the
    injection kernel forms x_proj's input gradient itself; the SSD form 19 since its two chunk walks (the states and
    their adjoints) run in one launch."""
    counts = op_count.block_ops("mamba", 64, {"ssm_heads": 8})
    op_folders = ("ssm_inner", "ssd_scan", "causal_conv")
    inside = collections.Counter()
    for (phase, where, name), v in counts.items():
        if where.split("/")[0] in op_folders:
            inside[phase] += v
            assert name not in ("softplus", "exp", "sigmoid", "neg"), (phase, where, name)
    assert dict(inside) == {"forward": 2 * 4, "backward": 2 * 19}, inside


def test_the_concept_filter_adds_at_most_115_ops_a_block(op_count):
    """The concept filter's ops on top of the selective SSM, per block (forward + backward, dim 384, 196
    tokens). Counting the fused op as one launch: 3.06x mamba's (248 vs 81) before Eq. 9's V, Q, K came from
    one matmul and the MI-hash loss took a plain mean where nothing is padded; 2.81x (228) after. Counting its
    glue and launches one by one (the fused op in both): 299 vs 147, 152 more; with the SiLU gate's two kernels
    (`ops/silu_gate`) in both, 283 vs 131: the same 152 more (the bound was 2.1x mamba's until then); with the
    injection's backward (du, P du, sum du h) in one kernel, 277 vs 131; with Eq. 8's bucket sample and MI-hash
    term as kernels and the candidate sets C(b) in one launch (`ops/hash_bucket`), 243 vs 131 (242 vs 130 without
    the add of 0 that began the sum of the scan directions)."""
    infomamba, mamba = (sum(totals(op_count.block_ops(m, 384, {})).values()) for m in ("infomamba", "mamba"))
    assert infomamba - mamba <= 115, f"infomamba {infomamba} ops per block, mamba {mamba}"


def test_eq8_bucketing_is_one_kernel_each(op_count):
    """F.gumbel_softmax(hard=True) was about a dozen ops (log, add, softmax, argmax, a scatter one-hot, the
    straight-through sum), the MI-hash term about fifteen (both normalisations, the cosine matmul, log-softmax,
    product, sum) and C(b) about a dozen (cosines, argmax, one-hot, the empty-bucket fallback); now the sample's
    Exp(1) draw and one kernel, the term one kernel after u = R @ centers, C(b) one kernel. The backward's 131
    include one matmul that makes h again (Eq. 10's scatter: h is saved as its recipe, `layers/recompute.py`); 88
    and 133 since the scan kernels are handed A_log transposed (`test_the_fused_ssm_op_reads_its_inputs_in_place`);
    85 and 129 since F h and its add run inside the gate's kernel (`layers/gate.py`'s `gated_readout`); 83 forward
    since k_eff counts the concepts any real token weights (`any`, one sum, one mean); 125 backward since the SSM
    op takes its projections' weights in autocast's dtype (`layers/ssm.py`); 145 counting the glue inside the conv's
    and the scan's launchers too (`benchmarks/op_count.py` had stubbed those launchers whole); 141 with the scan's dB
    and dC side by side in one buffer; 139 with both scan directions one op, whose conv and injection kernels add
    one direction's dx and dh into the other's (`layers/ssm.py`'s `SSMDirections`); 140 with in_proj's backward on
    its two parts (`layers/split_projection.py`: no cat of their gradients, one addmm more); 138 with x_proj's input
    gradient formed inside the injection kernel (one matmul less a direction); 86 forward since h's mean for Eq.
    12-13 is formed from the concepts (`layers/concepts.py`'s `readout`: a sum, a division, a product and a sum,
    where the mean of h was one op over a (B, L, E) tensor)."""
    counts = op_count.block_ops("infomamba", 384, {})
    ops = collections.Counter(name for (phase, _, name) in counts.elements() if phase == "forward")
    assert ops["gumbel_bucket"] == ops["bucket_nll"] == ops["bucket_members"] == ops["exponential_"] == 1
    assert "argmax" not in ops  # eval's bucket only
    assert "_log_softmax" not in ops and ops["_softmax"] == 1  # Eq. 9's softmax among the concepts only
    assert totals(counts) == {"forward": 86, "backward": 138}


def test_the_gate_is_one_kernel_each_way(op_count):
    """The SiLU gate was 2 eager ops forward and about 15 backward (fp32 casts, sigmoid, products); one kernel
    each way now, so a mamba block dispatches 131 ops (47 + 100 = 147 before); 130 since the sum of the scan
    directions no longer starts with an add of 0 (Python's `sum`); 116 since the scan kernels read A_log, 108 since
    they add dt's bias, 104 with the backward's weight casts made once, 108 with A_log handed to them transposed, 104
    with the projections' weights taken in autocast's dtype; 124 counting the glue inside the conv's and the scan's
    launchers too; 120 with the scan's dB and dC side by side in one buffer; 119 since a baseline reports no
    readout stream (its masked mean is gone); 118 with both scan directions one op (their dx added in its conv
    kernel); 119 with in_proj's backward on its two parts (no cat, one addmm more); 117 with x_proj's input gradient
    formed inside the injection kernel."""
    counts = op_count.block_ops("mamba", 384, {})
    gate = {(phase, name): v for (phase, where, name), v in counts.items() if where.startswith("silu_gate/")}
    assert gate == {("forward", "silu_gate"): 1, ("backward", "silu_gate_backward"): 1}, gate
    assert totals(counts) == {"forward": 36, "backward": 81}


def test_the_auxiliary_terms_count_the_same_at_any_depth(op_count):
    """Eq. 12-13 run once on every layer's streams stacked: 2 layers dispatch what 12 do."""
    forward, backward = op_count.auxiliary_ops(12, 8, 16)
    assert (forward, backward) == op_count.auxiliary_ops(2, 8, 16) and forward > 0 and backward > 0
