"""Dynamics of the associative memories with incrementally updated overlaps: zero-temperature
asynchronous / synchronous descent, `retrieve`, and Metropolis / heat-bath chains, O(P) per
flip."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._errors import ConfigError, check_positive
from .._types import Array, Float, Key, RealScalar, Spins
from ..sampling import SamplingAlgorithm, sweep_sites
from ._hopfield import AbstractAssociativeMemory

# -- dynamics with incremental overlaps ----------------------------------------------------


class MemoryState(NamedTuple):
    """What the next step needs: spins, their overlaps with every pattern, the energy."""

    x: Spins
    m: Float[Array, " P"]
    energy: Float[Array, ""]


class MemoryInfo(NamedTuple):
    """Diagnostics of one sweep."""

    flip_rate: Float[Array, ""]
    energy: Float[Array, ""]


def _check_memory(model) -> None:
    if not isinstance(model, AbstractAssociativeMemory):
        raise ConfigError(
            f"these kernels need an AbstractAssociativeMemory (overlap form), got "
            f"{type(model).__name__}; use diffphys.sampling.metropolis for other models."
        )


def _init(x, model) -> MemoryState:
    _check_memory(model)
    model.check_state(x)
    x = jnp.asarray(x, dtype=model.dtype)
    m = model.overlaps(x)
    return MemoryState(x, m, model.energy_from_overlaps(m))


def _flip(state: MemoryState, model, i, flip, de, col):
    s_i = state.x[i].astype(state.m.dtype)
    m = state.m + jnp.where(flip, -2.0 * s_i / model.n, 0.0) * col
    x = state.x.at[i].set(jnp.where(flip, -state.x[i], state.x[i]))
    return MemoryState(x, m, state.energy + jnp.where(flip, de, jnp.zeros_like(de)))


TRANSPOSE_MAX_ENTRIES = 2**25
"""Up to this many pattern entries, sweeps read columns from a transposed copy."""


def _column_reader(patterns):
    # A transposed copy per sweep makes every site read a contiguous row instead of a strided
    # column, several times faster; above TRANSPOSE_MAX_ENTRIES the copy would double the
    # memory, so the strided column is read in place.
    if patterns.size <= TRANSPOSE_MAX_ENTRIES:
        cols = patterns.T
        return lambda i: cols[i]
    return lambda i: jax.lax.dynamic_index_in_dim(patterns, i, axis=1, keepdims=False)


def zero_temperature(*, mode: str = "async") -> SamplingAlgorithm:
    r"""Zero-temperature dynamics $\sigma_i \leftarrow \mathrm{sgn}$ of its local field.

    A spin flips when the flip lowers the energy (ties keep the spin). Decisions use
    `scaled_flip_delta`, so exponential memories never overflow.

    - `mode="async"`: one step visits every site once in a random order (a permutation drawn
      from the step key) and updates it given the current state, O(P) per site with the
      overlaps updated incrementally. The energy never increases.
    - `mode="sync"`: one step flips every site whose flip lowers the energy, all at once (Little
      dynamics): two matrix-vector products, O(N P). It may reach 2-cycles.

    **Returns:** a `SamplingAlgorithm`; `init(x, model)` builds a `MemoryState`, `step(key,
    state, model)` returns `(state, MemoryInfo)` with the fraction of flipped spins.
    """
    if mode not in ("async", "sync"):
        raise ConfigError(f"mode must be 'async' or 'sync', got {mode!r}.")

    def step(key, state: MemoryState, model):
        n = model.n
        if mode == "sync":
            d = model.scaled_flip_deltas(state.x, state.m)
            flip = d < 0
            x = jnp.where(flip, -state.x, state.x)
            m = model.overlaps(x)
            new = MemoryState(x, m, model.energy_from_overlaps(m))
            return new, MemoryInfo(jnp.mean(flip.astype(m.dtype)), new.energy)
        order = jax.random.permutation(key, n)
        column = _column_reader(model.patterns)

        def body(t, carry):
            st, count = carry
            i = order[t]
            col = column(i)
            s_i = st.x[i].astype(st.m.dtype)
            flip = model.scaled_flip_delta(st.m, col, s_i) < 0
            st = _flip(st, model, i, flip, jnp.zeros_like(st.energy), col)
            return st, count + flip.astype(jnp.int32)

        st, count = jax.lax.fori_loop(0, n, body, (state, jnp.int32(0)))
        # exact overlaps once per sweep (O(N P), like the sweep): no float drift accumulates
        m = model.overlaps(st.x)
        energy = model.energy_from_overlaps(m)
        st = MemoryState(st.x, m, energy)
        return st, MemoryInfo(count.astype(energy.dtype) / n, energy)

    return SamplingAlgorithm(_init, step)


def retrieve(
    model, x0, *, key: Key, max_sweeps: int = 100, mode: str = "async", fixed_trip: bool = False
):
    """Run zero-temperature dynamics from `x0` until no spin flips (or `max_sweeps`).

    **Arguments:**

    - `model`: an `AbstractAssociativeMemory`.
    - `x0`: initial ±1 state `(N,)` (e.g. a corrupted pattern, see `corrupt`).
    - `key`: PRNG key for the asynchronous visiting orders.
    - `max_sweeps`: upper bound on the number of sweeps.
    - `mode`: `"async"` or `"sync"` (see `zero_temperature`).
    - `fixed_trip`: `False` stops at the fixed point (a `lax.while_loop`: on a GPU one
      device-to-host synchronisation per sweep); `True` runs a loop of exactly `max_sweeps`
      iterations (static trip count) whose sweeps after the fixed point are skipped by a
      `lax.cond`, with the same result (a sweep that flips nothing leaves the state fixed).

    **Returns:** `(x, m, n_sweeps)`: the final state, its overlaps with every pattern and the
    number of sweeps run (the last one flipped nothing unless `max_sweeps` was reached).
    """
    alg = zero_temperature(mode=mode)
    state = alg.init(x0, model)

    def cond(c):
        _, t, moved = c
        return moved & (t < max_sweeps)

    def body(c):
        st, t, _ = c
        st, info = alg.step(jax.random.fold_in(key, t), st, model)
        return st, t + 1, info.flip_rate > 0

    carry = (state, jnp.int32(0), jnp.bool_(True))
    if fixed_trip:
        state, t, _ = jax.lax.fori_loop(
            0, int(max_sweeps), lambda _, c: jax.lax.cond(cond(c), body, lambda c: c, c), carry
        )
    else:
        state, t, _ = jax.lax.while_loop(cond, body, carry)
    return state.x, state.m, t


def _mc(rule: str, beta) -> SamplingAlgorithm:
    check_positive("beta", beta)

    def step(key, state: MemoryState, model, beta=beta):
        n = model.n
        k_site, k_u = jax.random.split(key)
        sites = sweep_sites(k_site, n, "random")
        u = jax.random.uniform(k_u, (n,), dtype=state.m.dtype)
        column = _column_reader(model.patterns)

        def body(t, carry):
            st, count = carry
            i = sites[t]
            col = column(i)
            s_i = st.x[i].astype(st.m.dtype)
            de = model.flip_delta(st.m, col, s_i)
            if rule == "metropolis":
                flip = u[t] < jnp.exp(-beta * de)
            else:
                flip = u[t] < jax.nn.sigmoid(-beta * de)
            st = _flip(st, model, i, flip, de, col)
            return st, count + flip.astype(jnp.int32)

        st, count = jax.lax.fori_loop(0, n, body, (state, jnp.int32(0)))
        m = model.overlaps(st.x)
        st = MemoryState(st.x, m, model.energy_from_overlaps(m))
        return st, MemoryInfo(count.astype(m.dtype) / n, st.energy)

    return SamplingAlgorithm(_init, step)


def overlap_metropolis(beta: RealScalar = 1.0) -> SamplingAlgorithm:
    """Single-spin Metropolis for associative memories with O(P) incremental overlaps.

    One step is a sweep of N attempted flips at uniformly drawn sites; a flip is accepted with
    probability min(1, exp(-beta ΔE)), ΔE from `model.flip_delta`. Same stationary law as
    `diffphys.sampling.metropolis`, O(P) instead of O(N P) per attempt. `beta` may be
    overridden per step.
    """
    return _mc("metropolis", beta)


def overlap_heat_bath(beta: RealScalar = 1.0) -> SamplingAlgorithm:
    """Single-spin heat bath (Glauber) with O(P) incremental overlaps: P(flip) = 1/(1+e^{βΔE})."""
    return _mc("heat_bath", beta)
