"""Triton selective scan (Mamba-1 form) with a fused, recompute-based backward.

Math (DESIGN.md "One scan for every SSM mixer"; InfoMamba Eq. 11 with the IMF injection folded into
the input u_t = x_t + P h_t), per channel d and state index n, in fp32 whatever the input dtype:

    a_t[d,n] = exp(dt_t[d] A[d,n])            b_t[d,n] = dt_t[d] B_t[n] u_t[d]
    s_t      = a_t s_{t-1} + b_t              y_t[d]   = sum_n C_t[n] s_t[d,n] + D[d] u_t[d]

Form: Mamba-1 (per-channel dt, per-(d, n) decay) as an elementwise scan. With per-channel dt and a full
(d, n) matrix A the decay differs per (d, n) and there is no matrix form without materialising
per-channel decay matrices; the scan is therefore elementwise work, one exp per (t, d, n). (The SSD form,
dt and A a head, has one: `ops/ssd_scan`, selected by the mixers' `ssm_heads`.) One program owns a block of
channels of one sample and walks the sequence in tiles of block_t steps: the tile's u, dt
(block_t, channels) and B, C (block_t, n) are loaded at once (one memory round trip per tile, not per
step), the recurrence inside the tile is `tl.associative_scan` over time, and the (channels, n) state
is carried from tile to tile in registers. Tiles are 4-D, (time, d_in, n, d_lanes): Triton's default
layout hands the lanes to the last axes first, so d_lanes channels go across lanes while the time
steps, d_in channels and the states left over stay inside each thread (ScanConfig says more). The
scan over time is then register arithmetic, and with d_lanes = 32 so is the sum over n: the forward's
first config has no shuffles (checked in the PTX for sm_90) and costs one `ex2` per (t, d, n) plus
about five FMAs. Its floor on H100 is therefore the MUFU rate (16 ex2 per clock per SM), about twice
the bf16 copy-bandwidth time at n = 16 and about equal to the fp32 one; benchmarks/bench_scan.py
prints both. The forward prefetches the next tile while computing the current one, so that few
warps per SM (small batch * d) still keep loads in flight. `reverse=True` walks the tiles from the
last position to the first (index arithmetic, no flipped copies). Padding needs no mask:
dt = u = 0 gives a = 1, b = 0, so the state passes through.

Time chunks (chunk-parallel launch). One program per (channel block, sample) leaves most of the GPU
idle at small batch: at batch 8, d 768 the backward ran 384 one-warp programs on 132 SMs (ncu: 2-5 %
achieved occupancy, latency-bound). A config with `chunks` = K > 1 splits the scan positions into K
chunks of a multiple of CHUNK positions, each its own program. A chunk k transfers the state as
s_end = exp(Delta_k A) s_start + S_k, with Delta_k its summed dt and S_k its end state scanned from zero
(the product of its a_t is exp(Delta_k A)); in the forward a first launch (STATES_ONLY) writes every chunk's
(S_k, Delta_k), and each program folds the earlier chunks' transfers into its start state (K small, so the
O(K) fold per program is cheap). The backward also needs the adjoint entering from the later chunks:
with w_t = a_t g_t, w at a chunk's first position is W_k + exp(Delta_k A) w after it, W_k its own w
from g = 0 after it, written by an ADJOINT_ONLY launch; a chunk is entered with g_carry = w after it
(its decay row set to 1), q = w s_end and sum_n A q for the suffix sums. The backward's ADJOINT_ONLY launch
also writes the chunks' (S_k, Delta_k), from the decays a_{t+1} its adjoint forms anyway: S_k = sum_t
(prod_{r > t} a_r) b_t, a running product over the rows (no forward launch in the backward: 3 % less backward
time kernel-alone at B8 L16384, docs/benchmarks.md). dA and dD come back per (sample, chunk). The cost is one more
exp pass in the forward and one in the backward; the autotuner times each layout with and without chunks where
the programs fill less than two waves (`time_chunked`).

For the fused SSM op (`ops/ssm_inner`) both kernels also take dt before softplus (DT_SOFTPLUS, as
mamba-ssm's `delta_softplus`): they form dt = softplus(dt_pre) in registers, 0 at padding (a (B, L)
mask) and past the end, and the backward writes the gradient of dt_pre, dL/ddt * sigmoid(dt_pre),
in dt_pre's dtype, so no fp32 (B, L, d) dt or ddt tensor is written or read. Both kernels read B and C
through one (batch, row) stride pair (states contiguous), so the op passes them as views of x_proj's
(B, L, R + 2N) output, not copies; the public function passes contiguous ones with their own strides.

Backward, without any state saved by the forward (the forward writes y only; training memory is
that of the inputs). With g_t = dL/ds_t (the adjoint, g_t = dy_t C_t + a_{t+1} g_{t+1}) and the
gradient of the log-decay q_t = dL/dlog a_t = g_t a_t s_{t-1}, the chain rule gives

    du_t    = dt_t sum_n g_t B_t + D dy_t          dB_t[n] = sum_d g_t dt_t u_t
    ddt_t   = u_t sum_n g_t B_t + sum_n A q_t      dC_t[n] = sum_d dy_t s_t
    dA      = sum_t dt_t q_t                       dD      = sum_t dy_t u_t

(t + 1 is the next position in scan order), and q telescopes: q_t - q_{t+1} = X_t with
X_t := dy_t C_t s_t - b_t g_t, so q_t is a suffix sum of a forward part (needs s) and a backward part
(needs g), and sum_n A X_t = x^f_t - x^r_t. One kernel runs two passes per program:
  1. forward pass: recompute s; write dC, x^f_t = dy_t sum_n A C_t s_t (fp32, (batch, L, d)) and the
     state at every CHUNK-th position (fp32, (batch, L/CHUNK, n, d)); accumulate dD and the forward
     half of dA.
  2. backward pass, tiles in reverse scan order (each tile's rows mirrored, so the adjoint recurrence
     is again a forward `associative_scan`): g, dB, du and ddt, with sum_n A q_t = suffix sum of
     x^f - x^r. At every chunk start the exact q there (g times a times the saved state) re-anchors
     that suffix sum and closes the chunk's share of dA, so rounding never accumulates over more
     than CHUNK steps.
dA is split per chunk k (positions t0..t1, Delta_k = sum of dt over the chunk, l_t = the chunk-local
inclusive cumulative dt): sum_{t in k} dt_t q_t = q_{t1+1} Delta_k + sum_{t in k} X_t l_t, where every
term stays bounded (no cancellation of sequence-long sums); pass 2 carries sum b g, sum b g e_t and q across
the chunk for it (a variant that read each chunk's Delta_k back from pass 1 instead used fewer registers but ran
about 10 % slower on the H200: docs/benchmarks.md, 2026-12-04). The cost is two exps per (t, d, n), the
inputs read twice and x^f written and read once; dB and dC are summed over channel blocks with fp32
atomics (so they are not bitwise deterministic), dA and dD over samples from per-sample partials.
"""
from __future__ import annotations

import os
import statistics
from typing import NamedTuple

import torch
import triton
import triton.language as tl
from triton.runtime.errors import OutOfResources

from ..dispatch import on_device

LOG2E = tl.constexpr(1.4426950408889634)
CHUNK = 64  # positions between the states saved by the backward's first pass (a multiple of block_t)
MIN_TIME_CHUNK = 256  # fewest positions in a time chunk of the chunk-parallel launch
_AUTOTUNE_RUNS = 15  # timed launches per candidate (after one untimed)


