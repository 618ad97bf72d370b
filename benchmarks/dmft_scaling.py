"""Time and memory of the Cugliandolo-Kurchan DMFT integrator versus the number of time steps.

Compares `diffphys.theory.cugliandolo_kurchan` (JAX, one `lax.fori_loop`, six (n, n)
matrix-vector products per step) with a NumPy implementation of the same Heun scheme in the
same process, reports the first (compile + run) and second (run) call separately, the (n, n) array memory 2 n^2 x bytes, and the
accuracy against the exact p = 2 solution at the same dt.

    python benchmarks/dmft_scaling.py [--n 250 500 1000 2000] [--numpy-max 1000] [--dt 0.1]

With `--nonreciprocal ALPHA` it times the two-time DMFT of two antagonistically coupled systems,
`theory.nonreciprocal_dmft(p, T, ALPHA)` (2 x 2 blocks: (2n)^2 arrays, 8 n^2 floats), against
the exact p = 2 eigenmode solution of the same model; there is no NumPy baseline for it.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from diffphys import theory


def numpy_ck(p: int, T: float, n: int, h: float):
    """The same predictor-corrector scheme as `cugliandolo_kurchan`, in NumPy (the baseline)."""
    C = np.zeros((n, n), np.float32)
    R = np.zeros((n, n), np.float32)
    C[0, 0] = R[0, 0] = 1.0
    k = np.arange(n)

    def deriv(i):
        c, r = C[i], R[i]
        below = k <= i
        fp = np.where(below, 0.5 * p * c ** (p - 1), 0.0)
        a = np.where(below, 0.5 * p * (p - 1) * c ** (p - 2) * r, 0.0)
        w = np.where(below, h, 0.0)
        w[0] -= h / 2
        w[i] -= h / 2
        z = T + p * np.sum(w * fp * r)
        dr_ = np.diagonal(R)
        i1 = (w * a) @ C
        i2 = R @ (h * fp) - h / 2 * fp[0] * R[:, 0] - h / 2 * fp * dr_
        i3 = (h * a) @ R - h / 2 * a * dr_ - h / 2 * a[i] * r
        return np.where(below, -z * c + i1 + i2, 0.0), np.where(below, -z * r + i3, 0.0)

    for i in range(n - 1):
        dc0, dr0 = deriv(i)
        c_old, r_old = C[i].copy(), R[i].copy()
        C[i + 1], R[i + 1] = c_old + h * dc0, r_old + h * dr0
        C[i + 1, i + 1] = R[i + 1, i + 1] = 1.0
        C[:, i + 1] = C[i + 1]
        dc1, dr1 = deriv(i + 1)
        below = k <= i
        C[i + 1] = np.where(below, c_old + h / 2 * (dc0 + dc1[:n]), 0.0)
        R[i + 1] = np.where(below, r_old + h / 2 * (dr0 + dr1), 0.0)
        C[i + 1, i + 1] = R[i + 1, i + 1] = 1.0
        C[:, i + 1] = C[i + 1]
    return C, R


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[250, 500, 1000, 2000])
    ap.add_argument("--numpy-max", type=int, default=1000)
    ap.add_argument("--dt", type=float, default=0.1)
    ap.add_argument("--p", type=int, default=2)
    ap.add_argument("--T", type=float, default=0.5)
    ap.add_argument("--nonreciprocal", type=float, default=None, metavar="ALPHA")
    args = ap.parse_args(argv)
    alpha = args.nonreciprocal
    if alpha is not None:

        def solve(t_max):
            return theory.nonreciprocal_dmft(args.p, args.T, alpha, t_max=t_max, dt=args.dt)

        def c_t0(sol, i):
            return sol.C[i, 0, 0, 0]

        floats_per_n2 = 8
    else:

        def solve(t_max):
            return theory.cugliandolo_kurchan(args.p, args.T, t_max, args.dt)

        def c_t0(sol, i):
            return sol.C[i, 0]

        floats_per_n2 = 2
    print(f"backend: {jax.default_backend()}, devices: {jax.devices()}")
    rows = []
    for n in args.n:
        t_max = (n - 1) * args.dt
        # First call: compile + run; second call (same shapes): run only.
        _, first = timed(lambda: solve(t_max))
        sol, run = timed(lambda: solve(t_max))
        err = float("nan")
        if args.p == 2:
            ex = theory.nonreciprocal_sk_dynamics(
                args.T,
                alpha or 0.0,
                0.0,
                t_max=t_max,
                t_w=[0.0],
                dt=0.05,
                record_every=1,
                n_lambda=int(max(400, 30 * np.sqrt(t_max))),
            )
            i = np.arange(1, n, max(1, n // 20))
            exact_c = np.interp(sol.t[i], ex.t, ex.C[0, :, 0, 0])
            err = float(np.max(np.abs(c_t0(sol, i) - exact_c)))
        np_time = float("nan")
        if n <= args.numpy_max and alpha is None:
            (c_np, _), np_time = timed(lambda: numpy_ck(args.p, args.T, n, args.dt))
            assert np.allclose(c_np, sol.C, atol=2e-3), "NumPy baseline disagrees"
        print(
            f"n={n}: first call {first:.2f}s second {run:.2f}s numpy {np_time:.2f}s err {err:.1e}",
            flush=True,
        )
        rows.append(
            dict(
                n=n,
                t_max=t_max,
                first=first,
                run=run,
                numpy=np_time,
                ratio=np_time / run,
                mem_mb=floats_per_n2 * n * n * 4 / 2**20,
                err=err,
            )
        )
    print()
    what = "CK" if alpha is None else f"nonreciprocal_dmft, alpha = {alpha}"
    print(f"{what}: p = {args.p}, T = {args.T}, dt = {args.dt}, float32")
    print(
        "| steps n | t_max | first call: compile + run (s) | second call: run (s) | NumPy same scheme (s) | speed-up | C, R arrays (MiB) | max abs C(t,0) error vs exact |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']} | {r['t_max']:.0f} | {r['first']:.2f} | {r['run']:.2f} | "
            f"{r['numpy']:.2f} | {r['ratio']:.1f}x | {r['mem_mb']:.1f} | {r['err']:.1e} |"
        )
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        slope = np.log(b["run"] / a["run"]) / np.log(b["n"] / a["n"])
        print(
            f"\nmeasured run-time exponent between n={a['n']} and n={b['n']}: {slope:.2f} (O(n^3) = 3)"
        )
    return rows


if __name__ == "__main__":
    main()
