"""Kim-Latz decimated-grid integrator of the Cugliandolo-Kurchan equations."""

import math

import numpy as np
import pytest

from diffphys import ConfigError, theory


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
@pytest.mark.parametrize("p", [2, 3])
def test_matches_uniform_grid_at_short_times(p):
    """Against the uniform-grid Heun integrator `cugliandolo_kurchan` (dt = 0.05, itself
    within ~1e-3 of the exact p = 2 solution, tests/test_dmft.py) at T = 0.5 up to t = 20,
    through 3 (n = 64) and 4 (n = 32) decimations from dt = 0.02: with n = 64 the energy is
    within 5e-3 and C(t, t_w), chi(t, t_w) (t - t_w >= 0.7, t_w = 1, 4, 10) within 8e-3, and
    the two-time error falls by more than 0.7x from n = 32 to 64 (the resolution h/t ~ 1/n
    of the decimated grid)."""
    T = 0.5
    ref = theory.cugliandolo_kurchan(p, T, 20.0, 0.05)
    errors = []
    for n in (32, 64):
        sol = theory.cugliandolo_kurchan_decimated(p, T, 20.0, 0.02, n=n)
        assert sol.t_breakdown == math.inf
        assert sol.h[-1] == pytest.approx(0.32 * 32 / n)
        keep = sol.t <= 20.0
        e_err = np.abs(sol.energy[keep] - np.interp(sol.t[keep], ref.t, ref.energy)).max()
        err = 0.0
        for t_w in (1.0, 4.0, 10.0):
            t = np.linspace(t_w + 0.7, 20.0, 12)
            C_ref, _ = theory.two_time(ref, t_w, t)
            # chi(t, t_w) of the reference: trapezoid rule along its response rows
            i, j = np.round(t / ref.t[1]).astype(int), int(round(t_w / ref.t[1]))
            chi_ref = np.array([np.trapezoid(ref.R[k, j : k + 1], ref.t[j : k + 1]) for k in i])
            err = max(
                err,
                np.abs(sol.correlation(t, t_w) - C_ref).max(),
                np.abs(sol.integrated_response(t, t_w) - chi_ref).max(),
            )
        print(f"p={p} n={n}: energy error {e_err:.2e}, two-time error {err:.2e}")
        errors.append(err)
    assert e_err < 5e-3
    assert errors[1] < 8e-3
    assert errors[1] < 0.7 * errors[0]


def test_p2_long_times_against_exact_solution():
    """p = 2 (spherical SK) at T = 0.5 up to t = 400 against the exact eigenmode solution
    (Cugliandolo & Dean 1995; `nonreciprocal_sk_dynamics` with alpha = kappa = 0): energy
    within 1e-3 at every stored time t >= 5 and C(t, t_w) at t/t_w = 1.5, 2, 4 within 2e-2 for
    t_w = 10, 50, 100 (n = 128: h = 1.28 at t = 400; the largest error, 1.5e-2, is at
    t = 4 t_w = 400; with `band=2` it is 1e-3 for p = 2, see `benchmarks/results/dmft_grid.md`).
    The energy approaches the equilibrium -1 + T/2 (Kosterlitz, Thouless & Jones 1976) from
    above."""
    T = 0.5
    sol = theory.cugliandolo_kurchan_decimated(2, T, 400.0, 0.04, n=128)
    assert sol.t_breakdown == math.inf
    exact = theory.nonreciprocal_sk_dynamics(
        T,
        0.0,
        0.0,
        t_max=400.0,
        t_w=[10.0, 50.0, 100.0],
        dt=0.05,
        record_every=20,
        n_lambda=800,
    )
    keep = (sol.t >= 5.0) & (sol.t <= 400.0)  # the exact energy is recorded every 1.0
    e_exact = np.interp(sol.t[keep], exact.t, exact.energy[:, 0])
    e_err = np.abs(sol.energy[keep] - e_exact).max()
    errors = []
    for w, t_w in enumerate(exact.t_w):
        for r in (1.5, 2.0, 4.0):
            if r * t_w <= 400.0:
                c_exact = np.interp(r * t_w, exact.t, exact.C[w, :, 0, 0])
                errors.append(sol.correlation(r * t_w, t_w) - c_exact)
    print(f"energy error {e_err:.2e}, C errors {np.round(errors, 4)}")
    assert e_err < 1e-3
    assert np.abs(errors).max() < 2e-2
    e_inf = float(theory.spherical_sk_equilibrium_energy(T))
    assert 0 < sol.energy[keep][-1] - e_inf < 2e-3


