r"""Spherical Boltzmann machines (SBM): a pairwise energy model on the sphere $|x|^2 = N$,
its exact partition function, and the ensembles of couplings learned from data.

**Sources and what was read.** The set-up follows Tulinski, Cocco, Monasson &
Fernandez-de-Cossio-Diaz, "Spherical Boltzmann machines: a solvable theory of learning and
generation in energy-based models" (arXiv 2605.09031), and the same authors' "Replica theory
of spherical Boltzmann machine ensembles" (arXiv 2604.17936). Of both papers only the
abstracts and the first paragraph of 2605.09031's introduction could be read from here
($p(x) = e^{-\beta E(x;\theta)}/Z$ with an inverse *sampling* temperature $\beta$); the
equations below are taken from the authors' public code for 2605.09031
(github.com/anonymous-avatar/spherical-bm-2026), not from the papers' text: `_lib/msr/finiteN.jl`
runs the training dynamics
$\dot W = \tfrac12 C - \tfrac{K}{2N}xx^\top - \tfrac\gamma2 W + \Omega/\sqrt{\eta N}$ with a
co-evolving sample x of the model and starts W from the GOE with
$\overline{W_{ij}^2} = 1/(\gamma\eta N)$, which it calls stationary; with fast x
($xx^\top \to \langle xx^\top\rangle_W$) and unit-strength white noise $\Omega$ that
dynamics samples exactly the tempered posterior below (our inference from the code), and
`teacher_student.jl` fixes the rank-one teacher. No equation number of either paper is cited.

**Model.** For symmetric couplings $W$ (called `J` here),

$$p(x \mid W) = \frac{e^{\frac12 x^\top W x}}{Z(W)},\qquad
  Z(W) = \int d^N x\, \delta(|x|^2 - N)\, e^{\frac12 x^\top W x}.$$

Writing the delta as a Laplace integral gives the exact one-dimensional representation

$$Z(W) = \frac{(2\pi)^{N/2}}{2}\,\frac{1}{2\pi i}\int_{\mathcal C} dz\;
  e^{Nz/2}\prod_i (z - \lambda_i)^{-1/2},$$

with $\lambda_i$ the eigenvalues of $W$ and $\mathcal C$ any contour running upwards to the
right of $\lambda_{\max}$. `SphericalBM.log_partition_exact` integrates it along the parabola
$z(t) = z^* + it - t^2/(2a_{\max})$ through the saddle point $z^*$ ($\sum_i (z^*-\lambda_i)^{-1}
= N$, $a_{\max} = z^* - \lambda_{\min}$): on it $|z - \lambda_i| \ge z^* - \lambda_i$ for every
i, so the integrand is bounded by $e^{-N t^2/(4 a_{\max})}$ times its saddle value and the
trapezoidal rule converges exponentially (exact for every N >= 1; no large-N approximation).
`SphericalBM.log_partition` is the cheaper saddle point plus Gaussian correction, accurate to
$O(1/N)$ in the paramagnetic phase.

**Learning (K training points $x^a$ on the sphere, $C = \frac1K\sum_a x^a x^{a\top}$ here;
the authors' code uses $C_{\rm code} = \frac KN C$).** The loss and the tempered posterior are

$$\mathcal L(W) = -\sum_a \log p(x^a\mid W) + \frac{\gamma N}{4}\mathrm{tr}\,W^2,\qquad
  P_\eta(W \mid D) \propto e^{-\eta\,\mathcal L(W)}.$$

Completing the square, $P_\eta(W|D) \propto \mathcal N(W; \tfrac{K}{\gamma N}C,\ \mathrm{GOE}
\text{ with } \overline{W_{ij}^2} = \tfrac{1}{\gamma\eta N})\times Z(W)^{-\eta K}$: a GOE
matrix with semicircle radius $2/\sqrt{\gamma\eta}$ around the data spikes, reweighted by a
power of the partition function (the "large deviations of the free energy" that the
abstract of 2604.17936 refers to). Loss minimisation is `sbm_map_fit` ($\eta\to\infty$); ensemble
learning is `sbm_posterior_langevin` (many $W$ from $P_\eta$) scored by the posterior-predictive
density `sbm_ensemble_log_prob`, $\log\frac1S\sum_s p(x\mid W_s)$.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .._errors import ConfigError, ShapeError
from .._types import Array, Float, Key, RealScalar
from ._base import AbstractModel


def _saddle(lam, n: int, n_iter: int = 60):
    """z* > lam_max with sum_i 1/(z - lam_i) = n, by bisection on a bracketing interval."""
    lmax = jnp.max(lam)
    # f(z) = sum 1/(z-lam) - n decreases on (lmax, inf); f(lmax + 1/n) >= 0 and
    # f(lmax + 1) <= 0, so [lmax + 1/n, lmax + 1] brackets the root.
    lo = lmax + 0.999 / n
    hi = lmax + 1.0 + 1.0 / n

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        f = jnp.sum(1.0 / (mid - lam)) - n
        return jnp.where(f > 0, mid, lo), jnp.where(f > 0, hi, mid)

    lo, hi = jax.lax.fori_loop(0, n_iter, body, (lo, hi))
    return 0.5 * (lo + hi)


def sbm_log_partition_from_eigenvalues(lam, *, n_nodes: int = 2048) -> Float[Array, ""]:
    r"""Exact $\log Z$ of the spherical measure $\int d^Nx\,\delta(|x|^2-N)e^{\frac12 x^\top Wx}$
    from the eigenvalues of W (module docstring: contour integral along a parabola through the
    saddle point, trapezoidal rule with `n_nodes` nodes; relative accuracy ~1e-12 in float64
    for 3 <= N <= 2000 with the default nodes, limited by the dtype otherwise).

    **Arguments:**

    - `lam`: the N eigenvalues of W.
    - `n_nodes`: quadrature nodes on the half contour (static).

    **Returns:** the scalar $\log Z(W)$.
    """
    lam = jnp.asarray(lam)
    n = lam.shape[-1]
    dtype = lam.dtype
    z0 = jax.lax.stop_gradient(_saddle(jax.lax.stop_gradient(lam), n, n_iter=80))
    a = z0 - lam
    c = 0.5 / jnp.max(a)
    t_max = jnp.sqrt(80.0 / (n * c))  # the bound e^{-N c t^2/2} falls below e^{-40} there
    h = t_max / n_nodes
    t = jnp.arange(n_nodes, dtype=dtype) * h
    # z - z0 along the parabola, and dz/dt (complex built explicitly: strict promotion)
    dz = jax.lax.complex(-c * t * t, t)
    slope = jax.lax.complex(-2 * c * t, jnp.ones_like(t))
    a_c = jax.lax.complex(a, jnp.zeros_like(a))
    log_f = 0.5 * n * dz - 0.5 * jnp.sum(jnp.log1p(dz[:, None] / a_c[None, :]), axis=1)
    g = jnp.imag(jnp.exp(log_f) * slope)
    g = g.at[0].multiply(0.5)
    integral = h * jnp.sum(g) / math.pi
    h0 = 0.5 * n * z0 - 0.5 * jnp.sum(jnp.log(a))
    return (h0 + 0.5 * n * math.log(2 * math.pi) + jnp.log(0.5 * integral)).astype(dtype)


@jax.custom_batching.custom_vmap
def _eigh_mapped(a):
    """`jnp.linalg.eigh(a)`; under `vmap`, one matrix after the other (`lax.map`)."""
    w, v = jnp.linalg.eigh(a)
    return w, v


@_eigh_mapped.def_vmap
def _eigh_mapped_vmap(axis_size, in_batched, a):
    (batched,) = in_batched
    if not batched:
        a = jnp.broadcast_to(a, (axis_size, *a.shape))
    return jax.lax.map(_eigh_mapped, a), (True, True)


@jax.custom_jvp
def _eigh_cpu(a):
    return _eigh_mapped(a)


@_eigh_cpu.defjvp
def _eigh_cpu_jvp(primals, tangents):
    # The first-order perturbation theory of a symmetric eigenproblem (as jax's own eigh
    # rule, real case): with Vt = V^T dA V, dw = diag(Vt), dV = V (F * Vt), F_ij = 1/(w_j - w_i)
    # off the diagonal and 0 on it. dA is symmetrised as eigh symmetrises A.
    (a,), (da,) = primals, tangents
    w, v = _eigh_mapped(a)
    da = 0.5 * (da + da.T)
    eye = jnp.eye(a.shape[-1], dtype=a.dtype)
    f = (eye + w[None, :] - w[:, None]) ** -1 - eye
    vt = v.T @ da @ v
    return (w, v), (jnp.diagonal(vt), v @ (f * vt))


def _eigh_default(a):
    w, v = jnp.linalg.eigh(a)
    return w, v


def eigh_sequential(a):
    """`jnp.linalg.eigh(a)` of one symmetric matrix, safe to run concurrently under `vmap` on
    the CPU backend, and differentiable.

    On the CPU backend the matrices of a `vmap`ped batch are decomposed one after the other
    (`lax.map`) instead of by one batched LAPACK call. Why: jaxlib 0.10.2's batched CPU eigh
    splits the batch over XLA's intra-op thread pool and waits for it from a pool thread. Two
    such calls running at once (independent eighs of one program, e.g. the MAP and posterior
    loops of `spherical-bm-ensembles`) then hold every thread of a 2-core machine and wait
    forever: seen as a hang of the test suite, all threads in `jax::ParallelBatchMap` /
    `BlockingCounter::Wait`. On other backends (GPU, TPU) this is plain `jnp.linalg.eigh`,
    batched as usual (`lax.platform_dependent` picks the branch when the program is lowered).
    Derivatives: the usual eigh perturbation rule on the CPU branch (a `custom_jvp`, the
    batching workaround alone has none), jax's own rule elsewhere; both fail as eigh does for
    degenerate eigenvalues.

    **Arguments:**

    - `a`: a symmetric matrix, shape `(N, N)`.

    **Returns:** `(eigenvalues, eigenvectors)`, ascending eigenvalues, vectors as columns.
    """
    return jax.lax.platform_dependent(a, cpu=_eigh_cpu, default=_eigh_default)


class SphericalBM(AbstractModel):
    r"""Spherical Boltzmann machine $p(x|W) \propto e^{x^\top W x/2}$ on $|x|^2 = N$
    (module docstring for the conventions and sources).

    **Arguments:**

    - `J`: symmetric couplings W, shape `(N, N)` (symmetrised on construction).
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
        """E(x) = -x.W.x / 2 (x on the sphere |x|^2 = N)."""
        return -0.5 * x @ self.J @ x

    def saddle(self):
        """`(z*, eigenvalues, eigenvectors)` of the large-N saddle point (z* under stop_gradient)."""
        lam, vec = eigh_sequential(self.J)
        z = jax.lax.stop_gradient(_saddle(jax.lax.stop_gradient(lam), self.n))
        return z, lam, vec

    def log_partition(self) -> Float[Array, ""]:
        r"""$\log Z$ at the saddle point with its Gaussian correction,
        $g(z^*) + \frac12\log\frac{2\pi}{g''(z^*)} - \log 4\pi$ with
        $g(z) = \frac{zN}2 + \frac N2\log 2\pi - \frac12\sum_i\log(z-\lambda_i)$: $O(1/N)$
        accurate in the paramagnetic phase, differentiable in W (`jax.grad` works on every
        backend; to leading order in N the gradient is $\frac12\langle xx^\top\rangle$, and
        it is exactly the gradient of this approximation, the saddle point's motion
        $\partial z^*/\partial\lambda_i = (z^*-\lambda_i)^{-2}/\sum_j(z^*-\lambda_j)^{-2}$
        included by the implicit function theorem). Use `log_partition_exact` for scores."""
        z, lam, _ = self.saddle()
        # z* under stop_gradient plus a term whose value is exactly 0 and whose first
        # derivative is dz*/dW (implicit function theorem on sum_i 1/(z - lam_i) = N).
        w = jax.lax.stop_gradient((z - lam) ** -2)
        s = jnp.sum(w * lam) / jnp.sum(w)
        z = z + (s - jax.lax.stop_gradient(s))
        n = self.n
        dtype = self.J.dtype
        g = 0.5 * z * n + 0.5 * n * math.log(2 * math.pi) - 0.5 * jnp.sum(jnp.log(z - lam))
        g2 = 0.5 * jnp.sum((z - lam) ** -2)
        return (g + 0.5 * jnp.log(2 * math.pi / g2) - math.log(4 * math.pi)).astype(dtype)

    def log_partition_exact(self, *, n_nodes: int = 2048) -> Float[Array, ""]:
        """Exact log Z(W) for any N and any couplings (`sbm_log_partition_from_eigenvalues`)."""
        return sbm_log_partition_from_eigenvalues(jnp.linalg.eigvalsh(self.J), n_nodes=n_nodes)

    def second_moment(self) -> Float[Array, "N N"]:
        r"""$\langle x x^\top\rangle = (z^* - W)^{-1}$ (large-N)."""
        z, lam, vec = self.saddle()
        return (vec / (z - lam)) @ vec.T

    def log_prob(self, x, *, exact: bool = False) -> Float[Array, ""]:
        """log p(x | W) for x on the sphere (normalise data with `to_sphere` first); `exact`
        uses the exact log Z instead of the saddle point."""
        log_z = self.log_partition_exact() if exact else self.log_partition()
        return -self.energy(x) - log_z

    def mean_log_likelihood(self, C) -> Float[Array, ""]:
        r"""$\frac12\mathrm{tr}(W C) - \log Z(W)$ for the data second moment C."""
        return 0.5 * jnp.sum(self.J * C) - self.log_partition()

    def nll_grad(self, C) -> Float[Array, "N N"]:
        r"""Gradient of $-\frac12\mathrm{tr}(WC) + \log Z$ wrt W: $\frac12(\langle xx^\top\rangle - C)$
        (large-N second moment)."""
        return 0.5 * (self.second_moment() - C)

    def sample(self, key: Key, n_samples: int) -> Float[Array, "n N"]:
        """Approximate samples: Gaussian with covariance (z* - W)^{-1} projected onto the
        sphere. Exact as N -> infinity in the paramagnetic phase only; in a condensed phase
        the overlap with the top eigenvector fluctuates wrongly. For a rank-one W use the
        exact `sbm_sample_rank_one`."""
        z, lam, vec = self.saddle()
        g = jax.random.normal(key, (n_samples, self.n), self.J.dtype)
        x = (g / jnp.sqrt(z - lam)) @ vec.T
        return to_sphere(x)