@triton.jit
def _compose(a_prev, b_prev, a_next, b_next):
    """Compose two affine steps s -> a s + b (earlier step first): the scan operator of the recurrence."""
    return a_prev * a_next, a_next * b_prev + b_next


@triton.jit
def _pick(x, mask):
    """Select the slice of `x` along axis 0 where `mask` (broadcast over axis 0) is true."""
    return tl.sum(tl.where(mask, x, 0.0), axis=0)


@triton.jit
def _sum_channels(x):
    """Sum a (T, D_IN, n, D_LANES) tile over its channels: (T, n); in-thread axis first, then lanes."""
    return tl.sum(tl.sum(x, axis=1), axis=2)


@triton.jit
def _time_steps(p, L, REVERSE: tl.constexpr):
    """(in_seq, t) of scan positions p: whether each lies in the sequence, and its time step (0 outside)."""
    in_seq = p < L
    return in_seq, tl.where(in_seq, (L - 1 - p) if REVERSE else p, 0)


@triton.jit
def _n_offsets(p, L, n_base, offs_n, mask_n, N_ROW, REVERSE: tl.constexpr):
    """Offsets and mask of the (rows, n) tile at scan positions p (rows,) of a tensor with rows N_ROW apart.

    Scan position p is time step p, or L - 1 - p when scanning in reverse; positions >= L are masked.
    """
    in_seq, t = _time_steps(p, L, REVERSE)
    return n_base + t[:, None] * N_ROW + offs_n[None, :], in_seq[:, None] & mask_n[None, :]


@triton.jit
def _tile_offsets(p, L, x_base, n_base, offs_d, mask_d, offs_n, mask_n, DIM, N_ROW, REVERSE: tl.constexpr):
    """Offsets and masks of the (rows, d_in, d_lanes) and (rows, n) tiles at scan positions p (rows,): rows
    DIM apart in the (batch, L, d) tensors, N_ROW apart in the (rows, n) one (`_n_offsets`)."""
    in_seq, t = _time_steps(p, L, REVERSE)
    x_offs = x_base + t[:, None, None] * DIM + offs_d[None, :, :]
    x_mask = in_seq[:, None, None] & mask_d[None, :, :]
    n_offs, n_mask = _n_offsets(p, L, n_base, offs_n, mask_n, N_ROW, REVERSE)
    return x_offs, x_mask, n_offs, n_mask


@triton.jit
def _softplus(raw):
    """(softplus(raw), sigmoid(raw)) in fp32 with three MUFU operations (exp, log, one reciprocal) and no
    division: with e = exp(-|raw|), v = 1 + e, r = 1 / v, log(1 + e) = log(v) + (e - (v - 1)) r (the
    rounding of v corrected to first order, so e^-30 is not lost), sigmoid = r (raw >= 0) or e r;
    softplus = raw past PyTorch's threshold 20."""
    e = tl.exp(-tl.abs(raw))
    v = 1.0 + e
    r = 1.0 / v
    log1p = tl.log(v) + (e - (v - 1.0)) * r
    return tl.where(raw > 20.0, raw, tl.maximum(raw, 0.0) + log1p), tl.where(raw >= 0.0, r, e * r)


@triton.jit
def _shift_rows(x, first, rows):
    """y[0] = first, y[j] = x[j - 1] for a (T, d_in, d_lanes) tile (T adds an element, no memory)."""
    below = rows[:, None] == rows[None, :] + 1
    moved = tl.sum(tl.where(below[:, :, None, None], x[None, :, :, :], 0.0), axis=1)
    return tl.where(rows[:, None, None] == 0, first[None], moved)


@triton.jit
def _step(dt_raw, dt_bias, x_mask, p, L, pad_row_ptr, REVERSE: tl.constexpr, DT_SOFTPLUS: tl.constexpr,
          HAS_PAD: tl.constexpr):
    """(dt, dt'(raw)) of a (rows, d_in, d_lanes) tile loaded at scan positions p, fp32: the raw input
    itself (and 1), or with DT_SOFTPLUS dt = softplus(raw + dt_bias) (PyTorch's threshold 20, 0 past the end;
    dt_bias the (d_in, d_lanes) tile of the per-channel bias) and its sigmoid, both 0 at padding (HAS_PAD:
    pad_row_ptr is this sample's row of the (B, L) mask, True at padding, read once per row)."""
    raw = dt_raw.to(tl.float32)
    if not DT_SOFTPLUS:
        return raw, tl.full(raw.shape, 1.0, tl.float32)
    dt, slope = _softplus(raw + dt_bias[None])
    dt = tl.where(x_mask, dt, 0.0)  # rows past the end: softplus(0) would decay the carried state
    if HAS_PAD:
        in_seq, t = _time_steps(p, L, REVERSE)
        pad = (tl.load(pad_row_ptr + t, mask=in_seq, other=1) != 0)[:, None, None]
        dt = tl.where(pad, 0.0, dt)
        slope = tl.where(pad, 0.0, slope)
    return dt, slope


@triton.jit
def _channel_offsets(D_IN: tl.constexpr, D_LANES: tl.constexpr):
    """This program's channels as a (D_IN, D_LANES) grid: channel = block start + i * D_LANES + j."""
    block_start = tl.program_id(0) * (D_IN * D_LANES)
    return block_start + tl.arange(0, D_IN)[:, None] * D_LANES + tl.arange(0, D_LANES)[None, :]


