"""Replica theory of SK (`diffphys.theory`, SK 1975; de Almeida & Thouless 1978; Parisi 1980).

References: closed forms (annealed free energy, T -> 0 limits -sqrt(2/pi) and -1/(2 pi) of
the RS energy and entropy, the small-h AT law (1 - T_AT)^3 = 3 h^2 / 4), an independent
adaptive quadrature (scipy.integrate.quad) of the RS fixed point, thermodynamic consistency
e = d(beta f)/d beta, and the published Parisi ground-state energy -0.7631667 (Crisanti & Rizzo
2002).
"""

import math

import numpy as np
import pytest
from scipy import integrate

import diffphys
from diffphys import theory


def _quad_gauss(fn):
    val, _ = integrate.quad(
        lambda z: fn(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
        -12,
        12,
        limit=400,
        points=[0.0],
    )
    return val


def test_annealed_free_energy_and_energy():
    """Reference: f = -T ln(2 cosh(h/T)) - 1/(4T) and e = d(beta f)/d beta = -beta/2 - h tanh(beta h)
    (annealed average of Z over J_ij ~ N(0, 1/N), N -> ∞), checked by a central difference."""
    T, h = 1.7, 0.4
    assert theory.sk_annealed_free_energy(T, h) == pytest.approx(
        -T * math.log(2 * math.cosh(h / T)) - 1 / (4 * T), rel=1e-12
    )
    b, d = 1 / T, 1e-5
    bf = lambda beta: beta * theory.sk_annealed_free_energy(1 / beta, h)
    assert theory.sk_annealed_energy(T, h) == pytest.approx(
        (bf(b + d) - bf(b - d)) / (2 * d), abs=1e-7
    )
    np.testing.assert_allclose(theory.sk_annealed_energy(np.array([2.0, 4.0])), [-0.25, -0.125])


def test_rs_overlap_paramagnet_and_fixed_point():
    """Reference: q = 0 for T >= 1 at h = 0 (SK 1975); q ~ 1 - T just below T_c; and the
    returned q solves q = E_z tanh^2(beta (sqrt(q) z + h)) evaluated by adaptive quadrature."""
    np.testing.assert_array_equal(theory.sk_rs_overlap(np.array([1.0, 1.2, 3.0])), 0.0)
    assert theory.sk_rs_overlap(0.99) == pytest.approx(0.01, rel=0.02)
    for T, h in [(0.5, 0.0), (0.8, 0.3), (1.5, 0.5), (0.2, 1.0)]:
        q = theory.sk_rs_overlap(T, h)
        assert 0 < q < 1
        rhs = _quad_gauss(lambda z: math.tanh((math.sqrt(q) * z + h) / T) ** 2)
        assert q == pytest.approx(rhs, abs=1e-7), (T, h)


def test_rs_energy_consistency():
    """References: RS = annealed energy for T > 1 at h = 0; e = d(beta f_RS)/d beta by central
    differences (the RS free energy is stationary in q, so only the explicit beta dependence
    counts)."""
    assert theory.sk_rs_energy(1.6) == pytest.approx(theory.sk_annealed_energy(1.6), rel=1e-10)
    assert theory.sk_rs_free_energy(1.6) == pytest.approx(
        theory.sk_annealed_free_energy(1.6), rel=1e-10
    )
    for T, h in [(0.6, 0.3), (0.4, 0.0)]:
        b, d = 1 / T, 1e-4
        bf = lambda beta: beta * theory.sk_rs_free_energy(1 / beta, h)
        de = (bf(b + d) - bf(b - d)) / (2 * d)
        assert theory.sk_rs_energy(T, h) == pytest.approx(de, abs=1e-6), (T, h)


def test_rs_zero_temperature_limits():
    """References: e_RS(T -> 0, h = 0) = -sqrt(2/pi) = -0.79788 and s_RS(T -> 0) = -1/(2 pi)
    (SK 1975); e_RS(0, h) = -E|z + h|; the full-RSB value -0.7631667 (Parisi 1980, Crisanti &
    Rizzo 2002) lies above the RS one. The T -> 0 approach is linear in T, so the entropy is
    extrapolated linearly from T = 0.01, 0.02."""
    assert theory.SK_RS_GROUND_STATE_ENERGY == pytest.approx(-math.sqrt(2 / math.pi))
    assert theory.sk_rs_ground_state_energy(0.0) == pytest.approx(-0.7978845608, rel=1e-9)
    assert theory.sk_rs_energy(0.01) == pytest.approx(-math.sqrt(2 / math.pi), abs=2e-4)
    s1, s2 = theory.sk_rs_entropy(np.array([0.01, 0.02]))
    assert 2 * s1 - s2 == pytest.approx(-1 / (2 * math.pi), abs=2e-4)
    h = 0.7
    ref = _quad_gauss(lambda z: abs(z + h))
    assert theory.sk_rs_ground_state_energy(h) == pytest.approx(-ref, rel=1e-8)
    assert theory.sk_rs_energy(0.01, h) == pytest.approx(-ref, abs=2e-4)
    assert theory.SK_GROUND_STATE_ENERGY > theory.SK_RS_GROUND_STATE_ENERGY


def test_at_line():
    """References: T_AT(0) = 1 and (1 - T_AT)^3 / h^2 -> 3/4 as h -> 0 (de Almeida & Thouless
    1978), approached with O(1 - T) corrections (2% at h = 1e-3); the replicon is positive
    above the line and negative below it; T_AT decreases with h."""
    assert theory.sk_at_temperature(0.0) == 1.0
    T = theory.sk_at_temperature(1e-3)
    assert (1 - T) ** 3 / 1e-6 == pytest.approx(0.75, rel=0.02)
    T_line = theory.sk_at_temperature(np.array([0.1, 0.4]))
    assert 1 > T_line[0] > T_line[1] > 0
    assert theory.sk_replicon(T_line[1] + 0.05, 0.4) > 0 > theory.sk_replicon(T_line[1] - 0.05, 0.4)
    assert theory.sk_replicon(1.0 + 1e-3, 0.0) > 0 > theory.sk_replicon(0.9, 0.0)


def test_finite_size_fit_recovers_parameters():
    """Reference: synthetic e_N = e_inf + a N^{-2/3} (Boettcher, cond-mat/0407130) with known
    parameters, exact and with Gaussian noise of known size (recovered within 4 sigma)."""
    N = np.array([32, 64, 128, 256, 512])
    e = theory.sk_finite_size_energy(N, e_inf=-0.7632, a=0.7)
    fit = theory.sk_fit_finite_size(N, e, err=np.full(5, 1e-3))
    assert fit["e_inf"] == pytest.approx(-0.7632, abs=1e-10)
    assert fit["a"] == pytest.approx(0.7, abs=1e-8)
    assert fit["chi2"] == pytest.approx(0.0, abs=1e-10) and fit["dof"] == 3
    rng = np.random.default_rng(0)
    err = np.full(5, 2e-3)
    noisy = e + rng.normal(0, 2e-3, 5)
    fit = theory.sk_fit_finite_size(N, noisy, err)
    assert abs(fit["e_inf"] + 0.7632) < 4 * fit["e_inf_err"]
    assert 1e-4 < fit["e_inf_err"] < 1e-2
    with pytest.raises(diffphys.ConfigError):
        theory.sk_fit_finite_size([32], [-0.7])
    with pytest.raises(diffphys.ConfigError):
        theory.sk_rs_overlap(-1.0)
