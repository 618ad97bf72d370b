"""The sampler interface and the chain driver `run`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._errors import check_positive
from .._loop import record_times, scan_steps, sweep_sites  # noqa: F401 (re-export)
from .._types import IntScalar

_POSITIVE = ("beta", "betas", "dt", "T")


class SamplingAlgorithm(NamedTuple):
    """A sampler as a pair of pure functions (the BlackJAX shape).

    - `init(x, model) -> state`
    - `step(key, state, model, **overrides) -> (state, info)`; overrides such as `beta` may
      change every step (annealing, tempering) without recompiling.
    """

    init: Callable[..., Any]
    step: Callable[..., tuple[Any, Any]]


def run(
    key,
    algorithm: SamplingAlgorithm,
    state,
    model,
    n_steps: int,
    *,
    record: Callable[[Any], Any] | None = None,
    every: int | None = None,
    record_at=None,
    schedule: dict[str, Any] | None = None,
    start: IntScalar = 0,
    progress: bool = False,
    **overrides,
):
    """Run a chain of `n_steps` steps inside `lax.scan`.

    **Arguments:**

    - `key`: PRNG key; step t uses `fold_in(key, start + t)`, so a chain split into pieces
      (`start=`) reproduces an uninterrupted one exactly.
    - `algorithm`, `state`, `model`: the sampler, its state (from `algorithm.init`) and the model.
    - `record`: `record(state) -> pytree` evaluated at the recording times (default: nothing).
    - `every` / `record_at`: record every k steps, or after the given step counts (e.g.
      `diffphys.log_times(n_steps, 50)`); default: once at the end.
    - `schedule`: per-step overrides, e.g. `{"beta": betas}` with `betas.shape == (n_steps,)`
      for annealing.
    - `progress`: a `jax_tqdm` progress bar (off in library calls).
    - `**overrides`: constant overrides passed to every `algorithm.step`, e.g. `beta=0.44`.

    **Returns:** `(state, trace)` where `trace` is a dict with `"time"` (the record times),
    `"record"` (stacked records) and `"info"` (step info averaged between records).
    """
    times = record_times(n_steps, every, record_at)
    schedule = {} if schedule is None else {k: jnp.asarray(v) for k, v in schedule.items()}
    for name, value in {**overrides, **schedule}.items():
        if name in _POSITIVE:
            check_positive(name, value)
    for name, values in schedule.items():
        if values.shape[:1] != (n_steps,):
            raise ValueError(
                f"schedule[{name!r}] must have leading length n_steps={n_steps}, got "
                f"{values.shape}."
            )

    # A pytree step (not a closure): the model and schedules are runtime arguments of the
    # compiled loop, so repeated calls (checkpoint segments) reuse one compilation.
    step = jax.tree_util.Partial(
        _schedule_step, algorithm, model, overrides, schedule, jnp.asarray(start, jnp.int32)
    )
    state, (records, info) = scan_steps(
        step, state, key, times, record, start=start, progress=progress, n_steps=n_steps
    )
    return state, {"time": jnp.asarray(times) + start, "record": records, "info": info}


def _schedule_step(algorithm, model, overrides, schedule, start, k, s, t):
    sched = {name: v[t - start] for name, v in schedule.items()}
    return algorithm.step(k, s, model, **overrides, **sched)


def replicas(algorithm: SamplingAlgorithm, n: int) -> SamplingAlgorithm:
    """`n` independent copies of a sampler on one model, stepped together (replica overlaps).

    `init(xs, model)` takes configurations with a leading replica axis of length `n`; each
    copy gets its own key at every step. Overrides (e.g. `beta`) apply to all copies.
    """

    def init(xs, model):
        return jax.vmap(algorithm.init, in_axes=(0, None))(xs, model)

    def step(key, state, model, **overrides):
        keys = jax.random.split(key, n)
        return jax.vmap(lambda k, s: algorithm.step(k, s, model, **overrides))(keys, state)

    return SamplingAlgorithm(init, step)
