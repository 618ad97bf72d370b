"""Reach of the decimated-grid (Kim-Latz) DMFT integrator against the uniform grid.

Times `diffphys.theory.cugliandolo_kurchan_decimated(3, T, t_max, dt, n=n)` (window of 2n+1
times, grid halved and step doubled when full) and the uniform-grid
`diffphys.theory.cugliandolo_kurchan(3, T, t_max, dt_uniform)` for the 3-spin model at
T = 0.5 < T_d = 0.612, in the same command. Each case runs in a fresh subprocess so that its
wall time includes compilation and its peak resident memory (`ru_maxrss`) is its own; the
table also gives the size of the two-time arrays the algorithm keeps, the energy at t_max, the
asymptotic energy e_inf(T) it should approach from above (Cugliandolo & Kurchan 1993) and
C(t_max, t_max/2).

    python benchmarks/dmft_grid.py [--t-max 100 1000 10000] [--n 128 256] \
        [--uniform 100 200] [--x64]

Uniform-grid runs cost O((t/dt)^3): keep `--uniform` to t <= 200 at dt = 0.1 (~1.5 min here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

_CASE = r"""
import json, resource, sys, time
import jax
if {x64}:
    jax.config.update("jax_enable_x64", True)
import numpy as np
from diffphys import theory
t0 = time.perf_counter()
if {baseline}:
    print(json.dumps(dict(peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
    sys.exit()
if {decimated}:
    sol = theory.cugliandolo_kurchan_decimated(3, {T}, {t_max}, {dt}, n={n})
    t, e = sol.t, sol.energy
    c_half = float(sol.correlation(sol.t[-1], sol.t[-1] / 2)) if len(t) else float("nan")
    state = 2 * (2 * {n} + 1) ** 2 * (8 if {x64} else 4)  # C and chi windows
    extra = dict(t_breakdown=sol.t_breakdown, h_final=float(sol.h[-1]))
else:
    sol = theory.cugliandolo_kurchan(3, {T}, {t_max}, {dt}, dtype=np.float64 if {x64} else
                                     np.float32)
    t, e = sol.t, sol.energy
    c_half = float(theory.two_time(sol, t[-1] / 2, t[-1])[0])
    state = 2 * sol.C.size * sol.C.itemsize
    extra = dict(t_breakdown=float("inf"), h_final={dt})
wall = time.perf_counter() - t0
print(json.dumps(dict(wall=wall, t_end=float(t[-1]), energy=float(e[-1]), c_half=c_half,
      state_mib=state / 2**20,
      peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra)))
"""


def run_case(decimated, T, t_max, dt, n, x64, baseline=False):
    code = _CASE.format(
        decimated=decimated, T=T, t_max=t_max, dt=dt, n=n, x64=x64, baseline=baseline
    )
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=float, default=0.5)
    ap.add_argument("--t-max", type=float, nargs="+", default=[100.0, 1000.0, 10000.0])
    ap.add_argument("--n", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--dt", type=float, default=0.02, help="initial step of the decimated grid")
    ap.add_argument("--uniform", type=float, nargs="*", default=[100.0, 200.0])
    ap.add_argument("--dt-uniform", type=float, default=0.1)
    ap.add_argument("--x64", action="store_true", help="float64 (default float32)")
    args = ap.parse_args(argv)

    from diffphys import theory

    e_inf = theory.threshold_energy(3, args.T)
    dtype = "float64" if args.x64 else "float32"
    base = run_case(False, args.T, 1.0, 0.1, 0, args.x64, baseline=True)["peak_mib"]
    print(f"p = 3, T = {args.T}, e_inf(T) = {e_inf:.4f}, {dtype}; date {time.strftime('%F')}")
    print(f"peak RSS of the interpreter with jax and diffphys imported: {base:.0f} MiB")
    print()
    print(
        "| integrator | t_max | wall (s, incl. compile) | peak RSS (MiB) | two-time state (MiB) "
        "| reached t | final h | e(t) | e(t) - e_inf | C(t, t/2) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")

    def row(name, t_max, r):
        reached = f"{r['t_end']:.0f}"
        if r["t_breakdown"] != float("inf"):
            reached += f" (stopped at {r['t_breakdown']:.0f})"
        print(
            f"| {name} | {t_max:g} | {r['wall']:.1f} | {r['peak_mib']:.0f} | "
            f"{r['state_mib']:.2f} | {reached} | {r['h_final']:g} | {r['energy']:.4f} | "
            f"{r['energy'] - e_inf:.4f} | {r['c_half']:.4f} |",
            flush=True,
        )

    for t_max in args.uniform:
        r = run_case(False, args.T, t_max, args.dt_uniform, 0, args.x64)
        row(f"uniform, dt = {args.dt_uniform:g}", t_max, r)
    for n in args.n:
        for t_max in args.t_max:
            r = run_case(True, args.T, t_max, args.dt, n, args.x64)
            row(f"decimated, n = {n}, dt = {args.dt:g}", t_max, r)


if __name__ == "__main__":
    main()
