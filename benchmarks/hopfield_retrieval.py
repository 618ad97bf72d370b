"""Pattern retrievals per second: diffphys associative memories vs NumPy, same dynamics.

    python benchmarks/hopfield_retrieval.py [--quick] [--skip-memory]

For each case, B corrupted stored patterns are retrieved with zero-temperature dynamics until
no spin flips, by diffphys (jit-compiled, batched) and by a NumPy implementation of exactly
the same dynamics (same overlap bookkeeping, O(P) per asynchronous site update; one
matrix-vector pass per synchronous step). Reported: retrievals/s of each, their ratio, and
the compile time (separately). Then the memory of one synchronous step and one asynchronous
sweep at N = 10^4, P = 10^5 (dense p = 3), from XLA's compiled memory analysis
(`jax.jit(...).lower(...).compile().memory_analysis()`), without allocating the 4 GB pattern
array.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffphys import ensemble, models

# -- NumPy reference: the same dynamics ------------------------------------------------------


def numpy_async(xi, x0, p, rng, max_sweeps=100):
    """Asynchronous T = 0 dynamics of E = -(N/p) sum m^p with incremental overlaps."""
    n = xi.shape[1]
    cols = np.ascontiguousarray(xi.T)
    x = x0.astype(np.float32).copy()
    m = xi @ x / n
    for _ in range(max_sweeps):
        flips = 0
        for i in rng.permutation(n):
            d = (-2.0 * x[i] / n) * cols[i]
            de = -(n / p) * np.sum((m + d) ** p - m**p)
            if de < 0:
                x[i] = -x[i]
                m += d
                flips += 1
        m = xi @ x / n
        if flips == 0:
            break
    return x


def numpy_sync(xi, x0, p, max_steps=100):
    """Synchronous T = 0 dynamics (all improving flips at once), binomial flip energies."""
    from math import comb

    n = xi.shape[1]
    x = x0.astype(np.float32).copy()
    for _ in range(max_steps):
        m = xi @ x / n
        de = np.zeros(n, np.float32)
        for k in range(1, p + 1):
            a = m ** (p - k)
            t = a @ xi if k % 2 else np.full(n, a.sum(), np.float32)
            de += comb(p, k) * (-2.0 * x / n) ** k * t
        de *= -(n / p)
        flip = de < 0
        if not flip.any():
            break
        x[flip] = -x[flip]
    return x


def numpy_sync_batched(xi, X0, p, max_steps=100):
    """`numpy_sync` for a batch of queries at once (matrix-matrix products), per-query stop."""
    from math import comb

    n = xi.shape[1]
    X = X0.astype(np.float32).copy()
    active = np.ones(X.shape[0], bool)
    for _ in range(max_steps):
        M = X @ xi.T / n  # (B, P)
        de = np.zeros_like(X)
        for k in range(1, p + 1):
            A = M ** (p - k)
            T = A @ xi if k % 2 else np.repeat(A.sum(1, keepdims=True), n, axis=1)
            de += comb(p, k) * (-2.0 * X / n) ** k * T
        de *= -(n / p)
        flip = (de < 0) & active[:, None]
        active = flip.any(1)
        if not active.any():
            break
        X[flip] = -X[flip]
    return X


# -- diffphys ----------------------------------------------------------------------------------


def diffphys_fn(xi, p, mode):
    model = models.DenseAssociativeMemory(xi, p=p, binary=True)

    def one(key, x0):
        x, _, _ = models.retrieve(model, x0, key=key, mode=mode, max_sweeps=100)
        return x

    # async: lax.map over the batch (a vmapped fori_loop is slow on XLA:CPU); sync: vmap
    chunk = 1 if mode == "async" else None
    # one jit around the whole batch, compiled once and reused across calls
    return jax.jit(lambda keys, x0: ensemble.run(one, keys, x0, chunk_size=chunk, jit=False))


def case(n, P, p, mode, B, rho=0.15, seed=0):
    key = jax.random.key(seed)
    xi = models.random_patterns(key, P, n)
    x0 = jax.vmap(lambda k, x: models.corrupt(k, x, rho))(
        jax.random.split(jax.random.fold_in(key, 1), B), xi[:B].astype(jnp.int8)
    )
    keys = jax.random.split(jax.random.fold_in(key, 2), B)
    fn = diffphys_fn(xi, p, mode)
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(keys, x0))  # compile + first run
    t_first = time.perf_counter() - t0
    reps = 3
    t0 = time.perf_counter()
    for _ in range(reps):
        out = jax.block_until_ready(fn(keys, x0))
    t_jax = (time.perf_counter() - t0) / reps
    ok_jax = float(np.mean(np.all(np.asarray(out) == np.asarray(xi[:B]), axis=1)))

    xi_np, x0_np = np.asarray(xi), np.asarray(x0)
    rng = np.random.default_rng(seed)
    nb = max(1, min(B, 8 if mode == "async" else 32))  # time a subset, extrapolate to B
    t0 = time.perf_counter()
    res = [
        numpy_async(xi_np, x0_np[b], p, rng) if mode == "async" else numpy_sync(xi_np, x0_np[b], p)
        for b in range(nb)
    ]
    t_np = (time.perf_counter() - t0) / nb * B
    ok_np = float(np.mean([np.all(r == xi_np[b]) for b, r in enumerate(res)]))
    t_batched = float("nan")
    if mode == "sync":  # the stronger NumPy baseline: all queries in one matrix product
        t0 = time.perf_counter()
        numpy_sync_batched(xi_np, x0_np, p)
        t_batched = time.perf_counter() - t0
    return {
        "numpy_batched_rps": B / t_batched,
        "ratio_batched": t_batched / t_jax,
        "case": f"{mode}, p={p}, N={n}, P={P}, B={B}",
        "jax_rps": B / t_jax,
        "numpy_rps": B / t_np,
        "ratio": t_np / t_jax,
        "compile_s": t_first - t_jax,
        "recall_jax": ok_jax,
        "recall_numpy": ok_np,
    }


def memory(n=10_000, P=100_000, p=3, B=1):
    """Compiled memory of one sync step (B queries) and one async sweep at (N, P)."""
    rows = []
    xi = jax.ShapeDtypeStruct((P, n), jnp.float32)
    x = jax.ShapeDtypeStruct((B, n), jnp.int8)

    def sync_step(xi, x):
        model = models.DenseAssociativeMemory(xi, p=p, binary=True)
        alg = models.zero_temperature(mode="sync")
        st = jax.vmap(alg.init, in_axes=(0, None))(x, model)
        st, _ = jax.vmap(lambda s: alg.step(jax.random.key(0), s, model))(st)
        return st.x

    def async_sweep(xi, x1):
        model = models.DenseAssociativeMemory(xi, p=p, binary=True)
        alg = models.zero_temperature(mode="async")
        st = alg.init(x1, model)
        st, _ = alg.step(jax.random.key(0), st, model)
        return st.x

    for name, fn, args in [
        (f"sync step, B={B}", sync_step, (xi, x)),
        ("async sweep", async_sweep, (xi, jax.ShapeDtypeStruct((n,), jnp.int8))),
    ]:
        ma = jax.jit(fn).lower(*args).compile().memory_analysis()
        rows.append(
            {
                "what": name,
                "arguments_GB": ma.argument_size_in_bytes / 1e9,
                "temporaries_GB": ma.temp_size_in_bytes / 1e9,
                "output_GB": ma.output_size_in_bytes / 1e9,
                "patterns_GB": P * n * 4 / 1e9,
            }
        )
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    cases = [
        (1000, 50, 2, "async", 32),
        (1000, 1000, 3, "async", 32),
        (1000, 1000, 3, "sync", 256),
        (2000, 20000, 3, "sync", 256),
    ]
    if args.quick:
        cases = [(300, 20, 2, "async", 8), (300, 300, 3, "sync", 32)]
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
    print(
        "\n| case | diffphys retrievals/s | NumPy retrievals/s (one query at a time) | ratio | "
        "NumPy batched retrievals/s | ratio vs batched | compile (s) | recall diffphys / NumPy |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for c in cases:
        r = case(*c)
        print(
            f"| {r['case']} | {r['jax_rps']:.1f} | {r['numpy_rps']:.2f} | {r['ratio']:.1f}x | "
            f"{r['numpy_batched_rps']:.1f} | {r['ratio_batched']:.1f}x | "
            f"{r['compile_s']:.2f} | {r['recall_jax']:.2f} / {r['recall_numpy']:.2f} |",
            flush=True,
        )
    if not args.skip_memory:
        print("\nMemory at N = 10^4, P = 10^5, p = 3 (XLA compiled memory analysis):\n")
        print("| what | arguments (GB) | temporaries (GB) | output (GB) | patterns alone (GB) |")
        print("|---|---|---|---|---|")
        for r in memory():
            print(
                f"| {r['what']} | {r['arguments_GB']:.3f} | {r['temporaries_GB']:.4f} | "
                f"{r['output_GB']:.6f} | {r['patterns_GB']:.1f} |"
            )


if __name__ == "__main__":
    main()
