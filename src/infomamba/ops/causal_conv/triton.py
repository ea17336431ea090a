"""Triton depthwise causal conv + SiLU along time, channels-last, fused, with its backward.

Math (the conv of the selective SSM: InfoMamba Eq. 11's u_t = SiLU(conv_d(x))_t, Mamba's causal
conv; `infomamba.ops.causal_conv.causal_conv_silu_reference` is the oracle), per sample and channel d, with
K = d_conv taps w_0..w_{K-1}, lag l_i = K - 1 - i and direction sign S (-1 forward, +1 reverse),
in fp32 whatever x's dtype:

    pre_t = b + sum_i w_i x~_{t + S l_i}     (x~ = x at real tokens, 0 at padding and outside 0..L-1)
    y_t   = SiLU(pre_t) = pre_t sigma(pre_t)

Forward (S = -1) is causal, pre_t = b + w_{K-1} x_t + ... + w_0 x_{t-K+1}; reverse (S = +1) is its
mirror, pre_t = b + w_{K-1} x_t + ... + w_0 x_{t+K-1}: the scan's direction is index arithmetic,
no flipped copies.

Backward. With dpre_t = dy_t SiLU'(pre_t), SiLU'(p) = s (1 + p (1 - s)), s = sigma(p), and
dpre = 0 outside 0..L-1:

    dx_t = sum_i w_i dpre_{t - S l_i}        (the transposed conv; 0 at padding, the mask's derivative)
    dw_i = sum_{b,t} dpre_t x~_{t + S l_i}   db = sum_{b,t} dpre_t

The fused SSM op (`ops/ssm_inner`) has the forward launch also form its scan input, InfoMamba Eq. 11's
u_t = SiLU(conv(x~))_t + P h_t with P = diag(p) (P = I without p), 0 at padding, so the mask, the
injection and the final mask are no separate launches. The reference (`ssm_inner.reference.scan_input`)
rounds SiLU(conv), P h and their sum to x's dtype one by one; the kernel rounds h and p to x's dtype as it
does, forms the sum in fp32 and rounds once (within a 16-bit rounding of the reference in bf16). The
padding mask is the (B, L) bool mask, True at padding, read once per row and tap (forward) or twice per row
(backward: for x~ and for dx).

Design. x, y, dy, dx are (B, L, D) with channels contiguous, so a tile of BLOCK_T steps x BLOCK_D channels
(forward) or a row of BLOCK_D channels (backward) loads coalesced and there is no transpose. x is read through
its batch and row strides, so the first half of in_proj's (B, L, 2D) output is read in place (no copy); the
row offset of a forward tile and of a backward program's first row is formed in int64 (the backward then steps
row pointers by the row stride) and the offsets inside a tile or row stay int32, whatever the row stride. y, h,
dy and dx are contiguous. Each tap of the forward is a masked load of the tile shifted by its lag; the K - 1
halo rows and the re-reads of the same rows hit L1/L2, so DRAM sees x about once. The forward writes y only;
nothing is saved but the inputs.

The backward walks the time axis in scan order, one row a step, and recomputes pre and dpre instead of
saving them. At scan position j (t = j forward, L - 1 - j in reverse) both directions are causal,
pre_j = b + sum_i w_i x~_{j - l_i} and dx_j = sum_i w_i dpre_{j + l_i}. A program takes `block_t` scan
positions j0.. (ConvConfig: a chunk) x block_d channels of one sample and walks j from j0 - (K - 1) to
j0 + block_t + K - 2 (clipped to 0..L + K - 2), with the last K - 1 rows of x~ and of dpre in registers: at
each j it forms pre_j and dpre_j from the x~ window, stores dx_{j - (K - 1)} from the dpre window once that
row is in the chunk, and adds dpre_j x~_{j - l_i} to dw_i and dpre_j to db only for j in the chunk. The K - 1
positions on either side of a chunk are walked by both of its neighbours (2 (K - 1) / block_t more rows; the dy
rows before j0 are not read). x and dy are loaded ROWS_AHEAD positions ahead of their use. An element thus
costs one load of x and of dy, one sigmoid, one store of dx and 3 K FMAs (pre, dx, dw), against K (K + 1) + K
loads of x and K sigmoids in the tiled kernel it replaced, which recomputed dpre at each of the K shifts.
dw and db are deterministic: each program keeps its sums in registers and writes one (K + 1, block_d) fp32
partial row (dw_0..dw_{K-1}, db) to a (B x chunks, K + 1, D) buffer that torch sums (no atomics); at the
default 128-step chunks that buffer is 2 MB at B 64, L 196, D 768, K 4 and 31 MB at L 4096.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ..dispatch import on_device


class ConvConfig(NamedTuple):
    """Launch shape: a program covers block_t steps x block_d channels of one sample with num_warps warps. The
    forward computes them as one tile; the backward walks them (a chunk of block_t scan positions) a row at a
    time, and its dw/db partial rows are one a program."""

    block_t: int
    block_d: int
    num_warps: int


# forward: 4096-element tiles, 32 fp32 a thread at 4 warps, 256 bytes a row in bf16. Backward: chunks of 128 scan
# positions (the K - 1 halo rows walked again at each end add 2 (K - 1) / 128 to the rows walked; the partial
# buffer is (K + 1) / 128 of the gradient's size in fp32) x 128 channels on 2 warps, 2 channels a thread (56
# registers at K = 4). In one bench_conv.py --sweep on the H200 (bf16, D 768, K 4, forward direction; its log was
# lost with that machine, the numbers are from docs/benchmarks.md) it took 0.055 / 0.432 / 0.235 ms at B64 x L196 /
# B64 x L4096 / B8 x L16384, within 0.007 ms of the fastest of BWD_CANDIDATES, and 0.148 at B64 x L1024, 11 % behind
# (64, 128, 1)'s 0.133; the tiled backward it replaced took 0.141 / 2.180 / 1.107 and 0.563
# (docs/runs/conv_sweep_h200.log).
FWD_CONFIG = ConvConfig(block_t=32, block_d=128, num_warps=4)
BWD_CONFIG = ConvConfig(block_t=128, block_d=128, num_warps=2)
# What `benchmarks/bench_conv.py --sweep` times on a GPU (tests check each against the reference).
FWD_CANDIDATES = (FWD_CONFIG, ConvConfig(16, 128, 4), ConvConfig(32, 64, 2), ConvConfig(16, 256, 4))
BWD_CANDIDATES = (BWD_CONFIG, ConvConfig(64, 128, 2), ConvConfig(256, 128, 2), ConvConfig(32, 128, 2),
                  ConvConfig(64, 128, 1), ConvConfig(128, 128, 1), ConvConfig(64, 64, 1), ConvConfig(128, 256, 2),
                  ConvConfig(128, 256, 4), ConvConfig(64, 256, 4))


@triton.jit
def _real(pad_ptr, t, L, HAS_PAD: tl.constexpr):
    """Which steps t are real tokens: inside 0..L-1 and, with HAS_PAD, not padding (pad_ptr: the sample's
    row of the (B, L) mask, True at padding)."""
    ok = (t >= 0) & (t < L)
    if HAS_PAD:
        ok = ok & (tl.load(pad_ptr + t, mask=ok, other=1) == 0)
    return ok


@triton.jit
def _load_x(x_ptr, pad_ptr, t0, src, d, d_ok, L, stride_l, HAS_PAD: tl.constexpr):
    """x~ at steps src (BLOCK_T,) and channels d in fp32: 0 outside 0..L-1 and at padding. x_ptr points at
    step t0 of the sample, rows stride_l apart, so the offsets stay small whatever the row stride."""
    ok = _real(pad_ptr, src, L, HAS_PAD)
    xs = tl.load(x_ptr + (src - t0)[:, None] * stride_l + d[None, :], mask=ok[:, None] & d_ok[None, :], other=0.0)
    return xs.to(tl.float32)


@triton.jit
def _conv_pre(x_ptr, pad_ptr, w_ptr, bias, t0, t, d, d_ok, L, stride_l, K: tl.constexpr, S: tl.constexpr,
              HAS_PAD: tl.constexpr):
    """pre at steps t (BLOCK_T,) and channels d (BLOCK_D,) of one sample, fp32, from x~ (`_load_x`)."""
    pre = tl.zeros([t.shape[0], d.shape[0]], dtype=tl.float32) + bias[None, :]
    for i in tl.static_range(K):
        xs = _load_x(x_ptr, pad_ptr, t0, t + S * (K - 1 - i), d, d_ok, L, stride_l, HAS_PAD)
        w = tl.load(w_ptr + d * K + i, mask=d_ok, other=0.0).to(tl.float32)
        pre += w[None, :] * xs
    return pre


@triton.jit
def _conv_fwd_kernel(x_ptr, w_ptr, b_ptr, h_ptr, p_ptr, pad_ptr, y_ptr, L, D, stride_b, stride_l, K: tl.constexpr,
                     S: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_H: tl.constexpr, HAS_P: tl.constexpr,
                     HAS_PAD: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    """u = SiLU(pre) (+ p h), 0 at padding, for BLOCK_T steps x BLOCK_D channels of sample program_id(2)."""
    t0 = tl.program_id(0) * BLOCK_T
    rows = tl.arange(0, BLOCK_T)
    t = t0 + rows
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    d_ok = d < D
    sample = tl.program_id(2).to(tl.int64)
    x_ptr += sample * stride_b + t0.to(tl.int64) * stride_l
    pad_ptr += sample * L
    h_ptr += (sample * L + t0) * D
    y_ptr += (sample * L + t0) * D
    offs = rows[:, None] * D + d[None, :]
    bias = tl.zeros([BLOCK_D], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(b_ptr + d, mask=d_ok, other=0.0).to(tl.float32)
    pre = _conv_pre(x_ptr, pad_ptr, w_ptr, bias, t0, t, d, d_ok, L, stride_l, K, S, HAS_PAD)
    u = pre * tl.sigmoid(pre)
    mask = (t < L)[:, None] & d_ok[None, :]
    if HAS_H:
        # h and p rounded to u's dtype as the reference's `injected`; the sum stays fp32 until the store
        h = tl.load(h_ptr + offs, mask=mask, other=0.0).to(y_ptr.dtype.element_ty).to(tl.float32)
        if HAS_P:
            h *= tl.load(p_ptr + d, mask=d_ok, other=0.0).to(y_ptr.dtype.element_ty).to(tl.float32)[None, :]
        u += h
    u = tl.where(_real(pad_ptr, t, L, HAS_PAD)[:, None], u, 0.0)
    tl.store(y_ptr + offs, u.to(y_ptr.dtype.element_ty), mask=mask)


# scan positions whose rows the backward loads ahead of the one it computes (2: 2 to 4 % faster than 1 on the H200
# at B 64, L 4096 in the forward direction, even in reverse)
ROWS_AHEAD = tl.constexpr(2)


@triton.jit
def _step(j, L, S: tl.constexpr):
    """The time step at scan position j: j forward (S = -1), L - 1 - j in reverse."""
    t = j
    if S == 1:
        t = L - 1 - j
    return t


@triton.jit
def _scan_row(x_row, pad_row, dy_row, j, j0, L, d, d_ok, HAS_PAD: tl.constexpr):
    """x (0 at padding and past scan position L - 1) and dy (0 outside scan positions j0..L-1) at scan position
    j >= 0, in their own dtypes, from the rows of x, the padding mask and dy that start at x_row, pad_row, dy_row."""
    ok = j < L
    real = ok
    if HAS_PAD:
        real = ok & (tl.load(pad_row, mask=ok, other=1) == 0)
    x = tl.load(x_row + d, mask=d_ok & real, other=0.0)
    dy = tl.load(dy_row + d, mask=d_ok & ok & (j >= j0), other=0.0)
    return x, dy


@triton.jit
def _conv_bwd_kernel(x_ptr, w_ptr, b_ptr, pad_ptr, dy_ptr, dx_ptr, part_ptr, L, D, stride_b, stride_l,
                     K: tl.constexpr, S: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_PAD: tl.constexpr,
                     CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, ACC: tl.constexpr):
    """dx (0 at padding) at the CHUNK scan positions from j0 = program_id(0) CHUNK, BLOCK_D channels of sample
    program_id(2), one row a step, and their dw, db partial sums as row (program_id(2), program_id(0)) of part
    (rows, K + 1, D). ACC: dx is added to what dx_ptr holds, in fp32 before one rounding."""
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    d_ok = d < D
    sample = tl.program_id(2).to(tl.int64)
    x_ptr += sample * stride_b
    pad_ptr += sample * L
    dy_ptr += sample * L * D
    dx_ptr += sample * L * D
    bias = tl.zeros([BLOCK_D], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(b_ptr + d, mask=d_ok, other=0.0).to(tl.float32)
    w = ()
    for i in tl.static_range(K):
        w = w + (tl.load(w_ptr + d * K + i, mask=d_ok, other=0.0).to(tl.float32),)
    j0 = tl.program_id(0) * CHUNK
    start = tl.maximum(j0 - (K - 1), 0)
    # x and dy of the next ROWS_AHEAD scan positions, loaded ahead so that their loads overlap the arithmetic; the
    # row pointers step one time step a scan position (-S)
    t = _step(start, L, S)
    x_row, pad_row, dy_row = x_ptr + t.to(tl.int64) * stride_l, pad_ptr + t, dy_ptr + t * D
    x_ahead, dy_ahead = (), ()
    for a in tl.static_range(ROWS_AHEAD):
        x_a, dy_a = _scan_row(x_row, pad_row, dy_row, start + a, j0, L, d, d_ok, HAS_PAD)
        x_ahead, dy_ahead = x_ahead + (x_a,), dy_ahead + (dy_a,)
        x_row, pad_row, dy_row = x_row - S * stride_l, pad_row - S, dy_row - S * D
    t = _step(start - (K - 1), L, S)
    dx_row, pad_dx_row = dx_ptr + t * D, pad_ptr + t
    zero = tl.zeros([BLOCK_D], dtype=tl.float32)
    # x~ and dpre at the K - 1 scan positions before j, oldest first; before `start` they reach only the dpre of
    # positions before j0 (0: dy is) and masked dx stores
    xs, dpres = (zero,) * (K - 1), (zero,) * (K - 1)
    dw = (zero,) * K
    db = zero
    # unrolled by the windows' length, so that no window value is copied along the loop's back edge
    for j in tl.range(start, tl.minimum(j0 + CHUNK, L) + (K - 1), loop_unroll_factor=max(K - 1, 1)):
        x_j, dy_j = x_ahead[0], dy_ahead[0]
        x_a, dy_a = _scan_row(x_row, pad_row, dy_row, j + ROWS_AHEAD, j0, L, d, d_ok, HAS_PAD)
        x_ahead, dy_ahead = x_ahead[1:] + (x_a,), dy_ahead[1:] + (dy_a,)
        x_row, pad_row, dy_row = x_row - S * stride_l, pad_row - S, dy_row - S * D
        xw = xs + (x_j.to(tl.float32),)
        pre = bias
        for i in tl.static_range(K):
            pre += w[i] * xw[i]
        s = tl.sigmoid(pre)
        pw = dpres + (dy_j.to(tl.float32) * s * (1.0 + pre * (1.0 - s)),)
        dx = w[0] * pw[K - 1]
        for i in tl.static_range(1, K):
            dx += w[i] * pw[K - 1 - i]
        ok = j - (K - 1) >= j0
        if HAS_PAD:
            # loaded again, not carried: compiled by Triton 3.6, scalar i1 values carried through this loop in a
            # tuple were dropped when ROWS_AHEAD was 1 (dx at padding followed the first row's realness)
            dx = tl.where(tl.load(pad_dx_row, mask=ok, other=1) == 0, dx, 0.0)
        if ACC:
            dx += tl.load(dx_row + d, mask=d_ok & ok, other=0.0).to(tl.float32)
        tl.store(dx_row + d, dx.to(dx_ptr.dtype.element_ty), mask=d_ok & ok)
        dx_row, pad_dx_row = dx_row - S * D, pad_dx_row - S
        dpre = tl.where(j < j0 + CHUNK, pw[K - 1], 0.0)
        db += dpre
        sums = ()
        for i in tl.static_range(K):
            sums = sums + (dw[i] + dpre * xw[i],)
        dw = sums
        xs, dpres = xw[1:], pw[1:]
    part_ptr += (tl.program_id(2) * tl.num_programs(0) + tl.program_id(0)).to(tl.int64) * (K + 1) * D
    for i in tl.static_range(K):
        tl.store(part_ptr + i * D + d, dw[i], mask=d_ok)
    tl.store(part_ptr + K * D + d, db, mask=d_ok)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """x itself where its channels are contiguous (the kernels take its batch and row strides), else a copy."""
    return x if x.stride(2) == 1 else x.contiguous()


def conv_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, reverse: bool,
                 config: ConvConfig | None = None, h: torch.Tensor | None = None, p: torch.Tensor | None = None,
                 padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """u = SiLU(conv(x~)) + p h, 0 at padding (x~: x with 0 at padding), contiguous (B, L, D) in x's dtype: the
    forward launch (FWD_CONFIG unless given), no autograd.

    x (B, L, D) is read through its batch and row strides (a copy is made only if its channels are strided);
    weight (D, K) and bias (D,) contiguous; h (B, L, D) contiguous or None (no injection); p (D,) or None
    (P = I); padding_mask (B, L) bool contiguous, True at padding, or None."""
    config = config or FWD_CONFIG
    x = _rows(x)
    B, L, D = x.shape
    y = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    if y.numel() == 0:
        return y
    with on_device(x):
        _conv_fwd_kernel[(triton.cdiv(L, config.block_t), triton.cdiv(D, config.block_d), B)](
            x, weight, bias if bias is not None else weight, h if h is not None else y, p if p is not None else weight,
            padding_mask if padding_mask is not None else y, y, L, D, x.stride(0), x.stride(1), K=weight.shape[1],
            S=1 if reverse else -1, HAS_BIAS=bias is not None, HAS_H=h is not None, HAS_P=p is not None,
            HAS_PAD=padding_mask is not None, BLOCK_T=config.block_t, BLOCK_D=config.block_d,
            num_warps=config.num_warps)
    return y


def conv_backward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dy: torch.Tensor,
                  reverse: bool, config: ConvConfig | None = None, padding_mask: torch.Tensor | None = None,
                  into: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx (0 at padding), dweight (D, K) fp32, dbias (D,) fp32) of <dy, SiLU(conv(x~))>: the backward launch
    (BWD_CONFIG unless given), no autograd. x and padding_mask as in `conv_forward`, dy contiguous; dx is
    contiguous in x's dtype. `into` (contiguous, x's shape and dtype): dx is added to it in place and it is
    returned as dx (the other scan direction's dx)."""
    config = config or BWD_CONFIG
    x = _rows(x)
    B, L, D = x.shape
    K = weight.shape[1]
    if into is not None and (into.shape != x.shape or not into.is_contiguous() or into.dtype != x.dtype):
        raise ValueError(f"conv_backward adds dx into a contiguous tensor of x's shape and dtype {tuple(x.shape)}, "
                         f"{x.dtype}; got {tuple(into.shape)}, {into.dtype}, contiguous={into.is_contiguous()}")
    dx = into if into is not None else torch.empty(x.shape, device=x.device, dtype=x.dtype)
    if dx.numel() == 0:
        part = torch.zeros(K + 1, D, device=x.device, dtype=torch.float32)
    else:
        n_chunks = triton.cdiv(L, config.block_t)
        part = torch.empty(B * n_chunks, K + 1, D, device=x.device, dtype=torch.float32)
        with on_device(x):
            _conv_bwd_kernel[(n_chunks, triton.cdiv(D, config.block_d), B)](
                x, weight, bias if bias is not None else weight, padding_mask if padding_mask is not None else dy,
                dy, dx, part, L, D, x.stride(0), x.stride(1), K=K, S=1 if reverse else -1, HAS_BIAS=bias is not None,
                HAS_PAD=padding_mask is not None, CHUNK=config.block_t, BLOCK_D=config.block_d, ACC=into is not None,
                num_warps=config.num_warps)
        part = part.sum(0)
    return dx, part[:K].t().contiguous(), part[K].clone()


