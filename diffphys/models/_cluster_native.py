r"""Native Wolff single-cluster updates of the 2D/3D Ising ferromagnet: C++ through XLA FFI.

`wolff(backend="native")` grows one cluster per update on the CPU, breadth first from a queue
with no data-dependent branch per bond (`diffphys/_native/cluster_ffi.cc`; ~16-20 ns per
cluster site at T_c, L = 64, `benchmarks/results/cluster.md`): O(cluster size) work per
update instead of the O(N)
connected-component labelling of the pure-JAX path, `steps_per_call` updates per kernel call,
OpenMP over the chains of a vmapped ensemble (one call for all of them,
`vmap_method="expand_dims"`).

**Scope.** The case where the Wolff update is exact with one bond probability: `models.Ising`
on a periodic 2D or 3D lattice (any linear sizes >= 2), one coupling $J > 0$ on every bond,
and $h = 0$. Each bond between the growing cluster and an aligned neighbour is activated with
probability $p = 1 - e^{-2\beta J}$ (Wolff, PRL 62, 361 (1989)).

**Random numbers** are Philox4x32-10 (Salmon et al., SC'11) keyed by two 32-bit words of the
step key, counter (word index within the update, absolute update index, stream): the chain
depends only on the key and the absolute update index (kept in the state), so `k` updates and
`k` more with the same key equal `2k` updates bit for bit, whatever `steps_per_call` is. The
seed site is an exactly uniform integer (Lemire's multiply-and-reject); a bond is activated
iff a 64-bit uniform word is below $\lfloor p\,2^{64} \rfloor$ ($p$ in double precision; its
low half is drawn, from a side sequence, only when the high half ties).

**Energy** is exact: the state keeps the integer bond sum $S = \sum_{\langle xy\rangle} s_x
s_y$, recomputed by the kernel at the end of each call (one O(N) pass), and $E = -J S$.
Memory per thread: a queue of N int32 and a neighbour table of 2dN int32.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _native
from .._errors import ConfigError, ShapeError
from .._types import Array, Float, Int, UInt
from ._lattice import Ising


class WolffState(eqx.Module):
    """State of the native `wolff` kernel.

    - `x`: the ±1 `int8` configuration, of shape `model.lattice`.
    - `step`: Wolff updates done so far (`uint32`), the counter of the random stream.
    - `bond_sum`: $\\sum_{\\langle xy \\rangle} s_x s_y$ over all bonds (`int32`).
    - `energy`: $-J$ `bond_sum` (float32).
    """

    x: Int[Array, "*lattice"]  # noqa: F821
    step: UInt[Array, ""]
    bond_sum: Int[Array, ""]
    energy: Float[Array, ""]


def unsupported(model) -> str | None:
    """Why the native Wolff kernel cannot run `model` (one line), or None if it can. A model
    whose couplings are traced (inside jit) is accepted here and checked at run time."""
    if not isinstance(model, Ising):
        return (
            f"the native Wolff kernel needs a diffphys.models.Ising model, got "
            f"{type(model).__name__}; use backend='jax' (Ising and Potts)."
        )
    if len(model.lattice) not in (2, 3):
        return (
            f"the native Wolff kernel supports 2D and 3D lattices, got {model.lattice}; use "
            "backend='jax' in other dimensions."
        )
    try:
        J, h = np.asarray(model.J), np.asarray(model.h)
    except Exception:  # traced: checked in `step`
        return None
    if np.any(h != 0):
        return (
            "the native Wolff kernel needs zero field h (a field breaks the cluster symmetry); "
            "use fused_checkerboard or sampling.checkerboard with a field."
        )
    if not np.all(J == J.reshape(-1)[0]):
        return (
            "the native Wolff kernel needs one coupling J on every bond; use backend='jax' "
            "for per-axis or per-bond couplings."
        )
    if not J.reshape(-1)[0] > 0:
        return (
            f"the native Wolff kernel needs a ferromagnetic coupling J > 0, got "
            f"{J.reshape(-1)[0]}; use backend='jax' for J < 0."
        )
    return None


def check_model(model) -> None:
    why = unsupported(model)
    if why is not None:
        err = ShapeError if isinstance(model, Ising) and "2D and 3D" in why else ConfigError
        raise err(why)


def bond_sum(x: Array) -> Array:
    """$\\sum_{\\langle xy \\rangle} s_x s_y$ of a ±1 configuration on the periodic lattice."""
    s = x.astype(jnp.int32)
    return sum(jnp.sum(s * jnp.roll(s, -1, axis=a)) for a in range(s.ndim)).astype(jnp.int32)


def init(x, model) -> WolffState:
    check_model(model)
    model.check_state(x)
    x = jnp.where(jnp.asarray(x) > 0, 1, -1).astype(jnp.int8)
    b = bond_sum(x)
    J = model.J.reshape(-1)[0].astype(jnp.float32)
    return WolffState(x, jnp.uint32(0), b, -J * b.astype(jnp.float32))


_NOT_SUPPORTED = (
    "the native Wolff kernel was stepped with a model that has a field, non-uniform or "
    "non-positive couplings; use wolff(backend='jax')."
)


def step(key, state: WolffState, model, beta, steps: int, threads: int):
    """`steps` Wolff updates; returns the new state, the mean cluster size over N and the
    energy."""
    check_model(model)
    lattice = tuple(model.lattice)
    n_sites = int(np.prod(lattice))
    J = model.J.reshape(-1)[0].astype(jnp.float32)
    beta = jnp.asarray(beta, jnp.float32)
    try:
        np.asarray(model.J)
    except Exception:  # traced couplings: checked at run time
        beta = eqx.error_if(
            beta,
            jnp.any(model.J != model.J.reshape(-1)[0]) | (J <= 0) | jnp.any(model.h != 0),
            _NOT_SUPPORTED,
        )
    kbits = jax.random.bits(key, (2,), jnp.uint32)
    n = (*lattice, 1) if len(lattice) == 2 else lattice
    out_types = (
        jax.ShapeDtypeStruct((n_sites,), jnp.int8),
        jax.ShapeDtypeStruct((), jnp.int32),
        jax.ShapeDtypeStruct((), jnp.int32),
    )
    fn = jax.ffi.ffi_call("diffphys_wolff_ising", out_types, vmap_method="expand_dims")
    x, b, sizes = fn(
        state.x.reshape(-1),
        kbits,
        state.step,
        jnp.stack([beta, J]),
        d=np.int64(len(lattice)),
        n0=np.int64(n[0]),
        n1=np.int64(n[1]),
        n2=np.int64(n[2]),
        steps=np.int64(steps),
        threads=np.int64(threads),
    )
    energy = -J * b.astype(jnp.float32)
    new = WolffState(x.reshape(lattice), state.step + jnp.uint32(steps), b, energy)
    fraction = sizes.astype(jnp.float32) / jnp.float32(steps * n_sites)
    return new, fraction, energy


def check_native(steps: int, lattice=None) -> None:
    if not _native.available():
        raise ConfigError(_native.reason() + " Pass backend='jax' (or 'auto') to use it.")
    if lattice is not None and steps * int(np.prod(lattice)) >= 2**31:
        raise ConfigError(
            f"steps_per_call x N must be below 2^31 (the summed cluster size is int32), got "
            f"{steps} x {int(np.prod(lattice))}; use fewer steps per call."
        )


__all__ = ["WolffState"]
