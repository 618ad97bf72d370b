r"""Dynamical mean-field theory of spherical p-spin Langevin dynamics.

Convention (Cugliandolo & Kurchan, PRL 71, 173 (1993); Crisanti, Horner & Sommers 1993):
$H = -\sum_{i_1<\dots<i_p} J s\cdots s$ with $\overline{J^2} = p!/(2N^{p-1})$, i.e. the
covariance $\overline{H(s)H(s')} = N f(s\cdot s'/N)$ with $f(q) = q^p/2$; Langevin dynamics
$\dot s_i = -\partial_i H - z(t) s_i + \xi_i$ at temperature T from a random initial condition
on the sphere (an infinite-temperature quench). For $t > t'$, as $N \to \infty$,

$$\partial_t C(t,t') = -z(t) C(t,t') + \int_0^t\! ds\, f''(C(t,s)) R(t,s) C(s,t')
    + \int_0^{t'}\! ds\, f'(C(t,s)) R(t',s),$$
$$\partial_t R(t,t') = -z(t) R(t,t') + \int_{t'}^t\! ds\, f''(C(t,s)) R(t,s) R(s,t'),$$
$$z(t) = T + p\int_0^t\! ds\, f'(C(t,s)) R(t,s),\qquad C(t,t) = 1,\quad R(t^+,t) = 1,$$

and the energy per spin is $e(t) = (T - z(t))/p$.

For p = 2 (spherical SK) the dynamics is solved exactly in the eigenbasis of J: every mode
$\lambda$ (semicircle density on [-2, 2]) is an Ornstein–Uhlenbeck process with the common
$z(t)$, and with $\Gamma(t) = e^{2\int_0^t z}$ and $F(u) = \int\rho(\lambda)e^{\lambda u}d\lambda
= I_1(2u)/u$ the constraint becomes the linear Volterra equation
$\Gamma(t) = F(2t) + 2T\int_0^t \Gamma(s) F(2t-2s)\,ds$ (Cugliandolo & Dean, J. Phys. A 28,
4213 (1995)); then $C(t,t') = [F(t+t') + 2T\int_0^{t'}\Gamma(s)F(t+t'-2s)ds]/
\sqrt{\Gamma(t)\Gamma(t')}$ and $R(t,t') = \sqrt{\Gamma(t')/\Gamma(t)}\,F(t-t')$.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from .._errors import ConfigError, check_positive


class DMFTSolution(NamedTuple):
    """Two-time solution on a uniform grid `t[i] = i * dt`.

    - `t`: times, shape (n,).
    - `C`: correlation C(t_i, t_j), shape (n, n), symmetric.
    - `R`: response R(t_i, t_j) for j <= i (zero above the diagonal), shape (n, n).
    - `z`: Lagrange multiplier z(t_i), shape (n,).
    - `energy`: energy per spin e(t_i), shape (n,).
    """

    t: np.ndarray
    C: np.ndarray
    R: np.ndarray
    z: np.ndarray
    energy: np.ndarray


def dynamical_temperature(p: int) -> float:
    r"""$T_d$ of the spherical p-spin model with $f(q) = q^p/2$ (Crisanti–Horner–Sommers 1993):
    $T_d^2 = p(p-2)^{p-2} / (2(p-1)^{p-1})$; $T_d = \sqrt{3/8}$ for p = 3. For p = 2 this is
    the static transition $T_c = 1$."""
    if p == 2:
        return 1.0
    return math.sqrt(p * (p - 2) ** (p - 2) / (2.0 * (p - 1) ** (p - 1)))


def spherical_sk_equilibrium_energy(T) -> np.ndarray | float:
    r"""Equilibrium energy per spin of the spherical SK model ($J_{ij}\sim N(0,1/N)$), N -> inf.

    Kosterlitz, Thouless & Jones, PRL 36, 1217 (1976), in this normalisation:
    $e = -1/(2T)$ for $T \ge 1$ and $e = -1 + T/2$ for $T < 1$. Derivation: with the spectrum
    of J the semicircle on [-2, 2] and $\langle s_\lambda^2\rangle = T/(z-\lambda)$, the
    constraint $T\,G(z) = 1$ ($G$ the Stieltjes transform) gives $z = T + 1/T$ above $T_c$;
    below, $z = 2$ and a fraction $1 - T$ condenses on $\lambda = 2$, so
    $e = -\tfrac12[2(1-T) + T\int\rho\,\lambda/(2-\lambda)] = -1 + T/2$.
    """
    T = np.asarray(T, dtype=np.float64)
    return np.where(T >= 1.0, -0.5 / np.maximum(T, 1e-300), -1.0 + 0.5 * T)


# -- the Cugliandolo-Kurchan integrator ----------------------------------------------------


def _row_derivatives(C, R, i, h, T, p):
    """d/dt of row i of C and R (entries j <= i) and z(t_i), by the trapezoidal rule."""
    m = C.shape[0]
    k = jnp.arange(m)
    dtype = C.dtype
    c_row = C[i]
    r_row = R[i]
    below = k <= i
    # f'(C) = p C^{p-1}/2, f''(C) = p(p-1) C^{p-2}/2
    fp = 0.5 * p * c_row ** (p - 1)
    fpp = 0.5 * p * (p - 1) * c_row ** (p - 2)
    a = jnp.where(below, fpp * r_row, jnp.zeros((), dtype))
    fp = jnp.where(below, fp, jnp.zeros((), dtype))
    hh = jnp.asarray(h, dtype)
    half = 0.5 * hh
    w = jnp.where(below, hh, jnp.zeros((), dtype))
    w = w.at[0].add(-half).at[i].add(-half)  # trapezoid on [0, t_i] (all zero when i = 0)
    z = T + p * jnp.sum(w * fp * r_row)
    # int_0^{t_i} f''(C(t_i,s)) R(t_i,s) C(s,t_j) ds
    i1 = (w * a) @ C
    # int_0^{t_j} f'(C(t_i,s)) R(t_j,s) ds  (trapezoid on [0, t_j]; R is lower triangular)
    diag_r = jnp.diagonal(R)
    i2 = R @ (hh * fp) - half * fp[0] * R[:, 0] - half * fp * diag_r
    # int_{t_j}^{t_i} f''(C(t_i,s)) R(t_i,s) R(s,t_j) ds  (trapezoid on [t_j, t_i])
    i3 = (hh * a) @ R - half * a * diag_r - half * a[i] * r_row
    dc = -z * c_row + i1 + i2
    dr = -z * r_row + i3
    zero = jnp.zeros((), dtype)
    return jnp.where(below, dc, zero), jnp.where(below, dr, zero), z


def _set_row(C, R, i, c_row, r_row, symmetric_c=True):
    C = jax.lax.dynamic_update_slice(C, c_row[None, :], (i, 0))
    if symmetric_c:
        C = jax.lax.dynamic_update_slice(C, c_row[:, None], (0, i))
    R = jax.lax.dynamic_update_slice(R, r_row[None, :], (i, 0))
    return C, R


def cugliandolo_kurchan(
    p: int, T: float, t_max: float, dt: float = 0.1, *, dtype=jnp.float32
) -> DMFTSolution:
    r"""Integrate the Cugliandolo–Kurchan equations of the spherical p-spin model.

    Algorithm: a uniform two-time grid $t_i = i\,dt$, $i = 0..n$; the rows $C(t_{i+1},
    t_j)$, $R(t_{i+1}, t_j)$, $j \le i$, are advanced from row i by Heun's predictor–corrector
    (explicit Euler predictor, trapezoidal corrector), with every memory integral evaluated by
    the trapezoidal rule; $C(t_i,t_i) = 1$ and $R(t_i^+, t_i) = 1$ (Itô). Global error
    $O(dt^2)$. Each step is six matrix–vector products with the full (n, n) arrays inside one
    `lax.fori_loop`: memory $2 n^2$ floats, work $O(n^3)$ (see `benchmarks/dmft_scaling.py`).

    **Arguments:**

    - `p`: interaction order (p >= 2; p = 2 is the spherical SK model).
    - `T`: temperature.
    - `t_max`, `dt`: final time and step; n = round(t_max/dt) + 1 grid points. dt <= 0.1 is
      accurate to ~1e-3 on C for p = 2 at t <= 100 (checked against the exact solution in
      `tests/test_dmft.py`); for p = 3 below T_d the energy at dt = 0.1 is ~1e-2 low by
      t ~ 100-200: use dt <= 0.05, or `cugliandolo_kurchan_decimated` for long times.
    - `dtype`: float32 (default) or float64 (needs `jax_enable_x64`).

    **Returns:** a `DMFTSolution` (NumPy arrays).
    """
    n = _grid_points(p, T, t_max, dt)
    C, R, z = _ck_solve(int(p), float(T), float(dt), n, jnp.dtype(dtype))
    C = np.asarray(C)
    R = np.asarray(R)
    z = np.asarray(z)
    t = np.arange(n) * dt
    return DMFTSolution(t, C, np.tril(R), z, (T - z) / p)


def _grid_points(p, T, t_max, dt) -> int:
    """Checked arguments of a uniform-grid DMFT integrator; the number of grid points."""
    if int(p) != p or p < 2:
        raise ConfigError(f"p must be an integer >= 2, got {p}.")
    check_positive("T", T)
    check_positive("dt", dt)
    check_positive("t_max", t_max)
    n = int(round(t_max / dt)) + 1
    if n < 2:
        raise ConfigError(f"t_max={t_max} is shorter than one step dt={dt}.")
    return n


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _ck_solve(p, T, h, n, dtype):
    """Compiled once per (p, n, dtype); T and dt are traced, so sweeps reuse the executable."""
    T = jnp.asarray(T, dtype)
    C = jnp.zeros((n, n), dtype).at[0, 0].set(1.0)
    R = jnp.zeros((n, n), dtype).at[0, 0].set(1.0)
    z = jnp.zeros((n,), dtype)
    k = jnp.arange(n)
    one = jnp.ones((), dtype)
    hh = jnp.asarray(h, dtype)

    def body(i, carry):
        C, R, z = carry
        dc0, dr0, zi = _row_derivatives(C, R, i, hh, T, p)
        z = z.at[i].set(zi)
        c_old, r_old = C[i], R[i]
        diag = k == i + 1
        c_pred = jnp.where(diag, one, c_old + hh * dc0)
        r_pred = jnp.where(diag, one, r_old + hh * dr0)
        Cp, Rp = _set_row(C, R, i + 1, c_pred, r_pred)
        dc1, dr1, _ = _row_derivatives(Cp, Rp, i + 1, hh, T, p)
        below = k <= i
        zero = jnp.zeros((), dtype)
        c_new = jnp.where(diag, one, jnp.where(below, c_old + 0.5 * hh * (dc0 + dc1), zero))
        r_new = jnp.where(diag, one, jnp.where(below, r_old + 0.5 * hh * (dr0 + dr1), zero))
        C, R = _set_row(C, R, i + 1, c_new, r_new)
        return C, R, z

    C, R, z = jax.lax.fori_loop(0, n - 1, body, (C, R, z))
    _, _, z_last = _row_derivatives(C, R, n - 1, hh, T, p)
    return C, R, z.at[n - 1].set(z_last)


def two_time(sol: DMFTSolution, t_w, t) -> tuple[np.ndarray, np.ndarray]:
    """C(t, t_w) and R(t, t_w) of a `DMFTSolution` at arbitrary times, by bilinear interpolation.

    `t_w` and `t` broadcast against each other (e.g. `t_w[:, None]`, `t[None, :]`); entries with
    t < t_w are returned as C(t_w, t) (symmetric) and R = 0.
    """
    t_w, t = np.broadcast_arrays(np.asarray(t_w, float), np.asarray(t, float))
    dt = sol.t[1] - sol.t[0]
    if np.max(t) > sol.t[-1] + 1e-9 or np.min(t_w) < 0:
        raise ConfigError(f"times must lie in [0, {sol.t[-1]}], got up to {np.max(t)}.")
    hi, lo = np.maximum(t, t_w), np.minimum(t, t_w)
    return (
        _bilinear(sol.C, hi / dt, lo / dt),
        np.where(t >= t_w, _bilinear(sol.R, hi / dt, lo / dt), 0.0),
    )


def _bilinear(a, x, y):
    n = a.shape[0]
    x0 = np.clip(np.floor(x).astype(int), 0, n - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, n - 2)
    fx, fy = x - x0, y - y0
    return (
        a[x0, y0] * (1 - fx) * (1 - fy)
        + a[x0 + 1, y0] * fx * (1 - fy)
        + a[x0, y0 + 1] * (1 - fx) * fy
        + a[x0 + 1, y0 + 1] * fx * fy
    )


# -- exact p = 2 solution ------------------------------------------------------------------


def _f_scaled(u, c=2.0):
    """e^{-cu} F(u), F(u) = int rho(l) e^{l u} dl = I_1(2u)/u for the semicircle on [-2, 2]."""
    u = np.asarray(u, dtype=np.float64)
    return np.exp((2.0 - c) * u) * _f_tilde(u)


def _f_tilde(u):
    u = np.asarray(u, dtype=np.float64)
    safe = np.where(u < 1e-4, 1.0, u)
    small = np.exp(-2 * u) * (1 + u**2 / 2 + u**4 / 12)
    return np.where(u < 1e-4, small, special.ive(1, 2 * safe) / safe)


def _fprime_scaled(u, c=2.0):
    """e^{-cu} F'(u) = e^{-cu} int rho(l) l e^{l u} dl."""
    u = np.asarray(u, dtype=np.float64)
    return np.exp((2.0 - c) * u) * _fprime_tilde(u)


