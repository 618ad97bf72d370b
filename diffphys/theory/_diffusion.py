r"""Speciation and collapse in diffusion models (Biroli, Bonnaire, de Bortoli, Mézard,
"Dynamical regimes of diffusion models", arXiv 2402.18491).

Forward process $dx = -x\,dt + \sqrt2\, dW$, $x_t = a e^{-t} + \sqrt{\Delta_t} z$,
$\Delta_t = 1 - e^{-2t}$ (the paper's and its repository's convention).

- **Speciation** (Sec. 3): the backward dynamics commits to a class when the noise no longer
  hides the top principal direction of the data, $\Lambda e^{-2t} \sim \Delta_t \approx 1$:
  $t_S = \frac{1}{2}\log\Lambda$ with $\Lambda$ the largest eigenvalue of the data covariance.
- **Collapse** (Sec. 4): for $n = e^{\alpha d}$ training points the backward dynamics is
  attracted to a single training point below the time $t_C$ at which the excess entropy
  $f(t) = \alpha - \frac{1}{d}[s(t) - s_{sep}(t)]$ vanishes, where $s(t)$ is the entropy of
  the noised true distribution and $s_{sep}(t) = \frac{d}{2}\log(2\pi e \Delta_t)$ that of one
  noised point. For Gaussian data (or a Gaussian mixture, whose class structure is
  sub-extensive), $s(t) = \frac12\sum_i \log(2\pi e(\lambda_i e^{-2t} + \Delta_t))$.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError
from .._types import Array, Float, Key
from ..models import EmpiricalScore, forward_sample, ou_variance


def speciation_time(top_eigenvalue) -> Float[Array, "..."]:
    r"""$t_S = \frac{1}{2}\log\Lambda$ (2402.18491, Eq. 6), $\Lambda$ the top covariance eigenvalue."""
    lam = jnp.asarray(top_eigenvalue)
    return 0.5 * jnp.log(lam)


def data_covariance_spectrum(data) -> np.ndarray | float:
    """Eigenvalues (descending) of the empirical covariance of `data` (n, d), centred."""
    x = np.asarray(data, dtype=np.float64)
    x = x - x.mean(axis=0)
    cov = x.T @ x / x.shape[0]
    return np.linalg.eigvalsh(cov)[::-1]


def speciation_time_from_data(data) -> float:
    r"""$t_S = \frac12 \log \Lambda$ with $\Lambda$ the top eigenvalue of the covariance of `data`."""
    return float(0.5 * np.log(data_covariance_spectrum(data)[0]))


def _gauss_hermite(n: int = 160):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / np.sqrt(2 * np.pi)


def clone_probability(t, m2: float, sigma2: float = 1.0) -> np.ndarray | float:
    r"""Probability that two clones split at time t end in the same class: two-Gaussian mixture.

    Data $\pm m + \sigma z$ with equal weights, exact score. Given $x_t$, each clone ends in class
    + with the posterior probability $p = (1 + \tanh h)/2$, $h = m_t \cdot x_t / \Gamma_t$,
    $m_t = m e^{-t}$, $\Gamma_t = \sigma^2 e^{-2t} + \Delta_t$; and with $x_t \sim P_t$,
    $h = a + \sqrt{a}\, z$ with the signal-to-noise ratio $a = |m|^2 e^{-2t} / \Gamma_t$. Hence

    $$\phi(t) = E[p^2 + (1-p)^2] = \tfrac12\left(1 + E_z \tanh^2(a + \sqrt a\, z)\right),$$

    exact in every dimension (Gauss–Hermite quadrature). It goes from 1/2 (t >> t_S) to 1, and
    crosses over at $a \approx 1$, i.e. at $t_S = \frac12 \log \Lambda$, $\Lambda = |m|^2 + \sigma^2$.

    **Arguments:** `t` (array of times), `m2` $= |m|^2$, `sigma2` the within-class variance.
    """
    t = np.asarray(t, dtype=np.float64)
    a = m2 * np.exp(-2 * t) / (sigma2 * np.exp(-2 * t) + (1 - np.exp(-2 * t)))
    z, w = _gauss_hermite()
    a = a[..., None]
    return 0.5 * (1 + np.sum(w * np.tanh(a + np.sqrt(a) * z) ** 2, axis=-1))


def clone_probability_at_speciation() -> float:
    r"""$\phi$ at signal-to-noise $a = 1$: the level whose crossing defines the measured $t_S$."""
    z, w = _gauss_hermite()
    return float(0.5 * (1 + np.sum(w * np.tanh(1 + z) ** 2)))


def crossing_time(t, y, level: float) -> float:
    """First time (from large t downwards) where `y(t)` reaches `level`, linearly interpolated.

    `y` is assumed to increase as t decreases (as the clone probability does). NaN if never.
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(-t)
    t, y = t[order], y[order]
    above = np.nonzero(y >= level)[0]
    if above.size == 0:
        return float("nan")
    i = above[0]
    if i == 0:
        return float(t[0])
    t0, t1, y0, y1 = t[i - 1], t[i], y[i - 1], y[i]
    return float(t0 + (level - y0) * (t1 - t0) / (y1 - y0))


