"""Sequential field-matrix sweeps of the Ising p = 3 spin glass (`models.pspin_metropolis`).

References: brute-force enumeration (`diffphys.exact.probabilities`) with the chi-square test
of `tests/_stats.py` on the final states of 6000 independent chains (p > 1e-3, fixed seeds),
both backends; the model's own `PSpin.energy` and `PSpin.site_energies` for the maintained
fields, field matrix and energy; the pure-JAX backend and the generic `sampling.metropolis`
run side by side with the native kernel at N = 64 (independent chains, mean energy and
acceptance within 5 combined standard errors); the kernel itself for bit-reproducibility,
k + k = 2k sweeps and vmap-equals-loop.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import sampler_pvalue

from diffphys import ConfigError, _native, exact, sampling
from diffphys.models import SK, PSpin, PSpinState, pspin_metropolis, pspin_tensor

native = pytest.mark.skipif(not _native.available(), reason=_native.reason())

P_MIN = 1e-3
N_CHAINS = 6000


def _spins(key, shape):
    return jax.random.rademacher(key, shape, jnp.int8)


def _small_model():
    """N = 8, p = 3, Gaussian couplings (variance 3!/(2 N^2)) in random fields."""
    kj, kh = jax.random.split(jax.random.key(11))
    return PSpin.sample(kj, 8, 3, h=0.3 * jax.random.normal(kh, (8,)))


def _site_fields(model, x):
    """f_i from `PSpin.site_energies` (its first entry is -E_i(+1) = f_i)."""
    return jax.vmap(lambda i: model.site_energies(x, i)[0])(jnp.arange(model.n))


def test_tensor_energy_matches_model(key):
    """The dense tensor is symmetric with a zero diagonal and reproduces `PSpin.energy`:
    E = -(1/6) sum_ijk T_ijk s_i s_j s_k - h.s, for random states of an N = 12 sample; `init`'s
    fields equal `PSpin.site_energies` and its energy `PSpin.energy`."""
    k_m, k_x = jax.random.split(key)
    model = PSpin.sample(k_m, 12, 3, h=0.2)
    T = np.asarray(pspin_tensor(model))
    for perm in ((1, 0, 2), (0, 2, 1), (2, 1, 0)):
        np.testing.assert_array_equal(T, T.transpose(perm))
    i = np.arange(12)
    assert not T[i, i, :].any() and not T[i, :, i].any() and not T[:, i, i].any()
    xs = _spins(k_x, (3, 12))
    alg = pspin_metropolis(backend="jax")
    for x in xs:
        s = np.asarray(x, np.float64)
        e = -np.einsum("ijk,i,j,k", T, s, s, s) / 6 - np.asarray(model.h) @ s
        np.testing.assert_allclose(e, float(model.energy(x)), atol=1e-5)
        st = alg.init(x, model)
        np.testing.assert_allclose(st.field, _site_fields(model, x), atol=1e-6)
        np.testing.assert_allclose(float(st.energy), float(model.energy(x)), atol=1e-5)


@pytest.mark.parametrize("backend", [pytest.param("native", marks=native), "jax"])
def test_matches_enumeration(key, backend):
    """Final states of 6000 chains (60 sweeps from uniformly random states; on the native
    backend 4 sweeps per kernel call and one vmapped call for all chains) against the exact
    Boltzmann law of all 2^8 configurations at beta = 1.5 (chi-square, p > 1e-3)."""
    model, beta = _small_model(), 1.5
    probs = np.asarray(exact.probabilities(model, beta))
    assert probs.max() > 10 / 256  # far from uniform: the test has power
    per = 4 if backend == "native" else 2
    alg = pspin_metropolis(backend=backend, sweeps_per_step=per)
    assert sampler_pvalue(key, alg, model, 60 // per, beta, N_CHAINS) > P_MIN


@native
def test_native_agrees_with_jax_and_generic_at_n64(key):
    """One Gaussian sample, N = 64, beta = 1, h = 0.1: mean energy per spin and acceptance rate
    of 16 independent chains of the native kernel, the pure-JAX backend and the generic
    `sampling.metropolis(order="sequential")` (`PSpin.site_energies`) agree within 5 combined
    standard errors of the chain means (30 sweeps from random states, then the average over
    30 sweeps per chain)."""
    n, n_chains, beta = 64, 16, 1.0
    k_model, k_x, k_run = jax.random.split(key, 3)
    model = PSpin.sample(k_model, n, 3, h=0.1)
    xs = _spins(k_x, (n_chains, n))
    keys = jax.random.split(k_run, n_chains)

    def means(alg, per_step):
        def chain(k, x):
            s = alg.init(x, model)
            s, _ = sampling.run(k, alg, s, model, 30 // per_step)
            _, tr = sampling.run(
                jax.random.fold_in(k, 1), alg, s, model, 30 // per_step, record=lambda s: s.energy
            )
            return jnp.mean(tr["record"]) / n, jnp.mean(tr["info"].acceptance_rate)

        return [np.asarray(a, np.float64) for a in jax.jit(jax.vmap(chain))(keys, xs)]

    a = means(pspin_metropolis(beta, backend="native", sweeps_per_step=10), 10)
    for b, peer in (
        (means(pspin_metropolis(beta, backend="jax"), 1), "jax"),
        (means(sampling.metropolis(beta, order="sequential"), 1), "generic"),
    ):
        for u, v, name in zip(a, b, ("energy per spin", "acceptance")):
            err = math.hypot(u.std(ddof=1), v.std(ddof=1)) / math.sqrt(n_chains)
            assert abs(u.mean() - v.mean()) < 5 * err, (peer, name, u.mean(), v.mean(), err)
    assert 0.05 < a[1].mean() < 0.95  # neither frozen nor at infinite temperature


@native
@pytest.mark.parametrize("n", [40, 130])
def test_native_reproducible_resumable_and_exact_fields(key, n):
    """Same key -> the same chain bit for bit; 3 + 3 sweeps with one key equal 6 sweeps with
    it (the stream depends on the absolute sweep index); after 200 sweeps the maintained
    fields equal `PSpin.site_energies`, the field matrix equals T s, and the energy in the
    state and in the info equals `PSpin.energy`, to float32 tolerance. N = 40 runs the
    kernel's whole-slab update, N = 130 its upper-triangle update (M > 64 KiB; rows not a
    multiple of the vector width) and the mirroring of M."""
    k_model, k_x, k_run = jax.random.split(key, 3)
    model = PSpin.sample(k_model, n, 3, h=0.1)
    x0 = _spins(k_x, (n,))
    a3 = pspin_metropolis(1.5, backend="native", sweeps_per_step=3)
    a6 = pspin_metropolis(1.5, backend="native", sweeps_per_step=6)
    a20 = pspin_metropolis(1.5, backend="native", sweeps_per_step=20)

    @jax.jit  # one compilation
    def chains(x0, model, k):
        s3, _ = a3.step(k, a3.init(x0, model), model)
        s33, info = a3.step(k, s3, model)
        s6, _ = a6.step(k, a6.init(x0, model), model)
        s6b, _ = a6.step(k, a6.init(x0, model), model)
        s, _ = sampling.run(k, a20, a20.init(x0, model), model, 9)
        s, last = a20.step(jax.random.fold_in(k, 9), s, model)
        return s33, info, s6, s6b, s, last.energy, _site_fields(model, s.x)

    s33, info, s6, s6b, s, info_energy, field = chains(x0, model, k_run)
    for a, b in ((s33, s6), (s6, s6b)):
        for u, v in zip(a[:5], b[:5]):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert int(s33.sweep) == 6 and int(s.sweep) == 200
    assert 0.0 < float(info.acceptance_rate) < 1.0
    energy = float(model.energy(s.x))
    np.testing.assert_allclose(s.field, field, atol=2e-5)
    np.testing.assert_allclose(s.M, s.tensor @ s.x.astype(jnp.float32), atol=2e-5)
    np.testing.assert_allclose(float(s.energy), energy, atol=2e-4)
    np.testing.assert_allclose(float(info_energy), energy, atol=2e-4)


def test_jax_backend_exact_fields(key):
    """The pure-JAX backend: after 60 sweeps (3 per step) the maintained fields equal
    `PSpin.site_energies`, M equals T s, and the step info's energy equals `PSpin.energy`."""
    k_model, k_x, k_run = jax.random.split(key, 3)
    model = PSpin.sample(k_model, 24, 3, h=0.2)
    alg = pspin_metropolis(1.2, backend="jax", sweeps_per_step=3)

    @jax.jit
    def chain(k, x):
        s, _ = sampling.run(k, alg, alg.init(x, model), model, 19)
        return alg.step(jax.random.fold_in(k, 19), s, model)

    s, info = chain(k_run, _spins(k_x, (24,)))
    assert int(s.sweep) == 60 and 0.0 < float(info.acceptance_rate) < 1.0
    np.testing.assert_allclose(s.field, _site_fields(model, s.x), atol=2e-5)
    np.testing.assert_allclose(s.M, s.tensor @ s.x.astype(jnp.float32), atol=2e-5)
    np.testing.assert_allclose(float(info.energy), float(model.energy(s.x)), atol=2e-4)


