"""The 2D Ising transfer matrix against brute-force enumeration and Onsager's solution.

References: `diffphys.exact` enumeration (every configuration summed, float64) for log Z and
for the moments and cumulants that the derivatives of log Z must reproduce; Onsager (1944)
for the free energy of the infinite lattice.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import ConfigError, ShapeError
from diffphys.exact import (
    all_configurations,
    ising_critical_coupling,
    ising_transfer_hvp,
    ising_transfer_log_partition,
    ising_transfer_log_z,
    log_partition,
    probabilities,
)
from diffphys.models import Ising
from diffphys.theory import onsager_free_energy


def _random_couplings(key, shape):
    kj, kh = jax.random.split(key)
    J = jax.random.normal(kj, (2, *shape), jnp.float64)
    h = 0.5 * jax.random.normal(kh, shape, jnp.float64)
    return J, h


def _statistics(model):
    """Sufficient statistics of every configuration: bond products s_x s_{x+e_a}, then spins.

    Ordered like `ravel_pytree((J, h))`, so they pair with derivatives with respect to (J, h).
    """
    s = all_configurations(model).astype(jnp.float64)  # (n_states, *lattice)
    bonds = jnp.stack([s * jnp.roll(s, -1, axis=1 + a) for a in range(2)], axis=1)
    n = s.shape[0]
    return jnp.concatenate([bonds.reshape(n, -1), s.reshape(n, -1)], axis=1)


def _flat_log_z(shape, beta):
    n_bonds = 2 * shape[0] * shape[1]

    def f(theta):
        J = theta[:n_bonds].reshape(2, *shape)
        h = theta[n_bonds:].reshape(shape)
        return ising_transfer_log_z(J, h, beta)

    return f


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (4, 4), (3, 5)])
def test_log_z_matches_enumeration(key, shape):
    """log Z equals the enumerated log-sum-exp (random per-bond J, per-site h, beta = 0.7)
    to 1e-12 relative, on square and rectangular tori (L = 2 has doubled bonds)."""
    with jax.enable_x64(True):
        J, h = _random_couplings(key, shape)
        model = Ising(shape, J=J, h=h, dtype=jnp.float64)
        exact = log_partition(model, 0.7)
        tm = ising_transfer_log_z(J, h, 0.7)
        np.testing.assert_allclose(tm, exact, rtol=1e-12)
        np.testing.assert_allclose(ising_transfer_log_partition(model, 0.7), exact, rtol=1e-12)


def test_hessian_vector_product_is_enumerated_covariance(key):
    """`ising_transfer_hvp` (forward over reverse) against enumeration, float64, L = 3 with
    random per-bond J and per-site h at beta = 0.6: along beta, d^2 lnZ/dbeta^2 = Var E and
    d^2 lnZ/dbeta d(J, h) = <phi> - beta Cov(phi, E); along a random v = (dJ, dh),
    beta^2 Cov(phi) v and, in the beta component, (<phi> - beta Cov(phi, E)) . v (all to
    1e-10), with phi = (s_x s_{x+e_a}, s_x); a tangent of the wrong shape is a ShapeError."""
    L, beta = 3, 0.6
    n_bonds = 2 * L * L
    with jax.enable_x64(True):
        kc, kv = jax.random.split(key)
        J, h = _random_couplings(kc, (L, L))
        model = Ising((L, L), J=J, h=h, dtype=jnp.float64)
        p = probabilities(model, beta)
        phi = _statistics(model)
        theta = jnp.concatenate([J.reshape(-1), h.reshape(-1)])
        energy = -(phi @ theta)
        mean, e_mean = p @ phi, p @ energy
        dphi, de = phi - mean, energy - e_mean
        cov = (dphi * p[:, None]).T @ dphi
        cov_e = (dphi * (p * de)[:, None]).sum(0)  # Cov(phi, E)

        zJ, zh = jnp.zeros_like(J), jnp.zeros_like(h)
        HJ, Hh, Hb = ising_transfer_hvp(J, h, beta, tangents=(zJ, zh, 1.0))
        np.testing.assert_allclose(Hb, p @ de**2, rtol=1e-10)
        ref = mean - beta * cov_e
        np.testing.assert_allclose(HJ.reshape(-1), ref[:n_bonds], atol=1e-10)
        np.testing.assert_allclose(Hh.reshape(-1), ref[n_bonds:], atol=1e-10)

        v = jax.random.normal(kv, theta.shape, jnp.float64)
        dJ, dh = v[:n_bonds].reshape(J.shape), v[n_bonds:].reshape(h.shape)
        HJ, Hh, Hb = ising_transfer_hvp(J, h, beta, tangents=(dJ, dh, 0.0))
        ref = beta**2 * cov @ v
        np.testing.assert_allclose(HJ.reshape(-1), ref[:n_bonds], atol=1e-10)
        np.testing.assert_allclose(Hh.reshape(-1), ref[n_bonds:], atol=1e-10)
        np.testing.assert_allclose(Hb, (mean - beta * cov_e) @ v, rtol=1e-10)
        with pytest.raises(ShapeError, match="tangent of J"):
            ising_transfer_hvp(J, h, beta, tangents=(jnp.zeros((2, 2, 2)), zh, 0.0))


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
@pytest.mark.parametrize("L", [3, 4])
def test_derivatives_are_enumerated_cumulants(key, L):
    """Derivatives of ln Z against enumerated Boltzmann cumulants (float64, random per-bond J
    and per-site h), with phi = (s_x s_{x+e_a}, s_x) the sufficient statistics:

    - d lnZ/dJ = beta <s_x s_{x+e_a}>, d lnZ/dh = beta <s_x>, d lnZ/dbeta = -<E> (1e-10);
    - the Hessian in the natural parameters (beta J, beta h) is Cov(phi) (1e-10);
    - the third derivative is the third cumulant <dphi_i dphi_j dphi_k>: the full tensor at
      L = 3 (27 parameters), its contraction with a random direction (jvp of the Hessian) at
      L = 4 (48 parameters) (1e-9).
    """
    with jax.enable_x64(True):
        kc, kv = jax.random.split(key)
        beta = 0.6
        n_bonds = 2 * L * L
        J, h = _random_couplings(kc, (L, L))
        model = Ising((L, L), J=J, h=h, dtype=jnp.float64)
        p = probabilities(model, beta)
        phi = _statistics(model)
        mean = p @ phi

        gJ, gh, gb = jax.grad(ising_transfer_log_z, argnums=(0, 1, 2))(J, h, beta)
        np.testing.assert_allclose(gJ.reshape(-1), beta * mean[:n_bonds], atol=1e-10)
        np.testing.assert_allclose(gh.reshape(-1), beta * mean[n_bonds:], atol=1e-10)
        energy = -(phi[:, :n_bonds] @ J.reshape(-1) + phi[:, n_bonds:] @ h.reshape(-1))
        np.testing.assert_allclose(gb, -(p @ energy), rtol=1e-10)
        g_model = jax.grad(ising_transfer_log_partition)(model, beta)
        np.testing.assert_allclose(g_model.J, gJ, atol=1e-12)

        # natural parameters theta = beta (J, h): derivatives in theta are plain cumulants
        f = _flat_log_z((L, L), 1.0)
        theta = beta * jnp.concatenate([J.reshape(-1), h.reshape(-1)])
        dphi = phi - mean
        cov = (dphi * p[:, None]).T @ dphi
        hess = jax.hessian(f)
        np.testing.assert_allclose(hess(theta), cov, atol=1e-10)
        if L == 3:
            kappa3 = jnp.einsum("s,si,sj,sk->ijk", p, dphi, dphi, dphi)
            np.testing.assert_allclose(jax.jacfwd(hess)(theta), kappa3, atol=1e-9)
        else:
            v = jax.random.normal(kv, theta.shape, jnp.float64)
            kappa3_v = jnp.einsum("s,si,sj,s->ij", p, dphi, dphi, dphi @ v)
            np.testing.assert_allclose(jax.jvp(hess, (theta,), (v,))[1], kappa3_v, atol=1e-9)


def test_uniform_log_z_approaches_onsager():
    """ln Z / L^2 of the uniform ferromagnet (J = 1) tends to Onsager's -beta f.

    Away from T_c the torus corrections decay like exp(-L/xi): at T = 4 the error must fall
    below 1e-5 at L = 10 (measured 3e-6); at T = 1.5 (ordered, two ground-state sectors)
    (ln Z - ln 2)/L^2 must be within 1e-8 at L = 10 (measured 1e-9). At T_c the correction is
    the universal torus term, ln Z = -beta f L^2 + c + O(L^-2) with
    c = ln((|th2| + |th3| + |th4|)/(2|eta|)) at tau = i, = 0.6399 for the critical Ising
    model (Ferdinand & Fisher 1969; Di Francesco, Mathieu, Senechal, Conformal Field Theory,
    ch. 12): the remainder must shrink monotonically over L = 4, 6, 8, 10 and be within 0.002
    of c at L = 10 (measured 0.6408).
    """
    with jax.enable_x64(True):
        for T, shift, tol in ((4.0, 0.0, 1e-5), (1.5, np.log(2.0), 1e-8)):
            f_inf = -onsager_free_energy(T).item() / T
            errors = []
            for L in (6, 10):
                val = float(ising_transfer_log_z(jnp.ones((2, L, L)), 0.0, 1.0 / T))
                errors.append(abs((val - shift) / L**2 - f_inf))
            assert errors[1] < tol and errors[1] < errors[0], (T, errors)
        K_c = ising_critical_coupling()
        f_c = -onsager_free_energy(1.0 / K_c).item() * K_c
        c_torus = 0.6399
        gaps = []
        for L in (4, 6, 8, 10):
            val = float(ising_transfer_log_z(jnp.full((2, L, L), K_c)))
            gaps.append(abs(val - f_c * L**2 - c_torus))
        assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
        assert gaps[-1] < 0.002, gaps


def test_extreme_couplings_do_not_overflow():
    """In float32 at beta J = 40 on a 6x6 torus (Z ~ e^2880), the two ground states give
    ln Z = 2 N beta J + ln 2 (excitations cost e^{-8 beta J}); the running normalisation keeps
    it finite. Strong random fields likewise: ln Z = sum |beta h| + bonds of the aligned state."""
    L = 6
    val = ising_transfer_log_z(jnp.ones((2, L, L), jnp.float32), 0.0, 40.0)
    assert val.dtype == jnp.float32
    np.testing.assert_allclose(val, 2 * L * L * 40.0 + np.log(2.0), rtol=1e-6)
    h = jnp.where(jnp.arange(L * L).reshape(L, L) % 2 == 0, 1.0, -1.0).astype(jnp.float32)
    val = ising_transfer_log_z(jnp.zeros((2, L, L), jnp.float32), 300.0 * h, 1.0)
    np.testing.assert_allclose(val, 300.0 * L * L, rtol=1e-6)


def test_bad_input_is_rejected():
    """Shapes and sizes that cannot describe a 2D torus raise with a message."""
    with pytest.raises(ShapeError, match=r"\(2, L0, L1\)"):
        ising_transfer_log_z(jnp.ones((3, 3)))
    with pytest.raises(ShapeError, match="h must be"):
        ising_transfer_log_z(jnp.ones((2, 3, 3)), jnp.ones((3, 4)))
    with pytest.raises(ConfigError, match="limit"):
        ising_transfer_log_z(jnp.ones((2, 3, 17)))
    with pytest.raises(ConfigError, match="2D"):
        ising_transfer_log_partition(Ising((2, 2, 2)))
