"""The bit-packed checkerboard Metropolis kernel for the uniform Ising model.

References: exact enumeration (`diffphys.exact.enumerate_averages`) on small tori, the generic
`diffphys.sampling.checkerboard` kernel, and Onsager's (1944) exact energy of the infinite
square lattice. Statistical errors are the standard error over independent chains (each chain's
time average is one independent sample); tolerances are 5 of those sigmas.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import ConfigError, ShapeError, exact, sampling, theory
from diffphys.models import Ising, Potts, ising_checkerboard_metropolis
from diffphys.models._ising_fast import pack_spins, unpack_spins

N_SIGMA = 5.0


def _chain_means(key, alg, model, beta, n_chains, n_sweeps, burn, *, ordered=False):
    """Per-chain time averages of the energy per spin and m^2 after `burn` sweeps."""
    n = model.n_sites

    def one(k):
        k_init, k_run = jax.random.split(k)
        if ordered:
            x0 = jnp.ones(model.shape, jnp.int8)
        else:
            x0 = model.random_state(key=k_init)
        state = alg.init(x0, model)

        def record(s):
            return s.energy / n, jnp.mean(s.x.astype(jnp.float32)) ** 2

        _, trace = sampling.run(
            k_run, alg, state, model, n_sweeps, record=record, every=1, beta=beta
        )
        e, m2 = trace["record"]
        return jnp.mean(e[burn:]), jnp.mean(m2[burn:])

    e, m2 = jax.jit(jax.vmap(one))(jax.random.split(key, n_chains))
    return np.asarray(e, np.float64), np.asarray(m2, np.float64)


def _energy64(x, J):
    """E = -J sum_<ij> s_i s_j in float64 (each bond x -> x + e_a once, periodic)."""
    s = np.asarray(x, np.float64)
    return -J * sum(np.sum(s * np.roll(s, -1, axis=a)) for a in range(s.ndim))


def _mean_se(x):
    return x.mean(), x.std(ddof=1) / np.sqrt(x.size)


@pytest.mark.parametrize(
    "lattice",
    [(4, 4), (2, 2), (6, 8), (64, 64), (8, 128), (2, 4, 6), (4, 4, 4)],
)
def test_packing_roundtrip_and_exact_energy(key, lattice):
    """Packing is a bijection and the integer bond bookkeeping equals `Ising.energy` exactly
    (reference: the energy recomputed in float64 from the unpacked spins every sweep)."""
    J = -0.7 if len(lattice) == 3 else 1.3
    model = Ising(lattice, J=J)
    x = model.random_state(key=key)
    np.testing.assert_array_equal(unpack_spins(pack_spins(x, lattice), lattice), x)
    alg = ising_checkerboard_metropolis(0.5, bits=3)
    state = alg.init(x, model)
    step = jax.jit(alg.step)
    for t in range(4):
        state, info = step(jax.random.fold_in(key, t), state, model)
        np.testing.assert_allclose(state.energy, _energy64(state.x, J), rtol=1e-6)
        assert state.x.dtype == jnp.int8 and state.x.shape == lattice
        assert 0.0 <= float(info.acceptance_rate) <= 1.0


@pytest.mark.parametrize("bits", [1, 8])
def test_matches_enumeration_4x4(key, bits):
    """Energy and m^2 on a 4x4 torus at T = 1.7 and T = 3.3 equal exact enumeration
    (`exact.enumerate_averages`, 2^16 states) within 5 sigma over 512 independent chains.
    `bits=1` sends half the undecided lanes through the exact 64-bit fallback."""
    model = Ising((4, 4))
    alg = ising_checkerboard_metropolis(bits=bits)
    for T in (1.7, 3.3):
        beta = 1.0 / T
        ref = exact.enumerate_averages(
            model, beta, {"m2": lambda x: jnp.mean(x.astype(jnp.float32)) ** 2}
        )
        e, m2 = _chain_means(key, alg, model, jnp.float32(beta), 512, 250, 50)
        for name, samples, exact_value in (
            ("energy", e, float(ref.energy) / model.n_sites),
            ("m2", m2, float(ref.averages["m2"])),
        ):
            mean, se = _mean_se(samples)
            assert abs(mean - exact_value) < N_SIGMA * se, (T, name, mean, se, exact_value)


def test_matches_enumeration_3d_antiferromagnet(key):
    """A 2x2x4 antiferromagnet (J = -1, 16 spins, 3D classes c = 0, 1, 2) at T = 2.5: energy
    and m^2 equal exact enumeration within 5 sigma over 512 chains."""
    model = Ising((2, 2, 4), J=-1.0)
    beta = 1.0 / 2.5
    ref = exact.enumerate_averages(
        model, beta, {"m2": lambda x: jnp.mean(x.astype(jnp.float32)) ** 2}
    )
    e, m2 = _chain_means(key, ising_checkerboard_metropolis(), model, beta, 512, 250, 50)
    for samples, exact_value in (
        (e, float(ref.energy) / model.n_sites),
        (m2, float(ref.averages["m2"])),
    ):
        mean, se = _mean_se(samples)
        assert abs(mean - exact_value) < N_SIGMA * se, (mean, se, exact_value)


def test_agrees_with_generic_checkerboard_16x16(key):
    """Mean energy per spin on a 16x16 torus at T = 2.5 equals that of the generic
    `sampling.checkerboard` kernel within 5 combined sigma (64 chains each)."""
    model = Ising((16, 16))
    beta = 1.0 / 2.5
    k1, k2 = jax.random.split(key)
    fast, _ = _chain_means(k1, ising_checkerboard_metropolis(), model, beta, 64, 400, 100)
    generic, _ = _chain_means(k2, sampling.checkerboard(), model, beta, 64, 400, 100)
    (a, sa), (b, sb) = _mean_se(fast), _mean_se(generic)
    assert abs(a - b) < N_SIGMA * np.hypot(sa, sb), (a, sa, b, sb)


@pytest.mark.parametrize("T, ordered", [(1.8, True), (3.2, False)])
def test_onsager_energy_L64(key, T, ordered):
    """Energy per spin at L = 64 equals Onsager's infinite-lattice value (`theory.onsager_energy`)
    within 5 sigma over 16 chains; away from T_c = 2.269 the finite-size correction is
    exponentially small. The low-T chains start ordered (a quench could freeze stripes)."""
    model = Ising((64, 64))
    e, _ = _chain_means(
        key, ising_checkerboard_metropolis(), model, 1.0 / T, 16, 400, 100, ordered=ordered
    )
    mean, se = _mean_se(e)
    ref = float(theory.onsager_energy(T))
    assert abs(mean - ref) < N_SIGMA * se, (mean, se, ref)


def test_rbg_key(key):
    """The kernel accepts any key type: with an `rbg` key the energy bookkeeping stays exact
    (reference: `Ising.energy`)."""
    model = Ising((32, 64))
    alg = ising_checkerboard_metropolis(0.44)
    state = alg.init(model.random_state(key=key), model)
    state, _ = sampling.run(jax.random.key(3, impl="rbg"), alg, state, model, 5)
    np.testing.assert_allclose(state.energy, _energy64(state.x, 1.0), rtol=1e-6)


def test_errors():
    """Clear errors for what the kernel cannot do, pointing at the generic sampler."""
    alg = ising_checkerboard_metropolis(0.5)
    with pytest.raises(ShapeError, match="even"):
        alg.init(jnp.ones((5, 4), jnp.int8), Ising((5, 4)))
    with pytest.raises(ConfigError, match="sampling.checkerboard"):
        alg.init(jnp.ones((4, 4), jnp.int8), Ising((4, 4), J=jnp.asarray([1.0, 0.5])))
    with pytest.raises(ConfigError, match="sampling.checkerboard"):
        alg.init(jnp.ones((4, 4), jnp.int8), Ising((4, 4), h=0.1))
    with pytest.raises(ConfigError, match="sampling.checkerboard"):
        alg.init(jnp.zeros((4, 4), jnp.int8), Potts((4, 4), q=3))
    with pytest.raises(ShapeError):
        alg.init(jnp.ones((4, 6), jnp.int8), Ising((4, 4)))
    with pytest.raises(ConfigError, match="bits"):
        ising_checkerboard_metropolis(bits=0)
    with pytest.raises(ConfigError, match="beta"):
        ising_checkerboard_metropolis(beta=-1.0)
