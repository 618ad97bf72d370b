"""SK and Ising p-spin models, the fast SK Metropolis kernel and parallel tempering on SK.

References: direct double sums over i < j (energies, fields); brute-force enumeration of
every configuration with `diffphys.exact` (samplers); the paramagnetic (annealed) SK energy
-beta/2 (Sherrington & Kirkpatrick 1975) for large N above T_c = 1.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffphys
from diffphys import ensemble, exact, observables, sampling
from diffphys.models import SK, PSpin, sk_metropolis


def _random_spins(key, shape):
    return jax.random.rademacher(key, shape, jnp.int8)


def _two_replicas(alg):
    """Two independent replicas of one disorder sample, stepped together (for overlaps)."""
    return sampling.replicas(alg, 2)


def _exact_overlap_moments(model, beta):
    """Exact <q^2>, <q^4> of two independent replicas, from the Boltzmann weights of every
    configuration: <q^k> = sum_{x,y} p(x) p(y) q(x, y)^k."""
    p = exact.probabilities(model, beta)
    x = exact.all_configurations(model).astype(jnp.float32)
    q = (x @ x.T) / model.n_sites
    return float(p @ (q**2) @ p), float(p @ (q**4) @ p)


# -- model ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gaussian", "bimodal"])
def test_sk_energy_and_fields_match_direct_sums(key, kind):
    """Reference: E = -sum_{i<j} J_ij s_i s_j - sum_i h_i s_i and f_i = sum_j J_ij s_j + h_i
    evaluated as explicit float64 double sums."""
    k1, k2, k3 = jax.random.split(key, 3)
    n = 13
    h = jax.random.normal(k2, (n,), jnp.float32)
    model = SK.sample(k1, n, kind=kind, h=h)
    x = _random_spins(k3, (n,))
    J, hh, s = (np.asarray(a, np.float64) for a in (model.J, model.h, x))
    e_ref = -sum(J[i, j] * s[i] * s[j] for i in range(n) for j in range(i + 1, n)) - hh @ s
    np.testing.assert_allclose(float(model.energy(x)), e_ref, rtol=1e-5, atol=1e-5)
    f_ref = np.array([sum(J[i, j] * s[j] for j in range(n) if j != i) + hh[i] for i in range(n)])
    np.testing.assert_allclose(np.asarray(model.local_field(x)), f_ref, rtol=1e-5, atol=1e-5)
    for i in (0, 5, n - 1):
        flipped = x.at[i].set(-x[i])
        de = float(model.energy(flipped) - model.energy(x))
        np.testing.assert_allclose(float(model.delta_energy(x, i)), de, atol=1e-4)
        e = model.site_energies(x, i)  # energies for s_i = -1, +1 up to a constant
        np.testing.assert_allclose(float(e[1] - e[0]), -2 * f_ref[i], atol=1e-4)


@pytest.mark.parametrize("kind", ["gaussian", "bimodal"])
def test_sk_sample_disorder_statistics(key, kind):
    """Reference: J symmetric, zero diagonal, mean 0 and variance 1/N (SK 1975); ±J takes only
    the values ±1/sqrt(N). Moments checked to 5 standard errors over N(N-1)/2 couplings."""
    n = 200
    J = np.asarray(SK.sample(key, n, kind=kind).J, np.float64)
    np.testing.assert_array_equal(J, J.T)
    np.testing.assert_array_equal(np.diag(J), 0.0)
    upper = J[np.triu_indices(n, 1)] * math.sqrt(n)
    m = upper.size
    assert abs(upper.mean()) < 5 / math.sqrt(m)
    assert abs(upper.var() - 1.0) < 5 * math.sqrt(2.0 / m)
    if kind == "bimodal":
        np.testing.assert_allclose(np.abs(upper), 1.0, rtol=1e-6)


def test_sk_configuration_errors(key):
    """Eager errors say what to do: asymmetric J, unknown kind, wrong field and state shapes."""
    with pytest.raises(diffphys.ConfigError, match="symmetric"):
        SK(jnp.arange(16.0).reshape(4, 4))
    with pytest.raises(diffphys.ShapeError, match="square"):
        SK(jnp.zeros((3, 4)))
    with pytest.raises(diffphys.ConfigError, match="kind"):
        SK.sample(key, 8, kind="uniform")
    with pytest.raises(diffphys.ShapeError, match="one field per spin"):
        SK.sample(key, 8, h=jnp.zeros(3))
    model = SK.sample(key, 8)
    with pytest.raises(diffphys.ShapeError):
        sk_metropolis().init(jnp.ones(7, jnp.int8), model)
    with pytest.raises(diffphys.ConfigError, match="SK model"):
        sk_metropolis().init(jnp.ones(8, jnp.int8), PSpin.sample(key, 8, 3))
    with pytest.raises(diffphys.ConfigError, match="order"):
        sk_metropolis(order="checkerboard")


def test_pspin_energy_matches_dense_tensor(key):
    """Reference: E = -sum_{i<j<k} J_ijk s_i s_j s_k - h.s from an explicit dense tensor, and
    single-flip energy differences from two energy evaluations; p = 2 equals SK."""
    k1, k2, k3 = jax.random.split(key, 3)
    n, p = 9, 3
    model = PSpin.sample(k1, n, p, h=0.2)
    x = _random_spins(k2, (n,))
    s = np.asarray(x, np.float64)
    tuples = list(itertools.combinations(range(n), p))
    T = np.zeros((n, n, n))
    for c, (i, j, k) in zip(np.asarray(model.couplings, np.float64), tuples):
        T[i, j, k] = c
    e_ref = -np.einsum("ijk,i,j,k->", T, s, s, s) - 0.2 * s.sum()
    np.testing.assert_allclose(float(model.energy(x)), e_ref, rtol=1e-5, atol=1e-5)
    for i in range(n):
        e = model.site_energies(x, i)
        up = float(model.energy(x.at[i].set(1)))
        down = float(model.energy(x.at[i].set(-1)))
        np.testing.assert_allclose(float(e[1] - e[0]), up - down, atol=1e-4)
    # variance p!/(2 N^{p-1}) of the couplings (Gardner 1985), to 5 standard errors
    big = PSpin.sample(k3, 60, 3)
    c = np.asarray(big.couplings, np.float64)
    target = 6.0 / (2 * 60**2)
    assert abs(c.var() / target - 1.0) < 5 * math.sqrt(2.0 / c.size)
    # p = 2 is SK with the same couplings
    sk = SK.sample(k3, n)
    pairs = np.asarray(list(itertools.combinations(range(n), 2)))
    two = PSpin(sk.J[pairs[:, 0], pairs[:, 1]], n, 2)
    np.testing.assert_allclose(float(two.energy(x)), float(sk.energy(x)), atol=1e-5)


def test_pspin_size_guard(key):
    """C(N, p) couplings are stored, never N^p: too many raises a ConfigError before drawing."""
    with pytest.raises(diffphys.ConfigError, match="max_couplings"):
        PSpin.sample(key, 1000, 3)
    with pytest.raises(diffphys.ConfigError, match="p must"):
        PSpin.sample(key, 10, 1)


def test_pspin_metropolis_matches_enumeration(key):
    """Reference: exact <E> and <q^2> of an N = 9 Ising 3-spin sample by enumeration
    (`diffphys.exact`), against the generic `sampling.metropolis` on 128 independent chains x 2
    replicas; tolerance 4.5 standard errors of the chain means."""
    k_model, k_x, k_run = jax.random.split(key, 3)
    n, beta = 9, 2.0
    model = PSpin.sample(k_model, n, 3)
    q2_exact, _ = _exact_overlap_moments(model, beta)
    e_exact = float(exact.enumerate_averages(model, beta).energy)
    alg = _two_replicas(sampling.metropolis(beta))
    e, q2, _ = _chain_means(alg, model, k_x, k_run, n_chains=128, n_burn=100, n_meas=300)
    _assert_close(e, e_exact, "energy")
    _assert_close(q2, q2_exact, "q^2")


# -- fast SK kernel ---------------------------------------------------------------------------


def _chain_means(alg, model, k_x, k_run, *, n_chains, n_burn, n_meas):
    """Per-chain time averages of the energy (mean of both replicas) and of q^2, q^4."""

    def one_chain(kx, kr):
        xs = _random_spins(kx, (2, model.n_sites))
        state = alg.init(xs, model)
        state, _ = sampling.run(kr, alg, state, model, n_burn)

        def record(s):
            q = observables.overlap(s.x[0], s.x[1])
            return jnp.mean(s.energy), q**2, q**4

        _, trace = sampling.run(kr, alg, state, model, n_meas, record=record, every=1, start=n_burn)
        return jax.tree.map(lambda a: jnp.mean(a, axis=0), trace["record"])

    keys_x = jax.random.split(k_x, n_chains)
    keys_r = jax.random.split(k_run, n_chains)
    e, q2, q4 = ensemble.run(one_chain, keys_x, keys_r)
    return np.asarray(e), np.asarray(q2), np.asarray(q4)


def _assert_close(samples, target, name, n_sigma=4.5):
    samples = np.asarray(samples, np.float64)
    mean = samples.mean()
    err = samples.std(ddof=1) / math.sqrt(samples.size)
    assert abs(mean - target) < n_sigma * err + 1e-6, (
        f"{name}: simulated {mean:.5f} ± {err:.5f}, exact {target:.5f}"
    )


def test_sk_metropolis_keeps_fields_and_energy_exact(key):
    """Reference: after 300 sweeps the incrementally updated fields equal J s + h recomputed
    from scratch, and the tracked energy equals `SK.energy` (float32 rounding tolerance)."""
    k1, k2, k3 = jax.random.split(key, 3)
    model = SK.sample(k1, 64, h=0.1)
    alg = sk_metropolis(1.5)
    state = alg.init(_random_spins(k2, (64,)), model)
    state, trace = sampling.run(k3, alg, state, model, 300, record=lambda s: s.energy, every=30)
    np.testing.assert_allclose(state.field, model.local_field(state.x), atol=2e-4)
    np.testing.assert_allclose(float(state.energy), float(model.energy(state.x)), atol=2e-3)
    assert 0.0 < float(trace["info"].acceptance_rate[-1]) < 1.0


@pytest.mark.parametrize(
    "kind,h,beta,order",
    [("gaussian", 0.0, 1.5, "sequential"), ("bimodal", 0.3, 1.0, "random")],
)
def test_sk_metropolis_matches_enumeration(key, kind, h, beta, order):
    """Reference: exact <E>, <q^2>, <q^4> of an N = 10 SK sample by enumeration of all 2^10
    configurations (two independent replicas: <q^k> = sum_xy p(x)p(y) q(x,y)^k), against 256
    independent chains x 2 replicas of `sk_metropolis`; tolerance 4.5 standard errors of the
    chain means (chains are independent, so the error needs no autocorrelation model)."""
    k_model, k_x, k_run = jax.random.split(key, 3)
    model = SK.sample(k_model, 10, kind=kind, h=h)
    q2_exact, q4_exact = _exact_overlap_moments(model, beta)
    e_exact = float(exact.enumerate_averages(model, beta).energy)
    alg = _two_replicas(sk_metropolis(beta, order=order))
    e, q2, q4 = _chain_means(alg, model, k_x, k_run, n_chains=256, n_burn=100, n_meas=400)
    _assert_close(e, e_exact, "energy")
    _assert_close(q2, q2_exact, "q^2")
    _assert_close(q4, q4_exact, "q^4")


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_parallel_tempering_sk_matches_enumeration(key):
    """Reference: exact <E>(beta) at every temperature of a 6-rung ladder and the exact overlap
    Binder ratio <q^4>/<q^2>^2 at the lowest temperature, for an N = 10 Gaussian SK sample
    (enumeration), against `sampling.parallel_tempering(sk_metropolis)` on 64 independent runs
    x 2 replicas; 4.5 standard errors of the run means (jackknife over runs for the ratio)."""
    k_model, k_x, k_run = jax.random.split(key, 3)
    n = 10
    betas = jnp.asarray([0.3, 0.6, 0.9, 1.3, 1.8, 2.5], jnp.float32)
    model = SK.sample(k_model, n)
    pt = _two_replicas(sampling.parallel_tempering(sk_metropolis(), betas))

    def one_run(kx, kr):
        xs = _random_spins(kx, (2, betas.size, n))
        state = pt.init(xs, model)
        state, _ = sampling.run(kr, pt, state, model, 100)

        def record(s):
            q = jax.vmap(observables.overlap)(s.states.x[0], s.states.x[1])
            return jnp.mean(s.states.energy, axis=0), q**2, q**4

        _, trace = sampling.run(kr, pt, state, model, 300, record=record, every=1, start=100)
        rates = sampling.swap_rates(trace["info"])
        return jax.tree.map(lambda a: jnp.mean(a, axis=0), trace["record"]), rates

    (e, q2, q4), rates = ensemble.run(
        one_run, jax.random.split(k_x, 64), jax.random.split(k_run, 64)
    )
    assert np.all(np.asarray(rates) > 0.2), f"swap rates too low: {np.asarray(rates).mean(0)}"
    for r, beta in enumerate(np.asarray(betas)):
        e_exact = float(exact.enumerate_averages(model, float(beta)).energy)
        _assert_close(np.asarray(e)[:, r], e_exact, f"energy at beta={beta}")
    q2_exact, q4_exact = _exact_overlap_moments(model, float(betas[-1]))
    ratio, err = observables.jackknife(
        lambda a, b: b / a**2, jnp.asarray(q2)[:, -1], jnp.asarray(q4)[:, -1], n_blocks=16
    )
    assert abs(float(ratio) - q4_exact / q2_exact**2) < 4.5 * float(err), (
        float(ratio),
        float(err),
        q4_exact / q2_exact**2,
    )


def test_sk_paramagnetic_energy_large_n(key):
    """Reference: above T_c = 1 at h = 0 the SK energy per spin is the annealed one,
    e = -beta/2 (SK 1975; `theory.sk_annealed_energy`). N = 512, T = 2, 8 disorder samples
    vmapped; tolerance 5 standard errors (over samples and time blocks) plus an explicit
    finite-size allowance of 1/N, the order of the quenched O(1/N) corrections
    (d/dbeta of the O(1) term (1/2) ln(1 - beta^2) is 0.67 at beta = 1/2)."""
    from diffphys.theory import sk_annealed_energy

    n, T, n_samples = 512, 2.0, 8
    alg = sk_metropolis(1.0 / T)

    def simulate(k):
        k_model, k_x, k_run = jax.random.split(k, 3)
        model = SK.sample(k_model, n)
        state = alg.init(_random_spins(k_x, (n,)), model)
        state, _ = sampling.run(k_run, alg, state, model, 100)
        _, trace = sampling.run(
            k_run, alg, state, model, 200, record=lambda s: s.energy / n, every=10, start=100
        )
        return jnp.mean(trace["record"])

    e = np.asarray(ensemble.run(simulate, jax.random.split(key, n_samples)), np.float64)
    err = e.std(ddof=1) / math.sqrt(n_samples)
    target = sk_annealed_energy(T)
    assert abs(e.mean() - target) < 5 * err + 1.0 / n, (e.mean(), err, target)


def test_sk_metropolis_vmaps_over_disorder_and_chunks(key):
    """`ensemble.run` over disorder samples gives the same chains whether vmapped in one go
    or in chunks (reference: the unchunked run itself), and each sample's energy equals
    `SK.energy` of its final spins."""
    alg = sk_metropolis(1.2)

    def simulate(k):
        k_model, k_x, k_run = jax.random.split(k, 3)
        model = SK.sample(k_model, 32, kind="bimodal")
        state = alg.init(_random_spins(k_x, (32,)), model)
        state, _ = sampling.run(k_run, alg, state, model, 20)
        return state.x, state.energy, model.energy(state.x)

    keys = jax.random.split(key, 6)
    x1, e1, ref = ensemble.run(simulate, keys)
    x2, e2, _ = ensemble.run(simulate, keys, chunk_size=4)
    np.testing.assert_array_equal(np.asarray(x1), np.asarray(x2))
    np.testing.assert_allclose(np.asarray(e1), np.asarray(ref), atol=1e-3)


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_parallel_tempering_sk_gaussian_identity_beyond_enumeration(key):
    """Reference: for Gaussian couplings at h = 0, integration by parts over J_ij gives, at every
    N and T, [<E>]/N = -(beta/2)(1 - [<q^2>]) exactly in equilibrium (the SK form of the
    Katzgraber-Palassini-Young equilibration test, PRB 63, 184422 (2001)). Checked with PT at
    N = 48 (beyond enumeration), 24 disorder samples x 2 replicas, at every rung down to
    T = 0.5; tolerance 4.5 standard errors of the per-sample difference."""
    n, n_samples = 48, 24
    betas = 1.0 / np.geomspace(0.5, 1.4, 6).astype(np.float32)
    pt = _two_replicas(sampling.parallel_tempering(sk_metropolis(), betas))

    def one_sample(k):
        k_model, k_x, k_run = jax.random.split(k, 3)
        model = SK.sample(k_model, n)
        state = pt.init(_random_spins(k_x, (2, betas.size, n)), model)
        state, _ = sampling.run(k_run, pt, state, model, 300)

        def record(s):
            q = jax.vmap(observables.overlap)(s.states.x[0], s.states.x[1])
            return jnp.mean(s.states.energy, axis=0) / n, q**2

        _, trace = sampling.run(k_run, pt, state, model, 400, record=record, every=2, start=300)
        return jax.tree.map(lambda a: jnp.mean(a, axis=0), trace["record"])

    e, q2 = ensemble.run(one_sample, jax.random.split(key, n_samples), chunk_size=8)
    diff = np.asarray(e, np.float64) + 0.5 * betas * (1.0 - np.asarray(q2, np.float64))
    err = diff.std(0, ddof=1) / math.sqrt(n_samples)
    assert np.all(np.abs(diff.mean(0)) < 4.5 * err), (diff.mean(0), err)
