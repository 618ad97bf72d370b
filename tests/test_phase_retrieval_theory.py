"""Random-matrix theory of the phase-retrieval Hessian (`theory.phase_retrieval_hessian_*`)
against dense `jnp.linalg.eigh` of sampled Hessians (`models.PhaseRetrieval`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import ConfigError, models, theory


def _student_at(p, key, m):
    """A point on the sphere |x|^2 = N at overlap exactly m with x*, independent of the data."""
    n = p.n
    xs = p.x_star / jnp.sqrt(jnp.float32(n))
    r = jax.random.normal(key, (n,))
    r = r - (r @ xs) * xs
    r = r / jnp.linalg.norm(r)
    return jnp.sqrt(jnp.float32(n)) * (m * xs + np.sqrt(1 - m * m) * r)


def _tangent_spectra(key, *, n, alpha, m, samples):
    """Eigenpairs of P grad^2 L P on the tangent space (radial direction sent to +1e6), the
    measured lambda_r = x.grad L/N, and |v.x*|/|x*| of each eigenvector (float64 numpy)."""

    @jax.jit
    def one(k):
        kp, kx = jax.random.split(k)
        p = models.PhaseRetrieval.sample(kp, n=n, alpha=alpha)
        x = _student_at(p, kx, m)
        lam_r = x @ jax.grad(p.loss)(x) / n
        P = jnp.eye(n) - jnp.outer(x, x) / n
        H = P @ p.hessian(x) @ P + 1e6 * jnp.outer(x, x) / n
        e, v = jnp.linalg.eigh(H)
        return e[:-1], lam_r, jnp.abs(v[:, 0] @ p.x_star) / jnp.sqrt(jnp.float32(n))

    out = [one(k) for k in jax.random.split(key, samples)]
    ev = np.stack([np.asarray(o[0], float) for o in out])
    lam_r = np.array([float(o[1]) for o in out])
    ov = np.array([float(o[2]) for o in out])
    return ev, lam_r, ov


def test_bulk_density_matches_sampled_hessians(key):
    """Reference: dense eigh of P grad^2 L P at N = 200, alpha = 4, m = 0 and m = 0.5 (4
    samples each, 796 eigenvalues): KS distance between the pooled empirical CDF and
    `phase_retrieval_hessian_cdf` (lagrange=0: tangent frame) < 0.02 (measured 0.006-0.009;
    finite-N corrections are O(1/N) plus the O(1/N) outliers; a Hessian weight off by the
    factor found in the first sketch, or alpha -> alpha/2, gives KS > 0.05). The Lagrange
    shift lambda_r is checked against 2(1 - m^2) within 5 of its standard errors
    sqrt(Var(z^4 - z^2 z*^2)/M) (Var = 80 at m = 0, measured by the same samples)."""
    n, alpha = 200, 4.0
    for m in (0.0, 0.5):
        ev, lam_r, _ = _tangent_spectra(key, n=n, alpha=alpha, m=m, samples=4)
        pooled = np.sort(ev.ravel())
        F = theory.phase_retrieval_hessian_cdf(pooled, alpha=alpha, m=m, lagrange=0.0)
        emp = (np.arange(pooled.size) + 0.5) / pooled.size
        ks = np.max(np.abs(F - emp))
        assert ks < 0.02, (m, ks)
        se = np.sqrt(100.0 / (alpha * n) / lam_r.size)
        assert abs(lam_r.mean() - theory.phase_retrieval_lagrange(m)) < 5 * se, lam_r


def test_density_normalised_and_mean():
    """Reference: sum rules of the density at alpha = 6, m = 0.6: mass 1 (to 2e-3) and mean
    E[w] = mu_+ + mu_- = 2 (trace of the tangent-frame Hessian / N, to 2e-2)."""
    lam = np.linspace(-20, 45, 1301)
    for m in (0.6,):
        rho = theory.phase_retrieval_hessian_density(lam, alpha=6.0, m=m, lagrange=0.0)
        assert abs(np.trapezoid(rho, lam) - 1) < 2e-3
        assert abs(np.trapezoid(rho * lam, lam) - 2.0) < 2e-2
    with pytest.raises(ConfigError, match="alpha"):
        theory.phase_retrieval_hessian_density([0.0], alpha=-1.0)
    with pytest.raises(ConfigError, match="overlap"):
        theory.phase_retrieval_hessian_outlier(alpha=4.0, m=1.0)


def test_outlier_matches_lowest_eigenpair(key):
    """Reference: dense eigh at N = 300, alpha = 10, m = 0 and 0.5 (6 samples): the lowest
    tangent-frame eigenvalue and |v_min.x*|/|x*| against `phase_retrieval_hessian_outlier`
    (eigenvalue + lambda_r), within 4 standard errors of the sample mean plus a finite-N
    allowance of 0.15 (eigenvalue) / 0.05 (overlap): the outlier's own O(N^-1/2) corrections.
    At alpha = 10 the outlier lies far below the bulk (bulk weight N F < 0.01).
    CI runs m = 0; the slow variant adds m = 0.5."""
    _check_outlier(key, (0.0,))


@pytest.mark.slow
def test_outlier_matches_lowest_eigenpair_along_m(key):
    """As `test_outlier_matches_lowest_eigenpair`, at m = 0.5 (the outlier moves up and its
    eigenvector overlap with x* drops, theory 0.63)."""
    _check_outlier(key, (0.5,))


def _check_outlier(key, ms):
    n, alpha = 300, 10.0
    for m in ms:
        ev, _, ov = _tangent_spectra(key, n=n, alpha=alpha, m=m, samples=6)
        o = theory.phase_retrieval_hessian_outlier(alpha=alpha, m=m)
        assert o.exists
        assert n * theory.phase_retrieval_hessian_cdf(o.eigenvalue, alpha=alpha, m=m) < 0.01
        lam_t = o.eigenvalue + theory.phase_retrieval_lagrange(m)
        low = ev[:, 0]
        se = low.std(ddof=1) / np.sqrt(low.size)
        assert abs(low.mean() - lam_t) < 4 * se + 0.15, (m, low, lam_t)
        se_o = ov.std(ddof=1) / np.sqrt(ov.size)
        assert abs(ov.mean() - o.overlap) < 4 * se_o + 0.05, (m, ov, o.overlap)


def test_median_lowest_eigenvalue_where_outlier_and_edge_compete(key):
    """Reference: dense eigh of the Riemannian Hessian (tangent eigenvalues minus the measured
    lambda_r) at N = 128, alpha = 4, m = 0, 64 samples: the median lowest eigenvalue against
    min(outlier, median bulk edge at N) = min(-3.98, -3.57), the prediction the
    `phase-retrieval` experiment draws at the start of every trajectory. Here the two compete
    (the lowest eigenvector's overlap with x* is spread around 0.5), and the statistic is heavy
    tailed (single-sample spikes: the mean sits ~0.2 below the median), hence the median.
    Tolerance 0.3: three standard errors of a median of 64 (1.25 x 0.62 / 8 = 0.1). Measured
    medians over three seeds: -4.10, -3.96, -4.12; the bulk edge alone (-3.57, no outlier term)
    misses every one of them by 0.39-0.55, so the outlier term is what passes."""
    n, alpha = 128, 4.0
    ev, lam_r, _ = _tangent_spectra(key, n=n, alpha=alpha, m=0.0, samples=64)
    med = float(np.median(ev[:, 0] - lam_r))
    out = theory.phase_retrieval_hessian_outlier(alpha=alpha, m=0.0)
    edge, _ = theory.phase_retrieval_hessian_edges(alpha=alpha, m=0.0, n=n)
    assert out.exists and out.eigenvalue < edge
    assert abs(med - min(out.eigenvalue, edge)) < 0.3, (med, out.eigenvalue, edge)


def test_lowest_mode_along_gd_from_the_projections(key):
    """Reference: dense eigh of the Riemannian Hessian along Riemannian GD (lr = 0.05) at
    N = 128, alpha = 4, 24 trajectories, at steps 0 and 4 (t = 0.2), against
    `phase_retrieval_hessian_given_projections` of the same states. Per-trajectory
    differences measured: median 0.04 (step 0) and 0.12 (step 4) over 32 other trajectories,
    0.18 and 0.15 with this test's key, standard deviation 0.24-0.29; asserted |median
    difference| < 0.3 (the ~0.1 that remains is systematic: the pairs are not exactly
    independent of the orthogonal parts of the sensing vectors). The annealed prediction at the measured m stays at its t = 0 value
    and misses the step-4 median by more than 1 (asserted > 0.8): the test separates them."""
    n, alpha, lr = 128, 4.0, 0.05
    real, pred, m_t = {0: [], 4: []}, {0: [], 4: []}, []

    @jax.jit
    def spectrum(p, x):
        lam_r = x @ jax.grad(p.loss)(x) / n
        P = jnp.eye(n) - jnp.outer(x, x) / n
        H = P @ (p.hessian(x) - lam_r * jnp.eye(n)) @ P + 1e3 * jnp.outer(x, x) / n
        return jnp.linalg.eigvalsh(H)[0]

    @jax.jit
    def gd_step(p, x):
        g = jax.grad(p.loss)(x)
        g = g - (g @ x) / n * x
        x = x - lr * g
        return x * jnp.sqrt(jnp.float32(n)) / jnp.linalg.norm(x)

    for k in jax.random.split(key, 24):
        kp, kx = jax.random.split(k)
        p = models.PhaseRetrieval.sample(kp, n=n, alpha=alpha)
        x = models.random_student(kx, n)
        for step in range(5):
            if step in real:
                z = np.asarray(p.a @ x, float) / np.sqrt(n)
                zs = np.asarray(p.a @ p.x_star, float) / np.sqrt(n)
                m = float(x @ p.x_star) / n
                real[step].append(float(spectrum(p, x)))
                c = theory.phase_retrieval_hessian_given_projections(z, zs, m=m, n=n)
                pred[step].append(c.lambda_min)
                if step == 4:
                    m_t.append(abs(m))
            x = gd_step(p, x)
    for step in real:
        d = np.asarray(real[step]) - np.asarray(pred[step])
        assert abs(np.median(d)) < 0.3, (step, np.median(d), d)
    o = theory.phase_retrieval_hessian_outlier(alpha=alpha, m=float(np.mean(m_t)))
    edge, _ = theory.phase_retrieval_hessian_edges(alpha=alpha, m=float(np.mean(m_t)), n=n)
    annealed = min(o.eigenvalue if o.exists else np.inf, edge)
    assert np.median(real[4]) - annealed > 0.8, (np.median(real[4]), annealed)
    with pytest.raises(ConfigError, match="same length"):
        theory.phase_retrieval_hessian_given_projections(np.ones(3), np.ones(4), m=0.0, n=2)
