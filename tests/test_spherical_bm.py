"""Spherical Boltzmann machine: exact log Z, exact teacher sampler, posterior sampling, MAP,
and the large-N test log-likelihoods (diffphys.theory.sbm_teacher_student).

References: the closed-form partition function at W = 0 (the delta(|x|^2 - N) measure of the
sphere, Z = N^{N/2-1} pi^{N/2} / Gamma(N/2)); direct quadrature on the 2-sphere (N = 3);
one-dimensional quadrature over the overlap m for a rank-one W (the uniform measure of m on
the sphere is (1 - m^2)^{(N-3)/2}); the Gaussian (GOE) prior, which the posterior Langevin
dynamics must sample when there are no data; the closed-form single-mode MAP solution; and
simulations at N = 64 for the large-N theory.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial.legendre import leggauss
from scipy.special import gammaln

from diffphys.models import (
    SphericalBM,
    sbm_ensemble_log_prob,
    sbm_log_partition_from_eigenvalues,
    sbm_map_fit,
    sbm_posterior_langevin,
    sbm_sample_rank_one,
    sbm_second_moment,
)
from diffphys.theory import sbm_map_couplings, sbm_teacher_student

N = 30


def _exact_free_log_z(n):
    return (n / 2 - 1) * math.log(n) + n / 2 * math.log(math.pi) - gammaln(n / 2)


def _rank_one_reference(n, omega):
    """log Z of omega u u^T by quadrature over m (float64)."""
    m = np.linspace(-1, 1, 400_001)[1:-1]
    base = 0.5 * (n - 3) * np.log1p(-(m**2))
    tilt = base + 0.5 * n * omega * m**2
    num = np.log(np.trapezoid(np.exp(tilt - tilt.max()), m)) + tilt.max()
    den = np.log(np.trapezoid(np.exp(base - base.max()), m)) + base.max()
    return _exact_free_log_z(n) + num - den


@pytest.mark.parametrize("n", [3, 10, 64, 400])
def test_exact_log_z_at_zero_coupling(n):
    """Closed form at W = 0; float32 quadrature within 2e-6 relative."""
    got = float(SphericalBM(jnp.zeros((n, n))).log_partition_exact())
    ref = _exact_free_log_z(n)
    assert abs(got - ref) < 2e-6 * max(1.0, abs(ref))


@pytest.mark.parametrize("n", [10, 64])
@pytest.mark.parametrize("omega", [0.5, 1.0, 2.0, 5.0])
def test_exact_log_z_rank_one(n, omega):
    """Paramagnetic, critical and condensed rank-one couplings against quadrature over the
    overlap m (1e-4 absolute: float32 and the reference grid)."""
    lam = jnp.zeros(n).at[0].set(omega)
    got = float(sbm_log_partition_from_eigenvalues(lam))
    assert abs(got - _rank_one_reference(n, omega)) < 1e-4


def test_exact_log_z_matches_sphere_quadrature(key):
    """N = 3, random couplings of O(1): Gauss-Legendre x uniform quadrature on the 2-sphere
    (200 x 400 nodes, spectrally accurate), within 1e-4."""
    a = jax.random.normal(key, (3, 3))
    J = np.asarray(0.8 * (a + a.T), np.float64)
    ct, wt = leggauss(200)
    ph = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    c, p = np.meshgrid(ct, ph, indexing="ij")
    s = np.sqrt(1 - c**2)
    x = math.sqrt(3) * np.stack([s * np.cos(p), s * np.sin(p), c], -1)
    e = 0.5 * np.einsum("...i,ij,...j->...", x, J, x)
    # d^3x delta(|x|^2 - 3) = (r/2) dOmega with r = sqrt(3)
    z = 0.5 * math.sqrt(3) * np.sum(wt[:, None] * np.exp(e)) * (2 * np.pi / 400)
    got = float(SphericalBM(jnp.asarray(J, jnp.float32)).log_partition_exact())
    assert abs(got - math.log(z)) < 1e-4


def test_saddle_log_z_is_order_one_over_n(key):
    """Weak GOE couplings (semicircle radius 0.6, paramagnetic): the saddle point with its
    Gaussian correction is within 2/N of the exact log Z at N = 30 (measured 0.006-0.037 over
    four coupling draws: an O(1/N) error), and <xx> has trace N."""
    a = jax.random.normal(key, (N, N))
    model = SphericalBM(0.6 * (a + a.T) / jnp.sqrt(2.0 * N))
    assert abs(float(model.log_partition()) - float(model.log_partition_exact())) < 2.0 / N
    assert abs(float(jnp.trace(model.second_moment())) - N) < 1e-3 * N


def test_saddle_log_z_gradient_matches_finite_differences(key):
    """jax.grad of `log_partition` (through the CPU-only eigh batching workaround, which alone
    cannot be differentiated) against central finite differences of the same function in
    float64 (step 1e-5: truncation and rounding errors ~1e-10), alone and under vmap; and the
    exact identity tr(dlogZ/dW) = N/2 (W -> W + cI multiplies Z by e^{Nc/2} since |x|^2 = N),
    which fails when the saddle point's motion dz*/dW is left out of the gradient."""
    n = 6
    with jax.enable_x64(True):
        k1, k2 = jax.random.split(key)
        a = jax.random.normal(k1, (n, n), jnp.float64)
        w = 0.6 * (a + a.T) / jnp.sqrt(2.0 * n)

        def f(J):
            return SphericalBM(J).log_partition()

        grad = jax.jit(jax.grad(f))(w)
        dirs = jax.random.normal(k2, (4, n, n), jnp.float64)
        h = 1e-5
        f_plus, f_minus = np.split(
            np.asarray(jax.jit(jax.vmap(f))(w + h * jnp.concatenate([dirs, -dirs]))), 2
        )
        fd = (f_plus - f_minus) / (2 * h)
        directional = np.asarray(jnp.sum(grad * dirs, axis=(1, 2)))
        np.testing.assert_allclose(directional, fd, rtol=1e-7, atol=1e-7)
        assert abs(float(jnp.trace(grad)) - n / 2) < 1e-10
        batched = jax.jit(jax.vmap(jax.grad(f)))(jnp.stack([w, 2 * w]))
        np.testing.assert_allclose(np.asarray(batched[0]), np.asarray(grad), rtol=1e-12)
        assert abs(float(jnp.trace(batched[1])) - n / 2) < 1e-10


