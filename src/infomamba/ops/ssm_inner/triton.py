"""The selective-SSM inner path as one differentiable op that saves only its inputs (mamba-ssm's
`mamba_inner_fn` pattern, DESIGN.md "Speed and memory of the SSM path").

Forward: one conv kernel reads x in place (a view of in_proj's output, through its strides), masks
padding on load and forms u = SiLU(conv(x~)) + P h, 0 at padding (InfoMamba Eq. 11's injection) ->
x_proj -> dt_proj + bias -> softplus -> the Triton scan, which writes r only (softplus and the padding
mask of dt run inside the scan kernels, which read dt before softplus in the activation dtype, as
mamba-ssm's `delta_softplus`, and B and C as views of x_proj's output, through their row stride).
Without a conv, u = SiLU(x~) + P h stays in PyTorch.
Nothing of the path is kept: the backward is handed the op's inputs (x and h in the activation dtype,
the small parameters) and recomputes the conv output, the projections and dt (two skinny matmuls and
elementwise work, no scan), then runs the scan's backward kernel (which recomputes its states by chunk
itself) and the chain rule by hand:

    ddt_pre = ddt sigma(dt_pre)          (softplus' = sigma; 0 at padding; written by the scan's backward)
    db_dt = sum ddt_pre;  dW_dt = ddt_pre^T dt~;  d dt~ = ddt_pre W_dt
    dW_x = [d dt~, dB, dC]^T u;  du = du_scan + [d dt~, dB, dC] W_x     (then 0 at padding)
    dh = p du;  dp = sum h du;  dx, dconv_w, dconv_b = conv backward kernel(x, du)  (x~ and dx masked in it)
    dA_log = dA * A                      (A = -exp(A_log))

Per direction and layer, training therefore keeps no (B, L, E) tensor beyond x and h, which the
mixer holds anyway (P h is formed inside, so even the injected product is not kept), against about
eight (half of them fp32) in the unfused path.

The op is a `torch.library.custom_op` pair (`infomamba::ssm_inner`, `infomamba::ssm_inner_backward`) with
fake implementations and registered autograd, so `torch.compile` keeps the whole mixer in one graph and
fuses the glue around it. Matmuls run in x's dtype (bf16 under mixed precision); weight gradients are
returned in the parameters' dtype. Absent optional inputs give empty gradients inside the op
(a custom op returns tensors only), mapped back to None for autograd.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..causal_conv.triton import conv_backward, conv_forward
from ..selective_scan import triton as scan
from .reference import keep_mask, masked, projections, scan_input, state_matrix


def _no_autocast(t: Tensor):
    return torch.autocast(t.device.type, enabled=False)


def _none(x: Tensor) -> Tensor:
    """The gradient of an absent optional input (a fresh empty tensor: a custom op's outputs never alias)."""
    return x.new_empty(0)


def _recompute(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, padding_mask, reverse):
    """(x~ or None, u, dt~, B, C, dt before softplus): what the scan kernels read (they apply softplus and the
    padding mask to dt; B and C are views of x_proj's output, read through their row stride). With a conv, one
    kernel forms u from x in place (masking on load, P h and the mask fused) and x~ is not materialised (None);
    without one, u = SiLU(x~) + P h in PyTorch and x~ is returned for the backward's SiLU'."""
    if conv_w is None:
        xm, u = scan_input(x, None, None, h, p, keep_mask(padding_mask, x), reverse)
    else:
        xm = None
        u = conv_forward(x, conv_w.contiguous(), conv_b.contiguous() if conv_b is not None else None, reverse,
                         h=h.contiguous() if h is not None else None, p=p.contiguous() if p is not None else None,
                         padding_mask=_pad(padding_mask))
    dt_low, B, C, dt_pre = projections(u, x_proj_w, dt_proj_w, dt_proj_b, A_log.shape[1])
    return xm, u, dt_low, B, C, dt_pre.contiguous()


def _pad(padding_mask: Tensor | None) -> Tensor | None:
    return padding_mask.contiguous() if padding_mask is not None else None


@torch.library.custom_op("infomamba::ssm_inner", mutates_args=())
def ssm_inner_op(x: Tensor, conv_w: Optional[Tensor], conv_b: Optional[Tensor], h: Optional[Tensor],
                 p: Optional[Tensor], x_proj_w: Tensor, dt_proj_w: Tensor, dt_proj_b: Tensor, A_log: Tensor, D: Tensor,
                 padding_mask: Optional[Tensor], reverse: bool) -> Tensor:
    with torch.no_grad(), _no_autocast(x), scan._on_device(x):
        _, u, _, B, C, dt_pre = _recompute(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log,
                                           padding_mask, reverse)
        At = state_matrix(A_log).t().contiguous()
        return scan._forward(u, dt_pre, At, B, C, D.contiguous(), reverse, dt_softplus=True,
                             padding_mask=_pad(padding_mask))


@ssm_inner_op.register_fake
def _(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse):
    return torch.empty_like(x)


@torch.library.custom_op("infomamba::ssm_inner_backward", mutates_args=())
def ssm_inner_backward_op(dy: Tensor, x: Tensor, conv_w: Optional[Tensor], conv_b: Optional[Tensor],
                          h: Optional[Tensor], p: Optional[Tensor], x_proj_w: Tensor, dt_proj_w: Tensor,
                          dt_proj_b: Tensor, A_log: Tensor, D: Tensor, padding_mask: Optional[Tensor], reverse: bool
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    with torch.no_grad(), _no_autocast(x), scan._on_device(x):
        xm, u, dt_low, B, C, dt_pre = _recompute(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log,
                                                 padding_mask, reverse)
        keep = keep_mask(padding_mask, x)
        A = state_matrix(A_log)
        du_scan, g, dA, dB, dC, dD = scan._backward(u, dt_pre, A.t().contiguous(), B, C, D.contiguous(),
                                                    dy.contiguous(), reverse, dt_softplus=True,
                                                    padding_mask=_pad(padding_mask))
        # Each (B, L, E) tensor is released right after its last use: the next ones are allocated while
        # this backward still holds what the mixer saved, at the step's peak.
        del dt_pre, B, C
        d_dt_b = g.sum((0, 1), dtype=torch.float32)
        d_dt_w = g.flatten(0, 1).t() @ dt_low.flatten(0, 1)
        d_xdbl = torch.cat([g @ dt_proj_w.to(u.dtype), dB.to(u.dtype), dC.to(u.dtype)], dim=-1)
        del g
        d_x_w = d_xdbl.flatten(0, 1).t() @ u.flatten(0, 1)
        du = masked(du_scan + d_xdbl @ x_proj_w.to(u.dtype), keep)
        del u, du_scan, d_xdbl
        if conv_w is None:
            s = torch.sigmoid(xm.float())
            dx = masked((du.float() * s * (1 + xm.float() * (1 - s))).to(x.dtype), keep)
            d_conv_w, d_conv_b = _none(x), _none(x)
        else:
            dx, d_conv_w, d_conv_b = conv_backward(x, conv_w.contiguous(), conv_b, du, reverse,
                                                   padding_mask=_pad(padding_mask))
            d_conv_w = d_conv_w.to(conv_w.dtype)
            d_conv_b = d_conv_b.to(conv_b.dtype) if conv_b is not None else _none(x)
        if h is None:
            dh, dp = _none(x), _none(x)
        else:
            dh = (du if p is None else du * p.to(du.dtype)).to(h.dtype)
            # the product in the activation dtype, summed in fp32: no fp32 (B, L, E) copies of du and h
            dp = (du * h.to(du.dtype)).sum((0, 1), dtype=torch.float32).to(p.dtype) if p is not None else _none(x)
        return (dx, d_conv_w, d_conv_b, dh, dp,
                d_x_w.to(x_proj_w.dtype), d_dt_w.to(dt_proj_w.dtype), d_dt_b.to(dt_proj_b.dtype),
                (dA * A).to(A_log.dtype), dD.to(D.dtype))


@ssm_inner_backward_op.register_fake
def _(dy, x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse):
    def like(t):
        return torch.empty_like(t) if t is not None else _none(x)
    return (like(x), like(conv_w), like(conv_b), like(h), like(p), like(x_proj_w), like(dt_proj_w), like(dt_proj_b),
            like(A_log), like(D))


def _setup_context(ctx, inputs, output):
    *tensors, reverse = inputs
    ctx.save_for_backward(*tensors)
    ctx.present = [t is not None for t in tensors]
    ctx.reverse = reverse


def _backward(ctx, dy):
    grads = ssm_inner_backward_op(dy, *ctx.saved_tensors, ctx.reverse)
    present = ctx.present
    # inputs: x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse
    return (*(g if given else None for g, given in zip(grads, present[:10])), None, None)


ssm_inner_op.register_autograd(_backward, setup_context=_setup_context)


def ssm_inner_triton(x: Tensor, conv_w: Tensor | None, conv_b: Tensor | None, h: Tensor | None, p: Tensor | None,
                     x_proj_w: Tensor, dt_proj_w: Tensor, dt_proj_b: Tensor, A_log: Tensor, D: Tensor,
                     padding_mask: Tensor | None, reverse: bool) -> Tensor:
    """The fused inner path; the contract of `reference.ssm_inner_reference`."""
    if x.shape[1] * max(x.shape[2], x_proj_w.shape[0]) >= 2**31:  # x_proj's output rows hold R + 2N >= N
        raise ValueError("ssm_inner_triton indexes one sample with int32: L * max(E, R + 2N) must be < 2**31")
    if conv_w is not None and not 1 <= conv_w.shape[1] <= 8:
        raise ValueError(f"ssm_inner_triton's conv kernel takes 1..8 taps, got {conv_w.shape[1]}")
    return ssm_inner_op(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse)
