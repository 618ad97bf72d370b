r"""Inverse Ising and Potts estimators for `train`: exact likelihood, pseudo-likelihood, MPF.

Each builder turns a `SpinData` into a `grad_fn(key, params, aux, t) -> (grads, aux,
metrics)` for `diffphys.training.train`, where `params` is the model being fitted, an
ordinary `diffphys.models.SK` (Ising) or `diffphys.models.PairwisePotts`. Couplings are
restricted to a graph by a boolean (N, N) `mask` (gradients off the graph are zero), sample
weights come from the data, and optional penalties $\lambda_1 \sum |J| + \lambda_2 \sum J^2$
act on the stored couplings (both orders of each pair). The builders are pure in the data:
`jax.vmap` a fit over stacked `SpinData`s and over keys. `fit_exact`, `fit_pseudolikelihood`
and `fit_mpf` minimise the objectives to a gradient tolerance, by damped Newton iterations
(small problems, smooth objectives; the asymmetric pseudo-likelihood spin by spin, as N
independent logistic regressions) or by `train` with Adam, and return an `InverseFit`.

Objectives (per unit weight of data, $w_\mu$ summing to one):

- exact likelihood (N <= 20 Ising spins or q^N <= 2^20):
  $\mathcal L = \sum_\mu w_\mu E(s^\mu) + \ln Z$, gradient = model moments - data moments
  of the sufficient statistics (both from `spin_moments`-style sums; Z by enumeration);
- pseudo-likelihood (Besag 1975; Aurell & Ekeberg, PRL 108, 090201 (2012)):
  $\mathcal L = -\sum_\mu w_\mu \sum_i \ln p(s_i^\mu \mid s^\mu_{\setminus i})$; by default
  every spin's conditional has its own row of couplings (asymmetric) and the fit is
  symmetrised, $J \leftarrow (J + J^\top)/2$, afterwards (Aurell & Ekeberg's and ConIII's
  choice); `symmetric=True` fits one symmetric J in all conditionals;
- minimum probability flow (Sohl-Dickstein, Battaglino & DeWeese, PRL 107, 220601 (2011)),
  single-site neighbours: $K = \sum_\mu w_\mu \sum_i \sum_{b \ne s_i^\mu}
  \exp\{\tfrac12[E(s^\mu) - E(s^\mu_{i \to b})]\}$, minimised as $\ln K$ (ConIII's choice;
  same minimiser). For Ising spins this is $\sum_\mu w_\mu \sum_i e^{-s_i^\mu f_i^\mu}$ with
  local fields $f_i = h_i + \sum_j J_{ij} s_j$.

Conventions: Ising energies are those of `SK`, $E = -\sum_i h_i s_i - \sum_{i<j} J_{ij}
s_i s_j$, identical to ConIII's `Ising` (its multipliers are
`concatenate([h, J[np.triu_indices(N, 1)]])`). Potts fits are returned in the zero-sum gauge.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import ConfigError, check_mask, check_positive
from ..exact import MAX_STATES
from ..models import SK, PairwisePotts
from ._inverse_data import SpinData, one_hot, spin_data, spin_moments, unique_samples
from ._loop import train


class InverseFit(NamedTuple):
    """Result of `fit_exact`, `fit_pseudolikelihood` and `fit_mpf`."""

    model: Any
    """The fitted `SK` (Ising) or `PairwisePotts` (zero-sum gauge)."""
    converged: Any
    """True when every gradient component of the objective is below `tol` and finite."""
    grad_max: Any
    """Largest absolute gradient component at the end (L1: the minimal subgradient)."""
    loss: Any
    """Final value of the objective (with penalties)."""


# -- parameters ------------------------------------------------------------------------------


def _as_data(data) -> SpinData:
    # merging repeated samples changes no objective and divides the work (concrete data only)
    return unique_samples(data if isinstance(data, SpinData) else spin_data(data))


@functools.lru_cache(maxsize=64)
def _all_pairs(n: int):
    with jax.ensure_compile_time_eval():  # concrete even when first called under a trace
        return jnp.asarray(check_mask(None, n), jnp.float32)


def _mask_array(mask, n: int):
    if mask is None:
        return _all_pairs(n)
    return jnp.asarray(check_mask(mask, n), jnp.float32)


@functools.lru_cache(maxsize=64)
def _zero_model(n: int, q: int, potts: bool):
    with jax.ensure_compile_time_eval():
        return _zeros(n, q, potts)


def _zeros(n: int, q: int, potts: bool):
    if potts:
        return PairwisePotts(jnp.zeros((n, q), jnp.float32), jnp.zeros((n, n, q, q), jnp.float32))
    return SK(jnp.zeros((n, n), jnp.float32), jnp.zeros((n,), jnp.float32))


def init_model(data: SpinData):
    """All-zero fields and couplings of the right kind and size: an `SK` or a `PairwisePotts`."""
    return _zero_model(data.n, data.q, data.potts)  # immutable: one per size


def _check_params(params, data: SpinData):
    if data.potts:
        ok = isinstance(params, PairwisePotts) and params.n == data.n and params.q == data.q
        want = f"a PairwisePotts with N={data.n}, q={data.q}"
    else:
        ok = isinstance(params, SK) and params.n == data.n
        want = f"an SK model with N={data.n}"
    if not ok:
        raise ConfigError(
            f"params must be {want} (see diffphys.training.init_model), got "
            f"{type(params).__name__}."
        )


def _transpose(J):
    return J.T if J.ndim == 2 else J.transpose(1, 0, 3, 2)


def _effective(model, mask, symmetrize: bool):
    """The couplings the objective sees: symmetrised (if asked) and restricted to the graph."""
    J = model.J
    if symmetrize:
        J = 0.5 * (J + _transpose(J))
    J = J * (mask if J.ndim == 2 else mask[:, :, None, None])
    return eqx.tree_at(lambda m: m.J, model, J)


def _penalty(model, l1, l2):
    J = model.J
    return l1 * jnp.sum(jnp.abs(J)) + l2 * jnp.sum(J * J)


def _mean_energy(model, moments):
    """<E> given the moments (m, C): the energy is linear in the parameters."""
    m, C = moments
    return -jnp.sum(model.h * m) - 0.5 * jnp.sum(model.J * C)


# -- objectives ------------------------------------------------------------------------------


def _site_energies(model, data: SpinData):
    """e[mu, i, a]: energy of sample mu with spin i set to its a-th value, up to a constant
    per (mu, i); row i of J (asymmetric fits) enters spin i's conditional only."""
    if data.potts:
        o = one_hot(data)
        return -model.h[None] - jnp.einsum("ijab,ujb->uia", model.J, o)
    f = data.x @ model.J.T + model.h  # local fields f_i = h_i + sum_j J_ij s_j
    return jnp.stack([f, -f], axis=-1)  # values (-1, +1)


