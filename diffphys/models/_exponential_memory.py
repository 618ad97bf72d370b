"""Exponential associative memories (Demircigil et al. 2017; Lucibello & Mezard 2024): energies
$-\\sum_\\mu w_\\mu e^{\\lambda N m_\\mu}$ with overflow-free flip kernels."""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from .._errors import ConfigError, check_positive
from .._types import Array, Float, Spins
from ._hopfield import AbstractAssociativeMemory, _check_patterns, _check_weights, _is_binary

# -- exponential separation functions ------------------------------------------------------


def _exp_scaled(m, col, s_i, w, lam, n: int):
    b = lam * n * m
    c = _log_scale(b, w)
    e = w * jnp.exp(b - c)
    return -jnp.sum(e * jnp.expm1(-2.0 * lam * s_i * col)), c


def _log_scale(b, w):
    # the largest exponent among patterns that are not masked out (0 if all are)
    c = jnp.max(jnp.where(w > 0, b, -jnp.inf))
    return jnp.where(jnp.isfinite(c), c, jnp.zeros_like(c))


def _exp_scaled_all(x, m, patterns, w, lam, n: int):
    # valid for ±1 patterns: exp(-2 lam s xi) - 1 = cosh(2 lam) - 1 - s xi sinh(2 lam)
    s = x.astype(m.dtype)
    b = lam * n * m
    e = w * jnp.exp(b - _log_scale(b, w))
    return s * jnp.sinh(2 * lam) * (e @ patterns) - (jnp.cosh(2 * lam) - 1) * jnp.sum(e)


def _unscale(scaled, log_factor):
    return jnp.where(scaled == 0, jnp.zeros_like(scaled), scaled * jnp.exp(log_factor))


def _check_exp(patterns, lam):
    check_positive("lam", lam)
    if _is_binary(patterns) is False:
        raise ConfigError(
            "the exponential memories are defined here for ±1 patterns; got entries other than "
            "±1. Binarise the patterns (jnp.sign) or use DenseAssociativeMemory."
        )


class _AbstractExponentialMemory(AbstractAssociativeMemory):
    r"""Memories with $E = -\sum_\mu w_\mu e^{\lambda N m_\mu + c}$, c a constant offset.

    Holds what the two exponential models share: ±1 patterns, weights, λ, log-sum-exp energies
    and the overflow-free flip kernels. A concrete model fixes the offset `log_offset()`.
    """

    weights: Float[Array, " P"]
    patterns: Float[Array, "P N"]
    lam: Float[Array, ""]

    def __init__(self, patterns, lam=1.0, *, weights=None, dtype=jnp.float32):
        _check_exp(patterns, lam)
        self.patterns = _check_patterns(patterns, dtype)
        self.weights = _check_weights(weights, self.patterns.shape[0], dtype)
        self.lam = jnp.asarray(lam, dtype)

    @abc.abstractmethod
    def log_offset(self) -> Float[Array, ""]:
        """The constant c added to every exponent."""

    def log_minus_energy(self, m) -> Float[Array, ""]:
        r"""$\log(-E) = \mathrm{logsumexp}_\mu(\lambda N m_\mu + c + \log w_\mu)$: finite when
        $E$ itself over- or underflows (-inf when every weight is 0)."""
        return jax.nn.logsumexp(self.lam * self.n * m + self.log_offset(), b=self.weights)

    def energy_from_overlaps(self, m):
        return -jnp.exp(self.log_minus_energy(m))

    def flip_delta(self, m, col, s_i):
        scaled, c = _exp_scaled(m, col, s_i, self.weights, self.lam, self.n)
        return _unscale(scaled, c + self.log_offset())

    def scaled_flip_delta(self, m, col, s_i):
        return _exp_scaled(m, col, s_i, self.weights, self.lam, self.n)[0]

    def scaled_flip_deltas(self, x, m):
        return _exp_scaled_all(x, m, self.patterns, self.weights, self.lam, self.n)


