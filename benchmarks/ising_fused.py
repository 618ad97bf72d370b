"""Fused C++ checkerboard Metropolis (`models.fused_checkerboard`) against a serial numba loop
and the bit-packed pure-JAX kernel, side by side in one process.

Units: spin-flip attempts per nanosecond, per wall second and per process-CPU second (the
latter robust to other jobs on a shared machine), best of `--repeats` round-robin runs of
already compiled chains; compile time apart. beta = 0.44 (near T_c).

    python benchmarks/ising_fused.py
    python benchmarks/ising_fused.py --sizes 256 1024 --repeats 2

Ensembles of small lattices (`--ensembles`, e.g. 64 x 12^3) also run the multispin kernel
(`models.multispin_checkerboard`: 64 samples per machine word, one kernel call for the
ensemble); its column is empty for single lattices.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

import jax
import numpy as np

from diffphys import _native, sampling
from diffphys.models import (
    Ising,
    fused_checkerboard,
    ising_checkerboard_metropolis,
    multispin_checkerboard,
)

BETA = 0.44


def numba_sweeps():
    """A serial numba checkerboard Metropolis loop on an int8 lattice (any dimension 2/3):
    the peer the issue's targets are stated against. One float64 uniform per site."""
    import numba

    @numba.njit(cache=False)
    def sweeps2(s, n, beta, seed):
        np.random.seed(seed)  # noqa: NPY002 (numba supports the legacy API only)
        L0, L1 = s.shape
        p = np.exp(-2.0 * beta * np.arange(-4, 5))
        for _ in range(n):
            for c in range(2):
                for i in range(L0):
                    for j in range((i + c) % 2, L1, 2):
                        nb = s[(i + 1) % L0, j] + s[i - 1, j] + s[i, (j + 1) % L1] + s[i, j - 1]
                        k = s[i, j] * nb
                        if k <= 0 or np.random.random() < p[k + 4]:  # noqa: NPY002
                            s[i, j] = -s[i, j]
        return s

    @numba.njit(cache=False)
    def sweeps3(s, n, beta, seed):
        np.random.seed(seed)  # noqa: NPY002 (numba supports the legacy API only)
        L0, L1, L2 = s.shape
        p = np.exp(-2.0 * beta * np.arange(-6, 7))
        for _ in range(n):
            for c in range(2):
                for i in range(L0):
                    for j in range(L1):
                        for k in range((i + j + c) % 2, L2, 2):
                            nb = (
                                s[(i + 1) % L0, j, k]
                                + s[i - 1, j, k]
                                + s[i, (j + 1) % L1, k]
                                + s[i, j - 1, k]
                                + s[i, j, (k + 1) % L2]
                                + s[i, j, k - 1]
                            )
                            e = s[i, j, k] * nb
                            if e <= 0 or np.random.random() < p[e + 6]:  # noqa: NPY002
                                s[i, j, k] = -s[i, j, k]
        return s

    return sweeps2, sweeps3


def _n_sweeps(flips_per_sweep: int, budget: float) -> int:
    return max(1, int(budget / flips_per_sweep))


def prepare_numba(lattice, batch, budget):
    sweeps2, sweeps3 = numba_sweeps()
    fn = sweeps2 if len(lattice) == 2 else sweeps3
    rng = np.random.default_rng(0)
    xs = [rng.choice(np.array([-1, 1], np.int8), size=lattice) for _ in range(batch)]
    n = _n_sweeps(batch * int(np.prod(lattice)), budget)
    t = time.perf_counter()
    fn(xs[0].copy(), 1, BETA, 0)
    compile_s = time.perf_counter() - t

    def run():
        for b, x in enumerate(xs):
            fn(x, n, BETA, b)

    return run, n * batch * int(np.prod(lattice)), compile_s


