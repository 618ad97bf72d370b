"""SK Metropolis throughput: diffphys `sk_metropolis` vs NumPy, same algorithm, same command.

    python benchmarks/sk_throughput.py [--quick]

Algorithm on both sides: sequential single-spin-flip Metropolis sweeps with the local fields
f = J s kept in memory; an accepted flip of spin i updates all fields with row i of J (O(N)).
The acceptance test is beta * 2 s_i f_i < xi with xi ~ Exp(1) drawn once per sweep.

- NumPy (batched case): the sweep loops over spins in Python and is vectorised over the disorder
  samples, updating only the samples that accepted (the best NumPy formulation we know).
- NumPy (single sample): a Python loop over spins with a NumPy row update per accepted flip.
- diffphys: `models.sk_metropolis()` inside `sampling.run`, `jax.vmap`-ped over the samples
  (the single-sample case runs one unbatched chain).

Reported: spin-flip attempts per second (steady state, compile excluded), compile time, ratio.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffphys import models, sampling


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


def diffphys_runner(B: int, N: int, beta: float):
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

        @jax.jit
        def go(key, ms, states):
            if B == 1:  # one chain: no vmap, so a rejected flip skips the row update
                single = jax.tree.map(lambda a: a[0], (ms, states))
                out = one(key, *single)
                return jax.tree.map(lambda a: a[None], out)
            return jax.vmap(one)(jax.random.split(key, B), ms, states)

        return go

    return init, sweeps


def bench(B: int, N: int, beta: float, n_jax: int, n_np: int) -> dict:
    init, sweeps = diffphys_runner(B, N, beta)
    ms, states = jax.block_until_ready(init(jax.random.key(0)))
    go = sweeps(n_jax)
    t0 = time.perf_counter()
    out = jax.block_until_ready(go(jax.random.key(1), ms, states))
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(go(jax.random.key(2), ms, out))
    t_jax = time.perf_counter() - t0
    compile_s = max(t_first - t_jax, 0.0)
    jax_rate = B * N * n_jax / t_jax

    J = np.asarray(ms.J, np.float32)
    s = np.asarray(out.x, np.float32)
    f = np.asarray(out.field, np.float32)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    if B == 1:
        numpy_single(J[0], s[0].copy(), f[0].copy(), beta, n_np, rng)
    else:
        numpy_batched(J, s.copy(), f.copy(), beta, n_np, rng)
    t_np = time.perf_counter() - t0
    np_rate = B * N * n_np / t_np
    return {
        "case": f"{B} sample{'s' if B > 1 else ''} x N = {N}",
        "beta": beta,
        "diffphys_flips_per_s": jax_rate,
        "numpy_flips_per_s": np_rate,
        "ratio": jax_rate / np_rate,
        "compile_s": compile_s,
        "sweeps": (n_jax, n_np),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer sweeps (smoke test)")
    args = p.parse_args(argv)
    scale = 0.25 if args.quick else 1.0
    cases = [
        (1024, 256, 1.0, max(2, int(20 * scale)), max(1, int(2 * scale))),
        (1, 2048, 1.0, max(2, int(40 * scale)), max(1, int(4 * scale))),
    ]
    rows = [bench(*c) for c in cases]
    print(
        f"\nSK local-field Metropolis, {datetime.date.today()}, {platform.machine()} "
        f"({jax.default_backend()}, {jax.device_count()} device(s), jax {jax.__version__})\n"
    )
    print(
        "| case | beta | diffphys flips/s | NumPy flips/s | ratio | compile (s) | sweeps (jax, np) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['beta']:g} | {r['diffphys_flips_per_s']:.3g} | "
            f"{r['numpy_flips_per_s']:.3g} | {r['ratio']:.1f}x | {r['compile_s']:.1f} | "
            f"{r['sweeps']} |"
        )


if __name__ == "__main__":
    main()
