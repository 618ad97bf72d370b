"""Spherical p-spin models (p = 2, 3): couplings, energy/gradient, Langevin vs exact results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import ConfigError, ShapeError, models, observables, sampling, theory


def test_coupling_statistics(key):
    """Couplings have the variance p!/(2 N^{p-1}) of Cugliandolo-Kurchan 1993 (5 sigma of the
    sample variance), are symmetric and vanish on coinciding indices."""
    n = 300
    j = np.asarray(models.SphericalPSpin.sample(key, n, 2).couplings)
    assert np.allclose(j, j.T) and np.all(np.diag(j) == 0)
    up = j[np.triu_indices(n, 1)]
    target = 1.0 / n
    assert abs(up.var() - target) < 5 * target * np.sqrt(2.0 / up.size)

    n = 30
    j3 = np.asarray(models.SphericalPSpin.sample(key, n, 3).couplings)
    for perm in [(1, 0, 2), (2, 1, 0), (1, 2, 0)]:
        assert np.allclose(j3, np.transpose(j3, perm), atol=1e-7)
    i = np.arange(n)
    assert np.all(j3[i, i, :] == 0) and np.all(j3[i, :, i] == 0)
    mask = np.zeros((n, n, n), bool)
    for x in range(n):
        for y in range(x + 1, n):
            mask[x, y, y + 1 :] = True
    vals = j3[mask]
    target = 6.0 / (2 * n**2)
    assert abs(vals.var() - target) < 5 * target * np.sqrt(2.0 / vals.size)


@pytest.mark.parametrize("p", [2, 3])
def test_energy_matches_definition_and_gradient(key, p):
    """H = -sum_{i<..} J s..s (brute-force sum over ordered index sets) and grad H = jax.grad(H)."""
    n = 12
    k1, k2 = jax.random.split(key)
    model = models.SphericalPSpin.sample(k1, n, p)
    x = model.random_state(key=k2)
    j, xs = np.asarray(model.couplings, np.float64), np.asarray(x, np.float64)
    if p == 2:
        brute = -sum(j[a, b] * xs[a] * xs[b] for a in range(n) for b in range(a + 1, n))
    else:
        brute = -sum(
            j[a, b, c] * xs[a] * xs[b] * xs[c]
            for a in range(n)
            for b in range(a + 1, n)
            for c in range(b + 1, n)
        )
    assert float(model.energy(x)) == pytest.approx(brute, rel=1e-4, abs=1e-4)
    np.testing.assert_allclose(
        model.grad_energy(x), jax.grad(model.energy)(x), rtol=1e-4, atol=1e-5
    )


def test_errors():
    """Eager, explanatory errors for unsupported p and wrong shapes."""
    with pytest.raises(ConfigError, match="p = 2"):
        models.SphericalPSpin.sample(jax.random.key(0), 10, 4)
    with pytest.raises(ShapeError):
        models.SphericalPSpin(jnp.zeros((3, 4)), 2)
    model = models.SphericalPSpin.sample(jax.random.key(0), 10, 2)
    with pytest.raises(ShapeError):
        sampling.langevin(spherical=True).init(jnp.ones(11), model)


def test_paramagnetic_energy(key):
    """Spherical SK above T_c = 1: e = -1/(2T) (annealed = quenched; Kosterlitz-Thouless-Jones
    1976). N = 1000, 4 disorder samples, T = 2, time average over t in [10, 20] after a quench;
    tolerance 5 sigma of the sample-to-sample spread plus the O(dt) Euler bias (0.005)."""
    T, dt, n = 2.0, 0.02, 1000
    rec = np.arange(500, 1001, 25)
    _, e = models.spherical_quench(key, 2, n, T, dt, rec, 4)
    per_sample = np.asarray(e).mean(axis=1)
    err = per_sample.std(ddof=1) / np.sqrt(len(per_sample))
    expected = float(theory.spherical_sk_equilibrium_energy(T))
    assert expected == -0.25
    assert abs(per_sample.mean() - expected) < 5 * err + 0.005


def _mean_spherical_energy(eigs, T):
    """Equilibrium energy per spin of a finite-N spherical model with spectrum `eigs`: solve
    (1/N) sum_k T/(z - l_k) = 1 for z > l_max, then e = -(1/2N) sum_k l_k T/(z - l_k)."""
    from scipy.optimize import brentq

    lmax = eigs.max()
    g = lambda z: np.mean(T / (z - eigs)) - 1.0
    z = brentq(g, lmax + 1e-12, lmax + 10 * T + 10)
    return -0.5 * np.mean(eigs * T / (z - eigs))


def test_glass_phase_energy(key):
    """Spherical SK below T_c: long Langevin runs at N = 128 (equilibrating through the finite-N
    gap) reach the finite-N equilibrium energy of the mean-spherical model built from the
    eigenvalues of J (within 0.035: the mean-spherical ensemble differs from the sharp sphere by
    O(1/N) ~ 0.01-0.02 in the condensed phase, plus residual aging and the O(dt) bias; measured
    deviations 0.005-0.023), and that finite-N energy tends to the
    closed form e = -1 + T/2 (KTJ 1976) as N grows (N = 2000: within 0.01)."""
    T, dt, n = 0.5, 0.05, 128
    rec = np.arange(3000, 4001, 50)
    keys = jax.random.split(key, 2)  # the per-sample keys spherical_quench uses
    _, e = models.spherical_quench(key, 2, n, T, dt, rec, 2)
    for k, e_k in zip(keys, np.asarray(e)):
        sim = float(np.mean(e_k))
        model = models.SphericalPSpin.sample(jax.random.split(k, 3)[0], n, 2)
        eigs = np.linalg.eigvalsh(np.asarray(model.couplings, np.float64))
        assert abs(sim - _mean_spherical_energy(eigs, T)) < 0.035
    big = models.SphericalPSpin.sample(key, 2000, 2)
    eigs = np.linalg.eigvalsh(np.asarray(big.couplings, np.float64))
    assert abs(_mean_spherical_energy(eigs, T) - (-1 + T / 2)) < 0.01


def test_langevin_matches_exact_p2_dynamics(key):
    """Langevin at N = 1000 vs the exact N -> inf spherical SK dynamics
    (Cugliandolo-Dean 1995 Volterra solution): C(t, t_w) for t_w in {1, 3} and e(t) up to t = 10,
    8 disorder samples,
    at T = 0.5, within 5 standard errors of the disorder average plus 0.01 for the O(dt) bias."""
    T, dt, n = 0.5, 0.02, 1000
    rec = np.array([50, 150, 250, 375, 500])  # t_w = 1, 3 are the first two records
    t = rec * dt
    exact = theory.spherical_sk_exact(T, 12.0, 0.01)
    x, e = models.spherical_quench(key, 2, n, T, dt, rec, 8)
    idx = np.arange(len(rec))
    cs = np.stack([observables.two_time_correlation(xk, idx[:2, None], idx[None, :]) for xk in x])
    es = np.asarray(e)

    def check(samples, expected):
        mean = samples.mean(0)
        err = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
        assert np.all(np.abs(mean - expected) < 5 * err + 0.01), (mean, expected, err)

    for row, tw in enumerate([1.0, 3.0]):
        later = t >= tw
        check(cs[:, row][:, later], exact.correlation(t[later], tw))
    check(es, np.interp(t, exact.t, exact.energy))


def test_langevin_state_energy_is_total_energy_of_x(key):
    """The one spherical sampler's state convention: `state.energy` is the total energy
    H(state.x) (not per spin, not lagged by a step), as in every sampler's state; reference:
    `SphericalPSpin.energy` evaluated afresh on the state's x, and `x` on the sphere."""
    alg = sampling.langevin(beta=2.0, dt=0.02, spherical=True)
    n = 40
    model = models.SphericalPSpin.sample(key, n, 2)
    s = alg.init(model.random_state(key=key), model)
    for k in jax.random.split(key, 3):
        s, info = alg.step(k, s, model)
        assert float(jnp.sum(s.x**2)) == pytest.approx(n, rel=1e-5)
        assert float(s.energy) == pytest.approx(float(model.energy(s.x)), rel=1e-5, abs=1e-5)
        assert float(info.energy) == float(s.energy)
