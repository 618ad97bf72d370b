r"""The Pallas (GPU) kernel of `fused_checkerboard(..., backend="pallas")`.

One `pl.pallas_call` per colour update: the grid tiles the colour-c plane along the first
lattice axis (blocks of `tile` rows, all of the other axes); each program reads its block of
colour-c spins and the neighbouring colour-(1-c) spins from a copy of the other plane padded
periodically by one site on every side (so the halo rows and the wrap-around are plain
offset loads), and writes the updated block in place. Its random bits are made inside the
kernel; nothing but the spins and the padded plane touch memory.

**Layout** as in `_ising_fused`: `spins[c]` of shape `(R, m)` holds the colour-c sites, row r
(the first d-1 coordinates, flattened), pair j, at column 2j + ((parity(r) + c) mod 2). The
plane is viewed as `(n_0, ..., n_{d-2}, m)`; its column neighbours are the other colour at
j and j - 1 (offset 0) or j and j + 1 (offset 1).

**Random bits.** Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11) in 32-bit integer
arithmetic only (the 32 x 32 -> 64 bit products from 16-bit halves, so the same code runs
in interpret mode on a CPU without 64-bit types and on a GPU), keyed by two 32-bit words of
the step key, with counter (r * m_q + j mod m_q, colour c, absolute sweep index t, 2). The
plane's columns are split into `q` = 4 (or 2, or 1, the largest that divides m) slabs of
m_q = m / q pairs; output word w of a counter goes to slab w. The bits of a site depend only
on (key, t, site), so `k` sweeps followed by `k` more equal `2k` sweeps bit for bit, and
neither the tile size nor `sweeps_per_step` changes the chain. (Stream 2: not the native
kernel's streams 0/1; the two backends draw different numbers.)

**Acceptance** (Metropolis et al. 1953): the site flips iff $u < e^{-\beta \Delta E}\,2^{24}$
with $u$ the top 24 bits of its word, $\Delta E = 2 s_x (h_x + \sum_y J_{xy} s_y)$, the
exponential in float32. The acceptance probability is therefore
$\lceil 2^{24} \mathrm{fl}(e^{-\beta\Delta E}) \rceil / 2^{24}$: exact to $2^{-24}$ plus
float32's rounding of the exponential (relative ~1e-7), where the native kernel's is exact
to $2^{-64}$. Below any statistical resolution reachable here, but not bit-exact detailed
balance: the docstring of `fused_checkerboard` says so.

**GPU (Triton) constraints** (not validated on a GPU in this repository yet: the tests run
the kernel in Pallas interpret mode on the CPU): every loaded block must have a power-of-two
number of elements, i.e. `tile * n_1 * ... * n_{d-2} * m_q` a power of two.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from .._errors import ShapeError

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
STREAM = 2  # the counter's last word (the native kernel uses 0 and 1)


def _mulhilo(a, b: int):
    """(hi, lo) 32-bit words of the 64-bit product of uint32 `a` and the constant `b`,
    in uint32 arithmetic only."""
    u32 = jnp.uint32
    b_lo, b_hi = u32(b & 0xFFFF), u32(b >> 16)
    a_lo, a_hi = a & u32(0xFFFF), a >> u32(16)
    ll, lh, hl, hh = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    mid = (ll >> u32(16)) + (lh & u32(0xFFFF)) + (hl & u32(0xFFFF))
    hi = hh + (lh >> u32(16)) + (hl >> u32(16)) + (mid >> u32(16))
    return hi, a * u32(b)


def philox4x32(c0, c1, c2, c3, k0, k1, rounds: int = 10):
    """Philox4x32-`rounds` (Salmon et al. 2011) of uint32 counter words (any broadcastable
    shapes) and key words; returns the four output words. Random123's known-answer vectors
    are checked in `tests/test_ising_pallas.py`."""
    u32 = jnp.uint32
    c = jnp.broadcast_arrays(*(jnp.asarray(v, u32) for v in (c0, c1, c2, c3)))
    k = (jnp.asarray(k0, u32), jnp.asarray(k1, u32))

    def round_(_, carry):  # a loop, not unrolled: 10x less program to lower and compile
        (c0, c1, c2, c3), (k0, k1) = carry
        hi0, lo0 = _mulhilo(c0, PHILOX_M0)
        hi1, lo1 = _mulhilo(c2, PHILOX_M1)
        c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        return c, (k0 + u32(PHILOX_W0), k1 + u32(PHILOX_W1))

    return lax.fori_loop(0, rounds, round_, (tuple(c), k))[0]


def n_slabs(m: int) -> int:
    return next(q for q in (4, 2, 1) if m % q == 0)


def default_tile(lattice: tuple[int, ...], interpret: bool) -> int:
    """Rows of axis 0 per program: the whole axis in interpret mode (fewest grid steps on a
    CPU), else the largest power-of-two divisor of n_0 keeping a block <= 2^14 sites."""
    n0 = lattice[0]
    if interpret:
        return n0
    per_row = math.prod(lattice[1:-1]) * (lattice[-1] // 2)
    t = 1
    while n0 % (2 * t) == 0 and 2 * t * per_row <= 2**14:
        t *= 2
    return t


def check_tile(lattice: tuple[int, ...], tile: int, interpret: bool) -> None:
    n0 = lattice[0]
    if tile < 1 or n0 % tile:
        raise ShapeError(
            f"tile must be a positive divisor of the first lattice size {n0}, got {tile}."
        )
    size = tile * math.prod(lattice[1:-1]) * (lattice[-1] // 2) // n_slabs(lattice[-1] // 2)
    if not interpret and size & (size - 1):
        raise ShapeError(
            f"the Pallas GPU kernel needs blocks of a power-of-two number of sites, got "
            f"tile * n_1..n_(d-2) * m/q = {size} for lattice {lattice}; use power-of-two "
            "lattice sizes (or backend='jax')."
        )


def colour_update(spins, scal, params, J=None, h=None, *, lattice, tile: int, interpret: bool):
    """One Metropolis colour update of the colour layout `spins` (2, R, m) int8.

    `scal` = uint32 [k0, k1, sweep, colour c] (c traced: one kernel for both colours);
    `params` = float32 [beta, J, h, 0] (uniform; J and h ignored when the per-bond `J`
    (2d, R, m) and `h` (R, m) of colour c are given).
    Returns the updated colour-c plane, shape (R, m)."""
    d = len(lattice)
    rows, m = tuple(lattice[:-1]), lattice[-1] // 2
    q = n_slabs(m)
    mq = m // q
    colour = scal[3].astype(jnp.int32)
    plane = lax.dynamic_index_in_dim(spins, colour, keepdims=False).reshape(*rows, m)
    other = lax.dynamic_index_in_dim(spins, 1 - colour, keepdims=False)
    ext = jnp.pad(other.reshape(*rows, m), 1, mode="wrap")
    bonds = J is not None
    block = (tile, *rows[1:], m)
    zeros = (0,) * d

    def tile_map(i):
        return (i, *zeros[1:])

    in_specs = [
        pl.BlockSpec((4,), lambda i: (0,)),
        pl.BlockSpec((4,), lambda i: (0,)),
        pl.BlockSpec(block, tile_map),
        pl.BlockSpec(ext.shape, lambda i: zeros),
    ]
    args = [scal, params, plane, ext]
    if bonds:
        in_specs += [
            pl.BlockSpec((2 * d, *block), lambda i: (0, i, *zeros[1:])),
            pl.BlockSpec(block, tile_map),
        ]
        args += [J.reshape(2 * d, *rows, m), h.reshape(*rows, m)]

    def kernel(scal_ref, par_ref, s_ref, ext_ref, *refs):
        o_ref = refs[-1]
        c = scal_ref[3].astype(jnp.int32)
        r0 = pl.program_id(0) * tile
        shape = (tile, *rows[1:], mq)
        ids = [lax.broadcasted_iota(jnp.int32, shape, a) for a in range(d)]
        g0 = ids[0] + r0  # global index along axis 0
        off = (g0 + sum(ids[1:-1], jnp.zeros(shape, jnp.int32)) + c) & 1
        rflat = g0
        for a in range(1, d - 1):
            rflat = rflat * rows[a] + ids[a]
        counter = (rflat * mq + ids[-1]).astype(jnp.uint32)
        words = philox4x32(
            counter, scal_ref[3], scal_ref[2], jnp.uint32(STREAM), scal_ref[0], scal_ref[1]
        )
        beta = par_ref[0]

        def nb(j0, shift_axis=None, step=0, col=0):
            """The other colour at offset `step` along row axis `shift_axis`, column + col."""
            idx = []
            for a in range(d - 1):
                start = 1 + (step if a == shift_axis else 0)
                idx.append(pl.ds(r0 + start, tile) if a == 0 else pl.ds(start, rows[a]))
            idx.append(pl.ds(1 + j0 + col, mq))
            return ext_ref[tuple(idx)].astype(jnp.int32)

        def slab(w, carry):  # a loop over the q column slabs, slab w takes Philox word w
            j0 = w * mq
            sl = (*(slice(None),) * (d - 1), pl.ds(j0, mq))
            s = s_ref[sl].astype(jnp.int32)
            same, left, right = nb(j0), nb(j0, col=-1), nb(j0, col=1)
            plus = jnp.where(off == 1, right, same)  # neighbour at column + 1
            minus = jnp.where(off == 1, same, left)  # neighbour at column - 1
            nbrs = []
            for a in range(d - 1):
                nbrs += [nb(j0, a, 1), nb(j0, a, -1)]
            nbrs += [plus, minus]  # slots (+e_0, -e_0, ..., +e_{d-1}, -e_{d-1})
            if bonds:
                j_ref, h_ref = refs[0], refs[1]
                f = h_ref[sl]
                for k, y in enumerate(nbrs):
                    f = f + j_ref[(k, *sl)] * y.astype(jnp.float32)
            else:
                total = sum(nbrs[1:], nbrs[0])
                f = par_ref[2] + par_ref[1] * total.astype(jnp.float32)
            x = 2.0 * beta * s.astype(jnp.float32) * f
            word = words[q - 1]
            for v in range(q - 2, -1, -1):
                word = jnp.where(w == v, words[v], word)
            u = (word >> jnp.uint32(8)).astype(jnp.float32)
            flip = u < jnp.exp(-x) * jnp.float32(2.0**24)
            o_ref[sl] = jnp.where(flip, -s, s).astype(jnp.int8)
            return carry

        lax.fori_loop(0, q, slab, 0)

    out = pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct(plane.shape, jnp.int8),
        grid=(rows[0] // tile,),
        in_specs=in_specs,
        out_specs=pl.BlockSpec(block, tile_map),
        input_output_aliases={2: 0},
        interpret=interpret,
        name=f"diffphys_ising{d}d_colour_update",
    )(*args)
    return out.reshape(math.prod(rows), m)


def sweeps(spins, kbits, sweep0, params, extra, *, lattice, n_sweeps, tile, interpret):
    """`n_sweeps` full sweeps (colour 0 then 1) from absolute sweep index `sweep0`, a
    fixed-trip `fori_loop`; returns (spins, acceptance rate averaged over the sweeps)."""
    J, h = extra if extra else (None, None)
    params = jnp.zeros(4, jnp.float32).at[: params.shape[0]].set(params)  # [beta, J, h, 0]

    def body(i, carry):  # i = 2 * sweep + colour
        s, flips = carry
        c = (i % 2).astype(jnp.uint32)
        scal = jnp.stack([kbits[0], kbits[1], sweep0 + (i // 2).astype(jnp.uint32), c])
        kw = {}
        if J is not None:
            kw = {"J": J[c.astype(jnp.int32)], "h": h[c.astype(jnp.int32)]}
        new = colour_update(s, scal, params, **kw, lattice=lattice, tile=tile, interpret=interpret)
        old = lax.dynamic_index_in_dim(s, c.astype(jnp.int32), keepdims=False)
        flips = flips + jnp.mean((new != old).astype(jnp.float32))
        return lax.dynamic_update_index_in_dim(s, new, c.astype(jnp.int32), 0), flips

    spins, flips = lax.fori_loop(0, 2 * n_sweeps, body, (spins, jnp.float32(0)))
    return spins, flips / (2 * n_sweeps)
