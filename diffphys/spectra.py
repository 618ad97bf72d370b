"""Weight spectra: empirical spectral densities, power-law tails and the Marchenko–Pastur null.

Heavy-tailed self-regularisation (Martin & Mahoney, JMLR 22 (2021) 165, arXiv 1810.01075;
SETOL, arXiv 2507.17912): the eigenvalues of `X = W^T W / N` of a trained layer `W` (N x M,
N >= M) develop a power-law tail `rho(lambda) ~ lambda^(-alpha)`, while a random matrix of the
same shape and variance follows the Marchenko–Pastur law.

Why a top-level engine module (beside `observables.py`) and not `theory/`: the estimator
(`fit_power_law`) and the spectrum (`esd`) are model-agnostic analysis tools applied to any
student's weights; the Marchenko–Pastur formulas are the null they are read against and are
kept with them so that one import serves the whole analysis.

The power-law fit is the continuous maximum-likelihood estimator with the KS-optimal `x_min`
(Clauset, Shalizi & Newman, SIAM Rev. 51 (2009) 661, eqs. 3.1, 3.2, 3.9), the default fit of
`weightwatcher` 0.7.7 (`WW_powerlaw.WWFit.fit_power_law_standard`, read in its source): for
every candidate `x_min = lambda_i` (all sorted eigenvalues but the largest),
`alpha_i = 1 + n_i / sum_{j >= i} log(lambda_j / lambda_i)`, `n_i = n - i`, the KS distance
`D_i = max_{j >= i} |1 - (lambda_j / lambda_i)^(1 - alpha_i) - (j - i) / n_i|`, the
candidate with the smallest `D_i` kept, and the error `(alpha - 1) / sqrt(n_i)`. All candidates
are evaluated at once on an `n x n` grid (memory O(n^2): fine for a layer of a few thousand).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ConfigError, ShapeError

__all__ = [
    "PowerLawFit",
    "esd",
    "fit_power_law",
    "mp_cdf",
    "mp_density",
    "mp_edges",
    "mp_fit_variance",
    "mp_outlier",
    "spectra_of",
    "weightwatcher_alpha",
]


class PowerLawFit(NamedTuple):
    """The KS-optimal continuous power-law fit of a spectrum's tail (leading axes = batch)."""

    alpha: jax.Array  # exponent of rho(lambda) ~ lambda^-alpha
    alpha_err: jax.Array  # (alpha - 1) / sqrt(n_tail), Clauset et al. eq. 3.2
    x_min: jax.Array  # KS-optimal lower cut-off
    ks: jax.Array  # KS distance at x_min
    n_tail: jax.Array  # number of eigenvalues >= x_min


def _check_matrix(W) -> np.ndarray | None:
    try:
        a = np.asarray(W)
    except Exception:  # a tracer: shape only
        if W.ndim < 2:
            raise ShapeError(
                f"a weight matrix needs >= 2 dims (..., N, M), got shape {W.shape}."
            ) from None
        return None
    if a.ndim < 2:
        raise ShapeError(f"a weight matrix needs >= 2 dims (..., N, M), got shape {a.shape}.")
    if a.size == 0 or min(a.shape[-2:]) < 2:
        raise ConfigError(f"weight matrix of shape {a.shape} is empty or has a side < 2.")
    if not np.issubdtype(a.dtype, np.floating):
        raise ConfigError(f"weight matrix must be floating point, got dtype {a.dtype}.")
    if not np.all(np.isfinite(a)):
        raise ConfigError(
            "weight matrix has non-finite entries (training diverged?); drop it or lower the lr."
        )
    return a


def _eigvalsh_one(x):
    # Under vmap, jaxlib 0.10.2's batched CPU eigh can deadlock on 2 cores: lax.map instead.
    return jnp.linalg.eigvalsh(x)


