"""SK Metropolis throughput: diffphys `sk_metropolis` vs NumPy, same algorithm, same command.

    python benchmarks/sk_throughput.py [--quick]

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
    args = p.parse_args(argv)
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


if __name__ == "__main__":
    main()
