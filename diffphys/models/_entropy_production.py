r"""Entropy production rates of non-equilibrium diffusions, from a (learned) score.

Dynamics $dx = b(x)\,dt + \sqrt{2D}\, dW$ with a constant diagonal diffusion D. In the
steady state $\rho$, the probability current is $\rho\, v$ with the velocity
$v(x) = b(x) - D\nabla\log\rho(x)$, and the entropy production rate is

$$\sigma = E_\rho\left[v^T D^{-1} v\right].$$

Boffi & Vanden-Eijnden ("Deep learning probability flows and entropy production rates in
active matter", arXiv 2309.12991) estimate it by learning $s \approx \nabla\log\rho$ from
samples of the dynamics (score matching) and averaging $v^T D^{-1} v$ with $v = b - D s$;
`entropy_production_rate` does exactly that with any score. Two references check it: the
closed form for linear (Ornstein–Uhlenbeck) dynamics (`theory.linear_entropy_production`), and the trajectory estimator
$\sigma = E[b\cdot D^{-1}\circ\dot x]$ (Stratonovich; Sekimoto's medium entropy, whose mean
rate equals $\sigma$ in the steady state; Seifert, Rep. Prog. Phys. 75, 126001 (2012)).
Every variable is treated as even under time reversal (for active particles the active
force is one more coordinate of the Markov process, as in 2309.12991).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError
from .._loop import record_times, scan_steps
from .._types import Array, ArrayLike, Float, Key


def entropy_production_rate(
    drift: Callable, diffusion, score: Callable, samples: Float[Array, "n d"]
) -> tuple[Array, Array]:
    r"""$\sigma = E[(b - Ds)^T D^{-1} (b - Ds)]$ averaged over steady-state `samples`.

    **Arguments:**

    - `drift`: $b(x)$ on one point.
    - `diffusion`: the diagonal of D, shape (d,) (or a scalar).
    - `score`: $s(x) \approx \nabla\log\rho(x)$ on one point (exact or learned).
    - `samples`: array (n, d) from the stationary distribution.

    **Returns:** `(sigma, stderr)` (stderr assumes independent samples).
    """
    samples = jnp.asarray(samples)
    dvec = jnp.broadcast_to(jnp.asarray(diffusion, samples.dtype), samples.shape[1:])

    def one(x):
        v = drift(x) - dvec * score(x)
        return jnp.sum(v**2 / dvec)

    vals = jax.vmap(one)(samples)
    return jnp.mean(vals), jnp.std(vals) / jnp.sqrt(float(samples.shape[0]))


def simulate_with_entropy_production(
    key: Key,
    drift: Callable,
    diffusion,
    x0: Float[Array, "walkers d"],
    *,
    dt: float,
    n_steps: int,
    record_at=None,
):
    r"""Euler–Maruyama for a batch of walkers, with Sekimoto's entropy flow along the path.

    $x_{k+1} = x_k + b(x_k)\,dt + \sqrt{2D\,dt}\,\xi_k$; the entropy flow accumulates
    $b(\bar x_k)\cdot D^{-1}(x_{k+1} - x_k)$ at the midpoint $\bar x_k$ (Stratonovich).

    **Returns:** `(x_end, records)`, records = `{"x": positions, "entropy": accumulated entropy
    flow per walker}` at each count of `record_at` (default: the end only).
    """
    x0 = jnp.asarray(x0)
    if x0.ndim != 2:
        raise ShapeError(f"x0 must be (walkers, d), got {x0.shape}.")
    if dt <= 0 or n_steps < 1:
        raise ConfigError(f"need dt > 0 and n_steps >= 1, got {dt}, {n_steps}.")
    dvec = jnp.broadcast_to(jnp.asarray(diffusion, x0.dtype), x0.shape[1:])
    bdrift = jax.vmap(drift)
    dt_ = jnp.asarray(dt, x0.dtype)

    def step(k, carry, t):
        x, s = carry
        noise = jax.random.normal(k, x.shape, x.dtype)
        x_new = x + bdrift(x) * dt_ + jnp.sqrt(2.0 * dt_ * dvec) * noise
        flow = jnp.sum(bdrift(0.5 * (x + x_new)) * (x_new - x) / dvec, axis=1)
        return (x_new, s + flow), {}

    times = record_times(int(n_steps), None, record_at)
    zero = jnp.zeros(x0.shape[0], x0.dtype)
    (x, _), (recs, _) = scan_steps(
        step,
        (x0, zero),
        key,
        times,
        lambda c: {"x": c[0], "entropy": c[1]},
        n_steps=int(n_steps),
    )
    return x, recs


def _theory():
    # theory imports models at module level, so models reach theory on first use
    from .. import theory

    return theory


class LinearOU(eqx.Module):
    r"""Linear diffusion $dx = -Ax\,dt + \sqrt{2D}\,dW$ (non-equilibrium when $D^{-1}A$ is not
    symmetric): drift, exact stationary score and exact entropy production.

    **Arguments:** `a` (d, d) drift matrix; `diffusion` the diagonal of D, (d,) or scalar.
    """

    a: Float[Array, "d d"]
    diffusion: Float[Array, " d"]
    precision: Float[Array, "d d"]

    def __init__(self, a, diffusion=1.0):
        a_np = np.asarray(a, dtype=np.float64)
        if a_np.ndim != 2 or a_np.shape[0] != a_np.shape[1]:
            raise ShapeError(f"A must be square, got shape {a_np.shape}.")
        d = np.broadcast_to(np.asarray(diffusion, dtype=np.float64), a_np.shape[:1])
        sigma = _theory().lyapunov_covariance(a_np, d)
        self.a = jnp.asarray(a_np, jnp.float32)
        self.diffusion = jnp.asarray(d, jnp.float32)
        self.precision = jnp.asarray(np.linalg.inv(sigma), jnp.float32)

    def drift(self, x: Float[ArrayLike, " d"]) -> Float[Array, " d"]:
        return -self.a.astype(x.dtype) @ x

    def score(self, x: Float[ArrayLike, " d"]) -> Float[Array, " d"]:
        r"""Exact stationary score $-\Sigma^{-1}x$."""
        return -self.precision.astype(x.dtype) @ x

    def covariance(self) -> np.ndarray:
        """Exact stationary covariance (`theory.lyapunov_covariance`)."""
        return _theory().lyapunov_covariance(
            np.asarray(self.a, np.float64), np.asarray(self.diffusion)
        )

    def entropy_production(self) -> float:
        """Exact entropy production rate (`theory.linear_entropy_production`)."""
        return _theory().linear_entropy_production(
            np.asarray(self.a, np.float64), np.asarray(self.diffusion)
        )

    def sample_stationary(self, key: Key, n: int) -> Float[Array, "n d"]:
        """Exact draws from the Gaussian steady state."""
        chol = jnp.asarray(np.linalg.cholesky(self.covariance()), jnp.float32)
        return jax.random.normal(key, (n, chol.shape[0]), jnp.float32) @ chol.T


class ActiveOUParticles(eqx.Module):
    r"""Active Ornstein–Uhlenbeck particles in a harmonic trap with soft repulsion.

    State $z = (x, \eta)$, $x, \eta \in \mathbb{R}^{N \times \mathrm{dim}}$ flattened to one vector:

    $$dx_i = \left[-k x_i - \nabla_i U_{int}(x) + \eta_i\right] dt + \sqrt{2D_t}\, dW_i,\qquad
    d\eta_i = -\frac{\eta_i}{\tau}\, dt + \frac{\sqrt{2D_a}}{\tau}\, dW'_i,$$

    with $U_{int} = \epsilon \sum_{i<j} e^{-|x_i - x_j|^2 / 2\ell^2}$ (a soft core; Boffi &
    Vanden-Eijnden 2309.12991 study the same class of active swimmers). The diffusion of the
    joint process is $D = \mathrm{diag}(D_t, D_a/\tau^2)$. With $\epsilon = 0$ it is a linear OU
    process (`as_linear()`) with an exact entropy production.

    **Arguments:** `n_particles`, `dim` (static); `k`, `epsilon`, `ell`, `tau`, `d_t`, `d_a`.
    """

    k: float
    epsilon: float
    ell: float
    tau: float
    d_t: float
    d_a: float
    n_particles: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    def __init__(
        self,
        n_particles: int = 2,
        dim: int = 2,
        *,
        k: float = 1.0,
        epsilon: float = 1.0,
        ell: float = 1.0,
        tau: float = 1.0,
        d_t: float = 1.0,
        d_a: float = 1.0,
    ):
        for name, v in {"k": k, "ell": ell, "tau": tau, "d_t": d_t, "d_a": d_a}.items():
            if not v > 0:
                raise ConfigError(f"{name} must be positive, got {v}.")
        self.n_particles, self.dim = int(n_particles), int(dim)
        self.k, self.epsilon, self.ell = float(k), float(epsilon), float(ell)
        self.tau, self.d_t, self.d_a = float(tau), float(d_t), float(d_a)

    @property
    def state_dim(self) -> int:
        return 2 * self.n_particles * self.dim

    @property
    def diffusion(self) -> np.ndarray:
        half = self.n_particles * self.dim
        return np.concatenate([np.full(half, self.d_t), np.full(half, self.d_a / self.tau**2)])

    def interaction_energy(self, x: Float[Array, "N dim"]) -> Float[Array, ""]:
        diff = x[:, None, :] - x[None, :, :]
        r2 = jnp.sum(diff**2, axis=-1)
        pair = jnp.exp(-r2 / (2 * self.ell**2))
        off = 1.0 - jnp.eye(self.n_particles, dtype=x.dtype)
        return 0.5 * self.epsilon * jnp.sum(pair * off)

    def drift(self, z: Float[ArrayLike, " D"]) -> Float[Array, " D"]:
        half = self.n_particles * self.dim
        x, eta = z[:half].reshape(self.n_particles, self.dim), z[half:]
        force = -self.k * x - jax.grad(self.interaction_energy)(x)
        return jnp.concatenate([force.reshape(-1) + eta, -eta / self.tau])

    def as_linear(self) -> LinearOU:
        """The non-interacting system as a `LinearOU` (only valid for `epsilon = 0`)."""
        if self.epsilon != 0:
            raise ConfigError("as_linear() needs epsilon = 0 (no interaction).")
        half = self.n_particles * self.dim
        eye = np.eye(half)
        a = np.block([[self.k * eye, -eye], [np.zeros_like(eye), eye / self.tau]])
        return LinearOU(a, self.diffusion)
