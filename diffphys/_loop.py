"""The one scan driver behind `sampling.run` and `training.train`.

A step function `step(key, carry, t) -> (carry, info)` is applied for absolute step indices
t = start .. start + n_steps - 1 with key `fold_in(key, t)`, so a run split into segments (for
checkpoints) gives exactly the same result as one uninterrupted run. What is recorded and when
is chosen by the caller: `record(carry)` is evaluated after each step count in `record_at`,
together with the mean of `info` over the steps since the previous record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ConfigError


def log_times(n_steps: int, n_points: int, *, first: int = 1) -> np.ndarray:
    """About `n_points` distinct integer step counts, log-spaced from `first` to `n_steps`."""
    if n_steps < 1 or n_points < 1:
        raise ConfigError(f"need n_steps >= 1 and n_points >= 1, got {n_steps}, {n_points}.")
    t = np.unique(np.round(np.geomspace(max(first, 1), n_steps, n_points)).astype(np.int64))
    return t


def record_times(n_steps: int, every: int | None = None, record_at=None) -> np.ndarray:
    """Validated, sorted step counts at which to record (default: only at the end)."""
    if record_at is not None and every is not None:
        raise ConfigError("give either `every` or `record_at`, not both.")
    if record_at is None:
        every = n_steps if every is None else int(every)
        if every < 1:
            raise ConfigError(f"`every` must be >= 1, got {every}.")
        record_at = np.arange(every, n_steps + 1, every)
    record_at = np.asarray(record_at, dtype=np.int64)
    if record_at.ndim != 1 or record_at.size == 0:
        raise ConfigError("`record_at` must be a non-empty 1D sequence of step counts.")
    if np.any(np.diff(record_at) <= 0) or record_at[0] < 0 or record_at[-1] > n_steps:
        raise ConfigError(
            f"`record_at` must be strictly increasing step counts within [0, {n_steps}], "
            f"got {record_at}."
        )
    return record_at


def scan_steps(
    step: Callable[[Any, Any, Any], tuple[Any, Any]],
    carry,
    key,
    record_at: np.ndarray,
    record: Callable[[Any], Any] | None = None,
    *,
    start: int = 0,
    progress: bool = False,
):
    """Run `step` up to `record_at[-1]` steps, recording after each count in `record_at`.

    **Returns:** `(carry, (records, mean_info))` with a leading axis of length `len(record_at)`.
    """
    record = (lambda c: None) if record is None else record
    counts = jnp.asarray(record_at, dtype=jnp.int32)
    ends = counts + start
    begins = jnp.concatenate([jnp.asarray([start], jnp.int32), ends[:-1]])
    _, info_shape = jax.eval_shape(lambda c: step(key, c, jnp.int32(start)), carry)
    zero_info = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), info_shape)

    def segment(carry, bounds):
        lo, hi = bounds

        def body(t, state):
            c, acc = state
            c, info = step(jax.random.fold_in(key, t), c, t)
            acc = jax.tree.map(lambda a, i: a + jnp.asarray(i, jnp.float32), acc, info)
            return c, acc

        carry, acc = jax.lax.fori_loop(lo, hi, body, (carry, zero_info))
        n = jnp.maximum(hi - lo, 1).astype(jnp.float32)
        return carry, (record(carry), jax.tree.map(lambda a: a / n, acc))

    xs = (begins, ends)
    if progress:
        from jax_tqdm import scan_tqdm

        n = len(record_at)
        body = scan_tqdm(n, print_rate=max(1, n // 100))(lambda c, x: segment(c, x[1]))
        carry, out = jax.lax.scan(body, carry, (jnp.arange(n), xs))
    else:
        carry, out = jax.lax.scan(segment, carry, xs)
    return carry, out
