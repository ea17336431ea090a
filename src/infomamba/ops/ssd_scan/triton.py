"""Triton SSD scan (Mamba-2 form): a forward that walks a sequence's chunks in order, a two-launch backward.

Math (`reference.py`; Dao & Gu 2024, Eq. 16 and the chunked algorithm): per head h, with x~_t = dt_t x_t,
a_t = dt_t A_h and, within a chunk of Q positions, the cumulative log-decay cs_t = a_1 + ... + a_t (local
positions, T = cs_Q the chunk's total):

    y_t   = sum_{s <= t} (C_t . B_s) exp(cs_t - cs_s) x~_s + exp(cs_t) C_t S_in + D x_t     (intra + state)
    S_out = exp(T) S_in + sum_s exp(T - cs_s) B_s^T x~_s                                   ((n, p) state)

One program owns one (sample, head, block of p channels) and carries S (n x p, fp32) in registers from chunk to
chunk: per chunk three tensor-core products, C B^T (Q x Q), the masked decay-weighted (C B^T) x~ (Q x p) and the
state's C S and B^T x~, where the Mamba-1 scan pays an exp and its FMAs on every (t, channel, state) element.
Every `tl.dot` takes its operands in the input dtype (bf16 under mixed precision, the state rounded to it for its
products too, as mamba-ssm's chunk kernels do) and accumulates in fp32; the carried state stays fp32. The forward's
y products round as few operands as mamba-ssm's `_chunk_scan_fwd_kernel`: dt inside the fp32 (Q x Q) matrix, which
is rounded once, against x as loaded, and exp(cs) scaling C S_in after its product (rounding x dt and exp(cs) C
first erred 1.75-1.81x the bf16 rounding of the exact y on average against 1.41-1.50x, emulated in fp64 by
`benchmarks/ssd_rounding.py`; on an H100 1.73-1.74x against 1.43-1.45x, in the same kernel time).

Backward, in two launches (nothing is kept from the forward, as in `ops/ssm_inner`): two walks side by side in one
launch (`_ssd_bwd_walks_kernel`), the forward kernel's rewriting the state entering every chunk ((batch * heads,
chunks, n, p)) and a reverse one per (sample, head, p block) writing the state adjoint dS leaving every chunk (of
S_out; dS_in = exp(T) dS + (exp(cs) o C)^T dy); then one program
per (sample, head, chunk), all chunks at once, forms with M = (C B^T) o exp(cs_t - cs_s) (lower triangle),
W = (dy x~^T) o exp(cs_t - cs_s) and G = W o (C B^T):

    dx~   = M^T dy + exp(T - cs) o (B dS)                dx = dt dx~ + D dy,   ddt = sum_p dx~ x + A da
    dC    = W B + exp(cs) o (dy S_in^T)                  dB = W^T C + exp(T - cs) o (x~ dS^T)
    dcs_t = sum_s G_ts - sum_s G_st + dy_t . (exp(cs_t) C_t S_in) - v_t,   v = exp(T - cs) o sum_p (B dS) o x~
    da_r  = sum_{t >= r} dcs_t + sum_s v_s + exp(T) <dS, S_in>     (T = sum of the chunk's a)
    dA    = sum dt da

The kernel forms the transposes W^T = x~ dy^T o exp(cs_t - cs_s), G^T and M^T from B C^T: of the (Q x Q) matrices
only W^T is transposed for a product (M and W were before). Its products, as the forward's, read x as given: dt
scales W^T's rows and the dS term's rows after their products, and exp(cs) scales C S_in after its product. In fp16,
in Triton's interpreter, dB and dC then err 1.55x / 1.53x the rounding of the exact ones, against 1.97x / 1.96x when
x dt and C exp(cs) were rounded first; dx's 1.45x is unchanged. On an H100 the backward takes 8-9 % less time than
in that order, and in bf16 dB and dC err 1.59-1.60x against 1.98-2.00x (docs/benchmarks.md).

Both walks carry their state in fp32 and write it in x's dtype, as mamba-ssm's SSD backward keeps its states and
their adjoints (`states_dtype=x.dtype`): every product the chunk backward forms from them rounds them to it anyway,
and only exp(T) <dS, S_in> reads them otherwise (a term that exp(T), the decay over a whole chunk, keeps small). In
bf16 the two tensors move half the bytes of fp32 ones (written once, read once), and the chunk backward compiles
for sm_90 (`benchmarks/ssd_resources.py`) to 2,368 SASS instructions with no spill: on an H100 a forward+backward
took 0.619 ms against 0.642 at B64 x L1024 and 1.723 against 1.696 at B8 x L16384, with the bf16 gradients' errors
the same to three digits (docs/benchmarks.md). A program per (sample, head) that walked its chunks carrying dS, so
that neither dS nor a second read of dy went through memory, was 1.4-1.9x slower: its chunks run one after another.

B and C are shared by every head, so dB and dC come back per head, side by side in one fp32 (batch, L, heads, 2n)
tensor, and are summed over heads by torch in one reduction (deterministic, no atomics); dA and dD per (sample,
head, chunk). Launch configs (`CHUNK`, `Y_CHUNK`, `FWD_CONFIG`, `BWD_CONFIG`; no autotuning): the backward's chunk
and launch from a sweep on an H200, the chunk walks' from a later sweep and a whole-model A/B on an H100, where a
whole head a program and three pipeline stages made the 1024 px training step 5 % faster (`benchmarks/bench_ssd.py
--configs`, docs/benchmarks.md; not measured on an H200). `reverse=True` maps scan position t to L - 1 - t (index
arithmetic, no flipped copies); positions past L load as dt = x = 0, which leaves the state unchanged, as padding
does. The forward that writes y keeps no state, so its chunk is its own (`y_chunk`): chunks of 32 there (of 64 in
the backward) took the forward 0.043 -> 0.027 ms at B64 x L196 and 0.573 -> 0.463 at B64 x L4096 (H100, kernels
replayed as CUDA graphs, `benchmarks/bench_ssd.py --graphs`), where chunks of 32 throughout made the backward slower.

The fused SSM op (`ops/ssm_inner`) launches the kernels in its own form, as the Mamba-1 scan's: dt_pre before
its bias and softplus in the activation dtype (DT_SOFTPLUS: dt = softplus(dt_pre + bias_h), a padded position
loaded as dt_pre = -inf, so dt = 0 there), A as A_log (A_LOG: A = -exp(A_log)), and the backward writes the
gradients of dt_pre (ddt sigmoid(dt_pre + bias), the sigmoid recovered from dt as 1 - exp(-dt)) and of A_log
(dA A) in place of those of dt and A. PyTorch then forms none of dt, its mask or A around the kernels.
"""
from __future__ import annotations