def esd(W) -> jax.Array:
    """Eigenvalues of `X = W^T W / N`, sorted ascending: the empirical spectral density.

    **Arguments:**

    - `W`: a weight matrix `(..., N, M)`; it is transposed so that `N >= M` (the aspect ratio
      `Q = N / M >= 1`), as `weightwatcher` does.

    **Returns:** `(..., M)` eigenvalues. Normalisation: `weightwatcher` 0.7.7 uses the
    unnormalised `W^T W` (the `1/N` is commented out in its source); the power-law exponent is
    scale-invariant, so the two agree on `alpha` while only this one is comparable with
    Marchenko–Pastur at `sigma^2 = var(W)`.
    """
    _check_matrix(W)
    return _esd(jnp.asarray(W))


@jax.jit
def _esd(W):
    if W.shape[-2] < W.shape[-1]:
        W = jnp.swapaxes(W, -1, -2)
    n, m = W.shape[-2:]
    X = jnp.einsum("...ni,...nj->...ij", W, W) / n
    flat = X.reshape(-1, m, m)
    ev = jax.lax.map(_eigvalsh_one, flat).reshape(*X.shape[:-2], m)
    return jnp.sort(ev, axis=-1)


def _fit_sorted(x, valid, min_tail: int):
    """KS-optimal MLE on sorted `x`; `valid` masks eigenvalues above the zero threshold."""
    n = x.shape[-1]
    logx = jnp.log(jnp.where(valid, x, 1.0))
    i = jnp.arange(n)
    first = jnp.argmax(valid)  # index of the first valid eigenvalue
    # L[i, j] = log(x_j / x_i) for j >= i (upper triangle), computed directly: no cancellation.
    L = logx[None, :] - logx[:, None]
    upper = i[None, :] >= i[:, None]
    n_i = (n - i).astype(x.dtype)
    s = jnp.sum(jnp.where(upper, L, 0.0), axis=1)
    alpha = 1.0 + n_i / jnp.where(s > 0, s, 1.0)
    ok = (i >= first) & (n - i >= min_tail) & (i < n - 1) & (s > 0) & (alpha > 1.0)
    model_cdf = 1.0 - jnp.exp((1.0 - alpha[:, None]) * L)
    emp_cdf = (i[None, :] - i[:, None]).astype(x.dtype) / n_i[:, None]
    D = jnp.max(jnp.where(upper, jnp.abs(model_cdf - emp_cdf), 0.0), axis=1)
    D = jnp.where(ok, D, jnp.inf)
    k = jnp.argmin(D)
    a = alpha[k]
    return PowerLawFit(a, (a - 1.0) / jnp.sqrt(n_i[k]), x[k], D[k], (n - k).astype(jnp.int32))


_fit_batch = jax.jit(jax.vmap(_fit_sorted, in_axes=(0, 0, None)), static_argnums=2)