def test_rank_one_sampler_is_exact(key):
    """<m^2> of `sbm_sample_rank_one` (4000 samples, N = 30, omega = 2) against the exact
    finite-N value from the overlap density, within 4 standard errors; |x|^2 = N."""
    u = jnp.ones(N) / math.sqrt(N)
    x = sbm_sample_rank_one(key, u, 2.0, 4000)
    m2 = np.asarray((x @ u) ** 2 / N, np.float64)
    grid = np.linspace(0, 1, 200_001)[1:-1]
    lw = 0.5 * N * 2.0 * grid**2 + 0.5 * (N - 3) * np.log1p(-(grid**2))
    w = np.exp(lw - lw.max())
    ref = np.sum(w * grid**2) / np.sum(w)
    assert abs(m2.mean() - ref) < 4 * m2.std() / math.sqrt(m2.size)
    np.testing.assert_allclose(np.asarray(jnp.sum(x**2, 1)), N, rtol=1e-5)


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_posterior_langevin_samples_prior_without_data(key):
    """With K = 0 the posterior is the prior: off-diagonal W_ij ~ N(0, 1/(gamma eta N)),
    W_ii ~ N(0, 2/(gamma eta N)). Euler-Maruyama with gamma eta N dt = 0.03 biases the variance
    by +1.5%. Variances over 64 chains x 435 pairs within 10% (> 5 sigma of the chi-square
    spread of ~28000 samples); the chains start from W = 0."""
    gamma, eta = 2.0, 2.0
    Js = sbm_posterior_langevin(
        key,
        jnp.zeros((N, N)),
        0.0,
        gamma=gamma,
        eta=eta,
        n_models=64,
        n_steps=1000,
        dt=5e-4 / eta,
        J0=jnp.zeros((N, N)),
    )
    iu = np.triu_indices(N, 1)
    off = np.asarray(Js)[:, iu[0], iu[1]]
    diag = np.asarray(jnp.diagonal(Js, axis1=1, axis2=2))
    assert abs(off.var() * gamma * eta * N - 1) < 0.1
    assert abs(diag.var() * gamma * eta * N / 2 - 1) < 0.15


def test_map_couplings_closed_forms():
    """One condensed mode: gamma mu^2 - (c_1 - K) mu - K = 0; below c_1 = gamma: w = c/gamma;
    two tied modes share mu with sum_k (c_k - gamma mu) = K (1 - 1/mu)."""
    c = np.array([5.0, 0.2])
    mult = np.array([1.0, 5.0])  # K = 6
    w = np.asarray(sbm_map_couplings(c, 1.0, multiplicity=mult))
    mu = ((5 - 6) + math.sqrt(1 + 24)) / 2
    np.testing.assert_allclose(w, [mu, 0.2], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(sbm_map_couplings(c, 6.0)), c / 6.0, rtol=1e-6)
    w2 = np.asarray(sbm_map_couplings(np.array([3.0, 3.0]), 1.0))
    mu2 = w2[0]
    assert w2[0] == pytest.approx(w2[1])
    assert 2 * (3.0 - mu2) == pytest.approx(6.0 * (1 - 1 / mu2), rel=1e-5)


