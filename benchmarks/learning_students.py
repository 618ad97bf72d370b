"""Learning-theory students: students x steps per second, diffphys vs PyTorch, side by side.

Phase retrieval (`bench_phase_retrieval`): an ensemble of `batch` spherical students at
dimension N (alpha = M/N, one instance per student), full-batch Riemannian GD. diffphys: one
vmapped `training.train` call (optax.sgd + `models.sphere_retraction`, `lax.scan` over
steps), timed twice: sampling each student's instance inside the call, and on instances
sampled beforehand (as the PyTorch loop gets them). PyTorch: the same batched loop written with `torch.bmm` and an analytic gradient
(what one would write by hand; no autograd overhead), float32, all threads. Throughput is the
best of `--repeats` timed runs after compilation/warm-up, methods timed round-robin; "CPU"
divides by process CPU time instead of wall time. Compile time is reported apart. Memory of a
10^4-student ensemble: XLA's `compiled.memory_analysis()` of the same jitted call (no run).

    python benchmarks/learning_students.py [--n 256] [--batch 1024] [--steps 20]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import jax
import numpy as np
import optax

from diffphys import models, training


def _timed(fn, repeats):
    best_w, best_c = np.inf, np.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        best_w = min(best_w, time.perf_counter() - w0)
        best_c = min(best_c, time.process_time() - c0)
    return best_w, best_c


def _jax_fn(n, alpha, steps, lr):
    def one(k):
        kp, kx, kt = jax.random.split(k, 3)
        p = models.PhaseRetrieval.sample(kp, n=n, alpha=alpha)
        x0 = models.random_student(kx, n)
        opt = optax.chain(optax.sgd(lr), models.sphere_retraction())
        st, _ = training.train(kt, x0, models.phase_retrieval_grad(p), opt, steps, every=steps)
        return p.overlap(st.params)

    return jax.jit(jax.vmap(one))


def _jax_given(steps, lr):
    """The same loop on instances and starts sampled beforehand (as the PyTorch loop gets)."""

    def one(k, p, x0):
        opt = optax.chain(optax.sgd(lr), models.sphere_retraction())
        st, _ = training.train(k, x0, models.phase_retrieval_grad(p), opt, steps, every=steps)
        return p.overlap(st.params)

    return jax.jit(jax.vmap(one))


def _torch_loop(a, y, x, steps, lr, alpha):
    import torch

    n = x.shape[1]
    with torch.no_grad():
        for _ in range(steps):
            z = torch.bmm(a, x.unsqueeze(-1)).squeeze(-1) / n**0.5  # (B, M)
            r = (z * z - y) * z  # dL/dz * 4 alpha / ... (see models.PhaseRetrieval.loss)
            g = torch.bmm(a.transpose(1, 2), r.unsqueeze(-1)).squeeze(-1) / (alpha * n**0.5)
            g = g - (g * x).sum(1, keepdim=True) / (x * x).sum(1, keepdim=True) * x
            x_new = x - lr * g
            x = x_new * (x.norm(dim=1, keepdim=True) / x_new.norm(dim=1, keepdim=True))
    return x


def bench_phase_retrieval(
    *, n=256, alpha=4.0, batch=1024, steps=20, lr=0.05, repeats=3, mem_batch=10_000
):
    """Students x steps per second (wall and CPU) of diffphys and PyTorch; XLA memory of a
    `mem_batch` ensemble. Returns a list of markdown table rows and a dict of figures."""
    import torch

    keys = jax.random.split(jax.random.key(0), batch)
    f = _jax_fn(n, alpha, steps, lr)
    t0 = time.perf_counter()
    compiled = f.lower(keys).compile()
    t_compile = time.perf_counter() - t0

    def run_jax():
        jax.block_until_ready(compiled(keys))

    kp, kx = jax.random.split(jax.random.key(1))
    problems = jax.jit(jax.vmap(lambda k: models.PhaseRetrieval.sample(k, n=n, alpha=alpha)))(
        jax.random.split(kp, batch)
    )
    starts = jax.vmap(lambda k: models.random_student(k, n))(jax.random.split(kx, batch))
    given = _jax_given(steps, lr).lower(keys, problems, starts).compile()

    def run_given():
        jax.block_until_ready(given(keys, problems, starts))

    m = int(round(alpha * n))
    g = torch.Generator().manual_seed(0)
    a = torch.randn(batch, m, n, generator=g)
    xs = torch.randn(batch, n, generator=g)
    xs = xs / xs.norm(dim=1, keepdim=True) * n**0.5
    y = torch.bmm(a, xs.unsqueeze(-1)).squeeze(-1) ** 2 / n
    x0 = torch.randn(batch, n, generator=g)
    x0 = x0 / x0.norm(dim=1, keepdim=True) * n**0.5

    def run_torch():
        _torch_loop(a, y, x0, steps, lr, m / n)

    # check both implement the same update: one step from the same point
    run_jax()
    run_given()
    run_torch()
    w_j, c_j, w_t, c_t, w_g, c_g = (np.inf,) * 6
    for _ in range(repeats):
        wj, cj = _timed(run_jax, 1)
        wg, cg = _timed(run_given, 1)
        wt, ct = _timed(run_torch, 1)
        w_j, c_j, w_t, c_t = min(w_j, wj), min(c_j, cj), min(w_t, wt), min(c_t, ct)
        w_g, c_g = min(w_g, wg), min(c_g, cg)
    work = batch * steps
    mem = _jax_fn(n, alpha, steps, lr).lower(jax.random.split(jax.random.key(0), mem_batch))
    ma = mem.compile().memory_analysis()
    mem_mb = None
    if ma is not None:
        mem_mb = (
            ma.argument_size_in_bytes + ma.output_size_in_bytes + ma.temp_size_in_bytes
        ) / 2**20
    res = {
        "diffphys_wall": work / w_j,
        "diffphys_cpu": work / c_j,
        "given_wall": work / w_g,
        "given_cpu": work / c_g,
        "torch_wall": work / w_t,
        "torch_cpu": work / c_t,
        "compile_s": t_compile,
        "mem_MiB_1e4": mem_mb,
    }
    rows = [
        "| method | students x steps / s (wall) | per CPU-s | ratio (wall) | ratio (CPU) |",
        "|---|---|---|---|---|",
        f"| diffphys (vmapped train) | {res['diffphys_wall']:.3g} | {res['diffphys_cpu']:.3g} "
        f"| {w_t / w_j:.2f} | {c_t / c_j:.2f} |",
        f"| diffphys (same, instances sampled beforehand) | {res['given_wall']:.3g} "
        f"| {res['given_cpu']:.3g} | {w_t / w_g:.2f} | {c_t / c_g:.2f} |",
        f"| PyTorch (bmm, analytic grad) | {res['torch_wall']:.3g} | {res['torch_cpu']:.3g} "
        "| 1 | 1 |",
        "",
        f"Phase retrieval N = {n}, alpha = {alpha}, {batch} students, {steps} steps; "
        f"diffphys compile {t_compile:.1f} s; XLA memory of a {mem_batch}-student ensemble "
        f"(arguments + outputs + temporaries): {mem_mb:.0f} MiB.",
    ]
    return rows, res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--alpha", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(
        f"date {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, load {os.getloadavg()}"
    )
    rows, _ = bench_phase_retrieval(
        n=args.n, alpha=args.alpha, batch=args.batch, steps=args.steps, repeats=args.repeats
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
