"""Triton SiLU gate: g = y * SiLU(z) forward, and (g, dy, dz) from dg backward, each one elementwise pass; and the
readout form, y = r + f * h formed in the same pass (InfoMamba's fused readout, Eq. 11-12).

Math: `reference.py` (the oracle), in fp32 whatever the inputs' dtype. The PyTorch backward is about fifteen
elementwise kernels over (B, L, E) tensors, most of them fp32 (casts of y, z and dg, the sigmoid, the products,
casts back), and the forward two (SiLU, the product); each kernel here reads y, z (and dg) once in their own
dtype and writes its results once, in theirs. z may be a view with a row stride (the second half of in_proj's
output): the kernels read every operand through its own row stride, so nothing is copied first.

The readout form's forward reads r, h and z and writes y (kept for the backward, as the plain gate keeps its y)
and g, where PyTorch took a cast of f, a product, an add and the gate; its backward also writes dh = f dy and,
per program, fp32 partial rows of df = sum over tokens of h dy (summed by torch: deterministic, no atomics), in
place of autograd's product backward (two products, a sum, a cast).

All four are `torch.library` custom ops (`infomamba::silu_gate`, `infomamba::silu_gate_backward`,
`infomamba::readout_gate`, `infomamba::readout_gate_backward`) with fake implementations, so `torch.compile` traces
the mixers that use them without a graph break; the autograd wiring is the caller's (`layers/gate.py`).
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from ..dispatch import on_device
from .reference import mean_share

_ELEMENTS_PER_PROGRAM = 4096  # 32 a thread at 4 warps
_READOUT_TILE = 1024  # elements of a readout backward tile: 8 a thread at 4 warps (a 16-byte load of bf16)
_READOUT_TILES = 32  # tiles a readout backward program walks (128 rows at E >= 256), its df partials in a tile


@triton.jit
def _tile(pid_r, pid_e, n_rows, E, BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr):
    """Row indices (int64), column indices and the mask of this program's (BLOCK_R, BLOCK_E) tile."""
    rows = (pid_r * BLOCK_R + tl.arange(0, BLOCK_R)).to(tl.int64)
    cols = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    return rows[:, None], cols[None, :], (rows < n_rows)[:, None] & (cols < E)[None, :]


