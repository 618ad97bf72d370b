r"""Gaussian kernel density estimator with the statistics of Biroli & Mézard, "Kernel density
estimators in large dimensions" (arXiv 2408.05807).

$$\hat\rho_h(x) = \frac{1}{n h^d}\sum_{i=1}^n K\!\left(\frac{x - y_i}{h}\right)
= \frac1n\sum_i N(x;\ y_i,\ h^2 I),\qquad K(u) = (2\pi)^{-d/2} e^{-|u|^2/2},$$

and the normalised weights $w_i(x) = K((x - y_i)/h) / \sum_j K((x - y_j)/h)$, whose largest
value and participation ratio $Y_2 = \sum_i w_i^2$ tell how many data points the estimate
rests on (CLT regime: $Y_2 \to 0$; extreme-value regime: $Y_2 = O(1)$).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import ConfigError, ShapeError
from .._types import Array, Float


class GaussianKDE(eqx.Module):
    """Gaussian KDE of a data set (n, d) with bandwidth h, streamed over chunks of data points.

    The sum over points is a streaming log-sum-exp over chunks of `chunk_size` points (memory
    O(chunk_size) per query point); vmap over query points turns each chunk into a matrix
    product.

    **Arguments:**

    - `data`: array (n, d) of data points $y_i$.
    - `h`: bandwidth (a scalar; may be a traced value, e.g. vmapped over a grid of h).
    - `chunk_size`: data points per chunk (`None`: all).
    """

    data: Float[Array, "n d"]
    sq_norms: Float[Array, " n"]
    mask: Float[Array, " n"]
    h: Float[Array, ""]
    n: int = eqx.field(static=True)
    chunk_size: int = eqx.field(static=True)

    def __init__(self, data, h, chunk_size: int | None = None):
        data = jnp.asarray(data)
        if data.ndim != 2:
            raise ShapeError(f"data must be (n_points, d), got shape {data.shape}.")
        if not jnp.issubdtype(data.dtype, jnp.floating):
            data = data.astype(jnp.float32)
        n = data.shape[0]
        chunk = n if chunk_size is None else min(int(chunk_size), n)
        if chunk < 1:
            raise ConfigError(f"chunk_size must be positive, got {chunk_size}.")
        pad = (-n) % chunk
        self.n, self.chunk_size = n, chunk
        self.data = jnp.concatenate([data, jnp.zeros((pad, data.shape[1]), data.dtype)])
        self.sq_norms = jnp.sum(self.data**2, axis=1)
        self.mask = jnp.concatenate([jnp.zeros(n, data.dtype), jnp.full(pad, -jnp.inf, data.dtype)])
        self.h = jnp.asarray(h, data.dtype)

    @property
    def dim(self) -> int:
        return self.data.shape[1]

    def _stats(self, x):
        if x.shape != (self.dim,):
            raise ShapeError(
                f"GaussianKDE evaluates one point of shape ({self.dim},), got {x.shape}; "
                f"use jax.vmap over query points."
            )
        x = x.astype(self.data.dtype)
        k = self.data.shape[0] // self.chunk_size
        chunks = (
            self.data.reshape(k, self.chunk_size, -1),
            self.sq_norms.reshape(k, self.chunk_size),
            self.mask.reshape(k, self.chunk_size),
        )
        inv = 1.0 / self.h**2
        x2 = jnp.sum(x**2)

        def body(carry, chunk):
            m, z, z2 = carry
            y, y2, mask = chunk
            logits = -0.5 * inv * (x2 + y2 - 2.0 * (y @ x)) + mask
            m_new = jnp.maximum(m, jnp.max(logits))
            c = jnp.exp(m - m_new)
            e = jnp.exp(logits - m_new)
            return (m_new, z * c + jnp.sum(e), z2 * c**2 + jnp.sum(e**2)), None

        zero = jnp.zeros((), self.data.dtype)
        (m, z, z2), _ = jax.lax.scan(body, (jnp.asarray(-jnp.inf, x.dtype), zero, zero), chunks)
        return m, z, z2

    def log_density(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        r"""$\log\hat\rho_h(x)$."""
        m, z, _ = self._stats(x)
        return m + jnp.log(z) - math.log(self.n) - 0.5 * self.dim * jnp.log(2 * jnp.pi * self.h**2)

    def statistics(self, x: Float[Array, " d"]) -> dict[str, Float[Array, ""]]:
        r"""`{"log_density", "max_weight", "participation_ratio"}` at x.

        `participation_ratio` is $Y_2 = \sum_i w_i^2$ (1 when one point carries all the weight,
        about 1/n when all weigh the same); `max_weight` is $\max_i w_i$.
        """
        m, z, z2 = self._stats(x)
        logrho = (
            m + jnp.log(z) - math.log(self.n) - 0.5 * self.dim * jnp.log(2 * jnp.pi * self.h**2)
        )
        return {"log_density": logrho, "max_weight": 1.0 / z, "participation_ratio": z2 / z**2}
