r"""Random recurrent rate networks (Sompolinsky, Crisanti & Sommers, PRL 61, 259 (1988)).

$$\dot x_i = -x_i + \sum_j J_{ij}\,\phi(x_j) + I_i + \sigma\,\xi_i(t),\qquad
  J_{ij}\sim N(0, g^2/N),\quad \phi = \tanh,$$

with $\langle\xi_i(t)\xi_j(t')\rangle = \delta_{ij}\delta(t-t')$. For $N\to\infty$ and
$\sigma = I = 0$ the only attractor is the fixed point $x = 0$ for $g < 1$ and the dynamics is
chaotic for $g > 1$ (the dynamic mean-field theory is `diffphys.theory.rnn_dmft`).

This module holds the model, a fixed-step integrator as an `init`/`step` pair for
`diffphys.sampling.run` (RK4 or Heun for the deterministic part, an additive
Euler–Maruyama increment for the noise), the time-averaged autocorrelation of the activity,
and the Lyapunov spectrum by tangent dynamics (`jax.jvp` of the step map with QR
re-orthonormalisation: Benettin et al., Meccanica 15, 9 (1980); the method of Engelken, Wolf
& Abbott, arXiv 2006.02427).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError, check_positive
from .._types import Array, Float, Key
from ..sampling import SamplingAlgorithm, run

_METHODS = ("rk4", "heun", "euler")


class RandomRNN(eqx.Module):
    r"""A random rate network $\dot x = -x + J\tanh(x) + I$ (Sompolinsky–Crisanti–Sommers 1988).

    No key, no batch axis: draw the couplings with `RandomRNN.sample` and batch with
    `jax.vmap` / `ensemble.run`. Noise is a property of the integration
    (`rnn_integrator(sigma=...)`), not of the model.

    **Fields:**

    - `couplings`: the N x N matrix J (the gain g is inside: $J_{ij}\sim N(0, g^2/N)$ for a
      sampled network; self-couplings are kept, as in the 1988 model).
    - `inputs`: a constant external input $I$ of shape (N,) (zeros by default).
    """

    couplings: Float[Array, "n n"]
    inputs: Float[Array, " n"]

    def __init__(self, couplings, inputs=None):
        couplings = jnp.asarray(couplings)
        if couplings.ndim != 2 or couplings.shape[0] != couplings.shape[1]:
            raise ShapeError(
                f"RandomRNN needs a square (n, n) coupling matrix, got shape {couplings.shape}. "
                "Use RandomRNN.sample(key, n=..., g=...)."
            )
        if couplings.shape[0] < 2:
            raise ConfigError(f"RandomRNN needs n >= 2 units, got n = {couplings.shape[0]}.")
        if not jnp.issubdtype(couplings.dtype, jnp.floating):
            raise ConfigError(
                f"RandomRNN couplings must be a floating dtype, got {couplings.dtype}."
            )
        self.couplings = couplings
        if inputs is None:
            inputs = jnp.zeros(couplings.shape[0], couplings.dtype)
        inputs = jnp.asarray(inputs, couplings.dtype)
        if inputs.shape != (couplings.shape[0],):
            raise ShapeError(
                f"RandomRNN inputs must have shape ({couplings.shape[0]},), got {inputs.shape}."
            )
        self.inputs = inputs

    @classmethod
    def sample(cls, key: Key, *, n: int, g: float, inputs=None, dtype=jnp.float32) -> RandomRNN:
        r"""Draw $J_{ij}\sim N(0, g^2/N)$ i.i.d. (no symmetry, self-couplings included).

        **Arguments:**

        - `key`: PRNG key.
        - `n`: number of units (>= 2).
        - `g`: gain (> 0); the chaos transition of the noiseless network is at g = 1.
        - `inputs`: optional constant input of shape (n,).
        - `dtype`: floating dtype of the couplings.

        **Returns:** a `RandomRNN`.
        """
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 2:
            raise ConfigError(f"RandomRNN.sample needs an integer n >= 2, got n = {n!r}.")
        check_positive("g", g)
        j = jax.random.normal(key, (int(n), int(n)), dtype)
        return cls(j * (jnp.asarray(g, dtype) / jnp.sqrt(jnp.asarray(n, dtype))), inputs)

    @property
    def n(self) -> int:
        return int(self.couplings.shape[0])

    @property
    def dtype(self):
        return self.couplings.dtype

    def check_state(self, x) -> None:
        if not hasattr(x, "shape") or tuple(x.shape) != (self.n,):
            got = getattr(x, "shape", type(x).__name__)
            raise ShapeError(f"RandomRNN expects a state of shape ({self.n},), got {got}.")

    def random_state(self, *, key: Key, scale: float = 1.0) -> Float[Array, " n"]:
        """Initial condition $x_i\\sim N(0, \\mathrm{scale}^2)$."""
        return scale * jax.random.normal(key, (self.n,), self.dtype)

    def fields(self, x: Float[Array, " n"]) -> Float[Array, " n"]:
        r"""The recurrent input $h = J\phi(x)$."""
        return self.couplings @ jnp.tanh(x)

    def drift(self, x: Float[Array, " n"]) -> Float[Array, " n"]:
        r"""$f(x) = -x + J\tanh(x) + I$."""
        return -x + self.fields(x) + self.inputs

    def jacobian(self, x: Float[Array, " n"]) -> Float[Array, "n n"]:
        r"""$\partial f/\partial x = -\mathbb 1 + J\,\mathrm{diag}(1 - \tanh^2 x)$."""
        d = 1.0 - jnp.tanh(x) ** 2
        return self.couplings * d[None, :] - jnp.eye(self.n, dtype=self.dtype)


class RNNState(NamedTuple):
    """The network state: the N currents x."""

    x: Float[Array, " n"]


class RNNInfo(NamedTuple):
    """Diagnostics of one integration step of the network."""

    mean_square: Float[Array, ""]
    """$|x|^2/N$ after the step (NaN once the integration has diverged)."""


def _deterministic_step(model: RandomRNN, x, dt, method: str):
    f = model.drift
    if method == "euler":
        return x + dt * f(x)
    if method == "heun":
        k1 = f(x)
        k2 = f(x + dt * k1)
        return x + 0.5 * dt * (k1 + k2)
    k1 = f(x)
    k2 = f(x + 0.5 * dt * k1)
    k3 = f(x + 0.5 * dt * k2)
    k4 = f(x + dt * k3)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise ConfigError(f"method must be one of {_METHODS}, got {method!r}.")


def rnn_integrator(dt: float = 0.05, *, sigma: float = 0.0, method: str = "rk4"):
    r"""Fixed-step integrator of $\dot x = -x + J\tanh x + I + \sigma\xi$ as an `init`/`step` pair.

    $$x_{t+dt} = \Psi_{dt}\big(x_t + \sigma\sqrt{dt/2}\,\eta_t\big) + \sigma\sqrt{dt/2}\,\eta'_t,
      \qquad \eta_t, \eta'_t\sim N(0, \mathbb 1),$$

    with $\Psi_{dt}$ one step of classical RK4 (`"rk4"`, local error $O(dt^5)$), of Heun's
    method (`"heun"`) or of Euler's (`"euler"`) for the deterministic flow. The additive noise
    is split into two half kicks around the drift step (a symmetric splitting): for the
    Ornstein–Uhlenbeck process $\dot x = -x + \sigma\xi$ with the exact flow the stationary
    variance is $\tfrac{\sigma^2}{2}\,dt\coth dt = \tfrac{\sigma^2}2(1 + dt^2/3 + \dots)$, where
    one Euler–Maruyama kick after the step gives $\tfrac{\sigma^2}2(1 + dt + \dots)$ (derived
    here; tested). For $\sigma = 0$ no random numbers are drawn and RK4 is 4th order.
    Tanh saturates, so the exact dynamics stays bounded ($|x_i| \le |I_i| + \sum_j|J_{ij}|$
    asymptotically); a too large dt makes the scheme itself unstable (RK4 needs
    $dt(1 + g) \lesssim 2.8$): the state then becomes non-finite and `RNNInfo.mean_square` is
    NaN, which `simulate` turns into its `diverged` flag.

    **Arguments:**

    - `dt`: time step (> 0), overridable per step.
    - `sigma`: noise strength (>= 0), overridable per step only if the integrator was built
      with `sigma > 0` (0 compiles a noiseless step).
    - `method`: `"rk4"` (default), `"heun"` or `"euler"`.

    **Returns:** a `SamplingAlgorithm`; state `RNNState(x)`, info `RNNInfo(mean_square)`.
    """
    check_positive("dt", dt)
    _check_method(method)
    if not np.isfinite(sigma) or sigma < 0:
        raise ConfigError(f"sigma must be >= 0 and finite, got {sigma!r}.")
    noisy = float(sigma) > 0.0

    def init(x, model: RandomRNN) -> RNNState:
        x = jnp.asarray(x, model.dtype)
        model.check_state(x)
        return RNNState(x)

    def step(key, state: RNNState, model: RandomRNN, dt=dt, sigma=sigma):
        x = state.x
        if noisy:
            eta = jax.random.normal(key, (2,) + x.shape, x.dtype)
            kick = jnp.asarray(sigma, x.dtype) * jnp.sqrt(jnp.asarray(0.5 * dt, x.dtype))
            x = _deterministic_step(model, x + kick * eta[0], dt, method) + kick * eta[1]
        else:
            x = _deterministic_step(model, x, dt, method)
        return RNNState(x), RNNInfo(jnp.mean(x * x))

    return SamplingAlgorithm(init, step)


def _check_time(dt, t_burn, t_max, every_t=None):
    check_positive("dt", dt)
    check_positive("t_max", t_max)
    if not np.isfinite(t_burn) or t_burn < 0:
        raise ConfigError(f"t_burn must be >= 0 and finite, got {t_burn!r}.")
    if every_t is not None:
        check_positive("record_dt", every_t)
        if every_t < dt * (1 - 1e-9):
            raise ConfigError(f"record_dt = {every_t} must be >= dt = {dt}.")


def simulate_rnn(
    key: Key,
    model: RandomRNN,
    x0: Float[Array, " n"],
    *,
    dt: float,
    t_burn: float,
    t_max: float,
    record_dt: float,
    sigma: float = 0.0,
    method: str = "rk4",
    record=None,
):
    r"""Integrate the network and record the activity on a regular time grid.

    Burns in for `t_burn`, then records `record(x)` (default: x itself) every `record_dt` for a
    time `t_max` (`round(t_max / record_dt)` records, the first one `record_dt` after the
    burn-in). Both phases are `lax.scan`s through `diffphys.sampling.run`. Works under
    `jax.vmap` / `ensemble.run` with a batch of keys, models and initial states.

    **Arguments:**

    - `key`: PRNG key (only used if `sigma > 0`).
    - `model`, `x0`: the network and its initial state.
    - `dt`, `t_burn`, `t_max`, `record_dt`: step, burn-in time, recording time, interval.
    - `sigma`, `method`: as in `rnn_integrator`.
    - `record`: function of the state x to record (default: x).

    **Returns:** a dict with `"t"` (record times after the burn-in), `"record"` (stacked
    records) and `"diverged"` (bool: the state became non-finite).
    """
    _check_time(dt, t_burn, t_max, record_dt)
    every = max(1, round(record_dt / dt))
    n_rec = max(1, round(t_max / (every * dt)))
    alg = rnn_integrator(dt, sigma=sigma, method=method)
    k_burn, k_run = jax.random.split(key)
    state = alg.init(x0, model)
    n_burn = round(t_burn / dt)
    if n_burn > 0:
        state, _ = run(k_burn, alg, state, model, n_burn)
    rec = (lambda s: s.x) if record is None else (lambda s: record(s.x))
    state, trace = run(k_run, alg, state, model, every * n_rec, record=rec, every=every)
    diverged = jnp.logical_not(jnp.all(jnp.isfinite(state.x)))
    return {
        "t": np.arange(1, n_rec + 1) * every * dt,
        "record": trace["record"],
        "diverged": diverged,
    }


def autocorrelation(x: Float[Array, "T n"], max_lag: int) -> Float[Array, " lags"]:
    r"""Time- and population-averaged autocorrelation of a stationary trajectory.

    $$\hat C(k) = \frac1N\sum_i \frac1{T-k}\sum_{t=0}^{T-k-1} x_i(t)\,x_i(t+k),\qquad
      k = 0,\dots,\mathrm{max\_lag},$$

    without subtracting the temporal mean (the mean-field autocorrelation $\Delta(\tau)$ decays
    to 0). Computed by FFT (zero-padded, so it is the exact lagged sum).

    **Arguments:**

    - `x`: trajectory of shape (T, N) on a regular time grid.
    - `max_lag`: the largest lag (< T).

    **Returns:** $\hat C(k)$ for k = 0..max_lag.
    """
    n_t = x.shape[0]
    if not 0 <= max_lag < n_t:
        raise ConfigError(f"max_lag must be in [0, T) = [0, {n_t}), got {max_lag}.")
    size = 1 << int(np.ceil(np.log2(2 * n_t)))
    f = jnp.fft.rfft(x, n=size, axis=0)
    acf = jnp.fft.irfft(f * jnp.conj(f), n=size, axis=0)[: max_lag + 1]
    counts = jnp.arange(n_t, n_t - max_lag - 1, -1).astype(x.dtype)
    return jnp.mean(acf, axis=1) / counts


class LyapunovResult(NamedTuple):
    """The leading Lyapunov exponents of a trajectory, its final state and a divergence flag."""

    exponents: Float[Array, " k"]
    """The k largest Lyapunov exponents, in decreasing order (units of 1/time)."""
    x: Float[Array, " n"]
    """The final state."""
    diverged: Array
    """True if the trajectory or the tangent vectors became non-finite."""


def lyapunov_spectrum(
    model: RandomRNN,
    x0: Float[Array, " n"],
    *,
    k: int,
    dt: float,
    t_burn: float,
    t_max: float,
    t_ortho: float = 1.0,
    method: str = "rk4",
    key: Key | None = None,
) -> LyapunovResult:
    r"""The k largest Lyapunov exponents of the noiseless network by tangent dynamics.

    The step map $x\mapsto\Psi_{dt}(x)$ of `rnn_integrator` is linearised with `jax.jvp`
    (vmapped over k tangent vectors, so the N x N Jacobian is never formed); every `t_ortho`
    the tangent vectors $Q$ are re-orthonormalised, $Q \leftarrow QR$, and
    $\lambda_i = \frac{1}{t_{\max}}\sum \log|R_{ii}|$ (Benettin et al. 1980; Engelken, Wolf &
    Abbott, arXiv 2006.02427). These are the exponents of the discrete map, which converge to
    those of the flow as $O(dt^4)$ for RK4. For g < 1 and N -> oo the attractor is x = 0 and
    the exponents are the real parts of the eigenvalues of $-\mathbb 1 + J$, the largest
    $g - 1$ (circular law); the largest crosses 0 at the transition g = 1.

    **Arguments:**

    - `model`, `x0`: the network and the initial state.
    - `k`: number of exponents (1 <= k <= N).
    - `dt`, `t_burn`, `t_max`: step, burn-in before the tangent vectors start, averaging time.
    - `t_ortho`: time between QR re-orthonormalisations (rounded to whole steps).
    - `method`: the integrator's method.
    - `key`: key for the random initial tangent vectors (default: a fixed key).

    **Returns:** a `LyapunovResult(exponents, x, diverged)`.
    """
    _check_time(dt, t_burn, t_max, t_ortho)
    _check_method(method)
    if not isinstance(k, int | np.integer) or not 1 <= k <= model.n:
        raise ConfigError(f"k must be an integer in [1, N = {model.n}], got {k!r}.")
    model.check_state(x0)
    m = max(1, round(t_ortho / dt))
    n_blocks = max(1, round(t_max / (m * dt)))
    n_burn = round(t_burn / dt)
    key = jax.random.key(0) if key is None else key
    q0 = jnp.linalg.qr(jax.random.normal(key, (model.n, k), model.dtype))[0]
    exps, x = _lyapunov(model, jnp.asarray(x0, model.dtype), q0, dt, method, m, n_blocks, n_burn)
    diverged = jnp.logical_not(jnp.all(jnp.isfinite(exps)) & jnp.all(jnp.isfinite(x)))
    return LyapunovResult(exps / (n_blocks * m * dt), x, diverged)


@eqx.filter_jit
def _lyapunov(model, x0, q0, dt, method, m, n_blocks, n_burn):
    dt = jnp.asarray(dt, model.dtype)

    def flow(x):
        return _deterministic_step(model, x, dt, method)

    x = jax.lax.fori_loop(0, n_burn, lambda _, x: flow(x), x0)

    def tangent_step(carry, _):
        x, q = carry
        x_new, dq = jax.vmap(lambda v: jax.jvp(flow, (x,), (v,)), in_axes=1, out_axes=(None, 1))(q)
        return (x_new, dq), None

    def block(carry, _):
        (x, q), _ = jax.lax.scan(tangent_step, carry, None, length=m)
        q, r = jnp.linalg.qr(q)
        d = jnp.diagonal(r)
        q = q * jnp.sign(d)[None, :]
        return (x, q), jnp.log(jnp.abs(d))

    (x, _), logs = jax.lax.scan(block, (x, q0), None, length=n_blocks)
    return jnp.sum(logs, axis=0), x
