"""Swendsen–Wang and Wolff cluster updates (`diffphys.models.swendsen_wang` / `wolff`).

References: brute-force enumeration (`diffphys.exact`) with the chi-square test of
`tests/test_sampling.py`; scipy's `connected_components` as an independent labelling of the
same bond configuration; Onsager's energy (`theory.onsager_energy`) on a 32 x 32 lattice.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import sampler_pvalue
from scipy import sparse
from scipy.sparse import csgraph

from diffphys import ConfigError, models, sampling, theory

P_MIN = 1e-3
N_CHAINS = 6000


def _scipy_partition(active):
    active = np.asarray(active)
    lattice = active.shape[1:]
    idx = np.arange(np.prod(lattice)).reshape(lattice)
    rows, cols = [], []
    for a in range(len(lattice)):
        rows.append(idx[active[a]])
        cols.append(np.roll(idx, -1, axis=a)[active[a]])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    g = sparse.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(idx.size, idx.size))
    return csgraph.connected_components(g, directed=False)


def _same_partition(labels, active):
    n_ref, ref = _scipy_partition(active)
    labels = np.asarray(labels).reshape(-1)
    # one label per component, one component per label, and each label is a site of its cluster
    assert len(set(labels)) == n_ref
    assert len(set(zip(labels, ref))) == n_ref
    assert np.all(ref[labels] == ref)


@pytest.mark.parametrize("lattice,p", [((24, 24), 0.5), ((24, 24), 0.9), ((6, 6, 6), 0.3)])
def test_components_match_scipy(key, lattice, p):
    """Random bond percolation (below, at and above threshold in 2D; 3D): same partition as
    scipy.sparse.csgraph.connected_components, with the on-device loop and with a fixed
    trip count large enough."""
    active = jax.random.bernoulli(key, p, (len(lattice), *lattice))
    labels, rounds, ok = models.connected_components(active)
    assert bool(ok)
    _same_partition(labels, active)
    labels2, rounds2, ok2 = models.connected_components(active, max_rounds=int(rounds) + 1)
    assert bool(ok2) and int(rounds2) == int(rounds)
    np.testing.assert_array_equal(labels, labels2)


def test_components_worst_case_snake():
    """A single snake-shaped path through an L x L lattice (the longest possible chain, where
    plain min-label propagation needs ~L^2 rounds): labelled in a few rounds, and a fixed trip
    count that is too small is reported as not converged."""
    L = 16
    active = np.zeros((2, L, L), bool)
    active[1, :, : L - 1] = True  # every row a horizontal path
    for r in range(L - 1):  # join rows alternately at the right and left ends
        active[0, r, L - 1 if r % 2 == 0 else 0] = True
    labels, rounds, _ = models.connected_components(jnp.asarray(active))
    _same_partition(labels, active)
    assert np.all(np.asarray(labels) == 0)
    assert int(rounds) < 4 * int(np.ceil(np.log2(L * L)))
    _, _, ok = models.connected_components(jnp.asarray(active), max_rounds=1)
    assert not bool(ok)


ALGS = {"sw": models.swendsen_wang, "wolff": models.wolff}


@pytest.mark.parametrize("name", ["sw", pytest.param("wolff", marks=pytest.mark.slow)])
def test_ising_glass_matches_enumeration(key, name):
    """2x4 torus with Gaussian per-bond couplings of both signs (256 states) at beta = 0.6:
    chi-square against `exact.probabilities` of the final states of 6000 chains."""
    glass = models.Ising((2, 4), J=models.random_bond_couplings(jax.random.key(12), (2, 4)))
    assert sampler_pvalue(key, ALGS[name](), glass, 12, 0.6, N_CHAINS) > P_MIN


@pytest.mark.parametrize("name", [pytest.param("sw", marks=pytest.mark.slow), "wolff"])
def test_potts_matches_enumeration(key, name):
    """q = 3 Potts on a 2x2 torus with random positive per-bond couplings (81 states) at
    beta = 0.9."""
    J = jnp.abs(jax.random.normal(jax.random.key(13), (2, 2, 2)))
    assert (
        sampler_pvalue(key, ALGS[name](), models.Potts((2, 2), q=3, J=J), 12, 0.9, N_CHAINS) > P_MIN
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sw", "wolff"])
def test_uniform_models_match_enumeration(key, name):
    """Uniform 3D Ising ferromagnet on 2x2x2 (256 states, beta = 0.3) and uniform q = 3 Potts
    on a 2x3 torus (729 states, beta = 1.0)."""
    k1, k2 = jax.random.split(key)
    assert sampler_pvalue(k1, ALGS[name](), models.Ising((2, 2, 2)), 30, 0.3, N_CHAINS) > P_MIN
    assert sampler_pvalue(k2, ALGS[name](), models.Potts((2, 3), q=3), 30, 1.0, N_CHAINS) > P_MIN


def test_swendsen_wang_onsager_energy(key):
    """Energy per spin of the 32 x 32 Ising model at T = 2.0 and T = 2.6 equals Onsager's
    infinite-lattice value within 5 sigma (8 chains x 300 SW sweeps after 50 of burn-in;
    finite-size corrections at this distance from T_c are far below the error bar)."""
    model = models.Ising((32, 32))
    alg = models.swendsen_wang()
    temps = jnp.asarray([2.0, 2.6])

    def chain(k, T):
        s = alg.init(jnp.ones((32, 32), jnp.int8), model)
        s, tr = sampling.run(
            k, alg, s, model, 350, beta=1.0 / T, record=lambda s: s.energy, every=1
        )
        return tr["record"][50:] / model.n_sites

    keys = jax.random.split(key, 16).reshape(2, 8)
    e = jax.jit(jax.vmap(jax.vmap(chain, in_axes=(0, None))))(keys, temps)
    for i, T in enumerate(np.asarray(temps)):
        means = np.asarray(e[i]).mean(axis=1)
        mean, se = means.mean(), means.std(ddof=1) / np.sqrt(means.size)
        ref = float(theory.onsager_energy(float(T)))
        assert abs(mean - ref) < 5 * se, (T, mean, se, ref)


@pytest.mark.slow
def test_sw_matches_checkerboard_at_criticality(key):
    """At T_c on 16 x 16 the SW chain agrees with checkerboard Metropolis (an independent
    kernel) in <|m|> and energy within 5 sigma."""
    model = models.Ising((16, 16))
    beta = 1.0 / model.critical_temperature

    def means(alg, n, k):
        def chain(k):
            s = alg.init(jnp.ones((16, 16), jnp.int8), model)
            s, tr = sampling.run(
                k,
                alg,
                s,
                model,
                n,
                beta=beta,
                every=1,
                record=lambda s: (jnp.abs(model.magnetization(s.x)), s.energy / 256),
            )
            return jax.tree.map(lambda v: jnp.mean(v[n // 5 :]), tr["record"])

        return jax.jit(jax.vmap(chain))(jax.random.split(k, 16))

    k1, k2 = jax.random.split(key)
    a = means(models.swendsen_wang(), 300, k1)
    b = means(sampling.checkerboard(), 1500, k2)
    for va, vb in zip(a, b):
        va, vb = np.asarray(va), np.asarray(vb)
        se = np.hypot(va.std(ddof=1), vb.std(ddof=1)) / 4
        assert abs(va.mean() - vb.mean()) < 5 * se, (va.mean(), vb.mean(), se)


def test_errors():
    """Bad models and options raise one clear ConfigError before compiling."""
    with pytest.raises(ConfigError, match="field"):
        models.swendsen_wang().init(jnp.ones((4, 4), jnp.int8), models.Ising((4, 4), h=0.1))
    with pytest.raises(ConfigError, match="J >= 0"):
        models.wolff().init(jnp.zeros((4, 4), jnp.int8), models.Potts((4, 4), q=3, J=-1.0))
    with pytest.raises(ConfigError, match="Ising or Potts"):
        models.wolff().init(jnp.ones(8, jnp.int8), models.SK.sample(jax.random.key(0), n=8))
    with pytest.raises(ConfigError, match="max_rounds"):
        models.wolff(max_rounds=0)
    with pytest.raises(ValueError):
        models.swendsen_wang(beta=-1.0)
