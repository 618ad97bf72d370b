"""2D Ising checkerboard Metropolis: spin-flip attempts per nanosecond, side by side.

Compares, in one process and on the same lattices (J = 1, h = 0, beta = 0.44, near T_c):

- `numpy`: the vectorised NumPy baseline of `benchmarks/_numpy_ising.py` (int8 spins, acceptance
  lookup table, one float32 uniform per site);
- `generic`: `diffphys.sampling.checkerboard` (roll-based, any lattice model);
- `thrml`: block Gibbs of the `thrml` package on the same two-colour blocks (if installed);
- `fast`: `diffphys.models.ising_checkerboard_metropolis` (bit-packed, lazy exact acceptance)
  with the default threefry key and with an `rbg` key.

Throughput is the best of `--repeats` timed runs of an already compiled chain, the methods
timed round-robin; ratios use the `rbg` key for the fast kernel. "CPU-time" divides flips by
the process CPU time instead of the wall clock (robust to other jobs on the machine, and
conservative for JAX, whose CPU backend uses every core while NumPy uses one). Compile time
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


def _sweeps(n_sites: int, budget: float) -> int:
    """Sweeps so that one timed run makes about `budget` flip attempts (at least 2)."""
    return max(2, int(budget // n_sites))


def prepare_numpy(L: int, batch: int, budget: float):
    """(run, flips per run, compile seconds) for the NumPy baseline."""
    rng = np.random.default_rng(0)
    shape = (batch, L, L) if batch > 1 else (L, L)
    sim = NumpyCheckerboardIsing(rng.choice(np.array([-1, 1], np.int8), shape), BETA, seed=1)
    n = _sweeps(batch * L * L, budget)

    def run():
        for _ in range(n):
            sim.sweep()

    return run, n * batch * L * L, 0.0


def prepare_diffphys(alg, L: int, batch: int, budget: float, impl: str):
    """(run, flips per run, compile seconds) of `n` sweeps of `alg` in one jitted `sampling.run`."""
    model = Ising((L, L))
    n = _sweeps(batch * L * L, budget)
    key = jax.random.key(0, impl=impl)

    def chain(k, x):
        state = alg.init(x, model)
        state, _ = sampling.run(k, alg, state, model, n)
        return state.energy

    k_init = jax.random.key(1)
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
    return lambda: jax.block_until_ready(compiled(keys, xs)), n * batch * L * L, compile_s


def prepare_thrml(L: int, batch: int, budget: float):
    """thrml's two-block Gibbs sampler on the same torus, or None if thrml is not installed."""
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
    return lambda: jax.block_until_ready(compiled(keys)), n * batch * L * L, compile_s


def measure(runners: dict, repeats: int) -> dict:
    """Best wall-clock and best process-CPU flips/ns of each runner, timed round-robin so that
    a change of machine load affects every method alike."""
    best = {name: (float("inf"), float("inf")) for name in runners}
    for run, _, _ in runners.values():
        run()  # warm up (first call, allocations)
    for _ in range(repeats):
        for name, (run, _, _) in runners.items():
            w, c = time.perf_counter(), time.process_time()
            run()
            w, c = time.perf_counter() - w, time.process_time() - c
            best[name] = (min(best[name][0], w), min(best[name][1], c))
    return {
        name: (flips / best[name][0] / 1e9, flips / best[name][1] / 1e9)
        for name, (_, flips, _) in runners.items()
    }


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
        "| fast/numpy | fast/thrml | fast/generic | CPU-time fast/numpy | compile fast / generic "
        "/ thrml (s) |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for L, batch in cases:
        label = f"{batch} x {L}^2" if batch > 1 else f"{L}^2"
        runners = {
            "numpy": prepare_numpy(L, batch, args.slow_budget),
            "generic": prepare_diffphys(generic, L, batch, args.slow_budget, "rbg"),
            "fast_tf": prepare_diffphys(fast, L, batch, args.budget, "threefry2x32"),
            "fast_rbg": prepare_diffphys(fast, L, batch, args.budget, "rbg"),
        }
        if L <= args.thrml_max_L and (th := prepare_thrml(L, batch, args.slow_budget)):
            runners["thrml"] = th
        r = measure(runners, args.repeats)
        nan = (float("nan"), float("nan"))
        t_np, t_gen, t_th = r["numpy"][0], r["generic"][0], r.get("thrml", nan)[0]
        t_fast = r["fast_rbg"][0]
        compile_th = runners["thrml"][2] if "thrml" in runners else float("nan")
        print(
            f"| {label} | {t_np:.3f} | {t_gen:.3f} | {t_th:.3f} | {r['fast_tf'][0]:.3f} "
            f"| {t_fast:.3f} | {t_fast / t_np:.1f}x | {t_fast / t_th:.1f}x "
            f"| {t_fast / t_gen:.1f}x | {r['fast_rbg'][1] / r['numpy'][1]:.1f}x "
            f"| {runners['fast_rbg'][2]:.1f} / {runners['generic'][2]:.1f} / {compile_th:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