def test_p3_above_td_is_stationary_and_obeys_fdt():
    """3-spin at T = 1 > T_d = sqrt(3/8) (Crisanti-Horner-Sommers 1993): the energy relaxes
    to the paramagnetic -1/(2T) (within 5e-3 at t = 20), the late-time correlation is
    time-translation invariant (C(t_w + tau, t_w) at t_w = 12 and 18 within 5e-3) and obeys
    the integrated FDT chi(t_w + tau, t_w) = (1 - C(t_w + tau, t_w))/T within 1e-2; the
    pointwise response R(t_w + tau, t_w) agrees with the uniform-grid solver within 1.5e-2."""
    T = 1.0
    sol = theory.cugliandolo_kurchan_decimated(3, T, 25.0, 0.02, n=64)
    assert sol.t_breakdown == math.inf
    assert abs(np.interp(20.0, sol.t, sol.energy) + 0.5 / T) < 5e-3
    tau = np.linspace(0.6, 5.0, 10)
    c12 = sol.correlation(12.0 + tau, 12.0)
    c18 = sol.correlation(18.0 + tau, 18.0)
    chi18 = sol.integrated_response(18.0 + tau, 18.0)
    print(np.abs(c12 - c18).max(), np.abs(chi18 - (1 - c18) / T).max())
    np.testing.assert_allclose(c12, c18, atol=5e-3)
    np.testing.assert_allclose(chi18, (1 - c18) / T, atol=1e-2)
    # pointwise R = -d chi/d t_w against the uniform-grid R (dt = 0.05) for tau >= 3h = 1
    lag = np.linspace(1.0, 5.0, 9)
    R_ref = theory.two_time(theory.cugliandolo_kurchan(3, T, 25.0, 0.05), 18.0, 18.0 + lag)[1]
    np.testing.assert_allclose(sol.response(18.0 + lag, 18.0), R_ref, atol=1.5e-2)


def test_p3_below_td_ages_towards_threshold():
    """3-spin at T = 0.5 < T_d to t = 1000 (n = 128, dt = 0.04): the energy decreases
    monotonically towards the Cugliandolo-Kurchan (1993) asymptotic energy
    e_inf(0.5) = -0.8867 and stays above it (within 7e-3 at t = 1000); the correlation ages:
    at fixed lag C(t_w + 100, t_w) grows with t_w (0.50 -> 0.58 for t_w = 125 -> 500) while at
    fixed t/t_w = 2 it changes by less than 0.6 of that (approximate t/t_w scaling; C(2t_w, t_w)
    still drifts by ~0.025 per doubling of t_w, the order of the O(1/n) error at n = 128); and
    the integrated response leaves the FDT line, chi(4 t_w, t_w) < 0.9 (1 - C)/T."""
    T = 0.5
    e_inf = theory.threshold_energy(3, T)
    # independent reference (Cugliandolo & Kurchan 1993): the marginal q solves
    # p (p - 1) q^(p-2) (1 - q)^2 = 2 T^2 on q > (p-2)/(p-1); x = (p - 2)(1 - q) / q;
    # e_inf = -(1 / 2T) (1 - (1 - x) q^p)
    from scipy import optimize

    p = 3
    q = optimize.brentq(lambda q: p * (p - 1) * q ** (p - 2) * (1 - q) ** 2 - 2 * T**2, 0.5, 1)
    x = (p - 2) * (1 - q) / q
    assert e_inf == pytest.approx(-(1 - (1 - x) * q**p) / (2 * T), abs=1e-6)
    sol = theory.cugliandolo_kurchan_decimated(3, T, 1000.0, 0.04, n=128)
    assert sol.t_breakdown == math.inf
    late = sol.t >= 1.0
    assert np.all(np.diff(sol.energy[late]) <= 1e-6)
    e1000 = np.interp(1000.0, sol.t, sol.energy)
    print(f"e(1000) = {e1000:.5f}, e_inf = {e_inf:.5f}")
    assert 0 < e1000 - e_inf < 7e-3
    t_ws = np.array([125.0, 250.0, 500.0])
    c_ratio = sol.correlation(2 * t_ws, t_ws)
    c_lag = sol.correlation(t_ws + 100.0, t_ws)
    print("C(2t_w, t_w) =", c_ratio, "C(t_w + 100, t_w) =", c_lag)
    assert np.all(np.diff(c_lag) > 0)
    assert abs(c_ratio[-1] - c_ratio[0]) < 0.6 * (c_lag[-1] - c_lag[0])
    t_w = 200.0
    C, chi = sol.correlation(4 * t_w, t_w), sol.integrated_response(4 * t_w, t_w)
    assert chi < 0.9 * (1 - C) / T