@triton.jit
def _dt_bias(dtb_ptr, offs_d, mask_d, HAS_DT_BIAS: tl.constexpr):
    """This program's (D_IN, D_LANES) tile of the per-channel dt bias, fp32 (0 without one)."""
    if HAS_DT_BIAS:
        return tl.load(dtb_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    return tl.zeros(offs_d.shape, tl.float32)


@triton.jit
def _program_block(At_ptr, D_ptr, pad_ptr, L, LC, DIM, NSTATE, HAS_D: tl.constexpr, CHUNKED: tl.constexpr,
                   A_LOG: tl.constexpr, D_IN: tl.constexpr, D_LANES: tl.constexpr, BLOCK_N: tl.constexpr):
    """What both kernels start from, for channel block program_id(0) of sample program_id(1) and time chunk
    program_id(2) of LC positions: the sample index, the chunk index and its first scan position, channel
    and state offsets and masks, the (D_IN, n, D_LANES) tile of A in fp32 (A arrives transposed, (n, d), so
    that its tile is contiguous along channels like every other tile; with A_LOG the pointer holds A_log
    transposed instead and A = -exp(A_log) is formed here, 0 off the mask), D (0 without it) and
    the sample's row of the padding mask. Without CHUNKED the chunk and its start are the constant 0 (a runtime 0 made
    the one-chunk kernels 10-17 % slower at B64 L1024, docs/benchmarks.md)."""
    pid_b = tl.program_id(1).to(tl.int64)
    if CHUNKED:
        pid_k = tl.program_id(2)
        p_start = pid_k * LC
    else:
        pid_k = 0
        p_start = 0
    offs_d = _channel_offsets(D_IN, D_LANES)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < DIM
    mask_n = offs_n < NSTATE
    state_offs = offs_n[None, :, None] * DIM + offs_d[:, None, :]
    state_mask = mask_n[None, :, None] & mask_d[:, None, :]
    A = tl.load(At_ptr + state_offs, mask=state_mask, other=0.0).to(tl.float32)
    if A_LOG:
        A = tl.where(state_mask, -tl.exp(A), 0.0)
    Dv = tl.zeros((D_IN, D_LANES), tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    return pid_b, pid_k, p_start, offs_d, mask_d, offs_n, mask_n, state_offs, state_mask, A, Dv, pad_ptr + pid_b * L


@triton.jit
def _fold_chunk(carry, S_ptr, Dl_ptr, A2, row, state_offs, state_mask, offs_d, mask_d, DIM, NSTATE):
    """One time chunk's transfer applied to a carried (D_IN, n, D_LANES) value: exp(Delta A) carry + S, with
    Delta (the chunk's summed dt) and S (its local end value) at row `row` of the (batch * chunks, ...) buffers."""
    delta = tl.load(Dl_ptr + row * DIM + offs_d, mask=mask_d, other=0.0)
    local = tl.load(S_ptr + row * NSTATE * DIM + state_offs, mask=state_mask, other=0.0)
    return tl.exp2(delta[:, None, :] * A2) * carry + local


@triton.jit(do_not_specialize=["L", "LC", "N_TCHUNKS"])
def _scan_fwd_kernel(u_ptr, dt_ptr, At_ptr, B_ptr, C_ptr, D_ptr, pad_ptr, dtb_ptr, y_ptr, S_ptr, Dl_ptr, L, LC,
                     N_TCHUNKS,
                     DIM, NSTATE, BC_BATCH, BC_ROW,
                     HAS_D: tl.constexpr, REVERSE: tl.constexpr, DT_SOFTPLUS: tl.constexpr, HAS_PAD: tl.constexpr,
                     STATES_ONLY: tl.constexpr, CHUNKED: tl.constexpr, A_LOG: tl.constexpr,
                     HAS_DT_BIAS: tl.constexpr, BLOCK_T: tl.constexpr,
                     D_IN: tl.constexpr, D_LANES: tl.constexpr, BLOCK_N: tl.constexpr):
    """y for one (channel block, sample, time chunk): s_t = exp(dt_t A) s_{t-1} + dt_t B_t u_t,
    y_t = C_t s_t + D u_t (InfoMamba Eq. 11 as in the module docstring), in tiles of BLOCK_T steps with the
    state (D_IN, n, D_LANES) in registers. The chunk starts from the state that the earlier chunks'
    transfers (S, Delta) fold to; STATES_ONLY instead scans from zero and writes the chunk's own transfer:
    its end state S and Delta = sum of dt (the module docstring's time chunks)."""
    pid_b, pid_k, p_start, offs_d, mask_d, offs_n, mask_n, state_offs, state_mask, A, Dv, pad_row = _program_block(
        At_ptr, D_ptr, pad_ptr, L, LC, DIM, NSTATE, HAS_D, CHUNKED, A_LOG, D_IN, D_LANES, BLOCK_N)
    dtb = _dt_bias(dtb_ptr, offs_d, mask_d, HAS_DT_BIAS)
    A2 = A * LOG2E
    rows = tl.arange(0, BLOCK_T)
    x_base = pid_b * L * DIM
    n_base = pid_b * BC_BATCH
    first_row = rows[:, None, None, None] == 0
    last_row = rows[:, None, None, None] == BLOCK_T - 1
    state = tl.zeros((D_IN, BLOCK_N, D_LANES), tl.float32)
    delta_sum = tl.zeros((D_IN, D_LANES), tl.float32)
    if CHUNKED and not STATES_ONLY:
        for j in range(0, N_TCHUNKS):
            if j < pid_k:
                state = _fold_chunk(state, S_ptr, Dl_ptr, A2, pid_b * N_TCHUNKS + j, state_offs, state_mask,
                                    offs_d, mask_d, DIM, NSTATE)
    x_offs, x_mask, n_offs, n_mask = _tile_offsets(p_start + rows, L, x_base, n_base, offs_d, mask_d, offs_n,
                                                   mask_n, DIM, BC_ROW, REVERSE)
    dt_next = tl.load(dt_ptr + x_offs, mask=x_mask, other=0.0)
    u_next = tl.load(u_ptr + x_offs, mask=x_mask, other=0.0)
    B_next = tl.load(B_ptr + n_offs, mask=n_mask, other=0.0)
    if not STATES_ONLY:
        C_next = tl.load(C_ptr + n_offs, mask=n_mask, other=0.0)
    for off in range(0, LC, BLOCK_T):  # the last chunk may end early: positions past L are masked
        p0 = p_start + off
        dt, _ = _step(dt_next, dtb, x_mask, p0 + rows, L, pad_row, REVERSE, DT_SOFTPLUS, HAS_PAD)
        u = u_next.to(tl.float32)
        Bt = B_next.to(tl.float32)
        if not STATES_ONLY:
            Ct = C_next.to(tl.float32)
        y_offs, y_mask = x_offs, x_mask
        # Prefetch the next tile (kept in the input dtype): its loads fly while this tile computes.
        x_offs, x_mask, n_offs, n_mask = _tile_offsets(p0 + BLOCK_T + rows, L, x_base, n_base, offs_d, mask_d,
                                                       offs_n, mask_n, DIM, BC_ROW, REVERSE)
        dt_next = tl.load(dt_ptr + x_offs, mask=x_mask, other=0.0)
        u_next = tl.load(u_ptr + x_offs, mask=x_mask, other=0.0)
        B_next = tl.load(B_ptr + n_offs, mask=n_mask, other=0.0)
        if not STATES_ONLY:
            C_next = tl.load(C_ptr + n_offs, mask=n_mask, other=0.0)
        a = tl.exp2(dt[:, :, None, :] * A2[None])
        b = (dt * u)[:, :, None, :] * Bt[:, None, :, None]
        b = tl.where(first_row, b + a * state[None], b)  # s_{-1} of the tile = carried state
        _, s = tl.associative_scan((a, b), 0, _compose)
        if STATES_ONLY:
            delta_sum += tl.sum(dt, axis=0)
        else:
            y = tl.sum(s * Ct[:, None, :, None], axis=2)
            if HAS_D:
                y += u * Dv[None]
            tl.store(y_ptr + y_offs, y.to(y_ptr.dtype.element_ty), mask=y_mask)
        state = _pick(s, last_row)
    if STATES_ONLY:
        row = pid_b * N_TCHUNKS + pid_k
        tl.store(S_ptr + row * NSTATE * DIM + state_offs, state, mask=state_mask)
        tl.store(Dl_ptr + row * DIM + offs_d, delta_sum, mask=mask_d)


@triton.jit
def _reverse_rows(tile, rows, BLOCK_T: tl.constexpr):
    """Scan positions of tile `tile` with its rows against scan order (row j at tile * BLOCK_T + BLOCK_T - 1 - j):
    how both reverse passes of the backward read a tile."""
    return tile * BLOCK_T + BLOCK_T - 1 - rows


@triton.jit
def _load_tile(p, L, x_base, n_base, bc_base, offs_d, mask_d, offs_n, mask_n, DIM, NSTATE, BC_ROW, dt_ptr, u_ptr,
               dy_ptr, xf_ptr, B_ptr, C_ptr, REVERSE: tl.constexpr):
    """Offsets, masks and the raw (input dtype) dt, u, dy, x^f, B, C tiles at scan positions p: every load the
    backward's passes make per tile, issued together so that PREFETCH can move them one tile ahead (a pass that
    does not use a tile drops its load at compile time). B and C are read from bc_base, rows BC_ROW apart; the
    (rows, n) offsets returned are those of dB and dC, side by side in one contiguous (batch, L, 2n) tensor (from
    n_base, rows 2 NSTATE apart; dC's pointer is dB's + NSTATE)."""
    x_offs, x_mask, bc_offs, n_mask = _tile_offsets(p, L, x_base, bc_base, offs_d, mask_d, offs_n, mask_n, DIM,
                                                    BC_ROW, REVERSE)
    n_offs, _ = _n_offsets(p, L, n_base, offs_n, mask_n, 2 * NSTATE, REVERSE)
    return (x_offs, x_mask, n_offs, n_mask, tl.load(dt_ptr + x_offs, mask=x_mask, other=0.0),
            tl.load(u_ptr + x_offs, mask=x_mask, other=0.0), tl.load(dy_ptr + x_offs, mask=x_mask, other=0.0),
            tl.load(xf_ptr + x_offs, mask=x_mask, other=0.0), tl.load(B_ptr + bc_offs, mask=n_mask, other=0.0),
            tl.load(C_ptr + bc_offs, mask=n_mask, other=0.0))


@triton.jit
def _adjoint_tile(dt_next, dy, Ct, g_carry, A2, first_row):
    """(g, a_{t+1}) over a tile whose rows run against scan order (row 0 latest): g_t = a_{t+1} g_{t+1} +
    dy_t C_t, a forward `associative_scan` over the mirrored rows, with a_{t+1} from dt_next, dt one position
    later (`_shift_rows` of the tile's dt and dt at the position after it; g_carry: g there)."""
    a_next = tl.exp2(dt_next[:, :, None, :] * A2[None])
    h = dy[:, :, None, :] * Ct[:, None, :, None]
    h = tl.where(first_row, h + a_next * g_carry[None], h)
    _, g = tl.associative_scan((a_next, h), 0, _compose)
    return g, a_next


@triton.jit(do_not_specialize=["L", "N_CHUNKS", "LC", "N_TCHUNKS"])
def _scan_bwd_kernel(u_ptr, dt_ptr, At_ptr, B_ptr, C_ptr, D_ptr, pad_ptr, dtb_ptr, dy_ptr,
                     du_ptr, ddt_ptr, dAp_ptr, dB_ptr, dC_ptr, dDp_ptr, ckpt_ptr, xf_ptr, S_ptr, W_ptr, Dl_ptr,
                     L, DIM, NSTATE, BC_BATCH, BC_ROW, N_CHUNKS, LC, N_TCHUNKS,
                     HAS_D: tl.constexpr, REVERSE: tl.constexpr, DT_SOFTPLUS: tl.constexpr, HAS_PAD: tl.constexpr,
                     ADJOINT_ONLY: tl.constexpr, CHUNKED: tl.constexpr, A_LOG: tl.constexpr,
                     HAS_DT_BIAS: tl.constexpr, CHUNK: tl.constexpr,
                     PREFETCH: tl.constexpr, BLOCK_T: tl.constexpr,
                     D_IN: tl.constexpr, D_LANES: tl.constexpr, BLOCK_N: tl.constexpr):
    """du, ddt, dB, dC and per-(sample, time chunk) dA, dD partials for one (channel block, sample, time
    chunk): the two passes of the module docstring (adjoint g_t = a_{t+1} g_{t+1} + dy_t C_t, log-decay
    gradient q_t), entered with the state the earlier chunks fold to (S, Delta) and w = a g at the position
    after the chunk, which the later chunks fold to (W, Delta). ADJOINT_ONLY instead runs the adjoint alone
    over the chunk from g = 0 after it and writes the chunk's own w at its first position to W, and its
    transfer (S, Delta)."""
    pid_b, pid_k, p_start, offs_d, mask_d, offs_n, mask_n, state_offs, state_mask, A, Dv, pad_row = _program_block(
        At_ptr, D_ptr, pad_ptr, L, LC, DIM, NSTATE, HAS_D, CHUNKED, A_LOG, D_IN, D_LANES, BLOCK_N)
    dtb = _dt_bias(dtb_ptr, offs_d, mask_d, HAS_DT_BIAS)
    A2 = A * LOG2E
    rows = tl.arange(0, BLOCK_T)
    x_base = pid_b * L * DIM
    n_base = pid_b * L * 2 * NSTATE  # dB and dC side by side: rows 2 NSTATE apart
    bc_base = pid_b * BC_BATCH
    ckpt_base = pid_b * N_CHUNKS * NSTATE * DIM
    first_row = rows[:, None, None, None] == 0
    last_row = rows[:, None, None, None] == BLOCK_T - 1
    last_row_x = rows[:, None, None] == BLOCK_T - 1
    first_tile = p_start // BLOCK_T
    n_tiles = tl.cdiv(LC, BLOCK_T)
    g_carry = tl.zeros((D_IN, BLOCK_N, D_LANES), tl.float32)  # g at the position after the tile
    dt_after = tl.zeros((D_IN, D_LANES), tl.float32)  # dt at the position after the tile

    if ADJOINT_ONLY:
        S_acc = tl.zeros((D_IN, BLOCK_N, D_LANES), tl.float32)
        dt_beyond = tl.zeros((D_IN, D_LANES), tl.float32)  # dt summed from two positions after the tile on
        for i in range(0, n_tiles):
            p = _reverse_rows(first_tile + n_tiles - 1 - i, rows, BLOCK_T)
            x_offs, x_mask, n_offs, n_mask, dt_raw, u, dy, _, Bt, Ct = _load_tile(
                p, L, x_base, n_base, bc_base, offs_d, mask_d, offs_n, mask_n, DIM, NSTATE, BC_ROW, dt_ptr, u_ptr,
                dy_ptr, xf_ptr, B_ptr, C_ptr, REVERSE)
            dt, _ = _step(dt_raw, dtb, x_mask, p, L, pad_row, REVERSE, DT_SOFTPLUS, HAS_PAD)
            dt_next = _shift_rows(dt, dt_after, rows)
            g, a_next = _adjoint_tile(dt_next, dy.to(tl.float32), Ct.to(tl.float32), g_carry, A2, first_row)
            # S += sum_t (prod_{r > t} a_r) b_t: a row's product is the running product of a_{t+1} down the rows
            # times exp(A * dt_beyond).
            b = (dt * u.to(tl.float32))[:, :, None, :] * Bt.to(tl.float32)[:, None, :, None]
            S_acc += tl.exp2(dt_beyond[:, None, :] * A2) * tl.sum(tl.cumprod(a_next, 0) * b, axis=0)
            dt_beyond += tl.sum(dt_next, axis=0)
            g_carry = _pick(g, last_row)
            dt_after = _pick(dt, last_row_x)
        row = pid_b * N_TCHUNKS + pid_k
        tl.store(W_ptr + row * NSTATE * DIM + state_offs, g_carry * tl.exp2(dt_after[:, None, :] * A2),
                 mask=state_mask)
        tl.store(S_ptr + row * NSTATE * DIM + state_offs, S_acc, mask=state_mask)
        tl.store(Dl_ptr + row * DIM + offs_d, dt_beyond + dt_after, mask=mask_d)
    else:
        dA_acc = tl.zeros((D_IN, BLOCK_N, D_LANES), tl.float32)
        dD_acc = tl.zeros((D_IN, D_LANES), tl.float32)
        state = tl.zeros((D_IN, BLOCK_N, D_LANES), tl.float32)
        if CHUNKED:
            for j in range(0, N_TCHUNKS):
                if j < pid_k:
                    state = _fold_chunk(state, S_ptr, Dl_ptr, A2, pid_b * N_TCHUNKS + j, state_offs, state_mask,
                                        offs_d, mask_d, DIM, NSTATE)

        # Pass 1, scan order: s_t, dC, x^f, saved chunk states, dD and sum_{t in chunk} dy C s l_t for dA.
        # With PREFETCH each tile's loads are issued one tile ahead, so that they fly while the tile before
        # computes (the forward always does this; here it costs registers, so the autotuner decides).
        ell_carry = tl.zeros((D_IN, D_LANES), tl.float32)
        ahead = _load_tile(p_start + rows, L, x_base, n_base, bc_base, offs_d, mask_d, offs_n, mask_n, DIM, NSTATE,
                           BC_ROW, dt_ptr, u_ptr, dy_ptr, xf_ptr, B_ptr, C_ptr, REVERSE)
        for off in range(0, LC, BLOCK_T):  # the last chunk may end early: positions past L are masked
            p0 = p_start + off
            if p0 % CHUNK == 0:
                tl.store(ckpt_ptr + ckpt_base + (p0 // CHUNK) * NSTATE * DIM + state_offs, state,
                         mask=state_mask & (p0 < L))
                ell_carry = tl.zeros_like(ell_carry)
            if PREFETCH:
                tile_in = ahead
                ahead = _load_tile(p0 + BLOCK_T + rows, L, x_base, n_base, bc_base, offs_d, mask_d, offs_n, mask_n,
                                   DIM, NSTATE, BC_ROW, dt_ptr, u_ptr, dy_ptr, xf_ptr, B_ptr, C_ptr, REVERSE)
            else:
                tile_in = _load_tile(p0 + rows, L, x_base, n_base, bc_base, offs_d, mask_d, offs_n, mask_n, DIM,
                                     NSTATE, BC_ROW, dt_ptr, u_ptr, dy_ptr, xf_ptr, B_ptr, C_ptr, REVERSE)
            x_offs, x_mask, n_offs, n_mask, dt_raw, u, dy, _, Bt, Ct = tile_in
            dt, _ = _step(dt_raw, dtb, x_mask, p0 + rows, L, pad_row, REVERSE, DT_SOFTPLUS, HAS_PAD)
            u = u.to(tl.float32)
            dy = dy.to(tl.float32)
            Bt = Bt.to(tl.float32)
            Ct = Ct.to(tl.float32)
            a = tl.exp2(dt[:, :, None, :] * A2[None])
            b = (dt * u)[:, :, None, :] * Bt[:, None, :, None]
            b = tl.where(first_row, b + a * state[None], b)
            _, s = tl.associative_scan((a, b), 0, _compose)
            tl.atomic_add(dC_ptr + n_offs, _sum_channels(s * dy[:, :, None, :]), mask=n_mask, sem="relaxed")
            sC = s * Ct[:, None, :, None]
            tl.store(xf_ptr + x_offs, dy * tl.sum(sC * A[None], axis=2), mask=x_mask)
            ell = ell_carry[None] + tl.cumsum(dt, axis=0)
            dA_acc += tl.sum(sC * (dy * ell)[:, :, None, :], axis=0)
            ell_carry += tl.sum(dt, axis=0)
            if HAS_D:
                dD_acc += tl.sum(dy * u, axis=0)
            state = _pick(s, last_row)

        # Pass 2, reverse scan order; row j of a tile is scan position p_top - j (latest first). The chunk
        # is entered with g a = w_in after its end (dt_after = 0 makes that row's decay 1) and the exact q
        # there, w_in times the chunk's end state.
        w_in = tl.zeros((D_IN, BLOCK_N, D_LANES), tl.float32)  # w = a g at the position after the chunk
        if CHUNKED:
            for i in range(0, N_TCHUNKS):  # folded here, not before pass 1: no registers held across it
                j = N_TCHUNKS - 1 - i
                if j > pid_k:
                    w_in = _fold_chunk(w_in, W_ptr, Dl_ptr, A2, pid_b * N_TCHUNKS + j, state_offs, state_mask,
                                       offs_d, mask_d, DIM, NSTATE)
        g_carry = w_in
        q_next = w_in * state  # q at the start of the (saved-state) chunk after this one
        x_carry = tl.sum(A * q_next, axis=1)  # sum_n A q at the position after the tile
        xr_sum = tl.zeros((D_IN, BLOCK_N, D_LANES), tl.float32)  # sum over the chunk so far of b g
        xr_e_sum = tl.zeros((D_IN, BLOCK_N, D_LANES), tl.float32)  # ... of b g e_t
        e_carry = tl.zeros((D_IN, D_LANES), tl.float32)  # sum of dt over the chunk's positions done so far
        ahead = _load_tile(_reverse_rows(first_tile + n_tiles - 1, rows, BLOCK_T), L, x_base, n_base, bc_base,
                           offs_d, mask_d, offs_n, mask_n, DIM, NSTATE, BC_ROW, dt_ptr, u_ptr, dy_ptr, xf_ptr, B_ptr,
                           C_ptr, REVERSE)
        for i in range(0, n_tiles):
            tile = first_tile + n_tiles - 1 - i
            p = _reverse_rows(tile, rows, BLOCK_T)
            if PREFETCH:  # the tile before, or this one again at the chunk's first tile (never before position 0)
                tile_in = ahead
                ahead = _load_tile(_reverse_rows(tl.maximum(tile - 1, first_tile), rows, BLOCK_T), L, x_base,
                                   n_base, bc_base, offs_d, mask_d, offs_n, mask_n, DIM, NSTATE, BC_ROW, dt_ptr, u_ptr,
                                   dy_ptr, xf_ptr, B_ptr, C_ptr, REVERSE)
            else:
                tile_in = _load_tile(p, L, x_base, n_base, bc_base, offs_d, mask_d, offs_n, mask_n, DIM, NSTATE, BC_ROW,
                                     dt_ptr, u_ptr, dy_ptr, xf_ptr, B_ptr, C_ptr, REVERSE)
            x_offs, x_mask, n_offs, n_mask, dt_raw, u, dy, xf, Bt, Ct = tile_in
            dt, slope = _step(dt_raw, dtb, x_mask, p, L, pad_row, REVERSE, DT_SOFTPLUS, HAS_PAD)
            u = u.to(tl.float32)
            dy = dy.to(tl.float32)
            Bt = Bt.to(tl.float32)
            Ct = Ct.to(tl.float32)
            g, _ = _adjoint_tile(_shift_rows(dt, dt_after, rows), dy, Ct, g_carry, A2, first_row)
            dtu = dt * u
            tl.atomic_add(dB_ptr + n_offs, _sum_channels(g * dtu[:, :, None, :]), mask=n_mask, sem="relaxed")
            gB = g * Bt[:, None, :, None]
            gB_sum = tl.sum(gB, axis=2)
            du = gB_sum * dt
            if HAS_D:
                du += Dv[None] * dy
            # sum_n A q_t = sum_{t' >= t} (x^f - x^r)_{t'}: an inclusive prefix sum over the mirrored rows.
            x = xf - dtu * tl.sum(gB * A[None], axis=2)
            x_cum = x_carry[None] + tl.cumsum(x, axis=0)
            tl.store(du_ptr + x_offs, du.to(du_ptr.dtype.element_ty), mask=x_mask)
            tl.store(ddt_ptr + x_offs, ((u * gB_sum + x_cum) * slope).to(ddt_ptr.dtype.element_ty), mask=x_mask)
            x_carry = _pick(x_cum, last_row_x)
            # Backward half of dA: sum_t b_t g_t l_t = Delta_k * sum b g - sum b g e_t, with e_t the dt
            # summed over the chunk's positions after t (l_t = Delta_k - e_t).
            xr = gB * dtu[:, :, None, :]
            e = e_carry[None] + tl.cumsum(dt, axis=0) - dt
            xr_sum += tl.sum(xr, axis=0)
            xr_e_sum += tl.sum(xr * e[:, :, None, :], axis=0)
            e_carry += tl.sum(dt, axis=0)
            g_carry = _pick(g, last_row)
            dt_after = _pick(dt, last_row_x)
            if (tile * BLOCK_T) % CHUNK == 0:
                # Chunk start: close the chunk's dA terms, then the exact q here re-anchors the suffix sum.
                chunk_dt = e_carry[:, None, :]
                dA_acc += q_next * chunk_dt - (chunk_dt * xr_sum - xr_e_sum)
                saved = tl.load(ckpt_ptr + ckpt_base + (tile * BLOCK_T // CHUNK) * NSTATE * DIM + state_offs,
                                mask=state_mask & (tile * BLOCK_T < L), other=0.0)
                q_next = g_carry * tl.exp2(dt_after[:, None, :] * A2) * saved
                x_carry = tl.sum(A * q_next, axis=1)
                xr_sum = tl.zeros_like(xr_sum)
                xr_e_sum = tl.zeros_like(xr_e_sum)
                e_carry = tl.zeros_like(e_carry)

        part = pid_b * N_TCHUNKS + pid_k
        tl.store(dAp_ptr + part * NSTATE * DIM + state_offs, dA_acc * A if A_LOG else dA_acc, mask=state_mask)
        if HAS_D:
            tl.store(dDp_ptr + part * DIM + offs_d, dD_acc, mask=mask_d)


# ----------------------------------------------------------------------------- configs and tuning

class ScanConfig(NamedTuple):
    """Launch config of both kernels: a program owns d_in * d_lanes channels of one sample.

    Triton's default layout hands lanes, then warps, to the last tile axes first: min(d_lanes, 32)
    lanes and d_lanes / 32 warps go to channels, the lanes and warps left over to the state axis n,
    and block_t time steps, d_in channels and the remaining states stay inside each thread. A sum
    over n then costs log2(threads on n) shuffles (and shared memory where warps split n), a sum
    over channels (dB, dC in the backward) log2(d_lanes) shuffles per d_in channels. Measured on
    an H100: the forward does best with n inside the thread, the backward, whose many (d, n)
    accumulators fill the registers, with n split over 2-4 lanes and d_in = 1.

    `chunks` > 1 splits the sequence into that many time chunks, each its own program (the module
    docstring's time chunks): more programs where batch x channel blocks alone leave the GPU idle.
    `prefetch` (backward only; the forward always prefetches) loads each tile one tile ahead.
    """

    block_t: int
    d_in: int
    d_lanes: int
    num_warps: int
    chunks: int = 1
    prefetch: bool = False

    @property
    def block_d(self) -> int:
        return self.d_in * self.d_lanes


# (d_in, d_lanes, num_warps, register budget) per kernel. The budget is the number of fp32 values of
# one (t, d, n) tile each thread may hold; block_t follows from it. Layouts and budgets were chosen
# from ptxas reports for sm_90 (no spills at n = 4, 8 and 16, at most 16 bytes at n = 64); the
# autotuner times them on the device. The backward's layouts were picked by a sweep on an H100
# (`benchmarks/bench_scan.py --sweep`, docs/benchmarks.md): those that split n over 2-4 lanes need
# 108-190 registers a thread at n = 16 instead of 255 (and no spills), so more warps share an SM,
# and ran 1.3-1.9x faster than the d_lanes = 32 layouts.
_LAYOUTS = {
    "fwd": ((1, 32, 1, 64), (1, 16, 1, 32), (1, 8, 1, 64), (1, 64, 2, 64)),
    "bwd": ((1, 16, 1, 16), (1, 8, 1, 8), (1, 8, 1, 16), (2, 8, 1, 16), (4, 8, 1, 32)),
}
_MAX_STATE_PER_THREAD = 16  # beyond this (large n), more warps share the states


def candidate_configs(kind: str, block_n: int) -> list[ScanConfig]:
    """The configs the autotuner may pick for kernel `kind` ("fwd" or "bwd") at state size block_n.

    Each layout gets more warps (which then split n) until a thread holds at most 16 state values,
    and block_t is the largest power of two (<= 16) that keeps each thread's share of a
    (block_t, d_in, n, d_lanes) tile within the layout's register budget. The backward's layouts come
    twice, the second time with `prefetch` (each tile's loads issued one tile ahead: the same registers
    at the first layout, more at others, about 9 % more instructions in sm_90 SASS; Nsight Compute put a
    third of the backward's stalls on loads), so that the device decides.
    """
    configs = []
    for d_in, d_lanes, warps, budget in _LAYOUTS[kind]:
        while d_in * block_n * d_lanes > _MAX_STATE_PER_THREAD * 32 * warps and warps < 8:
            warps *= 2
        per_row = max(1, d_in * block_n * d_lanes // (32 * warps))
        block_t = max(1, min(16, budget // per_row))
        configs.append(ScanConfig(1 << (block_t.bit_length() - 1), d_in, d_lanes, warps))
    configs = list(dict.fromkeys(configs))
    return configs + [c._replace(prefetch=True) for c in configs] if kind == "bwd" else configs


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


_forced: dict[str, ScanConfig] = {}
_tuned: dict[tuple, ScanConfig] = {}


class force_config:
    """Context manager pinning the config of the forward and/or backward kernel (tests, benchmarks).

    `force_config(fwd=cfg)`, `force_config(bwd=cfg)` or both; a config is a ScanConfig or a tuple
    (block_t, d_in, d_lanes, num_warps[, chunks[, prefetch]]). For a whole process:
    INFOMAMBA_SCAN_CONFIG="4,1,32,1" (or "4,1,32,1,8" with 8 time chunks, "2,1,16,1,1,1" with the
    backward's prefetch) pins both kernels, "bwd=2,1,16,1,1,1" the backward alone (the forward autotuned),
    "fwd=4,1,64,2 bwd=2,1,16,1,1,1" each its own; INFOMAMBA_SCAN_AUTOTUNE=0 takes each kernel's
    first candidate (one chunk) without timing.
    """

    def __init__(self, fwd=None, bwd=None):
        pinned = (("fwd", fwd), ("bwd", bwd))
        self.configs = {kind: ScanConfig(*cfg) for kind, cfg in pinned if cfg is not None}

    def __enter__(self):
        self._saved = dict(_forced)
        _forced.update(self.configs)
        return self

    def __exit__(self, *exc):
        _forced.clear()
        _forced.update(self._saved)


def _pinned(kind: str) -> ScanConfig | None:
    """The config pinned for kernel `kind` by `force_config` or INFOMAMBA_SCAN_CONFIG, else None."""
    if kind in _forced:
        return _forced[kind]
    env = os.environ.get("INFOMAMBA_SCAN_CONFIG", "")
    per_kernel = dict(entry.split("=", 1) for entry in env.split()) if "=" in env else {"fwd": env, "bwd": env}
    unknown = set(per_kernel) - {"fwd", "bwd"}
    if unknown:
        raise ValueError(f"INFOMAMBA_SCAN_CONFIG names kernels {sorted(unknown)}; expected fwd= and/or bwd=, or one "
                         f"config for both, got {env!r}")
    values = per_kernel.get(kind)
    return ScanConfig(*(int(v) for v in values.split(","))) if values else None


def _pick_config(kind: str, key: tuple, block_n: int, launch, variants) -> ScanConfig:
    """Forced config, else the cached winner for `key`, else time every candidate once (fastest wins).

    `launch(config)` must be idempotent (each run rewrites, or re-zeroes then accumulates, its outputs);
    `variants(config)` lists the launches timed for one candidate (itself and its time-chunked variant,
    `time_chunked`). Under TRITON_INTERPRET=1 or INFOMAMBA_SCAN_AUTOTUNE=0 the first
    candidate runs, untimed.
    """
    pinned = _pinned(kind)
    if pinned:
        return pinned
    candidates = candidate_configs(kind, block_n)
    if _interpreting() or os.environ.get("INFOMAMBA_SCAN_AUTOTUNE", "1") == "0":
        return candidates[0]
    full_key = (kind, block_n) + key
    if full_key not in _tuned:
        candidates = [v for c in candidates for v in variants(c)]
        _tuned[full_key] = min(candidates, key=lambda c: _time_config(launch, c))
    return _tuned[full_key]


def time_chunked(config: ScanConfig, programs: int, length: int, resident: int) -> list[ScanConfig]:
    """`config`, and where `programs` one-per-(channel block, sample) programs fill less than two waves
    of `resident` programs, its variant with enough time chunks (of at least MIN_TIME_CHUNK positions)
    for two waves."""
    chunks = min(triton.cdiv(2 * resident, programs), length // MIN_TIME_CHUNK)
    return [config, config._replace(chunks=chunks)] if chunks > 1 else [config]


def _resident_programs() -> int:
    """One-warp programs the GPU runs at once at the backward's register use (about 12 per SM on sm_90)."""
    return 12 * torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count


def _time_chunks(length: int, config: ScanConfig) -> tuple[int, int]:
    """(chunks, positions per chunk): one chunk of the whole sequence, or `config.chunks` chunks of a multiple
    of CHUNK positions (the last may be shorter), so that time chunks start on the backward's saved-state
    grid."""
    if config.chunks == 1:
        return 1, length
    per_chunk = CHUNK * triton.cdiv(triton.cdiv(length, CHUNK), config.chunks)
    return triton.cdiv(length, per_chunk), per_chunk


def _time_config(launch, config: ScanConfig) -> float:
    """Median ms of launch(config) run back to back; a config the device cannot run (out of resources) never wins.

    Not `triton.testing.do_bench`: it allocates a 256 MiB buffer to flush the L2 cache before every run, and the
    backward is tuned inside the first training step's backward pass, at the step's memory peak (without it
    InfoMamba's 224 px training peak fell from 3.76 to 3.65 GiB on the H200, docs/benchmarks.md). Back-to-back
    runs time the kernel with its inputs partly in L2; whether that or do_bench's cold L2 is closer to a
    training step is not established (at batch 64, 196 tokens it picked a pair 19 % faster under do_bench)."""
    try:
        launch(config)
        torch.cuda.synchronize()
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(_AUTOTUNE_RUNS)]
        for start, end in events:
            start.record()
            launch(config)
            end.record()
        torch.cuda.synchronize()
        return statistics.median(start.elapsed_time(end) for start, end in events)
    except OutOfResources:
        return float("inf")


def tuned_configs() -> dict[tuple, ScanConfig]:
    """The autotuner's winners so far, keyed by
    (kernel, block_n, d, batch bucket, L bucket, dtypes, device)."""
    return dict(_tuned)


def _shape_key(u: torch.Tensor, *tensors) -> tuple:
    """Tuning key: width, dtypes and power-of-two buckets of batch and length."""
    batch, length, dim = u.shape
    return (dim, triton.next_power_of_2(batch), triton.next_power_of_2(length),
            tuple(t.dtype for t in tensors if t is not None), u.device.index)


# ----------------------------------------------------------------------------- launchers

def _bc_strides(B: torch.Tensor, C: torch.Tensor) -> tuple[int, int]:
    """The (batch, row) strides that the kernels read B and C (batch, L, n) with: both views of one x_proj output,
    or both contiguous; their states must be contiguous."""
    if B.stride() != C.stride() or B.stride(2) != 1:
        raise ValueError(f"the scan kernels need B and C with equal strides and contiguous states, got {B.stride()} "
                         f"and {C.stride()}")
    return B.stride(0), B.stride(1)


def _launch_forward(u, delta, At, B, C, D, y, transfers, reverse, dt_softplus, padding_mask, cfg: ScanConfig,
                    states_only: bool, a_log: bool, dt_bias):
    """One launch of the forward kernel over (channel blocks, samples, time chunks); `transfers` = (S,
    Delta) per (sample, chunk), written with states_only, read otherwise (unused with one chunk)."""
    batch, length, dim = u.shape
    n_chunks, per_chunk = _time_chunks(length, cfg)
    S, delta_sum = transfers
    nstate = At.shape[0]
    grid = (triton.cdiv(dim, cfg.block_d), batch, n_chunks)
    _scan_fwd_kernel[grid](u, delta, At, B, C, D if D is not None else u,
                           padding_mask if padding_mask is not None else u, dt_bias if dt_bias is not None else u,
                           y, S, delta_sum, length, per_chunk,
                           n_chunks, dim, nstate, *_bc_strides(B, C), HAS_D=D is not None, REVERSE=reverse,
                           DT_SOFTPLUS=dt_softplus,
                           HAS_PAD=padding_mask is not None, STATES_ONLY=states_only, CHUNKED=n_chunks > 1,
                           A_LOG=a_log, HAS_DT_BIAS=dt_bias is not None, BLOCK_T=cfg.block_t, D_IN=cfg.d_in,
                           D_LANES=cfg.d_lanes, BLOCK_N=triton.next_power_of_2(nstate), num_warps=cfg.num_warps)


def _chunk_transfers(u, delta, At, B, C, D, reverse, dt_softplus, padding_mask, cfg: ScanConfig, a_log: bool,
                     dt_bias):
    """(S, Delta): each time chunk's end state scanned from zero, (batch * chunks, n, d), and its summed dt,
    (batch * chunks, d), both fp32; placeholders with one chunk."""
    batch, length, dim = u.shape
    n_chunks, _ = _time_chunks(length, cfg)
    if n_chunks == 1:
        return u, u
    f32 = dict(device=u.device, dtype=torch.float32)
    transfers = (torch.empty(batch * n_chunks, At.shape[0], dim, **f32),
                 torch.empty(batch * n_chunks, dim, **f32))
    _launch_forward(u, delta, At, B, C, D, u, transfers, reverse, dt_softplus, padding_mask, cfg, states_only=True,
                    a_log=a_log, dt_bias=dt_bias)
    return transfers


def _variants(u: torch.Tensor):
    """Per candidate config, the launches the autotuner times for input u (see `time_chunked`)."""
    return lambda cfg: time_chunked(cfg, triton.cdiv(u.shape[2], cfg.block_d) * u.shape[0], u.shape[1],
                                    _resident_programs())


def _forward(u, delta, At, B, C, D, reverse: bool, dt_softplus: bool = False, padding_mask=None,
             a_log: bool = False, dt_bias=None) -> torch.Tensor:
    """y of the scan. With dt_softplus, `delta` is dt before its bias and softplus (any float dtype) and the
    kernel forms dt = softplus(delta + dt_bias) (dt_bias (d,) or None), 0 where padding_mask (B, L) is True: no
    fp32 (B, L, d) dt tensor exists. With a_log, `At` is the parameter A_log transposed, (n, d), and the kernel
    forms A = -exp(A_log): no A tensor exists. Transposed, not A_log's own (d, n): the backward kernel's register
    layout follows that load, and states across lanes (n contiguous) took 216 registers a thread instead of 147 at
    its first candidate (sm_90 ptxas)."""
    block_n = triton.next_power_of_2(At.shape[0])
    y = torch.empty_like(u)

    def launch(cfg: ScanConfig):
        transfers = _chunk_transfers(u, delta, At, B, C, D, reverse, dt_softplus, padding_mask, cfg, a_log, dt_bias)
        _launch_forward(u, delta, At, B, C, D, y, transfers, reverse, dt_softplus, padding_mask, cfg,
                        states_only=False, a_log=a_log, dt_bias=dt_bias)

    launch(_pick_config("fwd", _forward_key(u, delta, B, C, D, padding_mask, dt_softplus), block_n, launch,
                        _variants(u)))
    return y


def _forward_key(u, delta, B, C, D, padding_mask, dt_softplus: bool) -> tuple:
    return _shape_key(u, u, delta, B, C, D, padding_mask) + (dt_softplus,)


def _backward(u, delta, At, B, C, D, dy, reverse: bool, dt_softplus: bool = False, padding_mask=None,
              a_log: bool = False, dt_bias=None):
    """(du, ddelta, dA, dBC, dD) with dBC = [dB, dC] (batch, L, 2n) fp32, the gradients of B and C side by side (one
    buffer to zero, one cast for a caller that wants them in another dtype). With dt_softplus (see `_forward`)
    ddelta is the gradient of dt before its bias and softplus (the bias' gradient is its sum over tokens), in
    delta's dtype; with a_log (see `_forward`) dA is the gradient of A_log, (d, n)."""
    batch, length, dim = u.shape
    nstate = At.shape[0]
    block_n = triton.next_power_of_2(nstate)
    n_saved = triton.cdiv(length, CHUNK)
    f32 = dict(device=u.device, dtype=torch.float32)
    du, ddelta = torch.empty_like(u), torch.empty_like(delta)
    dBC = torch.empty(batch, length, 2 * nstate, **f32)  # [dB, dC] side by side, zeroed per launch
    ckpt = torch.empty(batch, n_saved, nstate, dim, **f32)
    xf = torch.empty(batch, length, dim, **f32)

    def launch(cfg: ScanConfig):
        """Both launches of the backward with `cfg`; returns the per-(sample, chunk) dA and dD partials."""
        if CHUNK % cfg.block_t:
            raise ValueError(f"CHUNK={CHUNK} must be a multiple of block_t={cfg.block_t}")
        n_chunks, per_chunk = _time_chunks(length, cfg)
        # the chunks' transfers (S, Delta) and adjoint transfers W, written by the ADJOINT_ONLY launch
        chunked = n_chunks > 1
        S = torch.empty(batch * n_chunks, nstate, dim, **f32) if chunked else u
        W = torch.empty_like(S) if chunked else u
        delta_sum = torch.empty(batch * n_chunks, dim, **f32) if chunked else u
        dA_part = torch.empty(batch * n_chunks, nstate, dim, **f32)
        dD_part = torch.empty(batch * n_chunks, dim, **f32) if D is not None else dA_part
        dBC.zero_()
        grid = (triton.cdiv(dim, cfg.block_d), batch, n_chunks)
        for adjoint_only in ((True, False) if n_chunks > 1 else (False,)):
            _scan_bwd_kernel[grid](u, delta, At, B, C, D if D is not None else u,
                                   padding_mask if padding_mask is not None else u,
                                   dt_bias if dt_bias is not None else u, dy,
                                   du, ddelta, dA_part, dBC, dBC[..., nstate:], dD_part,
                                   ckpt, xf, S, W, delta_sum, length, dim, nstate, *_bc_strides(B, C), n_saved,
                                   per_chunk, n_chunks,
                                   HAS_D=D is not None, REVERSE=reverse, DT_SOFTPLUS=dt_softplus,
                                   HAS_PAD=padding_mask is not None, ADJOINT_ONLY=adjoint_only,
                                   CHUNKED=n_chunks > 1, A_LOG=a_log, HAS_DT_BIAS=dt_bias is not None, CHUNK=CHUNK,
                                   PREFETCH=bool(cfg.prefetch),
                                   BLOCK_T=cfg.block_t, D_IN=cfg.d_in, D_LANES=cfg.d_lanes, BLOCK_N=block_n,
                                   num_warps=cfg.num_warps)
        return dA_part, dD_part

    dA_part, dD_part = launch(_pick_config("bwd", _shape_key(u, u, delta, B, C, D, dy, padding_mask) + (dt_softplus,),
                                           block_n, launch, _variants(u)))
    return du, ddelta, dA_part.sum(0).t().contiguous(), dBC, dD_part.sum(0) if D is not None else None


class SelectiveScanFn(torch.autograd.Function):
    """Autograd wrapper: forward writes y only; backward recomputes (module docstring)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, reverse):
        u, delta, B, C = (t.contiguous() for t in (u, delta, B, C))
        At = A.t().contiguous()
        D = D.contiguous() if D is not None else None
        ctx.save_for_backward(u, delta, A, At, B, C, D)
        ctx.reverse = reverse
        with on_device(u):
            return _forward(u, delta, At, B, C, D, reverse)

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, At, B, C, D = ctx.saved_tensors
        with on_device(u):
            du, ddelta, dA, dBC, dD = _backward(u, delta, At, B, C, D, dy.contiguous(), ctx.reverse)
        dB, dC = dBC.split(B.shape[-1], dim=-1)
        return (du, ddelta, dA.to(A.dtype), dB.to(B.dtype), dC.to(C.dtype),
                dD.to(D.dtype) if D is not None else None, None)


def selective_scan_triton(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                          C: torch.Tensor, D: torch.Tensor | None = None,
                          reverse: bool = False) -> torch.Tensor:
    """Selective scan on the GPU, same contract as `infomamba.ops.selective_scan.reference.selective_scan_reference`.

    Args:
        u, delta: (batch, L, d), any float dtype (delta already positive, e.g. softplus-ed).
        A: (d, n), negative. B, C: (batch, L, n). D: (d,) or None.
        reverse: scan from the last position to the first.
    Returns:
        y: (batch, L, d) in u's dtype; state and accumulation are fp32. Differentiable in all inputs
        (an empty u gives an empty y, differentiable in u only).
    """
    if u.numel() == 0:
        return u.clone()
    if u.shape[1] * max(u.shape[2], A.shape[1]) >= 2**31:
        raise ValueError("selective_scan_triton indexes one sample with int32: L * max(d, n) must be < 2**31")
    return SelectiveScanFn.apply(u, delta, A, B, C, D, reverse)
