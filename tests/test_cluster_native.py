"""The native Wolff single-cluster kernel (`models.wolff(backend="native")`).

References: brute-force enumeration (`diffphys.exact`) with the chi-square test of
`tests/_stats.py` on the final states of independent chains (p > 1e-3, fixed seeds), on the
full configuration and on the exact joint law of (energy, |magnetization|); the energy
function `models.Ising.energy` evaluated on the returned spins; the pure-JAX Wolff
(`backend="jax"`, connected-component labelling, an independent implementation) run side by
side at T_c on 16 x 16 (energy and |m| within 5 combined standard errors over independent
chains).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import chi2_pvalue, final_state_indices

from diffphys import ConfigError, ShapeError, _native, exact, sampling
from diffphys.models import Ising, Potts, WolffState, random_bond_couplings, wolff

P_MIN = 1e-3
N_SIGMA = 5.0

pytestmark = pytest.mark.skipif(not _native.available(), reason=_native.reason())


def _pvalues(key, model, beta, n_calls, steps_per_call, n_chains):
    """Chi-square p-values of the final states of `n_chains` chains (random starts) against
    enumeration: over all configurations (rare states pooled), and over the values of
    (E, |M|) (the exact law summed over the configurations of each value)."""
    alg = wolff(backend="native", steps_per_call=steps_per_call)
    idx = np.asarray(final_state_indices(key, alg, model, n_calls, beta, n_chains))
    probs = np.asarray(exact.probabilities(model, beta), np.float64)
    p_state = chi2_pvalue(np.bincount(idx, minlength=probs.size), probs)
    xs = np.asarray(exact.all_configurations(model), np.int64)
    axes = tuple(range(1, xs.ndim))
    bonds = sum(np.sum(xs * np.roll(xs, -1, axis=a), axis=axes) for a in axes)  # E = -J bonds
    m = np.abs(np.sum(xs, axis=axes))
    _, cls = np.unique(bonds * (xs[0].size + 1) + m, return_inverse=True)
    p_cls = np.bincount(cls, weights=probs)
    counts = np.bincount(cls[idx], minlength=p_cls.size)
    return p_state, chi2_pvalue(counts, p_cls)


def test_matches_enumeration_2d(key):
    """4 x 4 torus, J = 0.8, beta = 0.45 (bond probability 1 - e^{-0.72} = 0.51; 65536
    states): 20000 chains, 30 Wolff updates each from a uniformly random start."""
    model = Ising((4, 4), J=0.8)
    p_state, p_em = _pvalues(key, model, 0.45, 6, 5, 20_000)
    assert p_state > P_MIN and p_em > P_MIN, (p_state, p_em)


def test_matches_enumeration_3d(key):
    """2 x 3 x 2 torus (4096 states; the size-2 axes give every site two bonds to the same
    neighbour, each tried independently as `Ising.energy` counts both), J = 0.5, beta =
    0.6: 12000 chains, 30 updates each."""
    model = Ising((2, 3, 2), J=0.5)
    p_state, p_em = _pvalues(key, model, 0.6, 6, 5, 12_000)
    assert p_state > P_MIN and p_em > P_MIN, (p_state, p_em)


def test_k_plus_k_equals_2k_and_exact_energy(key):
    """The random stream depends only on (key, absolute update index): 3 + 3 updates with
    one key equal 6 updates bit for bit, in 2D and 3D (odd sizes); the bond sum
    carried in the state equals that of the spins exactly, and the energy `model.energy`."""
    for lattice in ((12, 10), (4, 6, 5)):
        model = Ising(lattice, J=0.7)
        x0 = model.random_state(key=jax.random.key(1))
        s = {}
        for k in (3, 6):
            alg = wolff(0.3, backend="native", steps_per_call=k)
            step = jax.jit(alg.step)
            st = alg.init(x0, model)
            for _ in range(6 // k):
                st, _ = step(key, st, model)
            s[k] = st
        np.testing.assert_array_equal(s[3].x, s[6].x)
        assert int(s[3].step) == int(s[6].step) == 6
        x = np.asarray(s[6].x, np.int64)
        assert not np.array_equal(x, x0)
        bonds = sum(np.sum(x * np.roll(x, -1, axis=a)) for a in range(x.ndim))
        assert int(s[6].bond_sum) == bonds
        np.testing.assert_allclose(s[6].energy, model.energy(s[6].x), rtol=1e-6)


def test_vmap_equals_loop(key):
    """A vmapped ensemble (one kernel call, OpenMP over chains, a per-chain beta) equals
    the chains run one by one, with 1 thread or all."""
    model = Ising((8, 8))
    betas = jnp.asarray([0.3, 0.44, 0.6])
    keys = jax.random.split(key, 3)
    x0 = jnp.stack([model.random_state(key=k) for k in jax.random.split(jax.random.key(2), 3)])
    outs = []
    for threads in (1, 0):
        alg = wolff(backend="native", steps_per_call=4, threads=threads)

        def run(k, x, b, alg=alg):
            s = alg.init(x, model)
            s, info = alg.step(k, s, model, beta=b)
            return s.x, s.energy, info.flipped_fraction

        outs.append(jax.jit(jax.vmap(run))(keys, x0, betas))
        single = jax.jit(run)
        for i in range(3):
            one = single(keys[i], x0[i], betas[i])
            for a, b in zip(outs[-1], one):
                np.testing.assert_array_equal(a[i], b)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def _chain_means(alg, model, beta, key, n_chains, n_steps, burn):
    n = model.n_sites

    def chain(k):
        s = alg.init(jnp.ones(model.lattice, jnp.int8), model)
        _, tr = sampling.run(
            k,
            alg,
            s,
            model,
            n_steps,
            beta=beta,
            every=1,
            record=lambda s: (jnp.abs(model.magnetization(s.x)), s.energy / n),
        )
        return jax.tree.map(lambda v: jnp.mean(v[burn:]), tr["record"])

    return [np.asarray(v) for v in jax.jit(jax.vmap(chain))(jax.random.split(key, n_chains))]


@pytest.mark.slow
def test_agrees_with_jax_wolff_at_criticality(key):
    """L = 16 at the exact T_c: <|m|> and <E>/N of the native kernel and of the pure-JAX
    Wolff (connected-component labelling) agree within 5 combined standard errors over 16
    independent chains each (chain means after a burn-in of 50 updates)."""
    model = Ising((16, 16))
    beta = 1.0 / model.critical_temperature
    k1, k2 = jax.random.split(key)
    nat = _chain_means(wolff(backend="native"), model, beta, k1, 16, 2000, 50)
    ref = _chain_means(wolff(backend="jax"), model, beta, k2, 16, 600, 50)
    for a, b in zip(nat, ref):
        se = np.hypot(a.std(ddof=1), b.std(ddof=1)) / 4
        assert abs(a.mean() - b.mean()) < N_SIGMA * se, (a.mean(), b.mean(), se)


def test_auto_backend():
    """`backend="auto"` takes the native kernel for the uniform ferromagnet and the
    pure-JAX path for the models the native kernel does not cover."""
    alg = wolff(backend="auto")
    assert isinstance(alg.init(jnp.ones((4, 4), jnp.int8), Ising((4, 4))), WolffState)
    glass = Ising((4, 4), J=random_bond_couplings(jax.random.key(0), (4, 4)))
    assert not isinstance(alg.init(jnp.ones((4, 4), jnp.int8), glass), WolffState)


def test_errors():
    """Unsupported models and bad options raise one clear error before compiling."""
    alg = wolff(backend="native")
    x = jnp.ones((4, 4), jnp.int8)
    with pytest.raises(ConfigError, match="field"):
        alg.init(x, Ising((4, 4), h=0.1))
    with pytest.raises(ConfigError, match="one coupling"):
        alg.init(x, Ising((4, 4), J=jnp.asarray([1.0, 0.5])))
    with pytest.raises(ConfigError, match="J > 0"):
        alg.init(x, Ising((4, 4), J=-1.0))
    with pytest.raises(ConfigError, match="Ising"):
        alg.init(jnp.zeros((4, 4), jnp.int8), Potts((4, 4), q=3))
    with pytest.raises(ShapeError, match="2D and 3D"):
        alg.init(jnp.ones((4,), jnp.int8), Ising((4,)))
    for bad in (
        {"backend": "cuda"},
        {"steps_per_call": 0},
        {"threads": -1},
        {"backend": "native", "max_rounds": 4},
    ):
        with pytest.raises(ConfigError):
            wolff(**bad)


def test_missing_library(monkeypatch):
    """Without the compiled library: backend="native" raises a ConfigError naming the
    reason, backend="auto" falls back to the pure-JAX path."""
    monkeypatch.setattr(_native, "available", lambda: False)
    monkeypatch.setattr(_native, "reason", lambda: "diffphys: the native kernels are not built.")
    with pytest.raises(ConfigError, match="not built.*backend='jax'"):
        wolff(backend="native")
    state = wolff(backend="auto").init(jnp.ones((4, 4), jnp.int8), Ising((4, 4)))
    assert not isinstance(state, WolffState)