def test_threshold_energy_limits():
    """e_inf(T) of Cugliandolo & Kurchan (1993): -sqrt(2(p-1)/p) at T = 0, continuous with
    the paramagnetic -1/(2T) at T_d, decreasing as T is lowered below T_d."""
    assert theory.threshold_energy(3) == pytest.approx(-2 / math.sqrt(3))
    assert theory.threshold_energy(4) == pytest.approx(-math.sqrt(1.5))
    for p in (3, 4):
        t_d = theory.dynamical_temperature(p)
        assert theory.threshold_energy(p, t_d * (1 - 1e-9)) == pytest.approx(-0.5 / t_d)
        temps = np.linspace(1e-3, t_d * 0.999, 7)
        e = [theory.threshold_energy(p, T) for T in temps]
        assert np.all(np.diff(e) > 0)
    assert theory.threshold_energy(3, 2.0) == -0.25


def test_breakdown_is_detected_and_reported():
    """With a tiny window (n = 8) the band copied by time-translation invariance fails once h
    exceeds the beta-relaxation time (module docstring, "Limits"): the run stops at a finite
    `t_breakdown` and returns only the windows before it, whose energy still decreases."""
    sol = theory.cugliandolo_kurchan_decimated(3, 0.5, 1e5, 0.02, n=8)
    assert np.isfinite(sol.t_breakdown)
    assert sol.t[-1] < sol.t_breakdown < 1e5
    assert np.all(np.diff(sol.energy[1:]) < 0)


def test_errors():
    """Eager configuration errors, and times outside the solution."""
    with pytest.raises(ConfigError, match="p must"):
        theory.cugliandolo_kurchan_decimated(1, 1.0, 1.0)
    with pytest.raises(ConfigError, match="T must"):
        theory.cugliandolo_kurchan_decimated(3, 0.0, 1.0)
    with pytest.raises(ConfigError, match="n"):
        theory.cugliandolo_kurchan_decimated(3, 1.0, 1.0, n=2)
    with pytest.raises(ConfigError, match="band"):
        theory.cugliandolo_kurchan_decimated(3, 1.0, 1.0, band=0)
    with pytest.raises(ConfigError, match="maxiter"):
        theory.cugliandolo_kurchan_decimated(3, 1.0, 1.0, maxiter=0)
    with pytest.raises(ConfigError, match="x64"):
        theory.cugliandolo_kurchan_decimated(3, 1.0, 1.0, dtype=np.float64)
    with pytest.raises(ConfigError, match="p >= 3"):
        theory.threshold_energy(2, 0.5)
    sol = theory.cugliandolo_kurchan_decimated(2, 1.0, 1.0, 0.05, n=8)
    with pytest.raises(ConfigError, match="t_w"):
        sol.correlation(0.5, 0.8)