class ExponentialMemory(_AbstractExponentialMemory):
    r"""Dense associative memory with exponential separation function (Demircigil et al. 2017).

    $$E(\sigma) = -\sum_\mu w_\mu \exp(\lambda\, \xi^\mu\cdot\sigma)
      = -\sum_\mu w_\mu e^{\lambda N m_\mu},$$

    Demircigil, Heusel, Löwe, Upgang, Vermet (J. Stat. Phys. 168, 2017) use $F(x) = e^x$
    ($\lambda = 1$) and prove a capacity exponential in N. The energy is evaluated as
    $-\exp(\mathrm{logsumexp}_\mu(\lambda N m_\mu + \log w_\mu))$ (it overflows float32 only
    when the energy itself does, $\lambda N m \gtrsim 88$; `log_minus_energy` never does); the
    dynamics use log-sum-exp scaled differences and never overflow. Patterns must be ±1.
    Capacity: `diffphys.theory.exponential_capacity_rate`.

    **Arguments:**

    - `patterns`: `(P, N)` ±1 patterns.
    - `lam`: the rate $\lambda > 0$ of the exponential (default 1).
    - `weights`: optional `(P,)` weights.
    """

    def log_offset(self):
        return jnp.zeros((), self.patterns.dtype)


class ExponentialLossMemory(_AbstractExponentialMemory):
    r"""The exponential Hopfield model of Albanese, Alessandrelli, Barra, Sollich, "Yet another
    exponential Hopfield model" (arXiv 2509.06905): exponentials of the per-pattern quadratic
    (squared-error) loss.

    $$E(\sigma) = -\sum_\mu w_\mu \exp\Big(-\frac{\lambda}{2}\,\|\sigma - \xi^\mu\|^2\Big)
      = -\sum_\mu w_\mu\, e^{-\lambda N (1 - m_\mu)},$$

    since $\|\sigma-\xi^\mu\|^2 = 2N(1-m_\mu)$ for ±1 spins and patterns. Each term lies in
    (0, 1] and equals 1 exactly at perfect recall. The energy is an N-body interaction
    ($e^{\lambda\xi\cdot\sigma} = \prod_i(\cosh\lambda + \xi_i\sigma_i\sinh\lambda)$) and is
    not extensive, which is our reading of the paper's "not a mean-field system": the usual
    extensive free-energy (replica) treatment does not apply, hence a signal-to-noise
    analysis. Its zero-temperature dynamics coincide with `ExponentialMemory` at the same λ
    (the energies differ by the positive factor $e^{-\lambda N}$), hence the same capacity
    (`diffphys.theory.exponential_capacity_rate`); the temperature scale differs. Energies are
    computed as $-\exp(\mathrm{logsumexp}_\mu(\lambda N (m_\mu - 1) + \log w_\mu))$, memory
    O(N P); `log_minus_energy` stays finite when E underflows.

    What was read, and what is inferred: the text available for this library was the paper's
    abstract (arXiv v1 and the published version): "a cost function defined through
    exponentials of standard quadratic loss functions" / "of standard Mean Squared Error (MSE)
    loss function per pattern, which naturally favors configurations corresponding to perfect
    recall", "not a mean-field system", results that "agree with those for the original
    exponential model introduced by Ramsauer and coworkers", stability of stored patterns under
    zero-temperature dynamics up to exponentially many patterns (signal-to-noise), and basins
    that lower the load but keep it exponential. The formula above is the reading of those
    sentences; the paper's symbols and normalisation (whether the exponent carries 1/2, 1/N or
    a β) could not be checked: λ here is the inverse width of the loss in
    $\exp(-\frac\lambda2\|\sigma-\xi\|^2)$. A constant factor in the exponent only rescales
    λ; an exponent $-\beta\,\mathrm{MSE}$ with the MSE normalised by 1/N and β independent of
    N would not give the exponential capacity the abstract reports, so the exponent must be
    extensive, as here.

    **Arguments:**

    - `patterns`: `(P, N)` ±1 patterns.
    - `lam`: λ > 0.
    - `weights`: optional `(P,)` weights.
    """

    def log_offset(self):
        return -self.lam * self.n

    def losses(self, x: Spins) -> Float[Array, " P"]:
        r"""Per-pattern quadratic losses $\frac12\|\sigma-\xi^\mu\|^2 = N(1 - m_\mu)$, from the
        overlaps (no (P, N) difference array)."""
        return self.n * (1.0 - self.overlaps(x))


# -- diluted Hopfield ----------------------------------------------------------------------
