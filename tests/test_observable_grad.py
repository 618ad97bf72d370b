"""Derivatives of Monte Carlo averages (`training.fluctuation_surrogate`,
`training.langevin_pathwise`) against exact derivatives: enumeration, the 2D Ising transfer
matrix, and the closed-form stationary law of Langevin dynamics in a quadratic well."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import exact, models, training


def _batched(estimate, samples, n_batches=20):
    """Estimate on the full sample and its standard error from `n_batches` disjoint batches."""
    full = estimate(samples)
    parts = jnp.stack([estimate(b) for b in jnp.split(samples, n_batches)])
    return np.asarray(full), np.asarray(parts.std(0, ddof=1) / np.sqrt(n_batches))


def test_fluctuation_estimator_vs_enumeration(key):
    """Reference: exact derivatives by enumeration (jax.grad of exact averages, N = 6 SK with
    fields): d<s_0 s_1>/dh and d<s_0 s_1>/dJ and d<E>/dbeta = -Var E, against the fluctuation
    estimator on 20000 exact samples, within 5 batch standard errors."""
    k1, k2 = jax.random.split(key)
    sk = models.SK.sample(k1, 6, h=0.3)
    beta = 0.8
    x = exact.all_configurations(sk)

    def exact_avg(J, h, b, f):
        model = models.SK(J, h)
        p = jax.nn.softmax(-b * jax.vmap(model.energy)(x))
        return p @ jax.vmap(f)(x)

    def o(s):
        return (s[0] * s[1]).astype(jnp.float32)

    g_exact = jax.grad(exact_avg, argnums=(0, 1))(sk.J, sk.h, beta, o)
    logp = -beta * jax.vmap(sk.energy)(x)
    samples = x[jax.random.categorical(k2, logp, shape=(20000,))]

    def est(s):
        def surrogate(J, h):
            model = models.SK(J, h)
            return training.fluctuation_surrogate(model.energy, o, s, beta)

        gJ, gh = jax.grad(surrogate, argnums=(0, 1))(sk.J, sk.h)
        return jnp.concatenate([gh, gJ[0, 1:3]])

    ref = np.concatenate([np.asarray(g_exact[1]), 2 * np.asarray(g_exact[0][0, 1:3])])
    val, err = _batched(jax.jit(est), samples)
    # the SK module holds J symmetrised: grad w.r.t. J[0, j] is half the pair derivative
    val = np.concatenate([val[:6], 2 * val[6:]])
    err = np.concatenate([err[:6], 2 * err[6:]])
    assert np.all(np.abs(val - ref) < 5 * err), (val, ref, err)

    de_exact = jax.grad(lambda b: exact_avg(sk.J, sk.h, b, sk.energy))(beta)

    def est_beta(s):
        return jax.grad(lambda b: training.fluctuation_surrogate(sk.energy, sk.energy, s, b))(
            jnp.float32(beta)
        )

    v, e = _batched(jax.jit(est_beta), samples)
    assert abs(v - float(de_exact)) < 5 * e, (v, de_exact, e)


# slow: its transfer-matrix second derivative is now a cheap forward-over-reverse HVP (4 CPU s
# with compilation), but the fluctuation estimator on 20000 lattice samples did not finish in
# 6 minutes on the loaded 2-core machine (not analysed here; see the api13 report).
@pytest.mark.slow
def test_energy_beta_derivative_vs_transfer_matrix(key):
    """Reference: the 2D Ising transfer matrix (4 x 4 torus): d<E>/dbeta = -Var E =
    -d^2 ln Z / dbeta^2 (`exact.ising_transfer_hvp`, forward over reverse), against the
    fluctuation estimator on 20000 exact samples of the lattice (enumerated), within 5 batch
    standard errors."""
    beta = 0.35
    model = models.Ising((4, 4))
    x = exact.all_configurations(model)
    e = jax.vmap(model.energy)(x)
    samples = x[jax.random.categorical(key, -beta * e, shape=(20000,))]
    J = jnp.ones((2, 4, 4), jnp.float32)
    zero = jnp.zeros_like(J)
    var_e = exact.ising_transfer_hvp(J, 0.0, beta, tangents=(zero, 0.0, 1.0))[2]

    def est(s):
        return jax.grad(lambda b: training.fluctuation_surrogate(model.energy, model.energy, s, b))(
            jnp.float32(beta)
        )

    v, err = _batched(jax.jit(est), samples)
    assert abs(v + float(var_e)) < 5 * err, (v, -var_e, err)


def test_langevin_pathwise_quadratic(key):
    """Reference: closed form. Euler–Maruyama Langevin in E = k x^2 / 2 (x in R^4) has the
    stationary variance 2 / (beta k (2 - k dt)) per coordinate (exact for the discretised
    chain), so d<|x|^2>/dk = -4 * 2 (2 - 2 k dt) / (beta k^2 (2 - k dt)^2). The pathwise
    gradient through 64 fixed-noise trajectories agrees within 5 standard errors over chains."""

    class Well(models.AbstractModel):
        k: jax.Array

        def energy(self, x):
            return 0.5 * self.k * jnp.sum(x**2)

    k0, beta, dt = 1.5, 2.0, 0.05

    def one(kk, stiffness):
        return training.langevin_pathwise(
            kk, lambda t: Well(t), stiffness, jnp.zeros(4), lambda x: jnp.sum(x**2),
            n_steps=3000, n_burn=200, dt=dt, beta=beta,
        )  # fmt: skip

    g = jax.jit(jax.vmap(jax.value_and_grad(one, argnums=1), in_axes=(0, None)))
    vals, grads = g(jax.random.split(key, 64), jnp.float32(k0))
    var = 2.0 / (beta * k0 * (2 - k0 * dt))
    dvar = -2.0 * (2 - 2 * k0 * dt) / (beta * k0**2 * (2 - k0 * dt) ** 2)
    se = lambda a: float(np.std(a, ddof=1) / np.sqrt(a.size))  # noqa: E731
    assert abs(float(np.mean(vals)) - 4 * var) < 5 * se(np.asarray(vals))
    assert abs(float(np.mean(grads)) - 4 * dvar) < 5 * se(np.asarray(grads)), (
        np.mean(grads),
        4 * dvar,
        se(np.asarray(grads)),
    )
