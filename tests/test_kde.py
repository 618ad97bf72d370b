"""Kernel density estimation in high dimension (Biroli & Mézard, arXiv 2408.05807)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from diffphys import ConfigError, ShapeError, models, theory


def test_kde_matches_brute_force(key):
    """Reference: the definition rho_h(x) = (1/(n h^d)) sum_i K((x - y_i)/h) with the standard
    Gaussian kernel, evaluated with scipy.stats.multivariate_normal; chunked = unchunked."""
    k1, k2 = jax.random.split(key)
    y = jax.random.normal(k1, (23, 3))
    x = jax.random.normal(k2, (3,))
    h = 0.7
    dens = scipy.stats.multivariate_normal(mean=np.zeros(3), cov=h**2 * np.eye(3))
    pdf = dens.pdf(np.asarray(x)[None, :] - np.asarray(y))
    evaluate = jax.jit(lambda kde, x: kde.statistics(x))
    stats = evaluate(models.GaussianKDE(y, h, chunk_size=5), x)
    full = evaluate(models.GaussianKDE(y, h), x)
    np.testing.assert_allclose(stats["log_density"], np.log(pdf.mean()), rtol=1e-5)
    w = pdf / pdf.sum()
    np.testing.assert_allclose(stats["participation_ratio"], np.sum(w**2), rtol=1e-4)
    np.testing.assert_allclose(stats["max_weight"], w.max(), rtol=1e-4)
    for name in stats:
        np.testing.assert_allclose(stats[name], full[name], rtol=1e-5)
    with pytest.raises(ShapeError):
        models.GaussianKDE(y, h).log_density(jnp.zeros(4))


def test_rate_function_matches_noncentral_chi2():
    """Reference: |x - y|^2 for y ~ N(0, I_d), |x|^2 = d is non-central chi^2 with d degrees of
    freedom and non-centrality d (scipy.stats.ncx2); -(1/d) log of its density at d r tends to
    I(r) with O(log(d)/d) corrections (tolerance log(d)/d at d = 1000)."""
    d = 1000
    for r in (0.3, 0.8, 1.5, 2.0, 3.0):
        exact = -scipy.stats.ncx2.logpdf(d * r, d, d) / d
        assert abs(exact - float(theory.distance_rate_function(r))) < np.log(d) / d
    np.testing.assert_allclose(theory.distance_rate_function(2.0), 0.0, atol=1e-12)


def test_regime_boundaries_are_consistent():
    """Reference: the REM structure of 2408.05807: the annealed and extreme-value expressions
    of (1/d) log rho coincide at h_G (mu = 1), h_CLT = sqrt(2) h_G (mu = 2), and both
    thresholds decrease with alpha (more data -> a smaller bandwidth stays classical)."""
    alphas = np.array([0.2, 0.5, 1.0])
    hg, hc = theory.h_glass(alphas), theory.h_clt(alphas)
    np.testing.assert_allclose(hc, np.sqrt(2) * hg)
    np.testing.assert_allclose(theory.tail_index(hg[1], 0.5), 1.0, rtol=1e-8)
    np.testing.assert_allclose(theory.tail_index(hc[1], 0.5), 2.0, rtol=1e-8)
    assert np.all(np.diff(hg) < 0)
    for a, h in zip(alphas, hg):
        below = theory.log_density_per_dim(h * (1 - 1e-7), a)
        above = theory.log_density_per_dim(h * (1 + 1e-7), a)
        np.testing.assert_allclose(below, above, atol=1e-6)
    with pytest.raises(ConfigError):
        theory.nearest_distance(-1.0)


def test_kde_regimes_on_gaussian_data(key):
    """Reference: 2408.05807 for N(0, I) data, d = 16, n = e^{alpha d} with alpha = 0.5.
    Above h_CLT the log-density per dimension equals the annealed value
    -(1/2) log 2 pi (1 + h^2) - q / (2 (1 + h^2)) (here with the exact q = |x|^2/d of each query
    point; tolerance 5 standard errors + 0.005) and the participation ratio is ~0 (< 0.02);
    well below h_G a few points dominate (mean participation ratio > 0.5, theory 1 - mu)."""
    d, alpha = 16, 0.5
    n = int(round(np.exp(alpha * d)))
    k1, k2 = jax.random.split(key)
    y = jax.random.normal(k1, (n, d))
    x = jax.random.normal(k2, (300, d))
    q = np.asarray(jnp.sum(x**2, axis=1)) / d

    def stats(h):
        kde = models.GaussianKDE(y, h, chunk_size=1024)
        return jax.jit(jax.vmap(kde.statistics))(x)

    h_big = 1.5 * float(theory.h_clt(alpha)[0])
    st = stats(h_big)
    annealed = -0.5 * np.log(2 * np.pi * (1 + h_big**2)) - q / (2 * (1 + h_big**2))
    diff = np.asarray(st["log_density"]) / d - annealed
    assert abs(diff.mean()) < 5 * diff.std() / np.sqrt(len(diff)) + 0.005
    assert float(st["participation_ratio"].mean()) < 0.02
    h_small = 0.4 * float(theory.h_glass(alpha)[0])
    assert float(stats(h_small)["participation_ratio"].mean()) > 0.5
    assert theory.mean_participation_ratio(h_small, alpha) > 0.5
