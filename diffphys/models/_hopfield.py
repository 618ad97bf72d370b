r"""Associative memories: Hopfield, dense (polynomial), exponential and modern Hopfield networks.

Every discrete memory here stores its P patterns as a `(P, N)` array and computes energies,
energy changes and fields from the overlaps $m_\mu = \xi^\mu \cdot \sigma / N$ (memory
O(N P); a p-body coupling tensor is never built). All energies have the form

$$E(\sigma) = -\sum_\mu w_\mu\, G(m_\mu(\sigma)),$$

with per-pattern weights $w_\mu \ge 0$ (1 by default; 0 masks a pattern out, which lets one
compiled call sweep many loads at a fixed array shape).

Besides the generic interface of `AbstractDiscreteModel` (so `diffphys.sampling` kernels and
`diffphys.exact` work on them), this module has the specialised kernels that make capacity
sweeps fast: zero-temperature asynchronous / synchronous dynamics and finite-temperature
Metropolis / heat-bath chains that carry the overlaps and update them in O(P) per flip.
"""

from __future__ import annotations

import abc
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError, check_positive
from .._loop import sweep_sites
from .._types import Array, Float, Key, Spins
from ..sampling import SamplingAlgorithm
from ._base import AbstractIsingModel, AbstractModel


def random_patterns(key: Key, n_patterns: int, n: int, *, dtype=jnp.float32) -> Array:
    """P unbiased i.i.d. ±1 patterns, shape `(n_patterns, n)`."""
    return jax.random.rademacher(key, (int(n_patterns), int(n)), dtype)


def corrupt(key: Key, x: Array, fraction) -> Array:
    """Flip each entry of a ±1 configuration independently with probability `fraction`."""
    flip = jax.random.bernoulli(key, fraction, jnp.shape(x))
    return jnp.where(flip, -x, x)


def _check_patterns(patterns, dtype) -> Array:
    patterns = jnp.asarray(patterns, dtype=dtype)
    if patterns.ndim != 2:
        raise ShapeError(
            f"patterns must have shape (P, N) (one stored pattern per row), got {patterns.shape}."
        )
    return patterns


def _check_weights(weights, n_patterns: int, dtype) -> Array:
    if weights is None:
        return jnp.ones((n_patterns,), dtype)
    weights = jnp.asarray(weights, dtype=dtype)
    if weights.shape != (n_patterns,):
        raise ShapeError(
            f"weights must have one entry per pattern, shape ({n_patterns},), got {weights.shape}."
        )
    return weights


def _is_binary(patterns) -> bool | None:
    """True/False for a concrete array, None under tracing or for very large arrays (the check
    would copy them to the host)."""
    if np.prod(np.shape(patterns)) > 2**24:
        return None
    try:
        arr = np.asarray(patterns)
    except Exception:
        return None
    return bool(np.all(np.abs(arr) == 1))


class AbstractAssociativeMemory(AbstractIsingModel):
    r"""A memory of ±1 neurons whose energy is a sum over patterns of a function of the overlap.

    Subclasses implement `energy_from_overlaps(m)` and the flip kernels below. The state is a
    vector of N spins ±1 (int8).

    The flip kernels get the overlaps `m` (P,), the column `col = patterns[:, i]` and the spin
    `s_i`, and return the energy change of flipping `s_i` in O(P). `scaled_flip_delta` returns
    the same quantity divided by a positive, state-dependent factor (1 for polynomial models,
    the largest Boltzmann-like weight for exponential ones) so that its *sign* is exact even
    when the energy itself overflows; zero-temperature dynamics only use signs.
    """

    patterns: Float[Array, "P N"]
    weights: Float[Array, " P"]

    @property
    def n(self) -> int:
        return int(self.patterns.shape[1])

    @property
    def n_patterns(self) -> int:
        return int(self.patterns.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n,)

    def overlaps(self, x: Spins) -> Float[Array, " P"]:
        r"""$m_\mu = \frac1N \sum_i \xi^\mu_i \sigma_i$ for every pattern."""
        return self.patterns @ x.astype(self.patterns.dtype) / self.n

    @abc.abstractmethod
    def energy_from_overlaps(self, m: Float[Array, " P"]) -> Float[Array, ""]:
        """The energy as a function of the overlaps."""

    @abc.abstractmethod
    def flip_delta(self, m, col, s_i) -> Float[Array, ""]:
        """Energy change of flipping spin i, from the overlaps and column i of the patterns."""

    @abc.abstractmethod
    def scaled_flip_delta(self, m, col, s_i) -> Float[Array, ""]:
        """`flip_delta` divided by a positive factor: its sign is exact, it never overflows."""

    @abc.abstractmethod
    def scaled_flip_deltas(self, x: Spins, m) -> Float[Array, " N"]:
        """`scaled_flip_delta` of every site at once, O(N P) time, O(N + P) extra memory."""

    def energy(self, x: Spins) -> Float[Array, ""]:
        return self.energy_from_overlaps(self.overlaps(x))

    def site_energies(self, x: Spins, i: Array) -> Float[Array, " q"]:
        m = self.overlaps(x)
        col = self.patterns[:, i]
        s_i = x[i].astype(m.dtype)
        d = self.flip_delta(m, col, s_i)
        # energies of (s_i = -1, s_i = +1), minus the energy of the current state
        return jnp.where(
            s_i > 0, jnp.stack([d, jnp.zeros_like(d)]), jnp.stack([jnp.zeros_like(d), d])
        )

    def is_fixed_point(self, x: Spins) -> Array:
        """True when no single flip lowers the energy (a zero-temperature fixed point)."""
        return jnp.all(self.scaled_flip_deltas(x, self.overlaps(x)) >= 0)


