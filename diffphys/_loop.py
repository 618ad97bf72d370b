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

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ConfigError
from ._types import IntScalar


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


def _bucket(n: int) -> int:
    """The padded number of recording segments: the next power of two."""
    return 1 << max(n - 1, 0).bit_length()


def scan_steps(
    step: Callable[[Any, Any, Any], tuple[Any, Any]],
    carry,
    key,
    record_at: np.ndarray,
    record: Callable[[Any], Any] | None = None,
    *,
    start: IntScalar = 0,
    progress: bool = False,
    n_steps: int | None = None,
):
    """Run `step` for `n_steps` steps (default `record_at[-1]`), recording after each count in
    `record_at`.

    The loop is compiled once per `step` and `record` object, carry structure and padded
    number of records, not per value of `start` or `record_at`: segment bounds are runtime
    arrays (each segment is a `fori_loop` with a dynamic trip count), and the list of segments
    is padded to the next power of two with unrecorded ones (the steps after the last record
    time, then empty ones), whose records are skipped by a `lax.cond` and dropped. A run cut
    into checkpoint segments of different lengths, each with its own log-spaced record times,
    therefore compiles once per distinct power of two, at most log2(records + 1) + 1 times.
    To benefit, pass the same `step`/`record` objects each call: array leaves of a pytree
    `step` (e.g. a `jax.tree_util.Partial` holding a model) are runtime arguments, its other
    leaves are hashed.

    **Returns:** `(carry, (records, mean_info))` with a leading axis of length `len(record_at)`.
    """
    record_at = np.asarray(record_at, dtype=np.int64)
    n = len(record_at)
    stop = int(record_at[-1]) if n_steps is None else max(int(n_steps), int(record_at[-1]))
    n_pad = _bucket(n + int(stop > record_at[-1]))  # + an unrecorded tail segment up to `stop`
    offsets = np.full(n_pad, stop, np.int64)
    offsets[:n] = record_at
    start = jnp.asarray(start, jnp.int32)  # may be traced (a caller's jit with dynamic start)
    ends = start + jnp.asarray(offsets, jnp.int32)
    begins = jnp.concatenate([start[None], ends[:-1]])
    valid = jnp.asarray(np.arange(n_pad) < n)
    record = _no_record if record is None else record
    carry, out = _segments(step, record, progress, carry, key, begins, ends, valid)
    return carry, jax.tree.map(lambda a: a[:n], out)


def _no_record(carry):
    return None


@eqx.filter_jit
def _segments(step, record, progress: bool, carry, key, begins, ends, valid):
    _, info_shape = jax.eval_shape(lambda c: step(key, c, begins[0]), carry)
    zero_info = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), info_shape)
    record_shape = jax.eval_shape(record, carry)

    def segment(carry, xs):
        lo, hi, ok = xs

        def body(t, state):
            c, acc = state
            c, info = step(jax.random.fold_in(key, t), c, t)
            acc = jax.tree.map(lambda a, i: a + jnp.asarray(i, jnp.float32), acc, info)
            return c, acc

        carry, acc = jax.lax.fori_loop(lo, hi, body, (carry, zero_info))
        n = jnp.maximum(hi - lo, 1).astype(jnp.float32)
        rec = jax.lax.cond(  # padding segments (ok = False) skip a possibly costly record
            ok,
            record,
            lambda c: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), record_shape),
            carry,
        )
        return carry, (rec, jax.tree.map(lambda a: a / n, acc))

    xs = (begins, ends, valid)
    if progress:
        from jax_tqdm import scan_tqdm

        n = begins.shape[0]
        body = scan_tqdm(n, print_rate=max(1, n // 100))(lambda c, x: segment(c, x[1]))
        return jax.lax.scan(body, carry, (jnp.arange(n), xs))
    return jax.lax.scan(segment, carry, xs)


def sweep_sites(key, n: int, order: str):
    """Site visiting order of one sweep: `"random"` (n uniform draws) or `"sequential"`."""
    if order == "random":
        return jax.random.randint(key, (n,), 0, n)
    if order == "sequential":
        return jnp.arange(n)
    raise ValueError(f"order must be 'random' or 'sequential', got {order!r}.")