def _value_index(data: SpinData):
    if data.potts:
        return data.x
    return ((data.x + 1.0) * 0.5).astype(jnp.int32)


def _pl_objective(model, data: SpinData):
    e = _site_energies(model, data)
    idx = _value_index(data)
    e_obs = jnp.take_along_axis(e, idx[..., None], axis=-1)[..., 0]
    nll = e_obs + jax.nn.logsumexp(-e, axis=-1)  # -ln p(s_i | rest), (M, N)
    return data.weights @ jnp.sum(nll, axis=-1)


def _mpf_objective(model, data: SpinData):
    e = _site_energies(model, data)
    idx = _value_index(data)
    e_obs = jnp.take_along_axis(e, idx[..., None], axis=-1)
    log_flow = 0.5 * (e_obs - e)  # (M, N, q); the entry b = s_i is exp(0) = 1, not a neighbour
    not_self = jax.nn.one_hot(idx, data.q, dtype=e.dtype) == 0
    log_flow = jnp.where(not_self, log_flow, -jnp.inf)
    per_sample = jax.nn.logsumexp(log_flow.reshape(log_flow.shape[0], -1), axis=-1)
    return jax.nn.logsumexp(per_sample, b=data.weights)


def _check_enumerable(data: SpinData):
    n_states = data.q**data.n
    if n_states > MAX_STATES:
        raise ConfigError(
            f"exact likelihood enumerates q^N = {data.q}^{data.n} = {n_states} configurations, "
            f"more than {MAX_STATES}; use pseudolikelihood or mpf for N > 20 Ising spins."
        )


def _configurations(data: SpinData):
    n, q = data.n, data.q
    idx = np.arange(q**n)[:, None] // q ** np.arange(n)[None, :] % q
    if data.potts:
        return jax.nn.one_hot(jnp.asarray(idx, jnp.int32), q, dtype=jnp.float32)
    return jnp.asarray(2 * idx - 1, jnp.float32)


def _config_energies(model, X, potts: bool):
    if potts:
        return -jnp.einsum("sia,ia->s", X, model.h) - 0.5 * jnp.einsum(
            "sia,ijab,sjb->s", X, model.J, X
        )
    return -0.5 * jnp.sum((X @ model.J) * X, axis=-1) - X @ model.h


def model_moments(model, data: SpinData):
    r"""Exact model moments $(\langle s_i\rangle, \langle s_i s_j\rangle)$ (Ising) or one- and
    two-site marginals (Potts) and $\ln Z$, by enumeration of all configurations.

    **Returns:** `((m, C), log_z)`, in the layout of `spin_moments`.
    """
    _check_enumerable(data)
    X = _configurations(data)
    E = _config_energies(model, X, data.potts)
    log_z = jax.nn.logsumexp(-E)
    p = jnp.exp(-E - log_z)
    if data.potts:
        pX = p[:, None, None] * X
        m = jnp.sum(pX, axis=0)
        n, q = model.h.shape
        C = (pX.reshape(-1, n * q).T @ X.reshape(-1, n * q)).reshape(n, q, n, q)
        return (m, C.transpose(0, 2, 1, 3)), log_z
    return (p @ X, (X * p[:, None]).T @ X), log_z


def _exact_value(model, data: SpinData):
    r"""Minus the mean log-likelihood, $<E>_{data} + \ln Z$, differentiable to any order."""
    log_z = jax.nn.logsumexp(-_config_energies(model, _configurations(data), data.potts))
    return _mean_energy(model, spin_moments(data)) + log_z