# -- polynomial separation functions --------------------------------------------------------


def _power_flip_delta(m, col, s_i, w, n: int, p: int):
    # E = -(N/p) sum_mu w_mu m_mu^p ; a flip moves m_mu by d_mu = -2 s_i xi_i^mu / N
    d = -2.0 * s_i * col / n
    return -(n / p) * jnp.sum(w * ((m + d) ** p - m**p))


def _power_flip_deltas(x, m, patterns, w, n: int, p: int, binary: bool):
    # Binomial expansion of (m + d)^p - m^p: only matrix-vector products with the patterns.
    s = x.astype(m.dtype)
    out = jnp.zeros_like(s)
    for k in range(1, p + 1):
        a = w * m ** (p - k)
        if k % 2 == 1:
            t = a @ patterns
        elif binary:
            t = jnp.broadcast_to(jnp.sum(a), s.shape)
        else:
            t = a @ patterns**k
        out = out + math.comb(p, k) * (-2.0 * s / n) ** k * t
    return -(n / p) * out


class DenseAssociativeMemory(AbstractAssociativeMemory):
    r"""Dense associative memory with polynomial separation function (Krotov & Hopfield 2016).

    $$E(\sigma) = -\frac{N}{p}\sum_{\mu=1}^{P} w_\mu\, m_\mu(\sigma)^p
      = -\frac{1}{p N^{p-1}} \sum_\mu w_\mu \sum_{i_1..i_p} \xi^\mu_{i_1}\cdots\xi^\mu_{i_p}
        \sigma_{i_1}\cdots\sigma_{i_p},$$

    i.e. Krotov–Hopfield's $E = -\sum_\mu F(\xi^\mu\cdot\sigma)$ with $F(x) = x^p/(p N^{p-1})$
    (the normalisation makes E extensive, the convention of Barra et al.'s dense networks; it
    does not change the zero-temperature dynamics). All index tuples, repeated ones included,
    are summed. Capacity $P_{max} \simeq N^{p-1}/(2(2p-3)!!\ln N)$ for error-free recall.

    **Arguments:**

    - `patterns`: `(P, N)` stored patterns (±1, or real for supervised constructions).
    - `p`: interaction order, an integer >= 2.
    - `weights`: optional per-pattern weights `(P,)` (default 1).
    - `binary`: whether the patterns are ±1 (checked when concrete; speeds up synchronous
      updates). Pass it explicitly when building the model under `jit`/`vmap` or with more
      than 2^24 pattern entries (not checked then; `binary=False` would make synchronous
      updates materialise `patterns**2`).
    """

    weights: Float[Array, " P"]
    patterns: Float[Array, "P N"]
    p: int = eqx.field(static=True)
    binary: bool = eqx.field(static=True)

    def __init__(
        self, patterns, p: int = 3, *, weights=None, binary: bool | None = None, dtype=jnp.float32
    ):
        if int(p) != p or p < 2:
            raise ConfigError(f"p must be an integer >= 2, got {p!r}.")
        self.p = int(p)
        self.patterns = _check_patterns(patterns, dtype)
        self.weights = _check_weights(weights, self.patterns.shape[0], dtype)
        found = _is_binary(self.patterns)
        if binary is None:
            binary = bool(found) if found is not None else False
        elif binary and found is False:
            raise ConfigError("binary=True but the patterns are not all ±1.")
        self.binary = bool(binary)

    def energy_from_overlaps(self, m):
        return -(self.n / self.p) * jnp.sum(self.weights * m**self.p)

    def flip_delta(self, m, col, s_i):
        return _power_flip_delta(m, col, s_i, self.weights, self.n, self.p)

    def scaled_flip_delta(self, m, col, s_i):
        return _power_flip_delta(m, col, s_i, self.weights, self.n, self.p)

    def scaled_flip_deltas(self, x, m):
        return _power_flip_deltas(x, m, self.patterns, self.weights, self.n, self.p, self.binary)