def _fprime_tilde(u):
    u = np.asarray(u, dtype=np.float64)
    safe = np.where(u < 1e-4, 1.0, u)
    small = np.exp(-2 * u) * (u + u**3 / 3)
    big = (2 * safe * special.ive(0, 2 * safe) - 2 * special.ive(1, 2 * safe)) / safe**2
    return np.where(u < 1e-4, small, big)


class SphericalSKExact(NamedTuple):
    """Exact N -> inf dynamics of the spherical SK model after a quench from T = inf.

    - `t`: the grid on which Gamma was solved.
    - `gamma`: scaled $\\hat\\Gamma(t) = e^{-2ct}\\Gamma(t)$, c = max(2, T + 1/T) the
      long-time z (so that it neither overflows nor underflows).
    - `energy`, `z`: energy per spin and Lagrange multiplier on `t`.
    - `T`: temperature.
    """

    t: np.ndarray
    gamma: np.ndarray
    energy: np.ndarray
    z: np.ndarray
    T: float
    c: float

    def correlation(self, t, t_w) -> np.ndarray | float:
        r"""C(t, t_w) for t >= t_w (broadcasting), $[F(t+t_w) + 2T\int_0^{t_w}\Gamma(s)
        F(t+t_w-2s)ds]/\sqrt{\Gamma(t)\Gamma(t_w)}$ (trapezoid on the solver grid)."""
        t, t_w = np.broadcast_arrays(np.asarray(t, float), np.asarray(t_w, float))
        if np.any(t < t_w - 1e-12):
            raise ConfigError("correlation(t, t_w) needs t >= t_w.")
        h = self.t[1] - self.t[0]
        out = np.empty(t.shape)
        for idx in np.ndindex(t.shape):
            tt, tw = t[idx], t_w[idx]
            kw = int(round(tw / h))
            s = self.t[: kw + 1]
            g = _f_scaled(tt + tw - 2 * s, self.c) * self.gamma[: kw + 1]
            integral = h * (g.sum() - 0.5 * (g[0] + g[-1])) if kw > 0 else 0.0
            num = _f_scaled(tt + tw, self.c) + 2 * self.T * integral
            out[idx] = num / np.sqrt(self._gamma_at(tt) * self._gamma_at(tw))
        return out

    def response(self, t, t_w) -> np.ndarray | float:
        r"""R(t, t_w) = $\sqrt{\Gamma(t_w)/\Gamma(t)}\,F(t - t_w)$ for t >= t_w."""
        t, t_w = np.broadcast_arrays(np.asarray(t, float), np.asarray(t_w, float))
        return np.sqrt(self._gamma_at(t_w) / self._gamma_at(t)) * _f_scaled(t - t_w, self.c)

    def _gamma_at(self, t):
        return np.interp(t, self.t, self.gamma)