import functools
from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..dispatch import dot_precision, on_device
from ..selective_scan.triton import _softplus
from . import tile_width

LOG2E = tl.constexpr(1.4426950408889634)
CHUNK = 64  # Q of the backward: the state entering each chunk is rewritten for it, and its kernels walk these chunks
Y_CHUNK = 32  # Q of the forward that writes y (and no states) where its programs fill the GPU (`y_chunk`)
FWD_CONFIG = (64, 4, 3)  # (block of p channels, warps, pipeline stages) of the chunk walks (forward, dS pass)
BWD_CONFIG = (4, 2)  # (warps, stages) of the backward's chunk-parallel kernel, a program per (sample, head, chunk)


@triton.jit
def _rate(A_ptr, h, A_LOG: tl.constexpr):
    """A_h in fp32: as given, or with A_LOG A_h = -exp(A_log_h) (the pointer holds A_log)."""
    a = tl.load(A_ptr + h).to(tl.float32)
    return -tl.exp(a) if A_LOG else a


@triton.jit
def _chunk_dt(dt_ptr, bias_ptr, pad_ptr, b, h, pos, ok, L, s_dtb, s_dtl, DT_SOFTPLUS: tl.constexpr,
              HAS_PAD: tl.constexpr):
    """dt fp32 at a chunk's positions, 0 past the end: as given, or with DT_SOFTPLUS dt = softplus(dt_pre + bias_h),
    0 at padding (HAS_PAD: the (batch, L) mask, True at padding)."""
    if not DT_SOFTPLUS:
        return tl.load(dt_ptr + b * s_dtb + pos * s_dtl + h, mask=ok, other=0.0).to(tl.float32)
    keep = ok
    if HAS_PAD:
        keep = keep & (tl.load(pad_ptr + b * L + pos, mask=ok, other=1) == 0)
    raw = tl.load(dt_ptr + b * s_dtb + pos * s_dtl + h, mask=keep, other=float("-inf")).to(tl.float32)
    return _softplus(raw + tl.load(bias_ptr + h).to(tl.float32))[0]  # softplus(-inf) = 0 exactly