@triton.jit
def _gate_fwd_kernel(y_ptr, z_ptr, g_ptr, n_rows, E, y_row, z_row, h_ptr, f_ptr, ysum_ptr, h_row,
                     HAS_H: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr):
    """g = y z sigmoid(z) for one tile; g is contiguous, y and z are read through their row strides. With HAS_H the
    readout form: y_ptr holds r, y = r + f h is formed in fp32 and written to ysum (contiguous, r's dtype), and the
    gate reads y as rounded there, as the backward will."""
    rows, cols, mask = _tile(tl.program_id(0), tl.program_id(1), n_rows, E, BLOCK_R, BLOCK_E)
    y = tl.load(y_ptr + rows * y_row + cols, mask=mask, other=0.0).to(tl.float32)
    if HAS_H:
        f = tl.load(f_ptr + cols, mask=cols < E, other=0.0).to(tl.float32)
        y += f * tl.load(h_ptr + rows * h_row + cols, mask=mask, other=0.0).to(tl.float32)
        y = y.to(ysum_ptr.dtype.element_ty)
        tl.store(ysum_ptr + rows * E + cols, y, mask=mask)
        y = y.to(tl.float32)
    z = tl.load(z_ptr + rows * z_row + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(g_ptr + rows * E + cols, (y * z * tl.sigmoid(z)).to(g_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _gate_bwd_kernel(y_ptr, z_ptr, dg_ptr, g_ptr, dy_ptr, dz_ptr, n_rows, E, y_row, z_row, dg_row,
                     h_ptr, f_ptr, dh_ptr, part_ptr, h_row, share_ptr, pad_ptr, L, HAS_H: tl.constexpr,
                     HAS_SHARE: tl.constexpr, HAS_PAD: tl.constexpr,
                     BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr, TILES: tl.constexpr):
    """g = y z s, dy = dg z s, dz = dg y s (1 + z (1 - s)) with s = sigmoid(z), for TILES tiles of rows (outputs
    contiguous). With HAS_H (the readout form, y = r + f h) also dh = f dy in h's dtype and this program's row of
    df partials, the sum over its rows of h dy (fp32), both from dy in fp32: the products are summed into a tile
    across the row loop and reduced over rows once, after it (a reduction a tile cost a barrier each and, with the
    loop unrolled, 238 registers a thread in the sm_90 compile). With HAS_SHARE the dy written is r's gradient: dy
    plus share (batch, E) fp32, the row's sample's, at rows that are real tokens (HAS_PAD: pad (rows,) True at
    padding; rows are a sample's L tokens in order)."""
    columns = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    if HAS_H:
        f = tl.load(f_ptr + columns, mask=columns < E, other=0.0).to(tl.float32)[None, :]
    h_dy = tl.zeros([BLOCK_R, BLOCK_E], dtype=tl.float32)
    for tile in range(TILES):
        rows, cols, mask = _tile(tl.program_id(0) * TILES + tile, tl.program_id(1), n_rows, E, BLOCK_R, BLOCK_E)
        y = tl.load(y_ptr + rows * y_row + cols, mask=mask, other=0.0).to(tl.float32)
        z = tl.load(z_ptr + rows * z_row + cols, mask=mask, other=0.0).to(tl.float32)
        dg = tl.load(dg_ptr + rows * dg_row + cols, mask=mask, other=0.0).to(tl.float32)
        s = tl.sigmoid(z)
        silu = z * s
        dy = dg * silu
        out = rows * E + cols
        tl.store(g_ptr + out, (y * silu).to(g_ptr.dtype.element_ty), mask=mask)
        dr = dy
        if HAS_SHARE:
            real = mask
            if HAS_PAD:
                real = real & (tl.load(pad_ptr + rows, mask=rows < n_rows, other=1) == 0)
            dr += tl.load(share_ptr + (rows // L) * E + cols, mask=real, other=0.0)
        tl.store(dy_ptr + out, dr.to(dy_ptr.dtype.element_ty), mask=mask)
        tl.store(dz_ptr + out, (dg * y * s * (1.0 + z * (1.0 - s))).to(dz_ptr.dtype.element_ty), mask=mask)
        if HAS_H:
            tl.store(dh_ptr + out, (f * dy).to(dh_ptr.dtype.element_ty), mask=mask)
            h_dy += tl.load(h_ptr + rows * h_row + cols, mask=mask, other=0.0).to(tl.float32) * dy
    if HAS_H:
        tl.store(part_ptr + tl.program_id(0).to(tl.int64) * E + columns, tl.sum(h_dy, axis=0), mask=columns < E)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """t as (rows, E) with unit column stride: a view where the layout allows (a chunk of a wider tensor too)."""
    t = t.reshape(-1, t.shape[-1])
    return t if t.stride(-1) == 1 else t.contiguous()


def _grid(n_rows: int, E: int, tiles: int = 1, elements: int = _ELEMENTS_PER_PROGRAM
          ) -> tuple[tuple[int, int], int, int]:
    block_e = min(triton.next_power_of_2(E), 256)
    block_r = max(1, elements // block_e)
    return (triton.cdiv(n_rows, block_r * tiles), triton.cdiv(E, block_e)), block_r, block_e


def _gate_forward(y: torch.Tensor, z: torch.Tensor, h: torch.Tensor | None, f: torch.Tensor | None
                  ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(y = r + f h or None, g) for y (r with h) and z; the launch of both forward ops."""
    g = torch.empty(y.shape, device=y.device, dtype=torch.promote_types(y.dtype, z.dtype))
    ysum = torch.empty_like(y, memory_format=torch.contiguous_format) if h is not None else None
    if g.numel() == 0:
        return ysum, g
    y2, z2 = _rows(y), _rows(z)
    h2 = _rows(h) if h is not None else y2
    grid, block_r, block_e = _grid(*y2.shape)
    with on_device(y):
        _gate_fwd_kernel[grid](y2, z2, g, *y2.shape, y2.stride(0), z2.stride(0), h2, f if f is not None else y2,
                               ysum if ysum is not None else g, h2.stride(0), HAS_H=h is not None, BLOCK_R=block_r,
                               BLOCK_E=block_e, num_warps=4)
    return ysum, g


def _gate_backward(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, g_dtype: torch.dtype, h: torch.Tensor | None,
                   f: torch.Tensor | None, dr_pool: torch.Tensor | None = None,
                   padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """(g, dy, dz), with h and f also (dh, df), and with dr_pool (B, E) dy as r's gradient
    (`readout_gate_backward_reference`); the launch of both backward ops."""
    g = torch.empty(y.shape, device=y.device, dtype=g_dtype)
    dy, dz = torch.empty(y.shape, device=y.device, dtype=y.dtype), torch.empty(y.shape, device=y.device, dtype=z.dtype)
    dh = torch.empty(y.shape, device=y.device, dtype=h.dtype) if h is not None else None
    if g.numel() == 0:
        return (g, dy, dz) if h is None else (g, dy, dz, dh, torch.zeros_like(f))
    tiles, elements = (_READOUT_TILES, _READOUT_TILE) if h is not None else (1, _ELEMENTS_PER_PROGRAM)
    y2, z2, dg2 = _rows(y), _rows(z), _rows(dg)
    h2 = _rows(h) if h is not None else y2
    grid, block_r, block_e = _grid(*y2.shape, tiles, elements)
    part = torch.empty(grid[0], y.shape[-1], device=y.device, dtype=torch.float32) if h is not None else None
    share = mean_share(dr_pool, padding_mask, y.shape[-2]).contiguous() if dr_pool is not None else None
    pad = padding_mask.contiguous() if dr_pool is not None and padding_mask is not None else None
    with on_device(y):
        _gate_bwd_kernel[grid](y2, z2, dg2, g, dy, dz, *y2.shape, y2.stride(0), z2.stride(0), dg2.stride(0), h2,
                               f if f is not None else y2, dh if dh is not None else dy,
                               part if part is not None else dy, h2.stride(0), share if share is not None else dy,
                               pad if pad is not None else dy, y.shape[-2] if y.dim() > 1 else 1,
                               HAS_H=h is not None, HAS_SHARE=share is not None, HAS_PAD=pad is not None,
                               BLOCK_R=block_r, BLOCK_E=block_e, TILES=tiles, num_warps=4)
    if h is None:
        return g, dy, dz
    return g, dy, dz, dh, part.sum(0).to(f.dtype)


@torch.library.custom_op("infomamba::silu_gate", mutates_args=())
def silu_gate_op(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return _gate_forward(y, z, None, None)[1]


@silu_gate_op.register_fake
def _(y, z):
    return y.new_empty(y.shape, dtype=torch.promote_types(y.dtype, z.dtype))


@torch.library.custom_op("infomamba::silu_gate_backward", mutates_args=())
def silu_gate_backward_op(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, g_dtype: torch.dtype
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _gate_backward(y, z, dg, g_dtype, None, None)


@silu_gate_backward_op.register_fake
def _(y, z, dg, g_dtype):
    return y.new_empty(y.shape, dtype=g_dtype), torch.empty_like(y), y.new_empty(y.shape, dtype=z.dtype)


@torch.library.custom_op("infomamba::readout_gate", mutates_args=())
def readout_gate_op(r: torch.Tensor, h: torch.Tensor, f: torch.Tensor, z: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    return _gate_forward(r, z, h, f)


@readout_gate_op.register_fake
def _(r, h, f, z):
    return torch.empty_like(r, memory_format=torch.contiguous_format), r.new_empty(
        r.shape, dtype=torch.promote_types(r.dtype, z.dtype))


@torch.library.custom_op("infomamba::readout_gate_backward", mutates_args=())
def readout_gate_backward_op(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, h: torch.Tensor, f: torch.Tensor,
                             g_dtype: torch.dtype, dr_pool: Optional[torch.Tensor],
                             padding_mask: Optional[torch.Tensor]
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return _gate_backward(y, z, dg, g_dtype, h, f, dr_pool, padding_mask)


@readout_gate_backward_op.register_fake
def _(y, z, dg, h, f, g_dtype, dr_pool, padding_mask):
    return (y.new_empty(y.shape, dtype=g_dtype), torch.empty_like(y), y.new_empty(y.shape, dtype=z.dtype),
            torch.empty_like(h), torch.empty_like(f))


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


def _readout_shapes(r: torch.Tensor, h: torch.Tensor, f: torch.Tensor, *others: torch.Tensor) -> None:
    _same_shapes(r, h, *others)
    if f.shape != (r.shape[-1],):
        raise ValueError(f"readout_gate: f must have shape ({r.shape[-1]},) (r's channels), got {tuple(f.shape)}")


def readout_gate_triton(r: torch.Tensor, h: torch.Tensor, f: torch.Tensor, z: torch.Tensor):
    """(y = r + f h in r's dtype, g = y * SiLU(z)); contract of `readout_gate_reference`."""
    _readout_shapes(r, h, f, z)
    return readout_gate_op(r, h, f, z)


def readout_gate_backward_triton(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, h: torch.Tensor,
                                 f: torch.Tensor, g_dtype: torch.dtype, dr_pool: torch.Tensor | None = None,
                                 padding_mask: torch.Tensor | None = None):
    """(g, dy, dz, dh, df); contract of `readout_gate_backward_reference`."""
    _readout_shapes(y, h, f, z, dg)
    if dr_pool is not None and (y.dim() != 3 or dr_pool.shape != (y.shape[0], y.shape[2])):
        raise ValueError(f"readout_gate_backward: dr_pool must be (B, E) for y (B, L, E) {tuple(y.shape)}, got "
                         f"{tuple(dr_pool.shape)}")
    return readout_gate_backward_op(y, z, dg, h, f, g_dtype, dr_pool, padding_mask)