class Hopfield(AbstractAssociativeMemory):
    r"""The Hopfield model with Hebbian couplings (Hopfield 1982; Amit, Gutfreund, Sompolinsky 1985).

    $$E(\sigma) = -\frac12\sum_{i\ne j} J_{ij}\sigma_i\sigma_j,\qquad
      J_{ij} = \frac1N\sum_\mu w_\mu \xi^\mu_i\xi^\mu_j,\ J_{ii} = 0,$$

    computed as $E = -\frac N2 \sum_\mu w_\mu m_\mu^2 + \frac{1}{2N}\sum_\mu w_\mu|\xi^\mu|^2$.
    This is the AGS convention: with ±1 patterns and load $\alpha = P/N$ the replica-symmetric
    retrieval state exists up to $\alpha_c \approx 0.138$ at T = 0
    (`diffphys.theory.ags_alpha_c`). For a diluted network see `DilutedHopfield`.

    **Arguments:**

    - `patterns`: `(P, N)` patterns.
    - `weights`: optional per-pattern weights `(P,)`.
    - `binary`: whether the patterns are ±1 (as for `DenseAssociativeMemory`).
    """

    weights: Float[Array, " P"]
    patterns: Float[Array, "P N"]
    binary: bool = eqx.field(static=True)

    def __init__(self, patterns, *, weights=None, binary: bool | None = None, dtype=jnp.float32):
        self.patterns = _check_patterns(patterns, dtype)
        self.weights = _check_weights(weights, self.patterns.shape[0], dtype)
        found = _is_binary(self.patterns)
        if binary is None:
            binary = bool(found) if found is not None else False
        elif binary and found is False:
            raise ConfigError("binary=True but the patterns are not all ±1.")
        self.binary = bool(binary)

    def couplings(self) -> Float[Array, "N N"]:
        """The N x N Hebbian coupling matrix (O(N^2) memory: for small N and checks only)."""
        J = (self.patterns.T * self.weights) @ self.patterns / self.n
        return J - jnp.diag(jnp.diag(J))

    def _self_couplings(self):
        # N J_ii = sum_mu w_mu (xi_i^mu)^2, i.e. sum_mu w_mu for ±1 patterns
        if self.binary:
            return jnp.broadcast_to(jnp.sum(self.weights), (self.n,))
        return self.weights @ self.patterns**2

    def energy_from_overlaps(self, m):
        self_energy = jnp.sum(self._self_couplings()) / (2 * self.n)
        return -(self.n / 2) * jnp.sum(self.weights * m**2) + self_energy

    def local_field(self, x: Spins) -> Float[Array, " N"]:
        r"""$h_i = \sum_{j\ne i} J_{ij}\sigma_j$, from the overlaps in O(N P)."""
        s = x.astype(self.patterns.dtype)
        h = (self.weights * self.overlaps(x)) @ self.patterns
        return h - self._self_couplings() / self.n * s

    def flip_delta(self, m, col, s_i):
        return _power_flip_delta(m, col, s_i, self.weights, self.n, 2)

    def scaled_flip_delta(self, m, col, s_i):
        return _power_flip_delta(m, col, s_i, self.weights, self.n, 2)

    def scaled_flip_deltas(self, x, m):
        return _power_flip_deltas(x, m, self.patterns, self.weights, self.n, 2, self.binary)


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


