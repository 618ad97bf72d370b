"""Spherical Boltzmann machine: large-N log Z, posterior Langevin, MAP fit.

References: the exact partition function at J = 0 (surface of the sphere,
Z = N^{N/2-1} pi^{N/2} / Gamma(N/2) with the delta(|x|^2 - N) measure), importance sampling
from the uniform measure on the sphere for weak couplings, and the Gaussian (GOE-like)
prior, which the posterior Langevin dynamics must sample exactly when there are no data.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln

from diffphys.models import SphericalBM
from diffphys.models._spherical_bm import (
    ensemble_log_prob,
    map_fit,
    posterior_langevin,
    second_moment,
    to_sphere,
)

N = 30


def _exact_free_log_z(n):
    return (n / 2 - 1) * math.log(n) + n / 2 * math.log(math.pi) - gammaln(n / 2)


def test_log_z_at_zero_coupling():
    """Exact at J = 0 up to Stirling's correction 1/(6N) (0.0056 at N = 30)."""
    got = float(SphericalBM(jnp.zeros((N, N))).log_partition())
    assert abs(got - _exact_free_log_z(N)) < 1.2 / (6 * N)


def test_log_z_matches_importance_sampling(key):
    """Weak GOE couplings (semicircle radius 0.6 < 1, paramagnetic): the saddle point agrees
    with uniform-sphere importance sampling (4e5 points) within 5 sigma + 0.02 (O(1/N))."""
    k1, k2 = jax.random.split(key)
    a = jax.random.normal(k1, (N, N))
    model = SphericalBM(0.6 * (a + a.T) / jnp.sqrt(2.0 * N))
    x = to_sphere(jax.random.normal(k2, (400_000, N)))
    lw = np.asarray(0.5 * jnp.einsum("ni,ij,nj->n", x, model.J, x), np.float64)
    w = np.exp(lw - lw.max())
    ref = np.log(w.mean()) + lw.max() + _exact_free_log_z(N)
    err = w.std() / w.mean() / np.sqrt(w.size)
    assert abs(float(model.log_partition()) - ref) < 5 * err + 0.02
    assert abs(float(jnp.trace(model.second_moment())) - N) < 1e-3 * N


def test_posterior_langevin_samples_prior_without_data(key):
    """With M = 0 the posterior is the prior: off-diagonal J_ij ~ N(0, 1/(gamma N)) and
    J_ii ~ N(0, 2/(gamma N)). Euler-Maruyama with gamma N dt = 0.03 biases the variance by
    +1.5%. Variances over 64 chains x 435 pairs within 10% (>5 sigma of
    the chi-square spread of ~28000 samples)."""
    gamma = 2.0
    Js = posterior_langevin(
        key, jnp.zeros((N, N)), 0.0, gamma=gamma, n_models=64, n_steps=1000, dt=5e-4
    )
    iu = np.triu_indices(N, 1)
    off = np.asarray(Js)[:, iu[0], iu[1]]
    diag = np.asarray(jnp.diagonal(Js, axis1=1, axis2=2))
    assert abs(off.var() * gamma * N - 1) < 0.1
    assert abs(diag.var() * gamma * N / 2 - 1) < 0.15


def test_map_recovers_teacher_direction_and_ensemble_is_normalised(key):
    """With M = 2000 samples of a rank-one teacher (beta = 3), the MAP couplings' top
    eigenvector overlaps the teacher's direction by > 0.95; an ensemble of identical models
    has the log density of the model itself."""
    k1, k2 = jax.random.split(key)
    u = jax.random.normal(k1, (N,))
    u = u / jnp.linalg.norm(u)
    teacher = SphericalBM(3.0 * jnp.outer(u, u))
    x = teacher.sample(k2, 2000)
    fit = map_fit(second_moment(x), 2000.0, gamma=1.0, n_steps=1500, lr=0.1)
    top = jnp.linalg.eigh(fit.J)[1][:, -1]
    assert float(jnp.abs(top @ u)) > 0.95
    Js = jnp.stack([fit.J, fit.J])
    np.testing.assert_allclose(
        np.asarray(ensemble_log_prob(Js, x[:5])),
        np.asarray(jax.vmap(fit.log_prob)(x[:5])),
        rtol=1e-5,
    )