def excess_entropy_gaussian(t, alpha: float, eigenvalues) -> np.ndarray | float:
    r"""Excess entropy density $f(t)$ of Gaussian data with covariance spectrum $\lambda_i$.

    $$f(t) = \alpha - \frac{1}{2d}\sum_{i=1}^d \log\left(1 + \frac{\lambda_i e^{-2t}}{\Delta_t}\right)$$

    (2402.18491, Sec. 4; isotropic $\lambda_i = \sigma^2$ gives the paper's
    $\alpha + \frac12\log(\Delta_t / (\Delta_t + \sigma^2 e^{-2t}))$). Not clipped: collapse is at
    $f(t_C) = 0$, and for $t < t_C$ the empirical measure has $f^e = 0$.
    """
    t = np.asarray(t, dtype=np.float64)[..., None]
    lam = np.asarray(eigenvalues, dtype=np.float64)
    delta = -np.expm1(-2 * t)
    return alpha - 0.5 * np.mean(np.log1p(np.clip(lam, 0, None) * np.exp(-2 * t) / delta), axis=-1)


def collapse_time_gaussian(alpha: float, eigenvalues) -> float:
    r"""$t_C$ solving $f(t_C) = 0$ for Gaussian data (bisection; f increases with t).

    For isotropic data of variance $\sigma^2$: $t_C = \frac12\log(1 + \sigma^2 / (e^{2\alpha} - 1))$.
    """
    if alpha <= 0:
        raise ConfigError(f"alpha = log(n)/d must be positive, got {alpha}.")
    lo, hi = 1e-12, 50.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if excess_entropy_gaussian(mid, alpha, eigenvalues) > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def excess_entropy_empirical(
    key: Key, data, t, *, n_samples: int = 1024, chunk_size: int | None = None
) -> tuple[Array, Array]:
    r"""Monte Carlo excess entropy $f^e(t)$ of the noised empirical measure of `data` (n, d).

    $$f^e(t) = \alpha + \frac1d E_{x \sim P^e_t}\log P^e_t(x) + \frac12\left(1 + \log 2\pi\Delta_t\right),$$

    the estimator of the paper's repository (`Gaussian_mixtures_entropy.py`). It tracks $f(t)$
    for $t > t_C$ and drops to 0 below.

    **Returns:** `(f, stderr)`, arrays of the shape of `t`.
    """
    data = jnp.asarray(data)
    n, d = data.shape
    score = EmpiricalScore(data, chunk_size)
    alpha = math.log(n) / d
    ts = jnp.atleast_1d(jnp.asarray(t, data.dtype))

    def one_t(k, tt):
        k1, k2 = jax.random.split(k)
        idx = jax.random.randint(k1, (n_samples,), 0, n)
        x = forward_sample(k2, data[idx], tt)
        logp = jax.vmap(score.log_density, in_axes=(0, None))(x, tt) / d
        const = alpha + 0.5 * (1 + jnp.log(2 * jnp.pi * ou_variance(tt)))
        return jnp.mean(logp) + const, jnp.std(logp) / jnp.sqrt(float(n_samples))

    keys = jax.random.split(key, ts.shape[0])
    f, err = jax.lax.map(lambda a: one_t(*a), (keys, ts))
    shape = jnp.shape(jnp.asarray(t))
    return f.reshape(shape), err.reshape(shape)