class DilutedHopfield(AbstractIsingModel):
    r"""Hopfield network on a random symmetric dilution of the complete graph.

    $$E = -\frac12\sum_{i\ne j} J_{ij}\sigma_i\sigma_j,\quad
      J_{ij} = \frac{c_{ij}}{cN}\sum_\mu \xi^\mu_i\xi^\mu_j,$$

    with $c_{ij} = c_{ji} \sim$ Bernoulli(c) (Sompolinsky 1986; Derrida, Gardner, Zippelius
    1987 for the extreme dilution limit). The couplings are stored as an N x N matrix (the
    dilution has no overlap form), so this model is meant for moderate N.

    **Arguments:**

    - `patterns`: `(P, N)` patterns.
    - `connectivity`: the probability c in (0, 1] that a bond is present.
    - `key`: PRNG key drawing the dilution (keyword-only).
    """

    couplings: Float[Array, "N N"]

    def __init__(self, patterns, connectivity: float, *, key: Key, dtype=jnp.float32):
        patterns = _check_patterns(patterns, dtype)
        if not 0 < connectivity <= 1:
            raise ConfigError(f"connectivity must be in (0, 1], got {connectivity!r}.")
        n = patterns.shape[1]
        upper = jnp.triu(jax.random.bernoulli(key, connectivity, (n, n)), 1)
        mask = (upper | upper.T).astype(dtype)
        self.couplings = mask * (patterns.T @ patterns) / (connectivity * n)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.couplings.shape[0],)

    def energy(self, x: Spins) -> Float[Array, ""]:
        s = x.astype(self.couplings.dtype)
        return -0.5 * s @ self.couplings @ s

    def local_field(self, x: Spins) -> Float[Array, " N"]:
        return self.couplings @ x.astype(self.couplings.dtype)

    def site_energies(self, x: Spins, i: Array) -> Float[Array, " q"]:
        h = self.couplings[i] @ x.astype(self.couplings.dtype)
        return jnp.stack([h, -h])


# -- dynamics with incremental overlaps ----------------------------------------------------


class MemoryState(NamedTuple):
    """What the next step needs: spins, their overlaps with every pattern, the energy."""

    x: Spins
    m: Float[Array, " P"]
    energy: Float[Array, ""]


class MemoryInfo(NamedTuple):
    """Diagnostics of one sweep."""

    flip_rate: Float[Array, ""]
    energy: Float[Array, ""]


def _check_memory(model) -> None:
    if not isinstance(model, AbstractAssociativeMemory):
        raise ConfigError(
            f"these kernels need an AbstractAssociativeMemory (overlap form), got "
            f"{type(model).__name__}; use diffphys.sampling.metropolis for other models."
        )


def _init(x, model) -> MemoryState:
    _check_memory(model)
    model.check_state(x)
    x = jnp.asarray(x, dtype=model.dtype)
    m = model.overlaps(x)
    return MemoryState(x, m, model.energy_from_overlaps(m))


def _flip(state: MemoryState, model, i, flip, de, col):
    s_i = state.x[i].astype(state.m.dtype)
    m = state.m + jnp.where(flip, -2.0 * s_i / model.n, 0.0) * col
    x = state.x.at[i].set(jnp.where(flip, -state.x[i], state.x[i]))
    return MemoryState(x, m, state.energy + jnp.where(flip, de, jnp.zeros_like(de)))


TRANSPOSE_MAX_ENTRIES = 2**25
"""Up to this many pattern entries, sweeps read columns from a transposed copy."""


def _column_reader(patterns):
    # A transposed copy per sweep makes every site read a contiguous row instead of a strided
    # column, several times faster; above TRANSPOSE_MAX_ENTRIES the copy would double the
    # memory, so the strided column is read in place.
    if patterns.size <= TRANSPOSE_MAX_ENTRIES:
        cols = patterns.T
        return lambda i: cols[i]
    return lambda i: jax.lax.dynamic_index_in_dim(patterns, i, axis=1, keepdims=False)