def prepare_jax(alg, lattice, batch, budget, steps_per_sweep=1):
    model = Ising(lattice)
    n = _n_sweeps(batch * int(np.prod(lattice)), budget)
    n_steps = max(1, n // steps_per_sweep)

    def chain(k, x):
        state = alg.init(x, model)
        state, _ = sampling.run(k, alg, state, model, n_steps)
        return state.energy

    k_init = jax.random.key(1)
    if batch > 1:
        xs = jax.vmap(lambda k: model.random_state(key=k))(jax.random.split(k_init, batch))
        keys = jax.random.split(jax.random.key(0), batch)
        fn = jax.jit(jax.vmap(chain))
    else:
        xs, keys, fn = model.random_state(key=k_init), jax.random.key(0), jax.jit(chain)
    t = time.perf_counter()
    compiled = fn.lower(keys, xs).compile()
    compile_s = time.perf_counter() - t
    flips = n_steps * steps_per_sweep * batch * int(np.prod(lattice))
    return lambda: jax.block_until_ready(compiled(keys, xs)), flips, compile_s


def prepare_multispin(alg, lattice, batch, budget, steps_per_sweep):
    """The ensemble as one multispin state (no vmap): `batch` samples of `lattice`."""
    model = Ising(lattice)
    n_steps = max(1, _n_sweeps(batch * int(np.prod(lattice)), budget) // steps_per_sweep)

    def chain(k, xs):
        state = alg.init(xs, model)
        state, _ = sampling.run(k, alg, state, model, n_steps)
        return state.energy

    xs = jax.vmap(lambda k: model.random_state(key=k))(jax.random.split(jax.random.key(1), batch))
    key = jax.random.key(0)
    t = time.perf_counter()
    compiled = jax.jit(chain).lower(key, xs).compile()
    compile_s = time.perf_counter() - t
    flips = n_steps * steps_per_sweep * batch * int(np.prod(lattice))
    return lambda: jax.block_until_ready(compiled(key, xs)), flips, compile_s


def measure(runners: dict, repeats: int) -> dict:
    best = {name: (float("inf"), float("inf")) for name in runners}
    for run, _, _ in runners.values():
        run()
    for _ in range(repeats):
        for name, (run, _, _) in runners.items():
            w, c = time.perf_counter(), time.process_time()
            run()
            w, c = time.perf_counter() - w, time.process_time() - c
            best[name] = (min(best[name][0], w), min(best[name][1], c))
    return {n: (f / best[n][0] / 1e9, f / best[n][1] / 1e9) for n, (_, f, _) in runners.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024, 2048])
    p.add_argument("--sizes-3d", type=int, nargs="*", default=[64, 128])
    p.add_argument("--ensemble", type=int, default=64, help="samples per ensemble (0: skip)")
    p.add_argument(
        "--ensembles",
        nargs="*",
        default=["12,12,12", "16,16,16", "32,32"],
        help="lattices of the small-system ensembles (comma-separated sizes)",
    )
    p.add_argument("--budget", type=float, default=2e8, help="flip attempts per timed run")
    p.add_argument("--slow-budget", type=float, default=2e7, help="... for numba and JAX")
    p.add_argument("--sweeps-per-step", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if not _native.available():
        raise SystemExit(_native.reason())

    cases = [((L, L), 1) for L in args.sizes] + [((L, L, L), 1) for L in args.sizes_3d]
    if args.ensemble:
        cases += [(tuple(int(n) for n in e.split(",")), args.ensemble) for e in args.ensembles]
    k = args.sweeps_per_step
    print(
        f"# Ising checkerboard Metropolis, beta = {BETA}: flip attempts per ns\n\n"
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, jax {jax.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"{k} sweeps per kernel call\n"
    )
    header = (
        "| lattice | numba (wall / CPU) | bit-packed JAX (wall / CPU) | fused 1 thread "
        "(wall / CPU) | fused all threads (wall / CPU) | fused 1 thread/numba per CPU-s | "
        "fused all threads/numba per CPU-s | "
        "fused/bit-packed per CPU-s | multispin 1 thread (wall / CPU) | multispin/numba "
        "per CPU-s | multispin/fused per CPU-s | compile s (fused / multispin) | load |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for lattice, batch in cases:
        label = "x".join(map(str, lattice))
        label = f"{batch} x {label}" if batch > 1 else label
        runners = {
            "numba": prepare_numba(lattice, batch, args.slow_budget),
            "fused1": prepare_jax(
                fused_checkerboard(BETA, sweeps_per_step=k, backend="native", threads=1),
                lattice,
                batch,
                args.budget,
                k,
            ),
            "fused": prepare_jax(
                fused_checkerboard(BETA, sweeps_per_step=k, backend="native"),
                lattice,
                batch,
                args.budget,
                k,
            ),
        }
        if len(lattice) == 2 or batch > 1 or lattice[0] <= 64:
            runners["packed"] = prepare_jax(
                ising_checkerboard_metropolis(BETA), lattice, batch, args.slow_budget
            )
        if batch > 1:
            runners["multispin"] = prepare_multispin(
                multispin_checkerboard(BETA, sweeps_per_step=k, backend="native"),
                lattice,
                batch,
                args.budget,
                k,
            )
        r = measure(runners, args.repeats)
        nan = (float("nan"), float("nan"))
        pk, ms = r.get("packed", nan), r.get("multispin", nan)
        ms_compile = runners["multispin"][2] if "multispin" in runners else float("nan")
        print(
            f"| {label} | {r['numba'][0]:.3f} / {r['numba'][1]:.3f} | {pk[0]:.3f} / {pk[1]:.3f} "
            f"| {r['fused1'][0]:.2f} / {r['fused1'][1]:.2f} "
            f"| {r['fused'][0]:.2f} / {r['fused'][1]:.2f} "
            f"| {r['fused1'][1] / r['numba'][1]:.1f}x "
            f"| {r['fused'][1] / r['numba'][1]:.1f}x | {r['fused'][1] / pk[1]:.1f}x "
            f"| {ms[0]:.2f} / {ms[1]:.2f} | {ms[1] / r['numba'][1]:.1f}x "
            f"| {ms[1] / r['fused'][1]:.1f}x "
            f"| {runners['fused'][2]:.1f} / {ms_compile:.1f} | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
