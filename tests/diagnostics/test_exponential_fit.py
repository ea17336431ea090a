"""ε_exp (paper §3.2): exact exponential mixtures fit to rounding error, a far spike does not, and the
residual is normalised per kernel as defined (scale-invariant, in [0, 1], monotone in m)."""
import numpy as np
import pytest

from infomamba.diagnostics.exponential_fit import (DEFAULT_ORDERS, epsilon_exp, exponential_fits, fit_exponentials,
                                                   max_order, normalized_residual, vandermonde)

K = 32
LAGS = np.arange(K)
# distinct real decays in (0, 1) (Mamba-1's exp(dt A)), not on any grid, and signed weights (Eq. 3's β ∈ R^m)
POLES = {1: [0.83], 2: [0.91, 0.47], 4: [0.95, 0.78, 0.52, 0.21],
         8: [0.97, 0.9, 0.81, 0.69, 0.55, 0.4, 0.26, 0.12]}
# "≈ 0": the pencil recovers exact mixtures in float64 to rounding error; the worst case here (m = 8, poles
# 0.07-0.15 apart) stays far below this bound
EXACT_TOL = 1e-8


def mixture(poles, weights) -> np.ndarray:
    return sum(w * np.asarray(p, dtype=complex) ** LAGS for p, w in zip(poles, weights)).real


@pytest.mark.parametrize("m", DEFAULT_ORDERS)
def test_an_exact_m_term_mixture_gives_zero(m):
    rng = np.random.default_rng(m)
    weights = rng.uniform(0.2, 1.0, m) * rng.choice([-1.0, 1.0], m)
    weights[0] = abs(weights[0]) + 1.0
    w = mixture(POLES[m], weights)
    eps, fits = exponential_fits(w[None], [m])
    assert eps[m][0] < EXACT_TOL
    np.testing.assert_allclose(fits[m][0], w, atol=1e-6 * np.abs(w).max())
    if m in (2, 4):  # and it needs all m terms: fewer leave a residual (not for m = 8: eight real decays
        # on 32 lags are so nearly dependent that seven of them already fit to ~1e-14, the well-known
        # ill-conditioning of exponential sums)
        assert exponential_fits(w[None], [m - 1])[0][m - 1][0] > 1e-6


def test_a_damped_oscillation_is_a_conjugate_pair_with_a_real_fit():
    w = 0.8 ** LAGS * np.cos(0.9 * LAGS) + 0.3 * 0.5 ** LAGS
    fit = fit_exponentials(w[None], 3)
    assert np.isrealobj(fit)
    assert normalized_residual(w[None], fit)[0] < EXACT_TOL
    assert exponential_fits(w[None], [2])[0][2][0] > 1e-4  # a pair alone misses the third term


def test_softmax_like_local_kernels_fit_well():
    """Inside the regime (H1): a locally banded kernel (self + exponential decay) is almost exact at m = 2."""
    w = 0.5 * (LAGS == 0) + 0.5 * 0.3 * 0.7 ** LAGS
    eps = epsilon_exp(w[None] / w.sum(), DEFAULT_ORDERS)
    assert eps[1] > 0.01 and eps[2] < EXACT_TOL


@pytest.mark.parametrize("lag", [16, 24, 31])
def test_a_far_spike_gives_a_large_eps(lag):
    """Outside the regime (Boundaries 2-3): one spike far back (a non-local coupling) is not an m-term mixture."""
    spike = (LAGS == lag).astype(float)
    eps = epsilon_exp(spike[None], DEFAULT_ORDERS)
    assert all(e > 0.5 for e in eps.values()), eps
    near = epsilon_exp((LAGS == 0).astype(float)[None], DEFAULT_ORDERS)  # a spike on the diagonal is a pole at 0
    assert all(e < EXACT_TOL for e in near.values())


def test_far_spike_on_a_local_background_is_worse_than_the_background():
    background = 0.6 ** LAGS
    eps_local = epsilon_exp(background[None])
    eps_spiky = epsilon_exp((background + 0.8 * (LAGS == 20))[None])
    for m in DEFAULT_ORDERS:
        assert eps_spiky[m] > 0.1 > EXACT_TOL > eps_local[m]


def test_normalisation_is_per_kernel_squared_residual_over_energy():
    rng = np.random.default_rng(0)
    kernels = rng.dirichlet(np.ones(K), size=20)  # softmax-like rows: non-negative, random structure
    eps, fits = exponential_fits(kernels, DEFAULT_ORDERS)
    for m in DEFAULT_ORDERS:
        by_hand = ((kernels - fits[m]) ** 2).sum(1) / (kernels ** 2).sum(1)
        np.testing.assert_allclose(eps[m], by_hand, rtol=1e-12)
        assert ((0 <= eps[m]) & (eps[m] <= 1 + 1e-12)).all()  # β = 0 is always available
    means = epsilon_exp(kernels, DEFAULT_ORDERS)  # ε_exp: averaged over the kernels (queries t)
    assert means == pytest.approx({m: eps[m].mean() for m in DEFAULT_ORDERS}, rel=1e-12)
    for small, large in zip(DEFAULT_ORDERS, DEFAULT_ORDERS[1:]):  # more terms never fit worse
        assert (eps[large] <= eps[small] + 1e-15).all()


@pytest.mark.parametrize("scale", [1e-4, 0.37, 250.0])
def test_eps_is_scale_invariant(scale):
    """H3: compared after matching the scale; a row's mass inside the horizon does not change ε_t."""
    rng = np.random.default_rng(1)
    kernels = rng.dirichlet(np.ones(K) * 0.3, size=8)
    base = exponential_fits(kernels, DEFAULT_ORDERS)[0]
    scaled = exponential_fits(scale * kernels, DEFAULT_ORDERS)[0]
    for m in DEFAULT_ORDERS:
        np.testing.assert_allclose(scaled[m], base[m], rtol=1e-6, atol=1e-12)


def test_zero_kernels_are_left_out_and_orders_are_checked():
    kernels = np.stack([np.zeros(K), 0.9 ** LAGS])
    eps, _ = exponential_fits(kernels, [1])
    assert np.isnan(eps[1][0]) and eps[1][1] < EXACT_TOL
    assert epsilon_exp(kernels, [1])[1] < EXACT_TOL
    with pytest.raises(ValueError, match="horizon"):
        exponential_fits(np.ones((1, 8)), [8])
    assert max_order(16) == 8
    with pytest.raises(ValueError, match=">= 1"):
        exponential_fits(np.ones((1, 8)), [0])


def test_poles_outside_the_unit_disk_are_not_used():
    """H2: a growing kernel is fitted with |λ| <= 1 only, so it is not exact."""
    growing = 1.1 ** LAGS
    assert epsilon_exp(growing[None], [1])[1] > 1e-3
    np.testing.assert_allclose(vandermonde(np.array([[0.0, 0.5]]), 3)[0], [[1, 1], [0, 0.5], [0, 0.25]])