def spherical_sk_exact(T: float, t_max: float, dt: float = 0.05) -> SphericalSKExact:
    r"""Exact dynamics of the spherical SK model (p = 2) in the thermodynamic limit.

    Solves the Volterra equation $\hat\Gamma(t) = \hat F(2t) + 2T\int_0^t\hat\Gamma(s)
    \hat F(2t-2s)ds$ (scaled by $e^{-2ct}$, $\hat F(u) = e^{-cu}I_1(2u)/u$, c = max(2, T+1/T))
    by the trapezoidal rule, O((t_max/dt)^2) work (Cugliandolo & Dean 1995). The energy is
    $e(t) = -\tfrac12\int\rho\,\lambda\,Q_\lambda(t) = -\tfrac12[\tilde F'(2t) + 2T\int_0^t
    \tilde\Gamma(s)\tilde F'(2t-2s)ds]/\tilde\Gamma(t)$ and $z = T - 2e$.

    **Arguments:**

    - `T`: temperature (any T > 0; $T_c = 1$).
    - `t_max`, `dt`: the grid; the trapezoid error is O(dt^2) but enters the growth rate of
      $\Gamma$, so it accumulates in time: use dt <= 0.02 and t_max <~ 200 (checked to 2e-4
      against the eigenmode solution). For longer times use
      `nonreciprocal_sk_dynamics(T, 0.0, 0.0, ...)`, the eigenmode solution of the same model.

    **Returns:** a `SphericalSKExact` with `.correlation(t, t_w)`, `.response(t, t_w)`.
    """
    check_positive("T", T)
    check_positive("dt", dt)
    n = int(round(t_max / dt)) + 1
    t = np.arange(n) * dt
    c = max(2.0, T + 1.0 / T)
    fk = _f_scaled(2 * t, c)  # F^(2 (t_n - t_k)) depends on n - k only
    gk = _fprime_scaled(2 * t, c)
    gamma = np.empty(n)
    gamma[0] = 1.0
    energy = np.empty(n)
    energy[0] = 0.0
    for m in range(1, n):
        conv = fk[m:0:-1] @ gamma[:m] - 0.5 * fk[m] * gamma[0]  # k = 0..m-1 with half at k=0
        gamma[m] = (fk[m] + 2 * T * dt * conv) / (1.0 - T * dt * fk[0])
    for m in range(n):
        if m == 0:
            continue
        w = gk[m::-1] * gamma[: m + 1]
        conv = w.sum() - 0.5 * (w[0] + w[-1])
        energy[m] = -0.5 * (gk[m] + 2 * T * dt * conv) / gamma[m]
    return SphericalSKExact(t, gamma, energy, T - 2 * energy, float(T), c)
