"""The fused checkerboard Metropolis kernel (`models.fused_checkerboard`).

References: brute-force enumeration (`diffphys.exact.probabilities`) with the chi-square test
of `tests/test_sampling.py` on the final states of 6000 independent chains (p > 1e-3, fixed
seeds); Onsager's (1944) exact energy of the square lattice; the pure-JAX reference kernel
`ising_checkerboard_metropolis` run side by side (energy and |m| within 5 combined standard
errors over independent chains).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import sampler_pvalue

from diffphys import ConfigError, ShapeError, _native, sampling, theory
from diffphys.models import Ising, Potts, fused_checkerboard, ising_checkerboard_metropolis
from diffphys.models import random_bond_couplings as bonds
from diffphys.models._ising_fused import from_colours, to_colours

P_MIN = 1e-3
N_CHAINS = 6000
N_SIGMA = 5.0

native = pytest.mark.skipif(not _native.available(), reason=_native.reason())


def _glass(seed, lattice):
    kj, kh = jax.random.split(jax.random.key(seed))
    return Ising(lattice, J=bonds(kj, lattice), h=0.3 * jax.random.normal(kh, lattice))


CASES = {
    "2d-uniform-field": (lambda: Ising((2, 4), J=0.8, h=0.35), 0.45),
    "2d-glass-field": (lambda: _glass(12, (2, 4)), 0.6),
    "3d-afm-field": (lambda: Ising((2, 2, 2), J=-0.6, h=0.4), 0.8),
    "3d-glass-field": (lambda: _glass(13, (2, 2, 2)), 0.45),
}


@native
@pytest.mark.parametrize(
    "case",
    [
        pytest.param("2d-uniform-field", marks=pytest.mark.slow),
        "2d-glass-field",
        "3d-afm-field",  # the 3D segment path of the tabulated kernel
        pytest.param("3d-glass-field", marks=pytest.mark.slow),
    ],
)
def test_native_matches_enumeration(key, case):
    """Final states of 6000 chains (100 sweeps, 5 per kernel call, one vmapped call for all
    chains) against exact enumeration; uniform couplings use the tabulated kernel, glasses
    (Gaussian per-bond J, random fields) the per-bond kernel. The temperatures are chosen so
    that 100 sweeps mix: at beta = 0.7 the generic `sampling.checkerboard` kernel fails the
    same test after 40 sweeps, on the 2D ferromagnet in a field and on the 3D glass."""
    make, beta = CASES[case]
    model = make()
    alg = fused_checkerboard(sweeps_per_step=5, backend="native")
    assert sampler_pvalue(key, alg, model, 20, beta, N_CHAINS) > P_MIN


@pytest.mark.slow
def test_jax_fallback_matches_enumeration(key):
    """The pure-JAX path used where the library is not built: same contract, same law."""
    model = _glass(12, (2, 4))
    alg = fused_checkerboard(sweeps_per_step=5, backend="jax")
    assert sampler_pvalue(key, alg, model, 8, 0.6, N_CHAINS) > P_MIN


@native
@pytest.mark.parametrize("lattice", [(6, 8), (4, 6, 8)])
def test_resume_vmap_and_paths_bit_identical(key, lattice):
    """k + k sweeps == 2k sweeps bit for bit (the stream is keyed by the absolute sweep
    index); a vmapped ensemble equals the chains run one by one; the tabulated (uniform) and
    per-bond kernels draw the same numbers and make the same chain on a uniform model; the
    energy equals the model's energy recomputed from the spins."""
    model = Ising(lattice, J=-0.7 if len(lattice) == 3 else 1.1, h=0.2)
    x = model.random_state(key=key)
    np.testing.assert_array_equal(from_colours(to_colours(x, lattice), lattice), x)
    a3 = fused_checkerboard(0.45, sweeps_per_step=3, backend="native")
    a6 = fused_checkerboard(0.45, sweeps_per_step=6, backend="native")
    ab = fused_checkerboard(0.45, sweeps_per_step=6, backend="native", couplings="bonds")
    s0, sb0 = a3.init(x, model), ab.init(x, model)
    assert s0.uniform and not sb0.uniform
    keys = jax.random.split(jax.random.key(4), 3)

    @jax.jit
    def run(k, s0, sb0, xs):
        s3, _ = a3.step(k, a3.step(k, s0, model)[0], model)
        s6, info = a6.step(k, s0, model)
        sb, _ = ab.step(k, sb0, model)
        st = jax.vmap(lambda xx: a3.init(xx, model))(xs)
        batched, _ = jax.vmap(lambda kk, s: a3.step(kk, s, model))(keys, st)
        singles = [
            a3.step(keys[i], jax.tree.map(lambda v, i=i: v[i], st), model)[0] for i in range(3)
        ]
        return s3, s6, sb, info, batched, singles

    xs = jax.vmap(lambda kk: model.random_state(key=kk))(jax.random.split(key, 3))
    s3, s6, sb, info, batched, singles = run(jax.random.key(3), s0, sb0, xs)
    assert int(s6.sweep) == 6
    np.testing.assert_array_equal(s3.spins, s6.spins)
    np.testing.assert_array_equal(sb.spins, s6.spins)
    np.testing.assert_allclose(s6.energy, model.energy(s6.x), rtol=1e-5, atol=1e-4)
    assert 0.0 < float(info.acceptance_rate) < 1.0
    for i in range(3):
        np.testing.assert_array_equal(singles[i].spins, batched.spins[i])


