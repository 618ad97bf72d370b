r"""Contrastive-divergence gradient estimators (CD-k, PCD-k) for energy-based models.

For a model with free energy $F_\theta(v)$ and $p_\theta(v) = e^{-F_\theta(v)}/Z_\theta$, the
gradient of the negative mean log-likelihood of the data is

$$-\nabla_\theta \mathcal L = \langle \nabla_\theta F_\theta \rangle_{\rm data}
                              - \langle \nabla_\theta F_\theta \rangle_{p_\theta}.$$

The model average is estimated with Markov chains: restarted at the minibatch and run for k
steps (CD-k, Hinton 2002) or persistent across updates (PCD-k, Tieleman 2008). The estimator is
`jax.grad` of $\overline{F(v_{\rm data})} - \overline{F(v_{\rm chains})}$ with the chains held
fixed, so it serves every visible type and any model exposing `free_energy(v)`.

These plug into `diffphys.training.train` as its `grad_fn`; the persistent chains are the
loop's `aux` state, so checkpoints and `start=` resume them exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._errors import ConfigError, ShapeError
from ..models import block_gibbs


def _check(data, batch_size, k):
    data = jnp.asarray(data)
    if data.ndim != 2:
        raise ShapeError(f"data must have shape (n_samples, n_visible), got {data.shape}.")
    if batch_size < 1 or k < 1:
        raise ConfigError(f"need batch_size >= 1 and k >= 1, got {batch_size}, {k}.")
    return data


def _minibatch(key, data, batch_size):
    idx = jax.random.randint(key, (batch_size,), 0, data.shape[0])
    return data[idx]


def _contrast(params, v_data, v_model):
    """Mean F(data) - mean F(model samples): its gradient is -grad of the log-likelihood."""
    v_model = jax.lax.stop_gradient(v_model)
    f_data = jnp.mean(jax.vmap(params.free_energy)(v_data))
    f_model = jnp.mean(jax.vmap(params.free_energy)(v_model))
    return f_data - f_model


def _run_chains(key, sampler, states, model, k, beta):
    n = jax.tree.leaves(states)[0].shape[0]

    def body(i, s):
        keys = jax.random.split(jax.random.fold_in(key, i), n)
        s, _ = jax.vmap(lambda kk, ss: sampler.step(kk, ss, model, beta=beta))(keys, s)
        return s

    return jax.lax.fori_loop(0, k, body, states)


def init_chains(key, model, n_chains: int, data=None):
    """Initial persistent chains for `pcd`: `n_chains` rows drawn from `data` if given, else from
    the model's independent-site visible distribution (hidden input zero)."""
    alg = block_gibbs()
    if data is not None:
        data = jnp.asarray(data)
        v0 = data[jax.random.randint(key, (n_chains,), 0, data.shape[0])]
    else:
        h0 = jnp.zeros((n_chains, model.n_hidden), model.W.dtype)
        keys = jax.random.split(key, n_chains)
        v0 = jax.vmap(model.sample_visible, in_axes=(0, 0))(keys, h0)
    return jax.vmap(alg.init, in_axes=(0, None))(v0.astype(model.visible_dtype()), model)


def cd(data, *, batch_size: int, k: int = 1, beta: float = 1.0):
    """CD-k: chains restart at the minibatch and run k block-Gibbs sweeps (Hinton 2002).

    **Arguments:**

    - `data`: training set, shape `(n_samples, n_visible)`.
    - `batch_size`: minibatch size (drawn uniformly with replacement each update).
    - `k`: Gibbs sweeps per update.
    - `beta`: sampling inverse temperature (1 for maximum likelihood).

    **Returns:** `grad_fn(key, params, aux, t) -> (grads, aux, metrics)` for
    `diffphys.training.train`; `aux` is unused (pass `None`). `metrics["free_energy_gap"]` is
    mean F(data) - mean F(chains).
    """
    data = _check(data, batch_size, k)
    sampler = block_gibbs(beta)

    def grad_fn(key, params, aux, t):
        kb, ks = jax.random.split(key)
        v = _minibatch(kb, data, batch_size).astype(params.visible_dtype())
        states = jax.vmap(sampler.init, in_axes=(0, None))(v, params)
        states = _run_chains(ks, sampler, states, params, k, beta)
        gap, grads = jax.value_and_grad(_contrast)(params, v, states.v)
        return grads, aux, {"free_energy_gap": gap}

    return grad_fn


def pcd(data, *, batch_size: int, k: int = 1, beta: float = 1.0, sampler=None):
    """PCD-k: persistent chains advanced k steps per update (Tieleman 2008).

    **Arguments:**

    - `data`: training set, shape `(n_samples, n_visible)`.
    - `batch_size`: minibatch size (drawn uniformly with replacement each update).
    - `k`: sampler steps per update.
    - `beta`: sampling inverse temperature.
    - `sampler`: a `SamplingAlgorithm` over `RBMState`s (default `block_gibbs()`); e.g.
      `parallel_tempering(block_gibbs(), betas)` with chains of `TemperingState`s, whose
      replica at the last beta (put beta = 1 last) supplies the negative samples.

    **Returns:** `grad_fn(key, params, aux, t) -> (grads, aux, metrics)`; `aux` holds the
    persistent chains (a batched `RBMState`, see `init_chains`). The number of chains is set
    by `aux` and need not equal `batch_size`.
    """
    data = _check(data, batch_size, k)
    sampler = block_gibbs(beta) if sampler is None else sampler

    def negatives(states):
        if hasattr(states, "v"):
            return states.v
        return states.states.v[:, -1]  # tempering: the replica at the last beta

    def grad_fn(key, params, aux, t):
        kb, ks = jax.random.split(key)
        v = _minibatch(kb, data, batch_size).astype(params.visible_dtype())
        if hasattr(aux, "v"):
            aux = _run_chains(ks, sampler, aux, params, k, beta)
        else:
            n = jax.tree.leaves(aux)[0].shape[0]

            def body(i, s):
                keys = jax.random.split(jax.random.fold_in(ks, i), n)
                s, _ = jax.vmap(lambda kk, ss: sampler.step(kk, ss, params))(keys, s)
                return s

            aux = jax.lax.fori_loop(0, k, body, aux)
        gap, grads = jax.value_and_grad(_contrast)(params, v, negatives(aux))
        return grads, aux, {"free_energy_gap": gap}

    return grad_fn


def exact_gradient(data, beta: float = 1.0):
    """Exact maximum-likelihood gradient (small models): `jax.grad` of minus the exact mean
    log-likelihood, with log Z by enumeration. Same signature as `cd`/`pcd` for `train`."""
    data = jnp.asarray(data)

    def grad_fn(key, params, aux, t):
        ll, grads = jax.value_and_grad(lambda p: -p.log_likelihood(data, beta=beta))(params)
        return grads, aux, {"log_likelihood": -ll}

    return grad_fn


__all__ = ["cd", "exact_gradient", "init_chains", "pcd"]
