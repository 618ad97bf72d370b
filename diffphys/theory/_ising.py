"""Exact results for the 2D Ising ferromagnet on the infinite square lattice (J = 1, h = 0), and
the high-temperature series of the simple-cubic (3D) Ising susceptibility."""

from __future__ import annotations

import numpy as np
from scipy import integrate, special

T_C = 2.0 / np.log(1.0 + np.sqrt(2.0))

# Simple-cubic Ising critical coupling beta_c J (Ferrenberg, Xu, Landau, PRE 97, 043301 (2018):
# 0.221654626(5)).
BETA_C_3D = 0.2216546

# High-temperature series of the reduced susceptibility of the spin-1/2 simple-cubic Ising model,
# chi = sum_j <s_0 s_j> = sum_n a_n v^n, v = tanh(beta J): OEIS A002913, from P. Butera and
# M. Comi, Phys. Rev. B 62, 14837 (2000) (through v^23) and M. Campostrini, A. Pelissetto,
# P. Rossi, E. Vicari, Phys. Rev. E 65, 066127 (2002) (through v^25); quoted through v^16.
SC_SUSCEPTIBILITY_SERIES = (
    1, 6, 30, 150, 726, 3510, 16710, 79494, 375174, 1769686, 8306862, 38975286, 182265822,
    852063558, 3973784886, 18527532310, 86228667894,
)


def _k(beta):
    return 2.0 * np.sinh(2.0 * beta) / np.cosh(2.0 * beta) ** 2


def onsager_energy(T, J: float = 1.0) -> np.ndarray | float:
    r"""Internal energy per spin (Onsager 1944):

    $$u = -J \coth(2\beta J)\Big[1 + \tfrac{2}{\pi}\big(2\tanh^2(2\beta J) - 1\big) K(k^2)\Big],
    \quad k = \frac{2\sinh 2\beta J}{\cosh^2 2\beta J},$$

    with K the complete elliptic integral of the first kind (parameter $m = k^2$).
    """
    T = np.asarray(T, dtype=np.float64)
    b = J / T
    k = _k(b)
    K = special.ellipk(np.minimum(k**2, 1.0 - 1e-16))
    return -J / np.tanh(2 * b) * (1 + 2 / np.pi * (2 * np.tanh(2 * b) ** 2 - 1) * K)


def onsager_free_energy(T, J: float = 1.0) -> np.ndarray | float:
    r"""Free energy per spin f, from
    $-\beta f = \ln(2\cosh 2\beta J) + \frac1\pi\int_0^{\pi/2}\ln\frac{1+\sqrt{1-k^2\sin^2\theta}}{2}d\theta$."""
    T = np.atleast_1d(np.asarray(T, dtype=np.float64))
    out = []
    for t in T:
        b = J / t
        k = _k(b)
        val, _ = integrate.quad(
            lambda th: np.log((1 + np.sqrt(max(1 - k**2 * np.sin(th) ** 2, 0.0))) / 2),
            0,
            np.pi / 2,
        )
        out.append(-(np.log(2 * np.cosh(2 * b)) + val / np.pi) * t)
    return np.asarray(out).reshape(np.shape(np.asarray(T)))


def yang_magnetization(T, J: float = 1.0) -> np.ndarray | float:
    r"""Spontaneous magnetisation (Onsager 1949, Yang 1952): $m = (1 - \sinh^{-4} 2\beta J)^{1/8}$
    below $T_c = 2J/\ln(1+\sqrt2)$, zero above."""
    T = np.asarray(T, dtype=np.float64)
    x = 1.0 - np.sinh(2 * J / T) ** -4.0
    return np.where(x > 0, np.abs(x) ** 0.125, 0.0)


def ising3d_susceptibility_series(beta_J, *, order: int = 16) -> np.ndarray | float:
    r"""High-temperature series of the simple-cubic Ising susceptibility (infinite lattice).

    $$\chi = \sum_j \langle s_0 s_j\rangle = \sum_{n=0}^{\rm order} a_n v^n,\qquad
    v = \tanh(\beta J),$$

    $a_n$ = 1, 6, 30, 150, 726, 3510, 16710, 79494, ... (OEIS A002913; Butera & Comi,
    Phys. Rev. B 62, 14837 (2000); Campostrini et al., Phys. Rev. E 65, 066127 (2002)). This is
    the reduced susceptibility $k_B T\chi = N\langle m^2\rangle$ of the paramagnet (zero
    field). The series converges for $v < v_c = \tanh\beta_c J \approx 0.2181$; the ratio
    $a_{n+1}/a_n \approx 4.7$ sets the truncation error, about $a_{n+1}v^{n+1}/(1 - 4.7 v)$:
    through $v^{16}$, below 0.3% at $\beta J = 0.15$, about 5% at 0.18, and the series is
    useless near $\beta_c J = 0.2216546$.
    On a periodic $L^3$ lattice the coefficients agree with these up to order $L - 1$.

    **Arguments:**

    - `beta_J`: the coupling in units of $k_B T$ (array-like, $\ge 0$).
    - `order`: highest power of v kept, 0 to 16.

    **Returns:** $\chi$ as a float64 array of the shape of `beta_J`.
    """
    from .._errors import ConfigError

    if int(order) != order or not 0 <= order < len(SC_SUSCEPTIBILITY_SERIES):
        raise ConfigError(
            f"order must be an integer in [0, {len(SC_SUSCEPTIBILITY_SERIES) - 1}], got {order!r}."
        )
    k = np.asarray(beta_J, dtype=np.float64)
    if np.any(k < 0):
        raise ConfigError("beta_J must be >= 0 (the series is for the ferromagnet).")
    v = np.tanh(k)
    out = np.zeros_like(v)
    for a in reversed(SC_SUSCEPTIBILITY_SERIES[: int(order) + 1]):
        out = out * v + float(a)
    return out
