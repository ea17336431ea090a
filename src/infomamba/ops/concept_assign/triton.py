"""Triton concept assignment with the entropy-budgeted top-q sparsification, fused, with its backward.

Math (InfoMamba §4.1: Eq. 7 and the entropy budget; `infomamba.ops.concept_assign.sparse_assign_reference` is
the oracle), per token t over its k concepts, in fp32 whatever the logits' dtype:

    R_t     = softmax(logits_t)                                                        (Eq. 7)
    q_t     = clamp(1 + round((q_max - 1) H(R_t) / log k), 1, q_max),  H(R) = -sum_i R_i log R_i
    v_t     = R_t * candidate_t                  (candidate_t = b_t C(b): the token's bucket, 0/1)
    S_t     = the q_t largest v_ti that are > 0                   (fewer when fewer are positive)
    R_bar_t = v_ti / max(V_t, f) on S_t, 0 elsewhere,   V_t = sum_{j in S_t} v_tj

round is half-to-even like torch.round; ties between equal v are broken by the lower index
(torch.topk leaves their order unspecified, so only rows with tied values at the q_t-th place can
differ). For k = 1 the budget is 1 (H = 0).

Backward. q_t and S_t are step functions of the inputs and get no gradient. With
t = sum_{j in S} dR_bar_j R_bar_j and s = t, or s = 0 while V < f (nothing kept, or a subnormal
mass: the reference's clamp is active there and passes no gradient to V), the chain rule through R_bar = v / max(V, f),
v = R * candidate and the softmax gives

    dv_i         = (dR_bar_i - s) / max(V, f)           on S, 0 elsewhere
    dcandidate_i = dv_i R_i
    dlogits_i    = R_i (dR_i - c) + w_i,    w_i = dv_i v_i = (dR_bar_i - s) R_bar_i,
    c            = sum_j (R_j dR_j + w_j)

R_i dv_i candidate_i = dv_i v_i, so the candidate is not needed. sum_j w_j = t - s sum_j R_bar_j is
t - s: 0 while the clamp is inactive (R_bar sums to 1, it is scale-free in v) and t while it is
active, so the kernel uses c = sum_j R_j dR_j + t - s, which leaves exact zeros where the gradient
is zero.

Design. One program owns BLOCK_ROWS tokens x the whole row padded to BLOCK_K = next_power_of_2(k)
lanes, 2048 elements (16 a thread at 4 warps). At k = 100 or 128 a warp's 32 lanes span a row, four
fp32 a lane, and the warps hold different rows, so every row reduction (softmax max and sum,
entropy, top-q) stays inside a warp. Checked in the PTX for sm_90: the top-q loop has shuffles and
no shared memory or barriers; 88 (k = 100) and 96 (k = 128) registers, no spills. The top-q is at
most q_max passes of a row argmax (value and index reduced together, 5 shuffle steps each); the
pass count is the largest q_t among the program's rows, so confident tokens (low entropy, small
q_t) cost fewer passes. These passes, not memory, are expected to dominate the forward at
q_max = 8 (not measured on a GPU). It reads logits and candidate once and writes R, R_bar and
V_t (4 bytes a token). R and R_bar are stored in the logits' dtype (bf16 under autocast, where every
layer that reads them is a bf16 matmul: one bf16 copy each instead of an fp32 tensor plus the bf16
casts the matmuls would save); V_t stays fp32.

Both directions are `torch.library` custom ops (`infomamba::sparse_assign`,
`infomamba::sparse_assign_backward`) with fake implementations, so `torch.compile` traces through them.
The backward recomputes nothing (fp32 arithmetic on what it loads). Repeating the selection would repeat
the argmax passes, so it saves R and R_bar, which are outputs (the layers that consume them keep them
alive anyway, so saving them costs no memory), and V_t; S is R_bar > 0, and neither the logits nor the
candidate are kept. It is one elementwise pass with two row sums that reads R, R_bar, dR, and dR_bar
at the kept entries only.
That last read is a masked load, so a row's at most q_max kept values touch a few 32-byte sectors
instead of the whole row. A kept entry whose R_bar underflows to 0 (v_i / V below 1e-45) drops out
of S: its gradients, (dR_bar_i - s) times a value below 1e-45, are returned as 0. Without dR_bar
the candidate gets no gradient (None, as from the reference).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..dispatch import on_device
from .reference import budget_scale as budget_scale_of

_V_FLOOR = tl.constexpr(1.1754943508222875e-38)  # f: the smallest normal fp32, as the reference's clamp
_RINT_MAGIC = tl.constexpr(12582912.0)  # 1.5 * 2**23: (x + M) - M rounds |x| < 2**22 half-to-even in fp32
_ELEMENTS_PER_PROGRAM = 2048  # 16 fp32 a thread at 4 warps: rows enough to amortise a program, no spills


@triton.jit
def _assign_fwd_kernel(logits_ptr, cand_ptr, R_ptr, Rbar_ptr, V_ptr, n_rows, q_max, budget_scale,
                       K: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_K: tl.constexpr):
    """R, R_bar and V (module docstring) for BLOCK_ROWS tokens."""
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK_K)
    row_ok, col_ok = rows < n_rows, cols < K
    mask = row_ok[:, None] & col_ok[None, :]
    offs = rows.to(tl.int64)[:, None] * K + cols[None, :]

    x = tl.load(logits_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    x = tl.where(col_ok[None, :], x, float("-inf"))
    e = tl.exp(x - tl.max(x, axis=1)[:, None])
    R = e / tl.sum(e, axis=1)[:, None]
    tl.store(R_ptr + offs, R.to(R_ptr.dtype.element_ty), mask=mask)

    H = -tl.sum(R * tl.log(tl.maximum(R, 1e-12)), axis=1)
    q = (budget_scale * H + _RINT_MAGIC) - _RINT_MAGIC
    q = tl.minimum(tl.maximum(1.0 + q, 1.0), q_max).to(tl.int32)

    v = R * tl.load(cand_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    pool = tl.where(col_ok[None, :], v, -1.0)  # v >= 0; picked entries and padding are set to -1
    kept = tl.zeros([BLOCK_ROWS, BLOCK_K], dtype=tl.int1)
    V = tl.zeros([BLOCK_ROWS], dtype=tl.float32)
    for rank in range(tl.max(tl.where(row_ok, q, 0), axis=0)):
        top, at = tl.max(pool, axis=1, return_indices=True, return_indices_tie_break_left=True)
        keep = (rank < q) & (top > 0.0)
        hit = cols[None, :] == at[:, None]
        kept = kept | (hit & keep[:, None])
        V += tl.where(keep, top, 0.0)
        pool = tl.where(hit, -1.0, pool)
    R_bar = tl.where(kept, v / tl.maximum(V, _V_FLOOR)[:, None], 0.0)
    tl.store(Rbar_ptr + offs, R_bar.to(Rbar_ptr.dtype.element_ty), mask=mask)
    tl.store(V_ptr + rows, V, mask=row_ok)


@triton.jit
def _assign_bwd_kernel(R_ptr, Rbar_ptr, V_ptr, dR_ptr, dRbar_ptr, dlogits_ptr, dcand_ptr, n_rows,
                       K: tl.constexpr, HAS_DR: tl.constexpr, HAS_DRBAR: tl.constexpr,
                       HAS_DCAND: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_K: tl.constexpr):
    """dlogits and, if HAS_DCAND (which needs HAS_DRBAR), dcandidate (module docstring) for BLOCK_ROWS
    tokens; an absent dR or dR_bar is 0."""
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK_K)
    row_ok = rows < n_rows
    mask = row_ok[:, None] & (cols < K)[None, :]
    offs = rows.to(tl.int64)[:, None] * K + cols[None, :]

    R = tl.load(R_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    dR = tl.load(dR_ptr + offs, mask=mask, other=0.0).to(tl.float32) if HAS_DR else tl.zeros_like(R)
    c = tl.sum(R * dR, axis=1)
    w = tl.zeros_like(R)
    if HAS_DRBAR:
        R_bar = tl.load(Rbar_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        kept = R_bar > 0.0
        dR_bar = tl.load(dRbar_ptr + offs, mask=kept, other=0.0).to(tl.float32)
        V = tl.load(V_ptr + rows, mask=row_ok, other=1.0)
        t = tl.sum(dR_bar * R_bar, axis=1)
        s = tl.where(V >= _V_FLOOR, t, 0.0)
        w = (dR_bar - s[:, None]) * R_bar
        c += t - s
        if HAS_DCAND:
            dv = (dR_bar - s[:, None]) / tl.maximum(V, _V_FLOOR)[:, None]
            tl.store(dcand_ptr + offs, tl.where(kept, dv * R, 0.0).to(dcand_ptr.dtype.element_ty), mask=mask)
    tl.store(dlogits_ptr + offs, (R * (dR - c[:, None]) + w).to(dlogits_ptr.dtype.element_ty), mask=mask)


def _launch_shape(k: int) -> tuple[int, int]:
    """(BLOCK_K, BLOCK_ROWS) for rows of k concepts: BLOCK_ROWS * BLOCK_K = _ELEMENTS_PER_PROGRAM."""
    block_k = triton.next_power_of_2(k)
    return block_k, max(1, _ELEMENTS_PER_PROGRAM // block_k)


@torch.library.custom_op("infomamba::sparse_assign", mutates_args=())
def sparse_assign_op(logits: torch.Tensor, candidate: torch.Tensor, q_max: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R, R_bar, V) for contiguous logits and a candidate of the same shape (module docstring)."""
    k = logits.shape[-1]
    n_rows = logits.numel() // k
    R = torch.empty_like(logits)
    R_bar = torch.empty_like(logits)
    V = torch.empty(logits.shape[:-1], device=logits.device, dtype=torch.float32)
    block_k, block_rows = _launch_shape(k)
    with on_device(logits):
        _assign_fwd_kernel[(triton.cdiv(n_rows, block_rows),)](
            logits, candidate, R, R_bar, V, n_rows, q_max, budget_scale_of(k, q_max),
            K=k, BLOCK_ROWS=block_rows, BLOCK_K=block_k, num_warps=4)
    return R, R_bar, V


