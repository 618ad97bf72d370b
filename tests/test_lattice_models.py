"""Lattice models: energies against explicit loops, local energies against energy differences,
and exact partition functions (1D ring closed form; Potts q = 2 equals Ising at J/2)."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import ConfigError, ShapeError, exact, models, sampling


def _loop_ising_energy(s, J, h):
    """E = -sum_x sum_a J[a,x] s_x s_{x+e_a} - sum_x h_x s_x, by explicit loops."""
    shape = s.shape
    e = 0.0
    for x in itertools.product(*[range(n) for n in shape]):
        for a in range(len(shape)):
            y = list(x)
            y[a] = (y[a] + 1) % shape[a]
            e -= J[(a, *x)] * s[x] * s[tuple(y)]
        e -= h[x] * s[x]
    return e


@pytest.mark.parametrize("lattice", [(3, 4), (2, 3, 2), (5,)])
def test_ising_energy_matches_loops(key, lattice):
    """Reference: the definition of the Ising Hamiltonian evaluated by explicit loops."""
    kj, kh, ks = jax.random.split(key, 3)
    J = jax.random.normal(kj, (len(lattice), *lattice))
    h = jax.random.normal(kh, lattice)
    m = models.Ising(lattice, J=J, h=h)
    s = m.random_state(key=ks)
    ref = _loop_ising_energy(np.asarray(s), np.asarray(J), np.asarray(h))
    np.testing.assert_allclose(float(m.energy(s)), ref, rtol=1e-5, atol=1e-5)


def _check_local_energies(m, s):
    """site_energies and local_energies must give the energy change of every single-site move."""
    flat = np.asarray(s).reshape(-1)
    le = np.asarray(m.local_energies(s)).reshape(m.n_sites, m.q)
    for i in range(m.n_sites):
        se = np.asarray(m.site_energies(s, jnp.int32(i)))
        np.testing.assert_allclose(se, le[i], rtol=1e-5, atol=1e-5)
        e = []
        for v in m.spin_values:
            t = flat.copy()
            t[i] = v
            e.append(float(m.energy(jnp.asarray(t.reshape(m.shape)))))
        np.testing.assert_allclose(np.diff(se), np.diff(e), rtol=1e-4, atol=1e-4)


def test_ising_local_energies_are_energy_differences(key):
    kj, kh, ks = jax.random.split(key, 3)
    lattice = (4, 3)
    m = models.Ising(
        lattice, J=jax.random.normal(kj, (2, *lattice)), h=jax.random.normal(kh, lattice)
    )
    _check_local_energies(m, m.random_state(key=ks))


def test_potts_local_energies_are_energy_differences(key):
    kj, kh, ks = jax.random.split(key, 3)
    lattice = (3, 4)
    m = models.Potts(
        lattice, q=3, J=jax.random.normal(kj, (2, *lattice)), h=jax.random.normal(kh, (*lattice, 3))
    )
    _check_local_energies(m, m.random_state(key=ks))


def test_ising_ring_partition_function():
    """Reference: 1D periodic ring, Z = (2 cosh bJ)^N + (2 sinh bJ)^N (transfer matrix)."""
    N, J, beta = 10, 0.7, 0.9
    m = models.Ising((N,), J=J)
    ref = math.log((2 * math.cosh(beta * J)) ** N + (2 * math.sinh(beta * J)) ** N)
    np.testing.assert_allclose(float(exact.log_partition(m, beta)), ref, rtol=1e-5)


def test_potts_q2_is_ising_at_half_coupling(key):
    """Reference: delta(s, s') = (1 + sigma sigma')/2, so log Z_Potts(J) = log Z_Ising(J/2)
    + beta J n_bonds / 2."""
    lattice = (3, 3)
    J = jax.random.uniform(key, (2, *lattice), minval=0.2, maxval=1.5)
    beta = 0.8
    lz_potts = exact.log_partition(models.Potts(lattice, q=2, J=J), beta)
    lz_ising = exact.log_partition(models.Ising(lattice, J=J / 2), beta)
    np.testing.assert_allclose(float(lz_potts), float(lz_ising + beta * jnp.sum(J) / 2), rtol=1e-5)


def test_enumeration_averages_match_log_z_derivative():
    """<E> = -d log Z / d beta, checked with autodiff through the enumeration."""
    m = models.Ising((3, 3), J=1.0, h=0.1)
    beta = 0.35
    ex = exact.enumerate_averages(m, beta)
    np.testing.assert_allclose(
        float(ex.energy), float(-jax.grad(lambda b: exact.log_partition(m, b))(beta)), rtol=1e-4
    )


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ConfigError, match="q >= 2"):
        models.Potts((4, 4), q=1)
    with pytest.raises(ShapeError, match="one coupling per bond"):
        models.Ising((4, 4), J=jnp.ones((3, 4)))
    with pytest.raises(ConfigError, match=">= 2"):
        models.Ising((1, 4))
    m = models.Ising((5, 4))
    alg = sampling.checkerboard(0.5)
    with pytest.raises(ShapeError, match="even linear size"):
        alg.init(jnp.ones((5, 4), jnp.int8), m)
    with pytest.raises(ShapeError, match="expects a configuration of shape"):
        sampling.metropolis(0.5).init(jnp.ones((4, 4), jnp.int8), m)
    with pytest.raises(ConfigError, match="positive"):
        sampling.metropolis(-1.0)
    ok = models.Ising((4, 4))
    alg = sampling.metropolis()
    state = alg.init(jnp.ones((4, 4), jnp.int8), ok)
    with pytest.raises(ConfigError, match="beta must be positive"):
        sampling.run(jax.random.key(0), alg, state, ok, 10, beta=0.0)
    with pytest.raises(ConfigError, match="beta must be positive"):
        sampling.run(
            jax.random.key(0), alg, state, ok, 2, schedule={"beta": jnp.asarray([1.0, -1.0])}
        )
    with pytest.raises(ConfigError, match="max_states"):
        exact.log_partition(models.Ising((5, 5)), 1.0)


def test_edwards_anderson_and_random_field_constructors():
    """`Ising.edwards_anderson` draws one coupling per bond from the stated law (mean 0 and
    variance 1 within 5 standard errors over 2 x 64 x 64 bonds; exactly ±1 for "pm1"), and
    equals `Ising(lattice, J=random_bond_couplings(key, lattice))`; `Ising.random_field` has
    fields of standard deviation sigma; bad arguments are a ConfigError."""
    import jax

    from diffphys import ConfigError
    from diffphys.models import Ising, random_bond_couplings

    key = jax.random.key(5)
    glass = Ising.edwards_anderson(key, (64, 64))
    J = np.asarray(glass.J, np.float64)
    assert J.shape == (2, 64, 64)
    se = 1 / np.sqrt(J.size)
    assert abs(J.mean()) < 5 * se and abs(J.var() - 1) < 5 * np.sqrt(2) * se
    np.testing.assert_array_equal(
        glass.J, Ising((64, 64), J=random_bond_couplings(key, (64, 64))).J
    )
    pm = np.asarray(Ising.edwards_anderson(key, (8, 8, 8), couplings="pm1").J)
    assert set(np.unique(pm)) == {-1.0, 1.0}
    rf = Ising.random_field(key, (64, 64), sigma=0.5)
    assert abs(float(np.std(np.asarray(rf.h))) - 0.5) < 5 * 0.5 / np.sqrt(2 * 64 * 64)
    np.testing.assert_array_equal(np.asarray(rf.J), 1.0)
    with pytest.raises(ConfigError, match="couplings must be"):
        Ising.edwards_anderson(key, (4, 4), couplings="uniform")
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        Ising.random_field(key, (4, 4), sigma=-0.1)
