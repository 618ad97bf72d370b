r"""Sequential single-site sweeps of the dense pairwise Potts model with a local-field table.

For `PairwisePotts`, $E(s) = -\sum_i h_i(s_i) - \tfrac12\sum_{i\ne j} J_{ij}(s_i, s_j)$, the
sampler keeps the table $F_j(a) = h_j(a) + \sum_k J_{kj}(s_k, a)$ (so that
$E(s_j \to a) = \mathrm{const} - F_j(a)$): a move is decided in O(1) (Metropolis) or O(q)
(heat bath), and a change of site k from o to n updates the table with two rows of the
couplings, $F_j(a) \mathrel{+}= J_{kj}(n, a) - J_{kj}(o, a)$, O(N q). `backend="native"` runs
the sweeps as one C++ XLA FFI call (`diffphys/_native/potts_ffi.cc`).
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
from ._potts_pairwise import PairwisePotts
from ._sk import repeat_sweeps

POTTS_RULES = ("metropolis", "heat_bath")
POTTS_BACKENDS = ("jax", "native", "auto")


class PottsState(NamedTuple):
    r"""State of `potts_sequential`: states $s_i \in 0..q-1$ (N,), the local-field table
    $F_j(a) = h_j(a) + \sum_k J_{kj}(s_k, a)$ (N, q), the energy, and `sweep`, the number of
    sweeps done (`uint32`, the counter of the native kernel's random stream; None on the jax
    backend)."""

    x: Spins
    field: Float[Array, "n q"]
    energy: Float[Array, ""]
    sweep: Array | None = None


def _fields(model: PairwisePotts, x) -> Float[Array, "n q"]:
    r"""$F_j(a) = h_j(a) + \sum_k J_{kj}(s_k, a)$: rows $J_k(s_k, \cdot)$ summed over k."""
    s = x.astype(jnp.int32)
    rows = model.J[jnp.arange(model.n), :, s, :]  # (k, j, a) = J_kj(s_k, a)
    return model.h + jnp.sum(rows, axis=0)


def _energy_from_fields(x, F, h) -> Float[Array, ""]:
    r"""$E = -\tfrac12 \sum_i [F_i(s_i) + h_i(s_i)]$ (the pair sum counted once)."""
    idx = x.astype(jnp.int32)[:, None]
    own = jnp.take_along_axis(F + h, idx, axis=1)[:, 0]
    return -0.5 * jnp.sum(own)


def potts_sequential(
    beta: RealScalar = 1.0,
    *,
    rule: str = "metropolis",
    sweeps_per_step: int = 1,
    backend: str = "native",
    threads: int = 0,
) -> SamplingAlgorithm:
    r"""Sequential single-site Metropolis or heat-bath sweeps of a `PairwisePotts` model.

    One sweep visits sites 0..N-1 in order. With the local-field table
    $F_i(a) = h_i(a) + \sum_j J_{ji}(s_j, a)$ kept in the state, the energy change of setting
    $s_i = b$ is $\Delta E = F_i(s_i) - F_i(b)$, and

    - `rule="metropolis"` (Metropolis et al. 1953) proposes b uniformly among the q - 1 other
      states and accepts with probability $\min(1, e^{-\beta \Delta E})$;
    - `rule="heat_bath"` (Glauber 1963; Geman & Geman 1984) draws $s_i$ from its conditional
      law $P(s_i = a \mid s_{\setminus i}) \propto e^{\beta F_i(a)}$.

    Each site update satisfies detailed balance, so the sweep leaves the Boltzmann law
    $e^{-\beta E}/Z$ invariant. A change of site i from o to b updates the whole table with two
    rows of the couplings, $F_j(a) \mathrel{+}= J_{ij}(b, a) - J_{ij}(o, a)$ (using
    $J_{ji}(a, b) = J_{ij}(b, a)$), O(N q); rejections cost O(1) (Metropolis) or O(q) (heat
    bath). The energy is recomputed from the table after each step,
    $E = -\frac12\sum_i [F_i(s_i) + h_i(s_i)]$; the table accumulates rounding of order
    $\sqrt{\text{changes}}\,\epsilon\,|J|$ in the model's dtype (`init` recomputes the
    table; float64 models under `jax.enable_x64` run in float64 throughout); the native kernel sums the energy and computes
    the acceptance and heat-bath probabilities in float64.

    `backend="native"` runs `sweeps_per_step` sweeps as one C++ XLA FFI call
    (`diffphys/_native/potts_ffi.cc`, compiled by `pip install -e .`), and under `vmap` one
    call for all chains (OpenMP over the chains; couplings, fields and beta per chain or
    shared). Its random numbers are counter based: Philox4x32-10 (Salmon et al., SC'11) keyed
    by the step key, with counter (site, absolute sweep index `state.sweep`), so `k` sweeps and
    `k` more with one key equal `2k` sweeps with it, bit for bit. Metropolis accepts iff
    $\beta\Delta E \le 0$ or $(r + \tfrac12)\,2^{-32} < e^{-\beta\Delta E}$ for a 32-bit word
    r, and draws the proposal as $\lfloor r'(q-1)/2^{32}\rfloor$ (uniform up to
    $(q-1)\,2^{-32}$); the heat bath inverts the conditional CDF (in float64) at a 64-bit
    uniform. The `"jax"` backend runs the same chain law (a `lax.fori_loop` over the sites,
    the same table) with JAX's random stream; it is not bit-identical to the native one.

    **Arguments:**

    - `beta`: default inverse temperature (> 0); `step(..., beta=b)` overrides it per step.
    - `rule`: `"metropolis"` or `"heat_bath"`.
    - `sweeps_per_step`: sweeps per `step` (one kernel call on the native backend; on the jax
      backend the sweeps of a step use the keys `fold_in(key, k)` when it is > 1).
    - `backend`: `"native"` (the C++ kernel; a `ConfigError` says why where it was not built),
      `"jax"`, or `"auto"` (native if built, else jax).
    - `threads`: OpenMP threads of the native kernel over the chains of a vmapped call (0: all).

    **Returns:** a `SamplingAlgorithm` whose `init(x, model)` takes integer states (N,) in
    0..q-1 and a `PairwisePotts` model, with state `PottsState` and step info
    `DiscreteInfo(acceptance_rate, energy)` (the fraction of site updates that changed the
    state, over the sweeps of the step).
    """
    check_positive("beta", beta)
    if rule not in POTTS_RULES:
        raise ConfigError(f"rule must be one of {POTTS_RULES}, got {rule!r}.")
    if backend not in POTTS_BACKENDS:
        raise ConfigError(f"backend must be one of {POTTS_BACKENDS}, got {backend!r}.")
    if (
        isinstance(sweeps_per_step, bool)
        or int(sweeps_per_step) != sweeps_per_step
        or (sweeps_per_step < 1)
    ):
        raise ConfigError(f"sweeps_per_step must be a positive integer, got {sweeps_per_step!r}.")
    if int(threads) != threads or threads < 0:
        raise ConfigError(f"threads must be a non-negative integer, got {threads!r}.")
    if backend == "auto":
        backend = "native" if _native.available() else "jax"
    if backend == "native" and not _native.available():
        raise ConfigError(_native.reason() + " Pass backend='jax' (or 'auto') to use it.")
    n_sweeps = int(sweeps_per_step)
    rule_id = POTTS_RULES.index(rule)

    def init(x, model) -> PottsState:
        if not isinstance(model, PairwisePotts):
            raise ConfigError(
                f"potts_sequential needs a PairwisePotts model, got {type(model).__name__}; "
                "use diffphys.sampling.metropolis or heat_bath for other discrete models."
            )
        model.check_state(x)
        if not jnp.issubdtype(jnp.asarray(x).dtype, jnp.integer):
            raise ConfigError(
                f"Potts states must be integers in 0..q-1, got dtype {jnp.asarray(x).dtype}; "
                "use model.random_state or x.astype(jnp.int8)."
            )
        q = model.n_states
        if not isinstance(x, jax.core.Tracer):
            xn = np.asarray(x)
            if xn.min() < 0 or xn.max() >= q:
                raise ConfigError(
                    f"Potts states must lie in 0..{q - 1} (q = {q}), got values in "
                    f"{int(xn.min())}..{int(xn.max())}."
                )
        x = jnp.asarray(x).astype(model.dtype)
        if backend == "native":
            if model.h.dtype not in (jnp.float32, jnp.float64):
                raise ConfigError(
                    f"the native Potts kernel needs float32 or float64 parameters, got "
                    f"{model.h.dtype}; build the model with dtype=jnp.float32."
                )
            if q > 127:
                raise ConfigError(
                    f"the native Potts kernel stores states as int8: q <= 127, got q = {q}."
                )
            if model.n * n_sweeps >= 2**31:
                raise ConfigError(
                    f"N * sweeps_per_step = {model.n * n_sweeps} overflows the kernel's int32 "
                    "change counter; use fewer sweeps per step."
                )
        F = _fields(model, x)
        energy = _energy_from_fields(x, F, model.h)
        if backend == "native":
            return PottsState(x, F, energy, jnp.uint32(0))
        return PottsState(x, F, energy)

    def _check(state: PottsState, model) -> None:
        if not isinstance(model, PairwisePotts):
            raise ConfigError(
                f"potts_sequential needs a PairwisePotts model, got {type(model).__name__}."
            )
        want = (model.n, model.n_states)
        if tuple(state.field.shape[-2:]) != want:
            raise ConfigError(
                f"this PottsState holds fields of shape {tuple(state.field.shape[-2:])} but the "
                f"model has (N, q) = {want}; call init with this model."
            )

    def step(key, state: PottsState, model, beta=beta):
        _check(state, model)
        check_positive("beta", beta)
        if backend == "native":
            return _native_step(key, state, model, beta)
        return repeat_sweeps(lambda k, st: _jax_step(k, st, model, beta), key, state, n_sweeps)

    def _native_step(key, state: PottsState, model, beta):
        if state.sweep is None:
            raise ConfigError(
                "this PottsState was not made by the native potts_sequential's init; call its init."
            )
        dtype = state.field.dtype
        name = "diffphys_potts_sweep_f32" if dtype == jnp.float32 else "diffphys_potts_sweep_f64"
        out_types = (
            jax.ShapeDtypeStruct(state.x.shape, jnp.int8),
            jax.ShapeDtypeStruct(state.field.shape, dtype),
            jax.ShapeDtypeStruct((), dtype),
            jax.ShapeDtypeStruct((), jnp.int32),
        )
        fn = jax.ffi.ffi_call(name, out_types, vmap_method="expand_dims")
        x, F, energy, changes = fn(
            model.J.astype(dtype),
            model.h.astype(dtype),
            state.x.astype(jnp.int8),
            state.field,
            jax.random.bits(key, (2,), jnp.uint32),
            state.sweep,
            jnp.asarray(beta, dtype),
            sweeps=np.int64(n_sweeps),
            threads=np.int64(threads),
            rule=np.int64(rule_id),
        )
        rate = changes.astype(dtype) / (model.n * n_sweeps)
        new = PottsState(x.astype(state.x.dtype), F, energy, state.sweep + jnp.uint32(n_sweeps))
        return new, DiscreteInfo(rate, energy)

    def _jax_step(key, state: PottsState, model, beta):
        n, q = model.n, model.n_states
        dtype = state.field.dtype
        beta = jnp.asarray(beta, dtype)
        k_prop, k_u = jax.random.split(key)
        u = jax.random.uniform(k_u, (n,), dtype)
        offset = jax.random.randint(k_prop, (n,), 1, q) if rule == "metropolis" else None
        J = model.J.astype(dtype)

        def update(i, carry):
            x, F, changes = carry
            o = x[i].astype(jnp.int32)
            fi = F[i]
            if rule == "metropolis":
                b = (o + offset[i]) % q
                acc = u[i] < jnp.exp(-beta * (fi[o] - fi[b]))
                b = jnp.where(acc, b, o)
            else:
                cdf = jnp.cumsum(jnp.exp(beta * (fi - jnp.max(fi))))
                b = jnp.minimum(jnp.sum(cdf <= u[i] * cdf[-1]), q - 1).astype(jnp.int32)
            changed = b != o

            def move(F):
                row = jax.lax.dynamic_index_in_dim(J, i, keepdims=False)  # (N, q, q)
                new = jax.lax.dynamic_index_in_dim(row, b, 1, keepdims=False)
                old = jax.lax.dynamic_index_in_dim(row, o, 1, keepdims=False)
                return F + (new - old)

            F = jax.lax.cond(changed, move, lambda F: F, F)
            x = x.at[i].set(b.astype(x.dtype))
            return x, F, changes + changed.astype(jnp.int32)

        x, F, changes = jax.lax.fori_loop(0, n, update, (state.x, state.field, jnp.int32(0)))
        energy = _energy_from_fields(x, F, model.h.astype(dtype))
        return PottsState(x, F, energy, state.sweep), DiscreteInfo(
            changes.astype(dtype) / n, energy
        )

    return SamplingAlgorithm(init, step)


__all__ = ["PottsState", "potts_sequential"]
