r"""Sequential single-spin Metropolis sweeps of the Ising p = 3 spin glass with a field matrix.

For `PSpin` with p = 3, $E(s) = -\sum_{i<j<k} J_{ijk} s_i s_j s_k - \sum_i h_i s_i$. With the
dense symmetric tensor $T$ ($T_{ijk} = J$ for every permutation of a tuple, 0 when two indices
coincide) the sampler keeps $M_{ij} = \sum_k T_{ijk} s_k$ and the local fields
$f_i = \tfrac12 \sum_j M_{ij} s_j + h_i$: a flip is decided in O(1) from $\Delta E = 2 s_i f_i$
and an accepted flip of spin l updates $f$ with one row of M (O(N)) and M with one slab
$T_{l\cdot\cdot}$ of the tensor (O(N^2)). `backend="native"` runs the sweeps as one C++ XLA FFI
call (`diffphys/_native/pspin_ffi.cc`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _native
from .._errors import ConfigError, check_positive
from .._types import Array, Float, RealScalar, Spins
from ..sampling import DiscreteInfo, SamplingAlgorithm
from ._sk import PSpin, _pspin_tables, repeat_sweeps

PSPIN_BACKENDS = ("jax", "native", "auto")
MAX_TENSOR_BYTES = 2**31
"""Size guard of `pspin_metropolis`: the dense tensor $N^3$ x itemsize may not exceed 2 GiB."""

_PERMUTATIONS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


class PSpinState(NamedTuple):
    r"""State of `pspin_metropolis`: spins (N,), the local fields
    $f_i = \tfrac12\sum_j M_{ij} s_j + h_i$ (N,), the energy, the field matrix
    $M_{ij} = \sum_k T_{ijk} s_k$ (N, N), `sweep` (the number of sweeps done, `uint32`: the
    counter of the native kernel's random stream) and `tensor`, the dense symmetric coupling
    tensor $T$ (N, N, N), built once by `init`."""

    x: Spins
    field: Float[Array, " n"]
    energy: Float[Array, ""]
    M: Float[Array, "n n"]
    sweep: Array
    tensor: Float[Array, "n n n"]


def pspin_tensor(model: PSpin) -> Float[Array, "n n n"]:
    r"""The dense symmetric coupling tensor of a p = 3 `PSpin` model.

    $T_{ijk} = J_{\{ijk\}}$ for all six orderings of each tuple $i<j<k$ and 0 where two
    indices coincide, so that $E(s) = -\tfrac16\sum_{ijk} T_{ijk}s_is_js_k - h\cdot s$: one
    scatter of the packed couplings (`itertools.combinations` order) over the six
    permutations. Memory: $N^3$ x itemsize (8 MiB for N = 128 in float32).

    **Arguments:**

    - `model`: a `PSpin` with p = 3 (vmap over models for a batch).

    **Returns:** the tensor, shape (N, N, N), in the couplings' dtype.
    """
    _check_model(model)
    n = model.n
    tuples, _, _ = _pspin_tables(n, 3)
    t = tuples.astype(np.int64)
    flat = np.concatenate(
        [t[:, a] * n * n + t[:, b] * n + t[:, c] for a, b, c in _PERMUTATIONS]
    ).astype(np.int32 if n**3 < 2**31 else np.int64)
    values = jnp.tile(model.couplings, len(_PERMUTATIONS))
    T = (
        jnp.zeros(n**3, model.couplings.dtype)
        .at[flat]
        .set(values, indices_are_sorted=False, unique_indices=True)
    )
    return T.reshape(n, n, n)


def _check_model(model) -> None:
    if not isinstance(model, PSpin):
        raise ConfigError(
            f"pspin_metropolis needs a PSpin model, got {type(model).__name__}; use "
            "diffphys.sampling.metropolis for other discrete models."
        )
    if model.p != 3:
        hint = " (p = 2 is SK: use sk_metropolis with SK couplings)" if model.p == 2 else ""
        raise ConfigError(
            f"pspin_metropolis supports p = 3 only, got p = {model.p}{hint}; use "
            "diffphys.sampling.metropolis for other p."
        )


def _check_size(n: int, dtype) -> None:
    nbytes = n**3 * jnp.dtype(dtype).itemsize
    if nbytes > MAX_TENSOR_BYTES:
        raise ConfigError(
            f"pspin_metropolis stores the dense N^3 coupling tensor: N = {n} needs "
            f"{nbytes / 2**30:.1f} GiB (> 2 GiB per chain); use N <= "
            f"{int((MAX_TENSOR_BYTES / jnp.dtype(dtype).itemsize) ** (1 / 3))} or "
            "diffphys.sampling.metropolis (packed couplings)."
        )


def _energy_from_field(x, f, h) -> Float[Array, ""]:
    r"""$E = -\tfrac13 s\cdot(f + 2h)$: $\sum_i s_i (f_i - h_i) = 3 \sum_{i<j<k} J s s s$."""
    s = x.astype(f.dtype)
    return -(s @ (f + 2.0 * h)) / 3.0


def pspin_metropolis(
    beta: RealScalar = 1.0,
    *,
    backend: str = "auto",
    sweeps_per_step: int = 1,
    threads: int = 0,
) -> SamplingAlgorithm:
    r"""Sequential single-spin Metropolis for the Ising p = 3 `PSpin` with a field matrix.

    One sweep visits spins 0..N-1 in order. With $T$ the dense symmetric coupling tensor
    (`pspin_tensor`), the state keeps $M_{ij} = \sum_k T_{ijk}s_k$ (symmetric, zero diagonal)
    and the local fields $f_i = \tfrac12\sum_j M_{ij}s_j + h_i$; flipping spin i costs
    $\Delta E = 2 s_i f_i$ (Metropolis et al. 1953: accepted with probability
    $\min(1, e^{-\beta\Delta E})$). An accepted flip of spin l with old value $s_l$ updates
    $f_i \mathrel{-}= 2 s_l M_{il}$ for all i (O(N): $M_{il}$ depends on neither $s_l$ nor
    $s_i$) and $M_{ij} \mathrel{-}= 2 s_l T_{ijl}$ for all i, j (O(N^2), the contiguous slab
    $T_{l\cdot\cdot}$); a rejection costs O(1). A sweep costs O(N) plus O(N^2) per accepted
    flip, against O(N C(N-1, 2)) = O(N^3) for the generic `sampling.metropolis` with
    `PSpin.site_energies`. The energy is recomputed from the fields after each step,
    $E = -\tfrac13 s\cdot(f + 2h)$; f and M accumulate float rounding of order
    $\sqrt{\text{flips}}\,\epsilon\,|J|$ in the model's dtype (`init` recomputes them).

    Memory: the state holds the dense tensor, $N^3$ x itemsize per chain (8 MiB for N = 128,
    1 GiB for N = 645 in float32), built once by `init` (one scatter of the packed couplings);
    N with more than 2 GiB is refused with a `ConfigError`. Under `vmap` (disorder samples,
    replicas, `sampling.parallel_tempering`) every chain's state carries its own copy. The
    tensor lives in the state rather than being rebuilt from the model by every `step`
    because building it costs O(N^3), as much as a sweep at full acceptance; `step` reads only
    the fields `model.h` of the model it is given.

    `backend="native"` runs `sweeps_per_step` sweeps as one C++ XLA FFI call
    (`diffphys/_native/pspin_ffi.cc`, compiled by `pip install -e .`), and under `vmap` one
    call for all chains (OpenMP over the chains; tensor, fields and beta per chain or
    shared). Its random numbers are those of the native SK kernel on a stream of its own:
    Philox4x32-10 (Salmon et al., SC'11) keyed by the step key with counter (spin, absolute
    sweep index `state.sweep`); spin i flips iff $\beta\Delta E \le 0$ or
    $(r + \tfrac12)\,2^{-32} < e^{-\beta\Delta E}$ for its 32-bit word r. So `k` sweeps and `k`
    more with one key equal `2k` sweeps with it, bit for bit. The `"jax"` backend runs the
    same incremental algorithm (a `lax.fori_loop` over the spins, `lax.cond` on acceptance
    for the O(N^2) update; the acceptance test $\beta\Delta E < \xi$, $\xi \sim$ Exp(1)) with
    JAX's random stream: the same chain law, not the same chain.

    **Arguments:**

    - `beta`: default inverse temperature (> 0); `step(..., beta=b)` overrides it per step.
    - `backend`: `"native"` (the C++ kernel; a `ConfigError` says why where it was not
      built), `"jax"` (the pure-JAX reference, any machine), or `"auto"` (native if built,
      else jax).
    - `sweeps_per_step`: sweeps per `step` (one kernel call on the native backend; on the jax
      backend the sweeps of a step use the keys `fold_in(key, k)` when it is > 1).
    - `threads`: OpenMP threads of the native kernel over the chains of a vmapped call (0: all).

    **Returns:** a `SamplingAlgorithm` whose `init(x, model)` takes spins (N,) and a p = 3
    `PSpin` model, with state `PSpinState` and step info `DiscreteInfo(acceptance_rate,
    energy)` (the acceptance rate averaged over the sweeps of the step).
    """
    check_positive("beta", beta)
    if backend not in PSPIN_BACKENDS:
        raise ConfigError(f"backend must be one of {PSPIN_BACKENDS}, got {backend!r}.")
    if (
        isinstance(sweeps_per_step, bool)
        or int(sweeps_per_step) != sweeps_per_step
        or sweeps_per_step < 1
    ):
        raise ConfigError(f"sweeps_per_step must be a positive integer, got {sweeps_per_step!r}.")
    if isinstance(threads, bool) or int(threads) != threads or threads < 0:
        raise ConfigError(f"threads must be a non-negative integer, got {threads!r}.")
    if backend == "auto":
        backend = "native" if _native.available() else "jax"
    if backend == "native" and not _native.available():
        raise ConfigError(_native.reason() + " Pass backend='jax' (or 'auto') to use it.")
    n_sweeps = int(sweeps_per_step)

    def init(x, model) -> PSpinState:
        _check_model(model)
        model.check_state(x)
        dtype = model.couplings.dtype
        _check_size(model.n, dtype)
        if backend == "native":
            if dtype not in (jnp.float32, jnp.float64):
                raise ConfigError(
                    f"the native p-spin kernel needs float32 or float64 couplings, got {dtype}; "
                    "draw the model with dtype=jnp.float32."
                )
            if model.n * n_sweeps >= 2**31:
                raise ConfigError(
                    f"N * sweeps_per_step = {model.n * n_sweeps} overflows the kernel's int32 "
                    "flip counter; use fewer sweeps per step."
                )
        x = jnp.asarray(x, dtype=model.dtype)
        T = pspin_tensor(model)
        s = x.astype(dtype)
        M = T @ s
        f = 0.5 * (M @ s) + model.h
        return PSpinState(x, f, _energy_from_field(x, f, model.h), M, jnp.uint32(0), T)

    def _check(state: PSpinState, model) -> None:
        _check_model(model)
        if state.tensor.shape[-1] != model.n:
            raise ConfigError(
                f"this PSpinState is for N = {state.tensor.shape[-1]} spins but the model has "
                f"N = {model.n}; call init with this model."
            )

    def step(key, state: PSpinState, model, beta=beta):
        _check(state, model)
        check_positive("beta", beta)
        if backend == "native":
            return _native_step(key, state, model, beta)
        return repeat_sweeps(lambda k, st: _jax_step(k, st, model, beta), key, state, n_sweeps)

    def _native_step(key, state: PSpinState, model, beta):
        dtype = state.field.dtype
        name = "diffphys_pspin_sweep_f32" if dtype == jnp.float32 else "diffphys_pspin_sweep_f64"
        out_types = (
            jax.ShapeDtypeStruct(state.x.shape, jnp.int8),
            jax.ShapeDtypeStruct(state.M.shape, dtype),
            jax.ShapeDtypeStruct(state.field.shape, dtype),
            jax.ShapeDtypeStruct((), jnp.int32),
        )
        fn = jax.ffi.ffi_call(name, out_types, vmap_method="expand_dims")
        x, M, f, accepted = fn(
            state.tensor,
            state.x.astype(jnp.int8),
            state.M,
            state.field,
            jax.random.bits(key, (2,), jnp.uint32),
            state.sweep,
            jnp.asarray(beta, dtype),
            sweeps=np.int64(n_sweeps),
            threads=np.int64(threads),
        )
        h = model.h.astype(dtype)
        energy = _energy_from_field(x, f, h)
        rate = accepted.astype(dtype) / (model.n * n_sweeps)
        new = PSpinState(
            x.astype(state.x.dtype), f, energy, M, state.sweep + jnp.uint32(n_sweeps), state.tensor
        )
        return new, DiscreteInfo(rate, energy)

    def _jax_step(key, state: PSpinState, model, beta):
        n = model.n
        dtype = state.field.dtype
        beta = jnp.asarray(beta, dtype)
        xi = jax.random.exponential(key, (n,), dtype=dtype)
        T = state.tensor

        def update(l, carry):
            x, f, M, accepted = carry
            sl = jax.lax.dynamic_index_in_dim(x, l, keepdims=False)
            d = 2.0 * sl.astype(dtype)
            acc = beta * (d * jax.lax.dynamic_index_in_dim(f, l, keepdims=False)) < xi[l]

            def flip(xfm):
                x, f, M = xfm
                row = jax.lax.dynamic_index_in_dim(M, l, keepdims=False)  # M_l. = M_.l
                slab = jax.lax.dynamic_index_in_dim(T, l, keepdims=False)  # T_l.. = T_..l
                return jax.lax.dynamic_update_index_in_dim(x, -sl, l, 0), f - d * row, M - d * slab

            x, f, M = jax.lax.cond(acc, flip, lambda xfm: xfm, (x, f, M))
            return x, f, M, accepted + acc.astype(jnp.int32)

        x, f, M, accepted = jax.lax.fori_loop(
            0, n, update, (state.x, state.field, state.M, jnp.int32(0))
        )
        energy = _energy_from_field(x, f, model.h.astype(dtype))
        new = PSpinState(x, f, energy, M, state.sweep + jnp.uint32(1), T)
        return new, DiscreteInfo(accepted.astype(dtype) / n, energy)

    return SamplingAlgorithm(init, step)


__all__ = ["MAX_TENSOR_BYTES", "PSpinState", "pspin_metropolis", "pspin_tensor"]
