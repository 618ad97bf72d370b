r"""Associative memories: Hopfield, dense (polynomial), exponential and modern Hopfield networks.

Every discrete memory here stores its P patterns as a `(P, N)` array and computes energies,
energy changes and fields from the overlaps $m_\mu = \xi^\mu \cdot \sigma / N$ (memory
O(N P); a p-body coupling tensor is never built). All energies have the form

$$E(\sigma) = -\sum_\mu w_\mu\, G(m_\mu(\sigma)),$$

with per-pattern weights $w_\mu \ge 0$ (1 by default; 0 masks a pattern out, which lets one
compiled call sweep many loads at a fixed array shape).

Besides the generic interface of `AbstractDiscreteModel` (so `diffphys.sampling` kernels and
`diffphys.exact` work on them), `_memory_dynamics.py` has the specialised kernels that make
capacity sweeps fast: zero-temperature asynchronous / synchronous dynamics and finite-temperature
Metropolis / heat-bath chains that carry the overlaps and update them in O(P) per flip.
The exponential memories are in `_exponential_memory.py`, the continuous modern Hopfield
network in `_modern_hopfield.py`.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError
from .._types import Array, Float, IntScalar, Key, Spins
from ._base import AbstractIsingModel


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


def _checked_memory(patterns, weights, binary: bool | None, dtype) -> tuple[Array, Array, bool]:
    """Checked patterns and weights, and whether the patterns are ±1 (`binary=None`: detect it
    where the array is concrete, else assume not; `binary=True` on non-±1 patterns is an error)."""
    patterns = _check_patterns(patterns, dtype)
    weights = _check_weights(weights, patterns.shape[0], dtype)
    found = _is_binary(patterns)
    if binary is None:
        binary = bool(found) if found is not None else False
    elif binary and found is False:
        raise ConfigError("binary=True but the patterns are not all ±1.")
    return patterns, weights, bool(binary)


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

    def site_energies(self, x: Spins, i: IntScalar) -> Float[Array, " q"]:
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
        self.patterns, self.weights, self.binary = _checked_memory(patterns, weights, binary, dtype)

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
        self.patterns, self.weights, self.binary = _checked_memory(patterns, weights, binary, dtype)

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


class DilutedHopfield(AbstractIsingModel):
    r"""Hopfield network on a random symmetric dilution of the complete graph.

    $$E = -\frac12\sum_{i\ne j} J_{ij}\sigma_i\sigma_j,\quad
      J_{ij} = \frac{c_{ij}}{cN}\sum_\mu \xi^\mu_i\xi^\mu_j,$$

    with $c_{ij} = c_{ji} \sim$ Bernoulli(c) (Sompolinsky 1986; Derrida, Gardner, Zippelius
    1987 for the extreme dilution limit). The couplings are stored as an N x N matrix (the
    dilution has no overlap form), so this model is meant for moderate N.

    Draw one with `DilutedHopfield.sample(key, patterns, connectivity)`; the constructor
    takes a given symmetric 0/1 bond `mask` (e.g. a lattice or a measured connectome).

    **Arguments:**

    - `patterns`: `(P, N)` patterns.
    - `mask`: `(N, N)` symmetric 0/1 matrix of present bonds (the diagonal is ignored).
    - `connectivity`: the c of the normalisation 1/(cN); default: the mask's bond density.
    """

    couplings: Float[Array, "N N"]

    def __init__(self, patterns, mask, connectivity: float | None = None, *, dtype=jnp.float32):
        patterns = _check_patterns(patterns, dtype)
        n = patterns.shape[1]
        mask = jnp.asarray(mask)
        if mask.shape != (n, n):
            raise ShapeError(f"mask must have shape ({n}, {n}) for N = {n}, got {mask.shape}.")
        mask = mask.astype(dtype) * (1 - jnp.eye(n, dtype=dtype))
        if connectivity is None:
            connectivity = float(jnp.sum(mask)) / (n * (n - 1))
        if not 0 < connectivity <= 1:
            raise ConfigError(f"connectivity must be in (0, 1], got {connectivity!r}.")
        self.couplings = mask * (patterns.T @ patterns) / (connectivity * n)

    @classmethod
    def sample(cls, key: Key, patterns, connectivity: float, *, dtype=jnp.float32):
        """A random symmetric dilution: every bond present with probability `connectivity`
        in (0, 1], independently (`key` draws it)."""
        if not 0 < connectivity <= 1:
            raise ConfigError(f"connectivity must be in (0, 1], got {connectivity!r}.")
        n = _check_patterns(patterns, dtype).shape[1]
        upper = jnp.triu(jax.random.bernoulli(key, connectivity, (n, n)), 1)
        return cls(patterns, upper | upper.T, connectivity, dtype=dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.couplings.shape[0],)

    def energy(self, x: Spins) -> Float[Array, ""]:
        s = x.astype(self.couplings.dtype)
        return -0.5 * s @ self.couplings @ s

    def local_field(self, x: Spins) -> Float[Array, " N"]:
        return self.couplings @ x.astype(self.couplings.dtype)

    def site_energies(self, x: Spins, i: IntScalar) -> Float[Array, " q"]:
        h = self.couplings[i] @ x.astype(self.couplings.dtype)
        return jnp.stack([h, -h])
