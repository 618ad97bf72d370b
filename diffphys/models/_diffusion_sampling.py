r"""Generating from a score: the reverse-time SDE (scan-based Euler–Maruyama) and the
probability-flow ODE (diffrax), with exact log-likelihoods by the instantaneous change of
variables.

Convention: the forward process is $dx = -x\,dt + \sqrt{2}\,dW$ (see `diffphys.models.
EmpiricalScore`); its time reversal, run from $t = T$ down to $t = 0$, is

$$-dx = \left[x + 2\, s(x, t)\right] dt + \sqrt{2}\, d\bar W_t,$$

(2402.18491, Eq. 2) and the probability-flow ODE with the same marginals is
$\dot x = -x - s(x, t)$ (Song et al., ICLR 2021).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError
from .._loop import record_times, scan_steps
from .._types import Array, Float, Key, RealScalar


def batched_score(score: Callable, x: Array, t) -> Array:
    """Apply a one-point `score(x, t)` to x of shape (d,) or (..., d) (vmapped)."""
    if x.ndim == 1:
        return score(x, t)
    flat = x.reshape(-1, x.shape[-1])
    return jax.vmap(score, in_axes=(0, None))(flat, t).reshape(x.shape)


def reverse_sde_step(key: Key, x: Array, t, dt, score: Callable) -> Array:
    r"""One Euler–Maruyama step of the reverse SDE from time t to t - dt.

    $$x_{t-dt} = x_t + dt\,[x_t + 2 s(x_t, t)] + \sqrt{2\,dt}\;\xi,\qquad \xi \sim N(0, I).$$
    """
    noise = jax.random.normal(key, x.shape, x.dtype)
    drift = x + 2.0 * batched_score(score, x, t)
    return x + dt * drift + jnp.sqrt(2.0 * dt) * noise


def reverse_sde(
    key: Key,
    score: Callable,
    x: Float[Array, "*batch d"],
    *,
    t_start: RealScalar,
    t_end: RealScalar,
    n_steps: int,
    record_at=None,
    record: Callable[[Array], object] | None = None,
):
    r"""Integrate the reverse-time SDE from `t_start` down to `t_end` with `n_steps` EM steps.

    The loop is one `lax.scan` (through the shared driver `diffphys._loop.scan_steps`), step k
    uses `fold_in(key, k)` and the time $t_k = t_{start} - k\, dt$, with
    $dt = (t_{start} - t_{end}) / n_{steps}$. The score is evaluated at the start of each step, so
    it is never called at `t_end` (use `t_end > 0` with the empirical score, whose variance
    $\Delta_t$ vanishes at t = 0).

    **Arguments:**

    - `key`: PRNG key.
    - `score`: `score(x, t)` on one point (an `EmpiricalScore`, `GaussianScore`, `ScoreMLP` ...).
    - `x`: initial points at `t_start`, shape (d,) or (batch, d) (typically N(0, I) for a large
      `t_start`).
    - `t_start`, `t_end`: times, `t_start > t_end >= 0`; they may be traced (e.g. vmapped over
      the split times of a cloning experiment), only `n_steps` is static.
    - `n_steps`: number of steps.
    - `record_at`: step counts after which to record (default: only the end).
    - `record`: `record(x) -> pytree` (default: x itself).

    **Returns:** `(x_end, records)`; `records` has a leading axis of length `len(record_at)`,
    and the times of the records are `t_start - record_at * dt`.
    """
    concrete = all(isinstance(v, int | float | np.number) for v in (t_start, t_end))
    if concrete and not t_start > t_end >= 0:
        raise ConfigError(f"need t_start > t_end >= 0, got t_start={t_start}, t_end={t_end}.")
    if int(n_steps) < 1:
        raise ConfigError(f"n_steps must be >= 1, got {n_steps}.")
    x = jnp.asarray(x)
    if x.ndim == 0:
        raise ShapeError("x must have a trailing dimension d: shape (d,) or (batch, d).")
    dtype = x.dtype
    t0 = jnp.asarray(t_start, dtype)
    dt = (t0 - jnp.asarray(t_end, dtype)) / int(n_steps)
    times = record_times(int(n_steps), None, record_at)
    record = (lambda y: y) if record is None else record

    def step(k, y, i):
        return reverse_sde_step(k, y, t0 - i.astype(dtype) * dt, dt, score), {}

    x_end, (records, _) = scan_steps(step, x, key, times, record, n_steps=int(n_steps))
    return x_end, records


def reverse_sde_times(t_start: float, t_end: float, n_steps: int, record_at) -> np.ndarray:
    """The diffusion times at which `reverse_sde` records, for given step counts."""
    dt = (float(t_start) - float(t_end)) / int(n_steps)
    return float(t_start) - np.asarray(record_at, dtype=np.float64) * dt


def _pf_drift(score):
    def f(t, x, args):
        return -x - score(x, t)

    return f


def probability_flow(
    score: Callable,
    x: Float[Array, "*batch d"],
    *,
    t_start: RealScalar,
    t_end: RealScalar,
    solver=None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
) -> Array:
    r"""Transport x from `t_start` to `t_end` along the probability-flow ODE $\dot x = -x - s(x, t)$.

    Deterministic; `t_end < t_start` generates (noise to data), `t_end > t_start` encodes. Solved
    by diffrax (`Tsit5` with a PID step-size controller by default), vmapped over the batch.

    **Returns:** the points at `t_end`, same shape as x.
    """
    import diffrax  # imported here: diffrax costs ~0.5 s at `import diffphys`

    x = jnp.asarray(x)
    solver = diffrax.Tsit5() if solver is None else solver
    term = diffrax.ODETerm(_pf_drift(score))
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    dt0 = (t_end - t_start) / 64

    def one(y0):
        sol = diffrax.diffeqsolve(
            term,
            solver,
            t_start,
            t_end,
            dt0,
            y0,
            stepsize_controller=controller,
            max_steps=max_steps,
        )
        return sol.ys[-1]

    if x.ndim == 1:
        return one(x)
    return jax.vmap(one)(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def _standard_normal_log_density(x, t):
    d = x.shape[-1]
    return -0.5 * jnp.sum(x**2) - 0.5 * d * jnp.log(2 * jnp.pi)


def log_likelihood(
    score: Callable,
    x: Float[Array, "*batch d"],
    *,
    t0: float = 0.0,
    t1: float = 10.0,
    prior_log_density: Callable | None = None,
    key: Key | None = None,
    solver=None,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_steps: int = 4096,
) -> Float[Array, "*batch"]:
    r"""Log-density of the model defined by `score` at x, by the probability-flow ODE.

    Instantaneous change of variables (Chen et al. 2018; Song et al. 2021, App. D.2): along
    $\dot x = f(x, t) = -x - s(x, t)$,

    $$\log p_{t_0}(x(t_0)) = \log p_{t_1}(x(t_1)) + \int_{t_0}^{t_1} \nabla\cdot f(x(t), t)\, dt.$$

    The ODE is integrated forward from $x(t_0) = x$ together with the divergence integral. With
    `key=None` the divergence is exact (trace of the Jacobian, d forward-mode passes: right for
    small d); with a key it is Hutchinson's estimate with one Rademacher probe per point.

    **Arguments:**

    - `score`: `score(x, t)` on one point.
    - `x`: points, shape (d,) or (batch, d).
    - `t0`, `t1`: start (data) and end (prior) times.
    - `prior_log_density`: `log p_{t1}(y, t1)`; default the standard normal $N(0, I)$, exact up
      to $O(e^{-2 t_1})$ for data of unit scale.
    - `key`: PRNG key for the Hutchinson estimator, or `None` for the exact divergence.

    **Returns:** the log-likelihoods, shape `x.shape[:-1]`.
    """
    if not t1 > t0 >= 0:
        raise ConfigError(f"need t1 > t0 >= 0, got t0={t0}, t1={t1}.")
    import diffrax

    x = jnp.asarray(x)
    prior = _standard_normal_log_density if prior_log_density is None else prior_log_density
    solver = diffrax.Tsit5() if solver is None else solver
    f = _pf_drift(score)
    controller = diffrax.PIDController(rtol=rtol, atol=atol)

    def one(y0, probe):
        def aug(t, state, args):
            y, _ = state
            if probe is None:
                div = jnp.trace(jax.jacfwd(lambda z: f(t, z, None))(y))
            else:
                out, jvp = jax.jvp(lambda z: f(t, z, None), (y,), (probe,))
                div = jnp.vdot(probe, jvp)
                del out
            return f(t, y, None), div

        state0 = (y0, jnp.zeros((), y0.dtype))
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(aug),
            solver,
            t0,
            t1,
            (t1 - t0) / 64,
            state0,
            stepsize_controller=controller,
            max_steps=max_steps,
        )
        y1, integral = sol.ys[0][-1], sol.ys[1][-1]
        return prior(y1, jnp.asarray(t1, y1.dtype)) + integral

    flat = x.reshape(-1, x.shape[-1])
    if key is None:
        out = jax.vmap(lambda y: one(y, None))(flat)
    else:
        probes = jax.random.rademacher(key, flat.shape, flat.dtype)
        out = jax.vmap(one)(flat, probes)
    return out.reshape(x.shape[:-1])
