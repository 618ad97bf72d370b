"""Gradient flow of a phase-retrieval ensemble: adaptive diffrax vs fixed-step integrators.

`training.gradient_flow` integrates theta' = -grad L(theta) with diffrax's adaptive Tsit5. This
benchmark asks whether a fixed-step integrator reaches the same accuracy sooner. Peers, each
integrating the same ensemble (`--students` unconstrained phase-retrieval students, N = `--n`,
alpha = `--alpha`, random initialisations on the sphere |x|^2 = N, one shared instance) from
t = 0 to the record times `--times`, vmapped over students, in one process:

- `tsit5-adaptive`: `training.gradient_flow` (diffrax Tsit5 + PID controller), swept over rtol
  (atol = rtol / 10);
- `heun-fixed`, `tsit5-fixed`: diffrax Heun (2nd order) and Tsit5 (5th) with
  `ConstantStepSize`, swept over dt;
- `rk4-fixed`: classical RK4 written here in `lax.scan`/`fori_loop` (no controller, none of
  diffrax's per-step bookkeeping), swept over dt;
- `gd-euler`: plain gradient descent theta <- theta - dt grad L (forward Euler), swept over dt.

Accuracy is the largest relative error max_t |theta(t) - theta_ref(t)| / |theta_ref(t)| over
students and record times against a float64 Tsit5 solve at rtol = 1e-11. For each target
error the table gives each peer's time of its cheapest setting that meets it (wall and
process-CPU seconds, best of `--repeats`, peers timed round-robin), and the ratio to the
adaptive default. Compile time is excluded (reported apart). Run:

    python benchmarks/gradient_flow.py [--students 64] [--n 64] [--alpha 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)  # the reference only; every peer runs in float32

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from diffphys import models, training  # noqa: E402


def diffrax_fixed(solver, loss, x0, times, dt):
    grad = jax.grad(loss)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, a: -grad(y)),
        solver,
        t0=0.0,
        t1=float(times[-1]),
        dt0=dt,
        y0=x0,
        saveat=diffrax.SaveAt(ts=jnp.asarray(times, x0.dtype)),
        stepsize_controller=diffrax.ConstantStepSize(),
        max_steps=int(round(times[-1] / dt)) + 2,
        throw=False,
    )
    return sol.ys


def rk4(loss, x0, times, dt):
    """Classical RK4 at a constant step: a scan over record intervals of `fori_loop`s."""
    grad = jax.grad(loss)
    counts = np.diff(np.round(np.concatenate([[0.0], times]) / dt).astype(np.int64))

    def step(i, y):
        k1 = -grad(y)
        k2 = -grad(y + dt / 2 * k1)
        k3 = -grad(y + dt / 2 * k2)
        k4 = -grad(y + dt * k3)
        return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    def seg(x, k):
        x = jax.lax.fori_loop(0, k, step, x)
        return x, x

    return jax.lax.scan(seg, x0, jnp.asarray(counts))[1]


def euler(loss, x0, times, dt):
    grad = jax.grad(loss)
    counts = np.diff(np.round(np.concatenate([[0.0], times]) / dt).astype(np.int64))

    def seg(x, k):
        x = jax.lax.fori_loop(0, k, lambda i, y: y - dt * grad(y), x)
        return x, x

    return jax.lax.scan(seg, x0, jnp.asarray(counts))[1]


def build(problem, x0, times, method, knob):
    """A compiled `run()` for one peer and setting; returns (run, compile seconds)."""
    loss = problem.loss
    if method == "tsit5-adaptive":

        def one(x):
            return training.gradient_flow(
                loss, x, times, rtol=knob, atol=knob / 10, max_steps=1_000_000
            )["record"]
    elif method == "rk4-fixed":

        def one(x):
            return rk4(loss, x, times, knob)
    elif method == "heun-fixed":

        def one(x):
            return diffrax_fixed(diffrax.Heun(), loss, x, times, knob)
    elif method == "tsit5-fixed":

        def one(x):
            return diffrax_fixed(diffrax.Tsit5(), loss, x, times, knob)
    elif method == "gd-euler":

        def one(x):
            return euler(loss, x, times, knob)
    else:
        raise ValueError(method)
    f = jax.jit(jax.vmap(one))
    t = time.perf_counter()
    compiled = f.lower(x0).compile()
    return (lambda: jax.block_until_ready(compiled(x0))), time.perf_counter() - t


def adaptive_steps(problem, x0, times, rtol) -> float:
    """Mean accepted + rejected steps of the adaptive solve (diffrax's own counter, the same
    solver and controller as `training.gradient_flow`)."""
    grad = jax.grad(problem.loss)

    def one(x):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, a: -grad(y)),
            diffrax.Tsit5(),
            t0=0.0,
            t1=float(times[-1]),
            dt0=None,
            y0=x,
            saveat=diffrax.SaveAt(ts=jnp.asarray(times, x.dtype)),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol / 10),
            max_steps=1_000_000,
            throw=False,
        )
        return sol.stats["num_steps"]

    return float(np.mean(np.asarray(jax.jit(jax.vmap(one))(x0))))


def rel_error(ys, ref):
    ys = np.asarray(ys, np.float64)
    num = np.linalg.norm(ys - ref, axis=-1)
    return float(np.max(num / np.linalg.norm(ref, axis=-1)))


KNOBS = {
    "tsit5-adaptive": [1e-2, 1e-3, 1e-4, 1e-5, 1e-6],
    "rk4-fixed": [2.0**-k for k in range(3, 7)],
    "tsit5-fixed": [2.0**-k for k in range(3, 7)],
    "heun-fixed": [2.0**-k for k in range(3, 10)],
    "gd-euler": [2.0**-k for k in range(4, 12)],
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--students", type=int, default=64)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--alpha", type=float, default=3.0)
    p.add_argument("--times", type=float, nargs="*", default=[1.0, 2.0, 4.0, 8.0, 16.0])
    p.add_argument("--targets", type=float, nargs="*", default=[1e-2, 1e-3, 1e-4])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--methods", nargs="*", default=list(KNOBS))
    args = p.parse_args(argv)

    k_p, k_x = jax.random.split(jax.random.key(0))
    problem = models.PhaseRetrieval.sample(k_p, n=args.n, alpha=args.alpha)
    keys = jax.random.split(k_x, args.students)
    x0 = jax.vmap(lambda k: models.random_student(k, args.n))(keys)
    times = np.asarray(args.times, np.float64)
    p64 = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx_float(a) else a, problem)
    ref = jax.jit(
        jax.vmap(
            lambda x: training.gradient_flow(
                p64.loss, x, times, rtol=1e-11, atol=1e-12, max_steps=10_000_000
            )["record"]
        )
    )(x0.astype(jnp.float64))
    ref = np.asarray(ref)
    load0 = os.getloadavg()
    print(
        f"# Gradient flow of {args.students} phase-retrieval students (N = {args.n}, alpha = "
        f"{args.alpha:g}, unconstrained, float32) to t = {times[-1]:g}\n\n"
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, jax {jax.__version__}, "
        f"diffrax {diffrax.__version__}, {os.cpu_count()} CPUs, {platform.processor()}, "
        f"load average {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f}\n"
    )
    runs = {}
    for m in args.methods:
        for k in KNOBS[m]:
            run, c = build(problem, x0, times, m, k)
            err = rel_error(run(), ref)
            if m == "tsit5-adaptive":
                steps = adaptive_steps(problem, x0, times, k)
            else:
                steps = float(np.round(times[-1] / k))
            runs[(m, k)] = dict(run=run, compile=c, err=err, steps=steps, wall=np.inf, cpu=np.inf)
    for _ in range(args.repeats):
        for r in runs.values():
            w, c = time.perf_counter(), time.process_time()
            r["run"]()
            w, c = time.perf_counter() - w, time.process_time() - c
            r["wall"], r["cpu"] = min(r["wall"], w), min(r["cpu"], c)
    print("| method | setting | steps | max rel. error | wall (ms) | CPU (ms) | compile (s) |")
    print("|---|---|---|---|---|---|---|")
    for (m, k), r in runs.items():
        name = "rtol" if m == "tsit5-adaptive" else "dt"
        print(
            f"| {m} | {name} = {k:.3g} | {r['steps']:.0f} | {r['err']:.2e} | {1e3 * r['wall']:.1f} "
            f"| {1e3 * r['cpu']:.1f} | {r['compile']:.1f} |"
        )
    print("\nTime to accuracy: cheapest setting meeting each target (ratio: adaptive / peer)\n")
    print("| target | " + " | ".join(args.methods) + " |")
    print("|---|" + "---|" * len(args.methods))
    for tgt in args.targets:
        cells, base = [], None
        for m in args.methods:
            ok = [r for (mm, _), r in runs.items() if mm == m and r["err"] <= tgt]
            if not ok:
                cells.append("not reached")
                continue
            best = min(ok, key=lambda r: r["wall"])
            if m == "tsit5-adaptive":
                base = best
            cells.append((best["wall"], best["cpu"]))
        out = []
        for c in cells:
            if isinstance(c, str):
                out.append(c)
            elif base is None:
                out.append(f"{1e3 * c[0]:.1f} ms wall / {1e3 * c[1]:.1f} ms CPU")
            else:
                out.append(
                    f"{1e3 * c[0]:.1f} / {1e3 * c[1]:.1f} ms (x{base['wall'] / c[0]:.2f} wall, "
                    f"x{base['cpu'] / c[1]:.2f} CPU)"
                )
        print(f"| {tgt:.0e} | " + " | ".join(out) + " |")
    load1 = os.getloadavg()
    print(f"\nload average at the end: {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}")
    return 0


def eqx_float(a) -> bool:
    return isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating)


if __name__ == "__main__":
    raise SystemExit(main())