def zero_temperature(*, mode: str = "async") -> SamplingAlgorithm:
    r"""Zero-temperature dynamics $\sigma_i \leftarrow \mathrm{sgn}$ of its local field.

    A spin flips when the flip lowers the energy (ties keep the spin). Decisions use
    `scaled_flip_delta`, so exponential memories never overflow.

    - `mode="async"`: one step visits every site once in a random order (a permutation drawn
      from the step key) and updates it given the current state, O(P) per site with the
      overlaps updated incrementally. The energy never increases.
    - `mode="sync"`: one step flips every site whose flip lowers the energy, all at once (Little
      dynamics): two matrix-vector products, O(N P). It may reach 2-cycles.

    **Returns:** a `SamplingAlgorithm`; `init(x, model)` builds a `MemoryState`, `step(key,
    state, model)` returns `(state, MemoryInfo)` with the fraction of flipped spins.
    """
    if mode not in ("async", "sync"):
        raise ConfigError(f"mode must be 'async' or 'sync', got {mode!r}.")

    def step(key, state: MemoryState, model):
        n = model.n
        if mode == "sync":
            d = model.scaled_flip_deltas(state.x, state.m)
            flip = d < 0
            x = jnp.where(flip, -state.x, state.x)
            m = model.overlaps(x)
            new = MemoryState(x, m, model.energy_from_overlaps(m))
            return new, MemoryInfo(jnp.mean(flip.astype(m.dtype)), new.energy)
        order = jax.random.permutation(key, n)
        column = _column_reader(model.patterns)

        def body(t, carry):
            st, count = carry
            i = order[t]
            col = column(i)
            s_i = st.x[i].astype(st.m.dtype)
            flip = model.scaled_flip_delta(st.m, col, s_i) < 0
            st = _flip(st, model, i, flip, jnp.zeros_like(st.energy), col)
            return st, count + flip.astype(jnp.int32)

        st, count = jax.lax.fori_loop(0, n, body, (state, jnp.int32(0)))
        # exact overlaps once per sweep (O(N P), like the sweep): no float drift accumulates
        m = model.overlaps(st.x)
        energy = model.energy_from_overlaps(m)
        st = MemoryState(st.x, m, energy)
        return st, MemoryInfo(count.astype(energy.dtype) / n, energy)

    return SamplingAlgorithm(_init, step)


def retrieve(model, x0, *, key: Key, max_sweeps: int = 100, mode: str = "async"):
    """Run zero-temperature dynamics from `x0` until no spin flips (or `max_sweeps`).

    **Arguments:**

    - `model`: an `AbstractAssociativeMemory`.
    - `x0`: initial ±1 state `(N,)` (e.g. a corrupted pattern, see `corrupt`).
    - `key`: PRNG key for the asynchronous visiting orders.
    - `max_sweeps`: upper bound on the number of sweeps.
    - `mode`: `"async"` or `"sync"` (see `zero_temperature`).

    **Returns:** `(x, m, n_sweeps)`: the final state, its overlaps with every pattern and the
    number of sweeps run (the last one flipped nothing unless `max_sweeps` was reached).
    """
    alg = zero_temperature(mode=mode)
    state = alg.init(x0, model)

    def cond(c):
        _, t, moved = c
        return moved & (t < max_sweeps)

    def body(c):
        st, t, _ = c
        st, info = alg.step(jax.random.fold_in(key, t), st, model)
        return st, t + 1, info.flip_rate > 0

    state, t, _ = jax.lax.while_loop(cond, body, (state, jnp.int32(0), jnp.bool_(True)))
    return state.x, state.m, t


def _mc(rule: str, beta) -> SamplingAlgorithm:
    check_positive("beta", beta)

    def step(key, state: MemoryState, model, beta=beta):
        n = model.n
        k_site, k_u = jax.random.split(key)
        sites = sweep_sites(k_site, n, "random")
        u = jax.random.uniform(k_u, (n,), dtype=state.m.dtype)
        column = _column_reader(model.patterns)

        def body(t, carry):
            st, count = carry
            i = sites[t]
            col = column(i)
            s_i = st.x[i].astype(st.m.dtype)
            de = model.flip_delta(st.m, col, s_i)
            if rule == "metropolis":
                flip = u[t] < jnp.exp(-beta * de)
            else:
                flip = u[t] < jax.nn.sigmoid(-beta * de)
            st = _flip(st, model, i, flip, de, col)
            return st, count + flip.astype(jnp.int32)

        st, count = jax.lax.fori_loop(0, n, body, (state, jnp.int32(0)))
        m = model.overlaps(st.x)
        st = MemoryState(st.x, m, model.energy_from_overlaps(m))
        return st, MemoryInfo(count.astype(m.dtype) / n, st.energy)

    return SamplingAlgorithm(_init, step)


