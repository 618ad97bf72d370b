r"""Observables and their error bars.

Sample-based estimators take arrays whose *first* axis is the Monte Carlo time (or the sample
index) and reduce it; any further axes are kept (batches of temperatures, sizes, disorder).
Error bars come from the jackknife over `n_blocks` contiguous blocks, which also accounts for
autocorrelation when the blocks are longer than the autocorrelation time.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ._errors import ConfigError
from ._types import Array, ArrayLike, Float

# -- per-configuration observables -------------------------------------------------------


def magnetization(x: ArrayLike) -> Float[Array, ""]:
    """Magnetisation per spin, m = (1/N) sum_i s_i, of one configuration."""
    return jnp.mean(jnp.asarray(x, jnp.float32))


def overlap(x: ArrayLike, y: ArrayLike) -> Float[Array, ""]:
    """Replica overlap q = (1/N) sum_i s_i t_i of two configurations (Ising or continuous)."""
    return jnp.mean(jnp.asarray(x, jnp.float32) * jnp.asarray(y, jnp.float32))


def replica_overlaps(x: ArrayLike, *, n_site_axes: int = 1) -> Array:
    r"""Overlaps $q_{ab} = \frac1N \sum_i x^a_i x^b_i$ of every pair of replicas $a < b$.

    `x` has the replica axis first, then any batch axes, then `n_site_axes` site axes, e.g. the
    configurations of `sampling.replicas(sampling.parallel_tempering(base, betas), n)`, whose
    `state.states.x` is laid out `(n replicas, R temperatures ordered as betas, *sites)`:
    `replica_overlaps(state.states.x, n_site_axes=2)` for an L x L lattice.

    **Returns:** shape `(n (n - 1) / 2, *batch)`, pairs in the order (0, 1), (0, 2), ..., (1, 2)...
    """
    x = jnp.asarray(x, jnp.float32)
    n = x.shape[0]
    if n < 2 or x.ndim < 1 + n_site_axes:
        raise ConfigError(
            f"need at least 2 replicas on the first axis and {n_site_axes} site axes, "
            f"got shape {x.shape}."
        )
    flat = x.reshape(*x.shape[: x.ndim - n_site_axes], -1)
    a, b = jnp.triu_indices(n, k=1)
    return jnp.mean(flat[a] * flat[b], axis=-1)


def overlap_distribution(
    q: ArrayLike, *, bins: int = 41, range: tuple[float, float] = (-1.0, 1.0)
) -> tuple[Array, Array]:
    r"""Histogram estimate of the overlap distribution $P(q)$ from samples along the first axis.

    Every further axis (temperatures, disorder samples) gets its own histogram. For Ising spins
    with N sites, q takes the N + 1 values $-1, -1 + 2/N, ..., 1$: choose `bins` so that every
    bin holds the same number of them (e.g. `bins = N + 1` with `range = (-1 - 1/N, 1 + 1/N)`).

    **Returns:** `(density, edges)`: `density` of shape `(*q.shape[1:], bins)`, normalised so
    that `sum(density * width) = 1` over the samples inside `range`, and the `bins + 1` edges.
    """
    q = jnp.asarray(q, jnp.float32)
    lo, hi = float(range[0]), float(range[1])
    if bins < 1 or not hi > lo:
        raise ConfigError(f"need bins >= 1 and range[0] < range[1], got {bins}, {range}.")
    edges = jnp.linspace(lo, hi, bins + 1)
    idx = jnp.floor((q - lo) / (hi - lo) * bins).astype(jnp.int32)
    idx = jnp.where(q == hi, bins - 1, idx)  # the closed right edge, as numpy.histogram
    inside = (idx >= 0) & (idx < bins)
    counts = jnp.sum(
        (idx[..., None] == jnp.arange(bins)) & inside[..., None], axis=0, dtype=jnp.float32
    )
    total = jnp.sum(counts, axis=-1, keepdims=True)
    return counts / jnp.maximum(total, 1.0) / ((hi - lo) / bins), edges


def energy(model) -> Callable[[Array], Float[Array, ""]]:
    """`energy(model)(x)`: the model's energy as a recordable observable."""
    return model.energy


# -- jackknife / blocking ----------------------------------------------------------------


def _blocks(x: ArrayLike, n_blocks: int) -> Array:
    n = x.shape[0]
    if n_blocks < 2 or n < n_blocks:
        raise ConfigError(
            f"need at least 2 blocks and one sample per block, got {n} samples, {n_blocks} blocks."
        )
    b = n // n_blocks
    return x[: b * n_blocks].reshape(n_blocks, b, *x.shape[1:])


