r"""Covariance spectra of random recurrent networks (Hu & Sompolinsky, PLoS Comput. Biol. 18,
e1010327 (2022); Shen & Hu, arXiv 2508.05288; Wakhloo et al., arXiv 2604.24141; Clark,
arXiv 2604.23489).

**The linear network.** For $\dot x = -x + Jx + \sigma\xi$, $J_{ij}\sim N(0, g^2/N)$, g < 1, the
long-time-window (zero-frequency) covariance, i.e. the covariance of time-integrated activity
per unit time, $\int d\tau\,\langle x(t)x(t+\tau)^T\rangle$, is

$$C = \sigma^2 (\mathbb 1 - J)^{-1}(\mathbb 1 - J)^{-T}.$$

This is the matrix whose eigenvalue density Hu & Sompolinsky give in closed form, and the one
Shen & Hu estimate from bin-averaged activity. (The equal-time covariance, the solution of the
Lyapunov equation $AC_0 + C_0A^T + \sigma^2 = 0$, $A = J - \mathbb 1$, is a different matrix; no
closed scalar equation for its spectrum is known: Zavatone-Veth, arXiv 2606.31944, finds an
infinite Schwinger–Dyson hierarchy in continuous time.) The eigenvalues of C are
$\sigma^2/\lambda$,
$\lambda$ the squared singular values of $\mathbb 1 - J$.

**Derived here** (Girko's Hermitisation, the standard route; the paper's own derivation was not
readable): the resolvent of $[[0, \mathbb 1 - J], [(\mathbb 1 - J)^T, 0]]$ at $\eta$ has diagonal
blocks with normalised trace $m = w/(w^2 - 1)$, $w = \eta - g^2 m$, so w solves the cubic

$$w^3 - \eta w^2 + (g^2 - 1)w + \eta = 0,$$

and $G_\lambda(\eta^2) = m/\eta$, $m = (\eta - w)/g^2$, is the Stieltjes transform of the
$\lambda$-density: $\rho_\lambda(\lambda) = -\mathrm{Im}\,m/(\pi\sqrt\lambda)$ with the root of
$\mathrm{Im}\,w > 0$; $\rho_C(x) = \rho_\lambda(\sigma^2/x)\,\sigma^2/x^2$. The support is where the
cubic has complex roots; its discriminant vanishes at
$4\lambda^2 + (s^2 - 20s - 8)\lambda + 4(1-s)^3 = 0$, $s = g^2$, whose discriminant is
$s(s+8)^3$, so

$$x_\pm = \sigma^2\,\frac{8 + 20 s - s^2 \pm \sqrt{s}\,(s + 8)^{3/2}}{8(1 - s)^3}$$

(checked against exact eigenvalues in `tests/test_rnn.py`). The mean eigenvalue is
$\sigma^2/(1 - g^2)$ (the mean of $|(\mathbb 1 - J)^{-1}|^2$ entries summed, a geometric series in
$g^2$), and $x_+$ diverges as $(1-g)^{-3}$: the power-law tail at the critical edge.

**Finite sampling.** An estimate from M independent samples (bins) has, for N, M -> oo at
$\alpha = N/M$, the density of the free multiplicative convolution with Marchenko–Pastur, whose
Stieltjes transform solves Silverstein's equation (Silverstein & Bai, J. Multivar. Anal. 54,
175 (1995)), $m(z) = \int\!dH(t)\,[t(1 - \alpha - \alpha z m(z)) - z]^{-1}$, here solved by
damped fixed-point iteration at $z = x(1 + i\epsilon)$ with H the population density on a quantile
grid (`rnn_covariance_spectrum_sampled`). Its first two moments are $m_1$ and $m_2 + \alpha m_1^2$.

**The nonlinear network** (quoted: the Shen–Hu conjecture, proved by Wakhloo et al.; the
ansatz derived by Clark with a two-site cavity method): the covariance of the rates
$r = \phi(x)$ of $\dot x = -x + J\phi(x) + \sigma\xi$ has, for a typical fixed J, the spectrum of
the linear theory with an effective gain $g_{\rm eff}$. The value
$g_{\rm eff} = g\langle\phi'\rangle$, $\langle\phi'\rangle = \int Dz\,\phi'(\sqrt{\Delta_0}z)$
with the DMFT variance $\Delta_0$, is derived here at the heuristic level: write
$\phi(x_j) = \langle\phi'\rangle x_j + \rho_j$ (Bussgang / Stein: $\rho_j$ uncorrelated with
$x_j$); at zero frequency $\hat x = J\hat r + \sigma\hat\xi$, so
$\hat r = (\mathbb 1 - \langle\phi'\rangle J)^{-1}(\langle\phi'\rangle\sigma\hat\xi + \hat\rho)$,
which is the linear form if the residuals $\rho_j$ act as independent noise (Clark's result).
In the noiseless chaotic state $g_{\rm eff}^2 = 1 - \tau_c^{-2}$ with the DMFT decay time
$\tau_c$ (`rnn_decay_time`): $g_{\rm eff}$ is below but near 1, as Shen & Hu observe.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._errors import ConfigError, check_positive


def _check_gain(g):
    check_positive("g", g)
    if np.any(np.asarray(g) >= 1.0):
        raise ConfigError(
            f"the linear network needs g < 1 (it is unstable at g >= 1), got g = {g!r}; "
            "for a nonlinear network pass its effective gain (rnn_effective_gain)."
        )


def rnn_covariance_edges(g, *, sigma: float = 1.0):
    r"""Support $[x_-, x_+]$ of the eigenvalue density of $C = \sigma^2(1-J)^{-1}(1-J)^{-T}$.

    $x_\pm = \sigma^2[8 + 20s - s^2 \pm \sqrt s (s+8)^{3/2}]/[8(1-s)^3]$, $s = g^2$ (derived in
    the module docstring).

    **Arguments:**

    - `g`: gain, 0 < g < 1.
    - `sigma`: noise amplitude (> 0); the spectrum scales as $\sigma^2$.

    **Returns:** `(x_minus, x_plus)`.
    """
    _check_gain(g)
    check_positive("sigma", sigma)
    s = np.asarray(g, float) ** 2
    a = 8.0 + 20.0 * s - s * s
    b = np.sqrt(s) * (s + 8.0) ** 1.5
    d = 8.0 * (1.0 - s) ** 3
    return sigma**2 * (a - b) / d, sigma**2 * (a + b) / d


def _stieltjes_m(eta, g):
    """The root m of the Hermitised cubic with Im w > 0 (vectorised over real eta > 0)."""
    eta = np.asarray(eta, float)
    coeffs = np.stack(
        [np.ones_like(eta), -eta, np.full_like(eta, g * g - 1.0), eta], axis=-1
    )  # w^3 - eta w^2 + (g^2-1) w + eta
    comp = np.zeros(eta.shape + (3, 3))
    comp[..., 0, :] = -coeffs[..., 1:]
    comp[..., 1, 0] = 1.0
    comp[..., 2, 1] = 1.0
    w = np.linalg.eigvals(comp)
    w = w[np.arange(w.shape[0]), np.argmax(w.imag, axis=-1)]
    return (eta - w) / (g * g)


class RNNCovarianceSpectrum(NamedTuple):
    """An eigenvalue density on a grid, with its CDF."""

    x: np.ndarray
    """Eigenvalue grid (denser at the edges)."""
    density: np.ndarray
    """$\\rho(x)$."""
    cdf: np.ndarray
    """$\\int_{x_-}^x\\rho$ (trapezoidal)."""
    edges: tuple
    """Support $(x_-, x_+)$."""
    mean: float
    """$\\int x\\rho$."""
    second_moment: float
    """$\\int x^2\\rho$."""

    def quantiles(self, q) -> np.ndarray | float:
        """Inverse CDF at probabilities q (linear interpolation)."""
        c = self.cdf / self.cdf[-1]
        return np.interp(q, c, self.x)


def _finish(x, rho, edges):
    from scipy.integrate import cumulative_trapezoid

    cdf = cumulative_trapezoid(rho, x, initial=0.0)
    z = cdf[-1]
    return RNNCovarianceSpectrum(
        x,
        rho,
        cdf,
        edges,
        float(np.trapezoid(x * rho, x) / z),
        float(np.trapezoid(x * x * rho, x) / z),
    )


def rnn_covariance_spectrum(g, *, sigma: float = 1.0, n_grid: int = 801) -> RNNCovarianceSpectrum:
    r"""Eigenvalue density of the long-window covariance of a linear random network.

    $C = \sigma^2(\mathbb 1-J)^{-1}(\mathbb 1-J)^{-T}$, $J_{ij}\sim N(0, g^2/N)$, $N\to\infty$:
    $\rho_C(x) = \sigma^2\rho_\lambda(\sigma^2/x)/x^2$ with
    $\rho_\lambda(\lambda) = -\mathrm{Im}\,m/(\pi\sqrt\lambda)$ from the root of
    $w^3 - \eta w^2 + (g^2-1)w + \eta = 0$, $\eta = \sqrt\lambda$, $m = (\eta - w)/g^2$ (module
    docstring: the Hu–Sompolinsky density, re-derived here by Hermitisation). The grid is
    $\log x = \log x_- + \log(x_+/x_-)(1 - \cos\theta)/2$, uniform in $\theta$, so that the
    square-root edges are resolved, also near g = 1 where the support spans decades.

    **Arguments:**

    - `g`: gain, 0 < g < 1 (or an effective gain, `rnn_effective_gain`).
    - `sigma`: noise amplitude (> 0).
    - `n_grid`: grid points (>= 11).

    **Returns:** a `RNNCovarianceSpectrum` (grid, density, CDF, support, first two moments).
    """
    _check_gain(g)
    check_positive("sigma", sigma)
    if n_grid < 11:
        raise ConfigError(f"n_grid must be >= 11, got {n_grid}.")
    lo, hi = rnn_covariance_edges(g, sigma=sigma)
    theta = np.linspace(0.0, np.pi, n_grid)
    x = np.exp(np.log(lo) + np.log(hi / lo) * 0.5 * (1.0 - np.cos(theta)))
    x[0], x[-1] = lo, hi
    lam = sigma**2 / x
    m = _stieltjes_m(np.sqrt(lam[1:-1]), float(g))
    rho = np.zeros_like(x)
    rho[1:-1] = np.maximum(-m.imag / (np.pi * np.sqrt(lam[1:-1])), 0.0) * sigma**2 / x[1:-1] ** 2
    return _finish(x, rho, (float(lo), float(hi)))


def rnn_covariance_spectrum_sampled(
    population: RNNCovarianceSpectrum,
    alpha: float,
    *,
    n_atoms: int = 200,
    n_grid: int = 300,
    eps: float = 5e-3,
    n_iter: int = 100,
) -> RNNCovarianceSpectrum:
    r"""Eigenvalue density of a covariance estimated from $M = N/\alpha$ independent samples.

    Silverstein's equation $m(z) = \int dH(t)/[t(1 - \alpha - \alpha z m) - z]$ at
    $z = x(1 + i\epsilon)$, H the population density represented by `n_atoms` equally weighted
    quantiles, solved by damped fixed-point iteration (vectorised over the grid, stopped at a
    relative change of 1e-9); $\rho(x) = \mathrm{Im}\,m/\pi$. The small $\epsilon$ smooths the
    density on the relative scale $\epsilon$; the grid is geometric (the support spans decades
    near g = 1). Measured accuracy of the defaults: the CDF is within 7e-4 (g = 0.6,
    alpha = 0.25) and 5e-3 (g = 0.97, alpha = 0.1) of a 300-atom, 400-point, 1000-iteration
    reference.

    **Arguments:**

    - `population`: the population spectrum (`rnn_covariance_spectrum`).
    - `alpha`: N / M (> 0; 0 < alpha < 1 keeps the estimate full rank).
    - `n_atoms`, `n_grid`, `eps`, `n_iter`: discretisation of H, output grid points, imaginary
      part of z relative to the mean, iterations.

    **Returns:** a `RNNCovarianceSpectrum` (the `edges` are those of the grid, not exact; `mean`
    and `second_moment` are the exact $m_1$ and $m_2 + \alpha m_1^2$).
    """
    check_positive("alpha", alpha)
    if alpha >= 1.0:
        raise ConfigError(f"alpha = N/M must be < 1 (more samples than units), got {alpha}.")
    t = population.quantiles((np.arange(n_atoms) + 0.5) / n_atoms)
    lo = population.edges[0] * (1 - np.sqrt(alpha)) ** 2 * 0.5
    hi = population.edges[1] * (1 + np.sqrt(alpha)) ** 2 * 2.0
    x = np.geomspace(lo, hi, n_grid)
    z = x * (1 + 1j * eps)
    m = -1.0 / z
    for _ in range(n_iter):
        new = np.mean(
            1.0 / (t[None, :] * (1 - alpha - alpha * z * m)[:, None] - z[:, None]), axis=1
        )
        done = np.max(np.abs(new - m)) < 1e-9 * np.max(np.abs(m))
        m = 0.5 * m + 0.5 * new
        if done:
            break
    rho = np.maximum(m.imag / np.pi, 0.0)
    out = _finish(x, rho, (float(lo), float(hi)))
    # the moments of the smoothed density carry the Lorentzian tails; the exact ones are known
    m1, m2 = population.mean, population.second_moment
    return out._replace(mean=m1, second_moment=m2 + alpha * m1 * m1)


def rnn_effective_gain(g, *, sigma: float = 0.0, n_quad: int = 401) -> np.ndarray | float:
    r"""The DMFT effective gain $g_{\rm eff} = g\langle\phi'\rangle$ of a tanh network.

    The network is $\dot x = -x + J\tanh x + \sigma\xi$.

    $\langle\phi'\rangle = \int Dz\,\mathrm{sech}^2(\sqrt{\Delta_0}z)$ with the DMFT variance
    $\Delta_0$ (`rnn_delta0`, noise included); derived at the heuristic level in the module
    docstring. For $\sigma = 0$ and g <= 1 the state is x = 0 and $g_{\rm eff} = g$.

    **Arguments:**

    - `g`: gain(s) (> 0).
    - `sigma`: noise amplitude (>= 0).
    - `n_quad`: quadrature nodes.

    **Returns:** $g_{\rm eff}$, same shape as `g`.
    """
    from ._rnn import _gauss_mean, rnn_delta0

    d0 = np.asarray(rnn_delta0(g, sigma=sigma, n_quad=n_quad), float)
    g_arr = np.asarray(g, float)
    out = np.empty(g_arr.shape)
    for idx, gi in np.ndenumerate(g_arr):
        out[idx] = gi * _gauss_mean(lambda x: 1.0 / np.cosh(x) ** 2, d0[idx], n_quad)
    return out if out.shape else float(out)


def rnn_fit_effective_gain(eigenvalues, *, alpha: float = 0.0) -> float:
    r"""The gain whose linear theory has the measured normalised second moment.

    The linear theory has $m_2/m_1^2 = (1 - g^2)^{-2}$ (with $m_1 = 1/(1-g^2)$ at $\sigma = 1$:
    an identity observed on `rnn_covariance_spectrum` to 1e-12 and checked in the tests, not derived
    here); a finite-sample estimate adds $\alpha$ (`rnn_covariance_spectrum_sampled`). So
    $g^2 = 1 - (m_2/m_1^2 - \alpha)^{-1/2}$, i.e. the gain is fitted to the participation ratio
    $N m_1^2/m_2$ of the spectrum.

    **Arguments:**

    - `eigenvalues`: a sampled covariance spectrum (any scale).
    - `alpha`: N / (number of independent samples) behind the estimate (0: exact covariance).

    **Returns:** the fitted gain (NaN if the corrected ratio is below 1).
    """
    ev = np.asarray(eigenvalues, float)
    if ev.ndim != 1 or ev.size < 2:
        raise ConfigError(f"eigenvalues must be a 1-D array of >= 2 values, got {ev.shape}.")
    if not np.isfinite(alpha) or alpha < 0:
        raise ConfigError(f"alpha must be >= 0, got {alpha!r}.")
    ratio = np.mean(ev**2) / np.mean(ev) ** 2 - alpha
    if ratio < 1.0:
        return float("nan")
    return float(np.sqrt(1.0 - 1.0 / np.sqrt(ratio)))
