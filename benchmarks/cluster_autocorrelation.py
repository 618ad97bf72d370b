"""Cluster updates against local Metropolis at the critical point: autocorrelation per CPU time.

At T_c of the 2D Ising model (L = 64) and of the 2D q = 3 Potts model, in one process:

- `metropolis fused xN`: the fused checkerboard Metropolis kernel
  `diffphys.models.fused_checkerboard(backend="native", threads=1, sweeps_per_step=N)` (C++
  XLA FFI), the fastest local kernel of the package (Ising only); N = 1 and N = 10 (fewer
  kernel calls and records per sweep; tau is then in units of N sweeps);
- `metropolis bit-packed`: `diffphys.models.ising_checkerboard_metropolis` with an `rbg` key
  (the baseline of the earlier sections of `results/cluster.md`; off by default, long compile);
  Potts: `metropolis` is the generic `diffphys.sampling.checkerboard`;
- `sw`: `diffphys.models.swendsen_wang`;
- `wolff`: `diffphys.models.wolff` (pure JAX, one cluster per step);
- `wolff native xK`: `diffphys.models.wolff(backend="native", steps_per_call=K, threads=1)`
  (C++ XLA FFI, K clusters per step; Ising only).

Each chain starts ordered, runs `burn` steps, then records the order parameter (|m| for Ising,
the Potts order parameter) every step. tau_int is `observables.integrated_autocorr_time`
(Sokal window, c = 5) of the recorded series, in steps, averaged over `--chains` independent
chains run together (vmap). Cost per step is process CPU time (and wall time) of an already
compiled run divided by the steps; "tau x CPU" = tau_int x CPU seconds per step is the CPU
time per independent sample, the figure of merit; the gain per CPU of a row is the
smallest tau x CPU among the local (Metropolis) rows of its model divided by its own. Compile
time is reported apart. Run:

    python benchmarks/cluster_autocorrelation.py [--L 64] [--chains 4] [--methods ...]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffphys import models, observables, sampling


def measure(alg, model, order, n_steps, burn, chains, key, beta):
    L = model.lattice

    def chain(k):
        k0, k1 = jax.random.split(k)
        s = alg.init(
            jnp.ones(L, jnp.int8) if isinstance(model, models.Ising) else jnp.zeros(L, jnp.int8),
            model,
        )
        s, _ = sampling.run(k0, alg, s, model, burn, beta=beta)
        _, tr = sampling.run(
            k1, alg, s, model, n_steps, beta=beta, every=1, record=lambda s: order(s.x)
        )
        return tr["record"]

    keys = jax.random.split(key, chains)
    f = jax.jit(jax.vmap(chain))
    t0 = time.perf_counter()
    compiled = f.lower(keys).compile()
    compile_s = time.perf_counter() - t0
    c0, w0 = time.process_time(), time.perf_counter()
    rec = jax.block_until_ready(compiled(keys))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    rec = np.asarray(rec, np.float64).T  # (time, chain)
    taus = np.asarray(observables.integrated_autocorr_time(jnp.asarray(rec, jnp.float32)))
    steps = chains * (n_steps + burn)
    return {
        "tau": float(taus.mean()),
        "tau_err": float(taus.std(ddof=1) / np.sqrt(chains)) if chains > 1 else float("nan"),
        "mean": float(rec.mean()),
        "cpu_per_step": cpu / steps,
        "wall_per_step": wall / steps,
        "compile_s": compile_s,
        "n_steps": n_steps,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--L", type=int, default=64)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--metropolis-steps", type=int, default=100_000)
    p.add_argument("--potts-metropolis-steps", type=int, default=40_000)
    p.add_argument("--sw-steps", type=int, default=4_000)
    p.add_argument("--wolff-steps", type=int, default=8_000)
    p.add_argument("--fused-steps", type=int, default=100_000)
    p.add_argument("--native-wolff-steps", type=int, default=20_000)
    p.add_argument("--skip-potts", action="store_true")
    p.add_argument(
        "--methods",
        default="metropolis fused x1,metropolis fused x10,sw,wolff,wolff native x1,"
        "wolff native x4",
        help="comma-separated Ising rows (add 'metropolis bit-packed' for the old baseline)",
    )
    a = p.parse_args()
    L = a.L
    key = jax.random.key(0, impl="rbg")
    rows = []

    ising = models.Ising((L, L))
    beta = 1.0 / ising.critical_temperature

    def absm(x):
        return jnp.abs(jnp.mean(x.astype(jnp.float32)))

    def fused(n):
        return models.fused_checkerboard(backend="native", threads=1, sweeps_per_step=n)

    def wolff_native(k):
        return models.wolff(backend="native", threads=1, steps_per_call=k)

    ising_rows = {
        "metropolis fused x1": (lambda: fused(1), a.fused_steps),
        "metropolis fused x10": (lambda: fused(10), a.fused_steps // 10),
        "metropolis bit-packed": (models.ising_checkerboard_metropolis, a.metropolis_steps),
        "sw": (models.swendsen_wang, a.sw_steps),
        "wolff": (models.wolff, a.wolff_steps),
        "wolff native x1": (lambda: wolff_native(1), a.native_wolff_steps),
        "wolff native x4": (lambda: wolff_native(4), a.native_wolff_steps // 4),
    }
    runs = []
    for name in a.methods.split(","):
        make, n = ising_rows[name.strip()]
        runs.append(("Ising", name.strip(), make(), ising, absm, n, beta))
    if not a.skip_potts:
        potts = models.Potts((L, L), q=3)
        bp = 1.0 / potts.critical_temperature
        runs += [
            (
                "Potts q=3",
                "metropolis",
                sampling.checkerboard(),
                potts,
                potts.order_parameter,
                a.potts_metropolis_steps,
                bp,
            ),
            (
                "Potts q=3",
                "sw",
                models.swendsen_wang(),
                potts,
                potts.order_parameter,
                a.sw_steps,
                bp,
            ),
            ("Potts q=3", "wolff", models.wolff(), potts, potts.order_parameter, a.wolff_steps, bp),
        ]
    for i, (mname, name, alg, model, order, n, b) in enumerate(runs):
        burn = max(n // 10, 100)
        r = measure(alg, model, order, n, burn, a.chains, jax.random.fold_in(key, i), b)
        r.update(model=mname, method=name)
        rows.append(r)
        print(r, flush=True)

    print()
    print(
        f"date {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, jax {jax.__version__}, "
        f"load average {os.getloadavg()}, L = {L}, chains = {a.chains}"
    )
    print()
    print(
        "| model | method | steps | tau_int (steps) | CPU ms/step | wall ms/step | "
        "tau x CPU (ms) | gain per CPU vs best metropolis | compile s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        local = [
            x["tau"] * x["cpu_per_step"]
            for x in rows
            if x["model"] == r["model"] and x["method"].startswith("metropolis")
        ]
        cost = r["tau"] * r["cpu_per_step"]
        gain_cpu = f"{min(local) / cost:.1f}" if local else "-"
        print(
            f"| {r['model']} | {r['method']} | {r['n_steps']} | {r['tau']:.2f} ± "
            f"{r['tau_err']:.2f} | {1e3 * r['cpu_per_step']:.4f} | "
            f"{1e3 * r['wall_per_step']:.4f} | {1e3 * cost:.4f} | {gain_cpu} | "
            f"{r['compile_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
