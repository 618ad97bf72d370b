"""SK Metropolis throughput: diffphys `sk_metropolis` vs NumPy, same algorithm, same command.

    python benchmarks/sk_throughput.py [--quick] [--native-only]

Algorithm on both sides: sequential single-spin-flip Metropolis sweeps with the local fields
f = J s kept in memory; an accepted flip of spin i updates all fields with row i of J (O(N)).
The acceptance test is beta * 2 s_i f_i < xi with xi ~ Exp(1) drawn once per sweep.

- NumPy (batched case): the sweep loops over spins in Python and is vectorised over the disorder
  samples, updating only the samples that accepted (the best NumPy formulation we know).
- NumPy (single sample): a Python loop over spins with a NumPy row update per accepted flip.
- diffphys: `models.sk_metropolis()` inside `sampling.run`, batched over the samples by
  `ensemble.run(..., chunk_size=c)`: chunks of c samples, vmapped (the sweep's batching rule
  runs one explicitly batched loop per chunk), each chunk running all its sweeps before the
  next (temporal blocking: 8 x N = 256 couplings are 2 MB and stay in a 4 MB L2 cache).
  `--chunks` lists the chunk sizes to time (the whole batch at once is c = B). The single
  sample runs one unbatched chain.

Reported: spin-flip attempts per second (steady state, compile excluded; medians of 3 repeats
that alternate diffphys and NumPy), compile time, the median ratio and its range.

Second table (`--native-only` prints only it): the native kernel,
`sk_metropolis(backend="native", sweeps_per_step=n)` (C++ XLA FFI, all n sweeps of all chains
in one call, OpenMP over the chains), next to NumPy and a serial numba loop (same algorithm,
one Exp(1) variate per attempt, if numba is installed), timed alternately in one process:
flips/ns per wall second and per CPU second (`time.process_time`, all threads), the median
ratios of native to each peer, compile time apart.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffphys import ensemble, models, sampling


def numpy_batched(J, s, f, beta, n_sweeps, rng):
    """Sequential local-field Metropolis over a batch of samples J[b] (B, N, N)."""
    B, N, _ = J.shape
    for _ in range(n_sweeps):
        xi = rng.exponential(size=(B, N)).astype(np.float32)
        for i in range(N):
            si = s[:, i]
            acc = np.flatnonzero(beta * 2.0 * si * f[:, i] < xi[:, i])
            if acc.size:
                ds = -2.0 * si[acc]
                f[acc] += ds[:, None] * J[acc, i, :]
                s[acc, i] = -si[acc]
    return s, f


def numpy_single(J, s, f, beta, n_sweeps, rng):
    """Sequential local-field Metropolis on one sample (N, N): a Python loop over spins."""
    N = J.shape[0]
    for _ in range(n_sweeps):
        xi = rng.exponential(size=N)
        for i in range(N):
            if beta * 2.0 * s[i] * f[i] < xi[i]:
                f -= (2.0 * s[i]) * J[i]
                s[i] = -s[i]
    return s, f


try:
    import numba
except ImportError:  # numba is optional (the `bench` extra)
    numba = None

if numba is not None:

    @numba.njit(cache=False)
    def numba_sweeps(J, s, f, beta, n_sweeps, seed):
        """Serial sequential local-field Metropolis over samples J[b] (B, N, N), in place."""
        np.random.seed(seed)  # noqa: NPY002 (numba supports the legacy API in njit)
        B, N, _ = J.shape
        for b in range(B):
            for _ in range(n_sweeps):
                for i in range(N):
                    si = s[b, i]
                    if beta * 2.0 * si * f[b, i] < np.random.exponential():  # noqa: NPY002
                        d = np.float32(2.0 * si)
                        for j in range(N):
                            f[b, j] -= d * J[b, i, j]
                        s[b, i] = -si


def bench_native(B: int, N: int, beta: float, n_native: int, n_np: int, repeats: int = 3):
    """Native kernel vs NumPy vs serial numba, alternately `repeats` times from one
    equilibrated state; rates per wall and per CPU second, ratios as medians of pairs."""
    alg = models.sk_metropolis(beta, backend="native", sweeps_per_step=n_native)

    @jax.jit
    def init(key):
        k_m, k_x = jax.random.split(key)
        ms = jax.vmap(lambda k: models.SK.sample(k, N))(jax.random.split(k_m, B))
        xs = jax.random.rademacher(k_x, (B, N), jnp.int8)
        return ms, jax.vmap(alg.init)(xs, ms)

    if B == 1:
        go = jax.jit(
            lambda k, ms, st: jax.tree.map(
                lambda a: a[None], alg.step(k, *jax.tree.map(lambda a: a[0], (st, ms)))[0]
            )
        )
    else:
        go = jax.jit(lambda k, ms, st: jax.vmap(alg.step)(jax.random.split(k, B), st, ms)[0])
    ms, st = jax.block_until_ready(init(jax.random.key(0)))
    t0 = time.perf_counter()
    st = jax.block_until_ready(go(jax.random.key(1), ms, st))
    t_first = time.perf_counter() - t0
    J = np.asarray(ms.J, np.float32)
    rng = np.random.default_rng(0)
    if numba is not None:  # compile apart
        numba_sweeps(
            J[:1, :4, :4].copy(),
            np.ones((1, 4), np.float32),
            np.zeros((1, 4), np.float32),
            beta,
            1,
            0,
        )
    rates = {"native": [], "numpy": [], "numba": []}
    t_native = []

    def timed(fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - w, time.process_time() - c

    for r in range(repeats):
        st, w, c = timed(lambda: jax.block_until_ready(go(jax.random.key(2 + r), ms, st)))
        t_native.append(w)
        rates["native"].append((B * N * n_native / w, B * N * n_native / c))
        s = np.asarray(st.x, np.float32)
        f = np.asarray(st.field, np.float32)
        if B == 1:
            _, w, c = timed(lambda: numpy_single(J[0], s[0].copy(), f[0].copy(), beta, n_np, rng))
        else:
            _, w, c = timed(lambda: numpy_batched(J, s.copy(), f.copy(), beta, n_np, rng))
        rates["numpy"].append((B * N * n_np / w, B * N * n_np / c))
        if numba is not None:
            n_nb = max(1, n_native // 2)
            _, w, c = timed(lambda: numba_sweeps(J, s.copy(), f.copy(), beta, n_nb, r))
            rates["numba"].append((B * N * n_nb / w, B * N * n_nb / c))
    rates = {k: np.asarray(v) for k, v in rates.items() if v}
    med = {k: np.median(v, axis=0) for k, v in rates.items()}
    ratios = {k: np.median(rates["native"] / v, axis=0) for k, v in rates.items() if k != "native"}
    return {
        "case": f"{B} sample{'s' if B > 1 else ''} x N = {N}",
        "beta": beta,
        "rates": med,
        "ratios": ratios,
        "compile_s": max(t_first - float(np.median(t_native)), 0.0),
        "sweeps": n_native,
    }


def native_table(quick: bool) -> None:
    from diffphys import _native

    if not _native.available():
        print(_native.reason())
        return
    scale = 0.25 if quick else 1.0
    rows = [
        bench_native(1024, 256, 1.0, max(4, int(40 * scale)), max(1, int(2 * scale))),
        bench_native(1, 2048, 1.0, max(20, int(400 * scale)), max(1, int(20 * scale))),
    ]
    has_numba = "numba" in rows[0]["rates"]
    print(
        f"\nNative SK kernel vs NumPy{' vs numba (serial)' if has_numba else ''}, "
        f"{datetime.date.today()}\n"
    )
    peers = ["native", "numpy"] + (["numba"] if has_numba else [])
    head = " | ".join(f"{p} flips/ns (wall, CPU)" for p in peers)
    rat = " | ".join(f"native / {p} (wall, CPU)" for p in peers[1:])
    print(f"| case | beta | {head} | {rat} | compile (s) | native sweeps/call |")
    print("|---" * (4 + 2 * len(peers) - 1) + "|")
    for r in rows:
        cells = " | ".join(
            f"{r['rates'][p][0] * 1e-9:.3g}, {r['rates'][p][1] * 1e-9:.3g}" for p in peers
        )
        rc = " | ".join(f"{r['ratios'][p][0]:.1f}x, {r['ratios'][p][1]:.1f}x" for p in peers[1:])
        print(
            f"| {r['case']} | {r['beta']:g} | {cells} | {rc} | {r['compile_s']:.2f} | "
            f"{r['sweeps']} |"
        )


def diffphys_runner(B: int, N: int, beta: float, chunk: int):
    alg = models.sk_metropolis(beta)

    @jax.jit
    def init(key):
        k_m, k_x = jax.random.split(key)
        ms = jax.vmap(lambda k: models.SK.sample(k, N))(jax.random.split(k_m, B))
        xs = jax.random.rademacher(k_x, (B, N), jnp.int8)
        return ms, jax.vmap(alg.init)(xs, ms)

    def sweeps(n):
        def one(k, m, st):
            st, _ = sampling.run(k, alg, st, m, n)
            return st

        if B == 1:  # one chain: no vmap, so a rejected flip skips the row update

            @jax.jit
            def go(key, ms, states):
                single = jax.tree.map(lambda a: a[0], (ms, states))
                return jax.tree.map(lambda a: a[None], one(key, *single))

            return go

        def go(key, ms, states):
            keys = jax.random.split(key, B)
            return ensemble.run(one, keys, ms, states, chunk_size=None if chunk >= B else chunk)

        return go

    return init, sweeps


def bench(
    B: int, N: int, beta: float, n_jax: int, n_np: int, chunk: int = 1, repeats: int = 3
) -> dict:
    """Times diffphys and NumPy alternately `repeats` times, both continuing from the same
    equilibrated state; rates are medians, and the ratio is the median of the per-repeat ratios
    (so a load spike on a shared machine hits both sides of a pair alike)."""
    init, sweeps = diffphys_runner(B, N, beta, chunk)
    ms, states = jax.block_until_ready(init(jax.random.key(0)))
    go = sweeps(n_jax)
    t0 = time.perf_counter()
    out = jax.block_until_ready(go(jax.random.key(1), ms, states))
    t_first = time.perf_counter() - t0

    J = np.asarray(ms.J, np.float32)
    rng = np.random.default_rng(0)
    jax_rates, np_rates, t_jax = [], [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(go(jax.random.key(2 + r), ms, out))
        t_jax.append(time.perf_counter() - t0)
        jax_rates.append(B * N * n_jax / t_jax[-1])

        s = np.asarray(out.x, np.float32)
        f = np.asarray(out.field, np.float32)
        t0 = time.perf_counter()
        if B == 1:
            numpy_single(J[0], s[0].copy(), f[0].copy(), beta, n_np, rng)
        else:
            numpy_batched(J, s.copy(), f.copy(), beta, n_np, rng)
        np_rates.append(B * N * n_np / (time.perf_counter() - t0))
    ratios = np.asarray(jax_rates) / np.asarray(np_rates)
    return {
        "case": f"{B} sample{'s' if B > 1 else ''} x N = {N}",
        "chunk": chunk if B > 1 else "-",
        "beta": beta,
        "diffphys_flips_per_s": float(np.median(jax_rates)),
        "numpy_flips_per_s": float(np.median(np_rates)),
        "ratio": float(np.median(ratios)),
        "ratio_range": (float(ratios.min()), float(ratios.max())),
        "compile_s": max(t_first - float(np.median(t_jax)), 0.0),
        "sweeps": (n_jax, n_np),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer sweeps (smoke test)")
    p.add_argument(
        "--chunks",
        default="8",
        help="comma-separated chunk sizes for the batched case (1024 = all samples at once)",
    )
    p.add_argument(
        "--native-only", action="store_true", help="only the native-kernel table (no jax rows)"
    )
    args = p.parse_args(argv)
    if args.native_only:
        native_table(args.quick)
        return
    scale = 0.25 if args.quick else 1.0
    batched = (1024, 256, 1.0, max(2, int(20 * scale)), max(1, int(2 * scale)))
    cases = [(*batched, int(c)) for c in args.chunks.split(",")]
    cases.append((1, 2048, 1.0, max(2, int(200 * scale)), max(1, int(20 * scale))))
    rows = [bench(*c) for c in cases]
    print(
        f"\nSK local-field Metropolis, {datetime.date.today()}, {platform.machine()} "
        f"({jax.default_backend()}, {jax.device_count()} device(s), jax {jax.__version__})\n"
    )
    print(
        "| case | chunk | beta | diffphys flips/s | NumPy flips/s | ratio (min-max) "
        "| compile (s) | sweeps (jax, np) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['chunk']} | {r['beta']:g} | {r['diffphys_flips_per_s']:.3g} | "
            f"{r['numpy_flips_per_s']:.3g} | {r['ratio']:.1f}x ({r['ratio_range'][0]:.1f}-"
            f"{r['ratio_range'][1]:.1f}) | {r['compile_s']:.1f} | "
            f"{r['sweeps']} |"
        )
    native_table(args.quick)


if __name__ == "__main__":
    main()
