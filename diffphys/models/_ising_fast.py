r"""Fast, exact checkerboard Metropolis for the uniform Ising model (multispin coding).

The generic `diffphys.sampling.checkerboard` evaluates both local energies of every site and
draws one float per site. On a CPU the random numbers are the bottleneck (threefry gives about
0.07 G uint32/s, the `rbg` key about 0.26 G/s on a 2-core machine), so this kernel is built to
need as few random *bits* per spin flip as possible, while remaining exact.

**Multispin coding.** The lattice is split into its two checkerboard colours. The sites of one
colour in one row (the last lattice axis) are packed 32 to a `uint32` word with a strided
layout: lane b of word w holds the site j = b·W + w of that row (W words per row), so the
neighbour at j ± 1 is the same lane of the next/previous word, and only the wrapped word needs
a one-bit rotation. A bit is 1 for spin +1. For a site s with neighbours n_k (2d of them), the
"unsatisfied bond" words u_k = s XOR n_k (XOR all-ones for J < 0) are summed lane by lane with
bitwise ripple adders into bit planes of c = number of unsatisfied bonds. Flipping the site
changes the energy by

$$\Delta E = 4|J|\,(d - c),$$

so lanes with c >= d always flip, and lanes with c < d flip with probability
$p_c = e^{-4\beta |J| (d - c)}$ (Metropolis et al. 1953).

**Lazy exact comparison.** A lane flips iff U < p_c for a uniform U. U is revealed one binary
digit at a time, 32 lanes at once: at digit k, with r the random bit plane and P the plane of
the k-th binary digits of each lane's p_c, lanes where r = 0 and P = 1 are decided "flip",
lanes where r = 1 and P = 0 are decided "stay", and only lanes where r = P stay undecided. After
`bits` planes (default 8) a lane is undecided with probability 2^-bits, so the kernel draws
`bits` / 32 random words per site (8 bits instead of 32 for a float). Each of the rare
undecided lanes is then resolved exactly with 64 fresh random bits, compared as an integer with
the remaining binary digits of p_c: the words holding undecided lanes are compacted with a
fixed-capacity `nonzero` and their undecided lanes are resolved two at a time, in rounds and
passes whose numbers are bounded statically (no `while` loop; usually one pass of one round
suffices, and the rest is skipped behind one `lax.cond`).

The result is exactly the Metropolis rule "flip iff U < p_c" with U uniform on 64 + `bits`
binary digits and p_c = exp(-βΔE) evaluated in the model's float dtype and written with 64
binary digits (an absolute truncation below 2^-64): detailed balance holds for each colour
update, as for the generic kernel (which compares a 23-bit float uniform instead).

**Random keys.** Any key works. `jax.random.key(seed, impl="rbg")` generates bits several
times faster than the default threefry on a CPU; on the 2-core CI machine the kernel is not
purely bound by random bits (see `benchmarks/results/ising.md`), so measure both.

**Performance.** On a 2-core CPU the kernel makes 0.15-0.25 flips/ns, 2-3x a tuned NumPy
checkerboard and 4-15x the generic kernel (`benchmarks/ising_checkerboard.py`). On a GPU
everything is elementwise on packed words, rolls and one compaction per colour, with no Python
loop over sites and no `while` loop; the only predicate read on the host is that of the
`lax.cond` guarding the rare undecided lanes beyond the first pass (one per colour and sweep
on XLA:GPU's conditional thunk; `tests/test_sweep_loops.py` pins the absence of loops).

References: multispin coding of the Ising model (Jacobs & Rebbi 1981; Romero, Bisson, Fatica,
Bernaschi, Comput. Phys. Commun. 2020, arXiv 1906.06297, for the checkerboard GPU layout).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError, check_positive
from .._types import Array, Float, Int, RealScalar, UInt
from ..sampling import DiscreteInfo, SamplingAlgorithm
from ._lattice import Ising

_FULL = 0xFFFFFFFF


def _lanes(m: int) -> int:
    """Largest power of two <= 32 that divides m (the spins per word of a packed row)."""
    lanes = 1
    while lanes < 32 and m % (2 * lanes) == 0:
        lanes *= 2
    return lanes


def _row_parity(rows: tuple[int, ...]) -> np.ndarray:
    """(sum of the coordinates on all but the last axis) mod 2, shape `rows`."""
    if not rows:
        return np.zeros((), np.int32)
    return (np.indices(rows).sum(axis=0) % 2).astype(np.int32)


class IsingCheckerboardState(eqx.Module):
    """State of `ising_checkerboard_metropolis`: bit-packed spins and the exact energy.

    - `words`: uint32 array of shape `(2, *lattice[:-1], W)`; `words[c]` packs the sites of
      colour c (colour = sum of the coordinates mod 2), lane b of word w holding the site
      `j = b * W + w` of that colour along the last axis.
    - `n_unsat`: the number of unsatisfied bonds (int32, exact).
    - `energy`: $E = |J| (2 n_\\mathrm{unsat} - d N)$.
    - `x`: the ±1 `int8` configuration (unpacked on demand; use it in `record=`). For a batch
      of states use `jax.vmap(lambda s: s.x)(states)`.
    """

    words: UInt[Array, "2 *rows W"]
    n_unsat: Int[Array, ""]
    energy: Float[Array, ""]
    lattice: tuple[int, ...] = eqx.field(static=True)

    @property
    def x(self) -> Array:
        return unpack_spins(self.words, self.lattice)


def pack_spins(x: Array, lattice: tuple[int, ...]) -> Array:
    """±1 spins of shape `lattice` -> the packed `uint32` words of `IsingCheckerboardState`."""
    rows, m = lattice[:-1], lattice[-1] // 2
    lanes = _lanes(m)
    w = m // lanes
    up = (jnp.asarray(x) > 0).astype(jnp.uint32).reshape(*rows, m, 2)
    par = jnp.asarray(_row_parity(rows))[..., None]
    shifts = jnp.arange(lanes, dtype=jnp.uint32)[:, None]
    out = []
    for c in range(2):
        # the colour-c site of pair j sits at column 2j + ((parity + c) mod 2)
        sub = jnp.where((par + c) % 2 == 0, up[..., 0], up[..., 1])
        sub = sub.reshape(*rows, lanes, w)
        out.append(jnp.sum(sub << shifts, axis=-2, dtype=jnp.uint32))
    return jnp.stack(out)


def unpack_spins(words: Array, lattice: tuple[int, ...]) -> Array:
    """Inverse of `pack_spins`: packed words -> ±1 `int8` spins of shape `lattice`."""
    rows, m = lattice[:-1], lattice[-1] // 2
    lanes = _lanes(m)
    shifts = jnp.arange(lanes, dtype=jnp.uint32)[:, None]
    par = jnp.asarray(_row_parity(rows))[..., None]
    subs = [
        ((words[c][..., None, :] >> shifts) & jnp.uint32(1)).reshape(*rows, m) for c in range(2)
    ]
    even = jnp.where(par == 0, subs[0], subs[1])  # the site at column 2j
    odd = jnp.where(par == 0, subs[1], subs[0])  # the site at column 2j + 1
    up = jnp.stack([even, odd], axis=-1).reshape(lattice)
    return (2 * up.astype(jnp.int8) - 1).astype(jnp.int8)


def _shift_next(v: Array, lanes: int) -> Array:
    """Packed row -> the spin at j + 1 in every lane (periodic)."""
    first = v[..., :1]
    wrapped = (first >> 1) | ((first & jnp.uint32(1)) << (lanes - 1))
    return jnp.concatenate([v[..., 1:], wrapped], axis=-1)


def _shift_prev(v: Array, lanes: int) -> Array:
    """Packed row -> the spin at j - 1 in every lane (periodic)."""
    last = v[..., -1:]
    mask = jnp.uint32((1 << lanes) - 1)
    wrapped = ((last << 1) | (last >> (lanes - 1))) & mask
    return jnp.concatenate([wrapped, v[..., :-1]], axis=-1)


def _neighbours(other: Array, c: int, lattice: tuple[int, ...]) -> list[Array]:
    """The 2d neighbour words of the colour-c sites, all taken from the other colour."""
    rows, lanes = lattice[:-1], _lanes(lattice[-1] // 2)
    out = []
    for a in range(len(rows)):
        out.append(jnp.roll(other, 1, axis=a))
        out.append(jnp.roll(other, -1, axis=a))
    # along the last axis: the other colour's site j, and j + 1 or j - 1 by row parity
    odd = jnp.asarray((_row_parity(rows) + c) % 2 == 1)[..., None]
    out.append(other)
    out.append(jnp.where(odd, _shift_next(other, lanes), _shift_prev(other, lanes)))
    return out


def _count(planes: list[Array]) -> list[Array]:
    """Bitwise ripple-carry sum of 0/1 lanes: returns the bit planes of the count, LSB first."""
    bits: list[Array] = []
    for n, u in enumerate(planes, start=1):
        carry = u
        for i, b in enumerate(bits):
            bits[i], carry = b ^ carry, b & carry
        if n >= 1 << len(bits):  # the count may now need one more plane
            bits.append(carry)
    return bits


def _equals(bits: list[Array], value: int) -> Array:
    """Lanes whose bit-sliced count equals `value`."""
    out = None
    for i, b in enumerate(bits):
        term = b if (value >> i) & 1 else ~b
        out = term if out is None else out & term
    return out


def _fixed_point(p: Array) -> tuple[Array, Array]:
    """p in [0, 1] -> its first 64 binary digits as two uint32 words (hi, lo)."""
    p = jnp.clip(p, 0.0, 1.0)
    scaled = p * 2.0**32
    hi_f = jnp.floor(scaled)
    lo_f = jnp.floor((scaled - hi_f) * 2.0**32)
    one = p >= 1.0  # exp(-x) rounded to 1: accept with probability 1 - 2^-64
    hi = jnp.where(one, jnp.uint32(_FULL), hi_f.astype(jnp.uint32))
    lo = jnp.where(one, jnp.uint32(_FULL), lo_f.astype(jnp.uint32))
    return hi, lo


def _digit_mask(hi: Array, k: int) -> Array:
    """All-ones where binary digit k (1-based, k <= 32) of the fixed-point number is 1."""
    return jnp.uint32(0) - ((hi >> (32 - k)) & jnp.uint32(1))


@jax.custom_batching.custom_vmap
def any_left(u: Array) -> Array:
    """Whether any word is nonzero. Under `vmap` (parallel tempering, replicas, ensembles)
    the answer is taken over the whole batch and stays unbatched, so the `lax.cond`s it
    guards stay conditionals (skipped work) instead of becoming `select`s that would run the
    rare fallback passes for every member: a member with nothing left runs them as no-ops,
    as a batched `while_loop` does."""
    return jnp.any(u != 0)


@any_left.def_vmap
def _any_left_vmap(axis_size, in_batched, u):
    return jnp.any(u != 0), False


def _resolve(und, acc, classes, rest, key, capacity: int, lanes: int):
    """Decide every undecided lane exactly with 64 fresh random bits each.

    `classes[c]` marks the lanes whose acceptance probability is p_c and `rest[c] = (hi, lo)`
    the binary digits of p_c after those already compared. The words holding undecided lanes
    are compacted (up to `capacity` at a time, so the work is proportional to their number)
    in rounds r = 0, 1, ..., and the lowest undecided lanes of every compacted word are
    resolved two per pass j = 0, 1, ...; pass j of round r draws its bits from
    `fold_in(fold_in(key, r), 2j)` and `fold_in(fold_in(key, r), 2j + 1)`.

    **Fixed trip counts.** Both loops have static bounds, so the program has no `while`
    (on a GPU every `while` iteration reads its predicate on the host):

    - a word has at most `lanes` undecided lanes (`und` is masked to the lanes of a packed
      row) and a pass clears the two lowest of every compacted word, so
      `ceil(lanes / 2)` passes clear a round's words;
    - a round compacts `min(capacity, words left)` words and clears each of them, so
      `ceil(n_words / capacity)` rounds clear every word.

    A pass or round with nothing left is a no-op (no lane is set, so nothing is drawn for
    any lane and nothing is written): running the static number of them gives bit for bit
    the result of stopping as soon as nothing is left. Pass 0 of round 0 runs always; the
    rest (needed when a word has more than two undecided lanes or more than `capacity`
    words have one) sits behind one `lax.cond`, and each further pass and round behind its
    own, so the work stays proportional to the undecided lanes. A `cond` is not a loop, but
    XLA:GPU's conditional thunk reads its predicate on the host too: the common case costs
    one such read per colour (the former do-while loops cost two).
    """
    shape = und.shape
    und, acc = und.reshape(-1), acc.reshape(-1)
    classes = [m.reshape(-1) for m in classes]
    n = und.shape[0]
    n_rounds = -(-n // capacity)
    n_passes = -(-lanes // 2)

    def skip_if_done(body, carry):
        return jax.lax.cond(any_left(carry[0]), body, lambda c: c, carry)

    def lowest_lane(u, a, cls, key, j):
        lsb = u & (~u + jnp.uint32(1))
        th_hi = jnp.zeros_like(u)
        th_lo = jnp.zeros_like(u)
        for m, (hi, lo) in zip(cls, rest):
            here = (m & lsb) != 0
            th_hi = jnp.where(here, hi, th_hi)
            th_lo = jnp.where(here, lo, th_lo)
        draw = jax.random.bits(jax.random.fold_in(key, j), (2, capacity), jnp.uint32)
        less = (draw[0] < th_hi) | ((draw[0] == th_hi) & (draw[1] < th_lo))
        return u & ~lsb, a | jnp.where(less, lsb, jnp.uint32(0))

    def two_lanes(j, u, a, cls, key):
        u, a = lowest_lane(u, a, cls, key, 2 * j)
        return lowest_lane(u, a, cls, key, 2 * j + 1)

    def later_passes(u, a, cls, key):
        def one(j, ua):
            return skip_if_done(lambda ua: two_lanes(j, *ua, cls, key), ua)

        return jax.lax.fori_loop(1, n_passes, one, (u, a))  # static bounds: a scan

    def compact(und):
        mask = und != 0
        pos = jnp.where(mask, jnp.cumsum(mask, dtype=jnp.int32) - 1, capacity)
        idx = (
            jnp.full((capacity,), n, jnp.int32)
            .at[pos]
            .set(jnp.arange(n, dtype=jnp.int32), mode="drop")
        )
        u = und.at[idx].get(mode="fill", fill_value=0)
        cls = [m.at[idx].get(mode="fill", fill_value=0) for m in classes]
        return idx, u, cls

    def merge(acc, idx, a):
        return acc.at[idx].set(acc.at[idx].get(mode="fill", fill_value=0) | a, mode="drop")

    def one_round(r, und_acc):
        und, acc = und_acc
        idx, u, cls = compact(und)
        k = jax.random.fold_in(key, r)
        u, a = two_lanes(0, u, jnp.zeros_like(u), cls, k)
        _, a = later_passes(u, a, cls, k)
        return und.at[idx].set(jnp.uint32(0), mode="drop"), merge(acc, idx, a)

    # round 0, pass 0 (all that is needed unless a word has 3+ undecided lanes or more than
    # `capacity` words have one); `a` only gains bits, so merging it now and again after
    # the later passes gives the same `acc`
    idx, u, cls = compact(und)
    k0 = jax.random.fold_in(key, 0)
    u, a = two_lanes(0, u, jnp.zeros_like(u), cls, k0)
    und = und.at[idx].set(jnp.uint32(0), mode="drop")
    acc = merge(acc, idx, a)
    if n_passes > 1 or n_rounds > 1:

        def the_rest(carry):
            u, a, und, acc = carry
            _, a = later_passes(u, a, cls, k0)
            acc = merge(acc, idx, a)

            def next_round(r, und_acc):
                return skip_if_done(lambda c: one_round(r, c), und_acc)

            und, acc = jax.lax.fori_loop(1, n_rounds, next_round, (und, acc))
            return u, a, und, acc

        _, _, _, acc = jax.lax.cond(
            any_left(u) | any_left(und), the_rest, lambda c: c, (u, a, und, acc)
        )
    return acc.reshape(shape)


def _check_model(model) -> tuple[int, ...]:
    if not isinstance(model, Ising):
        raise ConfigError(
            f"ising_checkerboard_metropolis needs a diffphys.models.Ising model, got "
            f"{type(model).__name__}; use diffphys.sampling.checkerboard for other lattice models."
        )
    lattice = tuple(model.lattice)
    if any(n % 2 for n in lattice):
        raise ShapeError(
            f"a checkerboard update needs an even linear size on every axis, got lattice "
            f"{lattice}. Use an even L, or the single-site diffphys.sampling.metropolis."
        )
    try:
        J, h = np.asarray(model.J), np.asarray(model.h)
    except Exception:  # traced model (inside jit): checked eagerly wherever it is concrete
        return lattice
    if J.size and not np.all(J == J.reshape(-1)[0]):
        raise ConfigError(
            "ising_checkerboard_metropolis needs one uniform coupling J on every bond; for "
            "per-axis or per-bond couplings (random-bond, Edwards-Anderson) use the generic "
            "diffphys.sampling.checkerboard."
        )
    if np.any(h != 0):
        raise ConfigError(
            "ising_checkerboard_metropolis needs zero field h; with a field use the generic "
            "diffphys.sampling.checkerboard."
        )
    return lattice


def _unsat_planes(s, nbrs, flip_sign):
    return [s ^ n ^ flip_sign for n in nbrs]


def _count_unsat(words, lattice, flip_sign, mask) -> Array:
    """Number of unsatisfied bonds; every bond has exactly one colour-0 end."""
    planes = _unsat_planes(words[0], _neighbours(words[1], 0, lattice), flip_sign)
    total = jnp.int32(0)
    for u in planes:
        total = total + jnp.sum(jax.lax.population_count(u & mask).astype(jnp.int32))
    return total


def ising_checkerboard_metropolis(
    beta: RealScalar = 1.0, *, bits: int = 8, fallback_capacity: int | None = None
) -> SamplingAlgorithm:
    r"""Exact checkerboard Metropolis for the uniform-coupling, zero-field Ising model, fast.

    Same Markov chain law as `diffphys.sampling.checkerboard(beta)` on an `Ising` model with a
    uniform coupling J (either sign) and h = 0, on a periodic lattice of any dimension d with
    even linear sizes: one step updates every site of colour 0, then every site of colour 1,
    each flip accepted with probability min(1, exp(-β ΔE)), ΔE = 4|J|(d - c) with c the number
    of unsatisfied bonds of the site. Spins are bit-packed 32 per word (multispin coding) and
    the acceptance test reads only `bits` random bits per site, plus 64 more for the
    rare sites where those tie with the binary digits of exp(-β ΔE); the module docstring
    explains the construction and why it is exact.

    **Arguments:**

    - `beta`: default inverse temperature; `step(..., beta=b)` overrides it per step.
    - `bits`: random bit planes compared before the exact fallback (1..24). About 2^-bits of
      the sites with c < d need the fallback; 8 was fastest on a 2-core CPU.
    - `fallback_capacity`: packed words compacted per round of the fallback (default: a sixth
      of the words of one colour, at least 32). Only the speed depends on it.

    **Returns:** a `SamplingAlgorithm` whose `init(x, model)` takes ±1 spins of shape
    `model.lattice` and returns an `IsingCheckerboardState` (with `.x` and `.energy`), and whose
    `step(key, state, model, beta=...)` does one sweep and returns
    `(state, DiscreteInfo(acceptance_rate, energy))`.

    Any PRNG key works; `jax.random.key(seed, impl="rbg")` draws bits faster on a CPU.
    Raises `ShapeError` for an odd linear size and `ConfigError` for a non-uniform coupling or
    a nonzero field (use the generic `diffphys.sampling.checkerboard` for those).
    """
    check_positive("beta", beta)
    if int(bits) != bits or not 1 <= bits <= 24:
        raise ConfigError(f"bits must be an integer in 1..24, got {bits!r}.")
    bits = int(bits)
    if fallback_capacity is not None and (
        int(fallback_capacity) != fallback_capacity or fallback_capacity < 1
    ):
        raise ConfigError(
            f"fallback_capacity must be a positive integer, got {fallback_capacity!r}."
        )

    def init(x, model) -> IsingCheckerboardState:
        lattice = _check_model(model)
        model.check_state(x)
        words = pack_spins(jnp.asarray(x), lattice)
        J = model.J.reshape(-1)[0]
        flip_sign = jnp.where(J < 0, jnp.uint32(_FULL), jnp.uint32(0))
        mask = jnp.uint32((1 << _lanes(lattice[-1] // 2)) - 1)
        n_unsat = _count_unsat(words, lattice, flip_sign, mask)
        # the same checks as `_check_model`, for a model traced through `jit`
        n_unsat = eqx.error_if(
            n_unsat,
            jnp.any(model.J != J) | jnp.any(model.h != 0),
            "ising_checkerboard_metropolis needs a uniform J and h = 0; use the generic "
            "diffphys.sampling.checkerboard.",
        )
        return IsingCheckerboardState(words, n_unsat, _energy(n_unsat, J, lattice), lattice)

    def step(key, state: IsingCheckerboardState, model, beta=beta):
        lattice = state.lattice
        d = len(lattice)
        lanes = _lanes(lattice[-1] // 2)
        mask = jnp.uint32((1 << lanes) - 1)
        J = model.J.reshape(-1)[0]
        flip_sign = jnp.where(J < 0, jnp.uint32(_FULL), jnp.uint32(0))
        beta = jnp.asarray(beta, J.dtype)
        # p_c = exp(-4 beta |J| (d - c)) for c = 0 .. d-1, as 64-bit fixed point
        probs = [_fixed_point(jnp.exp(-4.0 * beta * jnp.abs(J) * (d - c))) for c in range(d)]
        rest = [
            ((hi << bits) | (lo >> (32 - bits)), lo << bits) for hi, lo in probs
        ]  # digits bits+1 .. bits+64
        n_words = math.prod(state.words.shape[1:])
        capacity = max(32, n_words // 6) if fallback_capacity is None else fallback_capacity
        capacity = min(n_words, int(capacity))

        words = state.words
        n_unsat = state.n_unsat
        n_flip = jnp.int32(0)
        for c, kc in enumerate(jax.random.split(key, 2)):
            k_planes, k_fallback = jax.random.split(kc)
            s = words[c]
            cbits = _count(_unsat_planes(s, _neighbours(words[1 - c], c, lattice), flip_sign))
            classes = [_equals(cbits, v) & mask for v in range(d)]
            und = classes[0]
            for m in classes[1:]:
                und = und | m
            acc = jnp.zeros_like(s)
            r = jax.random.bits(k_planes, (bits, *s.shape), jnp.uint32)
            for k in range(1, bits + 1):
                p_plane = classes[0] & _digit_mask(probs[0][0], k)
                for m, (hi, _) in zip(classes[1:], probs[1:]):
                    p_plane = p_plane | (m & _digit_mask(hi, k))
                acc = acc | (und & ~r[k - 1] & p_plane)
                und = und & ~(r[k - 1] ^ p_plane)
            acc = _resolve(und, acc, classes, rest, k_fallback, capacity, lanes)
            always = mask & ~_or(classes)
            flip = always | acc
            words = words.at[c].set(s ^ flip)
            # a flipped site with c unsatisfied bonds ends with 2d - c of them
            n_f = _popsum(flip)
            sum_c = sum((1 << i) * _popsum(flip & b) for i, b in enumerate(cbits))
            n_unsat = n_unsat + 2 * d * n_f - 2 * sum_c
            n_flip = n_flip + n_f
        energy = _energy(n_unsat, J, lattice)
        rate = n_flip.astype(J.dtype) / math.prod(lattice)
        return IsingCheckerboardState(words, n_unsat, energy, lattice), DiscreteInfo(rate, energy)

    return SamplingAlgorithm(init, step)


def _or(masks: list[Array]) -> Array:
    out = masks[0]
    for m in masks[1:]:
        out = out | m
    return out


def _popsum(v: Array) -> Array:
    return jnp.sum(jax.lax.population_count(v).astype(jnp.int32))


def _energy(n_unsat: Array, J: Array, lattice: tuple[int, ...]) -> Array:
    n_bonds = len(lattice) * math.prod(lattice)
    return jnp.abs(J) * (2 * n_unsat - n_bonds).astype(J.dtype)


__all__ = [
    "IsingCheckerboardState",
    "ising_checkerboard_metropolis",
    "pack_spins",
    "unpack_spins",
]