def _exact_objective_and_grad(model, data, mask, l1, l2, symmetrize):
    d_mom = spin_moments(data)

    def value(mdl, mom_model):
        eff = _effective(mdl, mask, symmetrize)
        # d/dθ [<E>_data - <E>_model] with the model's moments held fixed is the exact
        # gradient of <E>_data + ln Z: data moments minus model moments.
        return _mean_energy(eff, d_mom) - _mean_energy(eff, mom_model) + _penalty(eff, l1, l2)

    mom, log_z = model_moments(_effective(model, mask, symmetrize), data)
    mom = jax.lax.stop_gradient(mom)
    grads = jax.grad(value)(model, mom)
    eff = _effective(model, mask, symmetrize)
    loss = _mean_energy(eff, d_mom) + log_z + _penalty(eff, l1, l2)
    return loss, grads


def _smooth_objective(kind):
    obj = {"pseudolikelihood": _pl_objective, "mpf": _mpf_objective, "exact": _exact_value}[kind]

    def value(model, data, mask, l1, l2, symmetrize):
        eff = _effective(model, mask, symmetrize)
        return obj(eff, data) + _penalty(eff, l1, l2)

    return value


def _objective_and_grad(kind, model, data, mask, l1, l2, symmetrize):
    if kind == "exact":
        return _exact_objective_and_grad(model, data, mask, l1, l2, symmetrize)
    return jax.value_and_grad(_smooth_objective(kind))(model, data, mask, l1, l2, symmetrize)


def _grad_fn(kind, data, mask, l1, l2, symmetrize, key, params, aux, t):
    loss, grads = _objective_and_grad(kind, params, data, mask, l1, l2, symmetrize)
    return grads, aux, {"loss": loss}


def _builder(kind, data, mask, l1, l2, symmetrize, prepared=False):
    data = data if prepared else _as_data(data)
    for name, v in (("l1", l1), ("l2", l2)):
        if not isinstance(v, jax.core.Tracer) and (not np.isfinite(v) or v < 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}.")
    if kind == "exact":
        _check_enumerable(data)
    return jax.tree_util.Partial(
        _grad_fn, kind, data, _mask_array(mask, data.n), l1, l2, symmetrize
    )


def exact_likelihood(data, *, mask=None, l1: float = 0.0, l2: float = 0.0):
    r"""Exact maximum-likelihood gradient by enumeration (Ising N <= 20, Potts q^N <= 2^20).

    $$\nabla_{h_i}\mathcal L = \langle s_i\rangle_{\rm model} - \langle s_i\rangle_{\rm data},
    \quad \nabla_{J_{ij}}\mathcal L = \tfrac12(\langle s_i s_j\rangle_{\rm model} -
    \langle s_i s_j\rangle_{\rm data})$$

    (the stored J holds each pair twice), the model moments by exact enumeration
    (`model_moments`); for Potts the same with one- and two-site marginals.

    **Arguments:**

    - `data`: a `SpinData` (or a ±1 array, passed through `spin_data`).
    - `mask`: optional boolean (N, N) graph of the couplings.
    - `l1`, `l2`: penalties on the couplings.

    **Returns:** `grad_fn(key, params, aux, t) -> (grads, aux, {"loss"})` for `train`, with
    `params` an `SK`/`PairwisePotts` (start from `init_model(data)`); `aux` is unused. The loss
    is minus the mean log-likelihood plus the penalties.
    """
    return _builder("exact", data, mask, l1, l2, True)


def pseudolikelihood(
    data, *, mask=None, l1: float = 0.0, l2: float = 0.0, symmetric: bool = False
):
    r"""Pseudo-likelihood gradient (Aurell & Ekeberg, PRL 108, 090201 (2012)).

    $$\mathcal L = -\sum_\mu w_\mu \sum_i \ln p(s_i^\mu \mid s^\mu_{\setminus i}),\qquad
    p(s_i = a \mid \cdot) = \frac{e^{-e_i(a)}}{\sum_b e^{-e_i(b)}},\quad
    e_i(a) = -h_i(a) - \textstyle\sum_j J_{ij}(a, s_j).$$

    **Arguments:**

    - `data`: a `SpinData` (or a ±1 array).
    - `mask`: optional boolean (N, N) graph of the couplings.
    - `l1`, `l2`: penalties on the couplings.
    - `symmetric`: False (default): row i of `params.J` enters only spin i's conditional
      (asymmetric pseudo-likelihood; symmetrise the fit afterwards, as `fit_pseudolikelihood`
      does). True: one symmetric J, $(J + J^\top)/2$, in every conditional.

    **Returns:** `grad_fn` for `train` (see `exact_likelihood`).
    """
    return _builder("pseudolikelihood", data, mask, l1, l2, bool(symmetric))


def mpf(data, *, mask=None, l1: float = 0.0, l2: float = 0.0):
    r"""Minimum probability flow gradient (Sohl-Dickstein, Battaglino & DeWeese 2011).

    $$\ln K = \ln \sum_\mu w_\mu \sum_i \sum_{b \ne s_i^\mu}
    \exp\!\big(\tfrac12 [e_i(s_i^\mu) - e_i(b)]\big),$$

    with single-site neighbours (single spin flips for Ising, single-site state changes for
    Potts) and all neighbours counted, data states included (ConIII's `all_connected=True`).

    **Arguments:** as `exact_likelihood`. **Returns:** `grad_fn` for `train`.
    """
    return _builder("mpf", data, mask, l1, l2, True)


