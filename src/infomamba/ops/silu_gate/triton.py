"""Triton SiLU gate: g = y * SiLU(z) forward, and (g, dy, dz) from dg backward, each one elementwise pass.

Math: `reference.py` (the oracle), in fp32 whatever the inputs' dtype. The PyTorch backward is about fifteen
elementwise kernels over (B, L, E) tensors, most of them fp32 (casts of y, z and dg, the sigmoid, the products,
casts back), and the forward two (SiLU, the product); each kernel here reads y, z (and dg) once in their own
dtype and writes its results once, in theirs. z may be a view with a row stride (the second half of in_proj's
output): the kernels read every operand through its own row stride, so nothing is copied first.

Both directions are `torch.library` custom ops (`infomamba::silu_gate`, `infomamba::silu_gate_backward`) with
fake implementations, so `torch.compile` traces the mixers that use them without a graph break; the autograd
wiring is the caller's (`layers/gate.py`).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..dispatch import on_device

_ELEMENTS_PER_PROGRAM = 4096  # 32 a thread at 4 warps


@triton.jit
def _tile(pid_r, pid_e, n_rows, E, BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr):
    """Row indices (int64), column indices and the mask of this program's (BLOCK_R, BLOCK_E) tile."""
    rows = (pid_r * BLOCK_R + tl.arange(0, BLOCK_R)).to(tl.int64)
    cols = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    return rows[:, None], cols[None, :], (rows < n_rows)[:, None] & (cols < E)[None, :]


@triton.jit
def _gate_fwd_kernel(y_ptr, z_ptr, g_ptr, n_rows, E, y_row, z_row,
                     BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr):
    """g = y z sigmoid(z) for one tile; g is contiguous, y and z are read through their row strides."""
    rows, cols, mask = _tile(tl.program_id(0), tl.program_id(1), n_rows, E, BLOCK_R, BLOCK_E)
    y = tl.load(y_ptr + rows * y_row + cols, mask=mask, other=0.0).to(tl.float32)
    z = tl.load(z_ptr + rows * z_row + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(g_ptr + rows * E + cols, (y * z * tl.sigmoid(z)).to(g_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _gate_bwd_kernel(y_ptr, z_ptr, dg_ptr, g_ptr, dy_ptr, dz_ptr, n_rows, E, y_row, z_row, dg_row,
                     BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr):
    """g = y z s, dy = dg z s, dz = dg y s (1 + z (1 - s)) with s = sigmoid(z), for one tile (outputs contiguous)."""
    rows, cols, mask = _tile(tl.program_id(0), tl.program_id(1), n_rows, E, BLOCK_R, BLOCK_E)
    y = tl.load(y_ptr + rows * y_row + cols, mask=mask, other=0.0).to(tl.float32)
    z = tl.load(z_ptr + rows * z_row + cols, mask=mask, other=0.0).to(tl.float32)
    dg = tl.load(dg_ptr + rows * dg_row + cols, mask=mask, other=0.0).to(tl.float32)
    s = tl.sigmoid(z)
    silu = z * s
    out = rows * E + cols
    tl.store(g_ptr + out, (y * silu).to(g_ptr.dtype.element_ty), mask=mask)
    tl.store(dy_ptr + out, (dg * silu).to(dy_ptr.dtype.element_ty), mask=mask)
    tl.store(dz_ptr + out, (dg * y * s * (1.0 + z * (1.0 - s))).to(dz_ptr.dtype.element_ty), mask=mask)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """t as (rows, E) with unit column stride: a view where the layout allows (a chunk of a wider tensor too)."""
    t = t.reshape(-1, t.shape[-1])
    return t if t.stride(-1) == 1 else t.contiguous()


def _grid(n_rows: int, E: int) -> tuple[tuple[int, int], int, int]:
    block_e = min(triton.next_power_of_2(E), 256)
    block_r = max(1, _ELEMENTS_PER_PROGRAM // block_e)
    return (triton.cdiv(n_rows, block_r), triton.cdiv(E, block_e)), block_r, block_e


@torch.library.custom_op("infomamba::silu_gate", mutates_args=())
def silu_gate_op(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    g = torch.empty(y.shape, device=y.device, dtype=torch.promote_types(y.dtype, z.dtype))
    if g.numel() == 0:
        return g
    y2, z2 = _rows(y), _rows(z)
    grid, block_r, block_e = _grid(*y2.shape)
    with on_device(y):
        _gate_fwd_kernel[grid](y2, z2, g, *y2.shape, y2.stride(0), z2.stride(0), BLOCK_R=block_r, BLOCK_E=block_e,
                               num_warps=4)
    return g


@silu_gate_op.register_fake
def _(y, z):
    return y.new_empty(y.shape, dtype=torch.promote_types(y.dtype, z.dtype))


@torch.library.custom_op("infomamba::silu_gate_backward", mutates_args=())
def silu_gate_backward_op(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, g_dtype: torch.dtype
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.empty(y.shape, device=y.device, dtype=g_dtype)
    dy, dz = torch.empty(y.shape, device=y.device, dtype=y.dtype), torch.empty(y.shape, device=y.device, dtype=z.dtype)
    if g.numel() == 0:
        return g, dy, dz
    y2, z2, dg2 = _rows(y), _rows(z), _rows(dg)
    grid, block_r, block_e = _grid(*y2.shape)
    with on_device(y):
        _gate_bwd_kernel[grid](y2, z2, dg2, g, dy, dz, *y2.shape, y2.stride(0), z2.stride(0), dg2.stride(0),
                               BLOCK_R=block_r, BLOCK_E=block_e, num_warps=4)
    return g, dy, dz


@silu_gate_backward_op.register_fake
def _(y, z, dg, g_dtype):
    return y.new_empty(y.shape, dtype=g_dtype), torch.empty_like(y), y.new_empty(y.shape, dtype=z.dtype)


def _same_shapes(*tensors: torch.Tensor) -> None:
    if any(t.shape != tensors[0].shape for t in tensors[1:]):  # compared, not hashed: hashing pins symbolic sizes
        raise ValueError(f"silu_gate: y, z (and dg) must have one shape, got {[tuple(t.shape) for t in tensors]}")


def silu_gate_triton(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """g = y * SiLU(z) in the promoted dtype of y and z (same shape, any row strides); contract of
    `silu_gate_reference`."""
    _same_shapes(y, z)
    return silu_gate_op(y, z)


def silu_gate_backward_triton(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, g_dtype: torch.dtype):
    """(g in g_dtype, dy in y's dtype, dz in z's dtype); contract of `silu_gate_backward_reference`."""
    _same_shapes(y, z, dg)
    return silu_gate_backward_op(y, z, dg, g_dtype)
