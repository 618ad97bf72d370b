r"""Fused checkerboard Metropolis sweeps of the 2D/3D Ising model: C++ through XLA FFI.

One call of `fused_checkerboard(...).step` does `sweeps_per_step` full sweeps (colour 0, then
colour 1) of a periodic lattice with uniform or per-bond couplings and any field, as one fused
loop that reads and writes each spin once per colour update and makes its random numbers in
registers:

- `backend="native"`: a C++ kernel called through `jax.ffi` (`diffphys/_native/ising_ffi.cc`,
  compiled by `pip install -e .`), OpenMP over rows (one large lattice) or over lattices (a
  vmapped ensemble, one call for all of them: `vmap_method="expand_dims"`).
- `backend="pallas"`: a `jax.experimental.pallas` kernel per colour update (the GPU path,
  `_ising_pallas.py`): tiles over the first lattice axis, Philox bits made in the kernel
  from (key, absolute sweep index, site), 24-bit acceptance test. On a CPU it runs in
  Pallas interpret mode (slow; for tests). Not yet run on a GPU in this repository.
- `backend="jax"`: the fallback where the native library was not built: `sweeps_per_step`
  sweeps of the generic `sampling.checkerboard` kernel, same law, its own random stream
  (`fold_in(key, absolute sweep index)`, so also resumable exactly).

**Layout.** Spins are `int8`, stored by colour: `spins[c, r, j]` is the colour-c site
(colour = sum of the coordinates mod 2) of pair j of row r (the first d-1 coordinates,
flattened), at column 2j + ((parity(r) + c) mod 2) of the last axis. The neighbours along
the first axes are the other colour at the same j in rows r ± e_a; along the last axis, the
other colour at j and j - 1 (offset 0) or j and j + 1 (offset 1).

**Random numbers** are counter based: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11),
keyed by two 32-bit words drawn from the step key, with counter (index, colour c, absolute
sweep index, stream). Stream 0 gives 16 random bytes per block of 16 sites of the colour-c
plane (site r m + j is byte r m + j); stream 1 gives 64 more bits for site r m + j. The bits of a site depend only on the key, the absolute
sweep index (kept in the state) and the site, so `k` sweeps followed by `k` more with the same
key equal `2k` sweeps bit for bit, whatever `sweeps_per_step` is.

**Exact lazy acceptance.** A site flips iff $U < P$, $U$ uniform on 64 binary digits and
$P = \lfloor e^{-\beta\Delta E}\, 2^{64}\rfloor$ (always when $\Delta E \le 0$;
$\Delta E = 2 s_x (h_x + \sum_k J_k s_k)$, Metropolis et al. 1953). The first random byte of
$U$ decides unless it equals the first byte of $P$ (uniform couplings: $P$ is tabulated per
spin and neighbour sum) or, per-bond couplings, unless $\beta\Delta E$ lies within rounding of
$-\ln(r/256)$ or $-\ln((r+1)/256)$ (no exponential in the common case); those rare sites
(about 1/256) compare 64 more bits. Detailed balance holds exactly for $P/2^{64}$, which differs
from $e^{-\beta\Delta E}$ by less than $2^{-64}$ (evaluated in double precision).

**Reference:** the pure-JAX `ising_checkerboard_metropolis` (bit-packed, uniform J, h = 0)
and the generic `diffphys.sampling.checkerboard` stay the reference kernels; the tests compare
every backend with exact enumeration and with Onsager's energy.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _native
from .._errors import ConfigError, ShapeError, check_positive
from .._types import Array, Float, Int, RealScalar, UInt
from ..sampling import DiscreteInfo, SamplingAlgorithm
from . import _ising_pallas
from ._lattice import Ising

BACKENDS = ("auto", "native", "pallas", "jax")
_NOT_UNIFORM = (
    "a fused_checkerboard state built for uniform couplings was stepped with a non-uniform "
    "model; init it with couplings='bonds'."
)


def _row_parity(rows: tuple[int, ...]) -> np.ndarray:
    if not rows:
        return np.zeros((), np.int32)
    return (np.indices(rows).sum(axis=0) % 2).astype(np.int32)


def to_colours(x: Array, lattice: tuple[int, ...]) -> Array:
    """Lattice-shaped array -> the colour layout `(2, R, m)` of `FusedIsingState.spins`."""
    rows, m = lattice[:-1], lattice[-1] // 2
    pairs = jnp.asarray(x).reshape(*rows, m, 2)
    par = jnp.asarray(_row_parity(rows))[..., None]
    subs = [jnp.where((par + c) % 2 == 0, pairs[..., 0], pairs[..., 1]) for c in range(2)]
    return jnp.stack(subs).reshape(2, math.prod(rows), m)


def from_colours(spins: Array, lattice: tuple[int, ...]) -> Array:
    """Inverse of `to_colours`: `(2, R, m)` -> an array of shape `lattice`."""
    rows, m = lattice[:-1], lattice[-1] // 2
    s = spins.reshape(2, *rows, m)
    par = jnp.asarray(_row_parity(rows))[..., None]
    even = jnp.where(par == 0, s[0], s[1])  # the site at column 2j
    odd = jnp.where(par == 0, s[1], s[0])
    return jnp.stack([even, odd], axis=-1).reshape(lattice)


class FusedIsingState(eqx.Module):
    """State of `fused_checkerboard`.

    - `spins`: `int8` ±1 spins in the colour layout `(2, R, m)` (module docstring).
    - `sweep`: the number of sweeps done so far (`uint32`), the counter of the random stream.
    - `energy`: the energy after the last sweep (float32, accumulated in float64).
    - `x`: the ±1 `int8` configuration of shape `lattice` (computed on demand).
    """

    spins: Int[Array, "2 R m"]
    sweep: UInt[Array, ""]
    energy: Float[Array, ""]
    lattice: tuple[int, ...] = eqx.field(static=True)
    uniform: bool = eqx.field(static=True)

    @property
    def x(self) -> Array:
        return from_colours(self.spins, self.lattice)


def _slot_couplings(model: Ising, lattice) -> Array:
    """Per-site couplings to the 2d neighbours, slots (+e_0, -e_0, ..., +e_{d-1}, -e_{d-1}),
    in the colour layout: shape (2, 2d, R, m), float32."""
    J = model.J.astype(jnp.float32)
    slots = []
    for a in range(len(lattice)):
        slots.append(J[a])
        slots.append(jnp.roll(J[a], 1, axis=a))
    return jnp.stack([to_colours(s, lattice) for s in slots], axis=1)


def _concrete_uniform(model: Ising) -> bool | None:
    """True/False when J and h are concrete, None under a trace."""
    try:
        J, h = np.asarray(model.J), np.asarray(model.h)
    except Exception:
        return None
    return bool(np.all(J == J.reshape(-1)[0]) and np.all(h == h.reshape(-1)[0]))


def _check_model(model) -> tuple[int, ...]:
    if not isinstance(model, Ising):
        raise ConfigError(
            f"fused_checkerboard needs a diffphys.models.Ising model, got "
            f"{type(model).__name__}; use diffphys.sampling.checkerboard for other models."
        )
    lattice = tuple(model.lattice)
    if len(lattice) not in (2, 3):
        raise ShapeError(
            f"fused_checkerboard supports 2D and 3D lattices, got {lattice}; use "
            "ising_checkerboard_metropolis or sampling.checkerboard in other dimensions."
        )
    if any(n % 2 for n in lattice):
        raise ShapeError(
            f"a checkerboard update needs an even linear size on every axis, got lattice "
            f"{lattice}. Use an even L, or the single-site diffphys.sampling.metropolis."
        )
    return lattice


def _resolve_backend(backend: str) -> str:
    if backend == "auto":
        return "native" if _native.available() else "jax"
    if backend == "native" and not _native.available():
        raise ConfigError(_native.reason() + " Pass backend='jax' (or 'auto') to use it.")
    return backend


def fused_checkerboard(
    beta: RealScalar = 1.0,
    *,
    sweeps_per_step: int = 1,
    backend: str = "auto",
    couplings: str = "auto",
    threads: int = 0,
    tile: int | None = None,
    interpret: bool | None = None,
) -> SamplingAlgorithm:
    r"""Exact checkerboard Metropolis for the 2D/3D Ising model as one fused kernel call.

    Same Markov chain law as `diffphys.sampling.checkerboard(beta)` on an `Ising` model with
    even linear sizes, any couplings (uniform, per axis or per bond) and any field: colour 0,
    then colour 1, each site flipped with probability $\min(1, e^{-\beta\Delta E})$,
    $\Delta E = 2 s_x (h_x + \sum_{y \sim x} J_{xy} s_y)$ (Metropolis et al. 1953). The
    module docstring gives the layout, the counter-based random stream (Philox4x32-10,
    Salmon et al. 2011) and the exact lazy acceptance test.

    **Arguments:**

    - `beta`: default inverse temperature; `step(..., beta=b)` overrides it per step.
    - `sweeps_per_step`: full sweeps per `step` (one kernel call); the random stream depends
      only on the absolute sweep index, so the chain does not depend on this choice.
    - `backend`: `"native"` (C++ XLA FFI call, CPU), `"pallas"` (Pallas kernel, the GPU
      path; its acceptance test resolves probabilities to $2^{-24}$ and float32's
      exponential, ~1e-7 relative, instead of the native $2^{-64}$), `"jax"` (generic
      checkerboard sweeps, module docstring), or `"auto"` (native if the library was built,
      else jax; pallas is not chosen automatically until it has been validated on a GPU).
    - `couplings`: `"uniform"` (one J and one h: tabulated acceptance), `"bonds"` (per-bond J,
      per-site h), or `"auto"` (uniform when `init` sees a concrete model with uniform J and
      h, else bonds). A uniform state stepped with a non-uniform model raises at run time.
    - `threads`: OpenMP threads of the native kernel (0: all).
    - `tile`: rows of the first lattice axis per Pallas program (a divisor of it; default:
      the whole axis in interpret mode, blocks of <= 2^14 sites on a GPU).
    - `interpret`: run the Pallas kernel in interpret mode (default: unless
      `jax.default_backend() == "gpu"`).

    **Returns:** a `SamplingAlgorithm` whose `init(x, model)` takes ±1 spins of shape
    `model.lattice` and returns a `FusedIsingState` (with `.x` and `.energy`), and whose
    `step(key, state, model, beta=...)` does `sweeps_per_step` sweeps and returns
    `(state, DiscreteInfo(acceptance_rate, energy))` (the acceptance rate averaged over them).
    Under `jax.vmap` an ensemble of chains is one kernel call.
    """
    check_positive("beta", beta)
    if int(sweeps_per_step) != sweeps_per_step or sweeps_per_step < 1:
        raise ConfigError(f"sweeps_per_step must be a positive integer, got {sweeps_per_step!r}.")
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if couplings not in ("auto", "uniform", "bonds"):
        raise ConfigError(f"couplings must be 'auto', 'uniform' or 'bonds', got {couplings!r}.")
    if int(threads) != threads or threads < 0:
        raise ConfigError(f"threads must be a non-negative integer, got {threads!r}.")
    if tile is not None and (int(tile) != tile or tile < 1):
        raise ConfigError(f"tile must be a positive integer, got {tile!r}.")
    backend = _resolve_backend(backend)
    n_sweeps = int(sweeps_per_step)
    if interpret is None:
        interpret = jax.default_backend() != "gpu"

    def init(x, model) -> FusedIsingState:
        lattice = _check_model(model)
        model.check_state(x)
        if couplings == "auto":
            uniform = bool(_concrete_uniform(model))
        else:
            uniform = couplings == "uniform"
            if uniform and _concrete_uniform(model) is False:
                raise ConfigError(
                    "couplings='uniform' needs one J on every bond and one h on every site; "
                    "use couplings='bonds' (or 'auto') for this model."
                )
        if backend == "pallas":
            _ising_pallas.check_tile(lattice, _tile(lattice), interpret)
        spins = to_colours(jnp.where(jnp.asarray(x) > 0, 1, -1).astype(jnp.int8), lattice)
        energy = model.energy(x.astype(jnp.int8)).astype(jnp.float32)
        return FusedIsingState(spins, jnp.uint32(0), energy, lattice, uniform)

    def step(key, state: FusedIsingState, model, beta=beta):
        lattice = state.lattice
        if backend == "jax":
            spins, stats = _jax_step(key, state, model, jnp.asarray(beta, jnp.float32), n_sweeps)
            new = FusedIsingState(
                spins, state.sweep + jnp.uint32(n_sweeps), stats[1], lattice, state.uniform
            )
            return new, DiscreteInfo(stats[0], stats[1])
        kbits = jax.random.bits(key, (2,), jnp.uint32)
        beta = jnp.asarray(beta, jnp.float32)
        if state.uniform:
            J = model.J.reshape(-1)[0].astype(jnp.float32)
            h = model.h.reshape(-1)[0].astype(jnp.float32)
            concrete = _concrete_uniform(model)
            if concrete is False:
                raise ConfigError(_NOT_UNIFORM)
            if concrete is None:  # traced model: checked at run time
                beta = eqx.error_if(
                    beta,
                    jnp.any(model.J != model.J.reshape(-1)[0])
                    | jnp.any(model.h != model.h.reshape(-1)[0]),
                    _NOT_UNIFORM,
                )
            params = jnp.stack([beta, J, h])
            extra = ()
        else:
            params = beta[None]
            extra = (
                _slot_couplings(model, lattice),
                to_colours(model.h.astype(jnp.float32), lattice),
            )
        if backend == "pallas":
            if not interpret and jax.default_backend() != "gpu":
                raise ConfigError(
                    f"backend='pallas' with interpret=False needs a GPU (JAX's default backend "
                    f"is {jax.default_backend()!r}); pass interpret=True (slow) or use "
                    "backend='native'/'jax'."
                )
            spins, acc = _ising_pallas.sweeps(
                state.spins,
                kbits,
                state.sweep,
                params,
                extra,
                lattice=lattice,
                n_sweeps=n_sweeps,
                tile=_tile(lattice),
                interpret=interpret,
            )
            energy = model.energy(from_colours(spins, lattice)).astype(jnp.float32)
            stats = jnp.stack([acc, energy])
        else:
            spins, stats = _call(
                backend,
                state.spins,
                kbits,
                state.sweep,
                params,
                extra,
                lattice,
                n_sweeps,
                threads,
            )
        energy = stats[1]
        new = FusedIsingState(
            spins, state.sweep + jnp.uint32(n_sweeps), energy, lattice, state.uniform
        )
        return new, DiscreteInfo(stats[0], energy)

    def _tile(lattice):
        return int(tile) if tile is not None else _ising_pallas.default_tile(lattice, interpret)

    return SamplingAlgorithm(init, step)


def _call(backend, spins, kbits, sweep, params, extra, lattice, n_sweeps, threads):
    if backend == "native":
        return _call_native(spins, kbits, sweep, params, extra, lattice, n_sweeps, threads)
    raise AssertionError(backend)  # the jax backend is handled in `step`


def _jax_step(key, state, model, beta, n_sweeps):
    """The pure-JAX path: `n_sweeps` sweeps of the generic `sampling.checkerboard` kernel, the
    key of absolute sweep t being `fold_in(key, t)` (so the chain is resumable, with the same
    law as the native kernel but a different random stream)."""
    from ..sampling import checkerboard

    alg = checkerboard(beta)
    inner = alg.init(from_colours(state.spins, state.lattice), model)

    def body(i, carry):
        st, acc = carry
        st, info = alg.step(jax.random.fold_in(key, state.sweep + i.astype(jnp.uint32)), st, model)
        return st, acc + info.acceptance_rate

    inner, acc = jax.lax.fori_loop(0, n_sweeps, body, (inner, jnp.float32(0)))
    spins = to_colours(inner.x.astype(jnp.int8), state.lattice)
    energy = model.energy(inner.x).astype(jnp.float32)
    return spins, jnp.stack([acc / n_sweeps, energy])


def _call_native(spins, kbits, sweep, params, extra, lattice, n_sweeps, threads):
    n = (*lattice, 0) if len(lattice) == 2 else lattice
    name = "diffphys_ising_bonds" if extra else "diffphys_ising_uniform"
    out_types = (
        jax.ShapeDtypeStruct(spins.shape, jnp.int8),
        jax.ShapeDtypeStruct((2,), jnp.float32),
    )
    fn = jax.ffi.ffi_call(name, out_types, vmap_method="expand_dims")
    return fn(
        spins,
        kbits,
        sweep,
        params,
        *extra,
        d=np.int64(len(lattice)),
        n0=np.int64(n[0]),
        n1=np.int64(n[1]),
        n2=np.int64(n[2]),
        sweeps=np.int64(n_sweeps),
        threads=np.int64(threads),
    )


__all__ = ["FusedIsingState", "fused_checkerboard", "from_colours", "to_colours"]
