"""Overdamped Langevin dynamics, optionally on the sphere |x|^2 = N."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._errors import check_positive
from .._types import Array, Float
from ._base import SamplingAlgorithm


class LangevinState(NamedTuple):
    x: Float[Array, "..."]
    energy: Float[Array, ""]


class LangevinInfo(NamedTuple):
    energy: Float[Array, ""]
    grad_norm: Float[Array, ""]


def _project(x):
    n = x.size
    return x * jnp.sqrt(n / jnp.sum(x**2))


def langevin(beta: float = 1.0, dt: float = 1e-2, *, spherical: bool = False) -> SamplingAlgorithm:
    r"""Euler–Maruyama step of overdamped Langevin dynamics.

    $$x_{t+dt} = x_t - dt\, \nabla E(x_t) + \sqrt{2\, dt / \beta}\; \xi_t,\qquad \xi_t \sim N(0, 1).$$

    With `spherical=True` the state is projected back onto the sphere $|x|^2 = N$ after each
    step (the projection form of the Lagrange-multiplier dynamics of spherical spin glasses).
    The gradient is `model.grad_energy(x)` when the model provides it, else `jax.grad`.

    **Arguments:**

    - `beta`, `dt`: inverse temperature and time step, both overridable per step.
    - `spherical`: enforce the spherical constraint.
    """
    check_positive("beta", beta)
    check_positive("dt", dt)

    def grad(model, x):
        if hasattr(model, "grad_energy"):
            return model.grad_energy(x)
        return jax.grad(model.energy)(x)

    def init(x, model) -> LangevinState:
        x = jnp.asarray(x)
        if spherical:
            x = _project(x)
        return LangevinState(x, model.energy(x))

    def step(key, state: LangevinState, model, beta=beta, dt=dt):
        g = grad(model, state.x)
        noise = jax.random.normal(key, state.x.shape, state.x.dtype)
        x = state.x - dt * g + jnp.sqrt(2.0 * dt / beta) * noise
        if spherical:
            x = _project(x)
        energy = model.energy(x)
        return LangevinState(x, energy), LangevinInfo(energy, jnp.linalg.norm(g))

    return SamplingAlgorithm(init, step)
