r"""Mean-field Ising spin glasses: Sherrington–Kirkpatrick (SK) and the Ising p-spin model.

Conventions (Sherrington & Kirkpatrick, PRL 35, 1792 (1975); Gardner, Nucl. Phys. B 257, 747
(1985) for p >= 3): spins $s_i = \pm 1$,

$$E_{\rm SK}(s) = -\sum_{i<j} J_{ij} s_i s_j - \sum_i h_i s_i,\qquad
J_{ij} \sim \mathcal N(0, 1/N) \text{ or } \pm 1/\sqrt N,$$

$$E_p(s) = -\sum_{i_1<\dots<i_p} J_{i_1\dots i_p} s_{i_1}\cdots s_{i_p} - \sum_i h_i s_i,\qquad
\overline{J^2_{i_1\dots i_p}} = \frac{p!}{2N^{p-1}},$$

so that the energy per spin is O(1), $T_c = 1$ for SK at h = 0, and p = 2 reproduces SK.

`sk_metropolis` is the fast SK kernel: it keeps the local fields $f_i = \sum_j J_{ij}s_j + h_i$
in its state and updates them with one row of J per accepted flip, O(N) per attempt instead of
the O(N^2) energy difference, and it vmaps over disorder samples and replicas and runs under
`diffphys.sampling.parallel_tempering`. `sk_metropolis(backend="native")` runs the same
sequential sweeps as one fused C++ XLA FFI call (`diffphys/_native/sk_ffi.cc`).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _native
from .._errors import ConfigError, ShapeError, check_positive
from .._types import Array, Float, IntScalar, Key, RealScalar, Spins
from ..sampling import DiscreteInfo, SamplingAlgorithm
from ._base import AbstractIsingModel


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _field_vector(h, n: int, dtype) -> Array:
    h = jnp.asarray(h, dtype=dtype)
    if h.ndim and h.shape != (n,):
        raise ShapeError(
            f"h must be a scalar or one field per spin of shape ({n},), got {h.shape}."
        )
    return jnp.broadcast_to(h, (n,))


def _check_kind(kind: str) -> None:
    if kind not in ("gaussian", "bimodal"):
        raise ConfigError(f"kind must be 'gaussian' or 'bimodal' (±J), got {kind!r}.")


def _check_n(n, minimum: int) -> int:
    if int(n) != n or n < minimum:
        raise ConfigError(f"n must be an integer >= {minimum}, got {n!r}.")
    return int(n)


class _IsingSpins(AbstractIsingModel):
    """Shared pieces of models over N Ising spins (values -1/+1, state shape `(n,)`)."""

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n,)


class SK(_IsingSpins):
    r"""Sherrington–Kirkpatrick spin glass (Sherrington & Kirkpatrick 1975).

    $$E(s) = -\sum_{i<j} J_{ij} s_i s_j - \sum_i h_i s_i = -\tfrac12 s^\top J s - h^\top s,$$

    with J symmetric and zero on the diagonal. Draw the disorder with `SK.sample`; in the
    thermodynamic limit at h = 0 the spin-glass transition is at $T_c = 1$ and the ground-state
    energy per spin is Parisi's $-0.76317$ (`diffphys.theory.SK_GROUND_STATE_ENERGY`).

    **Arguments:**

    - `J`: the couplings, shape (N, N); symmetrised check on concrete input, diagonal ignored.
    - `h`: a uniform field (scalar) or one field per spin, shape (N,).
    """

    J: Float[Array, "n n"]
    h: Float[Array, " n"]
    n: int = eqx.field(static=True)

    def __init__(self, J, h=0.0, *, dtype=None):
        J = jnp.asarray(J) if dtype is None else jnp.asarray(J, dtype=dtype)
        if not jnp.issubdtype(J.dtype, jnp.floating):
            J = J.astype(jnp.float32)
        if J.ndim != 2 or J.shape[0] != J.shape[1] or J.shape[0] < 2:
            raise ShapeError(f"J must be a square (N, N) matrix with N >= 2, got {J.shape}.")
        if _is_concrete(J):
            Jn = np.asarray(J)
            if not np.allclose(Jn, Jn.T, rtol=0, atol=1e-6 * max(1.0, float(np.abs(Jn).max()))):
                raise ConfigError(
                    "SK couplings must be symmetric (J_ij = J_ji); use SK.sample, or (J + J.T)/2."
                )
        self.n = int(J.shape[0])
        self.J = J * (1 - jnp.eye(self.n, dtype=J.dtype))
        self.h = _field_vector(h, self.n, J.dtype)

    @classmethod
    def sample(cls, key: Key, n: int, *, kind: str = "gaussian", h=0.0, dtype=jnp.float32) -> SK:
        r"""Draw one disorder sample: $J_{ij} = J_{ji} = z_{ij}/\sqrt N$ for i < j.

        **Arguments:**

        - `key`: PRNG key (vmap over keys for an ensemble of samples).
        - `n`: number of spins N.
        - `kind`: `"gaussian"` ($z \sim \mathcal N(0,1)$) or `"bimodal"` ($z = \pm 1$).
        - `h`: uniform field (scalar) or per-spin fields (N,).

        **Returns:** an `SK` model.
        """
        n = _check_n(n, 2)
        _check_kind(kind)
        if kind == "gaussian":
            z = jax.random.normal(key, (n, n), dtype)
        else:
            z = jax.random.rademacher(key, (n, n), dtype)
        upper = jnp.triu(z, 1)
        return cls((upper + upper.T) / jnp.sqrt(jnp.asarray(n, dtype)), h)

    @property
    def dtype(self):
        return jnp.int8

    def energy(self, x: Spins) -> Float[Array, ""]:
        s = x.astype(self.J.dtype)
        return -0.5 * s @ (self.J @ s) - self.h @ s

    def local_field(self, x: Spins) -> Float[Array, " n"]:
        r"""$f_i = \sum_j J_{ij} s_j + h_i$ for every spin; flipping $s_i$ costs $2 s_i f_i$."""
        return self.J @ x.astype(self.J.dtype) + self.h

    def site_energies(self, x: Spins, i: IntScalar) -> Float[Array, " 2"]:
        f = self.J[i] @ x.astype(self.J.dtype) + self.h[i]
        return jnp.stack([f, -f])

    def delta_energy(self, x: Spins, i: IntScalar) -> Float[Array, ""]:
        """Energy change of flipping spin `i`, O(N)."""
        s = x.astype(self.J.dtype)
        return 2.0 * s[i] * (self.J[i] @ s + self.h[i])


# -- Ising p-spin ---------------------------------------------------------------------------

MAX_COUPLINGS = 2**24


def _n_couplings(n: int, p: int, max_couplings: int) -> int:
    m = math.comb(n, p)
    if m > max_couplings:
        raise ConfigError(
            f"the p-spin model with N={n}, p={p} has C(N, p) = {m} couplings, more than "
            f"max_couplings={max_couplings}; use a smaller N or raise max_couplings if you have "
            f"the memory."
        )
    return m


@functools.lru_cache(maxsize=16)
def _pspin_tables(n: int, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The C(n, p) index tuples, and for each site the couplings containing it with the p - 1
    other sites of each (every site belongs to the same number C(n-1, p-1) of tuples)."""
    tuples = np.asarray(list(itertools.combinations(range(n), p)), dtype=np.int32)
    order = np.argsort(tuples, axis=None, kind="stable")  # flat positions grouped by site
    coupling = (order // p).reshape(n, -1).astype(np.int32)  # sites appear in sorted order
    others = tuples[coupling]  # (n, K, p)
    keep = others != np.arange(n, dtype=np.int32)[:, None, None]
    others = others[keep].reshape(n, coupling.shape[1], p - 1)
    return tuples, coupling, others


class PSpin(_IsingSpins):
    r"""Ising p-spin glass, p >= 2 (Derrida 1980; Gross & Mézard 1984; Gardner 1985).

    $$E(s) = -\sum_{i_1<\dots<i_p} J_{i_1\dots i_p}\, s_{i_1}\cdots s_{i_p} - \sum_i h_i s_i,
    \qquad \overline{J^2} = \frac{p!}{2 N^{p-1}}.$$

    The couplings are stored as one value per p-tuple (`couplings[m]` for the m-th tuple of
    `itertools.combinations(range(N), p)`), never as an N^p tensor; energies and local fields
    contract them with products of spins, O(p C(N, p)) and O(p C(N-1, p-1)). The number of
    couplings is guarded by `max_couplings` (2^24 by default: N = 464 for p = 3). p = 2 is SK.
    In the thermodynamic limit at h = 0 (Gardner 1985) the p = 3 model has a dynamical
    transition at T_d ≈ 0.682 and a static (1RSB) one at T_s ≈ 0.651; p -> ∞ is the random
    energy model.

    **Arguments:**

    - `couplings`: shape (C(N, p),), in `itertools.combinations` order.
    - `n`, `p`: number of spins and interaction order.
    - `h`: uniform field or per-spin fields (N,).
    - `max_couplings`: size guard on C(N, p).
    """

    couplings: Float[Array, " m"]
    h: Float[Array, " n"]
    n: int = eqx.field(static=True)
    p: int = eqx.field(static=True)

    def __init__(self, couplings, n: int, p: int, h=0.0, *, max_couplings: int = MAX_COUPLINGS):
        self.n = _check_n(n, 2)
        if int(p) != p or p < 2 or p > self.n:
            raise ConfigError(f"p must be an integer with 2 <= p <= N, got p={p!r}, N={n}.")
        self.p = int(p)
        m = _n_couplings(self.n, self.p, max_couplings)
        couplings = jnp.asarray(couplings)
        if not jnp.issubdtype(couplings.dtype, jnp.floating):
            couplings = couplings.astype(jnp.float32)
        if couplings.shape != (m,):
            raise ShapeError(
                f"couplings must hold one value per p-tuple, shape ({m},) for N={n}, p={p}, got "
                f"{couplings.shape}."
            )
        self.couplings = couplings
        self.h = _field_vector(h, self.n, couplings.dtype)

    @classmethod
    def sample(
        cls,
        key: Key,
        n: int,
        p: int = 3,
        *,
        kind: str = "gaussian",
        h=0.0,
        dtype=jnp.float32,
        max_couplings: int = MAX_COUPLINGS,
    ) -> PSpin:
        r"""Draw couplings with variance $p!/(2N^{p-1})$: Gaussian, or ± its square root."""
        n = _check_n(n, 2)
        _check_kind(kind)
        if int(p) != p or p < 2 or p > n:
            raise ConfigError(f"p must be an integer with 2 <= p <= N, got p={p!r}, N={n}.")
        m = _n_couplings(n, int(p), max_couplings)  # checked before drawing m numbers
        scale = math.sqrt(math.factorial(int(p)) / (2.0 * n ** (int(p) - 1)))
        if kind == "gaussian":
            z = jax.random.normal(key, (m,), dtype)
        else:
            z = jax.random.rademacher(key, (m,), dtype)
        return cls(z * jnp.asarray(scale, dtype), n, p, h, max_couplings=max_couplings)

    @property
    def dtype(self):
        return jnp.int8

    def energy(self, x: Spins) -> Float[Array, ""]:
        tuples, _, _ = _pspin_tables(self.n, self.p)
        s = x.astype(self.couplings.dtype)
        return -self.couplings @ jnp.prod(s[tuples], axis=1) - self.h @ s

    def site_energies(self, x: Spins, i: IntScalar) -> Float[Array, " 2"]:
        _, coupling, others = _pspin_tables(self.n, self.p)
        s = x.astype(self.couplings.dtype)
        f = self.couplings[jnp.asarray(coupling)[i]] @ jnp.prod(s[jnp.asarray(others)[i]], axis=-1)
        f = f + self.h[i]
        return jnp.stack([f, -f])


# -- fast SK Metropolis ---------------------------------------------------------------------


class SKState(NamedTuple):
    """State of `sk_metropolis`: spins, their local fields $J s + h$ and the energy; `sweep`
    counts the sweeps done (`uint32`, the counter of the native kernel's random stream; None
    for the pure-JAX kernel)."""

    x: Spins
    field: Float[Array, " n"]
    energy: Float[Array, ""]
    sweep: Array | None = None


SK_BACKENDS = ("jax", "native", "auto")


def sk_metropolis(
    beta: RealScalar = 1.0,
    *,
    order: str = "sequential",
    backend: str = "jax",
    sweeps_per_step: int = 1,
    threads: int = 0,
) -> SamplingAlgorithm:
    r"""Single-spin-flip Metropolis for `SK` with incrementally updated local fields.

    One step is one sweep of N attempted flips. Flipping spin i costs
    $\Delta E = 2 s_i f_i$ with $f = J s + h$; it is accepted when
    $\beta\,\Delta E < \xi$, $\xi = -\ln u \sim \mathrm{Exp}(1)$ (equivalent to
    $u < e^{-\beta\Delta E}$, Metropolis et al. 1953), and an accepted flip updates every field
    with one row of J: $f \leftarrow f - 2 s_i J_{i\cdot}$, O(N) (for a single chain a
    rejection costs no row update, and the sequential sweep decides the rejections between two
    acceptances 64 spins at a time; under `vmap` every attempt costs O(N)). The exponential
    variates of a sweep are drawn in one vectorised call outside the sequential loop. The
    energy is recomputed from the fields at the end of each sweep,
    $E = -\frac12 s\cdot(f + h)$, so it never drifts from the fields; the fields accumulate
    float rounding of order $\sqrt{\text{flips}}\,\epsilon\,|J|$ (refresh with `init` if a
    run is very long).

    `order="sequential"` visits spins 0..N-1 (each single-spin update satisfies detailed
    balance, so the sweep leaves the Boltzmann law invariant); under `vmap` every chain then
    reads the same row of its J, a contiguous slice, which is much faster than the gather of
    `order="random"` (N uniformly drawn spins). The sequential sweep has its own batching rule
    (`jax.custom_batching.custom_vmap`): a vmapped step runs one explicitly batched loop over
    all chains, whether they have their own J (disorder samples) or share one (replicas,
    tempering rungs). For many disorder samples on a CPU, batch them in chunks whose couplings
    fit in the L2 cache and run all sweeps of a chunk before the next (temporal blocking):
    `ensemble.run(simulate, keys, chunk_size=8)` for N = 256 (8 x 256 KB of couplings);
    `benchmarks/results/sk.md` has the measured chunk sizes.

    `backend="native"` runs the sequential sweeps as one C++ XLA FFI call
    (`diffphys/_native/sk_ffi.cc`, compiled by `pip install -e .`): a plain loop over the
    spins with the same acceptance rule and row update, no per-spin loop overhead, several
    sweeps per call, and under `vmap` one call for all chains (OpenMP over chains, each chain
    running all its sweeps while its couplings are in cache; J shared or per chain). Its
    random numbers are counter based, Philox4x32-10 (Salmon et al., SC'11) keyed by the step
    key with counter (spin, absolute sweep index `state.sweep`): spin i flips iff
    $\beta\Delta E \le 0$ or $(r + \tfrac12)\,2^{-32} < e^{-\beta\Delta E}$ for its
    32-bit word r, the Metropolis probability to within $2^{-32}$. So the chain depends only on
    the keys and the absolute sweep index: `k` sweeps and `k` more with one key equal `2k`
    sweeps with it, whatever `sweeps_per_step` is. Same law as the pure-JAX kernel, a
    different random stream. Any `SK` model works, e.g. a Hopfield network as
    `SK(hopfield.couplings)`.

    **Arguments:**

    - `beta`: default inverse temperature; `step(..., beta=b)` overrides it per step
      (annealing schedules, `sampling.parallel_tempering`).
    - `order`: `"sequential"` or `"random"` (the latter on the `"jax"` backend only).
    - `backend`: `"jax"` (the pure-JAX reference kernel above), `"native"` (the C++ kernel;
      a `ConfigError` says why where it was not built), or `"auto"` (native if built and
      `order="sequential"`, else jax).
    - `sweeps_per_step`: sweeps per `step` (one kernel call on the native backend; on the jax
      backend the sweeps of a step use the keys `fold_in(key, i)` when it is > 1).
    - `threads`: OpenMP threads of the native kernel over the chains of a vmapped call
      (0: all).

    **Returns:** a `SamplingAlgorithm` whose `init(x, model)` takes spins (N,) and an `SK`
    model and whose step info is a `DiscreteInfo(acceptance_rate, energy)` (the acceptance
    rate averaged over the sweeps of the step).
    """
    check_positive("beta", beta)
    if order not in ("sequential", "random"):
        raise ConfigError(f"order must be 'sequential' or 'random', got {order!r}.")
    if backend not in SK_BACKENDS:
        raise ConfigError(f"backend must be one of {SK_BACKENDS}, got {backend!r}.")
    if int(sweeps_per_step) != sweeps_per_step or sweeps_per_step < 1:
        raise ConfigError(f"sweeps_per_step must be a positive integer, got {sweeps_per_step!r}.")
    if int(threads) != threads or threads < 0:
        raise ConfigError(f"threads must be a non-negative integer, got {threads!r}.")
    if backend == "auto":
        backend = "native" if _native.available() and order == "sequential" else "jax"
    if backend == "native":
        if order != "sequential":
            raise ConfigError(
                "the native SK kernel sweeps the spins in order; use order='sequential', or "
                "backend='jax' for order='random'."
            )
        if not _native.available():
            raise ConfigError(_native.reason() + " Pass backend='jax' (or 'auto') to use it.")
    n_sweeps = int(sweeps_per_step)

    def init(x, model) -> SKState:
        if not isinstance(model, SK):
            raise ConfigError(
                f"sk_metropolis needs an SK model, got {type(model).__name__}; use "
                f"diffphys.sampling.metropolis for other discrete models."
            )
        model.check_state(x)
        x = jnp.asarray(x, dtype=model.dtype)
        f = model.local_field(x)
        if backend == "native":
            if f.dtype not in (jnp.float32, jnp.float64):
                raise ConfigError(
                    f"the native SK kernel needs float32 or float64 couplings, got {f.dtype}; "
                    "build the model with dtype=jnp.float32."
                )
            if model.n * n_sweeps >= 2**31:
                raise ConfigError(
                    f"N * sweeps_per_step = {model.n * n_sweeps} overflows the kernel's int32 "
                    "flip counter; use fewer sweeps per step."
                )
            return SKState(x, f, _energy_from_field(x, f, model.h), jnp.uint32(0))
        return SKState(x, f, _energy_from_field(x, f, model.h))

    def step(key, state: SKState, model, beta=beta):
        if backend == "native":
            return _native_step(key, state, model, beta)
        return repeat_sweeps(lambda k, st: _jax_sweep(k, st, model, beta), key, state, n_sweeps)

    def _native_step(key, state: SKState, model, beta):
        dtype = state.field.dtype
        if state.sweep is None:
            raise ConfigError(
                "this SKState was not made by the native sk_metropolis' init; call its init."
            )
        name = "diffphys_sk_sweep_f32" if dtype == jnp.float32 else "diffphys_sk_sweep_f64"
        out_types = (
            jax.ShapeDtypeStruct(state.x.shape, jnp.int8),
            jax.ShapeDtypeStruct(state.field.shape, dtype),
            jax.ShapeDtypeStruct((), jnp.int32),
        )
        fn = jax.ffi.ffi_call(name, out_types, vmap_method="expand_dims")
        x, f, accepted = fn(
            model.J.astype(dtype),
            state.x.astype(jnp.int8),
            state.field,
            jax.random.bits(key, (2,), jnp.uint32),
            state.sweep,
            jnp.asarray(beta, dtype),
            sweeps=np.int64(n_sweeps),
            threads=np.int64(threads),
        )
        energy = _energy_from_field(x, f, model.h)
        rate = accepted.astype(dtype) / (model.n * n_sweeps)
        new = SKState(x, f, energy, state.sweep + jnp.uint32(n_sweeps))
        return new, DiscreteInfo(rate, energy)

    def _jax_sweep(key, state: SKState, model, beta):
        n = model.n
        dtype = state.field.dtype
        k_site, k_u = jax.random.split(key)
        xi = jax.random.exponential(k_u, (n,), dtype=dtype)
        beta = jnp.asarray(beta, dtype)
        if order == "sequential":
            x, f, accepted = _sequential_sweep(model.J, state.x, state.field, xi, beta)
        else:
            sites = jax.random.randint(k_site, (n,), 0, n)
            x, f, accepted = _random_sweep(model.J, state.x, state.field, xi, beta, sites)
        energy = _energy_from_field(x, f, model.h)
        return SKState(x, f, energy, state.sweep), DiscreteInfo(accepted.astype(dtype) / n, energy)

    return SamplingAlgorithm(init, step)


def repeat_sweeps(sweep, key, state, n_sweeps: int):
    """`n_sweeps` calls of `sweep(key, state) -> (state, DiscreteInfo)` with the keys
    `fold_in(key, i)` in one `fori_loop` (the plain call when it is 1): the pure-JAX
    `sweeps_per_step` of the sequential kernels (`sk_metropolis`, `potts_sequential`,
    `pspin_metropolis`). The info holds the mean acceptance rate and the last energy."""
    if n_sweeps == 1:
        return sweep(key, state)

    def body(i, carry):
        st, acc = carry
        st, info = sweep(jax.random.fold_in(key, i), st)
        return st, acc + info.acceptance_rate

    acc0 = jnp.zeros((), state.energy.dtype)
    state, acc = jax.lax.fori_loop(0, n_sweeps, body, (state, acc0))
    return state, DiscreteInfo(acc / n_sweeps, state.energy)


def _energy_from_field(x, f, h) -> Float[Array, ""]:
    s = x.astype(f.dtype)
    return -0.5 * s @ (f + h)


def _random_sweep(J, x, f, xi, beta, sites):
    """N attempted flips at the given sites, for one chain (plain `vmap` batches it)."""
    dtype = f.dtype

    def update(t, carry):
        x, f, accepted = carry
        i = sites[t]
        s = x[i].astype(dtype)
        acc = beta * (2.0 * s * f[i]) < xi[t]

        def flip(xf):
            x, f = xf
            return x.at[i].set(-x[i]), f - (2.0 * s) * J[i]

        x, f = jax.lax.cond(acc, flip, lambda xf: xf, (x, f))
        return x, f, accepted + acc.astype(jnp.int32)

    return jax.lax.fori_loop(0, J.shape[0], update, (x, f, jnp.int32(0)))


_WINDOW = 64


@jax.custom_batching.custom_vmap
def _sequential_sweep(J, x, f, xi, beta):
    """One sweep over spins 0..N-1 of one chain: `(x, f, n_accepted)`.

    The fields change only when a flip is accepted, so the rejections before the next
    acceptance can be decided together: each iteration tests the next window of 64 spins
    against the current fields at once, flips the first spin that accepts (one row update)
    and resumes after it, or skips the window. Decisions, random numbers and arithmetic are
    those of visiting the spins one by one (same spins and fields bit for bit), in about
    (accepted flips + N/64) loop iterations instead of N: 1.2x to 4x faster than one `lax.cond`
    per spin for N = 2048 at beta = 1 (31% acceptance; five side-by-side runs on a 2-core CPU
    shared with other jobs). Under `vmap` the batching rule below uses `_batched_sweep`."""
    n = J.shape[0]
    w = min(_WINDOW, n)
    offsets = jnp.arange(w, dtype=jnp.int32)

    def cond(carry):
        return carry[2] < n

    def body(carry):
        x, f, pos, accepted = carry
        lo = jnp.minimum(pos, n - w)
        s = jax.lax.dynamic_slice(x, (lo,), (w,)).astype(f.dtype)
        field = jax.lax.dynamic_slice(f, (lo,), (w,))
        sites = lo + offsets
        acc = (sites >= pos) & (beta * (2.0 * s * field) < jax.lax.dynamic_slice(xi, (lo,), (w,)))
        i = jnp.min(jnp.where(acc, sites, n))  # first accepted spin at or after pos, else n
        found = i < n

        def flip(xf):
            x, f = xf
            si = jax.lax.dynamic_index_in_dim(x, i, keepdims=False)
            row = jax.lax.dynamic_index_in_dim(J, i, keepdims=False)
            return jax.lax.dynamic_update_index_in_dim(x, -si, i, 0), f - (
                2.0 * si.astype(f.dtype)
            ) * row

        x, f = jax.lax.cond(found, flip, lambda xf: xf, (x, f))
        return x, f, jnp.where(found, i + 1, lo + w), accepted + found.astype(jnp.int32)

    x, f, _, accepted = jax.lax.while_loop(cond, body, (x, f, jnp.int32(0), jnp.int32(0)))
    return x, f, accepted


@_sequential_sweep.def_vmap
def _sequential_sweep_vmap(axis_size, in_batched, J, x, f, xi, beta):
    chains = [
        a if b else jnp.broadcast_to(a, (axis_size, *jnp.shape(a)))
        for a, b in zip((x, f, xi, beta), in_batched[1:])
    ]
    if in_batched[0]:  # one J per chain: J (B, N, N), chains (B, 1, ...)
        chains = [a[:, None] for a in chains]
    else:  # one J shared by all chains (replicas, tempering rungs): J (1, N, N), chains (1, B, ...)
        J = J[None]
        chains = [a[None] for a in chains]
    x, f, accepted = _batched_sweep(J, *chains)
    n = x.shape[-1]
    out = (x.reshape(axis_size, n), f.reshape(axis_size, n), accepted.reshape(axis_size))
    return out, (True, True, True)


@jax.custom_batching.custom_vmap
def _batched_sweep(J, x, f, xi, beta):
    r"""One sequential sweep of O x R chains: J (O, N, N), x, f, xi (O, R, N), beta (O, R).

    Chain (o, r) uses J[o]. Every chain takes the row update $f \leftarrow f - d\,J_{i\cdot}$
    with $d = 2 s_i$ if accepted and 0 if not (a rejection leaves f unchanged, so this is the
    single-chain update; fields may differ from it in the last bit where the compiler contracts
    the multiply-subtract differently, spins and acceptances did not in the tests). Rows and
    spins are read with `dynamic_slice`s along the spin axis: the plain `vmap` of the
    single-chain loop turns them into gathers and `select`s, and on a 2-core CPU was 3.5x
    slower than this loop (5.6 vs 19.9 M flips/s, chunks of 8 samples x N = 256, measured side
    by side). Unrolling it (`fori_loop(..., unroll=2)`) was 3-5x slower, not faster."""
    idx = jax.lax.dynamic_index_in_dim

    def update(i, carry):
        x, f = carry
        si = idx(x, i, 2, keepdims=False)
        s = si.astype(f.dtype)
        acc = beta * (2.0 * s * idx(f, i, 2, keepdims=False)) < idx(xi, i, 2, keepdims=False)
        d = jnp.where(acc, 2.0 * s, jnp.zeros((), f.dtype))
        x = jax.lax.dynamic_update_index_in_dim(x, jnp.where(acc, -si, si), i, 2)
        f = f - d[..., None] * idx(J, i, 1, keepdims=False)[:, None, :]
        return x, f

    x_new, f = jax.lax.fori_loop(0, J.shape[-1], update, (x, f))
    # Each spin is visited once, so the accepted flips are the spins that changed. Counting
    # them here rather than in the loop made the loop 2.1x faster (one fewer operation per
    # spin; 9.0 vs 4.2 M flips/s, chunks of 8 x N = 256, side by side, shared 2-core CPU).
    return x_new, f, jnp.sum(x_new != x, axis=-1, dtype=jnp.int32)


@_batched_sweep.def_vmap
def _batched_sweep_vmap(axis_size, in_batched, J, x, f, xi, beta):
    # Fold the new batch axis A into the chain axes, keeping J[o] aligned with chains (o, .).
    chains = [
        a if b else jnp.broadcast_to(a, (axis_size, *jnp.shape(a)))
        for a, b in zip((x, f, xi, beta), in_batched[1:])
    ]
    A, O, R = chains[0].shape[:3]
    if in_batched[0]:  # J (A, O, N, N) -> (A O, N, N); chains (A, O, R, ...) -> (A O, R, ...)
        J = J.reshape(A * O, *J.shape[2:])
        chains = [a.reshape(A * O, R, *a.shape[3:]) for a in chains]
        x, f, accepted = _batched_sweep(J, *chains)
        return tuple(a.reshape(A, O, R, *a.shape[2:]) for a in (x, f, accepted)), (True,) * 3
    # J (O, N, N) shared across A: chains (A, O, R, ...) -> (O, A R, ...)
    chains = [jnp.moveaxis(a, 0, 1).reshape(O, A * R, *a.shape[3:]) for a in chains]
    x, f, accepted = _batched_sweep(J, *chains)
    out = tuple(jnp.moveaxis(a.reshape(O, A, R, *a.shape[2:]), 1, 0) for a in (x, f, accepted))
    return out, (True,) * 3


__all__ = ["MAX_COUPLINGS", "SK", "PSpin", "SKState", "sk_metropolis"]