def fit_power_law(eigenvalues, *, min_tail: int = 10, thresh: float = 1e-5) -> PowerLawFit:
    """Fit `rho(lambda) ~ lambda^-alpha` to the tail of a spectrum: continuous MLE, KS-optimal x_min.

    **Arguments:**

    - `eigenvalues`: `(..., n)` non-negative eigenvalues (e.g. from `esd`); leading axes are a
      batch, fitted independently.
    - `min_tail`: the fewest eigenvalues a candidate tail may hold (`weightwatcher` allows 2;
      tails of fewer than ~10 points give meaningless exponents).
    - `thresh`: eigenvalues `<= thresh * max` are treated as exact zeros and ignored
      (`weightwatcher` drops `<= 1e-5` absolute).

    **Returns:** `PowerLawFit(alpha, alpha_err, x_min, ks, n_tail)`, each of shape `(...)`.

    `alpha_i = 1 + n_i / sum_{j>=i} log(lambda_j/lambda_i)`, error `(alpha - 1)/sqrt(n_tail)`,
    `x_min` minimising the KS distance (Clauset, Shalizi & Newman 2009, eqs. 3.1, 3.2, 3.9),
    vectorised over all candidate `x_min` (no Python loop).
    """
    if not isinstance(min_tail, int | np.integer) or min_tail < 2:
        raise ConfigError(f"min_tail must be an integer >= 2, got {min_tail!r}.")
    x = np.asarray(eigenvalues)
    if x.ndim < 1 or x.size == 0:
        raise ConfigError(f"fit_power_law needs a non-empty (..., n) array, got shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise ConfigError("eigenvalues have non-finite entries (training diverged?).")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    x = np.sort(x, axis=-1)
    valid = x > thresh * x[..., -1:]
    n_pos = valid.sum(axis=-1)
    if np.any(n_pos < min_tail + 1):
        raise ConfigError(
            f"only {int(n_pos.min())} non-zero eigenvalues but a tail needs min_tail={min_tail} "
            f"(+1): use a larger matrix or a smaller min_tail."
        )
    batch = x.shape[:-1]
    flat_x = jnp.asarray(x.reshape(-1, x.shape[-1]))
    flat_v = jnp.asarray(valid.reshape(-1, x.shape[-1]))
    out = _fit_batch(flat_x, flat_v, int(min_tail))
    return PowerLawFit(*(o.reshape(batch) for o in out))


def mp_edges(q, sigma2=1.0):
    """Edges `lambda_-, lambda_+ = sigma^2 (1 -+ 1/sqrt(Q))^2` of the Marchenko–Pastur bulk.

    **Arguments:** `q`: aspect ratio `Q = N / M >= 1`; `sigma2`: variance of the entries.

    **Returns:** `(lambda_minus, lambda_plus)` for `X = W^T W / N` (Marchenko & Pastur 1967).
    """
    _check_q(q)
    r = 1.0 / jnp.sqrt(jnp.asarray(q, jnp.float32))
    s2 = jnp.asarray(sigma2, jnp.float32)
    return s2 * (1.0 - r) ** 2, s2 * (1.0 + r) ** 2


def _check_q(q):
    try:
        a = np.asarray(q, dtype=np.float64)
    except Exception:
        return
    if not np.all(np.isfinite(a)) or np.any(a < 1):
        raise ConfigError(f"aspect ratio Q = N/M must be >= 1 (transpose W), got {q!r}.")


def mp_density(x, q, sigma2=1.0):
    """Marchenko–Pastur density of the eigenvalues of `W^T W / N`, `W_ij ~ (0, sigma^2)` iid.

    `rho(x) = Q / (2 pi sigma^2 x) sqrt((lambda_+ - x)(x - lambda_-))` on the bulk, 0 outside
    (no atom at 0 since `Q = N/M >= 1`).

    **Returns:** the density at `x` (any shape).
    """
    lo, hi = mp_edges(q, sigma2)
    x = jnp.asarray(x, jnp.float32)
    q = jnp.asarray(q, jnp.float32)
    s2 = jnp.asarray(sigma2, jnp.float32)
    inside = (x > lo) & (x < hi)
    root = jnp.sqrt(jnp.where(inside, (hi - x) * (x - lo), 0.0))
    return jnp.where(inside, q * root / (2 * jnp.pi * s2 * jnp.where(inside, x, 1.0)), 0.0)


def mp_cdf(x, q, sigma2=1.0):
    """Closed-form Marchenko–Pastur CDF `F(x) = int_{lambda_-}^x rho`.

    Derived here: with `x = m + r cos(theta)` (`m, r` the bulk's centre and half-width),
    `F = Q r^2 / (2 pi sigma^2) [G(pi) - G(theta)]`,
    `G(theta) = -sin(theta)/r + m theta / r^2
    - 2 sqrt(lambda_- lambda_+) / r^2 * atan2(sqrt(lambda_-/lambda_+) sin(theta/2), cos(theta/2))`
    (the integral of `sin^2 / (m + r cos)`); `F(lambda_+) = 1` exactly.
    """
    _check_q(q)
    return _mp_cdf(
        jnp.asarray(x, jnp.float32), jnp.asarray(q, jnp.float32), jnp.asarray(sigma2, jnp.float32)
    )


@jax.jit
def _mp_cdf(x, q, s2):
    r_q = 1.0 / jnp.sqrt(q)
    lo, hi = s2 * (1.0 - r_q) ** 2, s2 * (1.0 + r_q) ** 2
    m, r = (hi + lo) / 2, (hi - lo) / 2
    g = jnp.sqrt(lo * hi)
    k = jnp.sqrt(lo / hi)

    def G(t):
        return (
            -jnp.sin(t) / r
            + m * t / r**2
            - 2 * g / r**2 * jnp.arctan2(k * jnp.sin(t / 2), jnp.cos(t / 2))
        )

    theta = jnp.arccos(jnp.clip((x - m) / r, -1.0, 1.0))
    F = q * r**2 / (2 * jnp.pi * s2) * (G(jnp.pi) - G(theta))
    return jnp.clip(jnp.where(x <= lo, 0.0, jnp.where(x >= hi, 1.0, F)), 0.0, 1.0)


def mp_outlier(theta, q, sigma2=1.0):
    """Top eigenvalue of a Marchenko–Pastur matrix plus a rank-one spike `theta v v^T`.

    For `X = W^T W / N + theta v v^T` (`W` N x M with iid entries of variance `sigma^2`,
    `|v| = 1` independent of `W`, `gamma = M / N = 1 / Q`), as `N, M -> infinity` the top
    eigenvalue separates from the bulk when `t = theta / sigma^2 > sqrt(gamma) + gamma` (the
    BBP transition) and sits at `lambda = sigma^2 (t + t / (t - gamma))`; below it, at the
    edge `lambda_+ = sigma^2 (1 + sqrt(gamma))^2`.

    Derived here (free additive convolution): the outlier solves `G(lambda) = 1 / theta` with
    `G` the Stieltjes transform of MP, whose inverse is `R(w) + 1/w`, `R(w) = 1 / (1 - gamma w)`
    at `sigma^2 = 1`; `G(lambda_+) = 1 / (sqrt(gamma) (1 + sqrt(gamma)))` gives the threshold
    (Benaych-Georges & Nadakuditi, Adv. Math. 227 (2011) 494, for the general statement).

    **Arguments:** `theta` (>= 0, any shape), `q = N / M >= 1`, `sigma2` (> 0).

    **Returns:** the limiting top eigenvalue, shape of `theta`.
    """
    _check_q(q)
    th = np.asarray(theta, dtype=np.float64)
    if not np.all(np.isfinite(th)) or np.any(th < 0):
        raise ConfigError(f"theta must be finite and >= 0, got {theta!r}.")
    if not float(sigma2) > 0:
        raise ConfigError(f"sigma2 must be > 0, got {sigma2!r}.")
    g = 1.0 / float(q)
    t = th / float(sigma2)
    above = t > np.sqrt(g) + g
    t_safe = np.where(above, t, 1.0 + g)
    out = np.where(above, t_safe + t_safe / (t_safe - g), (1.0 + np.sqrt(g)) ** 2)
    return float(sigma2) * out


def mp_fit_variance(eigenvalues, q, *, n_grid: int = 400):
    """Fit the Marchenko–Pastur variance to a spectrum's bulk by minimising the KS distance.

    A heavy tail barely moves the empirical CDF's bulk, so the KS-optimal `sigma^2` follows
    the bulk (as `weightwatcher`'s `mp_fit` aims to), unlike the raw variance of `W`.

    **Arguments:** `eigenvalues`: `(n,)` spectrum of `W^T W / N`; `q`: `N / M`;
    `n_grid`: grid of `sigma^2` from 0.05 to 2 times the mean eigenvalue (vectorised).

    **Returns:** `(sigma2, ks)`.
    """
    x = jnp.sort(jnp.asarray(eigenvalues, jnp.float32))
    if x.ndim != 1 or x.shape[0] < 2 or not bool(jnp.all(jnp.isfinite(x))):
        raise ConfigError("mp_fit_variance needs a finite 1-d spectrum of >= 2 eigenvalues.")
    _check_q(q)
    return _mp_fit_variance(x, jnp.asarray(q, jnp.float32), int(n_grid))


@functools.partial(jax.jit, static_argnums=2)
def _mp_fit_variance(x, q, n_grid):
    n = x.shape[0]
    grid = jnp.mean(x) * jnp.linspace(0.05, 2.0, n_grid, dtype=jnp.float32)
    F = jax.vmap(lambda s2: _mp_cdf(x, q, s2))(grid)
    hi = jnp.arange(1, n + 1, dtype=jnp.float32) / n
    lo = jnp.arange(n, dtype=jnp.float32) / n
    D = jnp.max(jnp.maximum(jnp.abs(F - hi), jnp.abs(F - lo)), axis=1)
    k = jnp.argmin(D)
    return grid[k], D[k]


def spectra_of(weights: dict, *, bins: int = 60, min_tail: int = 10) -> dict:
    """Spectral analysis of named weight matrices: ESD histogram, power-law fit, MP null.

    The seam through which any student's weights enter the `weight-spectra` experiment
    (e.g. `{"grokking.w1": W}`).

    **Arguments:**

    - `weights`: `{"name": (N, M) array}`.
    - `bins`: log-spaced histogram bins over each spectrum's range.
    - `min_tail`: passed to `fit_power_law`.

    **Returns:** `{"name": {"eigenvalues", "hist", "edges", "fit": PowerLawFit, "q",
    "sigma2" (variance of W), "mp_lambda" (edges), "sigma2_fit", "mp_ks_fit"}}`, NumPy arrays.
    """
    if not isinstance(weights, dict) or not weights:
        raise ConfigError("spectra_of needs a non-empty dict {'name': weight_matrix}.")
    out = {}
    for name, W in weights.items():
        a = _check_matrix(W)
        if a is None or a.ndim != 2:
            raise ShapeError(f"weights[{name!r}] must be one concrete (N, M) matrix.")
        ev = np.asarray(esd(a))
        n, m = max(a.shape), min(a.shape)
        fit = fit_power_law(ev, min_tail=min_tail)
        pos = ev[ev > 1e-5 * ev[-1]]
        edges = np.geomspace(pos[0], pos[-1] * 1.0001, bins + 1)
        hist, _ = np.histogram(ev, bins=edges, density=False)
        hist = hist / (ev.size * np.diff(edges))
        s2 = float(np.var(a))
        s2_fit, ks_fit = mp_fit_variance(ev, n / m)
        out[name] = {
            "eigenvalues": ev,
            "hist": hist,
            "edges": edges,
            "fit": PowerLawFit(*(np.asarray(f) for f in fit)),
            "q": n / m,
            "sigma2": s2,
            "mp_lambda": tuple(float(v) for v in mp_edges(n / m, s2)),
            "sigma2_fit": float(s2_fit),
            "mp_ks_fit": float(ks_fit),
        }
    return out


def weightwatcher_alpha(W) -> tuple[float, float]:
    """`weightwatcher`'s own fit of one matrix: `WeightWatcher(model).analyze()` on a torch
    `Linear` layer holding `W` (needs the `spectra` extra: weightwatcher and CPU torch).

    **Returns:** `(alpha, sigma)` as weightwatcher reports them. Raises `ImportError` when
    weightwatcher or torch is absent.
    """
    import warnings

    a = _check_matrix(W)
    if a is None or a.ndim != 2:
        raise ShapeError("weightwatcher_alpha needs one concrete (N, M) matrix.")
    import torch
    import weightwatcher

    layer = torch.nn.Linear(a.shape[0], a.shape[1], bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(np.ascontiguousarray(a.T, dtype=np.float32)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas deprecations raised inside weightwatcher
        df = weightwatcher.WeightWatcher(model=torch.nn.Sequential(layer)).analyze()
    return float(df["alpha"].iloc[0]), float(df["sigma"].iloc[0])