@native
def test_native_vmap_equals_loop(key):
    """A vmapped step (one kernel call) equals the per-chain loop bit for bit: per-chain
    couplings (disorder samples), one tensor shared by all chains (the state's tensor not
    batched: the kernel broadcasts it), and per-chain beta (tempering rungs)."""
    alg = pspin_metropolis(1.1, backend="native", sweeps_per_step=3)
    k_model, k_x, k_run = jax.random.split(key, 3)
    models = jax.vmap(lambda k: PSpin.sample(k, 16, 3, kind="bimodal", h=0.1))(
        jax.random.split(k_model, 4)
    )
    xs = _spins(k_x, (4, 16))
    keys = jax.random.split(k_run, 4)
    betas = jnp.asarray([0.5, 0.9, 1.3, 2.0], jnp.float32)
    one = jax.tree.map(lambda a: a[0], models)

    def pick(tree, i):
        return jax.tree.map(lambda a: a[i], tree)

    def same(a, b):
        for u, v in zip(a[:5], b[:5]):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))

    shared_axes = PSpinState(0, 0, 0, 0, 0, None)

    @jax.jit  # all batched calls in one compilation
    def batched(keys, xs, models, one, betas):
        states = jax.vmap(alg.init)(xs, models)
        shared0 = jax.vmap(alg.init, in_axes=(0, None))(xs, one)
        shared0 = shared0._replace(tensor=shared0.tensor[0])
        by_sample = jax.vmap(alg.step)(keys, states, models)[0]
        shared = jax.vmap(alg.step, in_axes=(0, shared_axes, None))(keys, shared0, one)[0]
        tempered = jax.vmap(
            lambda k, s, b: alg.step(k, s, one, beta=b), in_axes=(0, shared_axes, 0)
        )(keys, shared0, betas)[0]
        return states, shared0, by_sample, shared, tempered

    states, shared0, by_sample, shared, tempered = batched(keys, xs, models, one, betas)
    step = jax.jit(lambda k, s, m, b: alg.step(k, s, m, beta=b)[0])  # one compilation
    for i in range(4):
        s_i = pick(states, i)
        sh_i = pick(shared0._replace(tensor=jnp.broadcast_to(shared0.tensor, (4, 16, 16, 16))), i)
        same(pick(by_sample, i), step(keys[i], s_i, pick(models, i), 1.1))
        same(pick(shared, i), step(keys[i], sh_i, one, 1.1))
        same(pick(tempered, i), step(keys[i], sh_i, one, betas[i]))


