"""No host syncs in a sweep (issue 12): which `while` loops (data-dependent trip counts: on a
GPU one device-to-host sync per iteration) remain in one step of each Ising and SK sweep kernel.

Reference: the programs themselves. One `step` is traced to a jaxpr and every `while`
equation in it and in all its sub-programs (scan bodies, conds, nested jits) is listed with
its source line. `fori_loop`s with static bounds trace to `scan` (a fixed trip count), not
to `while`. The test pins the current list, so a new data-dependent loop fails it and a
removed one asks for the list to be updated.
"""

import jax
import jax.numpy as jnp
from jax._src import source_info_util

from diffphys import _native
from diffphys.models import (
    SK,
    Ising,
    fused_checkerboard,
    ising_checkerboard_metropolis,
    sk_metropolis,
)


def _subjaxprs(eqn):
    for v in eqn.params.values():
        for item in v if isinstance(v, tuple | list) else (v,):
            if isinstance(item, jax.extend.core.ClosedJaxpr):
                yield item.jaxpr
            elif isinstance(item, jax.extend.core.Jaxpr):
                yield item


def while_loops(jaxpr) -> list[str]:
    """`file:line` of every `while` equation in `jaxpr` and its sub-jaxprs."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while":
            frame = source_info_util.user_frame(eqn.source_info.traceback)
            where = f"{frame.file_name.rsplit('/', 1)[-1]}:{frame.start_line}" if frame else "?"
            found.append(where)
        for sub in _subjaxprs(eqn):
            found += while_loops(sub)
    return found


def _loops(alg, lattice=(16, 16)):
    model = Ising(lattice)
    x = jnp.ones(lattice, jnp.int8)
    state = alg.init(x, model)
    jaxpr = jax.make_jaxpr(lambda k, s: alg.step(k, s, model))(jax.random.key(0), state)
    return while_loops(jaxpr.jaxpr)


def test_while_loops_in_one_sweep():
    """The fused kernels (native FFI call, Pallas kernel, the pure-JAX fallback of
    `fused_checkerboard`) have none; the bit-packed default kernel
    `ising_checkerboard_metropolis` keeps the two data-dependent loops of its exact
    fallback (`_ising_fast._resolve`: the compaction rounds and the per-word lane loop),
    which run only while undecided sites (about 2^-bits of them) are left."""
    assert _loops(fused_checkerboard(0.4, backend="pallas", sweeps_per_step=2)) == []
    assert _loops(fused_checkerboard(0.4, backend="jax", sweeps_per_step=2)) == []
    if _native.available():
        assert _loops(fused_checkerboard(0.4, backend="native", sweeps_per_step=2)) == []
    remaining = _loops(ising_checkerboard_metropolis(0.4))
    assert remaining and all(w.startswith("_ising_fast.py:") for w in remaining), remaining
    assert len(set(remaining)) == 2, remaining


def _sk_loops(alg, batched=False):
    model = SK.sample(jax.random.key(0), 16)
    state = alg.init(jnp.ones(16, jnp.int8), model)
    step = (
        (lambda k, s: alg.step(k, s, model))
        if not batched
        else jax.vmap(lambda k, s: alg.step(k, s, model), in_axes=(None, 0))
    )
    if batched:
        state = jax.tree.map(lambda a: jnp.stack([a, a]), state)
    return while_loops(jax.make_jaxpr(step)(jax.random.key(0), state).jaxpr)


def test_while_loops_in_one_sk_sweep():
    """The native sequential SK sweep (one FFI call for all sweeps of a step) and the vmapped
    and random-order pure-JAX sweeps have none; the unbatched pure-JAX sequential sweep keeps
    its data-dependent window loop (`_sk._sequential_sweep`, ~accepted + N/64 iterations)."""
    if _native.available():
        assert _sk_loops(sk_metropolis(backend="native", sweeps_per_step=3)) == []
        assert _sk_loops(sk_metropolis(backend="native"), batched=True) == []
    assert _sk_loops(sk_metropolis(order="random")) == []
    assert _sk_loops(sk_metropolis(), batched=True) == []
    remaining = _sk_loops(sk_metropolis())
    assert remaining and all(w.startswith("_sk.py:") for w in remaining), remaining
