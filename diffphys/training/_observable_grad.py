r"""Derivatives of Monte Carlo averages with respect to model parameters.

For a Boltzmann law $p_\theta(x) \propto e^{-\beta E_\theta(x)}$ and an observable $O_\theta$,

$$\frac{d\langle O\rangle}{d\theta} = \Big\langle \frac{\partial O}{\partial\theta}\Big\rangle
   - \beta\,\mathrm{Cov}\Big(O, \frac{\partial E}{\partial\theta}\Big)$$

(the fluctuation, score-function or likelihood-ratio estimator; e.g. $d\langle E\rangle/d\beta
= -\mathrm{Var}\,E$ with $\beta$ as the parameter, $E$ entering as $\beta E$). From samples
$x^a$ the covariance is estimated with the sample mean of $O$ as baseline (control variate),
which removes the $\langle O\rangle\langle\partial E\rangle$ term's variance.

`fluctuation_surrogate` exposes it to `jax.grad`: it returns a scalar whose *value* is the
sample mean $\bar O$ and whose *gradient* is the estimator above, built with stop-gradients,

$$S(\theta) = \bar O + \overline{[O - \bar O]_{\rm sg}\,[\beta E - \overline{\beta E}]}_{\rm sg}
  - \overline{[O - \bar O]_{\rm sg}\,[\beta E - \overline{\beta E}]}$$

($[\cdot]_{\rm sg}$: stop-gradient; the last two terms cancel in value), so `jax.grad(lambda th: fluctuation_surrogate(energy_fn(th), obs_fn(th), samples, beta))`
is the fluctuation estimator, and it composes with optax (`training.from_loss`) to fit
parameters to target observables.

`langevin_pathwise` is the other estimator: differentiate through a fixed-noise overdamped
Langevin trajectory (`sampling.langevin` inside `lax.scan`) by reverse-mode autodiff; it
estimates $d\langle O\rangle/d\theta$ of the discretised dynamics' stationary law for smooth
continuous models.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._errors import ConfigError, ShapeError
from ..sampling import langevin


def fluctuation_surrogate(energy: Callable, observable: Callable, samples, beta=1.0):
    r"""Scalar whose value is $\bar O$ and whose gradient is the fluctuation estimator.

    **Arguments:**

    - `energy`: `energy(x) -> scalar`, the energy as a function of one sample, closing over
      the parameters being differentiated (gradients flow through it).
    - `observable`: `observable(x) -> scalar` (may also depend on the parameters).
    - `samples`: a batch of configurations (leading sample axis), drawn from
      $p \propto e^{-\beta E}$ at the current parameters (treated as constants).
    - `beta`: inverse temperature; may itself be differentiated (pass `beta` traced and use
      `energy(x) * 1`; the estimator covers $\partial_\beta$ of $\beta E$).

    **Returns:** the surrogate scalar. $\nabla_\theta S = \overline{\partial_\theta O}
    - \overline{(O - \bar O)\,\partial_\theta(\beta E)}$: the covariance estimator with the
    sample mean as control variate (unbiased up to $O(1/M)$ for M independent samples).
    """
    samples = jax.lax.stop_gradient(samples)
    leaves = jax.tree.leaves(samples)
    if not leaves or leaves[0].ndim < 1 or leaves[0].shape[0] < 2:
        raise ShapeError("samples need a leading sample axis with at least 2 samples.")
    o = jax.vmap(observable)(samples)
    be = beta * jax.vmap(energy)(samples)
    o_c = jax.lax.stop_gradient(o - jnp.mean(o))
    be_c = be - jnp.mean(be)
    return jnp.mean(o) - jnp.mean(o_c * be_c) + jax.lax.stop_gradient(jnp.mean(o_c * be_c))


def langevin_pathwise(
    key,
    model_fn: Callable,
    theta,
    x0,
    observable: Callable,
    *,
    n_steps: int,
    n_burn: int,
    dt: float,
    beta: float = 1.0,
):
    r"""Pathwise estimate of $\langle O\rangle$ differentiable in `theta`: the time average of
    `observable` over the last `n_steps - n_burn` steps of an Euler–Maruyama Langevin
    trajectory (`sampling.langevin`) of the model `model_fn(theta)`, with fixed noise.

    `jax.grad` of it with respect to `theta` differentiates the whole `lax.scan` (the
    reparametrisation / pathwise estimator). Vmap over `key` and `x0` for several chains.

    **Arguments:**

    - `key`: PRNG key of the noise.
    - `model_fn`: `theta -> model` with `energy` (e.g. a quadratic well).
    - `theta`: the parameters (a pytree).
    - `x0`: initial state.
    - `observable`: `observable(x) -> scalar`.
    - `n_steps`, `n_burn`: trajectory length and discarded steps.
    - `dt`, `beta`: Langevin step and inverse temperature.

    **Returns:** the scalar time average.
    """
    if int(n_burn) != n_burn or int(n_steps) != n_steps or not 0 <= n_burn < n_steps:
        raise ConfigError(f"need integers 0 <= n_burn < n_steps, got {n_burn}, {n_steps}.")
    alg = langevin(beta, dt)
    model = model_fn(theta)
    state = alg.init(jnp.asarray(x0), model)

    def body(s, inp):
        k, t = inp
        s, _ = alg.step(k, s, model)
        return s, jnp.where(t >= n_burn, observable(s.x), 0.0)

    keys = jax.random.split(key, n_steps)
    _, obs = jax.lax.scan(body, state, (keys, jnp.arange(n_steps)))
    return jnp.sum(obs) / (n_steps - n_burn)


__all__ = ["fluctuation_surrogate", "langevin_pathwise"]
