"""Sequential single-site sweeps of the dense pairwise Potts model (`models.potts_sequential`).

References: brute-force enumeration (`diffphys.exact.probabilities`) with the chi-square test
of `tests/_stats.py` on the final states of 6000 independent chains (p > 1e-3, fixed seeds),
both rules, native and pure-JAX backends, for models with couplings that are not symmetric
within a block ($J_{ij}(a, b) \\ne J_{ij}(b, a)$, no gauge fixing, so a transposed row would
be caught); the model's own `energy` for the incrementally updated field table and energy;
the two backends run side by side at N = 64, q = 4 (independent chains, mean energy within 5
combined standard errors); the kernel itself for bit-reproducibility, k + k = 2k sweeps and
vmap-equals-loop.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import chi2_pvalue, final_state_indices

from diffphys import ConfigError, ShapeError, _native, exact, sampling
from diffphys.models import SK, PairwisePotts, potts_sequential

native = pytest.mark.skipif(not _native.available(), reason=_native.reason())

P_MIN = 1e-3
N_CHAINS = 6000


def _model(seed: int, n: int, q: int, scale_h=0.5, scale_J=0.5, dtype=jnp.float32):
    """Random fields and couplings in no particular gauge: $J_{ij}(a,b) = J_{ji}(b,a)$ only."""
    kh, kj = jax.random.split(jax.random.key(seed))
    h = scale_h * jax.random.normal(kh, (n, q), dtype)
    z = scale_J * jax.random.normal(kj, (n, n, q, q), dtype)
    J = z * jnp.triu(jnp.ones((n, n), dtype), 1)[:, :, None, None]
    return PairwisePotts(h, J + J.transpose(1, 0, 3, 2))


_probabilities = jax.jit(exact.probabilities)  # eager enumeration of a Potts model: ~10 s


@pytest.mark.parametrize(
    "backend,rule,n,q,beta",
    [
        pytest.param("native", "metropolis", 5, 3, 1.2, marks=native),
        pytest.param("native", "heat_bath", 5, 3, 1.2, marks=native),
        # q > 4: the kernel's generic-q field update (its table is also checked, in CI, by
        # test_native_reproducible_resumable_and_exact_fields at q = 6)
        pytest.param("native", "metropolis", 4, 5, 1.0, marks=[native, pytest.mark.slow]),
        # CI budget: in CI the jax backend is checked against the native one (N = 64, below)
        pytest.param("jax", "heat_bath", 4, 3, 1.2, marks=pytest.mark.slow),
        pytest.param("jax", "metropolis", 4, 3, 1.2, marks=pytest.mark.slow),  # CI budget
    ],
)
def test_matches_enumeration(key, backend, rule, n, q, beta):
    """Final states of 6000 chains (60 sweeps from uniformly random states; on the native
    backend 4 sweeps per kernel call and one vmapped call for all chains) against the exact
    Boltzmann law of all q^N configurations (chi-square, p > 1e-3)."""
    model = _model(n + 10 * q, n, q)
    per = 4 if backend == "native" else 2
    alg = potts_sequential(backend=backend, rule=rule, sweeps_per_step=per)
    idx = np.asarray(final_state_indices(key, alg, model, 60 // per, beta, N_CHAINS))
    probs = np.asarray(_probabilities(model, beta), np.float64)
    assert probs.max() < 0.2  # a spread-out law: the test has power
    assert chi2_pvalue(np.bincount(idx, minlength=probs.size), probs) > P_MIN


@native
@pytest.mark.parametrize("rule", ["metropolis", "heat_bath"])
def test_native_reproducible_resumable_and_exact_fields(key, rule):
    """Same key -> the same chain bit for bit; 3 + 3 sweeps with one key equal 6 sweeps with
    it (the stream depends on the absolute sweep index); after 200 sweeps the incrementally
    updated field table equals the one recomputed by `init` and the energy equals
    `PairwisePotts.energy`. q = 6 runs the kernel's generic-q field update."""
    k_model, k_x, k_run = jax.random.split(key, 3)
    model = PairwisePotts.sample(k_model, 48, 6, scale_h=0.3, scale_J=0.3)
    x0 = model.random_state(key=k_x)
    a3 = potts_sequential(1.5, rule=rule, sweeps_per_step=3)
    a6 = potts_sequential(1.5, rule=rule, sweeps_per_step=6)
    a20 = potts_sequential(1.5, rule=rule, sweeps_per_step=20)

    @jax.jit  # one compilation
    def chains(x0, model, k):
        s3, _ = a3.step(k, a3.init(x0, model), model)
        s33, info = a3.step(k, s3, model)
        s6, _ = a6.step(k, a6.init(x0, model), model)
        s6b, _ = a6.step(k, a6.init(x0, model), model)
        s, _ = sampling.run(k, a20, a20.init(x0, model), model, 10)
        return s33, info, s6, s6b, s, a20.init(s.x, model), model.energy(s.x)

    s33, info, s6, s6b, s, fresh, energy = chains(x0, model, k_run)
    for a, b in ((s33, s6), (s6, s6b)):
        np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
        np.testing.assert_array_equal(np.asarray(a.field), np.asarray(b.field))
        np.testing.assert_array_equal(np.asarray(a.energy), np.asarray(b.energy))
    assert int(s33.sweep) == 6 and int(s.sweep) == 200
    assert 0.05 < float(info.acceptance_rate) < 0.95
    assert s.x.dtype == x0.dtype and int(s.x.min()) >= 0 and int(s.x.max()) < 6
    np.testing.assert_allclose(s.field, fresh.field, atol=2e-5)
    np.testing.assert_allclose(float(s.energy), float(energy), atol=2e-4)


