"""ε_exp: how well an m-term exponential mixture fits a causal attention kernel (paper §3.2, H1).

The paper (§3.2, "From boundary theory to a measurable diagnostic") defines ε_exp as "the normalized
residual of least-squares fitting each attention kernel w_t(ℓ) by an m-term exponential mixture,
averaged over t". Here, for one kernel w = w_t(0..K-1) (query t's weights on keys t - ℓ):

    ε_t(m) = min_{λ, β} ||w - ŵ||² / ||w||²,   ŵ(ℓ) = Σ_{i=1..m} β_i λ_i^ℓ,   |λ_i| <= 1

and ε_exp(m) is the mean of ε_t(m) over the queries t (and the samples) of one head.

Readings where the paper leaves a gap:
- Norm. Eq. 3 writes ε_t as an unnormalised L1 sum over ℓ = 0..K; the §3.2 text says "normalized
  residual of least-squares fitting". We follow the text: squared L2 residual over squared L2 norm,
  per t, before averaging. This makes ε_t scale-invariant (the horizon's share of a softmax row varies
  with t, and H3 compares "after matching the induced scaling"), and puts it in [0, 1]: 0 is a perfect
  fit, 1 is no better than ŵ = 0 (β is fitted by least squares, so β = 0 is always available).
  The residual is not centred: a flat kernel is one exponential (λ = 1), so ε measures what the
  mixture misses of the whole kernel, its mean level included (a near-uniform attention row has a small
  ε even where its small wiggles are not fitted; the plotted example kernel shows them).
  K counts the lags ℓ = 0..K-1 (Eq. 3's sum runs to K, K + 1 terms). A kernel with ||w|| = 0 has no
  defined ε and is left out (and counted).
- Bases. Eq. 3 minimises over β only, with the poles λ_i fixed by the SSM; ε_exp fits the mixture, so
  the poles are fitted too. They are restricted to the closed unit disk (H2, Eq. 4: a stable diagonal
  transition, max |λ_i| <= r < 1; r = 1 is the limit over a finite horizon) and may be complex: Eq. 2's
  Λ is any diagonal matrix. A complex pole comes with its conjugate, so the fit is real, and a pair
  counts as two of the m terms (two state dimensions). The project's Mamba-1 SSMs have real poles
  exp(dt A) in (0, 1), a subset: their best fit is never better than this one.

Method: matrix pencil (Hua & Sarkar 1990), then least squares for β.
1. Hankel matrix Y[i, j] = w(i + j) of shape (K - P, P + 1), pencil parameter P = K // 2 (their advice:
   K/3 <= P <= K/2); the top-m right singular vectors V (P + 1, m) span the signal subspace (computed as
   the top eigenvectors of Y^T Y).
2. Poles: eigenvalues of pinv(V[:-1]) V[1:] (m of them; conjugate-closed, since the matrix is real).
   A pole outside the unit disk is moved radially onto it (λ / |λ|).
3. β: least squares on the Vandermonde matrix Z[ℓ, i] = λ_i^ℓ (pseudo-inverse, so repeated or
   vanishing poles are harmless); ŵ = Re(Z β).
4. ε_t(m) is the smallest residual over the orders m' <= m (an m'-term mixture is an m-term one with
   zero weights), so ε_exp never grows with m.

Why this method: it gives exactly m terms with free-sign weights (Eq. 3's β ∈ R^m), recovers an exact
sum of m <= P distinct exponentials to rounding error wherever its poles lie, needs only one eigendecomposition per
kernel (batched over thousands of kernels in NumPy, float64), and is deterministic. The alternatives
considered: a fixed log-spaced grid of λ ∈ (0, 1) with non-negative least squares (scipy.optimize.nnls)
neither bounds the number of terms (picking the best m of G grid poles is combinatorial) nor allows
signed β, hits off-grid poles only approximately, and scipy is not a dependency of this package;
Prony's method is the pencil's noise-sensitive ancestor. Caveat: the pencil's poles are not the global
least-squares optimum over λ (a variable-projection refinement could only lower ε), so for a kernel
that is not an exact mixture ε_t(m) is an upper bound of the best m-term residual. The gap is widest for
an isolated spike far from ℓ = 0: its Hankel matrix has tied singular values, the pencil finds no mode and
ε_t = 1, where m poles at roots of unity (a DFT basis) would leave 1 - m/K, so the optimum is no more. Both say
"outside the regime"; the tests check the exact cases (≈ 0) and the far-spike case (large).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: the orders of the paper's diagnostics table (issue 20: ε_exp by layer and m ∈ {1, 2, 4, 8}).
DEFAULT_ORDERS = (1, 2, 4, 8)


def pencil_size(K: int) -> int:
    """The pencil parameter P for a horizon of K lags (Hua & Sarkar's K/3 <= P <= K/2)."""
    return K // 2


def max_order(K: int) -> int:
    """The largest order the pencil can fit on K lags (m <= P and m <= K - P)."""
    P = pencil_size(K)
    return min(P, K - P)


def vandermonde(poles: np.ndarray, K: int) -> np.ndarray:
    """(..., m) poles -> (..., K, m) with Z[ℓ, i] = λ_i^ℓ (λ^0 = 1, also for λ = 0)."""
    steps = np.broadcast_to(poles[..., None, :], (*poles.shape[:-1], K - 1, poles.shape[-1]))
    ones = np.ones((*poles.shape[:-1], 1, poles.shape[-1]), dtype=poles.dtype)
    return np.concatenate([ones, np.cumprod(steps, axis=-2)], axis=-2)


def _signal_subspace(kernels: np.ndarray) -> np.ndarray:
    """(n, K) kernels -> (n, P + 1, P + 1) right singular vectors of their Hankel matrices Y, strongest first:
    the eigenvectors of the Gram matrix Y^T Y (float64), which batched `eigh` finds about twice as fast as an SVD
    of Y at K = 128. Squaring costs precision only for modes below ~1e-8 of the strongest, far under any ε
    reported."""
    n, K = kernels.shape
    P = pencil_size(K)
    rows = np.arange(K - P)[:, None] + np.arange(P + 1)[None, :]
    hankel = kernels[:, rows]
    _, vectors = np.linalg.eigh(np.swapaxes(hankel, -1, -2) @ hankel)
    return vectors[..., ::-1]


def _poles(subspace: np.ndarray, m: int) -> np.ndarray:
    """(n, m) stable poles of order m from the signal subspace."""
    V = subspace[..., :m]
    poles = np.linalg.eigvals(np.linalg.pinv(V[:, :-1]) @ V[:, 1:])
    radius = np.abs(poles)
    return np.where(radius > 1.0, poles / np.maximum(radius, 1e-300), poles)


def _least_squares(kernels: np.ndarray, poles: np.ndarray) -> np.ndarray:
    """(n, K) kernels, (n, m) poles -> (n, K) real least-squares fits Re(Z β)."""
    Z = vandermonde(poles.astype(np.complex128), kernels.shape[1])
    beta = np.linalg.pinv(Z) @ kernels[..., None].astype(np.complex128)
    return (Z @ beta)[..., 0].real


def normalized_residual(kernels: np.ndarray, fits: np.ndarray) -> np.ndarray:
    """||w - ŵ||² / ||w||² per kernel (last axis); NaN where ||w|| = 0."""
    energy = np.sum(kernels * kernels, axis=-1)
    error = np.sum((kernels - fits) ** 2, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(energy > 0, error / np.where(energy > 0, energy, 1.0), np.nan)


def check_orders(orders: Iterable[int], K: int) -> tuple[int, ...]:
    orders = tuple(sorted({int(m) for m in orders}))
    if not orders or orders[0] < 1:
        raise ValueError(f"exponential orders must be >= 1, got {orders}")
    if orders[-1] > max_order(K):
        raise ValueError(f"an {orders[-1]}-term fit needs a horizon of at least {2 * orders[-1]} lags, got {K}")
    return orders


def fit_exponentials(kernels: np.ndarray, m: int) -> np.ndarray:
    """The m-term fits ŵ (n, K) of kernels (n, K) by the pencil of order m alone (no min over m' < m)."""
    kernels = np.asarray(kernels, dtype=np.float64)
    check_orders([m], kernels.shape[-1])
    return _least_squares(kernels, _poles(_signal_subspace(kernels), m))


def exponential_fits(kernels: np.ndarray, orders: Iterable[int] = DEFAULT_ORDERS,
                     ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """ε_t(m) and the fits ŵ for every kernel and order m.

    Args:
        kernels: (n, K) kernels w_t(ℓ), ℓ = 0..K-1 (any real numbers; attention weights in practice).
        orders: the m to report, each <= K // 2.
    Returns:
        ({m: (n,) ε_t(m)}, {m: (n, K) the fit reaching it}); ε is NaN for an all-zero kernel.
    """
    kernels = np.asarray(kernels, dtype=np.float64)
    if kernels.ndim != 2:
        raise ValueError(f"kernels must be (n, K), got shape {kernels.shape}")
    orders = check_orders(orders, kernels.shape[1])
    eps, fits = {}, {}
    if kernels.shape[0] == 0:
        return ({m: np.zeros(0) for m in orders}, {m: np.zeros((0, kernels.shape[1])) for m in orders})
    subspace = _signal_subspace(kernels)
    best_eps = np.full(kernels.shape[0], np.inf)
    best_fit = np.zeros_like(kernels)
    for m in range(1, orders[-1] + 1):
        fit = _least_squares(kernels, _poles(subspace, m))
        e = normalized_residual(kernels, fit)
        better = e < best_eps
        best_eps = np.where(better, e, best_eps)
        best_fit = np.where(better[:, None], fit, best_fit)
        if m in orders:
            eps[m] = np.where(np.isfinite(best_eps), best_eps, np.nan)
            fits[m] = best_fit.copy()
    return eps, fits


def epsilon_exp(kernels: np.ndarray, orders: Iterable[int] = DEFAULT_ORDERS) -> dict[int, float]:
    """ε_exp(m): the mean of ε_t(m) over the kernels (all-zero kernels left out); NaN if none is left."""
    eps, _ = exponential_fits(kernels, orders)
    return {m: float(np.nanmean(e)) if np.isfinite(e).any() else float("nan") for m, e in eps.items()}
