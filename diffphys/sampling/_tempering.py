"""Parallel tempering (replica exchange) over a ladder of inverse temperatures."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._errors import ConfigError, check_positive
from .._types import Array, Float, Int
from ._base import SamplingAlgorithm


class TemperingState(NamedTuple):
    """`states` holds one base-sampler state per temperature (leading axis R, ordered as
    `betas`); `walker[k]` is the label of the replica currently at `betas[k]` (for round trips)."""

    states: Any
    betas: Float[Array, " R"]
    walker: Int[Array, " R"]
    parity: Int[Array, ""]


class TemperingInfo(NamedTuple):
    """Diagnostics of one tempering step: the base samplers' infos (leading axis R) and the
    proposed and accepted swaps of each neighbouring pair."""

    base: Any
    swap_accepted: Float[Array, " R-1"]
    """1 where the pair (k, k+1) swapped this step, else 0."""
    swap_tried: Float[Array, " R-1"]
    """1 where a swap of the pair (k, k+1) was proposed this step, else 0."""


def parallel_tempering(base: SamplingAlgorithm, betas) -> SamplingAlgorithm:
    """Replica exchange (Swendsen–Wang 1986, Hukushima–Nemoto 1996) around any base sampler.

    Each step runs `base.step` on every replica at its own beta (vmapped), then proposes swaps
    of neighbouring temperatures, alternating even and odd pairs (the deterministic even-odd
    scheme), accepted with probability min(1, exp((β_{k+1} - β_k)(E_{k+1} - E_k))). Base states
    must carry an `energy` field. Mean swap rates per pair are in `info.swap_accepted`
    (`swap_rates(info)` turns the recorded infos into rates).

    **Arguments:**

    - `base`: the sampler run at every temperature.
    - `betas`: the ladder, shape (R,), R >= 2; `step(..., betas=...)` may override it.
    """
    betas = jnp.asarray(betas)
    if betas.ndim != 1 or betas.shape[0] < 2:
        raise ConfigError(f"betas must be a 1D ladder of at least 2 values, got {betas.shape}.")
    check_positive("every beta", betas)  # skipped for traced ladders
    R = betas.shape[0]

    def init(xs, model) -> TemperingState:
        lead = {jnp.shape(leaf)[0] for leaf in jax.tree.leaves(xs)}
        if lead != {R}:
            raise ConfigError(
                f"parallel_tempering needs one configuration per temperature: leading axis {R}, "
                f"got {lead}."
            )
        states = jax.vmap(base.init, in_axes=(0, None))(xs, model)
        return TemperingState(states, betas, jnp.arange(R), jnp.int32(0))

    def step(key, state: TemperingState, model, betas=None):
        betas = state.betas if betas is None else jnp.asarray(betas)
        k_base, k_swap = jax.random.split(key)
        keys = jax.random.split(k_base, R)
        states, info = jax.vmap(lambda k, s, b: base.step(k, s, model, beta=b))(
            keys, state.states, betas
        )
        energy = states.energy
        k = jnp.arange(R - 1)
        tried = (k % 2) == state.parity
        log_ratio = (betas[1:] - betas[:-1]) * (energy[1:] - energy[:-1])
        u = jax.random.uniform(k_swap, (R - 1,), dtype=log_ratio.dtype)
        swap = tried & (jnp.log(u) < log_ratio)
        # permutation: position k takes from k+1 and k+1 from k where swap[k]
        up = jnp.concatenate([swap, jnp.zeros(1, bool)])
        down = jnp.concatenate([jnp.zeros(1, bool), swap])
        pos = jnp.arange(R)
        src = jnp.where(up, pos + 1, jnp.where(down, pos - 1, pos))
        states = jax.tree.map(lambda a: a[src], states)
        new = TemperingState(states, betas, state.walker[src], 1 - state.parity)
        dt = log_ratio.dtype
        return new, TemperingInfo(info, swap.astype(dt), tried.astype(dt))

    return SamplingAlgorithm(init, step)


def swap_rates(info: TemperingInfo) -> Array:
    """Swap acceptance rate of each neighbouring pair, from (stacked or averaged) infos:
    accepted / proposed, summed over every leading axis."""
    axes = tuple(range(info.swap_accepted.ndim - 1))
    return jnp.sum(info.swap_accepted, axis=axes) / jnp.sum(info.swap_tried, axis=axes)
