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
