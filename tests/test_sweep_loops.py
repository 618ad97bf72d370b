"""No host syncs in a sweep (issue 12): which `while` loops (data-dependent trip counts: on a
GPU one device-to-host sync per iteration) remain in one step of every sampler the library
offers for discrete and continuous models (SK's `sk_metropolis`: the last test).

Reference: the programs themselves. One `step` is traced to a jaxpr and every `while`
equation in it and in all its sub-programs (scan bodies, conds, nested jits, vmaps) is listed
with its source file. `fori_loop`s with static bounds trace to `scan` (a fixed trip count),
not to `while`; `cond` is not a loop. The test pins the current list, so a new data-dependent
loop fails it and a removed one asks for the list to be updated. Tracing only: nothing
compiles.
"""

import jax
import jax.numpy as jnp
import pytest
from jax._src import source_info_util

from diffphys import _native, models, sampling
from diffphys.models import (
    RBM,
    SK,
    Hopfield,
    Ising,
    NonreciprocalSK,
    Potts,
    PSpin,
    block_gibbs,
    fused_checkerboard,
    ising_checkerboard_metropolis,
    nonreciprocal_langevin,
    overlap_heat_bath,
    overlap_metropolis,
    pspin_metropolis,
    retrieve,
    sk_metropolis,
    swendsen_wang,
    wolff,
    zero_temperature,
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


def _files(fn, *args) -> list[str]:
    """Source files (with multiplicity) of the `while` loops in the program of `fn(*args)`."""
    jaxpr = jax.make_jaxpr(fn)(*args)
    return sorted(w.split(":")[0] for w in while_loops(jaxpr.jaxpr))


def _step_loops(alg, model, x) -> list[str]:
    state = alg.init(x, model)
    return _files(lambda k, s: alg.step(k, s, model), jax.random.key(0), state)


L = (8, 8)
_spins = jnp.ones(L, jnp.int8)
_ising = Ising(L)
_potts = Potts(L, q=3)
_potts_x = jnp.zeros(L, jnp.int32)
_hopfield = Hopfield(jnp.where(jax.random.bernoulli(jax.random.key(1), 0.5, (3, 16)), 1.0, -1.0))
_hx = jnp.ones(16, jnp.int8)
_rbm = RBM.sample(jax.random.key(2), 6, 4)
_nrsk = NonreciprocalSK.sample(jax.random.key(3), 8, 0.5, 0.0)
_pspin = PSpin.sample(jax.random.key(6), 8, 3)


class _Quadratic(models.AbstractModel):
    def energy(self, x):
        return 0.5 * jnp.sum(x**2)


_betas = jnp.asarray([0.3, 0.5])

# name -> (algorithm, model, initial state, files of the `while` loops left in one step)
CASES = {
    # Ising: the fused and bit-packed kernels, the generic single-site and checkerboard ones
    "fused_checkerboard(pallas)": (
        fused_checkerboard(0.4, backend="pallas", sweeps_per_step=2),
        _ising,
        _spins,
        [],
    ),
    "fused_checkerboard(jax)": (
        fused_checkerboard(0.4, backend="jax", sweeps_per_step=2),
        _ising,
        _spins,
        [],
    ),
    "ising_checkerboard_metropolis": (ising_checkerboard_metropolis(0.4), _ising, _spins, []),
    "ising_checkerboard_metropolis(bits=1, capacity=1)": (
        ising_checkerboard_metropolis(0.4, bits=1, fallback_capacity=1),
        _ising,
        _spins,
        [],
    ),
    "checkerboard(Ising)": (sampling.checkerboard(0.4), _ising, _spins, []),
    "metropolis(Ising)": (sampling.metropolis(0.4), _ising, _spins, []),
    "heat_bath(Ising)": (sampling.heat_bath(0.4), _ising, _spins, []),
    # cluster updates: label propagation to convergence is a data-dependent loop (its trip
    # count is the largest cluster's label-propagation depth); `max_rounds` makes it fixed
    "swendsen_wang(max_rounds=None)": (swendsen_wang(0.4), _ising, _spins, ["_cluster.py"]),
    "swendsen_wang(max_rounds=8)": (swendsen_wang(0.4, max_rounds=8), _ising, _spins, []),
    "wolff(max_rounds=None)": (wolff(0.4), _ising, _spins, ["_cluster.py"]),
    "wolff(max_rounds=8)": (wolff(0.4, max_rounds=8), _ising, _spins, []),
    # Potts
    "checkerboard(Potts)": (sampling.checkerboard(0.4), _potts, _potts_x, []),
    "checkerboard(Potts, heat_bath)": (
        sampling.checkerboard(0.4, rule="heat_bath"),
        _potts,
        _potts_x,
        [],
    ),
    "metropolis(Potts)": (sampling.metropolis(0.4), _potts, _potts_x, []),
    "heat_bath(Potts)": (sampling.heat_bath(0.4), _potts, _potts_x, []),
    # associative memories
    "metropolis(Hopfield)": (sampling.metropolis(0.4), _hopfield, _hx, []),
    "heat_bath(Hopfield)": (sampling.heat_bath(0.4), _hopfield, _hx, []),
    "overlap_metropolis(Hopfield)": (overlap_metropolis(0.4), _hopfield, _hx, []),
    "overlap_heat_bath(Hopfield)": (overlap_heat_bath(0.4), _hopfield, _hx, []),
    "zero_temperature(async)": (zero_temperature(mode="async"), _hopfield, _hx, []),
    "zero_temperature(sync)": (zero_temperature(mode="sync"), _hopfield, _hx, []),
    # Ising p = 3 spin glass: field-matrix sweeps (static fori_loop over spins, cond per flip)
    "pspin_metropolis(jax)": (
        pspin_metropolis(0.8, backend="jax", sweeps_per_step=2),
        _pspin,
        jnp.ones(8, jnp.int8),
        [],
    ),
    # RBM, continuous models, wrappers
    "block_gibbs(RBM, k=2)": (block_gibbs(0.8, k=2), _rbm, jnp.zeros(6), []),
    "langevin": (sampling.langevin(1.0, 0.01), _Quadratic(), jnp.zeros(5), []),
    "langevin(spherical)": (
        sampling.langevin(1.0, 0.01, spherical=True),
        _Quadratic(),
        jnp.ones(5),
        [],
    ),
    "nonreciprocal_langevin": (
        nonreciprocal_langevin(1.0, 0.02),
        _nrsk,
        _nrsk.random_state(key=jax.random.key(4)),
        [],
    ),
    "parallel_tempering(ising_checkerboard_metropolis)": (
        sampling.parallel_tempering(ising_checkerboard_metropolis(), _betas),
        _ising,
        jnp.ones((2, *L), jnp.int8),
        [],
    ),
    "parallel_tempering(swendsen_wang)": (
        sampling.parallel_tempering(swendsen_wang(), _betas),
        _ising,
        jnp.ones((2, *L), jnp.int8),
        ["_cluster.py"],
    ),
    "replicas(checkerboard(Potts))": (
        sampling.replicas(sampling.checkerboard(0.4), 3),
        _potts,
        jnp.zeros((3, *L), jnp.int32),
        [],
    ),
}
if _native.available():
    CASES["fused_checkerboard(native)"] = (
        fused_checkerboard(0.4, backend="native", sweeps_per_step=2),
        _ising,
        _spins,
        [],
    )
    CASES["pspin_metropolis(native)"] = (
        pspin_metropolis(0.8, backend="native", sweeps_per_step=2),
        _pspin,
        jnp.ones(8, jnp.int8),
        [],
    )


# traced nightly only (CI budget): variants whose loops the cases above already cover
SLOW = {
    "ising_checkerboard_metropolis(bits=1, capacity=1)",
    "parallel_tempering(ising_checkerboard_metropolis)",
    "parallel_tempering(swendsen_wang)",
    "checkerboard(Potts, heat_bath)",
    "heat_bath(Potts)",
    "heat_bath(Hopfield)",
    "overlap_heat_bath(Hopfield)",
    "zero_temperature(sync)",
}
assert SLOW <= set(CASES)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in CASES]
)
def test_while_loops_in_one_step(name):
    """Only the cluster updates run to convergence (`max_rounds=None`, the default: the
    number of label-propagation rounds depends on the clusters); every other step, and the
    cluster updates with `max_rounds` set, has fixed trip counts. The bit-packed kernel's
    exact fallback (`_ising_fast._resolve`) runs a static number of rounds and passes."""
    alg, model, x, expected = CASES[name]
    assert _step_loops(alg, model, x) == expected


def test_retrieve_loops():
    """`retrieve` stops at the fixed point of zero-temperature dynamics (a `while` loop);
    `fixed_trip=True` runs `max_sweeps` iterations (a scan) that skip after the fixed point
    and returns the same result."""
    x0 = _hx.at[:3].set(-1)
    key = jax.random.key(5)
    assert _files(lambda x: retrieve(_hopfield, x, key=key, max_sweeps=10), x0) == [
        "_memory_dynamics.py"
    ]
    assert (
        _files(lambda x: retrieve(_hopfield, x, key=key, max_sweeps=10, fixed_trip=True), x0) == []
    )
    a = retrieve(_hopfield, x0, key=key, max_sweeps=10)
    b = retrieve(_hopfield, x0, key=key, max_sweeps=10, fixed_trip=True)
    assert 1 < int(a[2]) < 10  # stopped at a fixed point after more than one sweep
    for u, v in zip(a, b):
        assert jnp.array_equal(u, v)


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
