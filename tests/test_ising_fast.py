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


def _chain_means(key, alg, model, betas, n_chains, n_sweeps, burn, *, ordered=False):
    """Per-chain time averages of the energy per spin and m^2 after `burn` sweeps, for each
    inverse temperature in `betas` (one compilation): arrays of shape (len(betas), n_chains)."""
    n = model.n_sites

    def one(k, beta):
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

    betas = jnp.asarray(betas, jnp.float32)
    keys = jax.random.split(key, (betas.shape[0], n_chains))
    per_beta = jax.vmap(one, in_axes=(0, None))
    e, m2 = jax.jit(jax.vmap(per_beta))(keys, betas)
    return np.asarray(e, np.float64), np.asarray(m2, np.float64)


def _energy64(x, J):
    """E = -J sum_<ij> s_i s_j in float64 (each bond x -> x + e_a once, periodic)."""
    s = np.asarray(x, np.float64)
    return -J * sum(np.sum(s * np.roll(s, -1, axis=a)) for a in range(s.ndim))


def _mean_se(x):
    return x.mean(), x.std(ddof=1) / np.sqrt(x.size)


@pytest.mark.parametrize(
    "lattice, impl",
    [
        ((6, 8), "threefry2x32"),
        pytest.param((64, 128), "rbg", marks=pytest.mark.slow),  # CI budget
        pytest.param((2, 4, 6), "threefry2x32", marks=pytest.mark.slow),
    ],
)
def test_packing_roundtrip_and_exact_energy(key, lattice, impl):
    """Packing is a bijection and the integer bond bookkeeping equals the energy exactly, with
    any key type (threefry, rbg)
    (reference: the energy recomputed in float64 from the unpacked spins every sweep)."""
    J = -0.7 if len(lattice) == 3 else 1.3
    model = Ising(lattice, J=J)
    x = model.random_state(key=key)
    np.testing.assert_array_equal(unpack_spins(pack_spins(x, lattice), lattice), x)
    alg = ising_checkerboard_metropolis(0.5, bits=3)
    state = alg.init(x, model)
    step = jax.jit(alg.step)
    for t in range(4):
        state, info = step(jax.random.key(t, impl=impl), state, model)
        np.testing.assert_allclose(state.energy, _energy64(state.x, J), rtol=1e-6)
        assert state.x.dtype == jnp.int8 and state.x.shape == lattice
        assert 0.0 <= float(info.acceptance_rate) <= 1.0


@pytest.mark.parametrize("bits", [1, pytest.param(8, marks=pytest.mark.slow)])  # CI budget
def test_matches_enumeration_4x4(key, bits):
    """Energy and m^2 on a 4x4 torus at T = 1.7 and T = 3.3 equal exact enumeration
    (`exact.enumerate_averages`, 2^16 states) within 5 sigma over 512 independent chains.
    `bits=1` sends half the undecided lanes through the exact 64-bit fallback, one packed word
    per compaction round (`fallback_capacity=1`), so every loop of the fallback is exercised."""
    model = Ising((4, 4))
    temperatures = (1.7, 3.3)
    e, m2 = _chain_means(
        key,
        ising_checkerboard_metropolis(bits=bits, fallback_capacity=1 if bits == 1 else None),
        model,
        [1 / T for T in temperatures],
        512,
        250,
        50,
    )
    for i, T in enumerate(temperatures):
        ref = exact.enumerate_averages(
            model, 1.0 / T, {"m2": lambda x: jnp.mean(x.astype(jnp.float32)) ** 2}
        )
        for name, samples, exact_value in (
            ("energy", e[i], float(ref.energy) / model.n_sites),
            ("m2", m2[i], float(ref.averages["m2"])),
        ):
            mean, se = _mean_se(samples)
            assert abs(mean - exact_value) < N_SIGMA * se, (T, name, mean, se, exact_value)


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_matches_enumeration_3d_antiferromagnet(key):
    """A 2x2x4 antiferromagnet (J = -1, 16 spins, 3D classes c = 0, 1, 2) at T = 2.5: energy
    and m^2 equal exact enumeration within 5 sigma over 512 chains."""
    model = Ising((2, 2, 4), J=-1.0)
    beta = 1.0 / 2.5
    ref = exact.enumerate_averages(
        model, beta, {"m2": lambda x: jnp.mean(x.astype(jnp.float32)) ** 2}
    )
    e, m2 = _chain_means(key, ising_checkerboard_metropolis(), model, [beta], 512, 250, 50)
    for samples, exact_value in (
        (e[0], float(ref.energy) / model.n_sites),
        (m2[0], float(ref.averages["m2"])),
    ):
        mean, se = _mean_se(samples)
        assert abs(mean - exact_value) < N_SIGMA * se, (mean, se, exact_value)


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_agrees_with_generic_checkerboard_16x16(key):
    """Mean energy per spin on a 16x16 torus at T = 2.5 equals that of the generic
    `sampling.checkerboard` kernel within 5 combined sigma (64 chains each)."""
    model = Ising((16, 16))
    beta = 1.0 / 2.5
    k1, k2 = jax.random.split(key)
    fast, _ = _chain_means(k1, ising_checkerboard_metropolis(), model, [beta], 64, 400, 100)
    generic, _ = _chain_means(k2, sampling.checkerboard(), model, [beta], 64, 400, 100)
    (a, sa), (b, sb) = _mean_se(fast[0]), _mean_se(generic[0])
    assert abs(a - b) < N_SIGMA * np.hypot(sa, sb), (a, sa, b, sb)


def test_onsager_energy_L64(key):
    """Energy per spin at L = 64, T = 1.8 and T = 3.2, equals Onsager's infinite-lattice value
    (`theory.onsager_energy`) within 5 sigma over 16 chains; away from T_c = 2.269 the
    finite-size correction is exponentially small. Chains start ordered (a low-T quench from a
    random state could freeze in stripes; at T = 3.2 the order melts in a few sweeps)."""
    model = Ising((64, 64))
    temperatures = (1.8, 3.2)
    e, _ = _chain_means(
        key,
        ising_checkerboard_metropolis(),
        model,
        [1 / T for T in temperatures],
        16,
        400,
        100,
        ordered=True,
    )
    for i, T in enumerate(temperatures):
        mean, se = _mean_se(e[i])
        ref = float(theory.onsager_energy(T))
        assert abs(mean - ref) < N_SIGMA * se, (T, mean, se, ref)


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
    bumpy = Ising((4, 4), J=jnp.ones((2, 4, 4)).at[0, 1, 2].set(2.0))
    with pytest.raises(Exception, match="uniform J"):  # the same check on a traced model
        jax.block_until_ready(jax.jit(alg.init)(jnp.ones((4, 4), jnp.int8), bumpy))
    with pytest.raises(ConfigError, match="bits"):
        ising_checkerboard_metropolis(bits=0)
    with pytest.raises(ConfigError, match="beta"):
        ising_checkerboard_metropolis(beta=-1.0)