def test_map_fit_matches_large_n_couplings(key):
    """MAP by gradient descent on exact teacher data (N = 64, omega = 2, K = 3, gamma = 1:
    condensed MAP, c_1 ~ 2 > gamma) against the large-N eigenvalue mu of the theory evaluated
    at the realised data eigenvalues: top eigenvalue within 8% (finite-size corrections
    O(K/N) ~ 5%); top eigenvector overlap with u above 0.85."""
    n, k = 64, 3
    u = jax.random.normal(key, (n,))
    u = u / jnp.linalg.norm(u)
    x = sbm_sample_rank_one(jax.random.fold_in(key, 1), u, 2.0, k)
    fit = sbm_map_fit(sbm_second_moment(x), float(k), gamma=1.0, n_steps=800, lr=0.02)
    lam, vec = jnp.linalg.eigh(fit.J)
    c = np.sort(np.linalg.eigvalsh(np.asarray(x @ x.T, np.float64) / n))[::-1]
    w = np.asarray(sbm_map_couplings(c, 1.0))
    assert abs(float(lam[-1]) / w[0] - 1) < 0.08
    assert float(jnp.abs(vec[:, -1] @ u)) > 0.85


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_ensemble_of_identical_models_is_the_model(key):
    """An ensemble of S identical models has the log density of the model itself."""
    a = jax.random.normal(key, (N, N))
    model = SphericalBM(0.3 * (a + a.T) / jnp.sqrt(2.0 * N))
    x = sbm_sample_rank_one(jax.random.fold_in(key, 2), jnp.ones(N), 2.0, 5)
    np.testing.assert_allclose(
        np.asarray(sbm_ensemble_log_prob(jnp.stack([model.J, model.J]), x)),
        np.asarray(jax.vmap(lambda v: model.log_prob(v, exact=True))(x)),
        rtol=1e-5,
    )


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_theory_against_simulation_paramagnetic():
    """Large-N theory vs simulation at N = 64, omega = 2, gamma = 3, eta = 4, K = 1, 2
    (paramagnetic posterior), one seed, 2000 test points (MAP starts at its paramagnetic
    solution K C/(gamma N), the Langevin chains at the Gaussian factor of the posterior, so
    short runs suffice): MAP within 0.015 per dimension
    (finite-size O(K/N)); one posterior sample below MAP by 1/(4 gamma eta) = 0.0208 within
    0.006; ensemble equal to MAP within 0.008 (the 32-model posterior-predictive average of a
    log-normal with variance N/(2 gamma eta) = 2.7 is biased low by ~0.1/N)."""
    from diffphys import experiments
    from diffphys.experiments.spherical_bm_ensembles import _one_seed

    DEFAULTS = experiments.get("spherical-bm-ensembles").defaults

    cfg = dict(DEFAULTS, M=[1, 2], n_models=32, n_langevin=100, map_steps=300)
    outs = [_one_seed(jax.random.key(0), cfg)]
    sim = {k: np.mean([np.asarray(o[k]) for o in outs], axis=0) for k in outs[0]}
    th = sbm_teacher_student(2.0, np.array([1, 2]), 3.0, 4.0, n=64)
    np.testing.assert_allclose(sim["map"], np.asarray(th.map), atol=0.015)
    np.testing.assert_allclose(sim["teacher"], np.asarray(th.teacher), atol=0.01)
    gap = sim["single_posterior_sample"] - sim["map"]
    np.testing.assert_allclose(gap, -0.25 / 12.0, atol=0.006)
    np.testing.assert_allclose(sim["ensemble"] - sim["map"], 0.0, atol=0.008)


def test_theory_limits_and_errors():
    """Large K: MAP tends to the teacher (the regulariser is outweighed by the data); the
    ensemble prediction is withheld outside the paramagnetic posterior; errors are eager."""
    th = sbm_teacher_student(2.0, np.array([1.0, 4.0, 1e4]), 3.0, 4.0)
    assert float(th.map[-1]) == pytest.approx(float(th.teacher[-1]), abs=1e-3)
    assert np.isfinite(np.asarray(th.ensemble)[:2]).all() and np.isnan(th.ensemble[-1])
    assert bool(th.map_condensed[-1]) and not bool(th.map_condensed[0])
    from diffphys import ConfigError

    with pytest.raises(ConfigError, match="omega"):
        sbm_teacher_student(0.5, 1, 1.0, 1.0)
    with pytest.raises(ConfigError, match="gamma"):
        sbm_map_fit(jnp.eye(3), 1.0, gamma=0.0)


def test_experiment_contract():
    """Reference: the issue's contract: `test_log_likelihood` with dims (seed, estimator, M)
    for the estimators teacher / map / ensemble / single_posterior_sample, next to
    `test_log_likelihood_theory` (estimator, M); summary and figure build."""
    from diffphys.experiments import _core

    ds = _core.run(
        "spherical-bm-ensembles",
        N=16,
        M=[1, 8],
        n_test=200,
        n_models=4,
        n_langevin=10,
        map_steps=20,
        n_seeds=1,
    )
    assert ds["test_log_likelihood"].dims == ("seed", "estimator", "M")
    assert ds["test_log_likelihood_theory"].dims == ("estimator", "M")
    assert list(ds.estimator.values) == ["teacher", "map", "ensemble", "single_posterior_sample"]
    th = ds["test_log_likelihood_theory"]
    assert np.isfinite(th.sel(estimator="map")).all()
    assert np.isnan(th.sel(estimator="ensemble", M=8))  # condensed: no prediction
    exp = _core.get("spherical-bm-ensembles")
    assert "map_minus_theory_per_dim" in exp.summary(ds)
    assert exp.figure(ds) is not None