@functools.lru_cache(maxsize=32)
def _adam(learning_rate: float, n_steps: int):
    # One object per setting: `train` compiles once per optimizer object.
    return optax.adam(optax.cosine_decay_schedule(learning_rate, n_steps, alpha=1e-4))


def _grad_max(grads, params, l1):
    leaves = []
    for g, p, name in ((grads.h, params.h, "h"), (grads.J, params.J, "J")):
        if name == "J":
            # minimal subgradient of l1 |J| (g already holds l1 sign(J)): the gradient where
            # J != 0 (beyond 1e-6), max(|smooth part| - l1, 0) where J = 0
            smooth = g - l1 * jnp.sign(p)
            g = jnp.where(jnp.abs(p) > 1e-6, g, jnp.maximum(jnp.abs(smooth) - l1, 0.0))
        leaves.append(jnp.max(jnp.abs(g)))
    return jnp.max(jnp.stack(leaves))


# -- Newton solver -----------------------------------------------------------------------------

_NEWTON_MAX_PARAMS = 600  # free parameters; the dense Hessian is P x P
_NEWTON_MAX_WORK = 2**22  # exact likelihood: P x q^N tangent energies per Hessian
_STEPS = np.float32(0.5) ** np.arange(8, dtype=np.float32)  # backtracking step sizes


def _free_layout(data: SpinData, symmetric: bool):
    """Positions in J.ravel() of the free couplings (pairs i < j if symmetric, else i != j)
    and of their transposed partners (the same coupling stored the other way round)."""
    n, q = data.n, data.q
    shape = (n, n, q, q) if data.potts else (n, n)
    pos = np.arange(int(np.prod(shape))).reshape(shape)
    pairs = np.triu(np.ones((n, n), bool), 1) if symmetric else ~np.eye(n, dtype=bool)
    return pos[pairs].ravel(), _transpose(pos)[pairs].ravel()


def _n_free(data: SpinData, symmetric: bool) -> int:
    n, q = data.n, data.q
    n_pairs = n * (n - 1) // (2 if symmetric else 1)
    return (n * q if data.potts else n) + n_pairs * (q * q if data.potts else 1)


def _to_theta(model, layout, symmetric: bool):
    idx, partner = layout
    J = model.J.ravel()
    J_free = 0.5 * (J[idx] + J[partner]) if symmetric else J[idx]
    return jnp.concatenate([model.h.ravel(), J_free])


def _from_theta(theta, like, layout, symmetric: bool):
    idx, partner = layout
    nh = like.h.size
    J = jnp.zeros(like.J.size, theta.dtype).at[idx].set(theta[nh:])
    if symmetric:
        J = J.at[partner].set(theta[nh:])
    return eqx.tree_at(
        lambda m: (m.h, m.J), like, (theta[:nh].reshape(like.h.shape), J.reshape(like.J.shape))
    )


def _newton(f, theta, gscale, n_steps: int, tol):
    """Damped Newton with backtracking on a convex f: stops at max |g * gscale| < tol, at
    n_steps iterations, or when no step size decreases f (beyond float32 round-off).

    The Hessian is regularised by 1e-5 of its largest diagonal element: directions f does not
    depend on (masked couplings, the Potts gauge) have zero gradient and get no step.
    """
    value_and_grad = jax.value_and_grad(f)
    hessian = jax.hessian(f)
    steps = jnp.asarray(_STEPS)
    eye = jnp.eye(theta.shape[0], dtype=theta.dtype)

    def stop(fv, g):
        return ~jnp.isfinite(fv) | (jnp.max(jnp.abs(g) * gscale) < tol)

    def body(state):
        theta, fv, g, it, _ = state
        H = hessian(theta)
        damp = 1e-5 * jnp.max(jnp.abs(jnp.diagonal(H))) + 1e-12
        d = -jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(H + damp * eye), g)
        d = jnp.where(jnp.all(jnp.isfinite(d)), d, -g)  # not positive definite: steepest descent
        f_try = jax.vmap(lambda a: f(theta + a * d))(steps)
        slack = 1e-6 * (jnp.abs(fv) + 1.0)  # float32 round-off of f
        ok = jnp.isfinite(f_try) & (f_try <= fv + 1e-4 * steps * (g @ d) + slack)
        step = jnp.where(jnp.any(ok), steps[jnp.argmax(ok)], 0.0)
        theta = theta + step * d
        fv, g = value_and_grad(theta)
        return theta, fv, g, it + 1, stop(fv, g) | ~jnp.any(ok)

    fv, g = value_and_grad(theta)
    state = (theta, fv, g, jnp.zeros((), jnp.int32), stop(fv, g))
    state = jax.lax.while_loop(lambda s: (s[3] < n_steps) & ~s[4], body, state)
    return state[0]


def _finish(kind, data, mask, l1, l2, symmetric, model, tol) -> InverseFit:
    loss, grads = _objective_and_grad(kind, model, data, mask, l1, l2, symmetric)
    gmax = _grad_max(grads, model, l1)
    converged = jnp.isfinite(loss) & (gmax < tol)
    return InverseFit(_symmetrised(model, data, mask, kind, symmetric), converged, gmax, loss)


