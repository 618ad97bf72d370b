"""RBM free energies, exact log Z, block Gibbs and parallel tempering, against brute force.

References: the joint sum over every (v, h) of exp(-E(v, h)) (brute-force enumeration, written
independently of the free-energy formulas), numerical quadrature for Gaussian visible units,
and exact Boltzmann probabilities p(v) = exp(-F(v))/Z for the samplers (chi-square tests).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import chi2_pvalue

from diffphys import ConfigError, ShapeError, sampling
from diffphys.models import RBM, block_gibbs, sample_chains

TYPES = [("bernoulli", 2, (0, 1)), ("spin", 2, (-1, 1)), ("potts", 3, (0, 1, 2))]


def _rbm(key, n, m, visible, q=2, scale=0.7):
    k1, k2, k3 = jax.random.split(key, 3)
    model = RBM.sample(k1, n, m, visible=visible, q=q, scale=scale)
    a = 0.3 * jax.random.normal(k2, model.a.shape)
    b = 0.3 * jax.random.normal(k3, model.b.shape)
    return RBM(model.W, a, b, visible=visible)


@pytest.mark.parametrize("visible,q,values", TYPES)
def test_log_z_matches_joint_brute_force(key, visible, q, values):
    """Reference: log sum_{v,h} exp(-beta E(v,h)) over all joint configurations (float64 numpy)."""
    model = _rbm(key, 4, 3, visible, q)
    beta = 0.8
    logs = []
    for v in itertools.product(values, repeat=4):
        for h in itertools.product((0, 1), repeat=3):
            e = model.energy((jnp.asarray(v), jnp.asarray(h)))
            logs.append(-beta * float(e))
    ref = float(np.logaddexp.reduce(np.asarray(logs)))
    for layer in ("hidden", "visible"):
        got = float(model.log_partition(beta, layer=layer, chunk=16))
        assert abs(got - ref) < 1e-4 * max(1.0, abs(ref)), (layer, got, ref)


def test_gaussian_log_z_matches_quadrature(key):
    """Reference: 2D trapezoidal quadrature of sum_h exp(-E(v,h)) over a [-12, 12]^2 grid."""
    model = _rbm(key, 2, 3, "gaussian", scale=0.6)
    x = np.linspace(-12, 12, 801)
    vv = jnp.asarray(np.stack(np.meshgrid(x, x, indexing="ij"), -1).reshape(-1, 2), jnp.float32)
    f = np.asarray(jax.vmap(lambda v: -model.free_energy(v))(vv), np.float64).reshape(801, 801)
    dx = x[1] - x[0]
    ref = np.log(np.exp(f - f.max()).sum() * dx * dx) + f.max()
    assert abs(float(model.log_partition()) - ref) < 1e-3


def test_free_energy_is_log_sum_over_hidden(key):
    """Reference: F(v) = -log sum_h exp(-E(v, h)) by explicit enumeration of h."""
    model = _rbm(key, 5, 4, "spin")
    v = jnp.asarray([1, -1, 1, 1, -1])
    hs = [jnp.asarray(h) for h in itertools.product((0, 1), repeat=4)]
    ref = -np.logaddexp.reduce([-float(model.energy((v, h))) for h in hs])
    assert abs(float(model.free_energy(v)) - ref) < 1e-5


def _exact_visible_probs(model, values, n):
    configs = np.array(list(itertools.product(values, repeat=n)))
    logp = np.asarray(jax.vmap(lambda v: -model.free_energy(v))(jnp.asarray(configs)), np.float64)
    p = np.exp(logp - np.logaddexp.reduce(logp))
    return configs, p


def _samples_pvalue(samples, configs, p):
    index = {tuple(c): i for i, c in enumerate(configs.tolist())}
    counts = np.zeros(len(configs))
    for s in np.asarray(samples).astype(int).tolist():
        counts[index[tuple(s)]] += 1
    return chi2_pvalue(counts, p)


@pytest.mark.parametrize("visible,q,values", TYPES)
def test_block_gibbs_samples_exact_distribution(key, visible, q, values):
    """Reference: exact p(v) by enumeration. 4000 independent chains after 30 sweeps;
    chi-square p-value > 1e-4."""
    n = 4 if q == 2 else 3
    model = _rbm(key, n, 3, visible, q, scale=0.8)
    k0, k1 = jax.random.split(key)
    v0 = jax.random.randint(k0, (4000, n), 0, q)
    v0 = jnp.asarray(values, jnp.int32)[v0]
    states = sample_chains(k1, model, v0, 30)
    configs, p = _exact_visible_probs(model, values, n)
    assert _samples_pvalue(states.v, configs, p) > 1e-4


@pytest.mark.parametrize("visible,q,values", TYPES)
def test_sample_exact_draws_the_exact_distribution(key, visible, q, values):
    """Reference: exact p(v) by enumeration. 4000 draws of `RBM.sample_exact` (exact hidden
    marginal, then v | h); chi-square p-value > 1e-4."""
    n = 4 if q == 2 else 3
    model = _rbm(key, n, 3, visible, q, scale=1.2)
    samples = model.sample_exact(jax.random.fold_in(key, 7), 4000)
    configs, p = _exact_visible_probs(model, values, n)
    assert _samples_pvalue(samples, configs, p) > 1e-4


def test_parallel_tempering_of_block_gibbs(key):
    """Reference: exact p(v) at beta = 1. `sampling.parallel_tempering` around `block_gibbs`
    (swaps use the joint energy E(v, h)); 2000 independent PT chains of 3 replicas,
    40 steps; chi-square p-value > 1e-4 for the beta = 1 replica, and swaps are accepted."""
    model = _rbm(key, 4, 3, "bernoulli", scale=1.5)
    betas = jnp.asarray([0.4, 0.7, 1.0])
    pt = sampling.parallel_tempering(block_gibbs(), betas)
    n_chains = 2000
    k0, k1 = jax.random.split(key)
    v0 = jax.random.bernoulli(k0, 0.5, (n_chains, 3, 4)).astype(jnp.float32)
    states = jax.vmap(pt.init, in_axes=(0, None))(v0, model)

    def body(s, t):
        keys = jax.random.split(jax.random.fold_in(k1, t), n_chains)
        s, info = jax.vmap(pt.step, in_axes=(0, 0, None))(keys, s, model)
        return s, info.swap_accepted

    states, swaps = jax.lax.scan(body, states, jnp.arange(40))
    configs, p = _exact_visible_probs(model, (0, 1), 4)
    assert _samples_pvalue(states.states.v[:, -1], configs, p) > 1e-4
    assert float(jnp.nanmean(swaps)) > 0.1


def test_log_likelihood_exact_and_differentiable(key):
    """log-likelihood = mean(-F(data)) - log Z, and its gradient is finite."""
    model = _rbm(key, 6, 4, "bernoulli")
    data = jax.random.bernoulli(key, 0.5, (10, 6)).astype(jnp.float32)
    ll = model.log_likelihood(data)
    ref = float(jnp.mean(jax.vmap(lambda v: -model.free_energy(v))(data))) - float(
        model.log_partition(layer="visible")
    )
    assert abs(float(ll) - ref) < 1e-4
    g = jax.grad(lambda m: m.log_likelihood(data))(model)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))


def test_errors(key):
    with pytest.raises(ConfigError, match="visible must be"):
        RBM(jnp.zeros((3, 2)), visible="binary")
    with pytest.raises(ShapeError, match="W must have shape"):
        RBM(jnp.zeros((3, 2)), visible="potts")
    with pytest.raises(ShapeError, match="a must have shape"):
        RBM(jnp.zeros((3, 2)), a=jnp.zeros(2))
    big = RBM(jnp.zeros((30, 25)))
    with pytest.raises(ConfigError, match="use diffphys.training.ais"):
        big.log_partition()
    with pytest.raises(ShapeError, match="batch with jax.vmap"):
        block_gibbs().init(jnp.zeros((2, 30)), big)
    with pytest.raises(ConfigError, match="Gaussian visible"):
        RBM(jnp.zeros((3, 2)), visible="gaussian").log_partition(layer="visible")