@triton.jit
def _softplus_slope(dt):
    """d dt / d dt_pre for dt = softplus(dt_pre + bias), from dt itself: sigmoid(dt_pre + bias) = 1 - exp(-dt) (0
    where dt is, at padding too), by its Taylor series below dt = 0.01 where 1 - exp(-dt) would cancel. Formed at
    the end of the backward rather than kept from the load: a (Q,) vector held in registers across the kernel
    costs spill."""
    return tl.where(dt < 0.01, dt * (1.0 - dt * (0.5 - dt * (1.0 / 6.0))), 1.0 - tl.exp(-dt))


@triton.jit
def _walk_program(A_ptr, H, Q: tl.constexpr, N: tl.constexpr, BLOCK_P: tl.constexpr, A_LOG: tl.constexpr):
    """A chunk walk's program: (its sample b, head h, position, state and channel ranges, A_h log2(e))."""
    pid = tl.program_id(0)
    h = pid % H
    rp = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    return pid // H, h, tl.arange(0, Q), tl.arange(0, N), rp, _rate(A_ptr, h, A_LOG) * LOG2E


@triton.jit
def _ssd_fwd_kernel(x_ptr, dt_ptr, A_ptr, dtb_ptr, pad_ptr, B_ptr, C_ptr, D_ptr, y_ptr, st_ptr, L, H, n_chunks,
                    s_xb, s_xl, s_dtb, s_dtl, s_bb, s_bl, s_cb, s_cl,
                    P: tl.constexpr, N: tl.constexpr, Q: tl.constexpr, BLOCK_P: tl.constexpr,
                    HAS_D: tl.constexpr, REVERSE: tl.constexpr, WRITE_Y: tl.constexpr, SAVE_STATES: tl.constexpr,
                    DT_SOFTPLUS: tl.constexpr, HAS_PAD: tl.constexpr, A_LOG: tl.constexpr, PREC: tl.constexpr,
                    ACC: tl.constexpr):
    """y (and with SAVE_STATES the state entering every chunk) of one (sample, head, p block); x and y share strides,
    states (batch * heads, chunks, N, P) contiguous in x's dtype; dt, A as `_chunk_dt` and `_rate` read them. ACC: y
    is added to what y_ptr holds (the other scan direction's readout), in fp32 before one rounding."""
    b, h, rq, rn, rp, A2 = _walk_program(A_ptr, H, Q, N, BLOCK_P, A_LOG)
    if HAS_D:
        Dv = tl.load(D_ptr + h * P + rp).to(tl.float32)
    causal = rq[:, None] >= rq[None, :]
    x_base = x_ptr + b.to(tl.int64) * s_xb + h * P
    y_base = y_ptr + b.to(tl.int64) * s_xb + h * P
    st_base = st_ptr + (b * H + h).to(tl.int64) * n_chunks * N * P
    S = tl.zeros((N, BLOCK_P), dtype=tl.float32)
    for c in range(n_chunks):
        t = c * Q + rq
        ok = t < L
        pos = L - 1 - t if REVERSE else t
        dt = _chunk_dt(dt_ptr, dtb_ptr, pad_ptr, b, h, pos, ok, L, s_dtb, s_dtl, DT_SOFTPLUS, HAS_PAD)
        x = tl.load(x_base + pos[:, None] * s_xl + rp[None, :], mask=ok[:, None], other=0.0)
        Bm = tl.load(B_ptr + b * s_bb + pos[:, None] * s_bl + rn[None, :], mask=ok[:, None], other=0.0).to(x.dtype)
        Cm = tl.load(C_ptr + b * s_cb + pos[:, None] * s_cl + rn[None, :], mask=ok[:, None], other=0.0).to(x.dtype)
        if SAVE_STATES:
            tl.store(st_base + (c * N + rn[:, None]) * P + rp[None, :], S.to(st_ptr.dtype.element_ty))
        a = dt * A2
        cs = tl.cumsum(a, axis=0)
        total = tl.sum(a, axis=0)
        xf = x.to(tl.float32)
        if WRITE_Y:
            CB = tl.dot(Cm, tl.trans(Bm), input_precision=PREC)
            decay = tl.exp2(tl.where(causal, cs[:, None] - cs[None, :], float("-inf")))
            y = tl.dot((CB * decay * dt[None, :]).to(x.dtype), x, input_precision=PREC)
            y += tl.dot(Cm, S.to(x.dtype), input_precision=PREC) * tl.exp2(cs)[:, None]
            if HAS_D:
                y += Dv[None, :] * xf
            if ACC:
                y += tl.load(y_base + pos[:, None] * s_xl + rp[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
            tl.store(y_base + pos[:, None] * s_xl + rp[None, :], y.to(y_ptr.dtype.element_ty), mask=ok[:, None])
        w = tl.exp2(total - cs) * dt
        S = S * tl.exp2(total) + tl.dot(tl.trans((Bm.to(tl.float32) * w[:, None]).to(x.dtype)), x,
                                        input_precision=PREC)


@triton.jit
def _state_adjoint_walk(dt_ptr, A_ptr, dtb_ptr, pad_ptr, C_ptr, dy_ptr, dst_ptr, L, H, n_chunks, s_xb, s_xl, s_dtb,
                        s_dtl, s_cb, s_cl, P: tl.constexpr, N: tl.constexpr, Q: tl.constexpr, BLOCK_P: tl.constexpr,
                        REVERSE: tl.constexpr, DT_SOFTPLUS: tl.constexpr, HAS_PAD: tl.constexpr, A_LOG: tl.constexpr,
                        PREC: tl.constexpr):
    """The state adjoint dS leaving every chunk (of S_out; 0 after the last), one (sample, head, p block) walking the
    chunks in reverse: dS_in = exp(T) dS + (exp(cs) o C)^T dy. dst (batch * heads, chunks, N, P) in x's dtype."""
    b, h, rq, rn, rp, A2 = _walk_program(A_ptr, H, Q, N, BLOCK_P, A_LOG)
    dy_base = dy_ptr + b.to(tl.int64) * s_xb + h * P
    dst_base = dst_ptr + (b * H + h).to(tl.int64) * n_chunks * N * P
    dS = tl.zeros((N, BLOCK_P), dtype=tl.float32)
    for i in range(n_chunks):
        c = n_chunks - 1 - i
        t = c * Q + rq
        ok = t < L
        pos = L - 1 - t if REVERSE else t
        dt = _chunk_dt(dt_ptr, dtb_ptr, pad_ptr, b, h, pos, ok, L, s_dtb, s_dtl, DT_SOFTPLUS, HAS_PAD)
        dy = tl.load(dy_base + pos[:, None] * s_xl + rp[None, :], mask=ok[:, None], other=0.0)
        Cm = tl.load(C_ptr + b * s_cb + pos[:, None] * s_cl + rn[None, :], mask=ok[:, None], other=0.0)
        tl.store(dst_base + (c * N + rn[:, None]) * P + rp[None, :], dS.to(dst_ptr.dtype.element_ty))
        a = dt * A2
        Ce = (Cm.to(tl.float32) * tl.exp2(tl.cumsum(a, axis=0))[:, None]).to(dy.dtype)
        dS = dS * tl.exp2(tl.sum(a, axis=0)) + tl.dot(tl.trans(Ce), dy, input_precision=PREC)


@triton.jit
def _ssd_bwd_walks_kernel(x_ptr, dt_ptr, A_ptr, dtb_ptr, pad_ptr, B_ptr, C_ptr, dy_ptr, st_ptr, dst_ptr, L, H, n_chunks,
                          s_xb, s_xl, s_dtb, s_dtl, s_bb, s_bl, s_cb, s_cl, P: tl.constexpr, N: tl.constexpr,
                          Q: tl.constexpr, BLOCK_P: tl.constexpr, REVERSE: tl.constexpr, DT_SOFTPLUS: tl.constexpr,
                          HAS_PAD: tl.constexpr, A_LOG: tl.constexpr, PREC: tl.constexpr):
    """The backward's two chunk walks in one launch, the grid's third axis picking a program's walk: 0 the forward
    one writing the state entering every chunk (st, `_ssd_fwd_kernel` without y), 1 the reverse one writing the
    state adjoint leaving it (dst, `_state_adjoint_walk`). Neither reads what the other writes, so their programs
    run side by side: twice the walks a launch where one walk's programs leave multiprocessors idle."""
    if tl.program_id(2) == 0:
        _ssd_fwd_kernel(x_ptr, dt_ptr, A_ptr, dtb_ptr, pad_ptr, B_ptr, C_ptr, A_ptr, x_ptr, st_ptr, L, H, n_chunks,
                        s_xb, s_xl, s_dtb, s_dtl, s_bb, s_bl, s_cb, s_cl, P, N, Q, BLOCK_P, False, REVERSE, False,
                        True, DT_SOFTPLUS, HAS_PAD, A_LOG, PREC, False)
    else:
        _state_adjoint_walk(dt_ptr, A_ptr, dtb_ptr, pad_ptr, C_ptr, dy_ptr, dst_ptr, L, H, n_chunks, s_xb, s_xl,
                            s_dtb, s_dtl, s_cb, s_cl, P, N, Q, BLOCK_P, REVERSE, DT_SOFTPLUS, HAS_PAD, A_LOG, PREC)


@triton.jit
def _ssd_bwd_chunk_kernel(x_ptr, dt_ptr, A_ptr, dtb_ptr, pad_ptr, B_ptr, C_ptr, D_ptr, dy_ptr, st_ptr, dst_ptr,
                          dx_ptr, ddt_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr, L, H, n_chunks,
                          s_xb, s_xl, s_dtb, s_dtl, s_bb, s_bl, s_cb, s_cl,
                          P: tl.constexpr, N: tl.constexpr, Q: tl.constexpr,
                          HAS_D: tl.constexpr, REVERSE: tl.constexpr, DT_SOFTPLUS: tl.constexpr,
                          HAS_PAD: tl.constexpr, A_LOG: tl.constexpr, PREC: tl.constexpr):
    """Gradients of one (sample, head, chunk) (the module docstring's backward) from the state entering it (st) and
    the adjoint of the state leaving it (dst). x, dy and dx share strides; ddt (batch, L, H) contiguous, the
    gradient of dt as read (with DT_SOFTPLUS of dt_pre: ddt sigmoid(dt_pre + bias), 0 at padding), in its dtype;
    dB and dC side by side in one (batch, L, H, 2N) fp32 contiguous tensor (dC_ptr = dB_ptr + N); dA
    (H, batch * chunks) partials (with A_LOG of A_log: dA A) and dD (H, batch * chunks, P), head first: each head's
    sum reads one contiguous run."""
    pid = tl.program_id(0)
    bh = pid // n_chunks
    c = pid % n_chunks
    b = bh // H
    h = bh % H
    rq = tl.arange(0, Q)
    rn = tl.arange(0, N)
    rp = tl.arange(0, P)
    A = _rate(A_ptr, h, A_LOG)
    A2 = A * LOG2E
    t = c * Q + rq
    ok = t < L
    pos = L - 1 - t if REVERSE else t
    off = b.to(tl.int64) * s_xb + h * P + pos[:, None] * s_xl + rp[None, :]
    dt = _chunk_dt(dt_ptr, dtb_ptr, pad_ptr, b, h, pos, ok, L, s_dtb, s_dtl, DT_SOFTPLUS, HAS_PAD)
    x = tl.load(x_ptr + off, mask=ok[:, None], other=0.0)
    dy = tl.load(dy_ptr + off, mask=ok[:, None], other=0.0)
    Bm = tl.load(B_ptr + b * s_bb + pos[:, None] * s_bl + rn[None, :], mask=ok[:, None], other=0.0).to(x.dtype)
    Cm = tl.load(C_ptr + b * s_cb + pos[:, None] * s_cl + rn[None, :], mask=ok[:, None], other=0.0).to(x.dtype)
    st = (pid.to(tl.int64) * N + rn[:, None]) * P + rp[None, :]
    S_in = tl.load(st_ptr + st)  # in x's dtype, as the walks write it
    dS = tl.load(dst_ptr + st)
    a = dt * A2
    cs = tl.cumsum(a, axis=0)
    total = tl.sum(a, axis=0)
    e = tl.exp2(cs)
    eb = tl.exp2(total - cs)
    xf = x.to(tl.float32)
    dyf = dy.to(tl.float32)
    decay_t = tl.exp2(tl.where(rq[None, :] >= rq[:, None], cs[None, :] - cs[:, None], float("-inf")))
    Wt = tl.dot(x, tl.trans(dy), input_precision=PREC) * (decay_t * dt[:, None])
    BC = tl.dot(Bm, tl.trans(Cm), input_precision=PREC)
    dxdt = tl.dot((BC * decay_t).to(x.dtype), dy, input_precision=PREC)
    Gt = Wt * BC
    dcs = tl.sum(Gt, axis=0) - tl.sum(Gt, axis=1)
    Wc = Wt.to(x.dtype)
    dC = tl.dot(tl.trans(Wc), Bm, input_precision=PREC)
    dB = tl.dot(Wc, Cm, input_precision=PREC)
    BdS = tl.dot(Bm, dS, input_precision=PREC)
    dxdt += eb[:, None] * BdS
    dx = dxdt * dt[:, None]
    if HAS_D:
        dx += tl.load(D_ptr + h * P + rp).to(tl.float32)[None, :] * dyf
        dD = tl.sum(dyf * xf, axis=0)
    tl.store(dx_ptr + off, dx.to(dx_ptr.dtype.element_ty), mask=ok[:, None])
    dC += e[:, None] * tl.dot(dy, tl.trans(S_in), input_precision=PREC)
    ebdt = eb * dt
    dB += ebdt[:, None] * tl.dot(x, tl.trans(dS), input_precision=PREC)
    v = ebdt * tl.sum(BdS * xf, axis=1)
    ystate = tl.dot(Cm, S_in, input_precision=PREC) * e[:, None]
    dcs += tl.sum(dyf * ystate, axis=1) - v
    carried = tl.sum(tl.sum(dS.to(tl.float32) * S_in.to(tl.float32), axis=1), axis=0)
    extra = tl.sum(v, axis=0) + tl.exp2(total) * carried
    da = tl.sum(dcs, axis=0) - tl.cumsum(dcs, axis=0) + dcs + extra
    row = (b * L + pos).to(tl.int64) * H + h
    ddt = tl.sum(dxdt * xf, axis=1) + A * da
    if DT_SOFTPLUS:
        ddt *= _softplus_slope(dt)
    tl.store(ddt_ptr + row, ddt.to(ddt_ptr.dtype.element_ty), mask=ok)
    tl.store(dB_ptr + row[:, None] * (2 * N) + rn[None, :], dB, mask=ok[:, None])
    tl.store(dC_ptr + row[:, None] * (2 * N) + rn[None, :], dC, mask=ok[:, None])
    part = (h * (tl.num_programs(0) // (H * n_chunks)) + b) * n_chunks + c
    tl.store(dA_ptr + part, tl.sum(dt * da, axis=0) * (A if A_LOG else 1.0))
    if HAS_D:
        tl.store(dD_ptr + part.to(tl.int64) * P + rp, dD)


def check_widths(p: int, n: int) -> None:
    """A one-line error unless the kernels take p channels a head and n states (`kernel_widths_fit`)."""
    for name, v in (("p (channels a head, E / ssm_heads)", p), ("n (states, d_state)", n)):
        if not tile_width(v):
            raise ValueError(f"the Triton SSD scan needs {name} a power of two >= 16, got {v}")


def _walk_config(p: int) -> tuple[int, int, int]:
    """(block of p channels, warps, stages) of the chunk walks for heads of p channels (`FWD_CONFIG`, its block
    no wider than the head)."""
    block_p, warps, stages = FWD_CONFIG
    return min(block_p, p), warps, stages


def y_chunk(programs: int, sms: int | None) -> int:
    """The chunk of the forward that writes y, whose boundaries nothing reads afterwards: Y_CHUNK where its `programs`
    walks are at least one for each of the GPU's `sms` (None: not a GPU), else CHUNK. Shorter chunks form less of
    the quadratic intra-chunk term a position, and each program walks twice as many of them one after the other:
    with a walk or more a multiprocessor they ran faster (768 walks: B64 x L196 to L4096), with fewer slower (96 walks,
    B8 x L16384 on 132 multiprocessors: 0.501 -> 0.624 ms; H100, `benchmarks/bench_ssd.py --graphs`)."""
    return Y_CHUNK if sms is None or programs >= sms else CHUNK


@functools.lru_cache(maxsize=None)
def _multiprocessors(device: torch.device) -> int | None:
    """The device's multiprocessors (None off a GPU), asked once a device: every forward launch reads it."""
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else None


def _stride_args(x, dt, B, C) -> dict:
    return dict(s_xb=x.stride(0), s_xl=x.stride(1), s_dtb=dt.stride(0), s_dtl=dt.stride(1), s_bb=B.stride(0),
                s_bl=B.stride(1), s_cb=C.stride(0), s_cl=C.stride(1))


def _step_args(dt: Tensor, A: Tensor, dt_bias: Tensor | None, padding_mask: Tensor | None, a_log: bool) -> dict:
    """The kernels' dt and A arguments: pointers and the flags that say how to read them (`_chunk_dt`, `_rate`)."""
    return dict(dtb_ptr=dt_bias if dt_bias is not None else A, pad_ptr=padding_mask if padding_mask is not None else dt,
                DT_SOFTPLUS=dt_bias is not None, HAS_PAD=padding_mask is not None, A_LOG=a_log)


def _forward(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, reverse: bool,
             dt_bias: Tensor | None = None, padding_mask: Tensor | None = None, a_log: bool = False,
             into: Tensor | None = None) -> Tensor:
    """y for x (batch, L, heads, p) with its last two dims contiguous, dt (batch, L, heads)
    fp32, A (heads,) fp32, B and C (batch, L, n) with unit last stride, D (heads * p,) or None. The fused SSM op's
    form: dt_bias (heads,) given, dt is dt_pre (any float dtype) and dt = softplus(dt_pre + dt_bias), 0 at the
    positions padding_mask (batch, L, contiguous bool) marks; a_log: A holds A_log, A = -exp(A_log). `into` (x's
    shape and strides): y is added to it in place and it is returned as y."""
    batch, length, heads, p = x.shape
    n = B.shape[-1]
    block_p, warps, stages = _walk_config(p)
    grid = (batch * heads, p // block_p)
    chunk = y_chunk(grid[0] * grid[1], _multiprocessors(x.device))
    n_chunks = triton.cdiv(length, chunk)
    if into is not None and (into.shape != x.shape or into.stride() != x.stride() or into.dtype != x.dtype):
        raise ValueError(f"the SSD forward adds y into a tensor of x's shape, strides and dtype {tuple(x.shape)}, "
                         f"{x.stride()}, {x.dtype}; got {tuple(into.shape)}, {into.stride()}, {into.dtype}")
    y = into if into is not None else torch.empty_like(x)
    _ssd_fwd_kernel[grid](
        x, dt, A, B_ptr=B, C_ptr=C, D_ptr=D if D is not None else A, y_ptr=y, st_ptr=dt, L=length, H=heads,
        n_chunks=n_chunks, **_stride_args(x, dt, B, C), **_step_args(dt, A, dt_bias, padding_mask, a_log), P=p, N=n,
        Q=chunk, BLOCK_P=block_p, HAS_D=D is not None, REVERSE=reverse, WRITE_Y=True, SAVE_STATES=False,
        PREC=dot_precision(x), ACC=into is not None, num_warps=warps, num_stages=stages)
    return y


def _walks(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, dy: Tensor, reverse: bool,
           dt_bias: Tensor | None = None, padding_mask: Tensor | None = None, a_log: bool = False
           ) -> tuple[Tensor, Tensor]:
    """The backward's two walks in one launch (`_ssd_bwd_walks_kernel`): (states, d_states), each (batch * heads,
    chunks of `CHUNK`, n, p) in x's dtype, the state entering every chunk and the adjoint of the state leaving it;
    inputs as `_forward`'s, dy strided as x."""
    batch, length, heads, p = x.shape
    n = B.shape[-1]
    states = x.new_empty(batch * heads, triton.cdiv(length, CHUNK), n, p)
    d_states = torch.empty_like(states)
    block_p, warps, stages = _walk_config(p)
    _ssd_bwd_walks_kernel[(batch * heads, p // block_p, 2)](
        x, dt, A, B_ptr=B, C_ptr=C, dy_ptr=dy, st_ptr=states, dst_ptr=d_states, L=length, H=heads,
        n_chunks=states.shape[1], **_stride_args(x, dt, B, C), **_step_args(dt, A, dt_bias, padding_mask, a_log),
        P=p, N=n, Q=CHUNK, BLOCK_P=block_p, REVERSE=reverse, PREC=dot_precision(x), num_warps=warps,
        num_stages=stages)
    return states, d_states


def _backward(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, dy: Tensor, reverse: bool,
              dt_bias: Tensor | None = None, padding_mask: Tensor | None = None, a_log: bool = False
              ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
    """(dx in x's dtype, ddt, dA, dBC, dD fp32 or None) with dBC = [dB, dC] (batch, L, 2n) fp32, the gradients of B
    and C side by side; dy strided as x. With `_forward`'s fused form (dt_bias, padding_mask, a_log) ddt is the
    gradient of dt_pre in its dtype and dA that of A_log; else ddt fp32."""
    batch, length, heads, p = x.shape
    n = B.shape[-1]
    states, d_states = _walks(x, dt, A, B, C, dy, reverse, dt_bias, padding_mask, a_log)
    n_chunks = states.shape[1]
    dx = torch.empty_like(x)
    f32 = dict(device=x.device, dtype=torch.float32)
    ddt = torch.empty(batch, length, heads, device=x.device, dtype=dt.dtype if dt_bias is not None else torch.float32)
    dBC = torch.empty(batch, length, heads, 2 * n, **f32)
    dA = torch.empty(batch * heads * n_chunks, **f32)
    dD = torch.empty(batch * heads * n_chunks, p, **f32) if D is not None else None
    warps, stages = BWD_CONFIG
    _ssd_bwd_chunk_kernel[(batch * heads * n_chunks,)](
        x, dt, A, B_ptr=B, C_ptr=C, D_ptr=D if D is not None else A, dy_ptr=dy, st_ptr=states, dst_ptr=d_states,
        dx_ptr=dx, ddt_ptr=ddt, dB_ptr=dBC, dC_ptr=dBC[..., n:], dA_ptr=dA, dD_ptr=dD if dD is not None else dA,
        L=length, H=heads, n_chunks=n_chunks, **_stride_args(x, dt, B, C),
        **_step_args(dt, A, dt_bias, padding_mask, a_log), P=p, N=n, Q=CHUNK, HAS_D=D is not None,
        REVERSE=reverse, PREC=dot_precision(x), num_warps=warps, num_stages=stages)
    dD = dD.view(heads, -1, p).sum(1).flatten() if D is not None else None
    return dx, ddt, dA.view(heads, -1).sum(1), dBC.sum(2), dD


def _inputs(x, dt, A, B, C, D):
    """The kernels' layouts: x with contiguous (heads, p), dt and A fp32, B and C with unit last stride."""
    def unit_last(t):
        return t if t.stride(-1) == 1 else t.contiguous()
    x = x if x.stride(-1) == 1 and x.stride(-2) == x.shape[-1] else x.contiguous()
    return (x, dt.float().contiguous(), A.float().contiguous(), unit_last(B), unit_last(C),
            D.contiguous() if D is not None else None)


@torch.library.custom_op("infomamba::ssd_scan", mutates_args=())
def ssd_scan_op(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor], reverse: bool) -> Tensor:
    with torch.no_grad(), on_device(x):
        return _forward(*_inputs(x, dt, A, B, C, D), reverse)


@ssd_scan_op.register_fake
def _(x, dt, A, B, C, D, reverse):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("infomamba::ssd_scan_backward", mutates_args=())
def ssd_scan_backward_op(dy: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                         reverse: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    with torch.no_grad(), on_device(x):
        xs, dts, As, Bs, Cs, Ds = _inputs(x, dt, A, B, C, D)
        dx, ddt, dA, dBC, dD = _backward(xs, dts, As, Bs, Cs, Ds, dy.contiguous(), reverse)
        n = B.shape[-1]
        return (dx, ddt.to(dt.dtype), dA.to(A.dtype), dBC[..., :n].to(B.dtype, copy=True),
                dBC[..., n:].to(C.dtype, copy=True),
                dD.to(D.dtype) if D is not None else x.new_empty(0))


@ssd_scan_backward_op.register_fake
def _(dy, x, dt, A, B, C, D, reverse):
    return (torch.empty_like(x, memory_format=torch.contiguous_format), torch.empty_like(dt), torch.empty_like(A),
            torch.empty_like(B), torch.empty_like(C), torch.empty_like(D) if D is not None else x.new_empty(0))


def _setup_context(ctx, inputs, output):
    *tensors, reverse = inputs
    ctx.save_for_backward(*tensors)
    ctx.has_d = tensors[-1] is not None
    ctx.reverse = reverse


def _backward_autograd(ctx, dy):
    dx, ddt, dA, dB, dC, dD = ssd_scan_backward_op(dy, *ctx.saved_tensors, ctx.reverse)
    return dx, ddt, dA, dB, dC, dD if ctx.has_d else None, None


ssd_scan_op.register_autograd(_backward_autograd, setup_context=_setup_context)


def ssd_scan_triton(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                    reverse: bool = False) -> Tensor:
    """SSD scan on the GPU, the contract of `reference.ssd_scan_reference` (y in x's dtype, differentiable in every
    input; fp32 state and accumulation)."""
    check_widths(x.shape[-1], B.shape[-1])
    if x.shape[1] * x.shape[2] * x.shape[3] >= 2**31:
        raise ValueError("ssd_scan_triton indexes one sample with int32: L * heads * p must be < 2**31")
    if x.numel() == 0:
        return x.clone()
    return ssd_scan_op(x, dt, A, B, C, D, reverse)

