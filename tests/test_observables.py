"""Observables and error bars against exactly known values."""

import jax
import jax.numpy as jnp
import numpy as np

from diffphys import observables


def test_jackknife_of_the_mean_is_the_standard_error(key):
    """For a linear estimator the jackknife error equals the blocked standard error."""
    x = jax.random.normal(key, (4000,))
    v, e = observables.jackknife(lambda m: m, x, n_blocks=40)
    m, se = observables.mean_error(x, n_blocks=40)
    np.testing.assert_allclose(float(v), float(m), rtol=1e-5)
    np.testing.assert_allclose(float(e), float(se), rtol=1e-4)
    assert 0.5 / np.sqrt(4000) < float(e) < 2.0 / np.sqrt(4000)


def test_binder_cumulant_limits(key):
    """U_4 = 2/3 for m = ±1 (ordered) and 0 for Gaussian m (disordered), Binder 1981."""
    m = jax.random.rademacher(key, (2000,), jnp.float32)
    u, _ = observables.binder_cumulant(m)
    np.testing.assert_allclose(float(u), 2 / 3, atol=1e-6)
    g = jax.random.normal(key, (200_000,))
    u, err = observables.binder_cumulant(g)
    assert abs(float(u)) < 5 * float(err) + 1e-3


def test_integrated_autocorrelation_time_of_ar1(key):
    """AR(1) x_t = rho x_{t-1} + noise has tau_int = (1 + rho) / (2 (1 - rho))."""
    rho = 0.8
    noise = jax.random.normal(key, (200_000,))
    x = jax.lax.scan(lambda c, n: (rho * c + n, rho * c + n), 0.0, noise)[1]
    tau = float(observables.integrated_autocorr_time(x))
    expected = (1 + rho) / (2 * (1 - rho))
    assert abs(tau - expected) / expected < 0.1, (tau, expected)
    tau_white = float(observables.integrated_autocorr_time(noise))
    assert abs(tau_white - 0.5) < 0.05


def test_susceptibility_and_specific_heat_formulas(key):
    m = jax.random.normal(key, (1000,))
    chi, _ = observables.susceptibility(m, 100, 0.5)
    ref = 0.5 * 100 * (np.mean(np.asarray(m) ** 2) - np.mean(np.abs(np.asarray(m))) ** 2)
    np.testing.assert_allclose(float(chi), ref, rtol=1e-4)
    e = 10 * jax.random.normal(key, (1000,))
    c, _ = observables.specific_heat(e, 100, 0.5)
    np.testing.assert_allclose(float(c), 0.25 * np.var(np.asarray(e)) / 100, rtol=1e-3)


def test_two_time_correlation_and_overlap():
    traj = jnp.asarray([[1, 1, 1, 1], [1, -1, 1, -1], [-1, -1, -1, -1]], jnp.int8)
    c = observables.two_time_correlation(traj, jnp.arange(3)[:, None], jnp.arange(3)[None, :])
    np.testing.assert_allclose(np.asarray(c), [[1, 0, -1], [0, 1, 0], [-1, 0, 1]])
    assert float(observables.overlap(traj[0], traj[2])) == -1.0


def test_replica_overlaps_and_distribution_against_numpy(key):
    """Reference: the pairwise overlaps by an explicit NumPy loop and `numpy.histogram`."""
    x = np.asarray(jax.random.rademacher(key, (4, 3, 5, 6), jnp.int8))  # replicas, T, L x L
    q = np.asarray(observables.replica_overlaps(x, n_site_axes=2))
    pairs = [(a, b) for a in range(4) for b in range(a + 1, 4)]
    ref = np.stack([np.mean(x[a] * x[b], axis=(-2, -1), dtype=np.float64) for a, b in pairs])
    np.testing.assert_allclose(q, ref, atol=1e-6)
    samples = np.asarray(jax.random.uniform(key, (500, 3), minval=-1.2, maxval=1.0))
    density, edges = observables.overlap_distribution(jnp.asarray(samples), bins=8)
    for t in range(3):
        inside = samples[:, t][(samples[:, t] >= -1) & (samples[:, t] <= 1)]
        ref_d, ref_e = np.histogram(inside, bins=8, range=(-1, 1), density=True)
        np.testing.assert_allclose(np.asarray(density[t]), ref_d, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(edges), ref_e, atol=1e-6)


def test_overlap_distribution_of_parallel_tempering_matches_enumeration(key):
    """Reference: the exact two-replica overlap law P(q) = sum_{s,t} p(s) p(t) delta(q - s.t/N)
    of an N = 6 SK sample by enumeration, at every rung of `replicas(parallel_tempering(...), 2)`
    (the documented state layout: `state.states.x[replica, rung, site]`); chi-square of the
    final overlaps of 2000 independent runs, p > 1e-3."""
    from _stats import chi2_pvalue

    from diffphys import exact, models, sampling

    n, betas = 6, jnp.asarray([0.4, 0.9, 1.6])
    model = models.SK.sample(jax.random.key(3), n)
    alg = sampling.replicas(sampling.parallel_tempering(models.sk_metropolis(), betas), 2)

    def final_overlaps(k):
        k0, k1 = jax.random.split(k)
        s = alg.init(jax.random.rademacher(k0, (2, 3, n), jnp.int8), model)
        s, _ = sampling.run(k1, alg, s, model, 30)
        return observables.replica_overlaps(s.states.x)[0]  # (rungs,)

    q = jax.jit(jax.vmap(final_overlaps))(jax.random.split(key, 2000))
    density, _ = observables.overlap_distribution(q, bins=n + 1, range=(-1 - 1 / n, 1 + 1 / n))
    configs = np.asarray(exact.all_configurations(model), np.float64)
    levels = np.rint((configs @ configs.T + n) / 2).astype(int)  # (n q + n) / 2 in 0..n
    for r, beta in enumerate(np.asarray(betas)):
        p = np.asarray(exact.probabilities(model, float(beta)), np.float64)
        exact_pq = np.bincount(levels.ravel(), weights=np.outer(p, p).ravel(), minlength=n + 1)
        counts = np.asarray(density[r]) * (2 / n) * q.shape[0]
        np.testing.assert_allclose(counts.sum(), q.shape[0], rtol=1e-5)
        assert chi2_pvalue(np.rint(counts), exact_pq) > 1e-3, (r, counts, exact_pq)