def _symmetrised(model, data: SpinData, mask, kind, symmetric: bool):
    """The fitted model as returned: couplings symmetrised and restricted to the graph (the
    asymmetric Ising PL estimate is (J + J^T)/2; asymmetric Potts PL gauges every row to zero
    sum before averaging both orders), Potts models in the zero-sum gauge."""
    if symmetric or kind != "pseudolikelihood" or not data.potts:
        model = _effective(model, mask, True)
    else:
        model = _effective(model, mask, False).zero_sum_gauge()
        model = _effective(model, mask, True)
    if data.potts:
        model = model.zero_sum_gauge()
    return model


@eqx.filter_jit
def _newton_run(grad_fn, n_steps, params, tol):
    kind, data, mask, l1, l2, symmetric = grad_fn.args
    layout = _free_layout(data, symmetric)
    value = _smooth_objective(kind)

    def f(theta):
        return value(_from_theta(theta, params, layout, symmetric), data, mask, l1, l2, symmetric)

    # d f / d theta_J is twice the gradient of one stored copy when both copies move together
    gscale = np.ones(_n_free(data, symmetric), np.float32)
    gscale[params.h.size :] = 0.5 if symmetric else 1.0
    theta = _newton(f, _to_theta(params, layout, symmetric), jnp.asarray(gscale), n_steps, tol)
    model = _from_theta(theta, params, layout, symmetric)
    return _finish(kind, data, mask, l1, l2, symmetric, model, tol)


# -- per-site Newton (asymmetric pseudo-likelihood) --------------------------------------------

_SITEWISE_MAX_WORK = 2**26  # floats in the largest array (256 MB): see `_sitewise_fits`


def _sitewise_fits(data: SpinData) -> bool:
    """Whether `_sitewise_newton`'s arrays fit: the features and the Hessian products
    (N M c^2 K floats, c = 1 or q logits, K = N or N q slots) and the Hessians (N (c K)^2)."""
    n, m = data.n, data.n_samples
    c, k = (data.q, data.n * data.q) if data.potts else (1, data.n)
    return n * m * c * c * k <= _SITEWISE_MAX_WORK and n * (c * k) ** 2 <= _SITEWISE_MAX_WORK


def _site_features(data: SpinData, mask):
    r"""a[i, mu, k]: the regressors of spin i's conditional, k = (j, b) over N x q slots (Ising:
    q = 1, k = j). Couplings: $s_j$ (Ising) or $\delta(s_j, b)$ (Potts) for j != i on the graph,
    0 off it; field: the slot (i, 0) is 1 (Ising: as $s_i^2$), the slots (i, b > 0) are 0."""
    n = data.n
    eye = jnp.eye(n, dtype=jnp.float32)
    if data.potts:
        o = one_hot(data)  # (M, N, q)
        field = jnp.zeros_like(o[0]).at[:, 0].set(1.0)  # (N, q)
        a = jnp.where(eye[:, None, :, None] > 0, field[None, None], o[None] * mask[:, None, :, None])
        return a.reshape(n, o.shape[0], n * data.q)
    x = data.x
    a = x[None] * jnp.where(eye[:, None, :] > 0, x.T[:, :, None], 1.0)
    return a * (mask + eye)[:, None, :]


def _site_logits(a, theta):
    """u[mu, i, c]: spin i's logits (minus its energies) for value c; theta (N, c, K)."""
    return jnp.einsum("iuk,ick->uic", a, theta)


def _site_loss(u, data: SpinData, pen, theta):
    """Every spin's conditional loss (N,) at logits u, with penalty weights pen (N, c, K)."""
    if data.potts:
        obs = jnp.take_along_axis(u, data.x[..., None], axis=-1)[..., 0]
        nll = jax.nn.logsumexp(u, axis=-1) - obs
    else:  # one logit f_i: p(s_i | rest) = 1 / (1 + exp(-2 s_i f_i))
        nll = jax.nn.softplus(-2.0 * u[..., 0] * data.x)
    return data.weights @ nll + 0.5 * jnp.sum(pen * theta * theta, axis=(1, 2))


def _site_grad(a, u, data: SpinData, pen, theta):
    """Gradient (N, c, K) and the N per-spin Hessians (N, cK, cK) of the conditional losses."""
    w = data.weights
    if data.potts:
        p = jax.nn.softmax(u, axis=-1)
        r = p - jax.nn.one_hot(data.x, data.q, dtype=p.dtype)
        curv = jnp.einsum("uic,cd->uicd", p, jnp.eye(data.q, dtype=p.dtype)) - (
            p[..., :, None] * p[..., None, :]
        )
    else:
        t = jnp.tanh(u)
        r = t - data.x[..., None]
        curv = (1.0 - t * t)[..., None]
    g = jnp.einsum("uic,iuk->ick", w[:, None, None] * r, a) + pen * theta
    H = jnp.einsum("iuk,uicd,iul->ickdl", a, w[:, None, None, None] * curv, a)
    n, c, k = theta.shape
    return g, H.reshape(n, c * k, c * k)


def _site_penalty(data: SpinData, mask, l2):
    """Per-slot curvature of the L2 penalty (2 l2 on couplings on the graph) and the slots that
    are no parameter (off the graph; Potts: (i, b > 0) of the field row), both (N, c, K)."""
    n, q = data.n, data.q
    eye = jnp.eye(n, dtype=jnp.float32)
    if data.potts:
        coupling = jnp.broadcast_to(mask[:, None, :, None], (n, q, n, q)).reshape(n, q, n * q)
        field = jnp.broadcast_to(
            (eye[:, :, None] * (jnp.arange(q) == 0).astype(jnp.float32))[:, None], (n, q, n, q)
        ).reshape(n, q, n * q)
    else:
        coupling, field = mask[:, None, :], eye[:, None, :]
    return 2.0 * l2 * coupling, 1.0 - coupling - field


