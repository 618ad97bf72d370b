r"""Dynamic mean-field theory of random rate networks (Sompolinsky, Crisanti & Sommers 1988).

Model (`diffphys.models.RandomRNN`): $\dot x_i = -x_i + \sum_j J_{ij}\phi(x_j)$,
$J_{ij}\sim N(0, g^2/N)$, $\phi = \tanh$. For $N\to\infty$ each $x_i$ is a stationary Gaussian
process with autocorrelation $\Delta(\tau) = \langle x_i(t)x_i(t+\tau)\rangle$, driven by the
Gaussian field $h = J\phi(x)$ whose autocorrelation is $g^2 C_\phi(\Delta(\tau);\Delta_0)$,
$C_f(\Delta;\Delta_0) = \langle f(x)f(y)\rangle$ for x, y jointly Gaussian with variances
$\Delta_0$ and covariance $\Delta$. From $(1 - \partial_\tau^2)\Delta = g^2 C_\phi$ (SCS 1988):

$$\ddot\Delta = -\frac{\partial V}{\partial\Delta},\qquad
  V(\Delta;\Delta_0) = -\frac{\Delta^2}2 + g^2 C_\Phi(\Delta;\Delta_0),\qquad
  \Phi(x) = \int_0^x\phi = \log\cosh x,$$

using $\partial_\Delta C_\Phi = C_\phi$ (Price's theorem). The chaotic solution starts at rest
at $\Delta_0$ and reaches $\Delta = 0$ in infinite time, so energy conservation gives the
self-consistency condition for $\Delta_0$ (SCS):

$$\frac{\Delta_0^2}{2} = g^2\Big(\int Dz\,\Phi^2(\sqrt{\Delta_0}z)
   - \Big[\int Dz\,\Phi(\sqrt{\Delta_0}z)\Big]^2\Big),$$

nonzero only for g > 1. Quoted from SCS: the equation of motion, the potential and the
energy condition. Derived here (the paper states only the scaling):

- near the transition, with $\Phi(x) = x^2/2 - x^4/12 + O(x^6)$,
  $\mathrm{Var}\,\Phi(\sqrt{\Delta_0}z) = \Delta_0^2/2 - \Delta_0^3 + \frac83\Delta_0^4 + \dots$,
  hence $\Delta_0 = (g-1) + \frac76(g-1)^2 + O((g-1)^3)$: the coefficient of the linear
  onset is 1 (`rnn_delta0_threshold`);
- the exponential tail: for small $\Delta$, $V \approx V(0) - \kappa^2\Delta^2/2$ with
  $\kappa^2 = 1 - g^2\langle\phi'\rangle^2$, $\langle\phi'\rangle = \int Dz\,\phi'(\sqrt{\Delta_0}z)$
  ($\langle\phi\rangle = 0$ since $\phi$ is odd), so $\Delta(\tau)\propto e^{-\tau/\tau_c}$
  with decay time $\tau_c = 1/\kappa$ (`rnn_decay_time`); $\tau_c$ diverges as g -> 1+.

With white noise, $\dot x = -x + J\phi(x) + \sigma\xi$, quoted from Schuecker, Goedeke &
Helias (PRX 8, 041029 (2018)): $(1 - \partial_\tau^2)\Delta = g^2C_\phi + \sigma^2\delta(\tau)$.
Derived here from it: the $\delta$ is a kink $\dot\Delta(0^+) = -\sigma^2/2$, so the particle
starts at $\Delta_0$ with kinetic energy $\sigma^4/8$ and the energy condition becomes
$\Delta_0^2/2 = g^2\,\mathrm{Var}\,\Phi + \sigma^4/8$ (a nonzero $\Delta_0$ for every g); the
tail rate $\kappa$ is the same expression with the noisy $\Delta_0$.

Numerics: the Gaussian averages by the trapezoidal rule on a uniform grid of z in [-10, 10]
(a tensor product for the two-point averages, $x = \sqrt{\Delta_0-\Delta}\,u + \sqrt\Delta\,z$, $y = \sqrt{\Delta_0-\Delta}\,
v + \sqrt\Delta\,z$), the energy condition by `scipy.optimize.brentq`, and
$\tau(\Delta) = \int_\Delta^{\Delta_0} du/\sqrt{2[V(\Delta_0) - V(u)]}$ by quadrature on a grid
($u = \Delta_0 - s^2$ near the turning point, $u = e^v$ near 0, where the integrand is smooth),
inverted by cubic-spline interpolation; below $10^{-4}\Delta_0$ the exponential tail is used. The
trapezoidal rule converges exponentially for integrands analytic in a strip; Gauss–Hermite
converges slowly here because the singularities of log cosh at $\pm i\pi/2$ lie close to the
real axis in units of $\sqrt{\Delta_0}$: measured against a 241-node reference, 121
Gauss–Hermite nodes were off by 6e-3 in $\Delta(\tau)$ at g = 3, 101 trapezoid nodes by 4e-5.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from scipy import integrate, interpolate, optimize

from .._errors import ConfigError, check_positive


@functools.lru_cache(maxsize=8)
def _normal_rule(n: int):
    """Nodes and weights for the standard normal measure Dz: the trapezoidal rule on
    [-10, 10] (n nodes), normalised."""
    x = np.linspace(-10.0, 10.0, n)
    w = np.exp(-0.5 * x * x)
    return x, w / np.sum(w)


def _logcosh(x):
    ax = np.abs(x)
    return ax + np.log1p(np.exp(-2.0 * ax)) - np.log(2.0)


def _two_point(f, delta, delta0, n_quad: int):
    r"""$C_f(\Delta;\Delta_0) = \int Dz\,[\int Du\, f(\sqrt{\Delta_0-\Delta}u + \sqrt\Delta z)]^2$
    for $0 \le \Delta \le \Delta_0$ (vectorised over `delta`)."""
    x, w = _normal_rule(n_quad)
    delta = np.clip(np.asarray(delta, float), 0.0, delta0)
    a = np.sqrt(delta0 - delta)[..., None, None]
    b = np.sqrt(delta)[..., None, None]
    inner = np.sum(w * f(a * x[None, :] + b * x[:, None]), axis=-1)  # over u, per z
    return np.sum(w * inner**2, axis=-1)


def _gauss_mean(f, delta0, n_quad: int):
    x, w = _normal_rule(n_quad)
    return np.sum(w * f(np.sqrt(delta0) * x))


def _check_g(g):
    check_positive("g", g)


def _energy_gap(delta0, g, n_quad, sigma=0.0):
    r"""$[V(\Delta_0) + \sigma^4/8 - V(0)]/\Delta_0^2$ as a function of the trial $\Delta_0$."""
    x, w = _normal_rule(n_quad)
    phi = _logcosh(np.sqrt(delta0) * x)
    var = np.sum(w * (phi - np.sum(w * phi)) ** 2)
    return g * g * var / delta0**2 - 0.5 + sigma**4 / (8.0 * delta0**2)


def _check_sigma(sigma):
    if not np.isfinite(sigma) or sigma < 0:
        raise ConfigError(f"sigma must be >= 0 and finite, got {sigma!r}.")


def rnn_delta0(g, *, sigma: float = 0.0, n_quad: int = 401) -> np.ndarray | float:
    r"""The variance $\Delta_0 = \langle x_i^2\rangle$ of the SCS state (0 for g <= 1, sigma = 0).

    Solves $\Delta_0^2/2 = g^2\,\mathrm{Var}_z\,\log\cosh(\sqrt{\Delta_0}z) + \sigma^4/8$ (module
    docstring; SCS 1988, the noise term as in Schuecker, Goedeke & Helias, PRX 8, 041029
    (2018)) with `brentq`, written as $g^2\mathrm{Var}\,\Phi/\Delta_0^2 + \sigma^4/(8\Delta_0^2)
    - 1/2 = 0$, which is positive at $\Delta_0\to 0$ (if g > 1 or sigma > 0) and $\to -1/2$ as
    $\Delta_0\to\infty$ ($\mathrm{Var}\,\Phi \le \Delta_0$). For g -> 0 it gives the
    Ornstein–Uhlenbeck variance $\sigma^2/2$.

    **Arguments:**

    - `g`: gain(s) (> 0), scalar or array.
    - `sigma`: white-noise amplitude (>= 0).
    - `n_quad`: quadrature nodes for the Gaussian averages.

    **Returns:** $\Delta_0(g)$, same shape as `g`.
    """
    _check_g(g)
    _check_sigma(sigma)
    g_arr = np.asarray(g, float)
    out = np.zeros(g_arr.shape)
    for idx, gi in np.ndenumerate(g_arr):
        if gi <= 1.0 and sigma == 0:
            continue
        lo, hi = 1e-10, 1.0
        while _energy_gap(hi, gi, n_quad, sigma) > 0:
            hi *= 2.0
        out[idx] = optimize.brentq(
            _energy_gap, lo, hi, args=(gi, n_quad, sigma), xtol=1e-14, rtol=1e-13
        )
    return out if out.shape else float(out)


def rnn_delta0_threshold(g) -> np.ndarray | float:
    r"""Expansion of $\Delta_0$ near the transition (derived here, module docstring):
    $\Delta_0 = \epsilon + \tfrac76\epsilon^2 + O(\epsilon^3)$, $\epsilon = g - 1 > 0$; 0 for g <= 1.

    With $\mathrm{Var}\,\Phi(\sqrt{\Delta_0}z) = \Delta_0^2/2 - \Delta_0^3 + \tfrac83\Delta_0^4 +
    O(\Delta_0^5)$ (from $\log\cosh x = x^2/2 - x^4/12 + x^6/45 - \dots$ and the Gaussian
    moments), the energy condition $1/2 = g^2\,\mathrm{Var}\,\Phi/\Delta_0^2$ gives
    $\Delta_0 = \epsilon + (8/3 - 3/2)\epsilon^2$."""
    eps = np.maximum(np.asarray(g, float) - 1.0, 0.0)
    return eps + 7.0 / 6.0 * eps**2


def rnn_decay_time(g, *, sigma: float = 0.0, n_quad: int = 401) -> np.ndarray | float:
    r"""Exponential decay time of $\Delta(\tau)$: $\tau_c = (1 - g^2\langle\phi'\rangle^2)^{-1/2}$
    with $\langle\phi'\rangle = \int Dz\,\mathrm{sech}^2(\sqrt{\Delta_0}z)$ (derived here from the
    small-$\Delta$ expansion of the SCS potential). For g < 1 the fixed point x = 0 relaxes at
    rate $1 - g$ at the edge of the circular law; returned there is that relaxation time
    $1/(1-g)$ of the linearised network. Both diverge at g = 1. With noise (sigma > 0) the
    first formula holds for every g (with the noisy $\Delta_0$; the same expansion, since the
    energy is still $V(0)$) and the divergence at g = 1 is removed.

    **Returns:** $\tau_c(g)$, same shape as `g`.
    """
    _check_g(g)
    _check_sigma(sigma)
    g_arr = np.asarray(g, float)
    out = np.empty(g_arr.shape)
    for idx, gi in np.ndenumerate(g_arr):
        if gi < 1.0 and sigma == 0:
            out[idx] = 1.0 / (1.0 - gi)
        elif gi == 1.0 and sigma == 0:
            out[idx] = np.inf
        else:
            d0 = rnn_delta0(gi, sigma=sigma, n_quad=n_quad)
            dphi = _gauss_mean(lambda x: 1.0 / np.cosh(x) ** 2, d0, n_quad)
            out[idx] = 1.0 / np.sqrt(1.0 - (gi * dphi) ** 2)
    return out if out.shape else float(out)


class RNNDMFTSolution(NamedTuple):
    """The SCS mean-field solution at one gain g and noise amplitude sigma."""

    g: float
    delta0: float
    """$\\Delta_0 = \\Delta(0)$."""
    tau: np.ndarray
    """Uniform lag grid."""
    delta: np.ndarray
    """$\\Delta(\\tau)$ on `tau`: the autocorrelation of $x_i$."""
    field: np.ndarray
    """$g^2 C_\\phi(\\Delta(\\tau);\\Delta_0)$: the autocorrelation of $h_i = (J\\phi(x))_i$."""
    decay_time: float
    """$\\tau_c$ of the exponential tail (`rnn_decay_time`)."""
    half_time: float
    """The lag at which $\\Delta(\\tau) = \\Delta_0/2$."""
    sigma: float = 0.0
    """White-noise amplitude."""


def rnn_dmft(
    g: float,
    *,
    sigma: float = 0.0,
    tau_max: float = 20.0,
    dtau: float = 0.05,
    n_quad: int = 101,
    n_grid: int = 801,
) -> RNNDMFTSolution:
    r"""The self-consistent autocorrelation $\Delta(\tau)$ of the SCS state, with or without noise.

    $\Delta_0$ from the energy condition (`rnn_delta0`), then the motion of the particle in the
    potential $V(\Delta;\Delta_0)$ (module docstring) by the quadrature
    $\tau(\Delta) = \int_\Delta^{\Delta_0} du/\sqrt{2[E-V(u)]}$, $E = V(0)$. For sigma = 0,
    $E = V(\Delta_0)$ (the particle starts at rest); for g <= 1, $\Delta \equiv 0$ (the fixed
    point x = 0).

    With white noise, $\dot x = -x + J\phi(x) + \sigma\xi$, the equation of motion becomes
    $(1 - \partial_\tau^2)\Delta = g^2C_\phi + \sigma^2\delta(\tau)$ (Schuecker, Goedeke &
    Helias, PRX 8, 041029 (2018), quoted): for $\tau > 0$ the same particle motion, but the
    $\delta$ makes a kink, $\dot\Delta(0^+) = -\sigma^2/2$, so the particle starts with kinetic
    energy $\sigma^4/8$, and energy conservation with $\Delta(\infty) = 0$ gives
    $V(0) - V(\Delta_0) = \sigma^4/8$ (`rnn_delta0`). This holds for every g > 0; for g -> 0
    it is the Ornstein–Uhlenbeck $\Delta = \tfrac{\sigma^2}2e^{-\tau}$.

    **Arguments:**

    - `g`: gain (> 0).
    - `sigma`: white-noise amplitude (>= 0).
    - `tau_max`, `dtau`: the output lag grid $0, d\tau, \dots$ up to `tau_max`.
    - `n_quad`: quadrature nodes per dimension of the two-point averages.
    - `n_grid`: points of each of the two quadrature grids for $\tau(\Delta)$.

    **Returns:** an `RNNDMFTSolution`.
    """
    _check_g(g)
    _check_sigma(sigma)
    check_positive("tau_max", tau_max)
    check_positive("dtau", dtau)
    if n_grid < 11 or n_quad < 8:
        raise ConfigError(f"n_grid >= 11 and n_quad >= 8 needed, got {n_grid}, {n_quad}.")
    tau = np.arange(0.0, tau_max + 0.5 * dtau, dtau)
    g, sigma = float(g), float(sigma)
    if g <= 1.0 and sigma == 0:
        z = np.zeros_like(tau)
        return RNNDMFTSolution(g, 0.0, tau, z, z.copy(), rnn_decay_time(g), np.nan, sigma)
    d0 = float(rnn_delta0(g, sigma=sigma, n_quad=max(n_quad, 401)))
    g2 = g * g
    kick = sigma**4 / 8.0

    def kinetic(u):
        # E - V(u) = V(d0) + sigma^4/8 - V(u); C_Phi(d0; d0) by the same two-point rule so
        # that errors cancel
        c_top = _two_point(_logcosh, np.array([d0]), d0, n_quad)[0]
        return g2 * (c_top - _two_point(_logcosh, u, d0, n_quad)) - 0.5 * (d0**2 - u**2) + kick

    def dphi_top():  # V'(d0) = -d0 + g^2 <phi^2>
        return -d0 + g2 * _gauss_mean(lambda x: np.tanh(x) ** 2, d0, max(n_quad, 401))

    # piece A: u = d0 - s^2, s in [0, sqrt(d0/2)]; dtau = 2 s ds / sqrt(2 K)
    s = np.linspace(0.0, np.sqrt(0.5 * d0), n_grid)
    u_a = d0 - s**2
    k_a = kinetic(u_a[1:])
    f_a = np.empty_like(s)
    f_a[0] = 0.0 if kick > 0 else 2.0 / np.sqrt(2.0 * dphi_top())
    f_a[1:] = 2.0 * s[1:] / np.sqrt(2.0 * np.maximum(k_a, 1e-300))
    tau_a = integrate.cumulative_trapezoid(f_a, s, initial=0.0)
    # piece B: u = exp(v), v from log(d0/2) down to log(1e-4 d0); dtau = u dv / sqrt(2 K)
    v = np.linspace(np.log(0.5 * d0), np.log(1e-4 * d0), n_grid)
    u_b = np.exp(v)
    k_b = kinetic(u_b)
    f_b = u_b / np.sqrt(2.0 * np.maximum(k_b, 1e-300))
    tau_b = tau_a[-1] + integrate.cumulative_trapezoid(f_b, -v, initial=0.0)
    tau_u = np.concatenate([tau_a, tau_b[1:]])
    u = np.concatenate([u_a, u_b[1:]])
    tc = float(rnn_decay_time(g, sigma=sigma, n_quad=max(n_quad, 401)))
    delta = np.where(
        tau <= tau_u[-1],
        interpolate.CubicSpline(tau_u, u)(np.minimum(tau, tau_u[-1])),
        u[-1] * np.exp(-(tau - tau_u[-1]) / tc),
    )
    half = float(np.interp(0.5 * d0, u[::-1], tau_u[::-1]))
    field = g2 * _two_point(np.tanh, delta, d0, n_quad)
    return RNNDMFTSolution(g, d0, tau, delta, field, tc, half, sigma)
