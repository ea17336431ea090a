"""Selective scan: the exact PyTorch reference (the CPU path and the oracle of `triton.py`).

Per-channel diagonal selective scan (Mamba-1 form; InfoMamba Eq. 11 with the IMF injection already
folded into the input, u_t = x_t + P h_t):

    s_t[d, n] = exp(dt_t[d] * A[d, n]) * s_{t-1}[d, n] + dt_t[d] * B_t[n] * u_t[d]
    y_t[d]    = sum_n C_t[n] * s_t[d, n] + D[d] * u_t[d]

State and accumulation are fp32 whatever the input dtype. Padding: a position with dt = 0 and u = 0
leaves the state unchanged (exp(0) = 1, no input), so callers zero both at padded positions and the
scan runs over each sample's real tokens only, in either direction and wherever the padding sits.
"""
from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def _sequential_scan(a: torch.Tensor, b: torch.Tensor, initial: torch.Tensor, reverse: bool = False,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """Inclusive scan of s_t = a_t * s_{t-1} + b_t over dim 1 from s_{-1} = initial (with `reverse`,
    s_t = a_t * s_{t+1} + b_t from the last position), no autograd: one fused multiply-add over the
    (batch, d, n) slice a time step, written in place into `out` (new if None). O(L) work and no copies: on a CPU
    faster than a log-depth doubling scan, whose log2(L) passes each copy the whole chunk."""
    out = torch.empty_like(b) if out is None else out
    state = initial
    for t in reversed(range(b.shape[1])) if reverse else range(b.shape[1]):
        state = torch.addcmul(b[:, t], a[:, t], state, out=out[:, t])
    return out


@torch.library.custom_op("infomamba::linear_scan", mutates_args=())
def linear_scan(a: torch.Tensor, b: torch.Tensor, s0: torch.Tensor) -> torch.Tensor:
    """States of s_t = a_t s_{t-1} + b_t over dim 1 from s0 (`_sequential_scan`), with the analytic backward (a
    reverse scan, `linear_scan_backward`). An op pair with fake implementations, so that torch.compile keeps the
    loop of in-place steps whole: traced, its writes into a slice of `out` break the graph at every step, and a
    break inside InfoMamba's `with` block made dynamo run the whole mixer eagerly."""
    return _sequential_scan(a, b, s0)


@linear_scan.register_fake
def _(a, b, s0):
    return torch.empty_like(b)


@torch.library.custom_op("infomamba::linear_scan_backward", mutates_args=())
def linear_scan_backward(grad: torch.Tensor, a: torch.Tensor, states: torch.Tensor, s0: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(da, db, ds0) of `linear_scan`: g_t = dL/ds_t + a_{t+1} g_{t+1};  dL/db_t = g_t;  dL/da_t = g_t s_{t-1};
    dL/ds0 = a_0 g_0."""
    g = torch.empty_like(grad)
    g[:, -1] = grad[:, -1]
    _sequential_scan(a[:, 1:], grad[:, :-1], g[:, -1], reverse=True, out=g[:, :-1])
    da = torch.empty_like(a)
    torch.mul(g[:, 1:], states[:, :-1], out=da[:, 1:])
    torch.mul(g[:, 0], s0, out=da[:, 0])
    return da, g, a[:, 0] * g[:, 0]


@linear_scan_backward.register_fake
def _(grad, a, states, s0):
    return torch.empty_like(a), torch.empty_like(grad), torch.empty_like(s0)


def _save_for_scan_backward(ctx, inputs, output):
    a, _, s0 = inputs
    ctx.save_for_backward(a, output, s0)


def _scan_backward(ctx, grad):
    return linear_scan_backward(grad, *ctx.saved_tensors)


linear_scan.register_autograd(_scan_backward, setup_context=_save_for_scan_backward)


def _fp32_in_scan_order(u, delta, A, B, C, reverse: bool):
    """fp32 copies, time-flipped for a reverse scan."""
    if reverse:
        u, delta, B, C = (t.flip(1) for t in (u, delta, B, C))
    return tuple(t.float() for t in (u, delta, A, B, C))


def _finish(y, uf, D, reverse: bool, dtype):
    """C s in scan order -> y = C s + D u in time order and the input dtype."""
    if D is not None:
        y = y + uf * D.float()
    return (y.flip(1) if reverse else y).to(dtype)


def _chunk(u, dt, A, B, C, state):
    """(C s_t for the chunk's positions, the last state) from the state before the chunk; all fp32, scan order.
    The last state is a copy: a view would keep the chunk's states alive as the next chunk's saved input."""
    dt = dt[..., None]
    states = linear_scan(torch.exp(dt * A), dt * B[:, :, None, :] * u[..., None], state)
    return torch.einsum("btdn,btn->btd", states, C), states[:, -1].clone()


def selective_scan_reference(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                             C: torch.Tensor, D: torch.Tensor | None = None, reverse: bool = False,
                             chunk: int = 64) -> torch.Tensor:
    """Exact chunked scan in PyTorch: the CPU path and the oracle of every kernel.

    Each chunk runs under activation checkpointing (`torch.utils.checkpoint`, non-reentrant), the CPU
    counterpart of the Triton backward's recompute-by-chunk: training keeps the fp32 inputs and one
    (batch, d, n) state per chunk instead of three (batch, L, d, n) fp32 tensors (the decays, the products
    dt B of the inputs, the states), and the backward rebuilds one chunk's at a time. The
    recomputation repeats the same CPU ops, so values and gradients are those of the plain graph.

    Args:
        u, delta: (batch, L, d) input and positive step size (already softplus-ed).
        A: (d, n) state matrix diagonal (negative for a stable scan).
        B, C: (batch, L, n) input and output maps.
        D: (d,) skip connection or None.
        reverse: scan from the last position to the first.
        chunk: positions per chunk; memory is O(batch * chunk * d * n), the work O(L).
    Returns:
        y: (batch, L, d) in u's dtype.
    """
    dtype = u.dtype
    uf, df, Af, Bf, Cf = _fp32_in_scan_order(u, delta, A, B, C, reverse)
    batch, length, d = uf.shape
    state = uf.new_zeros(batch, d, Af.shape[1])
    outs = []
    for start in range(0, length, chunk):
        sl = slice(start, start + chunk)
        y, state = checkpoint(_chunk, uf[:, sl], df[:, sl], Af, Bf[:, sl], Cf[:, sl], state, use_reentrant=False,
                              preserve_rng_state=False)  # the chunk draws no random numbers
        outs.append(y)
    return _finish(torch.cat(outs, dim=1), uf, D, reverse, dtype)


def selective_scan_sequential(u, delta, A, B, C, D=None, reverse=False):
    """The definition, one token at a time (for tests and benchmarks only)."""
    dtype = u.dtype
    uf, df, Af, Bf, Cf = _fp32_in_scan_order(u, delta, A, B, C, reverse)
    state = uf.new_zeros(uf.shape[0], uf.shape[2], Af.shape[1])
    ys = []
    for t in range(uf.shape[1]):
        dt = df[:, t, :, None]
        state = torch.exp(dt * Af) * state + dt * Bf[:, t, None, :] * uf[:, t, :, None]
        ys.append(torch.einsum("bdn,bn->bd", state, Cf[:, t]))
    return _finish(torch.stack(ys, dim=1), uf, D, reverse, dtype)