def _sitewise_newton(data: SpinData, mask, l2, theta, n_steps: int, tol):
    r"""The asymmetric pseudo-likelihood minimised spin by spin: the objective is a sum of N
    independent (multinomial) logistic regressions, spin i's with the parameters $h_i$,
    $J_{i\cdot}$ (one row of the stored couplings). Damped Newton on all N conditionals at
    once, each with its own Hessian (Ising: N x N,
    $H_i = \sum_\mu w_\mu (1 - \tanh^2 f_i^\mu)\, a_{i\mu} a_{i\mu}^\top$; Potts: $qNq$ square,
    $\sum_\mu w_\mu [\mathrm{diag}(p) - p p^\top] \otimes a_{i\mu} a_{i\mu}^\top$), + 2 l2 on
    the couplings, Cholesky with 1e-5 relative damping (the Potts gauge directions have zero
    gradient: no step), and an Armijo backtracking line search per spin (step 1 first, halved
    for the spins that fail, at most 8 times). Stops when the largest gradient component of
    the whole objective is below `tol` (the joint Newton solver's rule, on the same objective),
    at `n_steps` iterations, or when no step size decreases any unconverged spin's loss. Slots
    that are no parameter (`_site_penalty`) get a unit Hessian and zero gradient: no step.

    `theta` (N, c, K) with c = 1, K = N (Ising: $h_i$ at [i, 0, i], $J_{ij}$ at [i, 0, j]) or
    c = q, K = N q (Potts: $h_i(a)$ at [i, a, (i, 0)], $J_{ij}(a, b)$ at [i, a, (j, b)]);
    returns the minimiser in that layout, the spins' losses and the gradient."""
    a = _site_features(data, mask)
    pen, frozen = _site_penalty(data, mask, l2)
    n, c, k = theta.shape
    eye = jnp.eye(c * k, dtype=jnp.float32)
    fixed = (pen + frozen).reshape(n, c * k)[:, :, None] * eye
    n_halve = len(_STEPS)

    def direction(H, g):
        g = g.reshape(n, c * k)
        H = H + fixed
        damp = 1e-5 * jnp.max(jnp.abs(jnp.diagonal(H, axis1=1, axis2=2)), axis=1) + 1e-12
        L = jnp.linalg.cholesky(H + damp[:, None, None] * eye)
        d = -jax.scipy.linalg.cho_solve((L, True), g[..., None])[..., 0]
        d = jnp.where(jnp.all(jnp.isfinite(d), axis=1, keepdims=True), d, -g)
        return d.reshape(n, c, k) * (1.0 - frozen)

    def line_search(theta, u, fv, g, d):
        du = _site_logits(a, d)
        slope = 1e-4 * jnp.sum(g * d, axis=(1, 2))
        slack = 1e-6 * (jnp.abs(fv) + 1.0)  # float32 round-off of a spin's loss

        def body(s):
            step, ok, f_new, it = s
            trial = _site_loss(u + step[:, None] * du, data, pen, theta + step[:, None, None] * d)
            good = ~ok & jnp.isfinite(trial) & (trial <= fv + step * slope + slack)
            f_new = jnp.where(good, trial, f_new)
            ok = ok | good
            return jnp.where(ok, step, 0.5 * step), ok, f_new, it + 1

        s = (jnp.ones_like(fv), jnp.zeros(fv.shape, bool), fv, jnp.zeros((), jnp.int32))
        step, ok, f_new, _ = jax.lax.while_loop(
            lambda s: (s[3] < n_halve) & ~jnp.all(s[1]), body, s
        )
        step = jnp.where(ok, step, 0.0)
        return theta + step[:, None, None] * d, u + step[:, None] * du, f_new, ok

    def body(state):
        theta, u, fv, g, H, it, _ = state
        theta, u, fv, ok = line_search(theta, u, fv, g, direction(H, g))
        g, H = _site_grad(a, u, data, pen, theta)
        done = (jnp.max(jnp.abs(g), axis=(1, 2)) < tol) | ~ok
        return theta, u, fv, g, H, it + 1, jnp.all(done) | ~jnp.all(jnp.isfinite(fv))

    u = _site_logits(a, theta)
    fv = _site_loss(u, data, pen, theta)
    g, H = _site_grad(a, u, data, pen, theta)
    state = (theta, u, fv, g, H, jnp.zeros((), jnp.int32), jnp.max(jnp.abs(g)) < tol)
    theta, _, fv, g, _, _, _ = jax.lax.while_loop(
        lambda s: (s[5] < n_steps) & ~s[6], body, state
    )
    return theta, fv, g


def _site_theta(model, data: SpinData, mask):
    """A model's parameters in `_sitewise_newton`'s layout (off-graph couplings dropped)."""
    n, q = data.n, data.q
    eye = jnp.eye(n, dtype=jnp.float32)
    if not data.potts:
        return (model.J * mask + model.h[:, None] * eye)[:, None, :]
    J = model.J * mask[:, :, None, None]  # (i, j, a, b)
    h = jnp.zeros_like(J).at[jnp.arange(n), jnp.arange(n), :, 0].set(model.h)
    return (J + h).transpose(0, 2, 1, 3).reshape(n, q, n * q)