def test_bad_input_raises(key, monkeypatch):
    """Configuration errors are one clear `ConfigError` before anything compiles: p != 3
    (p = 2 points to `sk_metropolis`), a model that is not a `PSpin`, the size guard on the
    dense tensor, bad sweeps_per_step / threads / backend / beta, a state of another N."""
    with pytest.raises(ConfigError, match="backend"):
        pspin_metropolis(backend="cuda")
    with pytest.raises(ConfigError, match="beta"):
        pspin_metropolis(-1.0, backend="jax")
    for bad in (0, -2, True):  # a float is refused by the annotation (int) in the tests
        with pytest.raises(ConfigError, match="sweeps_per_step"):
            pspin_metropolis(sweeps_per_step=bad, backend="jax")
    with pytest.raises(ConfigError, match="threads"):
        pspin_metropolis(threads=-1, backend="jax")
    alg = pspin_metropolis(backend="auto")
    x = jnp.ones(8, jnp.int8)
    with pytest.raises(ConfigError, match="PSpin model"):
        alg.init(x, SK(np.ones((8, 8), np.float32)))
    with pytest.raises(ConfigError, match="sk_metropolis"):
        alg.init(x, PSpin.sample(key, 8, 2))
    with pytest.raises(ConfigError, match="p = 3 only"):
        alg.init(x, PSpin.sample(key, 8, 4))
    model = _small_model()
    state = alg.init(x, model)
    with pytest.raises(ConfigError, match="N = 8"):
        alg.step(key, state, PSpin.sample(key, 9, 3))
    with pytest.raises(ConfigError, match="beta"):
        alg.step(key, state, model, beta=-0.5)
    monkeypatch.setattr("diffphys.models._pspin_native.MAX_TENSOR_BYTES", 8**3 * 4 - 1)
    with pytest.raises(ConfigError, match="N = 8 needs"):
        alg.init(x, model)
    if not _native.available():
        with pytest.raises(ConfigError, match="native"):
            pspin_metropolis(backend="native")


