"""Dense pairwise Potts sequential sweeps: site updates per nanosecond, side by side.

    python benchmarks/potts_throughput.py [--quick] [--rules metropolis,heat_bath]

Compares, in one process and on the same models and states (`PairwisePotts.sample` with
q = 4, field scale 0.3 and coupling scale 1/sqrt(N), beta = 1):

- `native`: `models.potts_sequential(rule, backend="native", sweeps_per_step=k)`: C++ XLA FFI
  call, all k sweeps of all chains in one call (OpenMP over the chains of a vmapped batch), the
  local-field table F_j(a) updated in O(N q) per changed site;
- `generic`: `sampling.metropolis(order="sequential")` / `sampling.heat_bath(order=
  "sequential")` inside `sampling.run` (the model-agnostic kernel: `site_energies`, O(N q)
  per visited site), vmapped over the batch;
- `numba`: a serial numba loop written for this comparison: the same algorithm as the native
  kernel (the same field table and update, NumPy's legacy generator inside `njit`).

Cases: one N = 512 sample, and a batch of 256 samples x N = 64 (one model per chain). Each
method is timed `--repeats` times round-robin from the same equilibrated state; rates are
medians, ratios the medians of the per-repeat ratios (per wall second and per CPU second,
`time.process_time`, all threads of the process); compile time (first call minus a timed
call) is apart. "Site updates" are attempted moves (Metropolis) or redraws (heat bath).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffphys import _native, sampling
from diffphys.models import PairwisePotts, potts_sequential

Q = 4
BETA = 1.0

try:
    import numba
except ImportError:  # numba is optional (the `bench` extra)
    numba = None

if numba is not None:

    @numba.njit(cache=False)
    def numba_sweeps(J, s, F, beta, n_sweeps, heat_bath, seed):
        """Serial sequential sweeps over chains b with J[b] (B, N, N, q, q), in place."""
        np.random.seed(seed)  # noqa: NPY002 (numba supports the legacy API in njit)
        B, N = s.shape
        q = F.shape[2]
        p = np.empty(q)
        for b in range(B):
            for _ in range(n_sweeps):
                for i in range(N):
                    o = s[b, i]
                    if heat_bath:
                        m = F[b, i, 0]
                        for a in range(1, q):
                            m = max(m, F[b, i, a])
                        tot = 0.0
                        for a in range(q):
                            tot += math.exp(beta * (F[b, i, a] - m))
                            p[a] = tot
                        u = np.random.random() * tot  # noqa: NPY002
                        nb = q - 1
                        for a in range(q - 1):
                            if u < p[a]:
                                nb = a
                                break
                        if nb == o:
                            continue
                    else:
                        nb = (o + 1 + np.random.randint(0, q - 1)) % q  # noqa: NPY002
                        de = beta * (F[b, i, o] - F[b, i, nb])
                        if de > 0 and np.random.random() >= math.exp(-de):  # noqa: NPY002
                            continue
                    for j in range(N):
                        for a in range(q):
                            F[b, j, a] += J[b, i, j, nb, a] - J[b, i, j, o, a]
                    s[b, i] = nb


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def bench(rule: str, B: int, N: int, n_native: int, n_generic: int, n_numba: int, repeats: int):
    nat = potts_sequential(BETA, rule=rule, backend="native", sweeps_per_step=n_native)
    gen = (sampling.metropolis if rule == "metropolis" else sampling.heat_bath)(
        BETA, order="sequential"
    )

    @jax.jit
    def init(key):
        k_m, k_x = jax.random.split(key)
        ms = jax.vmap(
            lambda k: PairwisePotts.sample(k, N, Q, scale_h=0.3, scale_J=1 / math.sqrt(N))
        )(jax.random.split(k_m, B))
        xs = jax.random.randint(k_x, (B, N), 0, Q).astype(jnp.int8)
        return ms, jax.vmap(nat.init)(xs, ms)

    def batched(step):
        if B == 1:
            return jax.jit(
                lambda k, ms, st: jax.tree.map(
                    lambda a: a[None], step(k, *jax.tree.map(lambda a: a[0], (st, ms)))
                )
            )
        return jax.jit(lambda k, ms, st: jax.vmap(step)(jax.random.split(k, B), st, ms))

    go_native = batched(lambda k, st, m: nat.step(k, st, m))  # (state, info)
    go_generic = batched(lambda k, st, m: sampling.run(k, gen, st, m, n_generic)[0])
    ms, st = jax.block_until_ready(init(jax.random.key(0)))
    # equilibrate, and the compile times (first call minus a timed call below)
    (st, info), w_first_nat, _ = _timed(
        lambda: jax.block_until_ready(go_native(jax.random.key(1), ms, st))
    )
    gst = jax.vmap(gen.init)(st.x, ms)
    _, w_first_gen, _ = _timed(
        lambda: jax.block_until_ready(go_generic(jax.random.key(1), ms, gst))
    )
    J = np.array(ms.J, np.float32)  # writable: numba compiles once (read-only is a new type)
    if numba is not None:
        numba_sweeps(
            J[:1, :4, :4].copy(),
            np.zeros((1, 4), np.int8),
            np.zeros((1, 4, Q), np.float32),
            BETA,
            1,
            rule == "heat_bath",
            0,
        )
    rates = {"native": [], "generic": [], "numba": []}
    t_nat, t_gen = [], []
    for r in range(repeats):
        (st, info), w, c = _timed(
            lambda: jax.block_until_ready(go_native(jax.random.key(2 + r), ms, st))
        )
        t_nat.append(w)
        rates["native"].append((B * N * n_native / w, B * N * n_native / c))
        gst = jax.vmap(gen.init)(st.x, ms)
        _, w, c = _timed(lambda: jax.block_until_ready(go_generic(jax.random.key(2 + r), ms, gst)))
        t_gen.append(w)
        rates["generic"].append((B * N * n_generic / w, B * N * n_generic / c))
        if numba is not None:
            s = np.asarray(st.x, np.int8).copy()
            F = np.asarray(st.field, np.float32).copy()
            _, w, c = _timed(lambda: numba_sweeps(J, s, F, BETA, n_numba, rule == "heat_bath", r))
            rates["numba"].append((B * N * n_numba / w, B * N * n_numba / c))
    rates = {k: np.asarray(v) for k, v in rates.items() if v}
    med = {k: np.median(v, axis=0) for k, v in rates.items()}
    ratios = {k: np.median(rates["native"] / v, axis=0) for k, v in rates.items() if k != "native"}
    return {
        "case": f"{B} sample{'s' if B > 1 else ''} x N = {N}",
        "rule": rule,
        "rates": med,
        "ratios": ratios,
        "compile_s": (
            max(w_first_nat - float(np.median(t_nat)), 0.0),
            max(w_first_gen - float(np.median(t_gen)), 0.0),
        ),
        "sweeps": (n_native, n_generic, n_numba),
        "acceptance": float(jnp.mean(info.acceptance_rate)),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer sweeps (smoke test)")
    p.add_argument("--rules", default="metropolis,heat_bath")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if not _native.available():
        print(_native.reason())
        return
    s = 0.1 if args.quick else 1.0
    rows = []
    for rule in args.rules.split(","):
        rows.append(
            bench(
                rule,
                1,
                512,
                max(5, int(400 * s)),
                max(1, int(10 * s)),
                max(2, int(200 * s)),
                args.repeats,
            )
        )
        rows.append(
            bench(
                rule,
                256,
                64,
                max(5, int(200 * s)),
                max(1, int(4 * s)),
                max(2, int(100 * s)),
                args.repeats,
            )
        )
    has_numba = numba is not None
    peers = ["native", "generic"] + (["numba"] if has_numba else [])
    print(
        f"\nDense Potts sequential sweeps (q = {Q}, beta = {BETA:g}), {datetime.date.today()}, "
        f"{platform.machine()}, jax {jax.__version__}, load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    head = " | ".join(f"{p} updates/ns (wall, CPU)" for p in peers)
    rat = " | ".join(f"native / {p} (wall, CPU)" for p in peers[1:])
    print(
        f"| case | rule | acc. | {head} | {rat} | compile native, generic (s) | sweeps (nat, gen, nb) |"
    )
    print("|---" * (5 + 2 * len(peers) - 1) + "|")
    for r in rows:
        cells = " | ".join(
            f"{r['rates'][p][0] * 1e-9:.3g}, {r['rates'][p][1] * 1e-9:.3g}" for p in peers
        )
        rc = " | ".join(f"{r['ratios'][p][0]:.1f}x, {r['ratios'][p][1]:.1f}x" for p in peers[1:])
        print(
            f"| {r['case']} | {r['rule']} | {r['acceptance']:.2f} | {cells} | {rc} | "
            f"{r['compile_s'][0]:.2f}, {r['compile_s'][1]:.2f} | {r['sweeps']} |"
        )


if __name__ == "__main__":
    main()