def overlap_metropolis(beta: float = 1.0) -> SamplingAlgorithm:
    """Single-spin Metropolis for associative memories with O(P) incremental overlaps.

    One step is a sweep of N attempted flips at uniformly drawn sites; a flip is accepted with
    probability min(1, exp(-beta ΔE)), ΔE from `model.flip_delta`. Same stationary law as
    `diffphys.sampling.metropolis`, O(P) instead of O(N P) per attempt. `beta` may be
    overridden per step.
    """
    return _mc("metropolis", beta)


def overlap_heat_bath(beta: float = 1.0) -> SamplingAlgorithm:
    """Single-spin heat bath (Glauber) with O(P) incremental overlaps: P(flip) = 1/(1+e^{βΔE})."""
    return _mc("heat_bath", beta)


# -- the continuous modern Hopfield network ------------------------------------------------


class ModernHopfield(AbstractModel):
    r"""The continuous modern Hopfield network of Ramsauer et al. (ICLR 2021, "Hopfield
    networks is all you need").

    With the stored patterns as rows of $X$ (P x d), the energy of a state $\xi\in\mathbb R^d$
    and its update rule are

    $$E(\xi) = -\beta^{-1}\log\sum_\mu e^{\beta\, x_\mu\cdot\xi} + \tfrac12\xi\cdot\xi
       + \beta^{-1}\log P + \tfrac12 M^2,\qquad
      \xi^{new} = X^\top \mathrm{softmax}(\beta X \xi),$$

    $M = \max_\mu\|x_\mu\|$. The update is the concave–convex procedure on E, so E never
    increases, and a well-separated pattern is retrieved in one step with an error exponentially
    small in its separation (their Theorem 4).

    **Arguments:**

    - `patterns`: `(P, d)` real patterns.
    - `beta`: inverse temperature β > 0.
    """

    patterns: Float[Array, "P d"]
    beta: Float[Array, ""]

    def __init__(self, patterns, beta=1.0, *, dtype=jnp.float32):
        check_positive("beta", beta)
        self.patterns = _check_patterns(patterns, dtype)
        self.beta = jnp.asarray(beta, dtype)

    def energy(self, xi) -> Float[Array, ""]:
        X = self.patterns
        lse = jax.nn.logsumexp(self.beta * (X @ xi)) / self.beta
        big_m = jnp.max(jnp.sum(X * X, axis=1))
        return -lse + 0.5 * xi @ xi + jnp.log(X.shape[0]) / self.beta + 0.5 * big_m

    def attention(self, xi) -> Float[Array, " P"]:
        r"""$\mathrm{softmax}(\beta X\xi)$: the weight of each stored pattern."""
        return jax.nn.softmax(self.beta * (self.patterns @ xi))

    def update(self, xi) -> Float[Array, " d"]:
        r"""One step $\xi \leftarrow X^\top\mathrm{softmax}(\beta X\xi)$; batches as `(..., d)`."""
        w = jax.nn.softmax(self.beta * (xi @ self.patterns.T), axis=-1)
        return w @ self.patterns

    def retrieve(self, xi, n_steps: int = 1):
        """Apply `update` `n_steps` times (a `lax.fori_loop`)."""
        return jax.lax.fori_loop(0, n_steps, lambda _, v: self.update(v), xi)

    def check_state(self, xi) -> None:
        if jnp.shape(xi)[-1:] != (self.patterns.shape[1],):
            raise ShapeError(
                f"ModernHopfield expects states of dimension {self.patterns.shape[1]}, got "
                f"shape {jnp.shape(xi)}."
            )


__all__ = [
    "AbstractAssociativeMemory",
    "DenseAssociativeMemory",
    "DilutedHopfield",
    "ExponentialLossMemory",
    "ExponentialMemory",
    "Hopfield",
    "MemoryInfo",
    "MemoryState",
    "ModernHopfield",
    "corrupt",
    "overlap_heat_bath",
    "overlap_metropolis",
    "random_patterns",
    "retrieve",
    "zero_temperature",
]