def sbm_sample_rank_one(key: Key, u, omega: float, n_samples: int, *, n_grid: int = 8192):
    r"""Exact samples of the rank-one SBM $W = \omega\, u u^\top$ ($|u| = 1$).

    The overlap $m = u\cdot x/\sqrt N$ has the density
    $\propto e^{N\omega m^2/2}(1 - m^2)^{(N-3)/2}$ on $(-1, 1)$ (uniform measure on the sphere
    times the Boltzmann weight); it is drawn by inverting its CDF on an `n_grid` grid, and the
    orthogonal part is uniform on the sphere of radius $\sqrt{N(1-m^2)}$ in $u^\perp$. For
    $\omega > 1$ and large N, $m^2 \to 1 - 1/\omega$ (the condensed, "ferromagnetic" teacher
    of 2605.09031's code, `teacher_student.jl`).

    **Returns:** samples, shape `(n_samples, N)`.
    """
    u = jnp.asarray(u)
    n = u.shape[0]
    dtype = u.dtype if jnp.issubdtype(u.dtype, jnp.floating) else jnp.float32
    u = (u / jnp.linalg.norm(u)).astype(dtype)
    km, kj, ks, kx = jax.random.split(key, 4)
    m_grid = jnp.linspace(0.0, 1.0, n_grid + 1, dtype=dtype)[:-1] + 0.5 / n_grid
    log_pdf = 0.5 * n * omega * m_grid**2 + 0.5 * (n - 3) * jnp.log1p(-(m_grid**2))
    cdf = jnp.cumsum(jnp.exp(log_pdf - jnp.max(log_pdf)))
    cdf = cdf / cdf[-1]
    r = jax.random.uniform(km, (n_samples,), dtype)
    idx = jnp.clip(jnp.searchsorted(cdf, r), 0, n_grid - 1)
    jitter = (jax.random.uniform(kj, (n_samples,), dtype) - 0.5) / n_grid
    sign = jnp.where(jax.random.bernoulli(ks, 0.5, (n_samples,)), 1.0, -1.0).astype(dtype)
    m = sign * jnp.clip(m_grid[idx] + jitter, 0.0, 1.0)
    xi = jax.random.normal(kx, (n_samples, n), dtype)
    xi = xi - (xi @ u)[:, None] * u[None, :]
    xi = xi / jnp.linalg.norm(xi, axis=1, keepdims=True)
    return jnp.sqrt(jnp.asarray(n, dtype)) * (
        m[:, None] * u[None, :] + jnp.sqrt(1.0 - m**2)[:, None] * xi
    )


