"""The selective-SSM inner path as one differentiable op that saves only its inputs (mamba-ssm's
`mamba_inner_fn` pattern, DESIGN.md "Speed and memory of the SSM path").

Forward: one conv kernel reads x in place (a view of in_proj's output, through its strides), masks
padding on load and forms u = SiLU(conv(x~)) + P h, 0 at padding (InfoMamba Eq. 11's injection) ->
x_proj -> dt_proj -> the Triton scan, which writes r only (dt's bias, softplus and padding mask run inside
the scan kernels, which read dt before them in the activation dtype, as mamba-ssm's `delta_bias` and
`delta_softplus`, B and C as views of x_proj's output, through their row stride, and A_log (transposed).
Without a conv, u = SiLU(x~) + P h stays in PyTorch. In the SSD form (A_log of shape (H,)) the scan is
`ops/ssd_scan`'s, whose kernels likewise read dt_pre, dt's bias (one a head), the mask and A_log.
Nothing of the path is kept: the backward is handed the op's inputs (x and h in the activation dtype,
the small parameters) and recomputes the conv output, the projections and dt (two skinny matmuls and
elementwise work, no scan), then runs the scan's backward kernel (which recomputes its states by chunk
itself) and the chain rule by hand:

    ddt_pre = ddt sigma(dt_pre)          (softplus' = sigma; 0 at padding; written by the scan's backward)
    db_dt = sum ddt_pre;  dW_dt = ddt_pre^T dt~;  d dt~ = ddt_pre W_dt
    dW_x = [d dt~, dB, dC]^T u;  du = du_scan + [d dt~, dB, dC] W_x     (then 0 at padding)
    dh = p du;  dp = sum h du;  dx, dconv_w, dconv_b = conv backward kernel(x, du)  (x~ and dx masked in it)
    dA_log = dA * A                      (A = -exp(A_log); both formed in the scan kernels, which read A_log)

du, dh and dp come from one kernel (`_injection_bwd_kernel`): it forms the x_proj term [d dt~, dB, dC] W_x itself
(a tensor-core product of K = R + 2N, fp32 accumulation: the (B, L, E) product is never written and read back),
adds the scan's du, zeroes padding, rounds du to u's dtype as the reference does, and from that du writes dh and
per-program fp32 partial rows of dp (summed by torch: deterministic, no atomics), where PyTorch took a matmul and
about nine launches per direction (the add, the mask and its cast, P's and h's casts, two products, the sum, the
casts back). The reference rounds the x_proj term and the product du h to u's dtype; the kernel keeps both in
fp32 until du and dp.

Per direction and layer, training therefore keeps no (B, L, E) tensor beyond x and h, which the
mixer holds anyway (P h is formed inside, so even the injected product is not kept), against about
eight (half of them fp32) in the unfused path.

The op is a `torch.library.custom_op` pair (`infomamba::ssm_inner`, `infomamba::ssm_inner_backward`) with
fake implementations and registered autograd, so `torch.compile` keeps the whole mixer in one graph and
fuses the glue around it. Matmuls run in x's dtype (bf16 under mixed precision); weight gradients are
returned in the parameters' dtype. Absent optional inputs give empty gradients inside the op
(a custom op returns tensors only), mapped back to None for autograd.

A bidirectional mixer's forward and reverse scans over the same x, h and p run as a second pair of custom ops
(`infomamba::ssm_inner_pair` and its backward), on the same two bodies (`_forward`, `_backward`): the reverse scan's
SSD forward kernel adds its readout into the forward scan's, and the forward direction's conv and injection backward
kernels add its dx and dh into the reverse direction's, so that autograd adds none of these (B, L, E) pairs apart.
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..causal_conv.triton import conv_backward, conv_forward
from ..dispatch import dot_precision, on_device
from ..selective_scan import triton as scan
from ..ssd_scan import triton as ssd
from .reference import keep_mask, masked, projections, scan_input, state_size


def _no_autocast(t: Tensor):
    return torch.autocast(t.device.type, enabled=False)


def _none(x: Tensor) -> Tensor:
    """The gradient of an absent optional input (a fresh empty tensor: a custom op's outputs never alias)."""
    return x.new_empty(0)


def _recompute(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, d_state, padding_mask, reverse):
    """(x~ or None, u, dt~, B, C, dt before its bias and softplus): what the scan kernels read (they add the bias
    and apply softplus and the padding mask to dt; B and C are views of x_proj's output, read through their row
    stride). With a conv, one kernel forms u from x in place (masking on load, P h and the mask fused) and x~ is
    not materialised (None); without one, u = SiLU(x~) + P h in PyTorch and x~ is returned for the backward's
    SiLU'."""
    if conv_w is None:
        xm, u = scan_input(x, None, None, h, p, keep_mask(padding_mask, x), reverse)
    else:
        xm = None
        u = conv_forward(x, conv_w.contiguous(), conv_b.contiguous() if conv_b is not None else None, reverse,
                         h=h.contiguous() if h is not None else None, p=p.contiguous() if p is not None else None,
                         padding_mask=_pad(padding_mask))
    dt_low, B, C, dt_pre = projections(u, x_proj_w, dt_proj_w, None, d_state)
    return xm, u, dt_low, B, C, dt_pre.contiguous()


def _pad(padding_mask: Tensor | None) -> Tensor | None:
    return padding_mask.contiguous() if padding_mask is not None else None


# The injection backward's blocks (`benchmarks/bench_injection.py --configs` on an H100, docs/benchmarks.md): tiles of
# 64 rows (tokens) by as many channels as a block of 4096 of W_x's weights leaves beside x_proj's K (64 channels at
# K = R + 2N = 56, padded to 64), two tiles a program (its dp partial row summed in registers), four warps
_INJECTION_ROWS = 64
_INJECTION_TILE_WEIGHTS = 4096
_INJECTION_TILES = 2
_INJECTION_WARPS = 4


@triton.jit
def _injection_bwd_kernel(a_ptr, d_ptr, w_ptr, h_ptr, p_ptr, pad_ptr, du_ptr, dh_ptr, part_ptr, n_rows, E, K,
                          HAS_H: tl.constexpr, HAS_P: tl.constexpr, HAS_PAD: tl.constexpr, BLOCK_R: tl.constexpr,
                          BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr, TILES: tl.constexpr, ACC: tl.constexpr,
                          PREC: tl.constexpr):
    """du = a + d W at real tokens (0 at padding) in du's dtype, d W (x_proj's input gradient, d (rows, K) and W
    (K, E) in du's dtype) formed here as a tensor-core product with fp32 accumulation; with HAS_H, dh = p du (du
    with P = I) in h's dtype (ACC: added to what dh_ptr holds, in fp32 before one rounding) and this program's row
    of dp partials, sum over its rows of du h (fp32), for TILES tiles of BLOCK_R rows (tokens) x BLOCK_E channels;
    every tensor (rows, E) or (rows, K) contiguous, the mask one byte a row, True at padding."""
    cols = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    col_ok = cols < E
    ks = tl.arange(0, BLOCK_K)
    w = tl.load(w_ptr + ks[:, None] * E + cols[None, :], mask=(ks < K)[:, None] & col_ok[None, :], other=0.0)
    dp = tl.zeros([BLOCK_E], dtype=tl.float32)
    p = tl.zeros([BLOCK_E], dtype=tl.float32)
    if HAS_P:
        p = tl.load(p_ptr + cols, mask=col_ok, other=0.0).to(du_ptr.dtype.element_ty).to(tl.float32)
    for tile in range(TILES):
        rows = (tl.program_id(0) * TILES + tile) * BLOCK_R + tl.arange(0, BLOCK_R)
        row_ok = rows < n_rows
        if HAS_PAD:
            row_ok = row_ok & (tl.load(pad_ptr + rows, mask=row_ok, other=1) == 0)
        offs = rows.to(tl.int64)[:, None] * E + cols[None, :]
        mask = (rows < n_rows)[:, None] & col_ok[None, :]
        d = tl.load(d_ptr + rows.to(tl.int64)[:, None] * K + ks[None, :],
                    mask=(rows < n_rows)[:, None] & (ks < K)[None, :], other=0.0)
        du = tl.load(a_ptr + offs, mask=mask, other=0.0).to(tl.float32) + tl.dot(d, w, input_precision=PREC)
        du = tl.where(row_ok[:, None], du, 0.0).to(du_ptr.dtype.element_ty)
        tl.store(du_ptr + offs, du, mask=mask)
        if HAS_H:
            du = du.to(tl.float32)
            dh = du * p[None, :] if HAS_P else du
            if ACC:
                dh += tl.load(dh_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            tl.store(dh_ptr + offs, dh.to(dh_ptr.dtype.element_ty), mask=mask)
            if HAS_P:
                h = tl.load(h_ptr + offs, mask=mask, other=0.0).to(du_ptr.dtype.element_ty).to(tl.float32)
                dp += tl.sum(du * h, axis=0)
    if HAS_P:
        tl.store(part_ptr + tl.program_id(0).to(tl.int64) * E + cols, dp, mask=col_ok)


def injection_blocks(E: int, K: int) -> tuple[int, int]:
    """(channels, K) of the injection backward's blocks: K padded to a power of two >= 16 (a tensor-core product's
    least), and as many channels (up to 256, at least 16) as `_INJECTION_TILE_WEIGHTS` allows beside it."""
    block_k = max(16, triton.next_power_of_2(K))
    return max(16, min(256, triton.next_power_of_2(E), _INJECTION_TILE_WEIGHTS // block_k)), block_k


def _injection_backward(du_scan: Tensor, d_proj: Tensor, w_proj: Tensor, h: Tensor | None, p: Tensor | None,
                        padding_mask: Tensor | None, dh_into: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(du, dh, dp): du = du_scan + d_proj w_proj at real tokens, 0 at padding, in du_scan's dtype (du_scan
    contiguous (B, L, E), d_proj (B, L, K) the gradient of x_proj's output and w_proj (K, E) its weight, both in
    du_scan's dtype); dh = P du in h's dtype and dp = sum over tokens of du h in p's dtype (empty without h, p).
    `dh_into` (h's shape and dtype, contiguous): dh is added to it in place and it is returned as dh."""
    E, K = du_scan.shape[-1], w_proj.shape[0]
    n_rows = du_scan.numel() // E
    du = torch.empty_like(du_scan)
    dh = dh_into if dh_into is not None else torch.empty_like(h) if h is not None else _none(du_scan)
    block_e, block_k = injection_blocks(E, K)
    grid = (triton.cdiv(n_rows, _INJECTION_ROWS * _INJECTION_TILES), triton.cdiv(E, block_e))
    part = torch.empty(grid[0], E, device=du.device, dtype=torch.float32) if p is not None else du
    if n_rows:
        _injection_bwd_kernel[grid](du_scan, d_proj.contiguous(), w_proj.contiguous(),
                                    h.contiguous() if h is not None else du, p if p is not None else du,
                                    _pad(padding_mask) if padding_mask is not None else du, du, dh, part, n_rows, E, K,
                                    HAS_H=h is not None, HAS_P=p is not None, HAS_PAD=padding_mask is not None,
                                    BLOCK_R=_INJECTION_ROWS, BLOCK_E=block_e, BLOCK_K=block_k, TILES=_INJECTION_TILES,
                                    ACC=dh_into is not None, PREC=dot_precision(du_scan),
                                    num_warps=_INJECTION_WARPS)
    dp = part.sum(0).to(p.dtype) if p is not None else _none(du_scan)
    return du, dh, dp


def _ssd_forward(u: Tensor, dt_pre: Tensor, A_log: Tensor, B: Tensor, C: Tensor, D: Tensor, reverse: bool,
                 padding_mask: Tensor | None, dt_bias: Tensor, into: Tensor | None) -> Tensor:
    """The scan in the SSD form (`ops/ssd_scan`): r (B, L, E) from u (B, L, E) contiguous, dt before its bias and
    softplus (B, L, H) contiguous, A_log (H,); the kernels form dt = softplus(dt_pre + bias), 0 at padding, and
    A = -exp(A_log) themselves, as the Mamba-1 scan's do. `into` (u's shape and dtype, contiguous): r is added to
    it in the forward kernel, which returns it."""
    heads = A_log.shape[0]
    return ssd._forward(u.unflatten(-1, (heads, -1)), dt_pre, A_log.contiguous(), B, C, D, reverse,
                        dt_bias=dt_bias.contiguous(), padding_mask=_pad(padding_mask), a_log=True,
                        into=into.unflatten(-1, (heads, -1)) if into is not None else None).flatten(2)


def _ssd_backward(u: Tensor, dt_pre: Tensor, A_log: Tensor, B: Tensor, C: Tensor, D: Tensor, dy: Tensor,
                  reverse: bool, padding_mask: Tensor | None, dt_bias: Tensor
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(du, d dt_pre in its dtype, dA_log, [dB, dC] side by side (B, L, 2N) fp32, dD) of `_ssd_forward`, as the
    Mamba-1 scan's `_backward` returns them (d dt_pre = ddt sigmoid(dt_pre + bias), 0 at padding, and dA_log = dA A
    formed in the kernels)."""
    heads = A_log.shape[0]
    du, d_pre, dA_log, dBC, dD = ssd._backward(u.unflatten(-1, (heads, -1)), dt_pre, A_log.contiguous(), B, C, D,
                                               dy.unflatten(-1, (heads, -1)), reverse, dt_bias=dt_bias.contiguous(),
                                               padding_mask=_pad(padding_mask), a_log=True)
    return du.flatten(2), d_pre, dA_log, dBC, dD


def _forward(x: Tensor, conv_w: Tensor | None, conv_b: Tensor | None, h: Tensor | None, p: Tensor | None,
             x_proj_w: Tensor, dt_proj_w: Tensor, dt_proj_b: Tensor, A_log: Tensor, D: Tensor,
             padding_mask: Tensor | None, reverse: bool, into: Tensor | None = None) -> Tensor:
    """r of one direction (no autograd); `into`: r is added to it in place and it is returned (the other direction's
    readout: the SSD forward kernel adds it before its one rounding; the Mamba-1 scan, whose autotuner times its
    launches on the output, leaves the add to torch)."""
    with torch.no_grad(), _no_autocast(x), on_device(x):
        _, u, _, B, C, dt_pre = _recompute(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w,
                                           state_size(x_proj_w, dt_proj_w), padding_mask, reverse)
        if A_log.dim() == 1:
            return _ssd_forward(u, dt_pre, A_log, B, C, D.contiguous(), reverse, padding_mask, dt_proj_b, into)
        r = scan._forward(u, dt_pre, A_log.t().contiguous(), B, C, D.contiguous(), reverse, dt_softplus=True,
                          padding_mask=_pad(padding_mask), a_log=True, dt_bias=dt_proj_b.contiguous())
        return into.add_(r) if into is not None else r


def _backward(dy: Tensor, x: Tensor, conv_w: Tensor | None, conv_b: Tensor | None, h: Tensor | None,
              p: Tensor | None, x_proj_w: Tensor, dt_proj_w: Tensor, dt_proj_b: Tensor, A_log: Tensor, D: Tensor,
              padding_mask: Tensor | None, reverse: bool, dx_into: Tensor | None = None,
              dh_into: Tensor | None = None) -> tuple[Tensor, ...]:
    """The gradients of one direction's inputs x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D
    (absent ones empty), no autograd. `dx_into`, `dh_into` (the other direction's dx and dh): dx and dh are added to
    them in place, in the conv's and the injection's backward kernels, and they are returned as dx and dh."""
    with torch.no_grad(), _no_autocast(x), on_device(x):
        x_w, dt_w = x_proj_w.to(x.dtype), dt_proj_w.to(x.dtype)  # cast once: recompute and chain rule
        xm, u, dt_low, B, C, dt_pre = _recompute(x, conv_w, conv_b, h, p, x_w, dt_w, state_size(x_proj_w, dt_proj_w),
                                                 padding_mask, reverse)
        if A_log.dim() == 1:
            du_scan, g, dA_log, dBC, dD = _ssd_backward(u, dt_pre, A_log, B, C, D.contiguous(), dy.contiguous(),
                                                        reverse, padding_mask, dt_proj_b)
        else:
            du_scan, g, dA_log, dBC, dD = scan._backward(u, dt_pre, A_log.t().contiguous(), B, C, D.contiguous(),
                                                         dy.contiguous(), reverse, dt_softplus=True,
                                                         padding_mask=_pad(padding_mask), a_log=True,
                                                         dt_bias=dt_proj_b.contiguous())
        # Each (B, L, E) tensor is released right after its last use: the next ones are allocated while
        # this backward still holds what the mixer saved, at the step's peak.
        del dt_pre, B, C
        d_dt_b = g.sum((0, 1), dtype=torch.float32)
        d_dt_w = g.flatten(0, 1).t() @ dt_low.flatten(0, 1)
        d_xdbl = torch.cat([g @ dt_w, dBC.to(u.dtype)], dim=-1)
        del g
        d_x_w = d_xdbl.flatten(0, 1).t() @ u.flatten(0, 1)
        du, dh, dp = _injection_backward(du_scan, d_xdbl, x_w, h, p, padding_mask, dh_into)
        del u, du_scan, d_xdbl
        if conv_w is None:
            s = torch.sigmoid(xm.float())
            dx = masked((du.float() * s * (1 + xm.float() * (1 - s))).to(x.dtype), keep_mask(padding_mask, x))
            dx = dx_into.add_(dx) if dx_into is not None else dx
            d_conv_w, d_conv_b = _none(x), _none(x)
        else:
            dx, d_conv_w, d_conv_b = conv_backward(x, conv_w.contiguous(), conv_b, du, reverse,
                                                   padding_mask=_pad(padding_mask), into=dx_into)
            d_conv_w = d_conv_w.to(conv_w.dtype)
            d_conv_b = d_conv_b.to(conv_b.dtype) if conv_b is not None else _none(x)
        return (dx, d_conv_w, d_conv_b, dh, dp,
                d_x_w.to(x_proj_w.dtype), d_dt_w.to(dt_proj_w.dtype), d_dt_b.to(dt_proj_b.dtype),
                dA_log.to(A_log.dtype), dD.to(D.dtype))


def _like(t: Tensor | None, x: Tensor) -> Tensor:
    return torch.empty_like(t) if t is not None else _none(x)


@torch.library.custom_op("infomamba::ssm_inner", mutates_args=())
def ssm_inner_op(x: Tensor, conv_w: Optional[Tensor], conv_b: Optional[Tensor], h: Optional[Tensor],
                 p: Optional[Tensor], x_proj_w: Tensor, dt_proj_w: Tensor, dt_proj_b: Tensor, A_log: Tensor, D: Tensor,
                 padding_mask: Optional[Tensor], reverse: bool) -> Tensor:
    return _forward(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse)


@ssm_inner_op.register_fake
def _(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse):
    return torch.empty_like(x)


@torch.library.custom_op("infomamba::ssm_inner_backward", mutates_args=())
def ssm_inner_backward_op(dy: Tensor, x: Tensor, conv_w: Optional[Tensor], conv_b: Optional[Tensor],
                          h: Optional[Tensor], p: Optional[Tensor], x_proj_w: Tensor, dt_proj_w: Tensor,
                          dt_proj_b: Tensor, A_log: Tensor, D: Tensor, padding_mask: Optional[Tensor], reverse: bool
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    return _backward(dy, x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse)


@ssm_inner_backward_op.register_fake
def _(dy, x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse):
    return tuple(_like(t, x) for t in (x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D))


def _setup_context(ctx, inputs, output):
    *tensors, reverse = inputs
    ctx.save_for_backward(*tensors)
    ctx.present = [t is not None for t in tensors]
    ctx.reverse = reverse


def _backward_autograd(ctx, dy):
    grads = ssm_inner_backward_op(dy, *ctx.saved_tensors, ctx.reverse)
    present = ctx.present
    # inputs: x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse
    return (*(g if given else None for g, given in zip(grads, present[:10])), None, None)


ssm_inner_op.register_autograd(_backward_autograd, setup_context=_setup_context)


def _direction(params, x, h, p, padding_mask, reverse) -> tuple:
    """`_forward`'s arguments from one direction's parameters in the pair ops' order: conv_w, conv_b, x_proj_w,
    dt_proj_w, dt_proj_b, A_log, D."""
    conv_w, conv_b, *rest = params
    return (x, conv_w, conv_b, h, p, *rest, padding_mask, reverse)


@torch.library.custom_op("infomamba::ssm_inner_pair", mutates_args=())
def ssm_inner_pair_op(x: Tensor, h: Optional[Tensor], p: Optional[Tensor], padding_mask: Optional[Tensor],
                      conv_w: Optional[Tensor], conv_b: Optional[Tensor], x_proj_w: Tensor, dt_proj_w: Tensor,
                      dt_proj_b: Tensor, A_log: Tensor, D: Tensor, conv_w_r: Optional[Tensor],
                      conv_b_r: Optional[Tensor], x_proj_w_r: Tensor, dt_proj_w_r: Tensor, dt_proj_b_r: Tensor,
                      A_log_r: Tensor, D_r: Tensor) -> Tensor:
    params = (conv_w, conv_b, x_proj_w, dt_proj_w, dt_proj_b, A_log, D)
    params_r = (conv_w_r, conv_b_r, x_proj_w_r, dt_proj_w_r, dt_proj_b_r, A_log_r, D_r)
    r = _forward(*_direction(params, x, h, p, padding_mask, False))
    return _forward(*_direction(params_r, x, h, p, padding_mask, True), into=r)


@ssm_inner_pair_op.register_fake
def _(x, h, p, padding_mask, *params):
    return torch.empty_like(x)


@torch.library.custom_op("infomamba::ssm_inner_pair_backward", mutates_args=())
def ssm_inner_pair_backward_op(dy: Tensor, x: Tensor, h: Optional[Tensor], p: Optional[Tensor],
                               padding_mask: Optional[Tensor], conv_w: Optional[Tensor], conv_b: Optional[Tensor],
                               x_proj_w: Tensor, dt_proj_w: Tensor, dt_proj_b: Tensor, A_log: Tensor, D: Tensor,
                               conv_w_r: Optional[Tensor], conv_b_r: Optional[Tensor], x_proj_w_r: Tensor,
                               dt_proj_w_r: Tensor, dt_proj_b_r: Tensor, A_log_r: Tensor, D_r: Tensor
                               ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                                          Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(dx, dh, dp, then the forward and the reverse direction's parameter gradients in `_direction`'s order):
    the reverse direction first, then the forward one, whose kernels add their dx and dh into the reverse one's."""
    params = (conv_w, conv_b, x_proj_w, dt_proj_w, dt_proj_b, A_log, D)
    params_r = (conv_w_r, conv_b_r, x_proj_w_r, dt_proj_w_r, dt_proj_b_r, A_log_r, D_r)
    dx_r, dcw_r, dcb_r, dh_r, dp_r, *rest_r = _backward(dy, *_direction(params_r, x, h, p, padding_mask, True))
    dx, dcw, dcb, dh, dp, *rest = _backward(dy, *_direction(params, x, h, p, padding_mask, False), dx_into=dx_r,
                                            dh_into=dh_r if h is not None else None)
    return dx, dh, dp + dp_r if p is not None else dp, dcw, dcb, *rest, dcw_r, dcb_r, *rest_r


@ssm_inner_pair_backward_op.register_fake
def _(dy, x, h, p, padding_mask, *params):
    return tuple(_like(t, x) for t in (x, h, p, *params))


def _setup_pair(ctx, inputs, output):
    ctx.save_for_backward(*inputs)
    ctx.present = [t is not None for t in inputs]


def _backward_pair(ctx, dy):
    x, h, p, padding_mask, *params = ctx.saved_tensors
    dx, dh, dp, *grads = ssm_inner_pair_backward_op(dy, x, h, p, padding_mask, *params)
    return tuple(g if given else None for g, given in zip((dx, dh, dp, None, *grads), ctx.present))


ssm_inner_pair_op.register_autograd(_backward_pair, setup_context=_setup_pair)


def _check(x: Tensor, conv_w: Tensor | None, x_proj_w: Tensor, dt_proj_w: Tensor, A_log: Tensor) -> None:
    """One-line errors for what the kernels do not take, before any launch."""
    if x.shape[1] * max(x.shape[2], x_proj_w.shape[0]) >= 2**31:  # x_proj's output rows hold R + 2N >= N
        raise ValueError("ssm_inner_triton indexes one sample with int32: L * max(E, R + 2N) must be < 2**31")
    if conv_w is not None and not 1 <= conv_w.shape[1] <= 8:
        raise ValueError(f"ssm_inner_triton's conv kernel takes 1..8 taps, got {conv_w.shape[1]}")
    if A_log.dim() == 1:
        ssd.check_widths(x.shape[-1] // A_log.shape[0], state_size(x_proj_w, dt_proj_w))


def ssm_inner_triton(x: Tensor, conv_w: Tensor | None, conv_b: Tensor | None, h: Tensor | None, p: Tensor | None,
                     x_proj_w: Tensor, dt_proj_w: Tensor, dt_proj_b: Tensor, A_log: Tensor, D: Tensor,
                     padding_mask: Tensor | None, reverse: bool) -> Tensor:
    """The fused inner path; the contract of `reference.ssm_inner_reference`."""
    _check(x, conv_w, x_proj_w, dt_proj_w, A_log)
    return ssm_inner_op(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse)


def ssm_inner_pair_triton(x: Tensor, h: Tensor | None, p: Tensor | None, padding_mask: Tensor | None,
                          forward: tuple, reverse: tuple) -> Tensor:
    """The fused inner path of a forward and a reverse scan over the same x, h, p, their readouts summed; the
    contract of `reference.ssm_inner_pair_reference`."""
    for params in (forward, reverse):
        conv_w, _, x_proj_w, dt_proj_w, _, A_log, _ = params
        _check(x, conv_w, x_proj_w, dt_proj_w, A_log)
    return ssm_inner_pair_op(x, h, p, padding_mask, *forward, *reverse)
