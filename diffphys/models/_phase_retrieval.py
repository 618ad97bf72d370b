r"""Real phase retrieval: recover $x^*$ from $y_\mu = (a_\mu\cdot x^*)^2/N$, by gradient descent.

Setting of Sarao Mannelli, Biroli, Cammarota, Krzakala, Urbani, Zdeborová (arXiv 2006.06997)
and Bonnaire, Biroli, Cammarota (arXiv 2403.02418). Normalisation implemented here (stated,
since the papers' texts were not checked line by line in this module):

- $M = \mathrm{round}(\alpha N)$ sensing vectors $a_\mu \sim \mathcal N(0, I_N)$; signal
  $x^*$ uniform on the sphere $|x^*|^2 = N$; labels $y_\mu = (a_\mu\cdot x^*)^2/N$ (so
  $y = z^{*2}$ with $z^* = a\cdot x^*/\sqrt N \sim \mathcal N(0,1)$).
- Loss (extensive, O(N)):
  $$L(x) = \frac{1}{4\alpha}\sum_{\mu=1}^M \Big(\frac{(a_\mu\cdot x)^2}{N} - y_\mu\Big)^2,$$
  so that $\nabla^2 L(x) = \frac1M\sum_\mu w_\mu\, a_\mu a_\mu^\top$ with
  $w_\mu = 3 z_\mu^2 - z_\mu^{*2}$, $z_\mu = a_\mu\cdot x/\sqrt N$: O(1) eigenvalues, and GD
  with an O(1) learning rate and gradient flow in O(1) time move the overlap
  $m = x\cdot x^*/N$ by O(1).
- Spherical student: $|x|^2 = N$, Riemannian GD (gradient projected on the tangent space, a
  step, then the retraction $x \to \sqrt N x/|x|$); unconstrained student: plain GD.
- Success: $|m| \ge$ a threshold (sign of $x^*$ is unidentifiable), with $m$ normalised by
  $|x||x^*|$ for the unconstrained student.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._errors import ConfigError

__all__ = [
    "PhaseRetrieval",
    "phase_retrieval_descent",
    "phase_retrieval_grad",
    "random_student",
    "sphere_retraction",
]


def _check_size(n, alpha):
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ConfigError(f"phase retrieval needs an integer dimension n >= 2, got {n!r}.")
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ConfigError(f"alpha must be a positive number, got {alpha!r}.") from None
    if not math.isfinite(a) or a <= 0:
        raise ConfigError(f"alpha = M/N must be positive and finite, got {alpha!r}.")
    m = int(round(a * n))
    if m < 1:
        raise ConfigError(f"alpha * n = {a * n:g} gives no sensing vector; increase alpha or n.")
    return a, m


class PhaseRetrieval(eqx.Module):
    """One instance of real phase retrieval (sensing matrix, signal, labels).

    **Fields:** `a` (M, N) sensing vectors, `x_star` (N,) with $|x^*|^2 = N$, `y` (M,) labels
    $(a_\\mu\\cdot x^*)^2/N$, `alpha` = M/N (a float).
    """

    a: jax.Array
    x_star: jax.Array
    y: jax.Array
    alpha: float = eqx.field(static=True)

    @classmethod
    def sample(cls, key, *, n: int, alpha: float, dtype=jnp.float32) -> PhaseRetrieval:
        """Draw an instance: $a_{\\mu i}$ i.i.d. N(0, 1), $x^*$ uniform on $|x^*|^2 = N$.

        **Arguments:** `key`; `n` the dimension N (>= 2); `alpha` the sample ratio M/N (> 0;
        M = round(alpha N)); `dtype`.

        **Returns:** `PhaseRetrieval`.
        """
        alpha_f, m = _check_size(n, alpha)
        k_a, k_x = jax.random.split(key)
        a = jax.random.normal(k_a, (m, n), dtype)
        x_star = random_student(k_x, n, dtype=dtype)
        y = (a @ x_star) ** 2 / n
        return cls(a, x_star, y, m / n)

    @property
    def n(self) -> int:
        return self.a.shape[1]

    def loss(self, x) -> jax.Array:
        """$L(x) = \\frac{1}{4\\alpha}\\sum_\\mu ((a_\\mu\\cdot x)^2/N - y_\\mu)^2$ (extensive)."""
        z2 = (self.a @ x) ** 2 / self.n
        return jnp.sum((z2 - self.y) ** 2) / (4 * self.alpha)

    def overlap(self, x) -> jax.Array:
        """$|x\\cdot x^*| / (|x|\\,|x^*|)$, in [0, 1] (equals $|m|$ on the sphere)."""
        return jnp.abs(x @ self.x_star) / (jnp.linalg.norm(x) * jnp.linalg.norm(self.x_star))

    def hessian_weights(self, x) -> jax.Array:
        """$w_\\mu = 3 z_\\mu^2 - y_\\mu$: $\\nabla^2 L = \\frac1M\\sum_\\mu w_\\mu a_\\mu
        a_\\mu^\\top$."""
        z2 = (self.a @ x) ** 2 / self.n
        return 3 * z2 - self.y

    def hessian(self, x) -> jax.Array:
        """The dense (N, N) Hessian of `loss` at x (for small N and tests)."""
        w = self.hessian_weights(x)
        return (self.a.T * w) @ self.a / self.a.shape[0]

    def riemannian_hessian(self, x) -> jax.Array:
        """Hessian on the sphere $|x|^2 = N$ at x, restricted to the tangent space:
        $P(\\nabla^2 L - \\frac{x\\cdot\\nabla L}{N} I)P$, $P = I - xx^\\top/N$ (dense, (N, N);
        the radial direction gets eigenvalue 0)."""
        n = self.n
        g = jax.grad(self.loss)(x)
        P = jnp.eye(n, dtype=x.dtype) - jnp.outer(x, x) / (x @ x)
        return P @ (self.hessian(x) - (x @ g) / (x @ x) * jnp.eye(n, dtype=x.dtype)) @ P


def random_student(key, n: int, *, dtype=jnp.float32) -> jax.Array:
    """A point uniform on the sphere $|x|^2 = N$ (the random initialisation)."""
    x = jax.random.normal(key, (n,), dtype)
    return x * jnp.sqrt(jnp.asarray(n, dtype)) / jnp.linalg.norm(x)


def phase_retrieval_grad(problem: PhaseRetrieval, *, spherical: bool = True):
    """A gradient estimator for `diffphys.training.train` (full-batch GD on `problem.loss`).

    **Arguments:** `problem`; `spherical`: project the gradient on the tangent space of the
    sphere (pair it with `sphere_retraction` in the optimiser: `optax.chain(optax.sgd(lr),
    sphere_retraction())`).

    **Returns:** `grad_fn(key, x, aux, t) -> (grads, aux, {"loss", "diverged"})`; `diverged`
    is 1.0 when the loss or gradient is not finite (record it: a learning rate too large).
    """

    def grad_fn(key, x, aux, t):
        value, g = jax.value_and_grad(problem.loss)(x)
        if spherical:
            g = g - (g @ x) / (x @ x) * x
        bad = ~(jnp.isfinite(value) & jnp.all(jnp.isfinite(g)))
        return g, aux, {"loss": value, "diverged": bad.astype(value.dtype)}

    return grad_fn


def phase_retrieval_descent(
    problem: PhaseRetrieval,
    x0: jax.Array,
    *,
    lr: float,
    n_steps: int,
    spherical: bool = True,
    n_checks: int = 1,
) -> dict:
    r"""Full-batch GD on `problem.loss` from K starts at once (one shared sensing matrix).

    The same iteration as `training.train` with `phase_retrieval_grad` and
    `optax.chain(optax.sgd(lr), sphere_retraction())` (or `optax.sgd(lr)` when not
    `spherical`), written for K students together: with $X$ the (K, N) students,
    $Z = X A^\top/\sqrt N$ and the closed-form gradient
    $$G = \frac{1}{\alpha\sqrt N}\big(Z\odot(Z^{\odot 2} - y)\big) A,$$
    projected on the tangent space, a step $X - \mathrm{lr}\,G$ and the retraction to
    $|x|^2 = N$. Each step is two (K, N) x (N, M) matrix products instead of 2K matrix-vector
    products: compute bound rather than memory bound for K >~ 8 (autodiff is not used).

    **Arguments:** `problem`; `x0` (K, N) starts (or (N,)); `lr`; `n_steps`; `spherical`;
    `n_checks`: the overlap is also recorded after every `n_steps // n_checks` steps (the last
    record is the final state; fixed trip counts, no data-dependent loop).

    **Returns:** `{"x": final students (K, N), "overlap": (n_checks, K) overlaps
    |x.x*|/(|x||x*|) at the checks, "diverged": (K,) bool (non-finite loss or gradient at
    some step, or a non-finite final state)}`.
    """
    if n_steps < 1 or n_checks < 1 or n_steps % n_checks:
        raise ConfigError(
            f"phase_retrieval_descent needs n_steps >= 1 divisible by n_checks >= 1, got "
            f"n_steps={n_steps}, n_checks={n_checks}."
        )
    single = x0.ndim == 1
    X = x0[None] if single else x0
    if X.ndim != 2 or X.shape[1] != problem.n:
        raise ConfigError(f"x0 must have shape (K, {problem.n}) or ({problem.n},), got {x0.shape}.")
    a, y, dt = problem.a, problem.y, X.dtype
    sq = jnp.sqrt(jnp.asarray(problem.n, dt))
    scale = jnp.asarray(1.0 / problem.alpha, dt) / sq
    lr_ = jnp.asarray(lr, dt)
    xs_norm = jnp.linalg.norm(problem.x_star)

    def step(carry, _):
        X, bad = carry
        Z = (X @ a.T) / sq
        G = ((Z * (Z * Z - y)) @ a) * scale
        loss_ok = jnp.all(jnp.isfinite(Z), axis=1)
        if spherical:
            G = G - jnp.sum(G * X, 1, keepdims=True) / jnp.sum(X * X, 1, keepdims=True) * X
        bad = bad | ~(loss_ok & jnp.all(jnp.isfinite(G), axis=1))
        new = X - lr_ * G
        if spherical:
            nx = jnp.linalg.norm(X, axis=1, keepdims=True)
            new = new * (nx / jnp.linalg.norm(new, axis=1, keepdims=True))
        return (new, bad), None

    def chunk(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=n_steps // n_checks)
        X = carry[0]
        ov = jnp.abs(X @ problem.x_star) / (jnp.linalg.norm(X, axis=1) * xs_norm)
        return carry, ov

    bad0 = jnp.zeros(X.shape[0], bool)
    (X, bad), ov = jax.lax.scan(chunk, (X, bad0), None, length=n_checks)
    bad = bad | ~jnp.all(jnp.isfinite(X), axis=1)
    if single:
        return {"x": X[0], "overlap": ov[:, 0], "diverged": bad[0]}
    return {"x": X, "overlap": ov, "diverged": bad}


def sphere_retraction() -> optax.GradientTransformation:
    """An optax transformation that maps `params + updates` back to the sphere of radius
    $|params|$ (the retraction of Riemannian GD); chain it after the optimiser."""

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ConfigError("sphere_retraction needs params: pass them to optimizer.update.")

        def one(u, p):
            new = p + u
            return new * (jnp.linalg.norm(p) / jnp.linalg.norm(new)) - p

        return jax.tree.map(one, updates, params), state

    return optax.GradientTransformation(init, update)
