"""2D Ising checkerboard Metropolis: spin-flip attempts per nanosecond, side by side.

Compares, in one process and on the same lattices (J = 1, h = 0, beta = 0.44, near T_c):

- `numpy`: the vectorised NumPy baseline of `benchmarks/_numpy_ising.py` (int8 spins, acceptance
  lookup table, one float32 uniform per site);
- `generic`: `diffphys.sampling.checkerboard` (roll-based, any lattice model);
- `thrml`: block Gibbs of the `thrml` package on the same two-colour blocks (if installed);
- `fast`: `diffphys.models.ising_checkerboard_metropolis` (bit-packed, lazy exact acceptance)
  with the default threefry key and with an `rbg` key.

Throughput is the best of `--repeats` timed runs of an already compiled chain; compile time
(`jit(...).lower(...).compile()`) is reported separately. Run:

    python benchmarks/ising_checkerboard.py [--sizes 256 512 1024 2048 4096] [--batch 1024]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _numpy_ising import NumpyCheckerboardIsing  # noqa: E402

from diffphys import sampling  # noqa: E402
from diffphys.models import Ising, ising_checkerboard_metropolis  # noqa: E402

BETA = 0.44


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _sweeps(n_sites: int, budget: float) -> int:
    """Sweeps so that one timed run makes about `budget` flip attempts (at least 2)."""
    return max(2, int(budget // n_sites))


def bench_numpy(L: int, batch: int, budget: float, repeats: int) -> float:
    rng = np.random.default_rng(0)
    shape = (batch, L, L) if batch > 1 else (L, L)
    sim = NumpyCheckerboardIsing(rng.choice(np.array([-1, 1], np.int8), shape), BETA, seed=1)
    n = _sweeps(batch * L * L, budget)
    sim.sweep()

    def go():
        for _ in range(n):
            sim.sweep()

    return n * batch * L * L / _best(go, repeats) / 1e9


def bench_diffphys(alg, L, batch, budget, repeats, impl):
    """(flips/ns, compile seconds) of `n` sweeps of `alg` inside one jitted `sampling.run`."""
    model = Ising((L, L))
    n = _sweeps(batch * L * L, budget)
    key = jax.random.key(0, impl=impl)

    def chain(k, x):
        state = alg.init(x, model)
        state, _ = sampling.run(k, alg, state, model, n)
        return state.energy

    k_init, k_run = jax.random.split(jax.random.key(1))
    if batch > 1:
        xs = jax.vmap(lambda k: model.random_state(key=k))(jax.random.split(k_init, batch))
        keys = jax.random.split(key, batch)
        fn = jax.jit(jax.vmap(chain))
    else:
        xs = model.random_state(key=k_init)
        keys = key
        fn = jax.jit(chain)
    t = time.perf_counter()
    compiled = fn.lower(keys, xs).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(keys, xs))
    dt = _best(lambda: jax.block_until_ready(compiled(keys, xs)), repeats)
    return n * batch * L * L / dt / 1e9, compile_s


def bench_thrml(L: int, batch: int, budget: float, repeats: int):
    """(flips/ns, compile seconds) of thrml's two-block Gibbs sampler, or None if unavailable."""
    try:
        from thrml import Block, SamplingSchedule, SpinNode, sample_states
        from thrml.models import IsingEBM, IsingSamplingProgram, hinton_init
    except ImportError:
        return None
    nodes = [SpinNode() for _ in range(L * L)]
    edges = []
    for i in range(L):
        for j in range(L):
            a = nodes[i * L + j]
            edges.append((a, nodes[((i + 1) % L) * L + j]))
            edges.append((a, nodes[i * L + (j + 1) % L]))
    colours = [
        Block([nodes[i * L + j] for i in range(L) for j in range(L) if (i + j) % 2 == c])
        for c in (0, 1)
    ]
    ebm = IsingEBM(nodes, edges, jnp.zeros(L * L), jnp.ones(len(edges)), jnp.asarray(BETA))
    program = IsingSamplingProgram(ebm, colours, [])
    n = _sweeps(batch * L * L, budget)
    schedule = SamplingSchedule(n_warmup=n, n_samples=1, steps_per_sample=1)

    def chain(k):
        init = hinton_init(k, ebm, colours, ())
        return sample_states(k, program, schedule, init, [], [Block(nodes)])

    keys = jax.random.split(jax.random.key(0), batch) if batch > 1 else jax.random.key(0)
    fn = jax.jit(jax.vmap(chain) if batch > 1 else chain)
    t = time.perf_counter()
    compiled = fn.lower(keys).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(keys))
    dt = _best(lambda: jax.block_until_ready(compiled(keys)), repeats)
    return n * batch * L * L / dt / 1e9, compile_s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024, 2048])
    p.add_argument("--batch", type=int, default=1024, help="lattices in the batched case (0: skip)")
    p.add_argument("--batch-L", type=int, default=64)
    p.add_argument("--budget", type=float, default=2e8, help="flip attempts per timed run (fast)")
    p.add_argument(
        "--slow-budget", type=float, default=2e7, help="flip attempts per timed run (baselines)"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--thrml-max-L", type=int, default=512, help="thrml builds nodes in Python")
    p.add_argument("--bits", type=int, default=8)
    args = p.parse_args(argv)

    cases = [(L, 1) for L in args.sizes]
    if args.batch:
        cases.append((args.batch_L, args.batch))
    fast = ising_checkerboard_metropolis(BETA, bits=args.bits)
    generic = sampling.checkerboard(BETA)

    print(
        f"# 2D Ising checkerboard Metropolis, beta = {BETA}: flip attempts per ns\n\n"
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, jax {jax.__version__}, "
        f"{jax.devices()[0].device_kind}, {os.cpu_count()} CPUs, {platform.processor()}\n"
    )
    header = (
        "| lattice | numpy | generic (rbg) | thrml | fast (threefry) | fast (rbg) "
        "| fast/numpy | fast/thrml | fast/generic | compile fast / generic / thrml (s) |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for L, batch in cases:
        label = f"{batch} x {L}^2" if batch > 1 else f"{L}^2"
        t_np = bench_numpy(L, batch, args.slow_budget, args.repeats)
        t_gen, c_gen = bench_diffphys(generic, L, batch, args.slow_budget, args.repeats, "rbg")
        thrml = None
        if L <= args.thrml_max_L:
            thrml = bench_thrml(L, batch, args.slow_budget, args.repeats)
        t_tf, _ = bench_diffphys(fast, L, batch, args.budget, args.repeats, "threefry2x32")
        t_rbg, c_fast = bench_diffphys(fast, L, batch, args.budget, args.repeats, "rbg")
        t_th, c_th = thrml if thrml else (float("nan"), float("nan"))
        print(
            f"| {label} | {t_np:.3f} | {t_gen:.3f} | {t_th:.3f} | {t_tf:.3f} | {t_rbg:.3f} "
            f"| {t_rbg / t_np:.1f}x | {t_rbg / t_th:.1f}x | {t_rbg / t_gen:.1f}x "
            f"| {c_fast:.2f} / {c_gen:.2f} / {c_th:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
