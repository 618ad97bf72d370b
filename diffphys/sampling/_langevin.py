"""Overdamped Langevin dynamics, optionally on the sphere |x|^2 = N."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._errors import check_positive
from .._types import Array, Float
from ._base import SamplingAlgorithm


class LangevinState(NamedTuple):
    """`x`, and the energy and its gradient at `x` (computed together by the step that produced
    `x`, for the model that step was given; call `init` again if the model changes)."""

    x: Float[Array, "..."]
    energy: Float[Array, ""]
    grad: Float[Array, "..."]


class LangevinInfo(NamedTuple):
    """Diagnostics of one Langevin step: the energy and the gradient norm after it."""

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

    One step evaluates the model once: `jax.value_and_grad` at the new point gives the energy
    reported in `info` and the gradient the next step moves along, both kept in the state.
    The trajectory is bit-identical to computing the gradient at the start of a step and the
    new energy at its end, which cost 1.5x more per step (median of 7 side-by-side runs, range
    1.1-1.9x, on a 2-core CPU shared with other jobs; spherical dynamics of
    E = -x.Jx/2, N = 1024, 2000 steps).

    **Arguments:**

    - `beta`, `dt`: inverse temperature and time step, both overridable per step.
    - `spherical`: enforce the spherical constraint.

    **Returns:** a `SamplingAlgorithm`; the state is a `LangevinState(x, energy, grad)` and the
    step info a `LangevinInfo(energy, grad_norm)` (energy at the new point, norm of the gradient
    the step used).
    """
    check_positive("beta", beta)
    check_positive("dt", dt)

    def value_and_grad(model, x):
        if hasattr(model, "grad_energy"):
            return model.energy(x), model.grad_energy(x)
        return jax.value_and_grad(model.energy)(x)

    def init(x, model) -> LangevinState:
        x = jnp.asarray(x)
        if spherical:
            x = _project(x)
        return LangevinState(x, *value_and_grad(model, x))

    def step(key, state: LangevinState, model, beta=beta, dt=dt):
        g = state.grad
        noise = jax.random.normal(key, state.x.shape, state.x.dtype)
        x = state.x - dt * g + jnp.sqrt(2.0 * dt / beta) * noise
        if spherical:
            x = _project(x)
        energy, grad = value_and_grad(model, x)
        return LangevinState(x, energy, grad), LangevinInfo(energy, jnp.linalg.norm(g))

    return SamplingAlgorithm(init, step)
