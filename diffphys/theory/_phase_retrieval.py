r"""Random-matrix theory of the loss Hessian of real phase retrieval at overlap m.

Model and normalisation: `diffphys.models.PhaseRetrieval` (Sarao Mannelli et al. arXiv
2006.06997; Bonnaire, Biroli, Cammarota arXiv 2403.02418): $M=\alpha N$ Gaussian sensing
vectors, $L(x)=\frac1{4\alpha}\sum_\mu(z_\mu^2-z_\mu^{*2})^2$ with $z=a\cdot x/\sqrt N$,
$z^*=a\cdot x^*/\sqrt N$, $|x|^2=|x^*|^2=N$, overlap $m=x\cdot x^*/N$. Then

$$\nabla^2L=\frac1M\sum_\mu w_\mu a_\mu a_\mu^\top,\qquad w=3z^2-z^{*2},\qquad
  \mathrm{Hess}_{S}L=P\big(\nabla^2L-\lambda_r\big)P,\quad
  \lambda_r=\frac{x\cdot\nabla L}{N}=\frac1M\sum_\mu(z_\mu^4-z_\mu^2z_\mu^{*2}),$$

P the projector on the tangent space of the sphere. The papers' Hessian formulas were not
readable through the tools of this project; everything below is **derived here**, and checked
against dense `eigvalsh` of sampled Hessians in `tests/test_phase_retrieval_theory.py`.

**Weights.** When x is independent of the sensing vectors (the random initialisation, and the
"annealed" approximation along a trajectory), $(z,z^*)$ is Gaussian with correlation m, and
$w=(z,z^*)\,\mathrm{diag}(3,-1)\,(z,z^*)^\top=\mu_+\xi_1^2+\mu_-\xi_2^2$ with $\xi$ i.i.d.
N(0,1) and $\mu_\pm=1\pm\sqrt{4-3m^2}$ (the eigenvalues of $\mathrm{diag}(3,-1)C$,
$C=\begin{pmatrix}1&m\\m&1\end{pmatrix}$). In polar form $\xi=\sqrt{2t}(\cos\theta,\sin\theta)$,
$t\sim\mathrm{Exp}(1)$, $\theta$ uniform: $w=2t\,c(\theta)$; at m = 0 this is
$w=s(3\cos^2\theta-\sin^2\theta)$, $s\sim\mathrm{Exp}$(mean 2). w is unbounded on both sides,
so the limiting density has exponential tails and no hard edge.

**Bulk** (generalised Marchenko–Pastur, Silverstein–Bai). The components of $a_\mu$ orthogonal
to x and $x^*$ are independent of $w_\mu$, so the Stieltjes transform
$g(z)=\frac1N\mathrm{tr}(P\nabla^2LP-z)^{-1}$ of the tangent-space Hessian obeys

$$g=\frac{1}{-z+\mathbb E\big[\frac{w}{1+wg/\alpha}\big]},\qquad
  \rho(\lambda)=\frac1\pi\,\mathrm{Im}\,g(\lambda+i0^+).$$

The t-average is exact: $\mathbb E_t[1/(1+\kappa t)]=\zeta e^\zeta E_1(\zeta)$, $\zeta=1/\kappa$
(principal branch, asymptotic series for $|\zeta|>40$); the $\theta$ average is the trapezoidal
rule (periodic, analytic integrand). The Riemannian spectrum is this one shifted by
$-\lambda_r$; $\lambda_r\to2(1-m^2)$, but its finite-N fluctuation is large
($\mathrm{Var}\,\lambda_r=\mathrm{Var}(z^4-z^2z^{*2})/M$, $=80/M$ at m = 0, heavy-tailed
$z^8$ moments): it is the cause of the median offset seen in a first sampled check
(1.11 vs 1.22 at N = 400, alpha = 4); compare with the measured $\lambda_r$ (`lagrange=`).

**Outlier** (rank-one spike along $e_\perp\propto x^*-mx$, the unit part of $x^*$ in
the tangent space). With $u=a\cdot e_\perp$ (N(0,1), correlated with w), a Schur complement on
$e_\perp$ and the Woodbury identity give the outlier condition and the eigenvector overlap

$$T(\lambda)=\mathbb E\Big[\frac{w\,u^2}{1+w\,g(\lambda)/\alpha}\Big]=\lambda,\qquad
  |v\cdot e_\perp|^2=\frac{1}{1-T'(\lambda)},\qquad
  \frac{|v\cdot x^*|}{|x^*|}=\sqrt{1-m^2}\,|v\cdot e_\perp|$$

(the Lu–Li / Mondelli–Montanari spectral-method calculation, here with weights that also depend
on the student). $u^2 = 2t\,h(\theta)$ in the polar variables, so $T$ is exact in t as well.
At $\alpha\to\infty$, $T=\mathbb E[wu^2]=2m^2$ against a bulk at 2: the Riemannian outlier
$4m^2-2$ is negative (an informative downward direction) for $m<1/\sqrt2$.
The lowest root with real $g$ (the bulk tail makes Im g exponentially small there) and
$T'(\lambda)<0$ (a genuine spike: $g'>0$ below the bulk) is taken as the outlier; where the
root moves into the bulk's tail ($T'>0$) there is no isolated outlier. Because the bulk has
exponential tails rather than an edge, the BBP-type transition is sharp only at finite N:
`phase_retrieval_hessian_bbp` locates the overlap $m_c(\alpha,N)$ at which the outlier reaches
the median lowest bulk eigenvalue at size N (below).

**Finite N** (derived): the lowest bulk eigenvalues are single-sample spikes from the most
negative $w_\mu$, nearly independent, so the lowest bulk eigenvalue has
$P(\lambda_{\min}^{bulk}>\lambda)\approx e^{-NF(\lambda)}$, F the bulk CDF: its median solves
$NF(\lambda)=\ln 2$ (`phase_retrieval_hessian_edges`), a bulk edge that moves down like
$\log N/\alpha$. The informative outlier is the lowest eigenvalue with probability
$e^{-NF(\lambda_{out})}$; as N grows the bulk edge moves down like $\log N$ and covers the
outlier at smaller m: the logarithmic finite-N effects of Bonnaire et al. (quoted from their
abstract; the mechanism here is derived).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import special

from .._errors import ConfigError

__all__ = [
    "PhaseRetrievalConditional",
    "PhaseRetrievalOutlier",
    "phase_retrieval_hessian_bbp",
    "phase_retrieval_hessian_cdf",
    "phase_retrieval_hessian_density",
    "phase_retrieval_hessian_edges",
    "phase_retrieval_hessian_given_projections",
    "phase_retrieval_hessian_outlier",
    "phase_retrieval_hessian_stieltjes",
    "phase_retrieval_lagrange",
]

_SERIES = 40.0  # |zeta| above which the asymptotic series of zeta e^zeta E1(zeta) is used
_N_SERIES = 14


def _check(alpha, m):
    try:
        a = float(alpha)
        mm = float(m)
    except (TypeError, ValueError):
        raise ConfigError(f"alpha and m must be numbers, got {alpha!r}, {m!r}.") from None
    if not math.isfinite(a) or a <= 0:
        raise ConfigError(f"alpha = M/N must be positive and finite, got {alpha!r}.")
    if not (math.isfinite(mm) and 0.0 <= abs(mm) < 1.0):
        raise ConfigError(f"the overlap m must lie in (-1, 1), got {m!r} (m = 1 is x = x*).")
    return a, abs(mm)


@functools.lru_cache(maxsize=64)
def _law(m: float, n_theta: int):
    """c(theta), h(theta) with w = 2t c, u^2 = 2t h (t ~ Exp(1), theta uniform on [0, pi))."""
    C = np.array([[1.0, m], [m, 1.0]])
    ev, U = np.linalg.eigh(C)
    L = U @ np.diag(np.sqrt(ev)) @ U.T
    mu, V = np.linalg.eigh(L.T @ np.diag([3.0, -1.0]) @ L)
    L = L @ V
    b = L.T @ (np.array([-m, 1.0]) / math.sqrt(1.0 - m * m))
    th = (np.arange(n_theta) + 0.5) * np.pi / n_theta
    nvec = np.stack([np.cos(th), np.sin(th)], axis=1)
    return (nvec**2) @ mu, (nvec @ b) ** 2


def _p12(kappa):
    """p1 = E[k t/(1+k t)], p2 = E[k t^2/(1+k t)] for t ~ Exp(1), complex kappa."""
    kappa = np.asarray(kappa, complex)
    small = np.abs(kappa) * _SERIES < 1.0
    p1 = np.zeros(kappa.shape, complex)
    p2 = np.zeros(kappa.shape, complex)
    ks = kappa[small]
    term = ks.copy()  # (-1)^(k+1) k! kappa^k
    s1 = np.zeros_like(ks)
    s2 = np.zeros_like(ks)
    for k in range(1, _N_SERIES + 1):
        s1 += term
        s2 += (k + 1) * term
        term = term * (-(k + 1) * ks)
    p1[small] = s1
    p2[small] = s2
    kb = kappa[~small]
    z = 1.0 / kb
    f = z * np.exp(z) * special.exp1(z)
    p1[~small] = 1.0 - f
    p2[~small] = 1.0 - z * (1.0 - f)
    return p1, p2


def _moments(beta, m, n_theta):
    """A = E[w/(1+w beta)], B = E[w u^2/(1+w beta)] for an array of complex beta."""
    c, h = _law(m, n_theta)
    beta = np.asarray(beta, complex)[..., None]
    kappa = 2.0 * c * beta
    p1, p2 = _p12(kappa)
    safe = np.where(beta == 0, 1.0, beta)
    a_t = np.where(beta == 0, 2.0 * c, p1 / safe)
    b_t = np.where(beta == 0, 8.0 * c * h, 2.0 * h * p2 / safe)
    return a_t.mean(-1), b_t.mean(-1)


def phase_retrieval_lagrange(m) -> np.ndarray | float:
    """$\\lambda_r = x\\cdot\\nabla L/N \\to 2(1-m^2)$, the shift between the tangent-space
    Euclidean Hessian and the Riemannian one (derived: $E[z^4]-E[z^2z^{*2}]$).

    **Arguments:** `m` overlap(s). **Returns:** array like m.
    """
    m = np.asarray(m, float)
    return 2.0 * (1.0 - m**2)


def phase_retrieval_hessian_stieltjes(
    z, *, alpha: float, m: float = 0.0, n_theta: int = 64, tol: float = 1e-9
) -> np.ndarray | float:
    """Stieltjes transform $g(z)=\\frac1N\\mathrm{tr}(P\\nabla^2LP-z)^{-1}$ of the bulk of the
    tangent-space Hessian (Euclidean frame, no $\\lambda_r$ shift), N -> infinity.

    Solves $g=1/(-z+E[w/(1+wg/\\alpha)])$ (module docstring) by damped fixed-point iteration.

    **Arguments:** `z` complex array with Im z > 0 (or real: then `+1e-10 i` is used);
    `alpha` = M/N; `m` overlap with the signal, |m| < 1; `n_theta` angular nodes; `tol`.

    **Returns:** complex array like z.
    """
    alpha, m = _check(alpha, m)
    z = np.asarray(z, complex)
    z = np.where(z.imag <= 0, z.real + 1e-10j, z)
    shape = z.shape
    z = z.ravel()
    g = 1.0 / (2.0 - z)
    active = np.ones(z.shape, bool)
    for it in range(4000):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        a, _ = _moments(g[idx] / alpha, m, n_theta)
        g_new = 1.0 / (-z[idx] + a)
        done = np.abs(g_new - g[idx]) < tol * np.maximum(np.abs(g[idx]), 1e-3)
        # undamped first (fast where it contracts), damped later (robust)
        damp = 0.8 if it < 200 else 0.5
        g[idx] = np.where(done, g_new, (1 - damp) * g[idx] + damp * g_new)
        active[idx[done]] = False
    return g.reshape(shape)


def phase_retrieval_hessian_density(
    lam, *, alpha: float, m: float = 0.0, lagrange=None, n_theta: int = 64
) -> np.ndarray | float:
    """Limiting density of the bulk of the Riemannian Hessian of phase retrieval at overlap m.

    $\\rho(\\lambda)=\\frac1\\pi\\mathrm{Im}\\,g(\\lambda+\\lambda_r+i0^+)$ with g from
    `phase_retrieval_hessian_stieltjes` (derived; module docstring).

    **Arguments:** `lam` eigenvalues at which to evaluate; `alpha` = M/N; `m` overlap;
    `lagrange` the shift $\\lambda_r$ (default $2(1-m^2)$; pass the measured
    $x\\cdot\\nabla L/N$ for one sample, or 0 for the tangent-space Euclidean Hessian);
    `n_theta` angular quadrature nodes.

    **Returns:** density array like `lam` (integrates to 1 over the real line).
    """
    alpha, m = _check(alpha, m)
    shift = phase_retrieval_lagrange(m) if lagrange is None else float(lagrange)
    lam = np.asarray(lam, float)
    g = phase_retrieval_hessian_stieltjes(lam + shift, alpha=alpha, m=m, n_theta=n_theta)
    return np.maximum(g.imag, 0.0) / np.pi


def _tail_grid(alpha, m, n_grid):
    """Eigenvalue grid (tangent frame) reaching the tails down to about e^-40, denser in the
    bulk: half the points in [-1, 6], a quarter in each tail."""
    root = math.sqrt(4.0 - 3.0 * m * m)
    lo = min(2.0 + 80.0 * (1.0 - root) / alpha - 3.0, -1.5)
    hi = max(2.0 + 80.0 * (1.0 + root) / alpha + 3.0, 6.5)
    q = max(n_grid // 4, 8)
    return np.concatenate(
        [np.linspace(lo, -1.0, q, endpoint=False), np.linspace(-1.0, 6.0, 2 * q, endpoint=False),
         np.linspace(6.0, hi, q)]
    )


def phase_retrieval_hessian_cdf(
    lam, *, alpha: float, m: float = 0.0, lagrange=None, n_grid: int = 400, n_theta: int = 64
) -> np.ndarray | float:
    """Cumulative distribution of the bulk of the Riemannian Hessian (limiting, derived).

    The density on a uniform grid reaching the exponential tails (down to about $e^{-40}$),
    integrated by the trapezoidal rule and normalised.

    **Arguments:** as `phase_retrieval_hessian_density`; `n_grid` grid points.

    **Returns:** F(lam), array like `lam`.
    """
    alpha, m = _check(alpha, m)
    shift = phase_retrieval_lagrange(m) if lagrange is None else float(lagrange)
    grid, cdf = _cdf_table(alpha, m, n_grid, n_theta)
    return np.interp(np.asarray(lam, float) + shift, grid, cdf, left=0.0, right=1.0)


@functools.lru_cache(maxsize=64)
def _cdf_table(alpha, m, n_grid, n_theta):
    grid = _tail_grid(alpha, m, n_grid)
    g = phase_retrieval_hessian_stieltjes(grid, alpha=alpha, m=m, n_theta=n_theta)
    rho = np.maximum(g.imag, 0.0) / np.pi
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(grid))])
    return grid, cdf / cdf[-1]


def phase_retrieval_hessian_edges(
    *, alpha: float, m: float = 0.0, n: int, lagrange=None, n_grid: int = 400
) -> tuple[float, float]:
    """Median lowest and highest bulk eigenvalues of the Riemannian Hessian at finite N.

    Derived: the extreme bulk eigenvalues are nearly independent single-sample spikes, so
    $P(\\lambda^{bulk}_{\\min}>\\lambda)\\approx e^{-NF(\\lambda)}$; the median solves
    $NF(\\lambda)=\\ln2$ (and $N(1-F)=\\ln2$ at the top). Both move out like $\\log N/\\alpha$:
    w is unbounded, there is no N-independent edge.

    **Arguments:** `alpha`; `m`; `n` the dimension N (>= 2); `lagrange` as in
    `phase_retrieval_hessian_density`; `n_grid`.

    **Returns:** `(lambda_low, lambda_high)`.
    """
    alpha, m = _check(alpha, m)
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ConfigError(f"n must be an integer dimension >= 2, got {n!r}.")
    shift = phase_retrieval_lagrange(m) if lagrange is None else float(lagrange)
    grid, cdf = _cdf_table(alpha, m, n_grid, 64)
    q = math.log(2.0) / n
    lo = np.interp(q, cdf, grid)
    hi = np.interp(1.0 - q, cdf, grid)
    return float(lo - shift), float(hi - shift)


class PhaseRetrievalOutlier(NamedTuple):
    """Outlier of the Riemannian Hessian along the signal (`phase_retrieval_hessian_outlier`).

    **Fields:** `eigenvalue` (nan where there is none); `overlap_perp` $|v\\cdot e_\\perp|$;
    `overlap` $|v\\cdot x^*|/|x^*|=\\sqrt{1-m^2}|v\\cdot e_\\perp|$; `exists` (bool).
    At size N, $N F(\\lambda_{out})$ bulk eigenvalues lie below it on average (F:
    `phase_retrieval_hessian_cdf`).
    """

    eigenvalue: float
    overlap_perp: float
    overlap: float
    exists: bool


def _outlier_roots(alpha, m, n_theta, n_scan=60):
    lo = 2.0 + 60.0 * (1.0 - math.sqrt(4.0 - 3.0 * m * m)) / alpha - 2.0
    lam = np.linspace(lo, 2.0, n_scan)
    g = phase_retrieval_hessian_stieltjes(lam, alpha=alpha, m=m, n_theta=n_theta)
    _, b = _moments(g / alpha, m, n_theta)
    f = b.real - lam
    idx = np.nonzero((f[:-1] > 0) & (f[1:] <= 0))[0]
    return lam, f, idx


def phase_retrieval_hessian_outlier(
    *, alpha: float, m: float = 0.0, lagrange=None, n_theta: int = 64
) -> PhaseRetrievalOutlier:
    """The informative outlier of the Riemannian Hessian at overlap m (derived; BBP-type).

    Solves $\\mathrm{Re}\\,T(\\lambda)=\\lambda$, $T(\\lambda)=E[wu^2/(1+wg(\\lambda)/\\alpha)]$
    for its lowest root below the bulk (module docstring), then
    $|v\\cdot e_\\perp|^2=1/(1-T'(\\lambda))$.

    **Arguments:** `alpha` = M/N; `m` overlap (|m| < 1); `lagrange` the shift $\\lambda_r$
    (default $2(1-m^2)$); `n_theta`.

    **Returns:** `PhaseRetrievalOutlier` (eigenvalue in the Riemannian frame).
    """
    from scipy import optimize

    alpha, m = _check(alpha, m)
    shift = phase_retrieval_lagrange(m) if lagrange is None else float(lagrange)
    lam, f, idx = _outlier_roots(alpha, m, n_theta)
    if idx.size == 0:
        return PhaseRetrievalOutlier(np.nan, 0.0, 0.0, False)

    def resid(x):
        g = phase_retrieval_hessian_stieltjes(np.array([x]), alpha=alpha, m=m, n_theta=n_theta)
        _, b = _moments(g / alpha, m, n_theta)
        return float(b.real[0] - x)

    i = idx[0]
    root = optimize.brentq(resid, lam[i], lam[i + 1], xtol=1e-10)
    d = 1e-4
    tp = (resid(root + d) + (root + d) - resid(root - d) - (root - d)) / (2 * d)
    # a genuine spike has T' < 0 (g increasing below the bulk); T' > 0 means the root lies in
    # the bulk's tail, where Im g is not negligible: no isolated outlier
    if tp > 0:
        return PhaseRetrievalOutlier(np.nan, 0.0, 0.0, False)
    q2 = 1.0 / (1.0 - tp)
    return PhaseRetrievalOutlier(
        float(root - shift), math.sqrt(q2), math.sqrt(q2 * (1 - m * m)), True
    )


def phase_retrieval_hessian_bbp(*, alpha: float, n: int, m_grid=None) -> float:
    r"""The overlap $m_c(\alpha, N)$ at which the informative outlier reaches the median
    lowest bulk eigenvalue at size N and stops being the lowest mode (the BBP-type transition
    of Bonnaire et al. at finite N; derived, module docstring).

    $\lambda_{out}(m)-\lambda_{low}(m,N)$ (`phase_retrieval_hessian_outlier`,
    `phase_retrieval_hessian_edges`) is evaluated on `m_grid` and its first sign change
    located by linear interpolation.

    **Arguments:** `alpha`; `n` the dimension N; `m_grid` increasing overlaps in [0, 1)
    (default 0, 0.1, ..., 0.9).

    **Returns:** $m_c$ (0.0 if the outlier is not below the edge at m = 0, nan if it stays
    below over the whole grid).
    """
    alpha, _ = _check(alpha, 0.0)
    grid = np.arange(0.0, 0.95, 0.1) if m_grid is None else np.asarray(m_grid, float)
    gap = []
    for m in grid:
        o = phase_retrieval_hessian_outlier(alpha=alpha, m=float(m))
        lo, _ = phase_retrieval_hessian_edges(alpha=alpha, m=float(m), n=n)
        gap.append(o.eigenvalue - lo if o.exists else np.inf)
        if gap[-1] >= 0:
            break
    gap = np.asarray(gap)
    if gap[0] >= 0:
        return 0.0
    if gap[-1] < 0:
        return float("nan")
    k = len(gap) - 1
    if not np.isfinite(gap[k]):
        return float(grid[k])
    return float(grid[k - 1] + (grid[k] - grid[k - 1]) * (-gap[k - 1]) / (gap[k] - gap[k - 1]))


class PhaseRetrievalConditional(NamedTuple):
    """The Riemannian Hessian's lowest modes predicted from one state's projections
    (`phase_retrieval_hessian_given_projections`).

    **Fields:** `edge` (the lowest point of the bulk's support), `outlier` (nan where there is
    none), `outlier_overlap` $|v\\cdot x^*|/|x^*|$ of its eigenvector (0 where there is none),
    `lambda_min` = min(edge, outlier), `lagrange` ($\\lambda_r$, the shift applied), `exists`.
    """

    edge: float
    outlier: float
    outlier_overlap: float
    lambda_min: float
    lagrange: float
    exists: bool


def phase_retrieval_hessian_given_projections(z, z_star, *, m: float, n: int):
    """Lowest Riemannian Hessian modes of one phase-retrieval state, predicted from its
    projections $z_\\mu=a_\\mu\\cdot x/\\sqrt N$, $z^*_\\mu=a_\\mu\\cdot x^*/\\sqrt N$ alone.

    The annealed theory (`phase_retrieval_hessian_outlier`, `..._edges`) takes $(z,z^*)$
    Gaussian with correlation m: exact at the random start, but gradient descent distorts the
    law of the projections at once (the self term of $a_\\mu\\cdot\\nabla L$ is
    $(N/M)\\,\\ell'(z_\\mu)$, of order one: the largest residuals shrink first, and they are
    the single-sample spikes that set the finite-N edge). Here the same equations (module
    docstring) take the **empirical** law of this state's M pairs instead, i.e. the sensing
    vectors' components orthogonal to x and x* are treated as independent of the pairs:

    $$\\lambda(g)=-\\frac1g+\\frac1M\\sum_\\mu\\frac{w_\\mu}{1+w_\\mu g/\\alpha},\\qquad
      T(g)=\\frac1M\\sum_\\mu\\frac{w_\\mu u_\\mu^2}{1+w_\\mu g/\\alpha},$$

    $w=3z^2-z^{*2}$, $u=(z^*-mz)/\\sqrt{1-m^2}$ (the projection on $e_\\perp$), for real
    $g\\in(0,\\alpha/|\\min w|)$ below the spectrum: the bulk's lowest point is
    $\\max_g\\lambda(g)$ (where $\\lambda'(g)=0$); the outlier is $\\lambda(g_0)$ with
    $T(g_0)=\\lambda(g_0)$ below it (unique: T decreases and $\\lambda$ increases there), with
    $|v\\cdot e_\\perp|^2=1/(1-T'(g_0)/\\lambda'(g_0))$. Both are shifted by the state's own
    $\\lambda_r=\\frac1M\\sum(z^4-z^2z^{*2})$. With M atoms the "bulk" contains the isolated
    single-sample spikes, so no separate finite-N edge formula is needed.

    Derived here (not from the papers, which were not readable). Checked in
    `tests/test_phase_retrieval_theory.py` against dense `eigvalsh` along GD trajectories at
    N = 128, alpha = 4: the median measured lambda_min and the median prediction agree at
    steps 0, 1, 4 and 16 (t = lr x steps up to 0.8; measured -3.97/-4.02, -3.49/-3.48,
    -2.56/-2.64, -1.44/-1.42) where the annealed prediction at the measured m stays near its
    t = 0 value (-3.98); per-run correlation 0.87-0.94. A surrogate Hessian with the same
    pairs and fresh orthogonal components has the same median lambda_min (the assumption
    holds to ~0.1 up to t = 0.8). Predicting the pairs themselves needs the DMFT of Sarao
    Mannelli et al., not built here.

    **Arguments:** `z`, `z_star` arrays (M,) of one state; `m` = x.x*/N (signed, |m| < 1);
    `n` the dimension N (alpha = M/N).

    **Returns:** `PhaseRetrievalConditional`.
    """
    from scipy import optimize

    z = np.asarray(z, float).ravel()
    zs = np.asarray(z_star, float).ravel()
    if z.shape != zs.shape or z.size < 2:
        raise ConfigError(
            f"z and z_star must be two arrays of the same length M >= 2, got {z.shape} and "
            f"{zs.shape}."
        )
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ConfigError(f"n must be an integer dimension >= 2, got {n!r}.")
    alpha, _ = _check(z.size / n, m)
    m = float(m)
    w = 3.0 * z * z - zs * zs
    u2 = (zs - m * z) ** 2 / (1.0 - m * m)
    lam_r = float(np.mean(z**4 - z * z * zs * zs))

    def lam(g):
        return -1.0 / g + np.mean(w / (1.0 + w * g / alpha))

    def dlam(g):
        return 1.0 / (g * g) - np.mean(w * w / (1.0 + w * g / alpha) ** 2) / alpha

    def T(g):
        return np.mean(w * u2 / (1.0 + w * g / alpha))

    def dT(g):
        return -np.mean(w * w * u2 / (1.0 + w * g / alpha) ** 2) / alpha

    w_min = float(w.min())
    g_hi = alpha / -w_min * (1.0 - 1e-12) if w_min < 0 else 1e6 * alpha / np.mean(np.abs(w))
    g_lo = 1e-9 * g_hi
    if dlam(g_hi) < 0:
        g_e = optimize.brentq(dlam, g_lo, g_hi, xtol=1e-14 * g_hi, rtol=1e-13)
        edge = float(lam(g_e))
    else:  # no negative weight and alpha <= 1: the support reaches 0 (zero modes)
        g_e, edge = g_hi, 0.0
    outlier, overlap = float("nan"), 0.0
    f_e = T(g_e) - lam(g_e)
    if f_e < 0:  # f = T - lambda decreases from +infinity: one root below the edge
        g0 = optimize.brentq(lambda g: T(g) - lam(g), g_lo, g_e, xtol=1e-14 * g_e, rtol=1e-13)
        outlier = float(lam(g0))
        v2 = 1.0 / (1.0 - dT(g0) / dlam(g0))
        overlap = math.sqrt(max(0.0, 1.0 - m * m) * min(1.0, max(0.0, v2)))
    exists = bool(np.isfinite(outlier))
    edge -= lam_r
    outlier = outlier - lam_r if exists else float("nan")
    return PhaseRetrievalConditional(
        edge=edge,
        outlier=outlier,
        outlier_overlap=overlap,
        lambda_min=min(edge, outlier) if exists else edge,
        lagrange=lam_r,
        exists=exists,
    )
