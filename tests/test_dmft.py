"""Cugliandolo-Kurchan DMFT integrator and the exact p = 2 dynamics."""

import numpy as np
import pytest

from diffphys import ConfigError, models, observables, theory


@pytest.mark.parametrize("T", [0.5, 2.0])
def test_ck_integrator_matches_exact_p2(T):
    """The CK integrator at p = 2 against the exact spherical SK solution (Cugliandolo & Dean
    1995, Volterra form): C, R and e up to t = 30 within 3e-3 at dt = 0.05, and the error
    falls by ~4x when dt is halved (second order)."""
    exact = theory.spherical_sk_exact(T, 32.0, 0.01)
    t_w = np.array([1.0, 5.0, 15.0])[None, :]
    t = t_w + np.array([0.5, 3.0, 10.0, 15.0])[:, None]
    errors = []
    for dt in (0.1, 0.05):
        sol = theory.cugliandolo_kurchan(2, T, 30.0, dt)
        C, R = theory.two_time(sol, t_w, t)
        e_err = np.abs(sol.energy - np.interp(sol.t, exact.t, exact.energy)).max()
        errors.append(
            max(
                np.abs(C - exact.correlation(t, t_w)).max(),
                np.abs(R - exact.response(t, t_w)).max(),
                e_err,
            )
        )
    assert errors[1] < 3e-3
    assert errors[1] < errors[0] / 3


def test_exact_p2_volterra_matches_mode_quadrature():
    """Two independent exact solutions of the spherical SK dynamics: the Volterra equation for
    Gamma(t) and the eigenmode (Ornstein-Uhlenbeck) equations integrated on the semicircle
    by Gauss quadrature (`nonreciprocal_sk_dynamics` with alpha = kappa = 0), within 2e-4."""
    T = 0.7
    exact = theory.spherical_sk_exact(T, 42.0, 0.01)
    modes = theory.nonreciprocal_sk_dynamics(
        T, 0.0, 0.0, t_max=40.0, t_w=[4.0, 20.0], dt=0.02, record_every=50, n_lambda=800
    )
    for w, tw in enumerate(modes.t_w):
        later = modes.t >= tw
        got = modes.C[w, later, 0, 0]
        np.testing.assert_allclose(got, exact.correlation(modes.t[later], tw), atol=2e-4)
    np.testing.assert_allclose(
        modes.energy[:, 0], np.interp(modes.t, exact.t, exact.energy), atol=2e-4
    )


def test_exact_p2_long_time_energy():
    """The exact dynamics relaxes to the equilibrium energy of Kosterlitz-Thouless-Jones (1976):
    e -> -1/(2T) above T_c (T = 2: within 1e-3 at t = 60) and approaches -1 + T/2 from above,
    monotonically, below T_c (T = 0.5: within 0.01 at t = 150, the 1/t aging correction)."""
    hot = theory.spherical_sk_exact(2.0, 60.0, 0.01)
    assert abs(hot.energy[-1] - theory.spherical_sk_equilibrium_energy(2.0)) < 1e-3
    cold = theory.spherical_sk_exact(0.5, 150.0, 0.02)
    target = float(theory.spherical_sk_equilibrium_energy(0.5))
    assert target == -0.75
    assert 0 < cold.energy[-1] - target < 0.01
    assert np.all(np.diff(cold.energy[50:]) < 0)


def test_p3_fdt_above_dynamical_temperature():
    """3-spin model above T_d = sqrt(3/8) (Crisanti-Horner-Sommers 1993): after a transient the
    dynamics is time-translation invariant and obeys the equilibrium FDT,
    R(t_w + tau, t_w) = -(1/T) dC/dtau (checked within 0.01 at T = 1, t_w = 20, tau <= 6), the
    energy is the paramagnetic -1/(2T) (within 5e-3), and TTI holds (C at t_w = 15 and 20 agree
    within 5e-3)."""
    assert theory.dynamical_temperature(3) == pytest.approx(np.sqrt(3 / 8))
    T, dt = 1.0, 0.05
    sol = theory.cugliandolo_kurchan(3, T, 27.0, dt)
    i_w = int(round(20.0 / dt))
    tau = np.arange(0, int(round(6.0 / dt)) + 1)
    C = sol.C[i_w + tau, i_w]
    R = sol.R[i_w + tau, i_w]
    dC = np.gradient(C, dt)
    np.testing.assert_allclose(R[2:], -dC[2:] / T, atol=0.01)
    assert abs(sol.energy[-1] - (-0.5 / T)) < 5e-3
    i_w2 = int(round(15.0 / dt))
    np.testing.assert_allclose(sol.C[i_w2 + tau, i_w2], C, atol=5e-3)


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_p3_dmft_matches_simulation(key):
    """3-spin Langevin at N = 160 (4 disorder samples) vs the CK solution for t <= 6
    at T = 0.8: energy and C(t, t_w = 1, 3) within 5 standard errors plus 0.02 (finite-N
    corrections O(1/N) and the O(dt) bias of the projected Euler step, dt = 0.02)."""
    T, dt, n = 0.8, 0.02, 160
    rec = np.array([50, 150, 200, 300])
    t = rec * dt
    sol = theory.cugliandolo_kurchan(3, T, 6.0, 0.05)

    x, e = models.spherical_quench(key, 3, n, T, dt, rec, 4)
    idx = np.arange(len(rec))
    cs = np.stack([observables.two_time_correlation(xk, idx[:2, None], idx[None, :]) for xk in x])

    def check(samples, expected):
        mean = samples.mean(0)
        err = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
        assert np.all(np.abs(mean - expected) < 5 * err + 0.02), (mean, expected, err)

    for row, tw in enumerate(t[:2]):
        later = t >= tw
        check(cs[:, row][:, later], theory.two_time(sol, tw, t[later])[0])
    check(np.asarray(e), np.interp(t, sol.t, sol.energy))


def test_errors():
    """Eager configuration errors."""
    with pytest.raises(ConfigError, match="p must"):
        theory.cugliandolo_kurchan(1, 1.0, 1.0)
    with pytest.raises(ConfigError):
        theory.cugliandolo_kurchan(2, -1.0, 1.0)
    sol = theory.cugliandolo_kurchan(2, 1.0, 1.0, 0.1)
    with pytest.raises(ConfigError, match="times"):
        theory.two_time(sol, 0.0, 5.0)
