"""Ising p = 3 spin-glass sequential Metropolis: spin-flip attempts per nanosecond, side by side.

    python benchmarks/pspin_throughput.py [--quick] [--betas 1.0,1.5] [--repeats 3]

Compares, in one process and on the same models and states (`PSpin.sample(key, N, 3)`,
Gaussian couplings of variance 3/N^2, h = 0):

- `native`: `models.pspin_metropolis(beta, backend="native", sweeps_per_step=k)`: one C++ XLA
  FFI call for all k sweeps of all chains (OpenMP over the chains of a vmapped batch); the
  field matrix M_ij = sum_k T_ijk s_k and the fields f kept in the state, O(N) + O(N^2) per
  accepted flip, O(1) per rejection;
- `jax`: `models.pspin_metropolis(backend="jax")`, the same incremental algorithm in pure JAX
  (`fori_loop` over the spins, `lax.cond` per accepted flip; under `vmap` the cond becomes a
  select, so every attempt pays the O(N^2) update);
- `generic`: `sampling.metropolis(order="sequential")` inside `sampling.run` (the
  model-agnostic kernel: `PSpin.site_energies`, a gather over the C(N-1, 2) tuples of each
  visited spin), vmapped over the batch;
- `numpy`: the incremental algorithm in NumPy, written for this comparison: one sample, a
  Python loop over the spins with NumPy row / slab updates per accepted flip; a batch, the
  loop over spins vectorised over the samples, updating only the samples that accepted;
- `numba`: a serial numba loop of the same incremental algorithm (one thread).

Cases: one N = 128 sample and a batch of 64 samples x N = 64 (one model per chain), at each
beta of `--betas` (1.0, and 1.5 below the dynamical transition T_d ~ 0.68). Each method is
timed `--repeats` times round-robin from the same equilibrated state; rates are medians,
ratios the medians of the per-repeat ratios, per wall second and per CPU second
(`time.process_time`, all threads of the process); compile time (first call minus a timed
call) is apart. The load average is printed: on a shared machine quote the CPU-second ratios.
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

from diffphys import _native, sampling
from diffphys.models import PSpin, pspin_metropolis

try:
    import numba
except ImportError:  # numba is optional (the `bench` extra)
    numba = None

if numba is not None:

    @numba.njit(cache=False)
    def numba_sweeps(T, s, M, f, beta, n_sweeps, seed):
        """Serial field-matrix Metropolis over samples T[b] (B, N, N, N), in place."""
        np.random.seed(seed)  # noqa: NPY002 (numba supports the legacy API in njit)
        B, N = s.shape
        for b in range(B):
            for _ in range(n_sweeps):
                for l in range(N):  # noqa: E741
                    sl = s[b, l]
                    if beta * 2.0 * sl * f[b, l] < np.random.exponential():  # noqa: NPY002
                        d = np.float32(2.0 * sl)
                        for i in range(N):
                            f[b, i] -= d * M[b, l, i]
                        for i in range(N):
                            for j in range(N):
                                M[b, i, j] -= d * T[b, l, i, j]
                        s[b, l] = -sl


def numpy_single(T, s, M, f, beta, n_sweeps, rng):
    """Field-matrix Metropolis on one sample T (N, N, N): a Python loop over the spins."""
    N = s.shape[0]
    for _ in range(n_sweeps):
        xi = rng.exponential(size=N)
        for l in range(N):  # noqa: E741
            sl = s[l]
            if beta * 2.0 * sl * f[l] < xi[l]:
                d = np.float32(2.0 * sl)
                f -= d * M[l]
                M -= d * T[l]
                s[l] = -sl
    return s, M, f


def numpy_batched(T, s, M, f, beta, n_sweeps, rng):
    """Field-matrix Metropolis over samples T[b] (B, N, N, N): the loop over spins vectorised
    over the samples, only the samples that accepted updated."""
    B, N = s.shape
    for _ in range(n_sweeps):
        xi = rng.exponential(size=(B, N)).astype(np.float32)
        for l in range(N):  # noqa: E741
            sl = s[:, l]
            acc = np.flatnonzero(beta * 2.0 * sl * f[:, l] < xi[:, l])
            if acc.size:
                d = 2.0 * sl[acc]
                f[acc] -= d[:, None] * M[acc, l]
                M[acc] -= d[:, None, None] * T[acc, l]
                s[acc, l] = -sl[acc]
    return s, M, f


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def bench(B: int, N: int, beta: float, sweeps: dict, repeats: int) -> dict:
    nat = pspin_metropolis(beta, backend="native", sweeps_per_step=sweeps["native"])
    ref = pspin_metropolis(beta, backend="jax")
    gen = sampling.metropolis(beta, order="sequential")

    @jax.jit
    def init(key):
        k_m, k_x = jax.random.split(key)
        ms = jax.vmap(lambda k: PSpin.sample(k, N, 3))(jax.random.split(k_m, B))
        xs = jax.random.rademacher(k_x, (B, N), jnp.int8)
        return ms, jax.vmap(nat.init)(xs, ms)

    def batched(step):
        if B == 1:
            return jax.jit(
                lambda k, ms, st: jax.tree.map(
                    lambda a: a[None], step(k, *jax.tree.map(lambda a: a[0], (st, ms)))
                )
            )
        return jax.jit(lambda k, ms, st: jax.vmap(step)(jax.random.split(k, B), st, ms))

    go = {
        "native": batched(lambda k, st, m: nat.step(k, st, m)),  # (state, info)
        "jax": batched(lambda k, st, m: sampling.run(k, ref, st, m, sweeps["jax"])[0]),
        "generic": batched(lambda k, st, m: sampling.run(k, gen, st, m, sweeps["generic"])[0]),
    }
    ms, st = jax.block_until_ready(init(jax.random.key(0)))
    first = {}
    (st, info), first["native"], _ = _timed(
        lambda: jax.block_until_ready(go["native"](jax.random.key(1), ms, st))
    )
    gst = jax.vmap(gen.init)(st.x, ms)
    _, first["jax"], _ = _timed(lambda: jax.block_until_ready(go["jax"](jax.random.key(1), ms, st)))
    _, first["generic"], _ = _timed(
        lambda: jax.block_until_ready(go["generic"](jax.random.key(1), ms, gst))
    )
    if numba is not None:  # compile apart
        numba_sweeps(
            np.zeros((1, 4, 4, 4), np.float32),
            np.ones((1, 4), np.float32),
            np.zeros((1, 4, 4), np.float32),
            np.zeros((1, 4), np.float32),
            beta,
            1,
            0,
        )
    rng = np.random.default_rng(0)
    T = np.array(st.tensor, np.float32)
    peers = ["native", "jax", "generic", "numpy"] + (["numba"] if numba is not None else [])
    rates = {p: [] for p in peers}
    walls = {p: [] for p in ("native", "jax", "generic")}
    for r in range(repeats):
        for p in ("native", "jax", "generic"):
            k = jax.random.key(2 + r)
            if p == "native":
                (st, info), w, c = _timed(lambda: jax.block_until_ready(go[p](k, ms, st)))
            elif p == "jax":
                _, w, c = _timed(lambda: jax.block_until_ready(go[p](k, ms, st)))
            else:
                gst = jax.vmap(gen.init)(st.x, ms)
                _, w, c = _timed(lambda: jax.block_until_ready(go[p](k, ms, gst)))
            walls[p].append(w)
            rates[p].append((B * N * sweeps[p] / w, B * N * sweeps[p] / c))
        s = np.asarray(st.x, np.float32)
        M = np.asarray(st.M, np.float32)
        f = np.asarray(st.field, np.float32)
        if B == 1:
            fn = lambda: numpy_single(  # noqa: E731
                T[0], s[0].copy(), M[0].copy(), f[0].copy(), beta, sweeps["numpy"], rng
            )
        else:
            fn = lambda: numpy_batched(  # noqa: E731
                T, s.copy(), M.copy(), f.copy(), beta, sweeps["numpy"], rng
            )
        _, w, c = _timed(fn)
        rates["numpy"].append((B * N * sweeps["numpy"] / w, B * N * sweeps["numpy"] / c))
        if numba is not None:
            _, w, c = _timed(
                lambda: numba_sweeps(T, s.copy(), M.copy(), f.copy(), beta, sweeps["numba"], r)
            )
            rates["numba"].append((B * N * sweeps["numba"] / w, B * N * sweeps["numba"] / c))
    rates = {k: np.asarray(v) for k, v in rates.items()}
    return {
        "case": f"{B} sample{'s' if B > 1 else ''} x N = {N}",
        "beta": beta,
        "peers": peers,
        "rates": {k: np.median(v, axis=0) for k, v in rates.items()},
        "ratios": {k: np.median(rates["native"] / v, axis=0) for k, v in rates.items()},
        "compile_s": {
            k: max(first[k] - float(np.median(walls[k])), 0.0) for k in ("native", "jax", "generic")
        },
        "sweeps": tuple(sweeps[p] for p in peers),
        "acceptance": float(jnp.mean(info.acceptance_rate)),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer sweeps (smoke test)")
    p.add_argument("--betas", default="1.0,1.5")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if not _native.available():
        print(_native.reason())
        return
    sc = 0.1 if args.quick else 1.0

    def n(x):
        return max(1, int(x * sc))

    load0 = os.getloadavg()
    rows = []
    for beta in (float(b) for b in args.betas.split(",")):
        single = dict(native=n(400), jax=n(20), generic=n(10), numpy=n(50), numba=n(400))
        rows.append(bench(1, 128, beta, single, args.repeats))
        batch = dict(native=n(200), jax=n(4), generic=n(4), numpy=n(20), numba=n(100))
        rows.append(bench(64, 64, beta, batch, args.repeats))
    peers = rows[0]["peers"]
    print(
        f"\nIsing p = 3 sequential Metropolis, {datetime.date.today()}, {platform.machine()}, "
        f"jax {jax.__version__}, load average {', '.join(f'{x:.2f}' for x in load0)} -> "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    head = " | ".join(f"{p} flips/ns (wall, CPU)" for p in peers)
    rat = " | ".join(f"native / {p} (wall, CPU)" for p in peers[1:])
    print(
        f"| case | beta | acc. | {head} | {rat} | compile native, jax, generic (s) "
        f"| sweeps ({', '.join(peers)}) |"
    )
    print("|---" * (5 + 2 * len(peers) - 1) + "|")
    for r in rows:
        cells = " | ".join(
            f"{r['rates'][p][0] * 1e-9:.3g}, {r['rates'][p][1] * 1e-9:.3g}" for p in peers
        )
        rc = " | ".join(f"{r['ratios'][p][0]:.1f}x, {r['ratios'][p][1]:.1f}x" for p in peers[1:])
        comp = ", ".join(f"{r['compile_s'][k]:.2f}" for k in ("native", "jax", "generic"))
        print(
            f"| {r['case']} | {r['beta']:g} | {r['acceptance']:.2f} | {cells} | {rc} | {comp} | "
            f"{r['sweeps']} |"
        )


if __name__ == "__main__":
    main()