def _vmap_case(key, nested: bool):
    alg = potts_sequential(1.1, rule="heat_bath", sweeps_per_step=3)
    k_model, k_x, k_run = jax.random.split(key, 3)
    models = jax.vmap(lambda k: PairwisePotts.sample(k, 20, 4, scale_J=0.4))(
        jax.random.split(k_model, 4)
    )
    xs = jax.random.randint(k_x, (4, 20), 0, 4).astype(jnp.int8)
    states = jax.vmap(alg.init)(xs, models)
    keys = jax.random.split(k_run, 4)
    betas = jnp.asarray([0.5, 0.9, 1.3, 2.0], jnp.float32)
    one = jax.tree.map(lambda a: a[0], models)

    def pick(tree, i):
        return jax.tree.map(lambda a: a[i], tree)

    def same(a, b):
        for u, v in zip(a[:3], b[:3]):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))

    step = jax.jit(lambda k, s, m, b: alg.step(k, s, m, beta=b)[0])  # one compilation
    if nested:
        out = jax.jit(jax.vmap(jax.vmap(alg.step, in_axes=(0, 0, None)), in_axes=(None, 0, 0)))(
            keys[:2],
            jax.tree.map(lambda a: jnp.stack([a[:2], a[2:]]), states),
            pick(models, slice(2)),
        )
        for i in range(4):
            o, r = divmod(i, 2)
            same(pick(pick(out[0], o), r), step(keys[r], pick(states, i), pick(models, o), 1.1))
        return

    @jax.jit  # the three batched calls in one compilation
    def batched(keys, states, models, one, betas):
        by_sample = jax.vmap(alg.step)(keys, states, models)[0]
        shared = jax.vmap(alg.step, in_axes=(0, 0, None))(keys, states, one)[0]
        tempered = jax.vmap(lambda k, s, b: alg.step(k, s, one, beta=b))(keys, states, betas)[0]
        return by_sample, shared, tempered

    by_sample, shared, tempered = batched(keys, states, models, one, betas)
    for i in range(4):
        s_i = pick(states, i)
        same(pick(by_sample, i), step(keys[i], s_i, pick(models, i), 1.1))
        same(pick(shared, i), step(keys[i], s_i, one, 1.1))
        same(pick(tempered, i), step(keys[i], s_i, one, betas[i]))


@native
def test_native_vmap_equals_loop(key):
    """A vmapped step (one kernel call) equals the per-chain loop bit for bit: per-chain
    models (disorder samples), one model shared by replicas, per-chain beta (tempering
    rungs)."""
    _vmap_case(key, nested=False)


@native
@pytest.mark.slow  # CI budget: the kernel's multi-axis batch offsets
def test_native_nested_vmap_equals_loop(key):
    """A nested vmap (2 samples x 2 replicas sharing each sample) equals the per-chain loop."""
    _vmap_case(key, nested=True)


