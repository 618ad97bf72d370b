r"""The grokking student of Kumar, Bordelon, Gershman & Pehlevan, "Grokking as the transition
from lazy to rich training dynamics" (ICLR 2024, arXiv 2310.06110), with its linearisation
and neural tangent kernel (its closed forms: `diffphys.theory.ntk_infinite_width`,
`theory.linearised_gd`, `theory.kernel_regression`).

Setting (quoted from the paper and the authors' notebook): inputs $x \sim N(0, I/D)$, a
quadratic teacher $y(x) = (\beta\cdot x)^2/2$ with $\beta \sim N(0, I_D)$, and a two-layer
network with an untrained readout

$$f(x) = \frac{\alpha}{N}\sum_{i=1}^N \phi(w_i\cdot x),\qquad \phi(z) = z + \frac{\varepsilon}{2}z^2,
\qquad w_i \sim N(0, I_D),$$

trained by full-batch gradient descent with learning rate $\eta = N/\alpha^2$ on the centred
square loss $L = \frac1P\sum_\mu (f(x_\mu) - f_0(x_\mu) - y_\mu)^2$ ($f_0$: the network at
initialisation). The output scale $\alpha$ sets laziness: large $\alpha$ stays close to the
linearised model $f_0 + \nabla f_0\cdot(\theta - \theta_0)$, small $\alpha$ learns features.

Derived here (not quoted): the empirical NTK of the hidden weights is
$K(x, x') = \sum_i \partial_{w_i} f(x)\cdot\partial_{w_i} f(x')
= \frac{\alpha^2}{N^2}\sum_i \phi'(w_i\cdot x)\phi'(w_i\cdot x')\, x\cdot x'$, and since
$\phi'(z) = 1 + \varepsilon z$ and $E_w[(w\cdot x)(w\cdot x')] = x\cdot x'$ for
$w \sim N(0, I)$, its infinite-width limit in the units of the learning rate, $\eta K$, is

$$\eta K_\infty(x, x') = x\cdot x' + \varepsilon^2 (x\cdot x')^2 .$$

With this scaling the function-space step $\Delta f = -\frac{2\eta}{P} K (f - f_0 - y)$ is
independent of $\alpha$: only the rate of feature learning depends on it.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import ConfigError, ShapeError
from .._types import Array, Float


def _check_sizes(**sizes) -> None:
    for name, (value, least) in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"{name} must be an integer >= {least}, got {value!r}.")


def _check_positive(name: str, value) -> None:
    """Reject a concrete non-positive or non-finite value (tracers pass: they are data)."""
    import numpy as np

    try:
        arr = np.asarray(value, dtype=np.float64)
    except Exception:
        return
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ConfigError(f"{name} must be positive and finite, got {value!r}.")


class QuadraticTeacher(eqx.Module):
    r"""The teacher $y(x) = (\beta\cdot x)^2/2$ with Gaussian inputs $x \sim N(0, I/D)$.

    **Arguments:**

    - `beta`: the teacher direction, shape (D,).

    Build a random one with `QuadraticTeacher.sample(key, D=100)` ($\beta \sim N(0, I_D)$,
    so $E[y] = |\beta|^2/(2D) \approx 1/2$ and $E[y^2] \approx 3/4$).
    """

    beta: Float[Array, " D"]

    @classmethod
    def sample(cls, key, *, D: int, dtype=jnp.float32) -> QuadraticTeacher:
        """A teacher with $\\beta \\sim N(0, I_D)$."""
        _check_sizes(D=(D, 1))
        return cls(jax.random.normal(key, (D,), dtype))

    @property
    def D(self) -> int:
        return self.beta.shape[-1]

    def inputs(self, key, n: int) -> Float[Array, "n D"]:
        """`n` inputs $x \\sim N(0, I/D)$."""
        _check_sizes(n=(n, 1))
        return jax.random.normal(key, (n, self.D), self.beta.dtype) / jnp.sqrt(
            jnp.asarray(self.D, self.beta.dtype)
        )

    def __call__(self, x: Float[Array, "*batch D"]) -> Float[Array, "*batch"]:
        return 0.5 * (x @ self.beta) ** 2


class GrokkingTask(eqx.Module):
    """A train/test split of the quadratic-teacher regression task.

    **Arguments:** `teacher`, `x_train` (P, D), `y_train` (P,), `x_test` (P_test, D),
    `y_test` (P_test,).

    Build one with `GrokkingTask.sample(key, D=100, P=550, P_test=1000)`.
    """

    teacher: QuadraticTeacher
    x_train: Float[Array, "P D"]
    y_train: Float[Array, " P"]
    x_test: Float[Array, "Pt D"]
    y_test: Float[Array, " Pt"]

    @classmethod
    def sample(cls, key, *, D: int, P: int, P_test: int = 1000, dtype=jnp.float32):
        """Teacher and data: $\\beta \\sim N(0, I_D)$, P training and P_test test inputs.

        **Arguments:** `key`, `D` (input dimension >= 1), `P` (training examples >= 1),
        `P_test` (test examples >= 1).

        **Returns:** a `GrokkingTask`.
        """
        _check_sizes(D=(D, 1), P=(P, 1), P_test=(P_test, 1))
        k_beta, k_train, k_test = jax.random.split(key, 3)
        teacher = QuadraticTeacher.sample(k_beta, D=D, dtype=dtype)
        x_train = teacher.inputs(k_train, P)
        x_test = teacher.inputs(k_test, P_test)
        return cls(teacher, x_train, teacher(x_train), x_test, teacher(x_test))


class TwoLayer(eqx.Module):
    r"""$f(x) = \frac{\alpha}{N}\sum_i \phi(w_i\cdot x)$, $\phi(z) = z + \frac{\varepsilon}{2}z^2$,
    readout fixed to one (arXiv 2310.06110).

    **Arguments:**

    - `w`: hidden weights, shape (N, D).
    - `alpha`: output scale $\alpha > 0$ (an array: it may be vmapped over).
    - `eps`: quadratic coefficient $\varepsilon$ of the activation (an array).

    `alpha` and `eps` are data, not parameters: the forward pass stops their gradients, so
    an optimiser applied to the whole module changes only `w`. `__call__` takes one input
    (D,); vmap it over a batch or use `batch`.
    """

    w: Float[Array, "N D"]
    alpha: Float[Array, ""]
    eps: Float[Array, ""]

    @classmethod
    def sample(cls, key, *, N: int, D: int, alpha=1.0, eps=0.02, dtype=jnp.float32) -> TwoLayer:
        """A network with $w_i \\sim N(0, I_D)$ (the paper's initialisation).

        **Arguments:** `key`; `N` hidden units (>= 2); `D` input dimension (>= 1); `alpha`
        output scale (> 0); `eps` activation's quadratic coefficient.

        **Returns:** a `TwoLayer`.
        """
        _check_sizes(N=(N, 2), D=(D, 1))
        _check_positive("alpha", alpha)
        w = jax.random.normal(key, (N, D), dtype)
        return cls(w, jnp.asarray(alpha, dtype), jnp.asarray(eps, dtype))

    @property
    def N(self) -> int:
        return self.w.shape[0]

    @property
    def D(self) -> int:
        return self.w.shape[1]

    @property
    def learning_rate(self) -> Float[Array, ""]:
        r"""The paper's learning rate $\eta = N/\alpha^2$."""
        return jnp.asarray(self.N, self.w.dtype) / jax.lax.stop_gradient(self.alpha) ** 2

    def _coeffs(self):
        return jax.lax.stop_gradient(self.alpha), jax.lax.stop_gradient(self.eps)

    def __call__(self, x: Float[Array, " D"]) -> Float[Array, ""]:
        alpha, eps = self._coeffs()
        h = self.w @ x
        return alpha * jnp.mean(h + 0.5 * eps * h**2)

    def batch(self, x: Float[Array, "P D"]) -> Float[Array, " P"]:
        """The network on a batch of inputs (one matrix product)."""
        alpha, eps = self._coeffs()
        h = x @ self.w.T
        return alpha * jnp.mean(h + 0.5 * eps * h**2, axis=-1)

    def ntk(self, x1: Float[Array, "P1 D"], x2: Float[Array, "P2 D"] | None = None):
        r"""The empirical NTK of the hidden weights in closed form,
        $K(x, x') = \frac{\alpha^2}{N^2}\sum_i \phi'(w_i\cdot x)\phi'(w_i\cdot x')\,x\cdot x'$.

        **Returns:** the Gram matrix (P1, P2) (`x2 = None`: `x1` against itself).
        """
        x2 = x1 if x2 is None else x2
        alpha, eps = self._coeffs()
        g1 = 1.0 + eps * (x1 @ self.w.T)
        g2 = 1.0 + eps * (x2 @ self.w.T)
        n = jnp.asarray(self.N, self.w.dtype)
        return (alpha / n) ** 2 * (g1 @ g2.T) * (x1 @ x2.T)


class Linearised(eqx.Module):
    r"""The linearisation of a model around its initial parameters,
    $f_{\rm lin}(x) = f_0(x) + \nabla_\theta f_0(x)\cdot\delta$, trainable like the model.

    **Arguments:**

    - `model`: an `eqx.Module` whose `__call__(x)` returns a scalar; it is frozen (its
      gradients are stopped).
    - `delta`: the displacement $\delta = \theta - \theta_0$, a pytree like `model` (default:
      zeros); this is what training changes.

    Evaluated with one `jax.jvp` per input, so its cost is about twice the model's.
    """

    model: eqx.Module
    delta: eqx.Module

    def __init__(self, model, delta=None):
        self.model = model
        if delta is None:
            delta = jax.tree.map(
                lambda a: jnp.zeros_like(a) if eqx.is_inexact_array(a) else a, model
            )
        self.delta = delta

    def __call__(self, x):
        model = jax.tree.map(
            lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, self.model
        )
        params, static = eqx.partition(model, eqx.is_inexact_array)
        tangent, _ = eqx.partition(self.delta, eqx.is_inexact_array)
        y, dy = jax.jvp(lambda p: eqx.combine(p, static)(x), (params,), (tangent,))
        return y + dy

    def batch(self, x):
        """The linearised model on a batch of inputs."""
        return jax.vmap(self)(x)


def ntk_gram(model, x1, x2=None):
    r"""The empirical neural tangent kernel $K(x, x') = \nabla_\theta f(x)\cdot\nabla_\theta
    f(x')$ of any model with `__call__(x) -> scalar`, summed over its inexact array leaves.

    Leaves whose gradient is stopped (e.g. `TwoLayer.alpha`) contribute zero. Memory: one
    gradient per input (P x number of parameters); use a closed form such as
    `TwoLayer.ntk` for large sets.

    **Returns:** the Gram matrix (P1, P2).
    """
    x2 = x1 if x2 is None else x2

    def grads(x):
        g = jax.vmap(eqx.filter_grad(lambda m, xi: m(xi)), in_axes=(None, 0))(model, x)
        leaves = jax.tree.leaves(eqx.filter(g, eqx.is_inexact_array))
        return [a.reshape(a.shape[0], -1) for a in leaves]

    g1 = grads(x1)
    g2 = g1 if x2 is x1 else grads(x2)
    return sum(a @ b.T for a, b in zip(g1, g2))


def ntk_alignment(K, y, *, centre: bool = False):
    r"""Kernel-target alignment $A = y^\top K y / (\|K\|_F\,\|y\|^2)$ (arXiv 2310.06110).

    **Arguments:** `K` (P, P) Gram matrix; `y` (P,) targets; `centre`: subtract the mean of
    `y` and the column means of `K` first (the authors' notebook does; $A$ then measures the
    alignment of the fluctuating part).

    **Returns:** a scalar in [-1, 1] (in [0, 1] for a positive semi-definite `K`).
    """
    if K.ndim != 2 or K.shape[0] != K.shape[1] or y.shape != K.shape[:1]:
        raise ShapeError(f"need K (P, P) and y (P,), got {K.shape} and {y.shape}.")
    if centre:
        y = y - jnp.mean(y)
        K = K - jnp.mean(K, axis=0)
    return (y @ K @ y) / (jnp.linalg.norm(K) * jnp.sum(y**2))


def centred_loss(model, x, y, f0):
    r"""The centred square loss $\frac1P\sum_\mu (f(x_\mu) - f_0(x_\mu) - y_\mu)^2$.

    **Arguments:** `model` (anything with `batch(x)` or a scalar `__call__`), inputs `x`
    (P, D), targets `y` (P,), `f0` the initial network on `x` (P,).
    """
    f = model.batch(x) if hasattr(model, "batch") else jax.vmap(model)(x)
    return jnp.mean((f - f0 - y) ** 2)
