"""Entropy production rates from scores (Boffi & Vanden-Eijnden, arXiv 2309.12991)."""

import equinox as eqx
import jax
import numpy as np
import optax
import pytest

from diffphys import ConfigError, models, theory, training

A = np.array([[1.0, -1.5], [0.7, 2.0]])  # non-symmetric drift: a non-equilibrium steady state
D = np.array([1.0, 0.5])


def test_linear_closed_form():
    """Reference: for A = I + w J (J the 2D rotation generator) and D = I the steady state is
    N(0, I), the velocity is v = -w J x and the entropy production is 2 w^2; a symmetric D^{-1}A
    (detailed balance) gives 0. The Lyapunov covariance solves A S + S A^T = 2D."""
    j = np.array([[0.0, -1.0], [1.0, 0.0]])
    for w in (0.0, 0.5, 2.0):
        np.testing.assert_allclose(
            theory.linear_entropy_production(np.eye(2) + w * j, 1.0), 2 * w**2, atol=1e-10
        )
    sym = np.array([[2.0, 0.3], [0.3, 1.0]])
    np.testing.assert_allclose(theory.linear_entropy_production(sym, 1.0), 0.0, atol=1e-10)
    s = theory.lyapunov_covariance(A, D)
    np.testing.assert_allclose(A @ s + s @ A.T, 2 * np.diag(D), atol=1e-10)
    with pytest.raises(ConfigError):
        theory.lyapunov_covariance(-np.eye(2), 1.0)


def test_exact_score_and_path_estimators_match_closed_form(key):
    """Reference: the closed form tr(D^-1 M S M^T) for the linear process. (i) E[v D^-1 v] with
    the exact score -S^-1 x over 50000 exact steady-state samples (5 standard errors); (ii) the
    Stratonovich entropy flow b.D^-1 o dx along 1000 Euler–Maruyama paths of length 4 with
    dt = 2e-3 (5 standard errors + 4% discretisation bias)."""
    ou = models.LinearOU(A, D)
    exact = ou.entropy_production()
    k1, k2, k3 = jax.random.split(key, 3)
    x = ou.sample_stationary(k1, 50000)
    est, se = models.entropy_production_rate(ou.drift, ou.diffusion, ou.score, x)
    assert abs(float(est) - exact) < 5 * float(se)
    x0 = ou.sample_stationary(k2, 1000)
    _, rec = models.simulate_with_entropy_production(
        k3, ou.drift, ou.diffusion, x0, dt=2e-3, n_steps=2000
    )
    rate = np.asarray(rec["entropy"][-1]) / 4.0
    assert abs(rate.mean() - exact) < 5 * rate.std() / np.sqrt(rate.size) + 0.04 * exact


@pytest.mark.parametrize("system", ["linear-2d", "active-particle"])
def test_learned_score_entropy_production(key, system):
    """Reference: the closed-form entropy production of a linear process. A ScoreMLP trained
    by implicit score matching (through diffphys.training.train) on 20000 steady-state samples
    gives the entropy production within 10% (Boffi & Vanden-Eijnden's estimator), for the 2D
    OU process above and for one active OU particle in a 2D trap (state (x, eta), 4
    dimensions; `ActiveOUParticles.drift` with the learned score, the exact rate from its
    linear form at epsilon = 0): the learned active rate the `entropy-production` experiment
    reports is checked here against the exact value, not only for being finite."""
    if system == "linear-2d":
        ou = models.LinearOU(A, D)
        drift, diffusion = ou.drift, ou.diffusion
    else:
        ap = models.ActiveOUParticles(1, 2, epsilon=0.0, tau=1.0, d_t=1.0, d_a=1.0)
        ou = ap.as_linear()
        drift, diffusion = ap.drift, ap.diffusion
    exact = ou.entropy_production()
    k1, k2, k3, k4 = jax.random.split(key, 4)
    x = ou.sample_stationary(k1, 20000)
    net = models.ScoreMLP(x.shape[-1], width=32, depth=2, conditional=False, key=k2)
    params, static = training.split_model(net)
    grad_fn = training.implicit_score_matching(static, x, 256)
    with jax.numpy_dtype_promotion("standard"):  # optax.adam's bias correction (see test_diffusion)
        state, _ = training.train(k3, params, grad_fn, optax.adam(3e-3), 2000)
    learned = eqx.combine(state.params, static)
    est, _ = models.entropy_production_rate(
        drift, diffusion, learned, ou.sample_stationary(k4, 20000)
    )
    assert abs(float(est) - exact) < 0.1 * exact, (float(est), exact)


def test_active_particles_linear_limit():
    """Reference: non-interacting active OU particles in a harmonic trap are a linear OU process;
    their drift equals -A z of as_linear(), and at equal persistence they are out of
    equilibrium (entropy production > 0), which vanishes as the active noise D_a -> 0."""
    ap = models.ActiveOUParticles(2, 2, epsilon=0.0, tau=0.5, d_a=2.0)
    lin = ap.as_linear()
    z = np.linspace(-1, 1, ap.state_dim).astype(np.float32)
    np.testing.assert_allclose(ap.drift(z), lin.drift(z), rtol=1e-6, atol=1e-6)
    assert lin.entropy_production() > 0.1
    weak = models.ActiveOUParticles(2, 2, epsilon=0.0, tau=0.5, d_a=1e-6).as_linear()
    assert weak.entropy_production() < 1e-4
    with pytest.raises(ConfigError):
        models.ActiveOUParticles(2, 2, epsilon=1.0).as_linear()
