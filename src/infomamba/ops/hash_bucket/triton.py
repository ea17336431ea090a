"""Triton kernels of Eq. 8's hash bucketing: the candidate sets C(b) in one launch, and the straight-through Gumbel
bucket sample and the MI-hash term, each one pass forward and one backward over a block of tokens.

Math: `reference.py` (the oracle), in fp32 whatever the inputs' dtype. In PyTorch the sample is about a dozen
launches over (B, L, n_buckets) (log, add, softmax, argmax, a one-hot by scatter, the straight-through sum) and
the term about fifteen (normalising u and the buckets, the cosine matmul, its scale, log-softmax, product, sum,
negation), each with its backward; here each direction of each is one launch. C(b) (no gradient: an argmax of
the parameters) was about a dozen small launches a layer and step (the cosine matmul, its casts, argmax, a
one-hot, the empty-bucket fallback); here one program computes it whole.

Backward, with y = softmax(l + g), b the one-hot value, p = softmax(s), s_j = <u / |u|, e_j> / tau, n = |u|:

    sample:  dl = y (db - <y, db>)                                      (the softmax's gradient: straight-through)
    term:    db_j = -dnll log p_j;   ds_j = dnll (p_j sum(b) - b_j);   dc = ds / tau
             du^ = sum_j dc_j e_j;   du = (du^ - u^ <u^, du^>) / n (du^ / 1e-12 where n <= 1e-12, F.normalize's clamp)
             de_j = sum_t dc_tj u^_t     (per-program partial sums, added up by the caller: deterministic)

One program owns BLOCK_T tokens; a row of n_buckets (a constexpr: a model has one) and of d lanes is whole inside
it. The cosines are n_buckets products and row sums. The backward's du^ = dc E and partial de = dc^T u^ are
`tl.dot`s in exact fp32 ("ieee", not tf32), their blocks padded with zeros to tl.dot's 16 where n_buckets or d is
smaller: summed lane by lane, each bucket's partial de took a reduction across the block's rows, and the backward
ran 3.5x longer (H100, `benchmarks/bench_hash.py`); the cosines as a dot made the forward 3x slower there. The
sample's backward recomputes y from l and the noise, the term's backward recomputes the cosines from u: nothing
but the inputs is kept.

All five launches are `torch.library` custom ops with fake implementations and registered autograd, so
`torch.compile` traces the concept filter through them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..dispatch import on_device

_ELEMENTS_PER_PROGRAM = 2048  # 16 fp32 a thread at 4 warps
_NORM_EPS = tl.constexpr(1e-12)
_DOT_MIN = 16  # tl.dot's smallest block side


def _dot_block(n: int) -> int:
    """A block side for n lanes that tl.dot takes: the next power of two, at least _DOT_MIN."""
    return max(_DOT_MIN, triton.next_power_of_2(n))


def _launch(t: torch.Tensor, width: int, min_rows: int = 1) -> tuple[int, int, int]:
    """(tokens, BLOCK_T, programs): the rows of t's last dimension, BLOCK_T (at least `min_rows`) of them a program
    whose rows are `width` lanes wide."""
    n_rows = t.numel() // max(t.shape[-1], 1)
    block_t = max(min_rows, _ELEMENTS_PER_PROGRAM // triton.next_power_of_2(width))
    return n_rows, block_t, triton.cdiv(n_rows, block_t)


@triton.jit
def _rows(pid, n_rows, BLOCK_T: tl.constexpr):
    rows = (pid * BLOCK_T + tl.arange(0, BLOCK_T)).to(tl.int64)
    return rows, rows < n_rows


@triton.jit
def _members_kernel(centers_ptr, e_ptr, member_ptr, K, D, NB: tl.constexpr, BLOCK_K: tl.constexpr,
                    BLOCK_D: tl.constexpr):
    """member (NB, K) fp32 from centers (K, D) and the unit bucket embeddings (NB, D), in one program."""
    ks = tl.arange(0, BLOCK_K)
    dims = tl.arange(0, BLOCK_D)[None, :]
    centers = tl.load(centers_ptr + ks[:, None] * D + dims, mask=(ks[:, None] < K) & (dims < D),
                      other=0.0).to(tl.float32)
    best = tl.full((BLOCK_K,), float("-inf"), tl.float32)
    nearest = tl.zeros((BLOCK_K,), tl.int32)
    for j in tl.static_range(NB):
        e_j = tl.load(e_ptr + j * D + dims, mask=dims < D, other=0.0).to(tl.float32)
        s_j = tl.sum(centers * e_j, 1)
        nearest = tl.where(s_j > best, j, nearest)  # strict: the first of equal cosines, as torch.argmax
        best = tl.maximum(best, s_j)
    for j in tl.static_range(NB):
        joined = (nearest == j) & (ks < K)
        row = tl.where(tl.sum(joined.to(tl.int32), 0) > 0, joined.to(tl.float32), 1.0)
        tl.store(member_ptr + j * K + ks, row, mask=ks < K)


@triton.jit
def _perturbed_softmax(logits_ptr, noise_ptr, rows, row_ok, NB: tl.constexpr, BLOCK_NB: tl.constexpr):
    """(y, hard, cols, mask): y = softmax(l - log e) over the real buckets, hard its argmax's one-hot."""
    cols = tl.arange(0, BLOCK_NB)[None, :]
    col_ok = cols < NB
    mask = row_ok[:, None] & col_ok
    offs = rows[:, None] * NB + cols
    x = tl.load(logits_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    x = x - tl.log(tl.load(noise_ptr + offs, mask=mask, other=1.0).to(tl.float32))
    x = tl.where(col_ok, x, float("-inf"))
    e = tl.exp(x - tl.max(x, 1)[:, None])
    y = e / tl.sum(e, 1)[:, None]
    hard = (cols == tl.argmax(y, 1)[:, None]).to(tl.float32)
    return y, hard, offs, mask


@triton.jit
def _gumbel_fwd_kernel(logits_ptr, noise_ptr, b_ptr, n_rows, NB: tl.constexpr, BLOCK_T: tl.constexpr,
                       BLOCK_NB: tl.constexpr):
    rows, row_ok = _rows(tl.program_id(0), n_rows, BLOCK_T)
    _, hard, offs, mask = _perturbed_softmax(logits_ptr, noise_ptr, rows, row_ok, NB, BLOCK_NB)
    tl.store(b_ptr + offs, hard, mask=mask)


@triton.jit
def _gumbel_bwd_kernel(logits_ptr, noise_ptr, db_ptr, dlogits_ptr, n_rows, NB: tl.constexpr, BLOCK_T: tl.constexpr,
                       BLOCK_NB: tl.constexpr):
    rows, row_ok = _rows(tl.program_id(0), n_rows, BLOCK_T)
    y, _, offs, mask = _perturbed_softmax(logits_ptr, noise_ptr, rows, row_ok, NB, BLOCK_NB)
    db = tl.load(db_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    dl = y * (db - tl.sum(y * db, 1)[:, None])
    tl.store(dlogits_ptr + offs, dl.to(dlogits_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _cosine_log_softmax(u_ptr, e_ptr, rows, row_ok, D, inv_tau, NB: tl.constexpr, BLOCK_NB: tl.constexpr,
                        BLOCK_D: tl.constexpr):
    """(u^, n, logp, cols, col_ok): u^ = u / max(|u|, eps) (BLOCK_T, BLOCK_D), n = |u|, and
    logp = log softmax(<u^, e_j> / tau) over the real buckets (BLOCK_T, BLOCK_NB; 0 in padded columns)."""
    dims = tl.arange(0, BLOCK_D)[None, :]
    u = tl.load(u_ptr + rows[:, None] * D + dims, mask=row_ok[:, None] & (dims < D), other=0.0).to(tl.float32)
    norm = tl.sqrt(tl.sum(u * u, 1))
    un = u / tl.maximum(norm, _NORM_EPS)[:, None]
    cols = tl.arange(0, BLOCK_NB)[None, :]
    col_ok = cols < NB
    s = tl.zeros((u.shape[0], BLOCK_NB), dtype=tl.float32)
    for j in tl.static_range(NB):
        e_j = tl.load(e_ptr + j * D + dims, mask=dims < D, other=0.0).to(tl.float32)
        s = tl.where(cols == j, tl.sum(un * e_j, 1)[:, None] * inv_tau, s)
    s = tl.where(col_ok, s, float("-inf"))
    shifted = s - tl.max(s, 1)[:, None]
    logp = shifted - tl.log(tl.sum(tl.exp(shifted), 1))[:, None]
    return un, norm, tl.where(col_ok, logp, 0.0), cols, col_ok


@triton.jit
def _nll_fwd_kernel(u_ptr, b_ptr, e_ptr, nll_ptr, n_rows, D, inv_tau, NB: tl.constexpr, BLOCK_T: tl.constexpr,
                    BLOCK_NB: tl.constexpr, BLOCK_D: tl.constexpr):
    rows, row_ok = _rows(tl.program_id(0), n_rows, BLOCK_T)
    _, _, logp, cols, col_ok = _cosine_log_softmax(u_ptr, e_ptr, rows, row_ok, D, inv_tau, NB, BLOCK_NB, BLOCK_D)
    b = tl.load(b_ptr + rows[:, None] * NB + cols, mask=row_ok[:, None] & col_ok, other=0.0).to(tl.float32)
    tl.store(nll_ptr + rows, -tl.sum(b * logp, 1), mask=row_ok)


@triton.jit
def _nll_bwd_kernel(u_ptr, b_ptr, e_ptr, dnll_ptr, du_ptr, db_ptr, de_ptr, n_rows, D, inv_tau, NB: tl.constexpr,
                    BLOCK_T: tl.constexpr, BLOCK_NB: tl.constexpr, BLOCK_D: tl.constexpr):
    """du, db for this program's tokens, and its partial de (NB, D) at de_ptr + program * NB * D."""
    pid = tl.program_id(0)
    rows, row_ok = _rows(pid, n_rows, BLOCK_T)
    un, norm, logp, cols, col_ok = _cosine_log_softmax(u_ptr, e_ptr, rows, row_ok, D, inv_tau, NB, BLOCK_NB,
                                                       BLOCK_D)
    offs = rows[:, None] * NB + cols
    mask = row_ok[:, None] & col_ok
    b = tl.load(b_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    dnll = tl.load(dnll_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)[:, None]
    tl.store(db_ptr + offs, (-dnll * logp).to(db_ptr.dtype.element_ty), mask=mask)
    p = tl.where(col_ok, tl.exp(logp), 0.0)
    dc = dnll * (p * tl.sum(b, 1)[:, None] - b) * inv_tau
    dims = tl.arange(0, BLOCK_D)[None, :]
    buckets = tl.arange(0, BLOCK_NB)[:, None]
    E = tl.load(e_ptr + buckets * D + dims, mask=(buckets < NB) & (dims < D), other=0.0).to(tl.float32)
    tl.store(de_ptr + (pid * NB + buckets) * D + dims, tl.dot(tl.trans(dc), un, input_precision="ieee"),
             mask=(buckets < NB) & (dims < D))
    dun = tl.dot(dc, E, input_precision="ieee")
    n = norm[:, None]
    du = tl.where(n > _NORM_EPS, dun - un * tl.sum(un * dun, 1)[:, None], dun) / tl.maximum(n, _NORM_EPS)
    tl.store(du_ptr + rows[:, None] * D + dims, du.to(du_ptr.dtype.element_ty), mask=row_ok[:, None] & (dims < D))


@torch.library.custom_op("infomamba::bucket_members", mutates_args=())
def bucket_members_op(centers: torch.Tensor, bucket_dirs: torch.Tensor) -> torch.Tensor:
    """member (n_buckets, k) fp32 for contiguous centers (k, d) and bucket_dirs (n_buckets, d)."""
    (k, d), nb = centers.shape, bucket_dirs.shape[0]
    member = torch.empty((nb, k), device=centers.device, dtype=torch.float32)
    if member.numel():
        block_k, block_d = triton.next_power_of_2(k), triton.next_power_of_2(d)
        with on_device(centers):
            _members_kernel[(1,)](centers, bucket_dirs, member, k, d, NB=nb, BLOCK_K=block_k, BLOCK_D=block_d,
                                  num_warps=8 if block_k * block_d > 4096 else 4)
    return member


@bucket_members_op.register_fake
def _(centers, bucket_dirs):
    return centers.new_empty((bucket_dirs.shape[0], centers.shape[0]), dtype=torch.float32)


@torch.library.custom_op("infomamba::gumbel_bucket", mutates_args=())
def gumbel_bucket_op(logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """b (fp32) for contiguous logits and noise of one shape (module docstring)."""
    nb = logits.shape[-1]
    b = torch.empty(logits.shape, device=logits.device, dtype=torch.float32)
    n_rows, block_t, programs = _launch(logits, nb)
    if n_rows:
        with on_device(logits):
            _gumbel_fwd_kernel[(programs,)](logits, noise, b, n_rows, NB=nb, BLOCK_T=block_t,
                                            BLOCK_NB=triton.next_power_of_2(nb), num_warps=4)
    return b


@gumbel_bucket_op.register_fake
def _(logits, noise):
    return logits.new_empty(logits.shape, dtype=torch.float32)


@torch.library.custom_op("infomamba::gumbel_bucket_backward", mutates_args=())
def gumbel_bucket_backward_op(logits: torch.Tensor, noise: torch.Tensor, db: torch.Tensor) -> torch.Tensor:
    nb = logits.shape[-1]
    dlogits = torch.empty_like(logits)
    n_rows, block_t, programs = _launch(logits, nb)
    if n_rows:
        with on_device(logits):
            _gumbel_bwd_kernel[(programs,)](logits, noise, db.contiguous(), dlogits, n_rows, NB=nb, BLOCK_T=block_t,
                                            BLOCK_NB=triton.next_power_of_2(nb), num_warps=4)
    return dlogits


@gumbel_bucket_backward_op.register_fake
def _(logits, noise, db):
    return torch.empty_like(logits)


def _gumbel_setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _gumbel_backward(ctx, db):
    logits, noise = ctx.saved_tensors
    return gumbel_bucket_backward_op(logits, noise, db), None


gumbel_bucket_op.register_autograd(_gumbel_backward, setup_context=_gumbel_setup_context)


@torch.library.custom_op("infomamba::bucket_nll", mutates_args=())
def bucket_nll_op(u: torch.Tensor, b: torch.Tensor, bucket_dirs: torch.Tensor, tau_hash: float) -> torch.Tensor:
    """nll (fp32, u's leading shape) for contiguous u, b and bucket_dirs (module docstring)."""
    nll = torch.empty(u.shape[:-1], device=u.device, dtype=torch.float32)
    n_rows, block_t, programs = _launch(u, max(u.shape[-1], b.shape[-1]))
    if n_rows:
        nb, d = bucket_dirs.shape
        with on_device(u):
            _nll_fwd_kernel[(programs,)](u, b, bucket_dirs, nll, n_rows, d, 1.0 / tau_hash, NB=nb, BLOCK_T=block_t,
                                         BLOCK_NB=triton.next_power_of_2(nb), BLOCK_D=triton.next_power_of_2(d),
                                         num_warps=4)
    return nll


@bucket_nll_op.register_fake
def _(u, b, bucket_dirs, tau_hash):
    return u.new_empty(u.shape[:-1], dtype=torch.float32)


@torch.library.custom_op("infomamba::bucket_nll_backward", mutates_args=())
def bucket_nll_backward_op(u: torch.Tensor, b: torch.Tensor, bucket_dirs: torch.Tensor, tau_hash: float,
                           dnll: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(du in u's dtype, db in b's dtype, de (n_buckets, d) fp32)."""
    du, db = torch.empty_like(u), torch.empty_like(b)
    n_rows, block_t, programs = _launch(u, max(u.shape[-1], b.shape[-1]), _DOT_MIN)
    nb, d = bucket_dirs.shape
    partial = torch.empty((programs, nb, d), device=u.device, dtype=torch.float32)
    if n_rows:
        with on_device(u):
            _nll_bwd_kernel[(programs,)](u, b, bucket_dirs, dnll.contiguous(), du, db, partial, n_rows, d,
                                         1.0 / tau_hash, NB=nb, BLOCK_T=block_t, BLOCK_NB=_dot_block(nb),
                                         BLOCK_D=_dot_block(d), num_warps=4)
    return du, db, partial.sum(0)


@bucket_nll_backward_op.register_fake
def _(u, b, bucket_dirs, tau_hash, dnll):
    return torch.empty_like(u), torch.empty_like(b), bucket_dirs.new_empty(bucket_dirs.shape, dtype=torch.float32)


def _nll_setup_context(ctx, inputs, output):
    u, b, bucket_dirs, tau_hash = inputs
    ctx.save_for_backward(u, b, bucket_dirs)
    ctx.tau_hash = tau_hash


def _nll_backward(ctx, dnll):
    u, b, bucket_dirs = ctx.saved_tensors
    du, db, de = bucket_nll_backward_op(u, b, bucket_dirs, ctx.tau_hash, dnll)
    return du, db, de.to(bucket_dirs.dtype), None


bucket_nll_op.register_autograd(_nll_backward, setup_context=_nll_setup_context)


def bucket_members_triton(centers: torch.Tensor, bucket_dirs: torch.Tensor) -> torch.Tensor:
    """Contract of `bucket_members_reference`: centers (k, d), bucket_dirs (n_buckets, d); no gradient."""
    if centers.dim() != 2 or bucket_dirs.dim() != 2 or centers.shape[1] != bucket_dirs.shape[1]:
        raise ValueError(f"bucket_members: centers (k, d) and bucket_dirs (n_buckets, d) must agree, got "
                         f"{tuple(centers.shape)}, {tuple(bucket_dirs.shape)}")
    return bucket_members_op(centers.detach().contiguous(), bucket_dirs.detach().contiguous())


def gumbel_bucket_triton(logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Contract of `gumbel_bucket_reference`: logits (..., n_buckets) any float dtype, noise of its shape."""
    if noise.shape != logits.shape:
        raise ValueError(f"gumbel_bucket: noise must have the logits' shape {tuple(logits.shape)}, "
                         f"got {tuple(noise.shape)}")
    return gumbel_bucket_op(logits.contiguous(), noise.contiguous())


def bucket_nll_triton(u: torch.Tensor, b: torch.Tensor, bucket_dirs: torch.Tensor, tau_hash: float) -> torch.Tensor:
    """Contract of `bucket_nll_reference`: u (..., d), b (..., n_buckets), bucket_dirs (n_buckets, d)."""
    if b.shape[:-1] != u.shape[:-1] or bucket_dirs.shape != (b.shape[-1], u.shape[-1]):
        raise ValueError(f"bucket_nll: u (..., d), b (..., n_buckets) and bucket_dirs (n_buckets, d) must agree, got "
                         f"{tuple(u.shape)}, {tuple(b.shape)}, {tuple(bucket_dirs.shape)}")
    return bucket_nll_op(u.contiguous(), b.contiguous(), bucket_dirs.contiguous(), float(tau_hash))
