"""The native fused sequential SK sweep (`models.sk_metropolis(backend="native")`).

References: brute-force enumeration (`diffphys.exact.probabilities`) with the chi-square test
of `tests/_stats.py` on the final states of 6000 independent chains (p > 1e-3, fixed seeds),
for an SK sample in random fields and a Hopfield network (J = xi xi^T / N, zero diagonal);
the pure-JAX `sk_metropolis` kernel run side by side at N = 256 (same disorder sample,
independent chains, energy and acceptance within 5 combined standard errors); the kernel
itself for bit-reproducibility, resumability and vmap-equals-loop.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import sampler_pvalue

from diffphys import ConfigError, _native, sampling
from diffphys.models import SK, Hopfield, sk_metropolis

pytestmark = pytest.mark.skipif(not _native.available(), reason=_native.reason())

P_MIN = 1e-3
N_CHAINS = 6000


def _spins(key, shape):
    return jax.random.rademacher(key, shape, jnp.int8)


def _sk_in_fields():
    kj, kh = jax.random.split(jax.random.key(7))
    return SK.sample(kj, 8, h=0.3 * jax.random.normal(kh, (8,)))


def _hopfield():
    """Two patterns, N = 8, in weak random fields: without them many local fields are exactly
    0, such spins flip at every visit (Metropolis accepts dE = 0), and the sequential sweep is
    periodic on them (the Boltzmann law stays invariant but is not reached; the pure-JAX
    kernel fails the test alike at beta = 0.8 and 1.5)."""
    kp, kh = jax.random.split(jax.random.key(8))
    patterns = jax.random.rademacher(kp, (2, 8), jnp.float32)
    return SK(Hopfield(patterns).couplings(), h=0.15 * jax.random.normal(kh, (8,)))


@pytest.mark.parametrize(
    "make,beta", [(_sk_in_fields, 1.2), (_hopfield, 1.5)], ids=["sk-fields", "hopfield"]
)
def test_native_sk_matches_enumeration(key, make, beta):
    """Final states of 6000 chains (60 sweeps, 4 per kernel call, one vmapped call for all
    chains) against the exact Boltzmann law of all 2^8 configurations."""
    model = make()
    alg = sk_metropolis(backend="native", sweeps_per_step=4)
    assert sampler_pvalue(key, alg, model, 15, beta, N_CHAINS) > P_MIN


def test_native_agrees_with_jax_kernel_at_n256(key):
    """One Gaussian SK sample, N = 256, beta = 0.8: mean energy per spin and acceptance rate
    of 16 independent chains of each kernel (40 sweeps burn-in, then the average over 40
    sweeps per chain) agree within 5 combined standard errors of the chain means."""
    n, n_chains, beta = 256, 16, 0.8
    k_model, k_x, k_run = jax.random.split(key, 3)
    model = SK.sample(k_model, n)
    xs = _spins(k_x, (n_chains, n))
    keys = jax.random.split(k_run, n_chains)

    def means(alg, per_step):
        def chain(k, x):
            s = alg.init(x, model)
            s, _ = sampling.run(k, alg, s, model, 40 // per_step)
            _, tr = sampling.run(
                jax.random.fold_in(k, 1), alg, s, model, 40 // per_step, record=lambda s: s.energy
            )
            return jnp.mean(tr["record"]) / n, jnp.mean(tr["info"].acceptance_rate)

        return [np.asarray(a, np.float64) for a in jax.jit(jax.vmap(chain))(keys, xs)]

    native = means(sk_metropolis(beta, backend="native", sweeps_per_step=10), 10)
    ref = means(sk_metropolis(beta), 1)
    for a, b, name in zip(native, ref, ("energy per spin", "acceptance")):
        err = math.hypot(a.std(ddof=1), b.std(ddof=1)) / math.sqrt(n_chains)
        assert abs(a.mean() - b.mean()) < 5 * err, (name, a.mean(), b.mean(), err)
    assert -0.45 < native[0].mean() < -0.3  # annealed -beta/2 = -0.4 up to O(1/N)


def test_native_reproducible_resumable_and_exact_fields(key):
    """Same key -> the same chain bit for bit; 3 + 3 sweeps with one key equal 6 sweeps with
    it (the stream depends on the absolute sweep index); the incrementally updated fields
    equal J s + h and the energy equals `SK.energy` after 200 sweeps."""
    k_model, k_x, k_run = jax.random.split(key, 3)
    model = SK.sample(k_model, 64, h=0.1)
    x0 = _spins(k_x, (64,))
    a3 = sk_metropolis(1.5, backend="native", sweeps_per_step=3)
    a6 = sk_metropolis(1.5, backend="native", sweeps_per_step=6)
    a20 = sk_metropolis(1.5, backend="native", sweeps_per_step=20)

    @jax.jit  # one compilation
    def chains(x0, model, k):
        s3, _ = a3.step(k, a3.init(x0, model), model)
        s33, info = a3.step(k, s3, model)
        s6, _ = a6.step(k, a6.init(x0, model), model)
        s6b, _ = a6.step(k, a6.init(x0, model), model)
        s, _ = sampling.run(k, a20, a20.init(x0, model), model, 10)
        return s33, info, s6, s6b, s, model.local_field(s.x), model.energy(s.x)

    s33, info, s6, s6b, s, field, energy = chains(x0, model, k_run)
    for a, b in ((s33, s6), (s6, s6b)):
        np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
        np.testing.assert_array_equal(np.asarray(a.field), np.asarray(b.field))
    assert int(s33.sweep) == 6 and 0.0 < float(info.acceptance_rate) < 1.0
    np.testing.assert_allclose(s.field, field, atol=2e-4)
    np.testing.assert_allclose(float(s.energy), float(energy), atol=2e-3)


def test_native_vmap_equals_loop(key):
    """A vmapped step (one kernel call) equals the per-chain loop bit for bit: per-chain
    couplings (disorder samples), couplings shared by replicas, per-chain beta (tempering
    rungs) and a nested vmap (disorder samples x replicas)."""
    alg = sk_metropolis(1.1, backend="native", sweeps_per_step=3)
    k_model, k_x, k_run = jax.random.split(key, 3)
    models = jax.vmap(lambda k: SK.sample(k, 24, kind="bimodal"))(jax.random.split(k_model, 4))
    states = jax.vmap(alg.init)(_spins(k_x, (4, 24)), models)
    keys = jax.random.split(k_run, 4)
    betas = jnp.asarray([0.5, 0.9, 1.3, 2.0], jnp.float32)
    one = jax.tree.map(lambda a: a[0], models)

    def pick(tree, i):
        return jax.tree.map(lambda a: a[i], tree)

    def same(a, b):
        np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
        np.testing.assert_array_equal(np.asarray(a.field), np.asarray(b.field))

    @jax.jit  # all four batched calls in one compilation
    def batched(keys, states, models, one, betas):
        by_sample = jax.vmap(alg.step)(keys, states, models)[0]
        shared = jax.vmap(alg.step, in_axes=(0, 0, None))(keys, states, one)[0]
        tempered = jax.vmap(lambda k, s, b: alg.step(k, s, one, beta=b))(keys, states, betas)[0]
        nested = jax.vmap(jax.vmap(alg.step, in_axes=(0, 0, None)), in_axes=(None, 0, 0))(
            keys[:2],
            jax.tree.map(lambda a: jnp.stack([a[:2], a[2:]]), states),
            pick(models, slice(2)),
        )[0]
        return by_sample, shared, tempered, nested

    by_sample, shared, tempered, nested = batched(keys, states, models, one, betas)
    step = jax.jit(lambda k, s, m, b: alg.step(k, s, m, beta=b)[0])  # one compilation
    for i in range(4):
        s_i, o, r = pick(states, i), *divmod(i, 2)
        same(pick(by_sample, i), step(keys[i], s_i, pick(models, i), 1.1))
        same(pick(shared, i), step(keys[i], s_i, one, 1.1))
        same(pick(tempered, i), step(keys[i], s_i, one, betas[i]))
        same(pick(pick(nested, o), r), step(keys[r], s_i, pick(models, o), 1.1))


def test_native_bad_input_raises(key):
    """Configuration errors are one clear `ConfigError` before anything compiles."""
    with pytest.raises(ConfigError, match="order='sequential'"):
        sk_metropolis(backend="native", order="random")
    with pytest.raises(ConfigError, match="backend"):
        sk_metropolis(backend="cuda")
    with pytest.raises(ConfigError, match="sweeps_per_step"):
        sk_metropolis(backend="native", sweeps_per_step=0)
    with pytest.raises(ConfigError, match="threads"):
        sk_metropolis(backend="native", threads=-1)
    with pytest.raises(ConfigError, match="float32 or float64"):
        sk_metropolis(backend="native").init(
            jnp.ones(8, jnp.int8), SK(np.ones((8, 8)), dtype=jnp.bfloat16)
        )
    model = SK(np.ones((8, 8), np.float32))
    jax_state = sk_metropolis().init(jnp.ones(8, jnp.int8), model)
    with pytest.raises(ConfigError, match="native sk_metropolis' init"):
        sk_metropolis(backend="native").step(key, jax_state, model)


@pytest.mark.slow  # CI budget (x64 compilations: 13.7 s at load 7 on 2 cores): runs nightly
def test_native_float64_matches_float32_decisions(key):
    """The float64 kernel (x64 enabled): fields stay equal to J s + h to 1e-12 after 50
    sweeps, and from the same key and float64-exact couplings (multiples of 1/8) it takes the
    same decisions as the float32 kernel (both fields are then exact)."""
    k_model, k_x, k_run = jax.random.split(key, 3)
    J = jnp.round(8 * SK.sample(k_model, 32).J) / 8
    x0 = _spins(k_x, (32,))
    alg = sk_metropolis(0.7, backend="native", sweeps_per_step=50)
    m32 = SK(J, h=0.25)
    s32, _ = alg.step(k_run, alg.init(x0, m32), m32)
    with jax.enable_x64(True):
        m64 = SK(J.astype(jnp.float64), h=0.25)
        s64, _ = alg.step(k_run, alg.init(x0, m64), m64)
        assert s64.field.dtype == jnp.float64
        np.testing.assert_allclose(s64.field, m64.local_field(s64.x), atol=1e-12)
    np.testing.assert_array_equal(np.asarray(s64.x), np.asarray(s32.x))
