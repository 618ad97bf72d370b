r"""Regimes of kernel density estimation in high dimension (Biroli & Mézard, arXiv 2408.05807).

Setting: Gaussian data $y_i \sim N(0, I_d)$, $n = e^{\alpha d}$ points, Gaussian kernel of
bandwidth h ($\hat\rho_h = \frac1n\sum_i N(x; y_i, h^2 I)$), evaluated at $x \sim N(0, I_d)$.

$\hat\rho_h(x)$ is the partition function of a random energy model: the "energies" are the
squared distances $r_i = |x - y_i|^2 / d$, the "temperature" is $h^2$. For fixed x with
$|x|^2/d = q$ ($q = 1$ for typical x), $r$ has the large-deviation rate function (Cramér, for
a non-central $\chi^2$)

$$I(r) = \sup_{\lambda < 1/2}\left[\lambda r + \tfrac12\log(1 - 2\lambda) - \frac{\lambda q}{1 - 2\lambda}\right],$$

in closed form with $s = 1/(1-2\lambda)$ solving $r = s + q s^2$. The closest of the $e^{\alpha d}$
points sits at $r_{min}(\alpha)$, $I(r_{min}) = \alpha$, and the tail index of the terms of the
sum at that edge is $\mu(h) = 2h^2 |I'(r_{min})| = h^2 (1/s_{min} - 1)$. The classical REM
analysis (and 2408.05807) gives three regimes:

- $\mu > 2$ ($h > h_{CLT}$): central limit theorem, $\log\hat\rho$ Gaussian;
- $1 < \mu < 2$ ($h_G < h < h_{CLT}$): heavy-tailed ($\mu$-stable) fluctuations, the annealed
  value still correct;
- $\mu < 1$ ($h < h_G$): extreme-value (condensed) regime, a few points carry the estimate,
  $E[Y_2] = 1 - \mu$ (Poisson–Dirichlet weights).

Hence $h_G^2 = s_{min}/(1 - s_{min})$ and $h_{CLT} = \sqrt2\, h_G$.
"""

from __future__ import annotations

import numpy as np

from .._errors import ConfigError


def _s_of_r(r, q):
    return (-1.0 + np.sqrt(1.0 + 4.0 * q * r)) / (2.0 * q)


def distance_rate_function(r, q: float = 1.0) -> np.ndarray | float:
    r"""$I(r)$: $P(|x - y|^2/d \approx r) \asymp e^{-d I(r)}$ for $y \sim N(0, I)$, $|x|^2 = q d$."""
    r = np.asarray(r, dtype=np.float64)
    s = _s_of_r(r, q)
    lam = 0.5 * (1.0 - 1.0 / s)
    return lam * r - 0.5 * np.log(s) - lam * q * s


def nearest_distance(alpha, q: float = 1.0) -> np.ndarray | float:
    r"""$r_{min}(\alpha)$: the squared distance per dimension to the nearest of $e^{\alpha d}$ points."""
    alpha = np.atleast_1d(np.asarray(alpha, dtype=np.float64))
    if np.any(alpha <= 0):
        raise ConfigError(f"alpha = log(n)/d must be positive, got {alpha}.")
    lo = np.full_like(alpha, 1e-12)
    hi = np.full_like(alpha, 1.0 + q)
    for _ in range(200):  # I decreases from +inf at r = 0 to 0 at the typical r = 1 + q
        mid = 0.5 * (lo + hi)
        above = distance_rate_function(mid, q) > alpha
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return 0.5 * (lo + hi)


def tail_index(h, alpha, q: float = 1.0) -> np.ndarray | float:
    r"""$\mu(h, \alpha) = h^2 (1/s_{min} - 1)$: the stable index of the KDE sum (see module doc)."""
    s = _s_of_r(nearest_distance(alpha, q), q)
    return np.asarray(h, dtype=np.float64) ** 2 * (1.0 / s - 1.0)


def h_glass(alpha, q: float = 1.0) -> np.ndarray | float:
    r"""$h_G(\alpha)$: below it the KDE is dominated by a few points ($\mu = 1$)."""
    s = _s_of_r(nearest_distance(alpha, q), q)
    return np.sqrt(s / (1.0 - s))


def h_clt(alpha, q: float = 1.0) -> np.ndarray | float:
    r"""$h_{CLT}(\alpha) = \sqrt2\, h_G(\alpha)$: below it the central limit theorem fails ($\mu = 2$)."""
    return np.sqrt(2.0) * h_glass(alpha, q)


def log_density_per_dim(h, alpha, q: float = 1.0) -> np.ndarray | float:
    r"""Typical $\frac1d\log\hat\rho_h(x)$ as $d \to \infty$.

    Above $h_G$: the annealed value $\frac1d\log N(x; 0, (1 + h^2) I) = -\frac12\log 2\pi(1+h^2)
    - \frac{q}{2(1+h^2)}$. Below $h_G$: the nearest point dominates,
    $-\alpha - \frac{r_{min}}{2h^2} - \frac12\log 2\pi h^2$.
    """
    h = np.asarray(h, dtype=np.float64)
    r0 = nearest_distance(alpha, q)
    annealed = -0.5 * np.log(2 * np.pi * (1 + h**2)) - q / (2 * (1 + h**2))
    condensed = -alpha - r0 / (2 * h**2) - 0.5 * np.log(2 * np.pi * h**2)
    return np.where(h > h_glass(alpha, q), annealed, condensed)


def mean_participation_ratio(h, alpha, q: float = 1.0) -> np.ndarray | float:
    r"""$E[Y_2] = \max(0, 1 - \mu)$ as $d \to \infty$ (Poisson–Dirichlet weights in the glass)."""
    return np.clip(1.0 - tail_index(h, alpha, q), 0.0, None)
