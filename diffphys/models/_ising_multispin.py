r"""Multispin-coded checkerboard Metropolis for ensembles of small 2D/3D Ising lattices.

`multispin_checkerboard` runs S independent chains of one uniform-coupling `Ising` model (same
J, h and beta; different initial states and random bits) as one state: bit b of a 64-bit word
holds the spin of sample 64 g + b at one site (`diffphys/_native/ising_multispin.cc`), so one
word operation updates 64 samples and a short row costs nothing extra. This is the layout for
the ensembles of many small lattices (e.g. 64 x 12^3) where the per-row overheads of
`fused_checkerboard` dominate.

**Law.** Checkerboard Metropolis (colour 0, then colour 1; Metropolis et al. 1953), each
sample flipped with probability $\min(1, e^{-\beta\Delta E})$, $\Delta E = 2 s (h + J\sum_y
s_y) = 2(s h + J(z - 2a))$ with $a$ the number of antiparallel neighbours (a bit-sliced
count over the 64 samples). A sample flips iff $U < \lfloor e^{-\beta\Delta E} 2^{64}
\rfloor$, $U$ made of that sample's bit in successive random words, compared most significant
bit first and stopped once every sample of the word is decided (about 8 words per 64
samples): exact to $2^{-64}$, like `fused_checkerboard`.

**Random bits** are counter based (Philox4x32-10, Salmon et al. SC'11, keyed by two words of
the step key; counter = (site, word, absolute sweep index), module comment of the C++ file).
Guarantees, tested: `k` sweeps then `k` more equal `2k` sweeps bit for bit; sample b of an
ensemble depends only on (key, its own initial state, b), so the first n samples of a larger
ensemble equal an ensemble of n with the same key and initial states, and different samples
use independent bits (they are independent chains).

**Reference path.** `backend="jax"`: the same law with `sweeps_per_step` generic
`sampling.checkerboard` sweeps per sample (`vmap`), sample b keyed by `fold_in(key, b)`
and the sweep index (another random stream; same distribution).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _native
from .._errors import ConfigError, ShapeError, check_positive
from .._types import Array, Float, RealScalar, UInt
from ..sampling import DiscreteInfo, SamplingAlgorithm
from ._ising_fused import (
    _NOT_UNIFORM,
    FusedIsingState,
    _check_model,
    _concrete_uniform,
    _jax_step,
    from_colours,
    to_colours,
)
from ._lattice import Ising

_SHIFTS = np.arange(32, dtype=np.uint32)


def pack(x: Array, n_groups: int) -> Array:
    """±1 spins `(S, *lattice)` -> words `(G, N, 2)` uint32 (bit b of the little-endian 64-bit
    word (G, N) is sample 64 g + b; samples past S are -1)."""
    S = x.shape[0]
    bits = (jnp.asarray(x).reshape(S, -1) > 0).astype(jnp.uint32)
    bits = jnp.pad(bits, ((0, 64 * n_groups - S), (0, 0)))
    bits = bits.reshape(n_groups, 2, 32, -1) << jnp.asarray(_SHIFTS)[:, None]
    words = jnp.sum(bits, axis=2, dtype=jnp.uint32)  # disjoint bits: sum == or
    return jnp.transpose(words, (0, 2, 1))


def unpack(words: Array, n_samples: int, lattice: tuple[int, ...]) -> Array:
    """Inverse of `pack`: `(G, N, 2)` uint32 -> ±1 `int8` spins `(S, *lattice)`."""
    G, N = words.shape[0], words.shape[1]
    w = jnp.transpose(words, (0, 2, 1))[:, :, None, :]
    bits = (w >> jnp.asarray(_SHIFTS)[:, None]) & jnp.uint32(1)
    x = jnp.where(bits.reshape(64 * G, N)[:n_samples] > 0, 1, -1).astype(jnp.int8)
    return x.reshape(n_samples, *lattice)


class MultispinIsingState(eqx.Module):
    """State of `multispin_checkerboard`.

    - `words`: the spins of all samples, `(G, N, 2)` uint32 (module docstring, `pack`).
    - `sweep`: sweeps done so far (`uint32`), the counter of the random stream.
    - `energy`: per-sample energies after the last sweep, `(S,)` float32.
    - `x`: the ±1 `int8` configurations, shape `(S, *lattice)` (computed on demand).
    """

    words: UInt[Array, "G N 2"]
    sweep: UInt[Array, ""]
    energy: Float[Array, " S"]
    lattice: tuple[int, ...] = eqx.field(static=True)
    n_samples: int = eqx.field(static=True)

    @property
    def x(self) -> Array:
        return unpack(self.words, self.n_samples, self.lattice)


def multispin_checkerboard(
    beta: RealScalar = 1.0,
    *,
    sweeps_per_step: int = 1,
    backend: str = "auto",
    threads: int = 1,
) -> SamplingAlgorithm:
    r"""Checkerboard Metropolis of an ensemble of S Ising lattices, 64 samples per machine word.

    The chain of every sample has the law of `diffphys.sampling.checkerboard(beta)` on one
    `Ising` model with uniform couplings and field (2D or 3D, even linear sizes): colour 0, then
    colour 1, flip with probability $\min(1, e^{-\beta\Delta E})$ (Metropolis et al. 1953).
    Samples are independent chains (their own random bits); the module docstring gives the
    multispin layout, the exact bit-sliced acceptance test and the reproducibility guarantees.
    Use it for many small lattices (the per-row costs of `fused_checkerboard` dominate below
    ~32 sites per row); `fused_checkerboard` under `vmap` is the alternative for few large
    lattices or per-bond couplings.

    **Arguments:**

    - `beta`: default inverse temperature; `step(..., beta=b)` overrides it per step.
    - `sweeps_per_step`: full sweeps per `step` (one kernel call); the chain does not depend
      on it.
    - `backend`: `"native"` (C++ XLA FFI call, CPU), `"jax"` (per-sample generic checkerboard
      sweeps: the reference), or `"auto"` (native if the library was built).
    - `threads`: OpenMP threads of the native kernel (0: all; default 1, the best use of a
      shared machine: the per-colour barrier of small lattices costs more than it saves).

    **Returns:** a `SamplingAlgorithm` whose `init(xs, model)` takes ±1 spins of shape
    `(S, *model.lattice)` and returns a `MultispinIsingState` (`.x` of the same shape,
    `.energy` of shape `(S,)`), and whose `step(key, state, model, beta=...)` returns
    `(state, DiscreteInfo(acceptance_rate, energy))` with per-sample `(S,)` entries.
    """
    check_positive("beta", beta)
    if int(sweeps_per_step) != sweeps_per_step or sweeps_per_step < 1:
        raise ConfigError(f"sweeps_per_step must be a positive integer, got {sweeps_per_step!r}.")
    if backend not in ("auto", "native", "jax"):
        raise ConfigError(f"backend must be 'auto', 'native' or 'jax', got {backend!r}.")
    if int(threads) != threads or threads < 0:
        raise ConfigError(f"threads must be a non-negative integer, got {threads!r}.")
    if backend == "auto":
        backend = "native" if _native.available() else "jax"
    elif backend == "native" and not _native.available():
        raise ConfigError(_native.reason() + " Pass backend='jax' (or 'auto') to use it.")
    n_sweeps = int(sweeps_per_step)

    def init(xs, model) -> MultispinIsingState:
        lattice = _check_model(model)
        xs = jnp.asarray(xs)
        if xs.ndim != len(lattice) + 1 or tuple(xs.shape[1:]) != lattice or xs.shape[0] < 1:
            raise ShapeError(
                f"multispin_checkerboard.init needs spins of shape (S, *lattice) = (S, "
                f"{', '.join(map(str, lattice))}) with S >= 1, got {tuple(xs.shape)}."
            )
        if _concrete_uniform(model) is False:
            raise ConfigError(
                "multispin_checkerboard needs one J on every bond and one h on every site; use "
                "fused_checkerboard(couplings='bonds') under jax.vmap for this model."
            )
        S = int(xs.shape[0])
        words = pack(xs, math.ceil(S / 64))
        energy = jax.vmap(model.energy)(jnp.where(xs > 0, 1, -1).astype(jnp.int8))
        return MultispinIsingState(words, jnp.uint32(0), energy.astype(jnp.float32), lattice, S)

    def step(key, state: MultispinIsingState, model, beta=beta):
        lattice, S = state.lattice, state.n_samples
        beta = jnp.asarray(beta, jnp.float32)
        if _concrete_uniform(model) is False:
            raise ConfigError(_NOT_UNIFORM)
        if _concrete_uniform(model) is None:
            beta = eqx.error_if(
                beta,
                jnp.any(model.J != model.J.reshape(-1)[0])
                | jnp.any(model.h != model.h.reshape(-1)[0]),
                _NOT_UNIFORM,
            )
        if backend == "jax":
            words, acc, energy = _jax_ensemble(key, state, model, beta, n_sweeps)
        else:
            J = model.J.reshape(-1)[0].astype(jnp.float32)
            h = model.h.reshape(-1)[0].astype(jnp.float32)
            words, stats = _call_native(
                state.words,
                jax.random.bits(key, (2,), jnp.uint32),
                state.sweep,
                jnp.stack([beta, J, h]),
                lattice,
                n_sweeps,
                threads,
            )
            acc, energy = stats[:S, 0], stats[:S, 1]
        new = MultispinIsingState(words, state.sweep + jnp.uint32(n_sweeps), energy, lattice, S)
        return new, DiscreteInfo(acc, energy)

    return SamplingAlgorithm(init, step)


def _jax_ensemble(key, state, model: Ising, beta, n_sweeps):
    lattice = state.lattice
    xs = unpack(state.words, state.n_samples, lattice)

    def one(b, x):
        st = FusedIsingState(to_colours(x, lattice), state.sweep, jnp.float32(0), lattice, True)
        spins, stats = _jax_step(jax.random.fold_in(key, b), st, model, beta, n_sweeps)
        return from_colours(spins, lattice), stats

    xs, stats = jax.vmap(one)(jnp.arange(state.n_samples, dtype=jnp.uint32), xs)
    return pack(xs, state.words.shape[0]), stats[:, 0], stats[:, 1]


def _call_native(words, kbits, sweep, params, lattice, n_sweeps, threads):
    n = (*lattice, 0) if len(lattice) == 2 else lattice
    out_types = (
        jax.ShapeDtypeStruct(words.shape, jnp.uint32),
        jax.ShapeDtypeStruct((64 * words.shape[0], 2), jnp.float32),
    )
    fn = jax.ffi.ffi_call("diffphys_ising_multispin", out_types, vmap_method="sequential")
    return fn(
        words,
        kbits,
        sweep,
        params,
        d=np.int64(len(lattice)),
        n0=np.int64(n[0]),
        n1=np.int64(n[1]),
        n2=np.int64(n[2]),
        sweeps=np.int64(n_sweeps),
        threads=np.int64(threads),
    )


__all__ = ["MultispinIsingState", "multispin_checkerboard"]
