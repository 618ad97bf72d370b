r"""Spherical Boltzmann machines: a pairwise energy model on the sphere $|x|^2 = N$.

Definition (the standard spherical model; the text of Tulinski, Fernandez-de-Cossio-Diaz,
Cocco, Monasson, "Replica theory of spherical Boltzmann machine ensembles", arXiv 2604.17936,
could not be read from here, so this is the textbook definition their title refers to):

$$p(x \mid J) = \frac{1}{Z(J)} e^{\frac12 x^\top J x}\, \delta(|x|^2 - N),\qquad
  Z(J) = \int d^N x\, \delta(|x|^2 - N)\, e^{\frac12 x^\top J x},$$

with $J$ symmetric. $Z$ depends only on the eigenvalues $\lambda_i$ of $J$. Writing the delta
as a Laplace integral, $Z = \frac{1}{4\pi i}\int dz\, e^{g(z)}$ with
$g(z) = \frac{zN}{2} + \frac N2\log 2\pi - \frac12\sum_i \log(z - \lambda_i)$, and the saddle
point $\sum_i (z^* - \lambda_i)^{-1} = N$ ($z^* > \lambda_{\max}$) gives

$$\log Z \simeq g(z^*) + \tfrac12 \log\frac{2\pi}{g''(z^*)} - \log 4\pi,\qquad
  g'' = \tfrac12 \sum_i (z^*-\lambda_i)^{-2},$$

exact up to $O(1/N)$ (exact at $J = 0$ up to Stirling's correction), and
$\langle x x^\top\rangle = (z^* - J)^{-1}$ to the same order. The mean log-likelihood of data
$\{x^\mu\}$ (normalised to the sphere) is $\frac12 \mathrm{tr}(J C) - \log Z(J)$ with
$C = \frac1M\sum_\mu x^\mu x^{\mu\top}$, so $C$ and $M$ are sufficient statistics.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .._errors import ShapeError
from .._types import Array, Float, Key
from ._base import AbstractModel


def _saddle(lam, n: int, n_iter: int = 60):
    """z* > lam_max with sum_i 1/(z - lam_i) = n, by bisection on a bracketing interval."""
    lmax = jnp.max(lam)
    # bracket: f(z) = sum 1/(z-lam) - n is decreasing on (lmax, inf); f(lmax + 1/n) >= 0
    lo = lmax + 1.0 / n * 0.999
    hi = lmax + 1.0 + jnp.maximum(jnp.max(lam) - jnp.min(lam), 0.0) + 1.0

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        f = jnp.sum(1.0 / (mid - lam)) - n
        return jnp.where(f > 0, mid, lo), jnp.where(f > 0, hi, mid)

    lo, hi = jax.lax.fori_loop(0, n_iter, body, (lo, hi))
    return 0.5 * (lo + hi)


class SphericalBM(AbstractModel):
    r"""Spherical Boltzmann machine $p(x|J) \propto e^{x^\top J x/2}$ on $|x|^2 = N$.

    **Arguments:**

    - `J`: symmetric couplings, shape `(N, N)` (symmetrised on construction).
    """

    J: Float[Array, "N N"]

    def __init__(self, J):
        J = jnp.asarray(J)
        if J.ndim != 2 or J.shape[0] != J.shape[1]:
            raise ShapeError(f"J must be a square (N, N) matrix, got shape {J.shape}.")
        if not jnp.issubdtype(J.dtype, jnp.floating):
            J = J.astype(jnp.float32)
        self.J = 0.5 * (J + J.T)

    @property
    def n(self) -> int:
        return self.J.shape[0]

    def energy(self, x) -> Float[Array, ""]:
        """E(x) = -x.J.x / 2 (x on the sphere |x|^2 = N)."""
        return -0.5 * x @ self.J @ x

    def saddle(self):
        """`(z*, eigenvalues, eigenvectors)` of the large-N saddle point (z* under stop_gradient)."""
        lam, vec = jnp.linalg.eigh(self.J)
        z = jax.lax.stop_gradient(_saddle(jax.lax.stop_gradient(lam), self.n))
        return z, lam, vec

    def log_partition(self) -> Float[Array, ""]:
        """log Z(J) at the saddle point with its Gaussian correction (module docstring)."""
        z, lam, _ = self.saddle()
        n = self.n
        dtype = self.J.dtype
        g = 0.5 * z * n + 0.5 * n * math.log(2 * math.pi) - 0.5 * jnp.sum(jnp.log(z - lam))
        g2 = 0.5 * jnp.sum((z - lam) ** -2)
        return (g + 0.5 * jnp.log(2 * math.pi / g2) - math.log(4 * math.pi)).astype(dtype)

    def second_moment(self) -> Float[Array, "N N"]:
        r"""$\langle x x^\top\rangle = (z^* - J)^{-1}$ (large-N)."""
        z, lam, vec = self.saddle()
        return (vec / (z - lam)) @ vec.T

    def log_prob(self, x) -> Float[Array, ""]:
        """log p(x | J) for x on the sphere (normalise data with `to_sphere` first)."""
        return -self.energy(x) - self.log_partition()

    def mean_log_likelihood(self, C) -> Float[Array, ""]:
        r"""$\frac12\mathrm{tr}(J C) - \log Z(J)$ for the data second moment C."""
        return 0.5 * jnp.sum(self.J * C) - self.log_partition()

    def nll_grad(self, C) -> Float[Array, "N N"]:
        r"""Gradient of $-\frac12\mathrm{tr}(JC) + \log Z$ wrt J: $\frac12(\langle xx^\top\rangle - C)$
        (leading order in N)."""
        return 0.5 * (self.second_moment() - C)

    def sample(self, key: Key, n_samples: int) -> Float[Array, "n N"]:
        """Samples from the large-N measure: Gaussian with covariance (z* - J)^{-1}, projected
        onto the sphere (exact as N -> infinity in the paramagnetic phase)."""
        z, lam, vec = self.saddle()
        g = jax.random.normal(key, (n_samples, self.n), self.J.dtype)
        x = (g / jnp.sqrt(z - lam)) @ vec.T
        return to_sphere(x)


def to_sphere(x) -> Array:
    """Rescale each row of x to norm sqrt(N)."""
    n = x.shape[-1]
    return x * jnp.sqrt(jnp.asarray(n, x.dtype)) / jnp.linalg.norm(x, axis=-1, keepdims=True)


def second_moment(x) -> Array:
    """C = (1/M) sum_mu x^mu x^mu^T of rows on the sphere."""
    return x.T @ x / x.shape[0]


def map_fit(C, m: int, *, gamma: float, n_steps: int = 2000, lr: float = 0.05):
    r"""Loss minimisation: the maximum a posteriori couplings
    $J^* = \arg\max_J\, M[\frac12\mathrm{tr}(JC) - \log Z(J)] - \frac{\gamma N}{4}\mathrm{tr}J^2$
    (Gaussian GOE-like prior), by gradient descent on the per-sample objective in `lax.scan`.

    **Returns:** the fitted `SphericalBM`.
    """
    n = C.shape[0]

    def step(J, _):
        g = SphericalBM(J).nll_grad(C) + (gamma * n / (2.0 * m)) * J
        return J - lr * g, None

    J, _ = jax.lax.scan(step, jnp.zeros_like(C), None, length=n_steps)
    return SphericalBM(J)


def posterior_langevin(
    key: Key, C, m: int, *, gamma: float, n_models: int, n_steps: int, dt: float, J0=None
):
    r"""Ensemble learning: `n_models` independent Langevin chains on the posterior
    $P(J|D) \propto \exp\{M[\frac12\mathrm{tr}(JC) - \log Z(J)] - \frac{\gamma N}{4}\mathrm{tr}J^2\}$
    over symmetric J (independent upper-triangle entries), Euler-Maruyama in `lax.scan`,
    vmapped over models.

    **Returns:** the final couplings, shape `(n_models, N, N)`.
    """
    n = C.shape[0]

    def grad_log_post(J):
        return -m * SphericalBM(J).nll_grad(C) - 0.5 * gamma * n * J

    def one(k):
        J = jnp.zeros_like(C) if J0 is None else J0

        eye = jnp.eye(n, dtype=C.dtype)

        def step(J, t):
            xi = jax.random.normal(jax.random.fold_in(k, t), C.shape, C.dtype)
            # one unit-variance variable per pair i <= j
            noise = (xi + xi.T) / jnp.sqrt(jnp.asarray(2.0, C.dtype))
            noise = noise * (1 - eye) + jnp.diag(jnp.diag(xi))
            # d/dJ_ij of the posterior for the pair variable J_ij = J_ji is twice the matrix
            # derivative off the diagonal
            drift = grad_log_post(J) * (2 - eye)
            J = J + dt * drift + jnp.sqrt(jnp.asarray(2.0 * dt, C.dtype)) * noise
            return J, None

        J, _ = jax.lax.scan(step, J, jnp.arange(n_steps))
        return J

    return jax.vmap(one)(jax.random.split(key, n_models))


def ensemble_log_prob(Js, x) -> Float[Array, " n"]:
    r"""Posterior-predictive log density $\log \frac1S\sum_s p(x|J_s)$ of each row of x."""
    logp = jax.vmap(lambda J: jax.vmap(SphericalBM(J).log_prob)(x))(Js)
    return jax.nn.logsumexp(logp, axis=0) - jnp.log(jnp.asarray(Js.shape[0], logp.dtype))


__all__ = [
    "SphericalBM",
    "ensemble_log_prob",
    "map_fit",
    "posterior_langevin",
    "second_moment",
    "to_sphere",
]