def test_size_guard_default():
    """The default guard (2 GiB) refuses N = 813 in float32 (N^3 x 4 bytes > 2^31) and lets
    N = 812 through (the guard itself: such a model would need GiBs of packed couplings); in
    float64 the message names the largest N allowed."""
    from diffphys.models._pspin_native import _check_size

    _check_size(812, jnp.float32)
    with pytest.raises(ConfigError, match="N = 813 needs 2.0 GiB"):
        _check_size(813, jnp.float32)
    with pytest.raises(ConfigError, match="N <= 645"):
        _check_size(700, jnp.float64)


@native
@pytest.mark.slow  # x64 compilations: nightly
def test_native_float64_fields(key):
    """The float64 kernel (x64 enabled), N = 130 (upper-triangle path): after 50 sweeps the
    fields equal `PSpin.site_energies` to 1e-12, M equals T s to 1e-12, and the energy equals
    `PSpin.energy` to 1e-10."""
    with jax.enable_x64(True):
        k_model, k_x, k_run = jax.random.split(key, 3)
        model = PSpin.sample(k_model, 130, 3, h=0.1, dtype=jnp.float64)
        alg = pspin_metropolis(0.8, backend="native", sweeps_per_step=50)
        s, info = alg.step(k_run, alg.init(_spins(k_x, (130,)), model), model)
        assert s.field.dtype == jnp.float64 and 0.0 < float(info.acceptance_rate) < 1.0
        np.testing.assert_allclose(s.field, _site_fields(model, s.x), atol=1e-12)
        np.testing.assert_allclose(s.M, s.tensor @ s.x.astype(jnp.float64), atol=1e-12)
        np.testing.assert_allclose(float(s.energy), float(model.energy(s.x)), atol=1e-10)