def jackknife(
    estimator: Callable[..., Array], *samples: ArrayLike, n_blocks: int = 20
) -> tuple[Array, Array]:
    r"""Jackknife estimate and error of a (possibly nonlinear) function of sample means.

    `estimator(*means)` receives the means over the first axis of each of `samples`, e.g.
    `jackknife(lambda m2, m4: 1 - m4 / (3 * m2**2), m**2, m**4)` for the Binder cumulant.

    **Returns:** `(value, error)` where value is the estimator on the full sample and
    $\sigma^2 = \frac{B-1}{B}\sum_b (\hat\theta_{(b)} - \bar\theta)^2$ over B leave-one-block-out
    estimates.
    """
    blocks = [_blocks(jnp.asarray(s), n_blocks) for s in samples]
    sums = [b.sum(axis=(0, 1)) for b in blocks]
    counts = blocks[0].shape[0] * blocks[0].shape[1]
    bsize = blocks[0].shape[1]
    full = estimator(*[s / counts for s in sums])

    def leave_out(i):
        return estimator(*[(s - b[i].sum(0)) / (counts - bsize) for s, b in zip(sums, blocks)])

    loo = jax.vmap(leave_out)(jnp.arange(n_blocks))
    err = jnp.sqrt((n_blocks - 1) / n_blocks * jnp.sum((loo - loo.mean(0)) ** 2, axis=0))
    return full, err


def mean_error(x: ArrayLike, n_blocks: int = 20) -> tuple[Array, Array]:
    """Mean over the first axis with its blocking (binned) standard error."""
    b = _blocks(jnp.asarray(x), n_blocks).mean(axis=1)
    return b.mean(0), b.std(0, ddof=1) / jnp.sqrt(n_blocks)


def binder_cumulant(m: ArrayLike, n_blocks: int = 20) -> tuple[Array, Array]:
    """U_4 = 1 - <m^4> / (3 <m^2>^2) from magnetisation (or overlap) samples, with error."""
    return jackknife(lambda m2, m4: 1.0 - m4 / (3.0 * m2**2), m**2, m**4, n_blocks=n_blocks)


def susceptibility(m: ArrayLike, n_sites: int, beta, n_blocks: int = 20, *, connected: bool = True):
    """chi = beta N (<m^2> - <|m|>^2) (connected) or beta N <m^2>, from per-spin m samples."""
    if connected:
        return jackknife(
            lambda a, a2: beta * n_sites * (a2 - a**2), jnp.abs(m), m**2, n_blocks=n_blocks
        )
    return jackknife(lambda a2: beta * n_sites * a2, m**2, n_blocks=n_blocks)


def specific_heat(e: ArrayLike, n_sites: int, beta, n_blocks: int = 20):
    """c = beta^2 (<E^2> - <E>^2) / N from total-energy samples, with jackknife error."""
    return jackknife(lambda a, a2: beta**2 * (a2 - a**2) / n_sites, e, e**2, n_blocks=n_blocks)


# -- time correlations -------------------------------------------------------------------


def two_time_correlation(traj: ArrayLike, t_w_index, t_index) -> Array:
    r"""C(t, t_w) = (1/N) sum_i x_i(t_w) x_i(t) from a trajectory `traj[time, ...sites]`.

    `t_w_index`, `t_index` index the recorded times; they broadcast against each other, so
    `two_time_correlation(traj, tw[:, None], t[None, :])` gives the full two-time matrix.
    """
    x = jnp.asarray(traj, jnp.float32).reshape(traj.shape[0], -1)
    return jnp.mean(x[jnp.asarray(t_w_index)] * x[jnp.asarray(t_index)], axis=-1)


def autocorrelation(x: ArrayLike) -> Array:
    """Normalised autocorrelation function rho(t) of a series along axis 0 (FFT based)."""
    x = jnp.asarray(x, jnp.float32)
    n = x.shape[0]
    x = x - x.mean(0)
    f = jnp.fft.rfft(x, n=2 * n, axis=0)
    acf = jnp.fft.irfft(f * jnp.conj(f), axis=0)[:n]
    return acf / jnp.where(acf[0] == 0, 1.0, acf[0])


def integrated_autocorr_time(x: ArrayLike, c: float = 5.0) -> Array:
    r"""Integrated autocorrelation time tau = 1/2 + sum_{t>=1} rho(t) with Sokal's automatic
    window (the smallest W with W >= c tau(W)); tau = 1/2 for independent samples."""
    rho = autocorrelation(x)
    tau = 0.5 + jnp.cumsum(rho[1:], axis=0)  # tau(W) for W = 1..n-1
    tau = jnp.concatenate([jnp.full_like(rho[:1], 0.5), tau], axis=0)
    w = jnp.arange(rho.shape[0], dtype=rho.dtype).reshape(-1, *([1] * (rho.ndim - 1)))
    ok = w >= c * tau
    first = jnp.argmax(ok, axis=0)
    first = jnp.where(jnp.any(ok, axis=0), first, rho.shape[0] - 1)
    return jnp.take_along_axis(tau, first[None], axis=0)[0]


__all__ = [
    "overlap_distribution",
    "replica_overlaps",
    "autocorrelation",
    "binder_cumulant",
    "energy",
    "integrated_autocorr_time",
    "jackknife",
    "magnetization",
    "mean_error",
    "overlap",
    "specific_heat",
    "susceptibility",
    "two_time_correlation",
]
