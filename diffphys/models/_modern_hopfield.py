"""The continuous modern Hopfield network (Ramsauer et al. 2021)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._errors import ShapeError, check_positive
from .._types import Array, Float
from ._base import AbstractModel
from ._hopfield import _check_patterns

# -- the continuous modern Hopfield network ------------------------------------------------


class ModernHopfield(AbstractModel):
    r"""The continuous modern Hopfield network of Ramsauer et al. (ICLR 2021, "Hopfield
    networks is all you need").

    With the stored patterns as rows of $X$ (P x d), the energy of a state $\xi\in\mathbb R^d$
    and its update rule are

    $$E(\xi) = -\beta^{-1}\log\sum_\mu e^{\beta\, x_\mu\cdot\xi} + \tfrac12\xi\cdot\xi
       + \beta^{-1}\log P + \tfrac12 M^2,\qquad
      \xi^{new} = X^\top \mathrm{softmax}(\beta X \xi),$$

    $M = \max_\mu\|x_\mu\|$. The update is the concave–convex procedure on E, so E never
    increases, and a well-separated pattern is retrieved in one step with an error exponentially
    small in its separation (their Theorem 4).

    **Arguments:**

    - `patterns`: `(P, d)` real patterns.
    - `beta`: inverse temperature β > 0.
    """

    patterns: Float[Array, "P d"]
    beta: Float[Array, ""]

    def __init__(self, patterns, beta=1.0, *, dtype=jnp.float32):
        check_positive("beta", beta)
        self.patterns = _check_patterns(patterns, dtype)
        self.beta = jnp.asarray(beta, dtype)

    def energy(self, xi) -> Float[Array, ""]:
        X = self.patterns
        lse = jax.nn.logsumexp(self.beta * (X @ xi)) / self.beta
        big_m = jnp.max(jnp.sum(X * X, axis=1))
        return -lse + 0.5 * xi @ xi + jnp.log(X.shape[0]) / self.beta + 0.5 * big_m

    def attention(self, xi) -> Float[Array, " P"]:
        r"""$\mathrm{softmax}(\beta X\xi)$: the weight of each stored pattern."""
        return jax.nn.softmax(self.beta * (self.patterns @ xi))

    def update(self, xi) -> Float[Array, " d"]:
        r"""One step $\xi \leftarrow X^\top\mathrm{softmax}(\beta X\xi)$; batches as `(..., d)`."""
        w = jax.nn.softmax(self.beta * (xi @ self.patterns.T), axis=-1)
        return w @ self.patterns

    def retrieve(self, xi, n_steps: int = 1):
        """Apply `update` `n_steps` times (a `lax.fori_loop`)."""
        return jax.lax.fori_loop(0, n_steps, lambda _, v: self.update(v), xi)

    def check_state(self, xi) -> None:
        if jnp.shape(xi)[-1:] != (self.patterns.shape[1],):
            raise ShapeError(
                f"ModernHopfield expects states of dimension {self.patterns.shape[1]}, got "
                f"shape {jnp.shape(xi)}."
            )
