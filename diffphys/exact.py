"""Exact references for small systems: brute-force enumeration of every configuration.

Enumeration works for any `AbstractDiscreteModel` with at most `max_states` configurations
(2^20 Ising spins by default). It is chunked so memory stays bounded, and differentiable with
respect to the model's parameters and beta. The 2D Ising transfer matrix lives beside it
(`diffphys.exact.ising_transfer_log_z`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._errors import ConfigError
from ._types import Array, Float

MAX_STATES = 2**20


class Enumeration(NamedTuple):
    """Exact Boltzmann averages by enumeration (`enumerate_averages`)."""

    log_z: Float[Array, ""]
    """log of the partition function sum_x exp(-beta E(x))."""
    energy: Float[Array, ""]
    """Boltzmann average of the energy."""
    averages: dict
    """Boltzmann averages of the requested observables."""


def _check_size(model, max_states: int) -> int:
    n_states = model.q**model.n_sites
    if n_states > max_states:
        raise ConfigError(
            f"enumerating {model.q}^{model.n_sites} = {n_states} configurations exceeds "
            f"max_states={max_states}; use a smaller system (<= 20 Ising spins) or raise "
            f"max_states if you have the memory and time."
        )
    return n_states


def configurations(model, index: Array) -> Array:
    """Configuration number `index` (mixed radix q, site 0 least significant), batched."""
    index = jnp.asarray(index, jnp.int32)
    powers = model.q ** jnp.arange(model.n_sites, dtype=jnp.int32)
    digits = (index[..., None] // powers) % model.q
    return model.index_value(digits).reshape(*index.shape, *model.shape)


def all_configurations(model, *, max_states: int = MAX_STATES) -> Array:
    """Every configuration, shape `(q^N, *shape)`, in `configurations` order."""
    n = _check_size(model, max_states)
    return configurations(model, jnp.arange(n))


def energies(model, *, max_states: int = MAX_STATES, chunk: int = 2**14) -> Array:
    """Energy of every configuration, in `configurations` order."""
    n = _check_size(model, max_states)
    return jax.lax.map(
        lambda i: model.energy(configurations(model, i)), jnp.arange(n), batch_size=chunk
    )


def log_partition(model, beta, *, max_states: int = MAX_STATES) -> Float[Array, ""]:
    """log Z(beta) = log sum_x exp(-beta E(x)) by enumeration."""
    return jax.nn.logsumexp(-beta * energies(model, max_states=max_states))


def probabilities(model, beta, *, max_states: int = MAX_STATES) -> Array:
    """Boltzmann probability of every configuration, in `configurations` order."""
    return jax.nn.softmax(-beta * energies(model, max_states=max_states))


def enumerate_averages(
    model,
    beta,
    observables: dict[str, Callable[[Array], Array]] | None = None,
    *,
    max_states: int = MAX_STATES,
    chunk: int = 2**14,
) -> Enumeration:
    """Exact log Z, mean energy and Boltzmann averages `<f(x)>` of each observable f.

    **Arguments:**

    - `model`: a discrete model with at most `max_states` configurations.
    - `beta`: inverse temperature.
    - `observables`: `{name: f}` with `f(x)` a scalar or array for one configuration.

    **Returns:** an `Enumeration(log_z, energy, averages)`.
    """
    observables = {} if observables is None else dict(observables)
    n = _check_size(model, max_states)
    e = energies(model, max_states=max_states, chunk=chunk)
    log_z = jax.nn.logsumexp(-beta * e)
    p = jnp.exp(-beta * e - log_z)

    def weighted(i):
        x = configurations(model, i)
        return {k: f(x) for k, f in observables.items()}

    idx = jnp.arange(n)
    values = jax.lax.map(weighted, idx, batch_size=chunk) if observables else {}
    averages = {k: jnp.tensordot(p, jnp.asarray(v, p.dtype), axes=1) for k, v in values.items()}
    return Enumeration(log_z, jnp.dot(p, e), averages)


__all__ = [
    "MAX_ROW_SITES",
    "MAX_STATES",
    "Enumeration",
    "all_configurations",
    "configurations",
    "energies",
    "enumerate_averages",
    "ising_critical_coupling",
    "ising_transfer_hvp",
    "ising_transfer_log_partition",
    "ising_transfer_log_z",
    "log_partition",
    "probabilities",
]

from ._transfer import (  # noqa: E402 (the transfer matrix lives in its own module)
    MAX_ROW_SITES,
    ising_critical_coupling,
    ising_transfer_hvp,
    ising_transfer_log_partition,
    ising_transfer_log_z,
)
