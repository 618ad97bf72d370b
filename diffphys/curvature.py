"""Curvature of a scalar loss without forming its Hessian: Hessian-vector products and Lanczos.

```python
hvp = curvature.hvp(loss, params)            # v -> H v, v a pytree shaped like params
res = curvature.lanczos(key, hvp, params, n_iter=30)
res.eigenvalues[0], res.eigenvectors[0]       # lowest Ritz pair (eigenvector a pytree)
```

Both work on any pytree of parameters (arrays, equinox modules' arrays, dicts) and are
`jit`/`vmap`-able: `lanczos` runs a fixed number of iterations in `lax.fori_loop` with full
reorthogonalisation (Golub & Van Loan, *Matrix Computations*, sec. 10.1), so a batch of
Hessians along a trajectory or over an ensemble of students is one compiled call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._errors import ConfigError

__all__ = ["LanczosResult", "dense_hessian", "hvp", "lanczos"]


def hvp(loss: Callable[..., Any], params, *args) -> Callable[[Any], Any]:
    """The Hessian-vector product of `loss` at `params`, forward-over-reverse.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params`: the point (any pytree of floating arrays).
    - `args`: further arguments of `loss`, held fixed.

    **Returns:** `v -> H v` with $H = \\nabla^2_{\\theta} L(\\theta)$, `v` and the result
    pytrees shaped like `params`; computed as $\\partial_\\epsilon \\nabla L(\\theta +
    \\epsilon v)|_{\\epsilon=0}$ (`jax.jvp` of `jax.grad`), one gradient's cost per product.
    """
    grad = jax.grad(lambda p: loss(p, *args))

    def matvec(v):
        return jax.jvp(grad, (params,), (v,))[1]

    return matvec


def dense_hessian(loss: Callable[..., Any], params, *args) -> jax.Array:
    """The full Hessian of `loss` at `params` as an (n, n) matrix over the flattened
    parameters (`jax.flatten_util.ravel_pytree` order); for tests and small problems."""
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda f: loss(unravel(f), *args))(flat)


class LanczosResult(NamedTuple):
    """Ritz pairs of a symmetric operator, ascending.

    - `eigenvalues`: (k,) Ritz values, ascending (k = `n_iter`); the extreme ones converge
      first.
    - `eigenvectors`: pytree like `params` with a leading axis k, unit norm (flattened).
    - `residuals`: (k,) $|\\beta_k s_{k,i}|$, the norm of $Hv_i - \\theta_i v_i$ in exact
      arithmetic (an a-posteriori error bound on each Ritz value).
    """

    eigenvalues: jax.Array
    eigenvectors: Any
    residuals: jax.Array


def _eigh(a):
    """`jnp.linalg.eigh` of one symmetric matrix; under `vmap` one matrix at a time (jaxlib
    0.10.2's batched CPU eigh can deadlock two concurrent calls on a 2-core machine)."""
    w, v = jnp.linalg.eigh(a)
    return w, v


_eigh = jax.custom_batching.custom_vmap(_eigh)


@_eigh.def_vmap
def _eigh_vmap(axis_size, in_batched, a):
    return jax.lax.map(_eigh, a), (True, True)


def lanczos(
    key,
    matvec: Callable[[Any], Any],
    params,
    *,
    n_iter: int = 30,
) -> LanczosResult:
    """Extreme eigenvalues and eigenvectors of a symmetric linear operator by Lanczos.

    **Arguments:**

    - `key`: PRNG key for the random starting vector.
    - `matvec`: `v -> H v` on pytrees shaped like `params` (e.g. `hvp(loss, params)`).
    - `params`: a pytree giving the shape of the vectors (its values are not used).
    - `n_iter`: number of Lanczos steps k (static, `2 <= k <= n`); cost k products plus
      O(k^2 n) for the full reorthogonalisation.

    **Returns:** `LanczosResult` with the k Ritz pairs in ascending order: the lowest is
    `eigenvalues[0]`, `eigenvectors` (leading axis) `[0]`; the highest `[-1]`.

    Recurrence $\\beta_{j+1} q_{j+1} = H q_j - \\alpha_j q_j - \\beta_j q_{j-1}$ with every new
    vector orthogonalised twice against all previous ones (classical Gram-Schmidt, twice is
    enough), so there are no ghost eigenvalues; at an invariant subspace (breakdown,
    $\\beta \\approx 0$) the next vector is a fresh random one orthogonalised to the basis.
    The Ritz pairs are the eigenpairs of the k x k tridiagonal matrix $T$, mapped back by $Q$.
    """
    flat0, unravel = ravel_pytree(params)
    n = flat0.shape[0]
    if not isinstance(n_iter, int) or n_iter < 2:
        raise ConfigError(f"lanczos needs an integer n_iter >= 2, got {n_iter!r}.")
    if n_iter > n:
        raise ConfigError(
            f"lanczos n_iter = {n_iter} exceeds the dimension {n}; use n_iter <= {n}."
        )
    dtype = flat0.dtype

    def mv(x):
        return ravel_pytree(matvec(unravel(x)))[0].astype(dtype)

    k_start, k_fresh = jax.random.split(key)
    fresh = jax.random.normal(k_fresh, (n_iter, n), dtype)
    q0 = jax.random.normal(k_start, (n,), dtype)
    q0 = q0 / jnp.linalg.norm(q0)
    Q = jnp.zeros((n_iter, n), dtype).at[0].set(q0)
    alphas = jnp.zeros((n_iter,), dtype)
    betas = jnp.zeros((n_iter,), dtype)  # betas[j] couples q_j and q_{j+1}
    eps = jnp.finfo(dtype).eps

    def orth(Q, w, j):
        mask = (jnp.arange(n_iter) <= j).astype(dtype)
        for _ in range(2):
            w = w - Q.T @ (mask * (Q @ w))
        return w

    def body(j, carry):
        Q, alphas, betas = carry
        q = Q[j]
        w = mv(q)
        a = jnp.vdot(q, w)
        w = orth(Q, w, j)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(jnp.abs(a), 1.0)
        broke = b <= 1e3 * eps * scale * jnp.sqrt(n)
        r = orth(Q, fresh[j], j)
        r = orth(Q, r, j)
        nxt = jnp.where(broke, r / jnp.linalg.norm(r), w / jnp.where(broke, 1.0, b))
        b = jnp.where(broke, 0.0, b)
        Q = jnp.where(j + 1 < n_iter, Q.at[(j + 1) % n_iter].set(nxt), Q)
        return Q, alphas.at[j].set(a), betas.at[j].set(b)

    Q, alphas, betas = jax.lax.fori_loop(0, n_iter, body, (Q, alphas, betas))
    T = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    theta, S = _eigh(T)
    vecs = S.T @ Q  # (k, n)
    residuals = jnp.abs(betas[-1] * S[-1, :])
    return LanczosResult(theta, jax.vmap(unravel)(vecs), residuals)