@sparse_assign_op.register_fake
def _(logits, candidate, q_max):
    return torch.empty_like(logits), torch.empty_like(logits), logits.new_empty(logits.shape[:-1], dtype=torch.float32)


@torch.library.custom_op("infomamba::sparse_assign_backward", mutates_args=())
def sparse_assign_backward_op(R: torch.Tensor, R_bar: torch.Tensor, V: torch.Tensor, dR: torch.Tensor | None,
                              dR_bar: torch.Tensor | None, logits_dtype: torch.dtype, cand_dtype: torch.dtype,
                              need_dcand: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(dlogits, dcandidate) from the saved R, R_bar, V; dcandidate is empty unless asked for."""
    need_dcand = need_dcand and dR_bar is not None  # only R_bar depends on the candidate
    dlogits = torch.empty(R.shape, device=R.device, dtype=logits_dtype)
    dcand = torch.empty(R.shape if need_dcand else (0,), device=R.device, dtype=cand_dtype)
    k = R.shape[-1]
    n_rows = R.numel() // k
    block_k, block_rows = _launch_shape(k)
    with on_device(R):
        _assign_bwd_kernel[(triton.cdiv(n_rows, block_rows),)](
            R, R_bar, V, dR.contiguous() if dR is not None else R,
            dR_bar.contiguous() if dR_bar is not None else R, dlogits, dcand if need_dcand else dlogits,
            n_rows, K=k, HAS_DR=dR is not None, HAS_DRBAR=dR_bar is not None, HAS_DCAND=need_dcand,
            BLOCK_ROWS=block_rows, BLOCK_K=block_k, num_warps=4)
    return dlogits, dcand


@sparse_assign_backward_op.register_fake
def _(R, R_bar, V, dR, dR_bar, logits_dtype, cand_dtype, need_dcand):
    need_dcand = need_dcand and dR_bar is not None
    return (torch.empty(R.shape, device=R.device, dtype=logits_dtype),
            torch.empty(R.shape if need_dcand else (0,), device=R.device, dtype=cand_dtype))


def _setup_context(ctx, inputs, output):
    logits, candidate, _ = inputs
    ctx.save_for_backward(*output)
    ctx.dtypes = logits.dtype, candidate.dtype
    ctx.set_materialize_grads(False)


def _backward(ctx, dR, dR_bar, dV):
    R, R_bar, V = ctx.saved_tensors
    need_dcand = ctx.needs_input_grad[1]
    dlogits, dcand = sparse_assign_backward_op(R, R_bar, V, dR, dR_bar, *ctx.dtypes, need_dcand)
    return (dlogits if ctx.needs_input_grad[0] else None,
            dcand if need_dcand and dR_bar is not None else None, None)


sparse_assign_op.register_autograd(_backward, setup_context=_setup_context)


def sparse_assign_triton(logits: torch.Tensor, candidate: torch.Tensor, q_max: int):
    """Fused Eq. 7 + entropy-budgeted top-q, same contract as `infomamba.ops.concept_assign.sparse_assign_reference`.

    Args:
        logits: (..., k), any float dtype, any strides (an expanded view is copied once).
        candidate: (..., k) 0/1 floats (or broadcastable to logits), with or without grad.
        q_max: the budget's maximum, >= 1.
    Returns:
        (R, R_bar) of logits' shape and dtype (computed in fp32): R = softmax(logits), R_bar dense with at most q_max
        non-zeros a row. Differentiable in logits and candidate.
    """
    if q_max < 1 or logits.shape[-1] < 1:
        raise ValueError(f"sparse_assign_triton needs q_max >= 1 and k >= 1, got q_max={q_max}, "
                         f"k={logits.shape[-1]}")
    logits = logits.contiguous()
    R, R_bar, _ = sparse_assign_op(logits, candidate.expand_as(logits).contiguous(), q_max)
    return R, R_bar
