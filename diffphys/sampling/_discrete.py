"""Single-site and checkerboard kernels for discrete models.

They ask the model only for `site_energies(x, i)` (single site) or `local_energies(x)` and
`colouring()` (checkerboard), so the same kernels serve Ising, Potts, spin glasses and any
user model that implements those methods.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._errors import check_positive
from .._types import Array, Float, RealScalar, Spins
from ._base import SamplingAlgorithm, sweep_sites


class DiscreteState(NamedTuple):
    """What the next step needs: the configuration and its energy."""

    x: Spins
    energy: Float[Array, ""]


class DiscreteInfo(NamedTuple):
    """Diagnostics of one step (one sweep)."""

    acceptance_rate: Float[Array, ""]
    energy: Float[Array, ""]


def _init(x, model) -> DiscreteState:
    model.check_state(x)
    x = jnp.asarray(x, dtype=model.dtype)
    return DiscreteState(x, model.energy(x))


def _propose(key, old_idx, q: int):
    """A uniformly chosen value index different from `old_idx`."""
    if q == 2:
        return 1 - old_idx
    return (old_idx + jax.random.randint(key, jnp.shape(old_idx), 1, q)) % q


def _heat_bath_choice(u, energies, beta):
    """Index drawn from softmax(-beta * energies) by inverting the CDF at u in [0, 1)."""
    logits = -beta * (energies - jnp.min(energies, axis=-1, keepdims=True))
    w = jnp.exp(logits)
    cdf = jnp.cumsum(w, axis=-1)
    target = u[..., None] * cdf[..., -1:]
    return jnp.sum(cdf <= target, axis=-1).clip(max=energies.shape[-1] - 1)


def _single_site(rule: str, beta: RealScalar, order: str) -> SamplingAlgorithm:
    check_positive("beta", beta)

    def step(key, state: DiscreteState, model, beta=beta):
        n, q = model.n_sites, model.q
        k_site, k_prop, k_u = jax.random.split(key, 3)
        sites = sweep_sites(k_site, n, order)
        u = jax.random.uniform(k_u, (n,), dtype=state.energy.dtype)
        prop_keys = jax.random.split(k_prop, n) if (rule == "metropolis" and q > 2) else None

        def update(t, carry):
            x, energy, accepted = carry
            i = sites[t]
            flat = x.reshape(-1)
            e = model.site_energies(x, i)
            old = model.value_index(flat[i])
            if rule == "metropolis":
                new = _propose(None if prop_keys is None else prop_keys[t], old, q)
                de = e[new] - e[old]
                acc = u[t] < jnp.exp(-beta * de)
                new = jnp.where(acc, new, old)
            else:
                new = _heat_bath_choice(u[t], e, beta)
            de = e[new] - e[old]
            x = flat.at[i].set(model.index_value(new)).reshape(x.shape)
            return x, energy + de, accepted + (new != old).astype(jnp.int32)

        x, energy, accepted = jax.lax.fori_loop(0, n, update, (state.x, state.energy, jnp.int32(0)))
        info = DiscreteInfo(accepted / n, energy)
        return DiscreteState(x, energy), info

    return SamplingAlgorithm(_init, step)


def metropolis(beta: RealScalar = 1.0, *, order: str = "random") -> SamplingAlgorithm:
    """Single-site Metropolis: one step is one sweep of N attempted moves.

    A move proposes a uniformly chosen different value at a site (a spin flip for Ising) and
    accepts it with probability min(1, exp(-beta ΔE)) (Metropolis et al. 1953).

    **Arguments:**

    - `beta`: default inverse temperature; `step(..., beta=b)` overrides it per step.
    - `order`: `"random"` (N uniformly drawn sites) or `"sequential"` (sites 0..N-1).
    """
    return _single_site("metropolis", beta, order)


def heat_bath(beta: RealScalar = 1.0, *, order: str = "random") -> SamplingAlgorithm:
    """Single-site heat-bath (Gibbs): each visited site is redrawn from its conditional law.

    P(x_i = v | rest) ∝ exp(-beta E_i(v)). One step is one sweep of N site updates.
    """
    return _single_site("heat_bath", beta, order)


def checkerboard(beta: RealScalar = 1.0, *, rule: str = "metropolis") -> SamplingAlgorithm:
    """Two-colour (checkerboard) update of a lattice model: all sites of one colour at once.

    Sites of one colour do not interact, so updating them simultaneously is an exact Gibbs /
    Metropolis sweep. One step updates colour 0 then colour 1. Needs an even linear size.

    **Arguments:**

    - `beta`: default inverse temperature (overridable per step).
    - `rule`: `"metropolis"` or `"heat_bath"`.
    """
    if rule not in ("metropolis", "heat_bath"):
        raise ValueError(f"rule must be 'metropolis' or 'heat_bath', got {rule!r}.")
    check_positive("beta", beta)

    def init(x, model) -> DiscreteState:
        model.colouring()  # eager check of the lattice
        return _init(x, model)

    def step(key, state: DiscreteState, model, beta=beta):
        colours = jnp.asarray(model.colouring())
        q = model.q
        x = state.x
        accepted = jnp.int32(0)
        for c, kc in enumerate(jax.random.split(key, model.n_colours)):
            k_prop, k_u = jax.random.split(kc)
            e = model.local_energies(x)
            old = model.value_index(x)
            u = jax.random.uniform(k_u, x.shape, dtype=e.dtype)
            if rule == "metropolis":
                new = _propose(k_prop, old, q)
                de = (
                    jnp.take_along_axis(e, new[..., None], -1)[..., 0]
                    - jnp.take_along_axis(e, old[..., None], -1)[..., 0]
                )
                move = (colours == c) & (u < jnp.exp(-beta * de))
            else:
                new = _heat_bath_choice(u, e, beta)
                move = (colours == c) & (new != old)
            x = jnp.where(move, model.index_value(new), x)
            accepted = accepted + jnp.sum(move)
        energy = model.energy(x)
        return DiscreteState(x, energy), DiscreteInfo(accepted / model.n_sites, energy)

    return SamplingAlgorithm(init, step)