def to_sphere(x) -> Array:
    """Rescale each row of x to norm sqrt(N)."""
    n = x.shape[-1]
    return x * jnp.sqrt(jnp.asarray(n, x.dtype)) / jnp.linalg.norm(x, axis=-1, keepdims=True)


def sbm_second_moment(x) -> Array:
    """C = (1/K) sum_a x^a x^a^T of rows on the sphere."""
    return x.T @ x / x.shape[0]


def _check_c(C):
    C = jnp.asarray(C)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ShapeError(
            f"C must be the (N, N) data second moment (use sbm_second_moment(x)), got {C.shape}."
        )
    return C


def sbm_map_fit(
    C, m, *, gamma: RealScalar, n_steps: int = 2000, lr: RealScalar = 0.05, J0=None
):
    r"""Loss minimisation: the couplings minimising
    $\mathcal L(W)/K = -[\frac12\mathrm{tr}(WC) - \log Z(W)] + \frac{\gamma N}{4K}\mathrm{tr}W^2$
    (module docstring; K = `m` training points), by gradient descent in `lax.scan` with the
    large-N gradient $\frac12(\langle xx^\top\rangle - C) + \frac{\gamma N}{2K}W$.

    **Arguments:**

    - `C`: data second moment `sbm_second_moment(x)`, shape `(N, N)`.
    - `m`: the number K of training points (may be a traced scalar).
    - `gamma`: L2 regularisation strength (prior precision per $N$).
    - `n_steps`, `lr`: gradient-descent steps and step size.
    - `J0`: starting couplings (default: the unregularised-spike guess $\frac{K}{\gamma N}C$).

    **Returns:** the fitted `SphericalBM`.
    """
    C = _check_c(C)
    if gamma <= 0:
        raise ConfigError(f"gamma must be > 0 (the L2 strength), got {gamma}.")
    n = C.shape[0]
    m = jnp.asarray(m, C.dtype)
    J = (m / (gamma * n)) * C if J0 is None else jnp.asarray(J0, C.dtype)

    def step(J, _):
        g = SphericalBM(J).nll_grad(C) + (gamma * n / (2.0 * m)) * J
        return J - lr * g, None

    J, _ = jax.lax.scan(step, J, None, length=n_steps)
    return SphericalBM(J)