def _site_model(theta, like, data: SpinData):
    """The unsymmetrised model of a `_sitewise_newton` layout: row i of J from spin i."""
    n, q = data.n, data.q
    if not data.potts:
        t = theta[:, 0, :]
        eye = jnp.eye(n, dtype=t.dtype)
        return eqx.tree_at(lambda m: (m.h, m.J), like, (jnp.diagonal(t), t * (1.0 - eye)))
    t = theta.reshape(n, q, n, q).transpose(0, 2, 1, 3)  # (i, j, a, b)
    h = t[jnp.arange(n), jnp.arange(n), :, 0]
    J = t * (1.0 - jnp.eye(n, dtype=t.dtype))[:, :, None, None]
    return eqx.tree_at(lambda m: (m.h, m.J), like, (h, J))


@eqx.filter_jit
def _sitewise_run(grad_fn, n_steps, params, tol):
    """`fit_pseudolikelihood` with solver='sitewise': `_sitewise_newton`, then
    `_symmetrised` as every fit."""
    kind, data, mask, l1, l2, symmetric = grad_fn.args
    theta, fv, g = _sitewise_newton(data, mask, l2, _site_theta(params, data, mask), n_steps,
                                     tol)
    loss = jnp.sum(fv)
    gmax = jnp.max(jnp.abs(g))
    model = _symmetrised(_site_model(theta, params, data), data, mask, kind, symmetric)
    return InverseFit(model, jnp.isfinite(loss) & (gmax < tol), gmax, loss)


def _sitewise_solution(data, *, mask=None, l2=0.0, n_steps: int = 100, tol=1e-4):
    """The unsymmetrised per-site pseudo-likelihood solution as an `SK`/`PairwisePotts` whose
    row i of J is spin i's conditional (for tests: stationarity of every conditional)."""
    data = _as_data(data)
    return _sitewise_jit(data, _mask_array(mask, data.n), l2, n_steps, tol)


@eqx.filter_jit
def _sitewise_jit(data, mask, l2, n_steps, tol):
    like = init_model(data)
    theta = _site_theta(like, data, mask)
    return _site_model(_sitewise_newton(data, mask, l2, theta, n_steps, tol)[0], like, data)


# -- convenience fits ------------------------------------------------------------------------

_SOLVERS = ("auto", "newton", "sitewise", "adam")


def _pick_solver(solver, kind, data: SpinData, symmetric, l1, optimizer) -> str:
    if solver not in _SOLVERS:
        raise ConfigError(f"solver must be one of {_SOLVERS}, got {solver!r}.")
    smooth = not isinstance(l1, jax.core.Tracer) and l1 == 0
    per_site = kind == "pseudolikelihood" and not symmetric
    if solver in ("newton", "sitewise"):
        if optimizer is not None:
            raise ConfigError("optimizer is an optax optimizer for solver='adam'; drop one.")
        if not smooth:
            raise ConfigError(
                f"solver={solver!r} needs a smooth objective (l1 = 0, concrete); use "
                "solver='adam' for L1 penalties."
            )
        if solver == "sitewise" and not per_site:
            raise ConfigError(
                "solver='sitewise' solves the asymmetric pseudo-likelihood only "
                "(fit_pseudolikelihood with symmetric=False); use solver='newton'."
            )
        return solver
    if solver == "adam" or optimizer is not None or not smooth:
        return "adam"
    if per_site and _sitewise_fits(data):
        return "sitewise"
    p = _n_free(data, symmetric)
    small = p <= _NEWTON_MAX_PARAMS and (kind != "exact" or p * data.q**data.n <= _NEWTON_MAX_WORK)
    return "newton" if small else "adam"


def _fit(kind, data, *, mask, l1, l2, symmetric, n_steps, learning_rate, tol, init, optimizer,
         key, solver):
    data = _as_data(data)
    solver = _pick_solver(solver, kind, data, symmetric, l1, optimizer)
    if n_steps is None:
        n_steps = 2000 if solver == "adam" else 100
    if int(n_steps) != n_steps or n_steps < 1:
        raise ConfigError(f"n_steps must be a positive integer, got {n_steps!r}.")
    check_positive("learning_rate", learning_rate)
    check_positive("tol", tol)
    grad_fn = _builder(kind, data, mask, l1, l2, symmetric, prepared=True)
    params = init_model(data) if init is None else init
    _check_params(params, data)
    if solver == "newton":
        return _newton_run(grad_fn, int(n_steps), params, tol)
    if solver == "sitewise":
        return _sitewise_run(grad_fn, int(n_steps), params, tol)
    opt = _adam(float(learning_rate), int(n_steps)) if optimizer is None else optimizer
    key = jax.random.key(0) if key is None else key
    return _fit_run(grad_fn, opt, int(n_steps), params, key, tol)


@eqx.filter_jit
def _fit_run(grad_fn, opt, n_steps, params, key, tol):
    kind, data, mask, l1, l2, symmetric = grad_fn.args
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
        state, _ = train(key, params, grad_fn, opt, n_steps)
    return _finish(kind, data, mask, l1, l2, symmetric, state.params, tol)


