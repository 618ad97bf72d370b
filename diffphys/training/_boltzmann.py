r"""Boltzmann learning of an Ising model (`models.SK`) from target moments, by Monte Carlo.

The fitted model is $P(s) \propto \exp\big(\sum_i h_i s_i + \sum_{i<j} J_{ij} s_i s_j\big)$,
`models.SK(J, h)` at beta = 1. For data with means $m_i$ and pair correlations $C_{ij}$ the
negative mean log-likelihood $\mathcal L(h, J) = \ln Z - h\cdot m - \sum_{i<j} J_{ij}C_{ij}$ is
convex, and its gradient is the moment mismatch (Ackley, Hinton & Sejnowski, Cogn. Sci. 9, 147
(1985)):

$$\partial_{h_i}\mathcal L = \langle s_i\rangle_{h,J} - m_i,\qquad
  \partial_{J_{ij}}\mathcal L = \langle s_i s_j\rangle_{h,J} - C_{ij}.$$

`boltzmann_learning` estimates the model moments with persistent Markov chains (Tieleman 2008)
advanced a few sweeps per update by any of the library's single-site samplers
(`models.sk_metropolis` by default, `sampling.metropolis`, `sampling.heat_bath`).
`monte_carlo_histogram` is the MCH scheme of Broderick, Dudik, Tkačik, Schwab & Bialek
(arXiv:0712.2437, 2007), as ConIII's `MCH` solver uses it: sample once at reference parameters
$\theta_0$, then take several gradient steps whose model moments are importance-reweighted
averages over those samples,

$$\langle f\rangle_\theta \approx \frac{\sum_a w_a f(s^a)}{\sum_a w_a},\qquad
  w_a = \exp\big[(h - h_0)\cdot s^a + \textstyle\sum_{i<j}(J - J_0)_{ij} s^a_i s^a_j\big],$$

and re-sample when the effective sample size $(\sum_a w_a)^2 / \sum_a w_a^2$ falls below a
fraction of the number of samples, or after a fixed number of reweighted steps.

**Potts.** With targets of q-state variables, one-site frequencies $m_i(a)$ of shape (N, q)
and two-site frequencies $C_{ij}(a, b)$ of shape (N, N, q, q) (`training.spin_moments` of Potts
data), the fitted model is `models.PairwisePotts(h, J)`,
$P(s) \propto \exp\big(\sum_i h_i(s_i) + \sum_{i<j} J_{ij}(s_i, s_j)\big)$, and the same
formulas hold with $s_i$ replaced by the one-hot vector $\delta(s_i, a)$:
$\partial_{h_i(a)}\mathcal L = \langle\delta(s_i, a)\rangle - m_i(a)$,
$\partial_{J_{ij}(a,b)}\mathcal L = \langle\delta(s_i,a)\delta(s_j,b)\rangle - C_{ij}(a,b)$.
The default Potts sampler is the library's single-site heat bath (`sampling.heat_bath()`,
random-scan Gibbs on `PairwisePotts.site_energies`); MCH reweights by
$\exp[\sum_i \Delta h_i(s_i) + \sum_{i<j}\Delta J_{ij}(s_i, s_j)]$. Fitted Potts models are
returned in the zero-sum gauge (`PairwisePotts.zero_sum_gauge`), as the other inverse-Potts
fits are.

Both return `grad_fn(key, params, aux, t)` for `diffphys.training.train` (`params` is an `SK`
or a `PairwisePotts`, `aux` the sampler state). The gradient with respect to the pair
coupling $J_{ij}$ ($i<j$; Potts: $J_{ij}(a, b)$) is stored in both entries $(i, j)$ and
$(j, i)$ of the gradient's `J`, so one optimiser step
moves each pair coupling once; a coupling mask restricts the graph and an L2 penalty
$\tfrac{\lambda}{2}\sum_{i<j} J_{ij}^2$ adds $\lambda J$. The `grad_fn`s are
`jax.tree_util.Partial`s holding the targets as arrays, so `train` can be `vmap`-ped over data
sets (targets) and seeds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import ConfigError, ShapeError
from .._types import Array, Float, Key
from ..models import SK, PairwisePotts, sk_metropolis
from ..sampling import heat_bath
from ._loop import train


def _check_targets(m, C, mask):
    """Ising targets m (N,), C (N, N) or Potts targets m (N, q), C (N, N, q, q); the mask is
    returned broadcastable to C with a zero diagonal."""
    m = jnp.asarray(m)
    if not jnp.issubdtype(m.dtype, jnp.floating):
        m = m.astype(jnp.float32)
    C = jnp.asarray(C, m.dtype)
    potts = m.ndim == 2
    if m.ndim not in (1, 2) or m.shape[0] < 2 or (potts and m.shape[1] < 2):
        raise ShapeError(
            f"m must be a vector of N >= 2 spin means (Ising) or an (N, q) array of one-site "
            f"frequencies with N, q >= 2 (Potts), got shape {m.shape}."
        )
    n = m.shape[0]
    want = (n, n) + m.shape[1:] * 2
    if C.shape != want:
        what = "<s_i s_j>" if not potts else "two-site frequencies C[i, j, a, b]"
        raise ShapeError(f"C must be the {want} array of {what}, got shape {C.shape}.")
    if mask is None:
        mask = jnp.ones((n, n), m.dtype)
    mask = jnp.asarray(mask)
    if mask.shape != (n, n):
        raise ShapeError(f"mask must have shape ({n}, {n}) (one entry per pair), got {mask.shape}.")
    mask = mask.astype(m.dtype) * (1 - jnp.eye(n, dtype=m.dtype))
    try:
        mn, mk = np.asarray(m), np.asarray(mask)
    except Exception:  # traced (vmap over data sets): no eager value check
        mn = mk = None
    if mn is not None:
        if potts:
            if not np.all(np.isfinite(mn)) or np.any(mn < 0) or np.any(mn > 1):
                raise ConfigError("every target frequency m[i, a] must be finite, in [0, 1].")
            if np.any(np.abs(mn.sum(1) - 1) > 1e-3):
                raise ConfigError("Potts frequencies m[i, :] must sum to 1 over the q states.")
        elif not np.all(np.isfinite(mn)) or np.any(np.abs(mn) > 1):
            raise ConfigError("every target mean must be finite with |m_i| <= 1.")
        if not np.array_equal(mk, mk.T):
            raise ConfigError("the coupling mask must be symmetric (mask[i, j] == mask[j, i]).")
    if potts:
        mask = mask[:, :, None, None]
    return m, C, mask


def _check_counts(**counts) -> None:
    for name, v in counts.items():
        if int(v) != v or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}.")


def _with_grads(params: SK, gJ, gh) -> SK:
    return eqx.tree_at(lambda p: (p.J, p.h), params, (gJ, gh))


def _pair_grad(params: SK, m, C, mask, l2, m_model, C_model):
    """(grads, metrics) from target and model moments."""
    gap_m = m_model - m
    gap_C = (C_model - C) * mask
    gJ = gap_C + l2 * params.J * mask
    metrics = {
        "moment_error": jnp.maximum(jnp.max(jnp.abs(gap_m)), jnp.max(jnp.abs(gap_C))),
        "gap_m": gap_m,
        "gap_C": gap_C,
    }
    return _with_grads(params, gJ, gap_m), metrics


def init_spins(key: Key, n: int, n_chains: int, *, q: int | None = None) -> Array:
    """`n_chains` uniformly random configurations of N variables, shape (n_chains, N), int8:
    ±1 spins (default) or, with `q`, Potts states 0..q-1. The initial persistent chains
    (`aux`) of `boltzmann_learning`."""
    _check_counts(n=n, n_chains=n_chains)
    if q is not None:
        _check_counts(q=q)
        if q < 2:
            raise ConfigError(f"q must be an integer >= 2, got {q!r}.")
        return jax.random.randint(key, (n_chains, n), 0, int(q)).astype(jnp.int8)
    return jnp.where(jax.random.bernoulli(key, 0.5, (n_chains, n)), 1, -1).astype(jnp.int8)


def _features(x, m):
    """Sufficient statistics of configurations x (..., N): the spins as floats (Ising), or
    one-hot states (..., N, q) (Potts: m has shape (N, q))."""
    if m.ndim == 2:
        return jax.nn.one_hot(x.astype(jnp.int32), m.shape[1], dtype=m.dtype)
    return x.astype(m.dtype)


def _weighted_moments(f, w):
    """(sum_a w_a f_a, sum_a w_a f_a f_a^T) for features f (S, N) or (S, N, q)."""
    if f.ndim == 2:
        return w @ f, f.T @ (w[:, None] * f)
    return jnp.einsum("s,sia->ia", w, f), jnp.einsum("s,sia,sjb->ijab", w, f, f)


def _sweeps(key, sampler, params, x, n_sweeps: int, every: int = 1):
    """Advance the chains `x` (n_chains, N) by `n_sweeps` sweeps of `sampler` on `params`;
    returns the final spins and the spins after each `every`-th sweep (records, n_chains, N)."""
    n_chains = x.shape[0]
    # the fields cached in a sampler state belong to the model it was built for: re-init
    states = jax.vmap(sampler.init, in_axes=(0, None))(x, params)

    def one(states, k):
        keys = jax.random.split(k, n_chains)
        states, _ = jax.vmap(lambda a, s: sampler.step(a, s, params))(keys, states)
        return states, None

    def block(states, k):
        states, _ = jax.lax.scan(one, states, jax.random.split(k, every))
        return states, states.x

    states, recs = jax.lax.scan(block, states, jax.random.split(key, n_sweeps // every))
    return states.x, recs


def _chain_moments(recs, m):
    f = _features(recs.reshape(-1, recs.shape[-1]), m)
    return _weighted_moments(f, jnp.full(f.shape[0], 1.0 / f.shape[0], m.dtype))


def _boltzmann_grad(sampler, k, m, C, mask, l2, key, params, aux, t):
    x, recs = _sweeps(key, sampler, params, aux, k)
    m_model, C_model = _chain_moments(recs, m)
    grads, metrics = _pair_grad(params, m, C, mask, l2, m_model, C_model)
    return grads, x, metrics


def _default_sampler(m):
    return heat_bath() if m.ndim == 2 else sk_metropolis()


def boltzmann_learning(m, C, *, k: int = 1, mask=None, l2: float = 0.0, sampler=None):
    r"""Boltzmann-learning gradient estimator: persistent chains, moments by Monte Carlo.

    Each update advances every persistent chain by `k` sweeps at the current parameters and
    estimates $\langle s_i\rangle$, $\langle s_i s_j\rangle$ from all chains after each of
    those sweeps; the gradient is (model moments - target moments), see the module docstring.

    **Arguments:**

    - `m`: target means $\langle s_i\rangle$, shape (N,); Potts: one-site frequencies
      $m_i(a)$, shape (N, q), each row summing to one.
    - `C`: target pair correlations $\langle s_i s_j\rangle$, shape (N, N) (diagonal ignored);
      Potts: two-site frequencies $C_{ij}(a, b)$, shape (N, N, q, q).
    - `k`: sampler sweeps per update.
    - `mask`: optional (N, N) symmetric 0/1 coupling mask (the graph); masked couplings get
      zero gradient, so they stay at their initial value (start them at 0).
    - `l2`: L2 penalty strength $\lambda$ on the couplings.
    - `sampler`: a single-site `SamplingAlgorithm` that accepts the fitted model: for Ising
      an `SK` (default `models.sk_metropolis()`; also `sampling.metropolis()`,
      `sampling.heat_bath()`), for Potts a `PairwisePotts` (default `sampling.heat_bath()`;
      also `sampling.metropolis()`).

    **Returns:** `grad_fn(key, params, aux, t) -> (grads, aux, metrics)` for `training.train`:
    `params` is an `SK` (Ising) or a `PairwisePotts` (Potts), `aux` the chains' states
    (n_chains, N) (`init_spins`, with `q=` for Potts), and metrics
    hold `moment_error` (max abs mismatch) and the signed gaps `gap_m`, `gap_C`.
    """
    m, C, mask = _check_targets(m, C, mask)
    _check_counts(k=k)
    sampler = _default_sampler(m) if sampler is None else sampler
    return jax.tree_util.Partial(
        _boltzmann_grad, sampler, int(k), m, C, mask, jnp.asarray(l2, m.dtype)
    )


class MCHState(NamedTuple):
    """State of `monte_carlo_histogram`: persistent chains, the stored samples and the
    parameters they were drawn at, and how many reweighted steps they have served."""

    x: Array
    samples: Float[Array, "n_samples n *q"]
    """Stored samples as features: spins (Ising) or one-hot states (Potts, last axis q)."""
    J_ref: Array
    h_ref: Array
    age: Array


def init_mch(key: Key, params, *, n_chains: int, n_per_chain: int = 10) -> MCHState:
    """Initial `aux` for `monte_carlo_histogram` fitting `params` (an `SK` or a
    `PairwisePotts`): random chains and an empty sample store (of n_chains * n_per_chain
    samples) marked stale, so the first update samples."""
    _check_counts(n_chains=n_chains, n_per_chain=n_per_chain)
    dtype = params.J.dtype
    q = params.n_states if isinstance(params, PairwisePotts) else None
    x = init_spins(key, params.n, n_chains, q=q)
    store = (n_chains * n_per_chain, params.n) + (() if q is None else (q,))
    samples = jnp.zeros(store, dtype)
    big = jnp.asarray(np.iinfo(np.int32).max, jnp.int32)
    return MCHState(x, samples, params.J, params.h, big)


def _log_weights(f, dJ, dh):
    """-(E_theta - E_theta_ref) of stored features f: linear in the parameter change."""
    if f.ndim == 2:
        return 0.5 * jnp.einsum("ai,ij,aj->a", f, dJ, f) + f @ dh
    return 0.5 * jnp.einsum("sia,ijab,sjb->s", f, dJ, f) + jnp.einsum("sia,ia->s", f, dh)


def _mch_grad(sampler, burn, thin, n_per_chain, n_reweight, min_ess, m, C, mask, l2,
              key, params, aux: MCHState, t):  # fmt: skip
    n_samples = aux.samples.shape[0]

    def ess_of(a):
        lw = _log_weights(a.samples, params.J - a.J_ref, params.h - a.h_ref)
        w = jax.nn.softmax(lw)
        return w, 1.0 / jnp.sum(w**2)

    _, ess = ess_of(aux)
    stale = (aux.age >= n_reweight) | (ess < min_ess * n_samples) | ~jnp.isfinite(ess)

    def resample(a: MCHState) -> MCHState:
        kb, ks = jax.random.split(key)
        x, _ = _sweeps(kb, sampler, params, a.x, burn)
        x, recs = _sweeps(ks, sampler, params, x, n_per_chain * thin, thin)
        samples = _features(recs.reshape(-1, x.shape[-1]), m)
        return MCHState(x, samples, params.J, params.h, jnp.zeros((), jnp.int32))

    aux = jax.lax.cond(stale, resample, lambda a: a, aux)
    w, ess = ess_of(aux)
    m_model, C_model = _weighted_moments(aux.samples, w)
    grads, metrics = _pair_grad(params, m, C, mask, l2, m_model, C_model)
    metrics["ess_fraction"] = ess / n_samples
    metrics["resampled"] = stale.astype(m.dtype)
    return grads, aux._replace(age=aux.age + 1), metrics


def monte_carlo_histogram(
    m,
    C,
    *,
    n_reweight: int = 10,
    min_ess: float = 0.5,
    burn: int = 20,
    thin: int = 2,
    n_per_chain: int = 10,
    mask=None,
    l2: float = 0.0,
    sampler=None,
):
    r"""Monte Carlo histogram (MCH) gradient estimator (Broderick et al. 2007; ConIII's `MCH`).

    Samples are drawn at reference parameters (`n_per_chain` per persistent chain, every
    `thin` sweeps after `burn` sweeps at the current parameters) and reused by up to
    `n_reweight` updates, each reweighting them to the current parameters (module docstring);
    fresh samples are drawn earlier when the effective sample size drops below
    `min_ess * n_samples`. Cheap updates between costly samplings are the point: one sampling
    serves many optimiser steps.

    **Arguments:**

    - `m`, `C`, `mask`, `l2`, `sampler`: as `boltzmann_learning`.
    - `n_reweight`: most updates served by one set of samples.
    - `min_ess`: effective-sample-size guard, a fraction in (0, 1].
    - `burn`, `thin`, `n_per_chain`: sweeps before sampling, sweeps between stored samples,
      samples stored per chain (fixed by `init_mch`).

    **Returns:** `grad_fn(key, params, aux, t)` for `training.train`, with `aux` an `MCHState`
    (`init_mch`); metrics add `ess_fraction` and `resampled` (1.0 at updates that sampled).
    """
    m, C, mask = _check_targets(m, C, mask)
    _check_counts(n_reweight=n_reweight, burn=burn, thin=thin, n_per_chain=n_per_chain)
    if not 0 < min_ess <= 1:
        raise ConfigError(f"min_ess must be a fraction in (0, 1], got {min_ess!r}.")
    sampler = _default_sampler(m) if sampler is None else sampler
    return jax.tree_util.Partial(
        _mch_grad,
        sampler,
        int(burn),
        int(thin),
        int(n_per_chain),
        int(n_reweight),
        float(min_ess),
        m,
        C,
        mask,
        jnp.asarray(l2, m.dtype),
    )


class FitResult(NamedTuple):
    """Result of `fit_boltzmann` / `fit_mch`."""

    model: Any
    """The fitted model: an `SK`, or a `PairwisePotts` in the zero-sum gauge."""
    converged: Array
    """True when the parameters are finite and the moment mismatch, averaged over the last
    `tail` fraction of the updates, is below `tol` everywhere."""
    moment_error: Array
    """That averaged max abs moment mismatch."""
    trace: Any
    """`train`'s trace (metrics averaged between the two record times)."""


def _initial_model(m, C, mask, init):
    """`init`, or the independent-site solution: J = 0, h = artanh m (Ising) or
    h_i(a) = ln m_i(a) (Potts, frequencies clipped at 1e-3, zero-sum)."""
    if init is not None:
        want = PairwisePotts if m.ndim == 2 else SK
        if not isinstance(init, want) or init.h.shape != m.shape:
            raise ConfigError(
                f"init must be a {want.__name__} with fields of shape {m.shape} (the targets' "
                f"kind and size), got {type(init).__name__}."
            )
        return init
    if m.ndim == 2:
        h = jnp.log(jnp.clip(m, 1e-3, 1.0))
        return PairwisePotts(h - jnp.mean(h, axis=1, keepdims=True), jnp.zeros_like(C))
    h = jnp.arctanh(jnp.clip(m, -0.999, 0.999))
    return SK(jnp.zeros_like(C) * mask, h)


def _cosine(lr, n_steps, alpha=0.02):
    # optax.cosine_decay_schedule mixes its int32 count with floats (fails strict promotion)
    def schedule(count):
        frac = jnp.minimum(count.astype(jnp.float32) / n_steps, 1.0)
        return lr * (alpha + (1 - alpha) * 0.5 * (1 + jnp.cos(jnp.pi * frac)))

    return schedule


def _fit(key, grad_fn, aux, params, n_steps, lr, optimizer, tol, tail):
    if optimizer is None:
        optimizer = optax.sgd(_cosine(lr, n_steps))
    last = max(1, int(round(tail * n_steps)))
    state, trace = train(
        key, params, grad_fn, optimizer, n_steps, aux=aux, record_at=[n_steps - last, n_steps]
    )
    model = state.params
    if isinstance(model, PairwisePotts):
        model = model.zero_sum_gauge()
    gap_m = trace["metrics"]["gap_m"][-1]
    gap_C = trace["metrics"]["gap_C"][-1]
    err = jnp.maximum(jnp.max(jnp.abs(gap_m)), jnp.max(jnp.abs(gap_C)))
    finite = jnp.all(jnp.isfinite(model.J)) & jnp.all(jnp.isfinite(model.h))
    return FitResult(model, finite & (err < tol), err, trace)


def _default_lr(lr, m):
    if lr is None:
        return 2.0 if jnp.ndim(m) == 2 else 0.5
    return lr


def _drive(key, grad_fn, targets, init_aux, init, n_steps, lr, optimizer, tol, tail):
    """The fit drivers' shared tail: start model from the checked targets `(m, C, mask)`,
    estimator state from `init_aux(key, params)`, then `_fit`."""
    m, C, mask = targets
    params = _initial_model(m, C, mask, init)
    kc, kt = jax.random.split(key)
    return _fit(kt, grad_fn, init_aux(kc, params), params, n_steps, lr, optimizer, tol, tail)


def _check_fit(n_steps, lr, tail):
    _check_counts(n_steps=n_steps)
    if n_steps < 2:
        raise ConfigError(f"n_steps must be >= 2, got {n_steps}.")
    if not lr > 0:
        raise ConfigError(f"lr must be positive, got {lr!r}.")
    if not 0 < tail < 1:
        raise ConfigError(f"tail must be a fraction in (0, 1), got {tail!r}.")


def fit_boltzmann(
    key: Key,
    m,
    C,
    *,
    n_steps: int = 2000,
    n_chains: int = 256,
    k: int = 1,
    lr: float | None = None,
    optimizer=None,
    mask=None,
    l2: float = 0.0,
    sampler=None,
    init=None,
    tol: float = 0.02,
    tail: float = 0.2,
) -> FitResult:
    r"""Fit `models.SK(J, h)` (Ising) or `models.PairwisePotts(h, J)` (Potts) to target moments
    by Boltzmann learning (`boltzmann_learning`).

    **Arguments:**

    - `key`: PRNG key (chains and sampler).
    - `m`, `C`, `k`, `mask`, `l2`, `sampler`: as `boltzmann_learning`.
    - `n_steps`, `n_chains`: updates and persistent chains.
    - `lr`: initial learning rate of the default optimiser, `optax.sgd` with a cosine decay to
      2% of it (decaying the step averages out the Monte Carlo noise of late updates); default
      0.5 (Ising) or 2.0 (Potts, whose one-hot statistics have a q-fold smaller variance, so a
      proportionally larger step moves the fit as fast).
    - `optimizer`: any optax optimiser instead.
    - `init`: starting model (default: J = 0 and the independent-site fields, h = artanh m for
      Ising, $h_i(a) = \ln m_i(a)$ for Potts).
    - `tol`, `tail`: convergence test (see `FitResult.converged`).

    **Returns:** a `FitResult(model, converged, moment_error, trace)`. Vmap over keys for
    seeds and over `(m, C)` for data sets.
    """
    lr = _default_lr(lr, m)
    _check_fit(n_steps, lr, tail)
    grad_fn = boltzmann_learning(m, C, k=k, mask=mask, l2=l2, sampler=sampler)
    m, C, mask = grad_fn.args[2:5]
    q = m.shape[1] if m.ndim == 2 else None
    return _drive(key, grad_fn, (m, C, mask), lambda k, p: init_spins(k, p.n, n_chains, q=q),
                  init, n_steps, lr, optimizer, tol, tail)


def fit_mch(
    key: Key,
    m,
    C,
    *,
    n_steps: int = 500,
    n_chains: int = 64,
    n_per_chain: int = 10,
    n_reweight: int = 10,
    min_ess: float = 0.5,
    burn: int = 20,
    thin: int = 2,
    lr: float | None = None,
    optimizer=None,
    mask=None,
    l2: float = 0.0,
    sampler=None,
    init=None,
    tol: float = 0.02,
    tail: float = 0.2,
) -> FitResult:
    r"""Fit `models.SK(J, h)` or `models.PairwisePotts(h, J)` to target moments by the Monte
    Carlo histogram method
    (`monte_carlo_histogram`, Broderick et al. 2007).

    **Arguments:** as `fit_boltzmann`, plus `n_per_chain`, `n_reweight`, `min_ess`, `burn`,
    `thin` of `monte_carlo_histogram`.

    **Returns:** a `FitResult`; `trace["metrics"]["resampled"]` is the fraction of updates
    that drew fresh samples.
    """
    lr = _default_lr(lr, m)
    _check_fit(n_steps, lr, tail)
    grad_fn = monte_carlo_histogram(
        m, C, n_reweight=n_reweight, min_ess=min_ess, burn=burn, thin=thin,
        n_per_chain=n_per_chain, mask=mask, l2=l2, sampler=sampler,
    )  # fmt: skip
    return _drive(
        key, grad_fn, grad_fn.args[6:9],
        lambda k, p: init_mch(k, p, n_chains=n_chains, n_per_chain=n_per_chain),
        init, n_steps, lr, optimizer, tol, tail,
    )  # fmt: skip


__all__ = [
    "FitResult",
    "MCHState",
    "boltzmann_learning",
    "fit_boltzmann",
    "fit_mch",
    "init_mch",
    "init_spins",
    "monte_carlo_histogram",
]