def sbm_posterior_gaussian(key: Key, C, m, *, gamma: float, eta: float = 1.0, n_models: int):
    r"""Draws from the Gaussian factor of the posterior, $W = \frac{K}{\gamma N}C + G$ with
    $G$ GOE, $\overline{G_{ij}^2} = 1/(\gamma\eta N)$ ($i\ne j$), $\overline{G_{ii}^2} =
    2/(\gamma\eta N)$: the posterior without its $Z(W)^{-\eta K}$ factor (module docstring).
    That factor changes $\log P$ by O(1) only while the sampled models are paramagnetic, so
    these draws are the starting point of `sbm_posterior_langevin`.

    **Returns:** couplings, shape `(n_models, N, N)`.
    """
    C = _check_c(C)
    n = C.shape[0]
    a = jax.random.normal(key, (n_models, n, n), C.dtype)
    goe = (a + jnp.swapaxes(a, 1, 2)) / jnp.sqrt(jnp.asarray(2.0 * gamma * eta * n, C.dtype))
    return (jnp.asarray(m, C.dtype) / (gamma * n)) * C + goe


def sbm_posterior_langevin(
    key: Key,
    C,
    m,
    *,
    gamma: RealScalar,
    n_models: int,
    n_steps: int,
    dt: RealScalar,
    eta: RealScalar = 1.0,
    J0=None,
):
    r"""Ensemble learning: `n_models` independent Langevin chains on the tempered posterior
    $P_\eta(W|D) \propto \exp\{\eta K[\frac12\mathrm{tr}(WC) - \log Z(W)] -
    \frac{\gamma\eta N}{4}\mathrm{tr}W^2\}$ over symmetric W (independent upper-triangle
    entries), Euler-Maruyama in `lax.scan`, vmapped over models. The gradient of $\log Z$ is
    the large-N second moment.

    **Arguments:**

    - `C`, `m`: data second moment and number K of training points.
    - `gamma`, `eta`: regularisation and inverse posterior temperature ($\eta\to\infty$ is MAP).
    - `n_models`, `n_steps`, `dt`: chains, steps, step size (stable for
      $\eta(K + \gamma N)\,dt \lesssim 0.1$).
    - `J0`: one starting matrix for every chain; default: independent draws of
      `sbm_posterior_gaussian` (already the posterior up to O(1) in a paramagnetic phase).

    **Returns:** the final couplings, shape `(n_models, N, N)`.
    """
    C = _check_c(C)
    n = C.shape[0]
    m = jnp.asarray(m, C.dtype)
    k_init, k_run = jax.random.split(key)
    if J0 is None:
        starts = sbm_posterior_gaussian(k_init, C, m, gamma=gamma, eta=eta, n_models=n_models)
    else:
        starts = jnp.broadcast_to(jnp.asarray(J0, C.dtype), (n_models, n, n))

    def grad_log_post(J):
        return eta * (-m * SphericalBM(J).nll_grad(C) - 0.5 * gamma * n * J)

    eye = jnp.eye(n, dtype=C.dtype)

    def one(k, J):
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

    return jax.vmap(one)(jax.random.split(k_run, n_models), starts)


def sbm_ensemble_log_prob(Js, x, *, exact: bool = True) -> Float[Array, " n"]:
    r"""Posterior-predictive log density $\log \frac1S\sum_s p(x|W_s)$ of each row of x, with
    the exact log Z of each model (`exact=False`: saddle point)."""
    log_z = jax.vmap(
        lambda J: SphericalBM(J).log_partition_exact() if exact else SphericalBM(J).log_partition()
    )(Js)
    logp = 0.5 * jnp.einsum("ni,sij,nj->sn", x, Js, x) - log_z[:, None]
    return jax.nn.logsumexp(logp, axis=0) - jnp.log(jnp.asarray(Js.shape[0], logp.dtype))


__all__ = [
    "SphericalBM",
    "sbm_ensemble_log_prob",
    "sbm_log_partition_from_eigenvalues",
    "sbm_map_fit",
    "sbm_posterior_gaussian",
    "sbm_posterior_langevin",
    "sbm_sample_rank_one",
    "sbm_second_moment",
    "to_sphere",
]