_FIT_DOC = """

    **Arguments:**

    - `data`: a `SpinData` (or a ±1 array of shape (M, N), passed through `spin_data`).
    - `mask`: optional boolean (N, N) graph of the couplings (default: all pairs).
    - `l1`, `l2`: penalties $\\lambda_1 \\sum |J| + \\lambda_2 \\sum J^2$ on the couplings.
    - `solver`: `"newton"`: damped Newton iterations on all free parameters jointly (h and
      each coupling once), the dense Hessian by automatic differentiation (for the exact
      likelihood it is the model covariance of the sufficient statistics), backtracking line
      search, until `tol`: a handful of iterations for these convex objectives.
      `"sitewise"` (asymmetric pseudo-likelihood only): the same objective, minimum and
      stopping rule, but the objective is a sum of N independent (multinomial) logistic
      regressions, one per spin with parameters h_i and row i of J, so each spin gets its
      own Newton step from its own small closed-form Hessian (sum over samples of
      w (1 - tanh^2 f_i) x x^T, x = (1, s_j for j != i); Potts: the softmax covariance
      times the one-hot regressors' outer product): N Cholesky solves of size N (Potts:
      q^2 N) instead of one of size ~N^2 (Potts: ~q^2 N^2); ConIII's
      Pseudo solves the same per-spin problems one at a time with BFGS. `"adam"`: `n_steps`
      Adam updates of `train` (cosine-decayed learning rate). `"auto"` (default): for a
      smooth objective (`l1 = 0`, no `optimizer`), `"sitewise"` for the asymmetric
      pseudo-likelihood (when its largest arrays, N M c^2 K and N (c K)^2 floats with c = 1,
      K = N (Ising) or c = q, K = q N (Potts), stay below 2^26), else `"newton"` when small enough for a dense Hessian (at most 600
      free parameters; exact likelihood: parameters x q^N <= 2^22), else Adam.
    - `n_steps`: at most this many Newton iterations (default 100) or exactly this many Adam
      updates (default 2000).
    - `learning_rate`: initial Adam learning rate (Adam only).
    - `tol`: convergence threshold on the largest gradient component of the objective.
    - `init`: starting model (default `init_model(data)`, all zeros).
    - `optimizer`: an optax optimizer replacing the default Adam schedule (implies Adam).
    - `key`: PRNG key for `train` (the objectives are deterministic; default key 0).

    **Returns:** an `InverseFit(model, converged, grad_max, loss)`. `jax.vmap` it over stacked
    `SpinData`s (one compiled call for a batch of problems; vmapped Newton iterates until
    every problem has converged)."""


def fit_exact(data, *, mask=None, l1=0.0, l2=0.0, solver: str = "auto", n_steps=None,
              learning_rate=0.05, tol=1e-4, init=None, optimizer=None, key=None) -> InverseFit:
    return _fit("exact", data, mask=mask, l1=l1, l2=l2, symmetric=True, n_steps=n_steps,
                learning_rate=learning_rate, tol=tol, init=init, optimizer=optimizer, key=key,
                solver=solver)


def fit_pseudolikelihood(data, *, mask=None, l1=0.0, l2=0.0, symmetric: bool = False,
                         solver: str = "auto", n_steps=None, learning_rate=0.05, tol=1e-4,
                         init=None, optimizer=None, key=None) -> InverseFit:
    return _fit("pseudolikelihood", data, mask=mask, l1=l1, l2=l2, symmetric=bool(symmetric),
                n_steps=n_steps, learning_rate=learning_rate, tol=tol, init=init,
                optimizer=optimizer, key=key, solver=solver)


def fit_mpf(data, *, mask=None, l1=0.0, l2=0.0, solver: str = "auto", n_steps=None,
            learning_rate=0.05, tol=1e-4, init=None, optimizer=None, key=None) -> InverseFit:
    return _fit("mpf", data, mask=mask, l1=l1, l2=l2, symmetric=True, n_steps=n_steps,
                learning_rate=learning_rate, tol=tol, init=init, optimizer=optimizer, key=key,
                solver=solver)


fit_exact.__doc__ = (
    "Maximum-likelihood fit by exact enumeration (see `exact_likelihood`)." + _FIT_DOC
)
fit_pseudolikelihood.__doc__ = (
    "Pseudo-likelihood fit (see `pseudolikelihood`); asymmetric by default, the returned "
    "couplings symmetrised, $J = (J + J^\\top)/2$ (Potts: each row gauged to zero sum first), "
    "as ConIII's `Pseudo`; solved spin by spin by default (`solver='sitewise'`). With "
    "`symmetric=True` the estimator is a different one (one symmetric J in every "
    "conditional: the conditionals no longer decouple; joint Newton or Adam)."
    + _FIT_DOC.replace(
        "    - `solver`",
        "    - `symmetric`: fit one symmetric J in every conditional instead.\n    - `solver`",
    )
)
fit_mpf.__doc__ = "Minimum-probability-flow fit (see `mpf`)." + _FIT_DOC


__all__ = [
    "InverseFit",
    "exact_likelihood",
    "fit_exact",
    "fit_mpf",
    "fit_pseudolikelihood",
    "init_model",
    "model_moments",
    "mpf",
    "pseudolikelihood",
]
