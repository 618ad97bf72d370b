"""`diffphys bench --all`: one command that measures every Ising sweep kernel on this machine.

Spin-flip attempts per nanosecond (wall clock and per process-CPU second, the latter robust
to other jobs on a shared machine) of each kernel on each size, timed on already compiled
chains (compile time apart), with the machine, date, jax version and load average, written
as a markdown table. Kernels:

- `fused-native`: `models.fused_checkerboard(backend="native")`, the C++ XLA FFI kernel (CPU);
- `bitpacked-jax`: `models.ising_checkerboard_metropolis`, the pure-JAX bit-packed kernel;
- `fused-pallas`: `models.fused_checkerboard(backend="pallas")`, measured only when a GPU is
  present (on a CPU it would run in interpret mode); otherwise the table says so and the GPU
  target of issue 12 (>= 300 flips/ns at L >= 4096 on one H100-class GPU) stays open.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

SIZES = {"default": (256, 1024), "quick": (16,)}
SIZES_3D = {"default": (32, 64), "quick": ()}  # quick: one compile per kernel
GPU_SIZES = {"default": (1024, 4096), "quick": (64,)}
BUDGET = {"default": 1e8, "quick": 2e4}  # flip attempts per timed run
BETA = 0.44
GPU_TARGET = "2D Pallas kernel >= 300 flips/ns at L >= 4096 on one H100-class GPU"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _runner(alg, lattice, budget, sweeps_per_step):
    """A compiled chain of about `budget` flip attempts: (run, flips, compile seconds)."""
    import jax
    import numpy as np

    from . import sampling
    from .models import Ising

    model = Ising(lattice)
    n_sites = int(np.prod(lattice))
    n_steps = max(1, int(budget / n_sites / sweeps_per_step))

    def chain(k, x, model):  # the model an argument: XLA does not constant-fold its couplings
        state = alg.init(x, model)
        state, _ = sampling.run(k, alg, state, model, n_steps, beta=BETA)
        return state.energy

    x, k = model.random_state(key=jax.random.key(1)), jax.random.key(0)
    t = time.perf_counter()
    compiled = jax.jit(chain).lower(k, x, model).compile()
    compile_s = time.perf_counter() - t
    return (
        lambda: jax.block_until_ready(compiled(k, x, model)),
        n_steps * sweeps_per_step * n_sites,
        compile_s,
    )


def _time(run, repeats: int) -> tuple[float, float]:
    run()  # warm up
    best_w = best_c = float("inf")
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        run()
        best_w = min(best_w, time.perf_counter() - w)
        best_c = min(best_c, time.process_time() - c)
    return best_w, best_c


def kernels(gpu: bool, quick: bool):
    """(name, make_algorithm, sweeps_per_step, lattices, reason-if-skipped)."""
    from . import _native
    from .models import fused_checkerboard, ising_checkerboard_metropolis

    mode = "quick" if quick else "default"
    cpu_lattices = [(L, L) for L in SIZES[mode]] + [(L, L, L) for L in SIZES_3D[mode]]
    k = 10
    out = [
        (
            "fused-native",
            lambda: fused_checkerboard(
                BETA, sweeps_per_step=k, backend="native", couplings="uniform"
            ),
            k,
            cpu_lattices,
            None if _native.available() else _native.reason(),
        ),
        (
            "bitpacked-jax",
            lambda: ising_checkerboard_metropolis(BETA),
            1,
            [(L, L) for L in SIZES[mode]],
            None,
        ),
        (
            "fused-pallas",
            lambda: fused_checkerboard(
                BETA, sweeps_per_step=k, backend="pallas", couplings="uniform"
            ),
            k,
            [(L, L) for L in GPU_SIZES[mode]],
            None if gpu else "no GPU available: not measured (interpret mode on a CPU)",
        ),
    ]
    return out


def run_all(*, quick: bool = False, repeats: int = 3, out: Path | None = None) -> str:
    """Measure every kernel at every size; return (and write to `out`) a markdown report."""
    import jax

    gpu = jax.default_backend() == "gpu"
    mode = "quick" if quick else "default"
    load0 = os.getloadavg()
    lines = [
        "# diffphys bench --all: Ising checkerboard Metropolis sweeps",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {_cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}; jax {jax.__version__}, backend {jax.default_backend()}, "
        f"devices {', '.join(d.device_kind for d in jax.devices())}",
        f"- load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}",
        f"- beta = {BETA}, {mode} sizes, best of {repeats} timed runs of compiled chains "
        f"(~{BUDGET[mode]:.0e} flip attempts each)",
        "- GPU: "
        + (
            f"present ({jax.devices()[0].device_kind}); target: {GPU_TARGET}"
            if gpu
            else f"none available; the GPU targets stay open ({GPU_TARGET})"
        ),
        "",
        "| kernel | lattice | flips/ns (wall) | flips/ns per CPU-s | compile s | load | note |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for name, make, k, lattices, skip in kernels(gpu, quick):
        for lattice in lattices:
            label = "x".join(map(str, lattice))
            if skip:
                row = f"| {name} | {label} | - | - | - | - | {skip} |"
            else:
                run, flips, compile_s = _runner(make(), lattice, BUDGET[mode], k)
                w, c = _time(run, repeats)
                row = (
                    f"| {name} | {label} | {flips / w / 1e9:.3g} | {flips / c / 1e9:.3g} "
                    f"| {compile_s:.2f} | {os.getloadavg()[0]:.2f} | |"
                )
            lines.append(row)
            print(row, flush=True)
    text = "\n".join(lines) + "\n"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"\nwritten to {out}")
    return text