class CausalConvSiLUFn(torch.autograd.Function):
    """Autograd wrapper: forward saves its inputs only; backward recomputes pre (module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias, reverse):
        weight = weight.contiguous()
        bias = bias.contiguous() if bias is not None else None
        ctx.save_for_backward(x, weight, bias)
        ctx.reverse = reverse
        return conv_forward(x, weight, bias, reverse)

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias = ctx.saved_tensors
        dx, dweight, dbias = conv_backward(x, weight, bias, dy.contiguous(), ctx.reverse)
        return (dx if ctx.needs_input_grad[0] else None,
                dweight.to(weight.dtype) if ctx.needs_input_grad[1] else None,
                dbias.to(bias.dtype) if bias is not None and ctx.needs_input_grad[2] else None, None)


def causal_conv_silu_triton(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                            reverse: bool = False) -> torch.Tensor:
    """Fused depthwise conv along time + SiLU, same contract as `infomamba.ops.causal_conv.causal_conv_silu_reference`.

    Args:
        x: (B, L, D), any float dtype, read in place if its channels are contiguous (else copied once).
        weight: (D, K), 1 <= K <= 8 taps, w_{K-1} on the current step.
        bias: (D,) or None.
        reverse: anti-causal (the conv of a reverse scan) instead of causal.
    Returns:
        SiLU of the conv, (B, L, D) in x's dtype; differentiable in x, weight and bias.
    """
    if x.dim() != 3 or weight.dim() != 2 or weight.shape[0] != x.shape[2] or not 1 <= weight.shape[1] <= 8:
        raise ValueError(f"causal_conv_silu_triton needs x (B, L, D) and weight (D, K) with 1 <= K <= 8, "
                         f"got x {tuple(x.shape)}, weight {tuple(weight.shape)}")
    if x.shape[1] * x.shape[2] >= 2**31:
        raise ValueError(f"causal_conv_silu_triton indexes a sample with int32: L * D must be < 2**31, "
                         f"got {x.shape[1]} * {x.shape[2]}")
    return CausalConvSiLUFn.apply(x, weight, bias, reverse)
