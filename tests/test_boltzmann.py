"""Boltzmann learning and MCH (`training.fit_boltzmann`, `training.fit_mch`) against the exact
maximum-likelihood solution by enumeration (`diffphys.exact`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import ConfigError, ShapeError, exact, models, sampling, training

N = 5
N_SEEDS = 4


def exact_ml(m, C, n_iter=60):
    """Exact maximum likelihood: damped Newton on the convex negative log-likelihood with
    moments and Hessian (feature covariance) by enumeration of all 2^N states."""
    n = m.shape[0]
    iu = jnp.triu_indices(n, 1)
    x = exact.all_configurations(models.SK(jnp.zeros((n, n), m.dtype))).astype(m.dtype)
    phi = jnp.concatenate([x, (x[:, :, None] * x[:, None, :])[:, iu[0], iu[1]]], 1)
    target = jnp.concatenate([m, C[iu]])

    def step(theta, _):
        p = jax.nn.softmax(phi @ theta)
        mu = p @ phi
        cov = phi.T @ (p[:, None] * phi) - jnp.outer(mu, mu)
        d = jnp.linalg.solve(cov, target - mu)
        return theta + d * jnp.minimum(1.0, 0.5 / jnp.max(jnp.abs(d))), None

    theta, _ = jax.lax.scan(step, jnp.zeros(phi.shape[1], m.dtype), None, length=n_iter)
    J = jnp.zeros((n, n), m.dtype).at[iu].set(theta[n:])
    return theta[:n], J + J.T


@jax.jit
def exact_moments(J, h):
    model = models.SK(J, h)
    x = exact.all_configurations(model).astype(J.dtype)
    p = jax.nn.softmax(-jax.vmap(model.energy)(x))
    return p @ x, x.T @ (p[:, None] * x)


@pytest.fixture(scope="module")
def problem():
    """Planted SK-like model (N = 5, J ~ 0.4 N(0,1), h ~ 0.3 N(0,1)), 2000 exact samples drawn
    from its enumerated Boltzmann law, their moments and the exact ML fit to them."""
    k1, k2, k3 = jax.random.split(jax.random.key(11), 3)
    J0 = jnp.triu(0.4 * jax.random.normal(k1, (N, N)), 1)
    planted = models.SK(J0 + J0.T, 0.3 * jax.random.normal(k2, (N,)))
    x = exact.all_configurations(planted).astype(jnp.float32)
    s = x[jax.random.categorical(k3, -jax.vmap(planted.energy)(x), shape=(2000,))]
    m, C = s.mean(0), s.T @ s / s.shape[0]
    h_ml, J_ml = jax.jit(exact_ml)(m, C)
    mm, CC = exact_moments(J_ml, h_ml)
    assert float(jnp.max(jnp.abs(mm - m))) < 1e-5 and float(jnp.max(jnp.abs(CC - C))) < 1e-5
    return m, C, h_ml, J_ml


def _check_against_ml(res, m, C, h_ml, J_ml, z_max=5.0):
    """Each seed's fitted moments (exact, by enumeration) and couplings: the mean over seeds
    within z_max standard errors (seed-to-seed spread / sqrt(seeds)) of the target / ML value,
    for every moment and every parameter (the spread measures the Monte Carlo error)."""
    assert bool(jnp.all(res.converged)), res.moment_error
    mm, CC = jax.vmap(exact_moments)(res.model.J, res.model.h)
    iu = np.triu_indices(N, 1)
    for fit, ref in ((mm, m), (CC[:, iu[0], iu[1]], C[iu]), (res.model.h, h_ml),
                     (res.model.J[:, iu[0], iu[1]], J_ml[iu])):  # fmt: skip
        fit = np.asarray(fit)
        se = fit.std(0, ddof=1) / np.sqrt(fit.shape[0])
        z = np.abs(fit.mean(0) - np.asarray(ref)) / se
        assert np.all(z < z_max), (z, fit.mean(0), ref, se)


def test_boltzmann_learning_matches_exact_ml(problem):
    """Reference: exact ML by enumeration (Newton, residual < 1e-5). Boltzmann learning with
    persistent `sk_metropolis` chains, 4 seeds vmapped: fitted moments and (h, J) within 5
    standard errors of the seed spread of the exact values (measured max |z| ~ 2-3); the
    absolute coupling error is also bounded (< 0.05; measured 0.01-0.03)."""
    m, C, h_ml, J_ml = problem
    fit = jax.jit(
        jax.vmap(lambda k: training.fit_boltzmann(k, m, C, n_steps=400, n_chains=64, k=2))
    )
    res = fit(jax.random.split(jax.random.key(1), N_SEEDS))
    _check_against_ml(res, m, C, h_ml, J_ml)
    assert float(jnp.max(jnp.abs(res.model.J - J_ml))) < 0.05


@pytest.mark.slow
def test_mch_matches_exact_ml(problem):
    """Reference: as above, for the Monte Carlo histogram method (Broderick et al. 2007) with
    the generic heat-bath sampler; resampling happens (ESS guard or age) on 5-50% of updates.
    Its reweighted moment mismatch is noisier than Boltzmann learning's (tol 0.05). Slow (~25 s
    on a loaded 2-core CPU); CI runs `test_mch_small`."""
    m, C, h_ml, J_ml = problem
    fit = jax.jit(
        jax.vmap(
            lambda k: training.fit_mch(
                k,
                m,
                C,
                n_steps=200,
                n_chains=64,
                n_per_chain=20,
                sampler=sampling.heat_bath(),
                tol=0.05,
            )
        )
    )
    res = fit(jax.random.split(jax.random.key(2), 2 * N_SEEDS))
    _check_against_ml(res, m, C, h_ml, J_ml)
    frac = np.asarray(res.trace["metrics"]["resampled"])
    assert np.all((frac > 0.05) & (frac < 0.5)), frac


@pytest.mark.slow
def test_mch_small(problem):
    """Reference: exact ML by enumeration. One MCH fit (sk_metropolis chains, 100 updates):
    exact moments of the fitted model within 0.06 of the targets and couplings within 0.15 of
    the ML couplings (measured 0.02-0.04 and 0.04-0.08 over seeds; J = 0, the starting point,
    is 0.8 away), and at least one reweighted update per sampling."""
    m, C, h_ml, J_ml = problem
    res = jax.jit(lambda k: training.fit_mch(k, m, C, n_steps=100, n_chains=64, tol=0.06))(
        jax.random.key(4)
    )
    assert bool(res.converged), res.moment_error
    mm, CC = exact_moments(res.model.J, res.model.h)
    assert float(jnp.max(jnp.abs(mm - m))) < 0.06 and float(jnp.max(jnp.abs(CC - C))) < 0.06
    assert float(jnp.max(jnp.abs(res.model.J - J_ml))) < 0.15
    assert float(jnp.max(res.trace["metrics"]["resampled"])) < 0.5


@pytest.mark.slow
def test_mask_and_vmap_over_data_sets(problem):
    """Reference: the masked maximum-likelihood problem's defining property: couplings outside
    the mask stay exactly zero, and the fitted model matches the target moments on the mask
    (by enumeration, < 0.03 ~ 5 x the MC noise of a single fit). Two data sets (the targets
    and their spin-flipped copy, whose ML solution has h -> -h, same J) fitted in one vmap."""
    m, C, _, _ = problem
    mask = jnp.ones((N, N)) - jnp.eye(N)
    mask = mask.at[0, 1].set(0.0).at[1, 0].set(0.0)
    ms = jnp.stack([m, -m])
    Cs = jnp.stack([C, C])
    res = jax.jit(
        jax.vmap(lambda mm, cc: training.fit_boltzmann(
            jax.random.key(3), mm, cc, n_steps=200, n_chains=64, k=2, mask=mask))
    )(ms, Cs)  # fmt: skip
    assert np.all(np.asarray(res.model.J)[:, 0, 1] == 0.0)
    for i in range(2):
        mm, CC = exact_moments(res.model.J[i], res.model.h[i])
        assert float(jnp.max(jnp.abs(mm - ms[i]))) < 0.03
        assert float(jnp.max(jnp.abs((CC - C) * mask))) < 0.03
    np.testing.assert_allclose(res.model.J[0], res.model.J[1], atol=0.06)


def test_bad_input():
    """Reference: the error contract (one-line ShapeError / ConfigError before compiling)."""
    with pytest.raises(ShapeError, match="N >= 2"):
        training.boltzmann_learning(jnp.zeros(1), jnp.ones((1, 1)))
    with pytest.raises(ShapeError, match="mask"):
        training.boltzmann_learning(jnp.zeros(3), jnp.eye(3), mask=jnp.ones((2, 2)))
    with pytest.raises(ConfigError, match="symmetric"):
        training.boltzmann_learning(jnp.zeros(3), jnp.eye(3), mask=jnp.triu(jnp.ones((3, 3))))
    with pytest.raises(ConfigError, match="min_ess"):
        training.monte_carlo_histogram(jnp.zeros(3), jnp.eye(3), min_ess=0.0)
    with pytest.raises(ConfigError, match="n_chains"):
        training.fit_boltzmann(jax.random.key(0), jnp.zeros(3), jnp.eye(3), n_chains=0)


# -- Potts -----------------------------------------------------------------------------------

Q = 3


def _potts_features():
    """One-hot states of all Q^N configurations, (Q^N, N, Q)."""
    idx = np.arange(Q**N)[:, None] // Q ** np.arange(N)[None, :] % Q
    return jax.nn.one_hot(jnp.asarray(idx), Q, dtype=jnp.float32)


@jax.jit
def potts_moments(h, J):
    """Exact one- and two-site frequencies of PairwisePotts(h, J), by enumeration."""
    X = _potts_features()
    E = -jnp.einsum("sia,ia->s", X, h) - 0.5 * jnp.einsum("sia,ijab,sjb->s", X, J, X)
    p = jax.nn.softmax(-E)
    return jnp.einsum("s,sia->ia", p, X), jnp.einsum("s,sia,sjb->ijab", p, X, X)


def exact_ml_potts(m, C, n_iter=40):
    """Exact Potts maximum likelihood: damped Newton on the minimal parametrisation (state 0
    dropped, N(Q-1) fields and (Q-1)^2 couplings per pair) by enumeration of all Q^N states;
    returned in the zero-sum gauge."""
    X = _potts_features()[:, :, 1:]
    iu = np.triu_indices(N, 1)
    pair = jnp.einsum("sia,sjb->sijab", X, X)[:, iu[0], iu[1]].reshape(X.shape[0], -1)
    phi = jnp.concatenate([X.reshape(X.shape[0], -1), pair], 1)
    target = jnp.concatenate([m[:, 1:].reshape(-1), C[iu[0], iu[1]][:, 1:, 1:].reshape(-1)])

    def step(theta, _):
        p = jax.nn.softmax(phi @ theta)
        mu = p @ phi
        cov = phi.T @ (p[:, None] * phi) - jnp.outer(mu, mu)
        d = jnp.linalg.solve(cov, target - mu)
        return theta + d * jnp.minimum(1.0, 0.5 / jnp.max(jnp.abs(d))), None

    theta, _ = jax.lax.scan(step, jnp.zeros(phi.shape[1]), None, length=n_iter)
    nh = N * (Q - 1)
    h = jnp.zeros((N, Q)).at[:, 1:].set(theta[:nh].reshape(N, Q - 1))
    J = jnp.zeros((N, N, Q, Q)).at[iu[0], iu[1], 1:, 1:].set(theta[nh:].reshape(-1, Q - 1, Q - 1))
    return models.PairwisePotts(h, J + J.transpose(1, 0, 3, 2)).zero_sum_gauge()


@pytest.fixture(scope="module")
def potts_problem():
    """Planted PairwisePotts (N = 5, q = 3, h ~ 0.4 N(0,1), J ~ 0.4 N(0,1), zero-sum gauge),
    2000 exact samples from its enumerated law, their frequencies and the exact ML fit."""
    k1, k2 = jax.random.split(jax.random.key(3))
    planted = models.PairwisePotts.sample(k1, N, Q, scale_h=0.4, scale_J=0.4)
    X = _potts_features()
    E = -jnp.einsum("sia,ia->s", X, planted.h) - 0.5 * jnp.einsum(
        "sia,ijab,sjb->s", X, planted.J, X
    )
    s = jnp.argmax(X, -1)[jax.random.categorical(k2, -E, shape=(2000,))]
    m, C = training.spin_moments(training.spin_data(np.asarray(s), kind="potts", q=Q))
    ml = jax.jit(exact_ml_potts)(m, C)
    mm, CC = potts_moments(ml.h, ml.J)
    assert float(jnp.max(jnp.abs(mm - m))) < 1e-4 and float(jnp.max(jnp.abs(CC - C))) < 1e-4
    return m, C, ml


@pytest.mark.slow  # ~25 s of CPU (fixture ~9 s, fit compile ~15 s): over the CI budget
def test_potts_boltzmann_learning_matches_exact_ml(potts_problem):
    """Reference: exact Potts ML by enumeration (Newton on the minimal parametrisation,
    residual < 1e-4), compared in the zero-sum gauge. Boltzmann learning with persistent
    heat-bath (random-scan Gibbs) chains on `PairwisePotts`, 8 seeds vmapped: the seed mean of
    every field, coupling and exact model frequency within 5 standard errors of the seed
    spread of the ML / data values (measured max |z| 2.5 for J, 1.8 for h), and every seed's
    couplings within 0.1 of ML (measured 0.05-0.07; the couplings reach 0.85 and the
    independent-site start J = 0 is that far away)."""
    m, C, ml = potts_problem
    fit = jax.jit(
        jax.vmap(lambda k: training.fit_boltzmann(k, m, C, n_steps=400, n_chains=64, k=2))
    )
    res = fit(jax.random.split(jax.random.key(1), 8))
    assert bool(jnp.all(res.converged)), res.moment_error
    assert isinstance(res.model, models.PairwisePotts)
    np.testing.assert_allclose(np.asarray(res.model.J.sum(axis=3)), 0.0, atol=1e-5)
    mm, CC = jax.vmap(potts_moments)(res.model.h, res.model.J)
    for fit_v, ref in ((mm, m), (CC, C), (res.model.h, ml.h), (res.model.J, ml.J)):
        fit_v, ref = np.asarray(fit_v), np.asarray(ref)
        se = fit_v.std(0, ddof=1) / np.sqrt(fit_v.shape[0])
        z = np.abs(fit_v.mean(0) - ref)[se > 0] / se[se > 0]
        assert np.all(z < 5.0), (z.max(), np.abs(fit_v.mean(0) - ref).max())
    assert float(jnp.max(jnp.abs(res.model.J - ml.J))) < 0.1


@pytest.mark.slow
def test_potts_mch_matches_exact_ml(potts_problem):
    """Reference: exact Potts ML by enumeration. MCH (Broderick et al. 2007) with the
    one-hot reweighting of the module docstring, one fit: exact model frequencies within 0.03
    of the data and couplings within 0.15 of ML."""
    m, C, ml = potts_problem
    res = jax.jit(lambda k: training.fit_mch(k, m, C, n_steps=300, n_chains=64, tol=0.05))(
        jax.random.key(5)
    )
    assert bool(res.converged), res.moment_error
    mm, CC = potts_moments(res.model.h, res.model.J)
    assert float(jnp.max(jnp.abs(mm - m))) < 0.03 and float(jnp.max(jnp.abs(CC - C))) < 0.03
    assert float(jnp.max(jnp.abs(res.model.J - ml.J))) < 0.15


def test_potts_bad_input():
    """Reference: the error contract for Potts targets (one-line errors before compiling)."""
    m = jnp.full((4, 3), 1 / 3)
    with pytest.raises(ShapeError, match="two-site"):
        training.boltzmann_learning(m, jnp.zeros((4, 4, 3, 2)))
    with pytest.raises(ConfigError, match="sum to 1"):
        training.boltzmann_learning(2 * m, jnp.zeros((4, 4, 3, 3)))
    with pytest.raises(ConfigError, match="PairwisePotts"):
        training.fit_boltzmann(jax.random.key(0), m, jnp.zeros((4, 4, 3, 3)),
                               init=models.SK(jnp.zeros((4, 4))))  # fmt: skip
    with pytest.raises(ConfigError, match="q must"):
        training.init_spins(jax.random.key(0), 4, 8, q=1)