@native
@pytest.mark.parametrize(
    "rule",
    [pytest.param("metropolis", marks=pytest.mark.slow), "heat_bath"],  # CI budget
)
def test_native_agrees_with_jax_backend_at_n64(key, rule):
    """N = 64, q = 4, beta = 1 (couplings of scale 0.25): mean energy per site and rate of
    changed sites of 16 independent chains of each backend (40 sweeps from random states,
    averaged over the last 20 per chain) agree within 5 combined standard errors of the chain
    means."""
    n, n_chains = 64, 16
    k_model, k_x, k_run = jax.random.split(key, 3)
    model = PairwisePotts.sample(k_model, n, 4, scale_h=0.3, scale_J=0.25)
    xs = jax.random.randint(k_x, (n_chains, n), 0, 4).astype(jnp.int8)
    keys = jax.random.split(k_run, n_chains)

    def means(alg, steps):
        def chain(k, x):
            _, tr = sampling.run(
                k, alg, alg.init(x, model), model, steps, record=lambda s: s.energy, every=1
            )
            half = steps // 2
            return jnp.mean(tr["record"][half:]) / n, jnp.mean(tr["info"].acceptance_rate[half:])

        return [np.asarray(a, np.float64) for a in jax.jit(jax.vmap(chain))(keys, xs)]

    a = means(potts_sequential(rule=rule, backend="native", sweeps_per_step=5), 8)
    b = means(potts_sequential(rule=rule, backend="jax"), 40)
    for u, v, name in zip(a, b, ("energy per site", "change rate")):
        err = math.hypot(u.std(ddof=1), v.std(ddof=1)) / math.sqrt(n_chains)
        assert abs(u.mean() - v.mean()) < 5 * err, (name, u.mean(), v.mean(), err)
    assert 0.02 < a[1].mean() < 0.98  # neither frozen nor at infinite temperature


def test_bad_input_raises(key):
    """Configuration errors are one clear `ConfigError` (`ShapeError` for a wrong state shape)
    before anything compiles."""
    model = _model(0, 6, 3)
    x = jnp.zeros(6, jnp.int8)
    with pytest.raises(ConfigError, match="rule"):
        potts_sequential(rule="glauber")
    with pytest.raises(ConfigError, match="backend"):
        potts_sequential(backend="cuda")
    with pytest.raises(ConfigError, match="beta"):
        potts_sequential(-1.0, backend="jax")
    with pytest.raises(ConfigError, match="sweeps_per_step"):
        potts_sequential(sweeps_per_step=0, backend="jax")
    with pytest.raises(ConfigError, match="threads"):
        potts_sequential(threads=-1, backend="jax")
    alg = potts_sequential(backend="auto")
    with pytest.raises(ConfigError, match="PairwisePotts"):
        alg.init(jnp.ones(6, jnp.int8), SK(np.ones((6, 6), np.float32)))
    with pytest.raises(ConfigError, match="integers"):
        alg.init(jnp.zeros(6, jnp.float32), model)
    with pytest.raises(ConfigError, match=r"0\.\.2"):
        alg.init(x.at[2].set(3), model)
    with pytest.raises(ShapeError, match="shape"):
        alg.init(jnp.zeros(5, jnp.int8), model)
    other_q = _model(0, 6, 4)
    with pytest.raises(ConfigError, match=r"\(N, q\) = \(6, 4\)"):
        alg.step(key, alg.init(x, model), other_q)
    with pytest.raises(ConfigError, match="beta"):
        alg.step(key, alg.init(x, model), model, beta=-0.5)
    if _native.available():
        with pytest.raises(ConfigError, match="float32 or float64"):
            potts_sequential().init(x, PairwisePotts(model.h, model.J, dtype=jnp.bfloat16))
        jax_state = potts_sequential(backend="jax").init(x, model)
        with pytest.raises(ConfigError, match="native potts_sequential's init"):
            potts_sequential().step(key, jax_state, model)
    else:
        with pytest.raises(ConfigError, match="native"):
            potts_sequential(backend="native")


@native
@pytest.mark.slow  # x64 compilations: nightly
def test_native_float64_fields(key):
    """The float64 kernel (x64 enabled): the field table stays equal to the recomputed one to
    1e-12 after 100 sweeps, and the energy equals `PairwisePotts.energy` to 1e-10."""
    with jax.enable_x64(True):
        model = _model(3, 32, 4, dtype=jnp.float64)
        alg = potts_sequential(0.8, rule="metropolis", sweeps_per_step=100)
        s, _ = alg.step(key, alg.init(model.random_state(key=key), model), model)
        assert s.field.dtype == jnp.float64
        np.testing.assert_allclose(s.field, alg.init(s.x, model).field, atol=1e-12)
        np.testing.assert_allclose(float(s.energy), float(model.energy(s.x)), atol=1e-10)
