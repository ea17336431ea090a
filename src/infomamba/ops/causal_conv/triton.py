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
padding mask is the (B, L) bool mask, True at padding, read once per row and tap.

Design. x, y, dy, dx are (B, L, D) with channels contiguous, so a tile of BLOCK_T steps x
BLOCK_D channels loads as coalesced rows and there is no transpose. x is read through its batch and row
strides, so the first half of in_proj's (B, L, 2D) output is read in place (no copy); each tile's row
offset is formed in int64 and the offsets inside the tile stay int32, whatever the row stride. y, h, dy
and dx are contiguous. Each tap is a masked load of
the tile shifted by its lag; the K - 1 halo rows and the re-reads of the same rows hit L1/L2, so
DRAM sees x about once. The forward writes y only; nothing is saved but the inputs.

The backward is one kernel that recomputes dpre wherever it needs it instead of writing it out:
dx_t needs dpre at the K positions t - S l_i, each of which is K loads of x and one of dy, so a
tile issues K (K + 1) loads of x (20 at K = 4) and K sigmoids per element, all but the first
touch of each row served from L1/L2. The alternative, a first kernel writing dpre in fp32 and a
second reading it for dx, saves that arithmetic but adds 8 bytes of DRAM traffic per element to the
6 (bf16) of x, dy and dx. dw and db are deterministic: each program walks `tiles` tiles of
`block_t` steps (ConvConfig), keeps its sums in registers and writes one (K + 1, block_d) fp32 partial
row (dw_0..dw_{K-1}, db) to a (programs along B and T, K + 1, D) buffer that torch sums (no atomics);
with the default 32 steps a program that buffer is 7 MB at B 64, L 196, D 768 and 126 MB at L 4096.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ..dispatch import on_device


class ConvConfig(NamedTuple):
    """Launch shape: tiles of block_t steps x block_d channels, `tiles` of them a program (backward
    only: the dw/db partial rows are per program), num_warps warps."""

    block_t: int
    block_d: int
    tiles: int
    num_warps: int


# forward: 4096-element tiles, 32 fp32 a thread at 4 warps, 256 bytes a row in bf16. Backward: smaller
# tiles (more live tensors: pre, dpre, the dx accumulator) of 64 channels, 2 a program, 2 warps: the
# fastest of BWD_CANDIDATES on the H200 at every shape swept (B64 x L196 / 1024 / 4096, B8 x L16384:
# 0.141 / 0.563 / 2.180 / 1.107 ms against 0.230 / 0.947 / 3.566 / 1.798 for the previous (16, 128, 8, 4);
# docs/runs/conv_sweep_h200.log): more, smaller programs keep more loads in flight.
FWD_CONFIG = ConvConfig(block_t=32, block_d=128, tiles=1, num_warps=4)
BWD_CONFIG = ConvConfig(block_t=16, block_d=64, tiles=2, num_warps=2)
# What `benchmarks/bench_conv.py --sweep` times on a GPU (tests check each against the reference).
FWD_CANDIDATES = (FWD_CONFIG, ConvConfig(16, 128, 1, 4), ConvConfig(32, 64, 1, 2), ConvConfig(16, 256, 1, 4))
BWD_CANDIDATES = (BWD_CONFIG, ConvConfig(16, 128, 8, 4), ConvConfig(8, 128, 4, 2), ConvConfig(16, 32, 2, 1),
                  ConvConfig(8, 64, 4, 1), ConvConfig(16, 64, 4, 2), ConvConfig(32, 32, 2, 2))


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
def _conv_dpre(x_ptr, pad_ptr, dy_ptr, w_ptr, bias, t0, t, d, d_ok, L, D, stride_l, K: tl.constexpr,
               S: tl.constexpr, HAS_PAD: tl.constexpr):
    """dpre = dy SiLU'(pre) at steps t, 0 outside 0..L-1; dy_ptr points at step t0 of the sample's dy."""
    pre = _conv_pre(x_ptr, pad_ptr, w_ptr, bias, t0, t, d, d_ok, L, stride_l, K, S, HAS_PAD)
    ok = (t >= 0) & (t < L)
    dy = tl.load(dy_ptr + (t - t0)[:, None] * D + d[None, :], mask=ok[:, None] & d_ok[None, :], other=0.0)
    s = tl.sigmoid(pre)
    return dy.to(tl.float32) * s * (1.0 + pre * (1.0 - s))


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


