r"""Score matching through the shared training loop `diffphys.training.train`.

Two estimators of $\nabla \log p$:

- **denoising score matching** for a diffusion score $s_\theta(x, t)$ (Vincent 2011; Song et
  al. 2021), with the OU noising of `diffphys.models` ($x_t = a e^{-t} + \sqrt{\Delta_t} z$):

  $$L(\theta) = E_{t, a, z}\left|\sqrt{\Delta_t}\, s_\theta(x_t, t) + z\right|^2,$$

  the $\lambda(t) = \Delta_t$ weighting that makes it a regression of the noise; its minimiser
  is the exact score of the noised data distribution.
- **implicit (Hyvärinen) score matching** for a stationary score $s_\theta(x)$ from samples of
  a density (used for entropy production, Boffi & Vanden-Eijnden arXiv 2309.12991):

  $$L(\theta) = E_x\left[|s_\theta(x)|^2 + 2\, \nabla\cdot s_\theta(x)\right].$$

Both return a `grad_fn` for `diffphys.training.train`, built with `from_loss`. Equinox models
hold non-array leaves (activation functions), so the trainable arrays are split off with
`eqx.partition` (`split_model`) and recombined inside the loss.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import ConfigError
from ..models import ou_mean_scale, ou_variance
from ._loop import from_loss


def split_model(model):
    """`(params, static)`: the inexact arrays to train, and the rest (`eqx.combine` rejoins)."""
    return eqx.partition(model, eqx.is_inexact_array)


def _sample_times(key, n, t_min, t_max, dtype):
    """Log-uniform times in [t_min, t_max]: every decade of noise gets the same effort."""
    u = jax.random.uniform(key, (n,), dtype)
    return jnp.exp(jnp.log(t_min) + u * (jnp.log(t_max) - jnp.log(t_min)))


def dsm_loss(model, batch, key, *, t_min: float = 1e-3, t_max: float = 10.0):
    r"""Denoising score-matching loss of a diffusion score `model(x, t)` on a batch (B, d).

    $L = \frac{1}{B}\sum_b |\sqrt{\Delta_{t_b}}\, s(x_b, t_b) + z_b|^2$, $t_b$ log-uniform.
    """
    k_t, k_z = jax.random.split(key)
    n = batch.shape[0]
    t = _sample_times(k_t, n, t_min, t_max, batch.dtype)
    z = jax.random.normal(k_z, batch.shape, batch.dtype)
    xt = batch * ou_mean_scale(t)[:, None] + jnp.sqrt(ou_variance(t))[:, None] * z
    s = jax.vmap(model)(xt, t)
    return jnp.mean(jnp.sum((jnp.sqrt(ou_variance(t))[:, None] * s + z) ** 2, axis=1))


def implicit_score_matching_loss(model, batch, key=None):
    r"""Hyvärinen's loss $E[|s(x)|^2 + 2 \nabla\cdot s(x)]$ of a stationary score `model(x)`.

    The divergence is the exact trace of the Jacobian (d forward-mode passes; right for the
    small d of particle systems). The minimum equals $-E|\nabla \log p|^2$.
    """

    def one(x):
        s = model(x)
        div = jnp.trace(jax.jacfwd(model)(x))
        return jnp.sum(s**2) + 2.0 * div

    return jnp.mean(jax.vmap(one)(batch))


def denoising_score_matching(
    static, data, batch_size: int, *, t_min: float = 1e-3, t_max: float = 10.0
):
    """A `grad_fn` for `diffphys.training.train` minimising `dsm_loss` on minibatches of `data`.

    **Arguments:**

    - `static`: the non-trainable part of the score model (from `split_model`).
    - `data`: array (n, d) of clean data.
    - `batch_size`: minibatch size (drawn with replacement every step).
    - `t_min`, `t_max`: range of the log-uniform training times.

    **Returns:** `grad_fn(key, params, aux, t)`; train with
    `train(key, params, grad_fn, optax.adam(lr), n_steps)` and rebuild the model with
    `eqx.combine(state.params, static)`.
    """
    if not 0 < t_min < t_max:
        raise ConfigError(f"need 0 < t_min < t_max, got {t_min}, {t_max}.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")

    def loss(params, batch, key):
        return dsm_loss(eqx.combine(params, static), batch, key, t_min=t_min, t_max=t_max)

    return from_loss(loss, jnp.asarray(data), batch_size)


def implicit_score_matching(static, data, batch_size: int):
    """A `grad_fn` for `train` minimising `implicit_score_matching_loss` on minibatches."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")

    def loss(params, batch, key):
        return implicit_score_matching_loss(eqx.combine(params, static), batch)

    return from_loss(loss, jnp.asarray(data), batch_size)
