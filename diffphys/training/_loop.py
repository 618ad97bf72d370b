"""The generic optax training loop: `lax.scan` over updates, `vmap` over seeds/hyperparameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._loop import record_times, scan_steps


class TrainState(NamedTuple):
    """Everything the next update needs: parameters, optimiser state and the estimator's own
    state (persistent chains for PCD, `None` for a plain loss)."""

    params: Any
    opt_state: Any
    aux: Any


def from_loss(loss: Callable[..., Any], data=None, batch_size: int | None = None):
    """Turn `loss(params, batch, key) -> scalar` into a gradient estimator for `train`.

    With `data` (a pytree of arrays with a leading sample axis) and `batch_size`, every step
    draws a minibatch uniformly with replacement; otherwise `batch` is `data` itself.

    **Returns:** `grad_fn(key, params, aux, t) -> (grads, aux, metrics)` with the loss in metrics.
    """

    def grad_fn(key, params, aux, t):
        k_batch, k_loss = jax.random.split(key)
        batch = data
        if data is not None and batch_size is not None:
            n = jax.tree.leaves(data)[0].shape[0]
            idx = jax.random.randint(k_batch, (batch_size,), 0, n)
            batch = jax.tree.map(lambda a: a[idx], data)
        value, grads = jax.value_and_grad(loss)(params, batch, k_loss)
        return grads, aux, {"loss": value}

    return grad_fn


def train(
    key,
    params,
    grad_fn: Callable[..., tuple[Any, Any, dict]],
    optimizer: optax.GradientTransformation,
    n_steps: int,
    *,
    aux=None,
    state: TrainState | None = None,
    start: int = 0,
    every: int | None = None,
    record_at=None,
    record: Callable[[TrainState], Any] | None = None,
    progress: bool = False,
):
    """Train `params` for `n_steps` optax updates inside one `lax.scan`.

    **Arguments:**

    - `key`: PRNG key; update t uses `fold_in(key, start + t)`, so training resumed from a
      checkpoint at step `start` reproduces an uninterrupted run exactly.
    - `params`: any pytree of parameters (an equinox/flax module's arrays, a model).
    - `grad_fn`: `grad_fn(key, params, aux, t) -> (grads, aux, metrics)`; see `from_loss` for a
      plain loss and `diffphys.training` for contrastive-divergence estimators.
    - `optimizer`: an optax `GradientTransformation`.
    - `aux`: initial estimator state (e.g. persistent chains).
    - `state`: resume from this `TrainState` instead of initialising from `params`.
    - `every` / `record_at`: when to record (see `diffphys.log_times`).
    - `record`: `record(TrainState) -> pytree` (e.g. a log-likelihood); metrics from `grad_fn`
      are averaged between records automatically.

    **Returns:** `(state, trace)`, trace = `{"time", "record", "metrics"}`.

    `vmap` it over seeds and hyperparameters: `jax.vmap(lambda k, lr: train(k, p,
    g, optax.sgd(lr), n))` (hyperparameters enter through the optimiser's arguments, e.g.
    `optax.inject_hyperparams`).
    """
    times = record_times(n_steps, every, record_at)
    if state is None:
        state = TrainState(params, optimizer.init(params), aux)

    # A pytree step (not a closure): segments of a checkpointed run with the same grad_fn,
    # optimizer and record reuse one compilation whatever their start and record times.
    step = jax.tree_util.Partial(_train_step, grad_fn, optimizer)
    state, (records, metrics) = scan_steps(
        step, state, key, times, record, start=start, progress=progress, n_steps=n_steps
    )
    return state, {"time": jnp.asarray(times) + start, "record": records, "metrics": metrics}


def _train_step(grad_fn, optimizer, k, s: TrainState, t):
    grads, new_aux, metrics = grad_fn(k, s.params, s.aux, t)
    updates, opt_state = optimizer.update(grads, s.opt_state, s.params)
    params = optax.apply_updates(s.params, updates)
    return TrainState(params, opt_state, new_aux), metrics
