r"""Information geometry of exponential families: Fisher metric, third cumulants, curvature.

An exponential family $p_\theta(x) = \exp(\theta \cdot \phi(x) - \psi(\theta))$ is fixed by
its log-partition function $\psi$. In the natural coordinates $\theta$:

- the Fisher metric is the covariance of the sufficient statistics,
  $g_{ij} = \partial_i \partial_j \psi$;
- the third cumulants are $T_{ijk} = \partial_i \partial_j \partial_k \psi$ (the Amari–Chentsov
  tensor);
- the Levi-Civita connection of $g$ has $\Gamma_{ij,k} = \tfrac12 T_{ijk}$, and because
  $\partial_l T_{ijk}$ is totally symmetric the fourth cumulants cancel from the Riemann tensor:

  $$R_{ijkl} = \tfrac14 g^{pq}\,(T_{jkp} T_{ilq} - T_{ikp} T_{jlq})$$

  (indices ordered so that $R = g^{ik} g^{jl} R_{ijkl}$), whose full contraction is the scalar
  curvature

  $$R = \tfrac14 \big( T_{ijk} T^{ijk} - T_i T^i \big), \qquad T_i = g^{jk} T_{ijk},$$

  indices raised with $g^{-1}$ (Amari & Nagaoka, *Methods of Information Geometry*, 2000,
  §2.3 and §3.3 with $\alpha = 0$; Shima, *The Geometry of Hessian Structures*, 2007).

**Sign convention.** The usual one of Riemannian geometry: a round sphere has $R > 0$ and a
hyperbolic space $R < 0$. In it the univariate Gaussian family $N(\mu, \sigma^2)$, whose Fisher
metric $(d\mu^2 + 2\,d\sigma^2)/\sigma^2$ is a hyperbolic plane of Gaussian curvature
$K = -1/2$, has $R = 2K = -1$ everywhere; a categorical distribution on $k$ outcomes (a piece
of a sphere of radius 2) has $R = (k-1)(k-2)/4$; any one-parameter family and any product of
one-parameter families has $R = 0$. These are the tests in `tests/test_fisher.py`.

The contraction is done in an orthonormal frame of $g$ (a Cholesky factor), in $O(m^4)$ time
and $O(m^3)$ memory for $m$ parameters; the Riemann tensor is never built.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jax.flatten_util import ravel_pytree

from .._errors import ConfigError, ShapeError
from .._types import Array, Float
from ..exact import ising_critical_coupling, ising_transfer_log_z


class FisherGeometry(NamedTuple):
    """Fisher metric, third cumulants and scalar curvature at one point of a family."""

    metric: Float[Array, "m m"]
    """$g_{ij} = \\partial_i \\partial_j \\psi$: the covariance of the sufficient statistics."""
    cumulants3: Float[Array, "m m m"]
    """$T_{ijk} = \\partial_i \\partial_j \\partial_k \\psi$: their third cumulants."""
    scalar_curvature: Float[Array, ""]
    """Scalar curvature of the Levi-Civita connection of `metric` (Gaussian family: -1)."""


def _flat(log_partition: Callable, theta):
    flat, unravel = ravel_pytree(theta)
    if flat.ndim != 1 or flat.size == 0:
        raise ShapeError("theta must hold at least one parameter.")
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise ConfigError(f"theta must be floating point (use float64 for T), got {flat.dtype}.")
    return (lambda t: log_partition(unravel(t))), flat


def fisher_metric(log_partition: Callable, theta) -> Float[Array, "m m"]:
    r"""Fisher metric $g_{ij} = \partial_i \partial_j \psi(\theta)$ of an exponential family.

    **Arguments:**

    - `log_partition`: $\psi$, a scalar function of the natural parameters.
    - `theta`: the point, an array or any pytree of arrays; the coordinates are its leaves
      flattened in `jax.flatten_util.ravel_pytree` order.

    **Returns:** the `(m, m)` metric.
    """
    f, t = _flat(log_partition, theta)
    return jax.hessian(f)(t)


def third_cumulants(log_partition: Callable, theta) -> Float[Array, "m m m"]:
    r"""Third cumulants $T_{ijk} = \partial_i \partial_j \partial_k \psi(\theta)$ (forward over
    the Hessian; $m$ forward passes of a Hessian).

    **Arguments:** as `fisher_metric`.

    **Returns:** the totally symmetric `(m, m, m)` tensor.
    """
    f, t = _flat(log_partition, theta)
    return jax.jacfwd(jax.hessian(f))(t)


def curvature_invariants(metric, cumulants3) -> tuple[Float[Array, ""], Float[Array, ""]]:
    r"""The two contractions $T_{ijk} T^{ijk}$ and $T_i T^i$ ($T_i = g^{jk} T_{ijk}$).

    With $g = C C^\top$ (Cholesky), $\tilde T = T \times_1 C^{-1} \times_2 C^{-1} \times_3
    C^{-1}$ is the tensor in an orthonormal frame: $T_{ijk} T^{ijk} = \sum \tilde T_{abc}^2$
    and $T_i T^i = \sum_c (\sum_a \tilde T_{aac})^2$. Three triangular solves, $O(m^4)$.

    **Arguments:**

    - `metric`: $g$, shape `(m, m)`, symmetric positive definite (otherwise NaN).
    - `cumulants3`: $T$, shape `(m, m, m)`, totally symmetric.

    **Returns:** `(t_norm_sq, t_trace_norm_sq)`.
    """
    g = jnp.asarray(metric)
    T = jnp.asarray(cumulants3)
    m = g.shape[0]
    if g.shape != (m, m) or T.shape != (m, m, m):
        raise ShapeError(
            f"metric must be (m, m) and cumulants3 (m, m, m) with the same m, got {g.shape} "
            f"and {T.shape}."
        )
    C = jnp.linalg.cholesky(g)
    X = T
    for _ in range(3):
        # contract the leading index with C^{-1}, then rotate it to the back
        X = jsl.solve_triangular(C, X.reshape(m, m * m), lower=True).reshape(m, m, m)
        X = jnp.moveaxis(X, 0, -1)
    trace = jnp.einsum("aac->c", X)
    return jnp.sum(X * X), jnp.sum(trace * trace)


def scalar_curvature_from_cumulants(metric, cumulants3) -> Float[Array, ""]:
    r"""Scalar curvature $R = \tfrac14 (T_{ijk} T^{ijk} - T_i T^i)$ of a Hessian metric.

    The Levi-Civita scalar curvature of $g = \partial^2 \psi$ given $g$ and
    $T = \partial^3 \psi$ (see the module docstring for the derivation and the sign
    convention: the Gaussian family has $R = -1$). Computed by `curvature_invariants` in
    $O(m^4)$ time, $O(m^3)$ memory. A metric that is not positive definite gives NaN.

    **Arguments:**

    - `metric`: $g$, shape `(m, m)`.
    - `cumulants3`: $T$, shape `(m, m, m)`.

    **Returns:** the scalar curvature.
    """
    t_sq, t_trace_sq = curvature_invariants(metric, cumulants3)
    return (t_sq - t_trace_sq) / 4


def scalar_curvature(log_partition: Callable, theta) -> Float[Array, ""]:
    r"""Scalar curvature of the Fisher metric of the exponential family $\psi$ at `theta`.

    See `scalar_curvature_from_cumulants` for the formula and `fisher_metric` for the
    arguments. Gaussian family $N(\mu, \sigma^2)$: $R = -1$.
    """
    return fisher_geometry(log_partition, theta).scalar_curvature


def fisher_geometry(log_partition: Callable, theta) -> FisherGeometry:
    """Metric, third cumulants and scalar curvature of $\\psi$ at `theta`, by autodiff.

    Compiled once per `log_partition` function object and shape of `theta` (keep the same
    function object across calls to reuse the compilation).

    **Arguments:** as `fisher_metric`.

    **Returns:** a `FisherGeometry(metric, cumulants3, scalar_curvature)`.
    """
    _flat(log_partition, theta)  # eager checks
    return _geometry(log_partition, theta)


@functools.partial(jax.jit, static_argnums=0)
def _geometry(log_partition: Callable, theta) -> FisherGeometry:
    f, t = _flat(log_partition, theta)
    hess = jax.hessian(f)
    g = hess(t)
    T = jax.jacfwd(hess)(t)
    return FisherGeometry(g, T, scalar_curvature_from_cumulants(g, T))


class TorusFisherGeometry(NamedTuple):
    """Fisher geometry of the bond couplings of a uniform 2D Ising torus (see
    `ising_torus_fisher_geometry`)."""

    metric: Float[Array, "m m"]
    cumulants3: Float[Array, "m m m"]
    scalar_curvature: Float[Array, ""]
    log_z: Float[Array, ""]
    """$\\ln Z$ at the point."""
    bond_mean: Float[Array, "2"]
    """$\\langle s_x s_{x+e_a} \\rangle$ for the two bond directions a = 0, 1."""


def _relative_bond_index(L: int) -> np.ndarray:
    """`rel[i, j]`: flat index of bond j seen from the origin after translating bond i there.

    Bonds are flattened from shape `(2, L, L)` (direction a, then the site x it starts at).
    """
    a, x, y = np.unravel_index(np.arange(2 * L * L), (2, L, L))
    dx = (x[None, :] - x[:, None]) % L
    dy = (y[None, :] - y[:, None]) % L
    return np.ravel_multi_index((np.broadcast_to(a[None, :], dx.shape), dx, dy), (2, L, L))


def ising_torus_fisher_geometry(
    L: int, coupling: float | None = None, *, batch_size: int = 8
) -> TorusFisherGeometry:
    r"""Fisher geometry of the bond-coupling manifold of the $L \times L$ Ising torus.

    The manifold of Zhuravlev, "Fisher Curvature Scaling at Critical Points: An Exact
    Information-Geometric Exponent from Periodic Boundary Conditions" (arXiv:2603.07651,
    2026): one coordinate per bond, $m = 2L^2 = 2n$ coordinates $K_b = \beta J_b$, zero field,
    evaluated at the uniform point $K_b = K$ (default the critical
    $K_c = \tfrac12 \ln(1+\sqrt2)$). The metric is $g_{bc} = \langle s_b s_c \rangle_c$, the
    third cumulants $T_{bcd} = \langle s_b s_c s_d \rangle_c$ (with $s_b = s_x s_{x+e_a}$), all
    exact derivatives of the transfer-matrix $\ln Z$ (`diffphys.exact.ising_transfer_log_z`).

    At a uniform point the torus is translation invariant, so only the slices with the first
    bond at the origin are differentiated (two directions: $2m$ Hessian-vector products of
    $\partial_b \ln Z$) and the full tensors follow by translation: $L^2$ times fewer
    Hessian-vector products than `fisher_geometry`, which it equals (tested). Call it inside
    `with jax.enable_x64(True):` for meaningful third cumulants.

    **Arguments:**

    - `L`: linear size (>= 2).
    - `coupling`: the uniform $K = \beta J$; `None` is the critical point $K_c$.
    - `batch_size`: Hessian-vector products evaluated at once (memory: each holds about
      $3 L$ matrices of $4^L$ entries).

    **Returns:** a `TorusFisherGeometry(metric, cumulants3, scalar_curvature, log_z,
    bond_mean)`, bonds flattened from shape `(2, L, L)`.
    """
    L = int(L)
    if L < 2:
        raise ConfigError(f"L must be >= 2, got {L}.")
    K = ising_critical_coupling() if coupling is None else float(coupling)
    if not math.isfinite(K):
        raise ConfigError(f"coupling must be finite, got {coupling!r}.")
    return _torus_geometry(L, jnp.asarray(K, dtype=jnp.result_type(float)), int(batch_size))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _torus_geometry(L: int, K, batch_size: int) -> TorusFisherGeometry:
    dtype = K.dtype
    m = 2 * L * L
    J0 = jnp.full((2, L, L), K, dtype=dtype)
    basis = jnp.eye(m, dtype=dtype).reshape(m, 2, L, L)
    origins = (basis[0], basis[L * L])  # bond (a, 0, 0) for a = 0, 1

    def log_z(J):
        return ising_transfer_log_z(J)

    def slices(e_a):
        def d_a(J):  # <s_a> as a function of all couplings
            return jax.jvp(log_z, (J,), (e_a,))[1]

        grad_d_a = jax.grad(d_a)

        def hvp(e_c):  # T[a, :, c]
            return jax.jvp(grad_d_a, (J0,), (e_c,))[1].reshape(m)

        g_row = grad_d_a(J0).reshape(m)
        t_slab = jax.lax.map(hvp, basis, batch_size=batch_size)  # [c, b] = T[a, b, c]
        return g_row, t_slab

    value, grad = jax.value_and_grad(log_z)(J0)
    rows = [slices(e) for e in origins]
    G = jnp.stack([r[0] for r in rows])  # (2, m)
    S = jnp.stack([r[1] for r in rows])  # (2, m, m)
    rel = _relative_bond_index(L)
    a_of = np.repeat(np.arange(2), L * L)
    g = G[a_of[:, None], rel]
    T = S[a_of[:, None, None], rel[:, None, :], rel[:, :, None]]
    R = scalar_curvature_from_cumulants(g, T)
    bond_mean = grad[:, 0, 0]
    return TorusFisherGeometry(g, T, R, value, bond_mean)


__all__ = [
    "FisherGeometry",
    "curvature_invariants",
    "TorusFisherGeometry",
    "fisher_geometry",
    "fisher_metric",
    "ising_torus_fisher_geometry",
    "scalar_curvature",
    "scalar_curvature_from_cumulants",
    "third_cumulants",
]