@triton.jit
def _conv_bwd_kernel(x_ptr, w_ptr, b_ptr, pad_ptr, dy_ptr, dx_ptr, part_ptr, L, D, stride_b, stride_l,
                     K: tl.constexpr, S: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_PAD: tl.constexpr,
                     BLOCK_T: tl.constexpr, TILES: tl.constexpr, BLOCK_D: tl.constexpr, K_POW2: tl.constexpr):
    """dx (0 at padding) for TILES * BLOCK_T steps x BLOCK_D channels of sample program_id(2), and their dw,
    db partial sums as row (program_id(2), program_id(0)) of part (rows, K + 1, D)."""
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
    taps = tl.arange(0, K_POW2)
    rows = tl.arange(0, BLOCK_T)
    dw = tl.zeros([K_POW2, BLOCK_D], dtype=tl.float32)
    db = tl.zeros([BLOCK_D], dtype=tl.float32)
    start = tl.program_id(0) * (TILES * BLOCK_T)
    for t0 in range(start, tl.minimum(start + TILES * BLOCK_T, L), BLOCK_T):
        t = t0 + rows
        x_tile = x_ptr + tl.cast(t0, tl.int64) * stride_l
        dy_tile = dy_ptr + t0 * D
        dpre = _conv_dpre(x_tile, pad_ptr, dy_tile, w_ptr, bias, t0, t, d, d_ok, L, D, stride_l, K, S, HAS_PAD)
        db += tl.sum(dpre, axis=0)
        w_last = tl.load(w_ptr + d * K + (K - 1), mask=d_ok, other=0.0).to(tl.float32)
        dx = w_last[None, :] * dpre
        for i in tl.static_range(K):
            xs = _load_x(x_tile, pad_ptr, t0, t + S * (K - 1 - i), d, d_ok, L, stride_l, HAS_PAD)
            dw += tl.where(taps[:, None] == i, tl.sum(dpre * xs, axis=0)[None, :], 0.0)
        for i in tl.static_range(K - 1):
            w = tl.load(w_ptr + d * K + i, mask=d_ok, other=0.0).to(tl.float32)
            dx += w[None, :] * _conv_dpre(x_tile, pad_ptr, dy_tile, w_ptr, bias, t0, t - S * (K - 1 - i), d, d_ok,
                                          L, D, stride_l, K, S, HAS_PAD)
        dx = tl.where(_real(pad_ptr, t, L, HAS_PAD)[:, None], dx, 0.0)
        mask = (t < L)[:, None] & d_ok[None, :]
        tl.store(dx_ptr + t0 * D + rows[:, None] * D + d[None, :], dx.to(dx_ptr.dtype.element_ty), mask=mask)
    part_ptr += (tl.program_id(2) * tl.num_programs(0) + tl.program_id(0)).to(tl.int64) * (K + 1) * D
    tl.store(part_ptr + taps[:, None] * D + d[None, :], dw, mask=(taps < K)[:, None] & d_ok[None, :])
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
                  reverse: bool, config: ConvConfig | None = None, padding_mask: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx (0 at padding), dweight (D, K) fp32, dbias (D,) fp32) of <dy, SiLU(conv(x~))>: the backward launch
    (BWD_CONFIG unless given), no autograd. x and padding_mask as in `conv_forward`, dy contiguous; dx is
    contiguous in x's dtype."""
    config = config or BWD_CONFIG
    x = _rows(x)
    B, L, D = x.shape
    K = weight.shape[1]
    dx = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    if dx.numel() == 0:
        part = torch.zeros(K + 1, D, device=x.device, dtype=torch.float32)
    else:
        n_chunks = triton.cdiv(L, config.tiles * config.block_t)
        part = torch.empty(B * n_chunks, K + 1, D, device=x.device, dtype=torch.float32)
        with on_device(x):
            _conv_bwd_kernel[(n_chunks, triton.cdiv(D, config.block_d), B)](
                x, weight, bias if bias is not None else weight, padding_mask if padding_mask is not None else dy,
                dy, dx, part, L, D, x.stride(0), x.stride(1), K=K, S=1 if reverse else -1, HAS_BIAS=bias is not None,
                HAS_PAD=padding_mask is not None, BLOCK_T=config.block_t, TILES=config.tiles,
                BLOCK_D=config.block_d, K_POW2=triton.next_power_of_2(K), num_warps=config.num_warps)
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