def _chains(key, alg, model, beta, n_chains, n_steps, burn, *, ordered):
    """Per-chain time averages of E/N and |m| after `burn` steps."""
    n = model.n_sites

    def one(k):
        k0, k1 = jax.random.split(k)
        x0 = jnp.ones(model.shape, jnp.int8) if ordered else model.random_state(key=k0)
        s = alg.init(x0, model)

        def record(st):
            return st.energy / n, jnp.abs(jnp.mean(st.x.astype(jnp.float32)))

        _, trace = sampling.run(k1, alg, s, model, n_steps, record=record, every=1, beta=beta)
        e, m = trace["record"]
        return jnp.mean(e[burn:]), jnp.mean(m[burn:])

    e, m = jax.jit(jax.vmap(one))(jax.random.split(key, n_chains))
    return np.asarray(e, np.float64), np.asarray(m, np.float64)


def _mean_se(x):
    return x.mean(), x.std(ddof=1) / np.sqrt(x.size)


@native
@pytest.mark.slow  # CI budget; the L = 32 reference-kernel comparison is slow too
def test_onsager_energy_L32(key):
    """Energy per spin at L = 32, beta = 0.3 and 0.6, equals Onsager's infinite-lattice
    value (`theory.onsager_energy`) within 5 sigma over 16 chains of 300 sweeps (away from
    beta_c = 0.4407 the finite-size correction is exponentially small)."""
    model = Ising((32, 32))
    alg = fused_checkerboard(sweeps_per_step=4, backend="native")
    for beta, k in zip((0.3, 0.6), jax.random.split(key)):
        e, _ = _chains(k, alg, model, beta, 16, 75, 25, ordered=True)
        mean, se = _mean_se(e)
        onsager = float(theory.onsager_energy(1.0 / beta))
        assert abs(mean - onsager) < N_SIGMA * se, (beta, mean, se, onsager)


@native
@pytest.mark.slow
@pytest.mark.parametrize("beta", [0.3, 0.6])
def test_onsager_energy_and_reference_kernel_L32(key, beta):
    """L = 32 at beta = 0.3 and 0.6 (away from beta_c = 0.4407 the correlation length is a
    few sites and finite-size corrections are exponentially small): the energy per spin
    equals Onsager's within 5 sigma (16 chains of 300 sweeps), and energy and |m| agree with
    the pure-JAX reference kernel `ising_checkerboard_metropolis` on the same model within 5
    combined sigma."""
    model = Ising((32, 32))
    k1, k2 = jax.random.split(key)
    args = (model, beta, 16, 75, 25)
    fast = _chains(k1, fused_checkerboard(sweeps_per_step=4, backend="native"), *args, ordered=True)
    ref = _chains(k2, ising_checkerboard_metropolis(), model, beta, 16, 300, 100, ordered=True)
    e, se = _mean_se(fast[0])
    onsager = float(theory.onsager_energy(1.0 / beta))
    assert abs(e - onsager) < N_SIGMA * se, (e, se, onsager)
    for a, b in zip(fast, ref):
        (ma, sa), (mb, sb) = _mean_se(a), _mean_se(b)
        assert abs(ma - mb) < N_SIGMA * np.hypot(sa, sb), (ma, sa, mb, sb)


def test_errors():
    """Clear one-line errors before anything compiles."""
    alg = fused_checkerboard(0.5, backend="jax")
    with pytest.raises(ShapeError, match="even"):
        alg.init(jnp.ones((5, 4), jnp.int8), Ising((5, 4)))
    with pytest.raises(ShapeError, match="2D and 3D"):
        alg.init(jnp.ones((4,), jnp.int8), Ising((4,)))
    with pytest.raises(ConfigError, match="Ising"):
        alg.init(jnp.zeros((4, 4), jnp.int8), Potts((4, 4), q=3))
    with pytest.raises(ConfigError, match="couplings='bonds'"):
        fused_checkerboard(couplings="uniform", backend="jax").init(
            jnp.ones((4, 4), jnp.int8), Ising((4, 4), h=jnp.arange(16.0).reshape(4, 4))
        )
    for bad in ({"sweeps_per_step": 0}, {"backend": "cuda"}, {"couplings": "x"}, {"threads": -1}):
        with pytest.raises(ConfigError):
            fused_checkerboard(**bad)
    with pytest.raises(ConfigError):
        fused_checkerboard(beta=-1.0)
