"""Hessian-vector products and Lanczos against dense `jnp.linalg.eigh` (the reference)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from diffphys import ConfigError, curvature


def _loss(p, c):
    """A non-quadratic loss over a dict pytree (two leaves of different shapes)."""
    x = jnp.concatenate([p["w"].ravel(), p["b"]])
    return jnp.sum(jnp.cos(c @ x)) + 0.25 * jnp.sum(x**4) + 0.5 * x @ x


@pytest.fixture(scope="module")
def problem():
    k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
    params = {"w": jax.random.normal(k1, (4, 5)), "b": jax.random.normal(k2, (6,))}
    c = jax.random.normal(k3, (26, 26)) / 3
    return params, c


def test_hvp_matches_dense_hessian(problem):
    """Reference: `jax.hessian` of the flattened loss applied to random vectors."""
    params, c = problem
    H = np.asarray(curvature.dense_hessian(_loss, params, c), np.float64)
    np.testing.assert_allclose(H, H.T, atol=1e-4)
    hv = curvature.hvp(_loss, params, c)
    _, unravel = ravel_pytree(params)
    for i in range(3):
        v = jax.random.normal(jax.random.key(i), (26,))
        flat = np.asarray(ravel_pytree(hv(unravel(v)))[0])
        np.testing.assert_allclose(flat, H @ np.asarray(v), rtol=1e-4, atol=1e-4)


def test_lanczos_extreme_pairs_match_eigh(problem):
    """Reference: dense `jnp.linalg.eigh` of the same Hessian (n = 26). With n_iter = n and
    full reorthogonalisation Lanczos is exact: all Ritz values equal the eigenvalues to float32
    precision, and the extreme Ritz vectors are the eigenvectors up to sign."""
    params, c = problem
    H = curvature.dense_hessian(_loss, params, c)
    lam, vec = np.linalg.eigh(np.asarray(H, np.float64))
    res = curvature.lanczos(jax.random.key(1), curvature.hvp(_loss, params, c), params, n_iter=26)
    scale = np.max(np.abs(lam))
    np.testing.assert_allclose(np.asarray(res.eigenvalues), lam, atol=2e-5 * scale)
    for i in (0, -1):
        v = np.asarray(ravel_pytree(jax.tree.map(lambda a: a[i], res.eigenvectors))[0])
        assert abs(abs(v @ vec[:, i]) - 1) < 1e-4
    assert np.all(np.asarray(res.residuals) < 1e-3 * scale)


def test_lanczos_few_iterations_large_gap(key):
    """Reference: dense eigh of a 300 x 300 matrix with two isolated outliers (a spiked
    Wishart matrix, -4 and 9 against a bulk in [0.25, 2.25]): 30 iterations resolve both
    outliers to 1e-4 and their eigenvectors to overlap 1 - 1e-4; vmapped over 3 starts."""
    k1, k2 = jax.random.split(key)
    n = 300
    X = jax.random.normal(k1, (4 * n, n)) / jnp.sqrt(4.0 * n)
    u = jax.random.normal(k2, (2, n))
    u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
    A = X.T @ X - 5.0 * jnp.outer(u[0], u[0]) + 8.0 * jnp.outer(u[1], u[1])
    A = (A + A.T) / 2
    lam, vec = np.linalg.eigh(np.asarray(A, np.float64))
    x0 = jnp.zeros(n)

    def one(k):
        return curvature.lanczos(k, lambda v: A @ v, x0, n_iter=30)

    res = jax.vmap(one)(jax.random.split(key, 3))
    for b in range(3):
        for i in (0, -1):
            assert abs(float(res.eigenvalues[b, i]) - lam[i]) < 1e-4 * abs(lam[i]) + 1e-4
            assert abs(abs(float(res.eigenvectors[b, i] @ vec[:, i])) - 1) < 1e-4


def test_lanczos_breakdown_low_rank(key):
    """Reference: a rank-2 matrix diag(3, -1, 0, ...): Lanczos hits an invariant subspace after
    3 steps; the restart keeps the basis orthonormal and the extreme Ritz values exact."""
    n = 20
    A = jnp.zeros((n, n)).at[0, 0].set(3.0).at[1, 1].set(-1.0)
    res = curvature.lanczos(key, lambda v: A @ v, jnp.zeros(n), n_iter=8)
    assert np.all(np.isfinite(np.asarray(res.eigenvalues)))
    np.testing.assert_allclose(float(res.eigenvalues[0]), -1.0, atol=1e-5)
    np.testing.assert_allclose(float(res.eigenvalues[-1]), 3.0, atol=1e-5)


def test_lanczos_bad_input():
    with pytest.raises(ConfigError, match="n_iter"):
        curvature.lanczos(jax.random.key(0), lambda v: v, jnp.zeros(5), n_iter=6)
    with pytest.raises(ConfigError, match="n_iter"):
        curvature.lanczos(jax.random.key(0), lambda v: v, jnp.zeros(5), n_iter=1)
