r"""Theory of associative memories: AGS replica-symmetric equations and capacity formulas.

- Amit, Gutfreund, Sompolinsky, Phys. Rev. Lett. 55, 1530 (1985) and Ann. Phys. 173, 30 (1987):
  replica-symmetric retrieval state of the Hopfield model at load $\alpha = P/N$, with the
  energy convention of `diffphys.models.Hopfield` ($J_{ij} = \frac1N\sum_\mu\xi^\mu_i\xi^\mu_j$).
- Krotov & Hopfield, NeurIPS 2016 ("Dense associative memory for pattern recognition"), after
  Baldi & Venkatesh, Phys. Rev. Lett. 58, 913 (1987): polynomial capacity of p-body memories.
- Exponential memories (Demircigil et al. 2017; Ramsauer et al. 2021; Albanese et al. arXiv
  2509.06905): our signal-to-noise / large-deviation estimate of the rate of the exponential
  capacity $P_{max} = e^{\alpha N}$ and of its dependence on the basin radius, derived in
  `exponential_capacity_rate` (the papers' own formulas are not reproduced; see there).
- Agliari et al. arXiv 2212.00606: supervised dense Hebbian learning at vanishing load, the
  exact majority-vote overlap `supervised_overlap_low_load`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import optimize, special

from .._errors import ConfigError

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(201)
_GH_W = _GH_W / np.sqrt(2 * np.pi)  # ∫ Dz f(z) ≈ Σ w f(x), Dz the standard Gaussian measure


class AGSSolution(NamedTuple):
    """Replica-symmetric order parameters of the Hopfield model."""

    m: float
    """overlap with the retrieved (condensed) pattern"""
    q: float
    """Edwards–Anderson order parameter (1 at T = 0)"""
    r: float
    """noise from the non-condensed patterns, $r = \\frac1\\alpha\\sum_{\\nu>1}\\langle m_\\nu^2\\rangle N$"""


def _ags_t0_alpha(y):
    # T = 0: m = erf(y), y = m / sqrt(2 alpha r), sqrt(r) = 1/(1 - C), C = sqrt(2/(pi alpha r)) e^{-y^2}
    # eliminate m, r, C: sqrt(2 alpha) = erf(y)/y - (2/sqrt(pi)) e^{-y^2}
    g = special.erf(y) / y - 2 / np.sqrt(np.pi) * np.exp(-(y**2))
    return g**2 / 2


def ags_alpha_c(T: float = 0.0) -> float:
    r"""Critical load of the retrieval state of the Hopfield model (AGS 1987).

    At T = 0 the RS equations reduce to $\sqrt{2\alpha} = \mathrm{erf}(y)/y - \frac{2}{\sqrt\pi}
    e^{-y^2}$ (with $m = \mathrm{erf}(y)$); the retrieval solution exists while $\alpha$ is below
    the maximum of the right-hand side over y: $\alpha_c \approx 0.1379$. For T > 0 the largest α
    with a retrieval solution (m > 0.05 after the damped iteration) is found by bisection on
    `ags_solve`; the Gauss–Hermite quadrature (201 nodes) resolves tanh(beta x) for T >~ 0.05
    only, use T = 0 below that. Near alpha_c the iteration slows down critically, so the T > 0
    value is accurate to about 1e-3.
    """
    if T < 0:
        raise ValueError(f"T must be >= 0, got {T}.")
    if T == 0:
        res = optimize.minimize_scalar(
            lambda y: -_ags_t0_alpha(y),
            bounds=(0.5, 3.0),
            method="bounded",
            options={"xatol": 1e-12},
        )
        return float(-res.fun)
    lo, hi = 0.0, ags_alpha_c(0.0) + 1e-3
    if ags_solve(1e-6, T).m < 0.05:
        return 0.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if ags_solve(mid, T).m > 0.05:
            lo = mid
        else:
            hi = mid
    return lo


def ags_solve(
    alpha: float,
    T: float = 0.0,
    *,
    m0: float = 1.0,
    tol: float = 1e-12,
    max_iter: int = 20000,
    damping: float = 0.5,
) -> AGSSolution:
    r"""Replica-symmetric retrieval solution of the Hopfield model (AGS 1987), by damped iteration.

    $$m = \int Dz\,\tanh\beta(m + \sqrt{\alpha r}\,z),\quad
      q = \int Dz\,\tanh^2\beta(m + \sqrt{\alpha r}\,z),\quad
      r = \frac{q}{(1 - \beta(1-q))^2}.$$

    At T = 0 ($\beta\to\infty$): $m = \mathrm{erf}(y)$, $y = m/\sqrt{2\alpha r}$,
    $\sqrt r = 1/(1-C)$, $C = \sqrt{2/(\pi\alpha r)}\,e^{-y^2}$, q = 1. The iteration starts
    at the retrieval state (`m0 = 1`); above $\alpha_c$ it falls to m = 0 (spin-glass state).

    **Returns:** an `AGSSolution(m, q, r)`.
    """
    if alpha <= 0:
        return AGSSolution(float(m0 if T == 0 else ags_curie_weiss(T)), 1.0, 1.0)
    m, q, r = m0, 1.0, 1.0
    for _ in range(max_iter):
        if T == 0:
            s = np.sqrt(2 * alpha * r)
            y = m / s
            m_new = special.erf(y)
            C = np.sqrt(2 / (np.pi * alpha * r)) * np.exp(-(y**2))
            r_new = 1.0 / (1.0 - min(C, 0.999999)) ** 2
            q_new = 1.0
        else:
            beta = 1.0 / T
            t = np.tanh(beta * (m + np.sqrt(alpha * r) * _GH_X))
            m_new = float(_GH_W @ t)
            q_new = float(_GH_W @ t**2)
            denom = 1.0 - beta * (1.0 - q_new)
            r_new = q_new / max(denom, 1e-6) ** 2
        dm = abs(m_new - m) + abs(r_new - r)
        m = damping * m + (1 - damping) * m_new
        r = damping * r + (1 - damping) * r_new
        q = q_new
        if dm < tol:
            break
    return AGSSolution(float(m), float(q), float(r))


def ags_curie_weiss(T: float) -> float:
    """Retrieval overlap at vanishing load (alpha -> 0): the Curie–Weiss solution m = tanh(m/T)."""
    if T >= 1:
        return 0.0
    if T == 0:
        return 1.0
    return float(optimize.brentq(lambda m: m - np.tanh(m / T), 1e-9, 1.0))


def ags_overlap(alphas, T: float = 0.0) -> np.ndarray | float:
    """Retrieval overlap m(alpha) of the AGS RS solution on a grid (0 where retrieval fails)."""
    return np.array([ags_solve(float(a), T).m for a in np.atleast_1d(alphas)])


# -- polynomial (dense) memories ------------------------------------------------------------


def double_factorial(k: int) -> int:
    """k!! for odd k >= -1 (1 for k <= 0)."""
    return int(np.prod(np.arange(k, 0, -2))) if k > 0 else 1


def dense_capacity(n, p: int):
    r"""Error-free capacity of a p-body dense memory (Krotov–Hopfield 2016, Baldi–Venkatesh 1987):

    $$P_{max} \simeq \frac{N^{p-1}}{2\,(2p-3)!!\,\ln N}.$$

    For p = 2 this is the Hopfield network's $N/(2\ln N)$ (McEliece et al. 1987).
    """
    n = np.asarray(n, dtype=np.float64)
    return n ** (p - 1) / (2 * double_factorial(2 * p - 3) * np.log(n))


def dense_capacity_snr(n, p: int, bit_error: float = 0.01):
    r"""Load at which a single bit of a stored pattern is unstable with probability `bit_error`.

    Signal-to-noise estimate (Krotov–Hopfield 2016, Sec. 2): the local field has signal
    $\propto p N^{p-1}$ and Gaussian crosstalk of variance $\propto p^2 (2p-3)!! N^{p-1} P$, so

    $$P = \frac{N^{p-1}}{(2p-3)!!\; z^2},\qquad z = \Phi^{-1}(1 - \text{bit\_error}).$$
    """
    n = np.asarray(n, dtype=np.float64)
    z = special.ndtri(1.0 - bit_error)
    return n ** (p - 1) / (double_factorial(2 * p - 3) * z**2)


# -- exponential memories --------------------------------------------------------------------


def overlap_rate(q):
    r"""Large-deviation rate of the overlap of two random ±1 vectors:
    $\Pr(\xi\cdot\sigma/N \approx q) \asymp e^{-N I(q)}$,

    $$I(q) = \frac{1+q}{2}\ln(1+q) + \frac{1-q}{2}\ln(1-q),\qquad I(\pm1) = \ln 2.$$
    """
    q = np.abs(np.asarray(q, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 0.5 * (1 + q) * np.log1p(q) + 0.5 * special.xlogy(1 - q, 1 - q)
    return out


def _inverse_overlap_rate(a: float) -> float:
    # the q in [0, 1] with I(q) = a, for 0 <= a <= ln 2
    if a <= 0:
        return 0.0
    if a >= np.log(2):
        return 1.0
    return float(optimize.brentq(lambda q: float(overlap_rate(q)) - a, 0.0, 1.0, xtol=1e-14))


def exponential_capacity_rate(lam: float = 1.0, rho: float = 0.0) -> float:
    r"""Rate α of the capacity $P_{max} \asymp e^{\alpha N}$ of the exponential memories, for
    retrieval from a Hamming distance $\rho N$ (basin radius ρ; ρ = 0: stored patterns are
    fixed points).

    Signal-to-noise / large-deviation estimate, derived here (not taken from a paper). For
    $E = -\sum_\mu e^{\lambda\,\xi^\mu\cdot\sigma}$ (`ExponentialMemory`; equally
    `ExponentialLossMemory`, whose energy differs by the positive factor $e^{-\lambda N}$), at a
    state at distance ρN from pattern 1 the energy change of a single flip has a signal
    $\asymp e^{\lambda N(1-2\rho)}$ and a crosstalk $\sum_{\nu>1} 2\sinh(\pm\lambda)
    e^{\lambda N q_\nu}$ over $P = e^{\alpha N}$ random overlaps $q_\nu$, of which
    $e^{N(\alpha - I(q))}$ lie near q (`overlap_rate`). Its size is
    $\exp\frac N2\max_{q:\,I(q)\le\alpha}[\alpha - I(q) + 2\lambda q]$: the unconstrained
    maximiser $q^* = \tanh 2\lambda$ gives $\exp\frac N2[\alpha + \ln\cosh 2\lambda]$ (many
    small terms, Gaussian); when $I(q^*) > \alpha$ the largest overlap $q_{max} = I^{-1}(\alpha)$
    dominates (a random-energy-model condensation, as in Lucibello & Mézard, arXiv 2304.14964).
    With $t = 1 - 2\rho$, retrieval needs signal > crosstalk:

    $$\alpha_c(\lambda, \rho) = \begin{cases} 2\lambda t - \ln\cosh 2\lambda, & t \ge \tanh 2\lambda,\\
      I(t), & t < \tanh 2\lambda,\end{cases}$$

    continuous at $t = \tanh 2\lambda$. At ρ = 0, $\alpha_c = 2\lambda - \ln\cosh 2\lambda
    \to \ln 2$ as $\lambda\to\infty$. Enlarging the basin lowers α but keeps it positive for
    every ρ < 1/2: the qualitative statement of Albanese, Alessandrelli, Barra & Sollich (arXiv
    2509.06905, abstract) and of Demircigil et al. (J. Stat. Phys. 168, 2017) for λ = 1; their
    own formulas (equation numbers, prefactors) could not be read for this library and are not
    reproduced here. Subexponential prefactors are in `exponential_capacity_snr`.

    **Arguments:**

    - `lam`: the rate λ > 0 of the exponential.
    - `rho`: basin radius, the fraction of corrupted bits in [0, 1/2).

    **Returns:** α_c as a float.
    """
    lam, rho = float(lam), float(rho)
    if lam <= 0:
        raise ConfigError(f"lam must be > 0 (the rate of the exponential), got {lam}.")
    if not 0 <= rho < 0.5:
        raise ConfigError(
            f"rho is the basin radius, a fraction of flipped bits in [0, 1/2); got {rho}."
        )
    t = 1.0 - 2.0 * rho
    if t >= np.tanh(2 * lam):
        # ln cosh x = x + log1p(e^{-2x}) - ln 2, stable for large x
        x = 2 * lam
        return float(x * t - (x + np.log1p(np.exp(-2 * x)) - np.log(2)))
    return float(overlap_rate(t))


def exponential_basin_radius(n, n_patterns, lam: float = 1.0) -> np.ndarray | float:
    r"""Basin radius ρ_c (fraction of corrupted bits) predicted for `n_patterns` = P stored in N
    neurons: the largest ρ with $\alpha_c(\lambda, \rho) \ge \ln P / N$, inverting
    `exponential_capacity_rate` (leading exponential order: $P = e^{\alpha N}$ with
    subexponential factors ignored). 0 where the patterns themselves are not stable.

    $$1 - 2\rho_c = \begin{cases}(\alpha + \ln\cosh 2\lambda)/(2\lambda), & \text{if this}
      \ge \tanh 2\lambda,\\ I^{-1}(\alpha), & \text{otherwise,}\end{cases}
      \qquad \alpha = \ln P / N.$$
    """
    n, p = np.broadcast_arrays(np.asarray(n, np.float64), np.asarray(n_patterns, np.float64))
    lam = float(lam)
    out = np.zeros(n.shape)
    lcosh = 2 * lam + np.log1p(np.exp(-4 * lam)) - np.log(2)
    for idx in np.ndindex(n.shape):
        a = np.log(max(p[idx], 1.0)) / n[idx]
        if a > exponential_capacity_rate(lam, 0.0):
            continue
        t = (a + lcosh) / (2 * lam)
        if t < np.tanh(2 * lam):
            t = _inverse_overlap_rate(a)
        out[idx] = max(0.0, 0.5 * (1.0 - t))
    return out


def exponential_capacity(n, lam: float = 1.0, rho: float = 0.0):
    r"""$P_{max} \approx e^{\alpha_c(\lambda,\rho) N}$ with `exponential_capacity_rate`
    (leading exponential order)."""
    return np.exp(exponential_capacity_rate(lam, rho) * np.asarray(n, dtype=np.float64))


def exponential_stable_fraction(n, n_patterns, lam: float = 1.0):
    r"""Finite-N signal-to-noise estimate of the fraction of stored patterns that are fixed points
    of the exponential memories (our estimate, ρ = 0).

    Flipping bit i of a stored pattern changes the energy by a signal
    $2\sinh\lambda\,e^{\lambda(N-1)}$ (the pattern's own term) against a crosstalk with mean 0
    and variance $(P-1)\,4\sinh^2\lambda\,\cosh(2\lambda)^{N-1}$ (the other patterns: the
    flipped site contributes $2\sinh(\pm\lambda)$, the other N - 1 sites $e^{\lambda R}$ with
    $\mathbb E\,e^{2\lambda R} = \cosh(2\lambda)^{N-1}$). Treating the crosstalk as Gaussian
    and the N bits as independent,

    $$f = \big(1 - \Phi(-s)\big)^N,\qquad
      s^2 = \frac{e^{(N-1)\,(2\lambda - \ln\cosh 2\lambda)}}{P - 1}.$$

    Valid in the Gaussian regime; at small N and large λ the crosstalk is dominated by few terms.
    """
    n = np.asarray(n, dtype=np.float64)
    p = np.asarray(n_patterns, dtype=np.float64)
    log_s2 = (n - 1) * exponential_capacity_rate(lam, 0.0) - np.log(np.maximum(p - 1, 1e-300))
    s = np.exp(0.5 * log_s2)
    return np.where(p <= 1, 1.0, special.ndtr(s) ** n)


def exponential_capacity_snr(n, lam: float = 1.0, recall: float = 0.99):
    r"""The P at which `exponential_stable_fraction` equals `recall` (our finite-N estimate):

    $$P_{max} = 1 + \frac{e^{(N-1)\,(2\lambda - \ln\cosh 2\lambda)}}{z^2},\qquad
      z = \Phi^{-1}(\text{recall}^{1/N}).$$
    """
    n = np.asarray(n, dtype=np.float64)
    z = special.ndtri(float(recall) ** (1.0 / n))
    return 1.0 + np.exp((n - 1) * exponential_capacity_rate(lam, 0.0)) / z**2


def supervised_overlap_low_load(n_examples, quality) -> np.ndarray | float:
    r"""Overlap of sign(class mean) with the archetype (ties resolved towards the archetype).

    Exact majority vote over M examples: with $n_+ \sim \mathrm{Bin}(M, (1+r)/2)$ agreeing
    examples, $m = P(n_+ \ge M/2) - P(n_+ < M/2)$: ties count as agreeing because the T = 0
    dynamics started at the archetype keeps a spin whose field vanishes. For large M it
    tends to $\mathrm{erf}(1/\sqrt{2\rho})$, $\rho = (1-r^2)/(M r^2)$ (Agliari et al. 2022).
    """
    from scipy import stats  # imported here: scipy.stats costs ~1 s at `import diffphys`

    M = np.atleast_1d(np.asarray(n_examples))
    r = float(quality)
    q = (1 + r) / 2
    out = []
    for m_ in M:
        k = np.arange(int(m_) + 1)
        pk = stats.binom.pmf(k, int(m_), q)
        agree = pk[2 * k >= m_].sum()
        out.append(2 * agree - 1)
    return np.asarray(out)


__all__ = [
    "AGSSolution",
    "ags_alpha_c",
    "ags_curie_weiss",
    "ags_overlap",
    "ags_solve",
    "dense_capacity",
    "dense_capacity_snr",
    "double_factorial",
    "exponential_basin_radius",
    "exponential_capacity",
    "exponential_capacity_rate",
    "exponential_capacity_snr",
    "exponential_stable_fraction",
    "overlap_rate",
    "supervised_overlap_low_load",
]
