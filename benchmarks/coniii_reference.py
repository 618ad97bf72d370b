"""ConIII reference solutions and timings for diffphys's inverse Ising estimators.

ConIII 3.0.1 (Lee & Daniels, J. Open Res. Softw. 7(1):3, 2019) cannot share diffphys's
environment: it needs numpy < 2, scipy < 1.12, numba < 0.61 and installs only with
`pip install --no-build-isolation coniii` with CONDA_PREFIX set (its setup.py reads it). This
script builds its own virtual environment for it (python3.11, default `/tmp/coniii-venv`) and
runs ConIII there in a subprocess.

    python benchmarks/coniii_reference.py data    # writes tests/data/coniii/*.npz + .json
    python benchmarks/coniii_reference.py bench   # times ConIII vs diffphys, markdown table
    python benchmarks/coniii_reference.py all     # both (default)

Options: `--venv PATH`, `--batch B` (problems in the batch timing, default 1000), `--reuse DIR`
(time diffphys only, against the ConIII results an earlier `bench` left in DIR), `--pl-sizes
50,100` (one pseudo-likelihood problem at each of these N, `--pl-samples` 2000 heat-bath
samples, after the N = 5 tables; `--pl-reuse DIR` reuses that ConIII half).

Reference problems (samples drawn exactly from the Boltzmann distribution, as ConIII's usage
guide does):
- `usage_guide_n5`: the usage guide's problem verbatim: `np.random.seed(0)`, N = 5,
  h, J ~ N(0, 0.1^2), 1000 samples; Enumerate, Pseudo and MPF with default settings.
- `n9`: N = 9 (the largest N whose enumeration equations ship with ConIII),
  h ~ N(0, 0.1^2), J ~ N(0, 0.25/N), 2000 samples; Enumerate, Pseudo, MPF.
- `n12`, `n20`: same distribution, N = 12 and 20, 2000 samples; Pseudo and MPF.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "coniii"
PINS = [
    "numpy<2",
    "scipy<1.12",
    "numba<0.61",
    "setuptools",
    "wheel",
    "multiprocess",
    "dill",
    "mpmath",
    "joblib",
    "matplotlib<3.9",
]

WORKER = textwrap.dedent(
    r'''
    import json, sys, time, warnings
    import numpy as np
    warnings.filterwarnings("ignore")
    import coniii
    from coniii import Enumerate, MPF, Pseudo
    from coniii.utils import bin_states, pair_corr, define_ising_helper_functions
    from importlib import import_module

    calc_e = define_ising_helper_functions()[0]

    def exact_sample(n, hJ, m):
        """Draw m exact samples; the usage guide's recipe (same rng calls)."""
        states = bin_states(n, True)
        try:
            p = import_module("coniii.ising_eqn.ising_eqn_%d_sym" % n).p(hJ)
        except ModuleNotFoundError:
            e = calc_e(states, hJ)
            p = np.exp(-(e - e.min()))
            p /= p.sum()
        return states[np.random.choice(range(2 ** n), size=m, replace=True, p=p)]

    def solve(name, sample):
        t = time.perf_counter()
        solver = {"enumerate": Enumerate, "pseudo": Pseudo, "mpf": MPF}[name](sample, iprint=False)
        x = solver.solve()
        return np.asarray(x, float), time.perf_counter() - t

    LARGE = (("n9", ("enumerate", "pseudo", "mpf")), ("n20", ("pseudo",)))
    mode, out = sys.argv[1], sys.argv[2]
    res = {}
    if mode == "data":
        problems = {}
        # ConIII usage guide, verbatim
        n = 5
        np.random.seed(0)
        h = np.random.normal(scale=.1, size=n)
        J = np.random.normal(scale=.1, size=n * (n - 1) // 2)
        hJ = np.concatenate((h, J))
        sample = exact_sample(n, hJ, 1000)
        problems["usage_guide_n5"] = (n, hJ, sample, ("enumerate", "pseudo", "mpf"))
        for n, seed, methods in ((9, 9, ("enumerate", "pseudo", "mpf")),
                                 (12, 12, ("pseudo", "mpf")), (20, 20, ("pseudo", "mpf"))):
            np.random.seed(seed)
            h = np.random.normal(scale=.1, size=n)
            J = np.random.normal(scale=np.sqrt(.25 / n), size=n * (n - 1) // 2)
            hJ = np.concatenate((h, J))
            problems["n%d" % n] = (n, hJ, exact_sample(n, hJ, 2000), methods)
        for name, (n, hJ, sample, methods) in problems.items():
            arrays = {"samples": sample.astype(np.int8), "true": hJ}
            times = {}
            for meth in methods:
                arrays[meth], times[meth] = solve(meth, sample)
            errors = {m: float(np.linalg.norm(arrays[m] - hJ)) for m in methods}
            np.savez_compressed(f"{out}/{name}.npz", **arrays)
            res[name] = {"n": n, "n_samples": int(len(sample)), "methods": list(methods),
                         "parameter_error": errors, "seconds": times}
    elif mode == "pl_large":  # Pseudo on larger N: samples written by the parent process
        inp = np.load(f"{out}/pl_large_in.npz")
        arrays = {}
        for name in inp.files:
            sample = inp[name].astype(np.int64)
            ref = Pseudo(sample, iprint=False)  # helpers compiled once, as in bench
            kw = dict(model=ref.model, calc_observables=ref.calc_observables, iprint=False,
                      get_multipliers_r=ref.get_multipliers_r,
                      calc_observables_r=ref.calc_observables_r)
            best = (float("inf"), 0.0)
            for _ in range(2):
                t, c = time.perf_counter(), time.process_time()
                arrays[name] = np.asarray(Pseudo(sample, **kw).solve(), float)
                best = min(best, (time.perf_counter() - t, time.process_time() - c))
            res[name] = best
        np.savez_compressed(f"{out}/pl_large.npz", **arrays)
    else:  # bench: one problem repeated, then a batch of problems in a Python loop
        batch = int(sys.argv[3])
        n = 5
        np.random.seed(0)
        hJ = np.concatenate((np.random.normal(scale=.1, size=n),
                             np.random.normal(scale=.1, size=n * (n - 1) // 2)))
        one = exact_sample(n, hJ, 1000)
        samples = []
        for b in range(batch):
            np.random.seed(1000 + b)
            hJb = np.concatenate((np.random.normal(scale=.1, size=n),
                                  np.random.normal(scale=.1, size=n * (n - 1) // 2)))
            samples.append(exact_sample(n, hJb, 1000))
        samples = np.stack(samples)  # int64: ConIII's numba helpers compile for one dtype
        arrays = {"one": one.astype(np.int8), "samples": samples.astype(np.int8)}
        classes = {"enumerate": Enumerate, "pseudo": Pseudo, "mpf": MPF}
        for meth, cls in classes.items():
            solve(meth, one)  # imports
            # documented usage: a new solver per data set; its constructor re-defines (and
            # numba recompiles) ConIII's Ising helper functions every time
            res["cold_" + meth] = solve(meth, one)[1]
            ref = cls(one, iprint=False)
            kw = dict(model=ref.model, calc_observables=ref.calc_observables, iprint=False)
            if meth == "pseudo":
                kw.update(get_multipliers_r=ref.get_multipliers_r,
                          calc_observables_r=ref.calc_observables_r)

            def warm(s, cls=cls, kw=kw):  # the compiled helpers reused: ConIII's best case
                t = time.perf_counter()
                x = cls(s, **kw).solve()
                return np.asarray(x, float), time.perf_counter() - t

            c = time.process_time()
            res["one_" + meth] = min(warm(one)[1] for _ in range(5))
            res["one_cpu_" + meth] = (time.process_time() - c) / 5
            t, c = time.perf_counter(), time.process_time()
            arrays[meth] = np.stack([warm(s)[0] for s in samples])
            res["batch_" + meth] = time.perf_counter() - t
            res["batch_cpu_" + meth] = time.process_time() - c
        # larger N, one problem each: the stored reference problems (helpers compiled first)
        for name, meths in LARGE:
            sample = np.load(f"{sys.argv[4]}/{name}.npz")["samples"].astype(np.int64)
            for meth in meths:
                cls = classes[meth]
                ref = cls(sample, iprint=False)
                kw = dict(model=ref.model, calc_observables=ref.calc_observables, iprint=False)
                if meth == "pseudo":
                    kw.update(get_multipliers_r=ref.get_multipliers_r,
                              calc_observables_r=ref.calc_observables_r)
                best = (float("inf"), 0.0)
                for _ in range(2):
                    t, c = time.perf_counter(), time.process_time()
                    cls(sample, **kw).solve()
                    best = min(best, (time.perf_counter() - t, time.process_time() - c))
                res[f"large_{name}_{meth}"] = best
        np.savez_compressed(f"{out}/bench.npz", **arrays)
    res["versions"] = {"coniii": coniii.__version__ if hasattr(coniii, "__version__") else
                       import_module("coniii.version").version, "numpy": np.__version__,
                       "scipy": __import__("scipy").__version__,
                       "numba": __import__("numba").__version__,
                       "python": sys.version.split()[0]}
    json.dump(res, open(f"{out}/{mode}.json", "w"), indent=1)
    '''
)


def ensure_venv(venv: Path) -> Path:
    """The venv's python, building the venv and installing ConIII 3.0.1 if needed."""
    py = venv / "bin" / "python"
    ok = py.exists() and subprocess.run(
        [str(py), "-c", "import coniii"], capture_output=True
    ).returncode == 0
    if ok:
        return py
    subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *PINS], check=True)
    env = dict(os.environ, CONDA_PREFIX=str(venv))
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-build-isolation", "coniii==3.0.1"],
        check=True,
        env=env,
    )
    return py


def run_worker(py: Path, mode: str, out: Path, *args: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    subprocess.run([str(py), f.name, mode, str(out), *args], check=True, env=env)
    return json.loads((out / f"{mode}.json").read_text())


def write_data(py: Path, venv: Path) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    res = run_worker(py, "data", DATA)
    (DATA / "data.json").unlink()
    res["command"] = "python benchmarks/coniii_reference.py data"
    res["venv"] = {"path": str(venv), "pins": PINS, "install": "CONDA_PREFIX=<venv> pip "
                   "install --no-build-isolation coniii==3.0.1"}
    res["recipe"] = __doc__.split("Reference problems")[1].strip()
    (DATA / "reference.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


def _time(fn, repeat=5):
    """Best wall time of `repeat` calls, and the CPU time (all threads) of that call."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


LARGE = (("n9", ("enumerate", "pseudo", "mpf")), ("n20", ("pseudo",)))


def bench(py: Path, batch: int, reuse: str | None = None) -> None:
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    if reuse:  # the ConIII half of an earlier run (its output folder is printed)
        out = Path(reuse)
        ref = json.loads((out / "bench.json").read_text())
    else:
        out = Path(tempfile.mkdtemp(prefix="coniii-bench-"))
        print(f"ConIII results in {out}", flush=True)
        ref = run_worker(py, "bench", out, str(batch), str(DATA))
    wall_coniii = time.perf_counter() - t0

    import jax

    from diffphys import training

    arrays = np.load(out / "bench.npz")
    fits = {
        "enumerate": training.fit_exact,
        "pseudo": training.fit_pseudolikelihood,
        "mpf": training.fit_mpf,
    }

    def vec(model):
        n = model.h.shape[-1]
        iu = np.triu_indices(n, 1)
        J = np.asarray(model.J)
        return np.concatenate([np.asarray(model.h), J[..., iu[0], iu[1]]], axis=-1)

    rows = []
    for name, fit in fits.items():
        one = arrays["one"]

        def ours_one(fit=fit, one=one):
            return jax.block_until_ready(fit(training.spin_data(one)))

        t = time.perf_counter()
        ours_one()
        compile_one = time.perf_counter() - t
        t_one = _time(ours_one, repeat=3)

        batched = jax.jit(jax.vmap(lambda d, fit=fit: fit(d)))

        def ours_batch(batched=batched):
            return jax.block_until_ready(batched(training.stack_spin_data(arrays["samples"])))

        t = time.perf_counter()
        res = ours_batch()
        compile_batch = time.perf_counter() - t
        t_batch = _time(ours_batch, repeat=2)
        diff = np.abs(vec(res.model) - arrays[name]).max()
        nan = float("nan")  # CPU times: absent from results of the script's older versions
        rows.append((name, ref["cold_" + name], ref["one_" + name],
                     ref.get("one_cpu_" + name, nan), t_one, compile_one,
                     ref["batch_" + name], ref.get("batch_cpu_" + name, nan),
                     t_batch, compile_batch - t_batch[0], diff, bool(np.all(res.converged))))
    large = []
    for problem, meths in LARGE if f"large_{LARGE[0][0]}_{LARGE[0][1][0]}" in ref else ():
        sample = np.load(DATA / f"{problem}.npz")["samples"]
        for name in meths:

            def ours(fit=fits[name], sample=sample):
                return jax.block_until_ready(fit(training.spin_data(sample)))

            t = time.perf_counter()
            res = ours()
            compile_one = time.perf_counter() - t
            ours_t = _time(ours, repeat=3)
            theirs = ref[f"large_{problem}_{name}"]
            diff = np.abs(vec(res.model) - np.load(DATA / f"{problem}.npz")[name]).max()
            large.append((problem, name, theirs, ours_t, compile_one - ours_t[0], diff,
                          bool(res.converged)))
    print(f"ConIII subprocess wall time {wall_coniii:.1f} s; versions {ref['versions']}")
    print(f"load average at the start {load_start}, at the end {os.getloadavg()}; "
          f"{platform.processor() or platform.machine()}; "
          f"jax {jax.__version__} on {jax.devices()[0].platform}")
    print()
    print(f"N = 5, one problem and a batch of {batch} (wall / CPU seconds; ratio = ConIII time "
          "/ diffphys time)")
    print()
    print("| method | ConIII one, new solver (ms) | ConIII one, reused helpers (ms, wall / CPU) "
          "| diffphys one (ms, wall / CPU) | ratio wall / CPU | ConIII batch (s, wall / CPU) | "
          "diffphys batch (s, wall / CPU) | ratio wall / CPU | diffphys compile one / batch (s)"
          " | max abs diff vs ConIII (batch) | all converged |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, c0, c1, c1c, d1, k1, cb, cbc, db, kb, diff, conv in rows:
        print(f"| {name} | {1e3 * c0:.0f} | {1e3 * c1:.1f} / {1e3 * c1c:.1f} | "
              f"{1e3 * d1[0]:.1f} / {1e3 * d1[1]:.1f} | {c1 / d1[0]:.1f}x / {c1c / d1[1]:.1f}x "
              f"| {cb:.1f} / {cbc:.1f} | {db[0]:.2f} / {db[1]:.2f} | {cb / db[0]:.0f}x / "
              f"{cbc / db[1]:.0f}x | {k1:.1f} / {kb:.1f} | {diff:.1e} | {conv} |")
    if not large:
        return
    print()
    print("Larger N, one stored reference problem each (ConIII: helpers reused, best of 2; "
          "diffphys: spin_data + fit, best of 3)")
    print()
    print("| problem | method | ConIII (ms, wall / CPU) | diffphys (ms, wall / CPU) | ratio wall /"
          " CPU | diffphys compile (s) | max abs diff vs stored ConIII | converged |")
    print("|---|---|---|---|---|---|---|---|")
    for problem, name, c, d, k, diff, conv in large:
        print(f"| {problem} | {name} | {1e3 * c[0]:.1f} / {1e3 * c[1]:.1f} | {1e3 * d[0]:.1f} / "
              f"{1e3 * d[1]:.1f} | {c[0] / d[0]:.1f}x / {c[1] / d[1]:.1f}x | {k:.1f} | "
              f"{diff:.1e} | {conv} |")


def gibbs_samples(n: int, m: int, seed: int, sweeps: int = 200) -> np.ndarray:
    """m samples of an SK-like model (h ~ N(0, 0.1^2), J ~ N(0, 0.25/N), the reference
    problems' distribution, paramagnetic) from m independent heat-bath chains of `sweeps`
    sweeps each (numpy, float64), as int8 ±1."""
    rng = np.random.default_rng(seed)
    h = rng.normal(scale=0.1, size=n)
    J = np.triu(rng.normal(scale=np.sqrt(0.25 / n), size=(n, n)), 1)
    J = J + J.T
    s = rng.choice([-1.0, 1.0], size=(m, n))
    for _ in range(sweeps):
        for i in range(n):
            f = h[i] + s @ J[i]
            s[:, i] = np.where(rng.random(m) < 0.5 * (1 + np.tanh(f)), 1.0, -1.0)
    return s.astype(np.int8)


def bench_pl_large(py: Path, sizes, m: int, reuse: str | None = None) -> None:
    """One pseudo-likelihood problem at each N in `sizes` (m Gibbs samples): ConIII's Pseudo
    (helpers reused, best of 2) vs `fit_pseudolikelihood` (spin_data + fit, best of 3)."""
    import jax

    from diffphys import training

    load_start = os.getloadavg()
    if reuse and (Path(reuse) / "pl_large.npz").exists():
        out = Path(reuse)
        inp = np.load(out / "pl_large_in.npz")
    else:
        out = Path(tempfile.mkdtemp(prefix="coniii-pl-large-"))
        print(f"ConIII large-N Pseudo results in {out}", flush=True)
        inp = {f"n{n}": gibbs_samples(n, m, seed=n) for n in sizes}
        np.savez_compressed(out / "pl_large_in.npz", **inp)
        run_worker(py, "pl_large", out)
        inp = np.load(out / "pl_large_in.npz")
    ref = json.loads((out / "pl_large.json").read_text())
    theirs = np.load(out / "pl_large.npz")
    rows = []
    for name in inp.files:
        sample = inp[name]
        n = sample.shape[1]

        def ours(sample=sample):
            return jax.block_until_ready(training.fit_pseudolikelihood(training.spin_data(sample)))

        t = time.perf_counter()
        res = ours()
        compile_one = time.perf_counter() - t
        ours_t = _time(ours, repeat=3)
        iu = np.triu_indices(n, 1)
        vec = np.concatenate([np.asarray(res.model.h), np.asarray(res.model.J)[iu]])
        diff = np.abs(vec - theirs[name]).max()
        rows.append((n, len(sample), ref[name], ours_t, compile_one - ours_t[0], diff,
                     bool(res.converged)))
    print(f"ConIII results in {out}; load average at the start {load_start}, at the end "
          f"{os.getloadavg()}")
    print()
    print("Pseudo-likelihood, one problem at larger N (Gibbs samples; ConIII: helpers reused, "
          "best of 2; diffphys: spin_data + fit, best of 3)")
    print()
    print("| N | samples | ConIII (ms, wall / CPU) | diffphys (ms, wall / CPU) | ratio wall / CPU |"
          " diffphys compile (s) | max abs diff vs ConIII | converged |")
    print("|---|---|---|---|---|---|---|---|")
    for n, m_, c, d, k, diff, conv in rows:
        print(f"| {n} | {m_} | {1e3 * c[0]:.1f} / {1e3 * c[1]:.1f} | {1e3 * d[0]:.1f} / "
              f"{1e3 * d[1]:.1f} | {c[0] / d[0]:.1f}x / {c[1] / d[1]:.1f}x | {k:.1f} | "
              f"{diff:.1e} | {conv} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", default="all", choices=["data", "bench", "all"])
    p.add_argument("--venv", default="/tmp/coniii-venv")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--reuse", default=None, help="folder of an earlier run's ConIII results")
    p.add_argument("--pl-sizes", default="50,100",
                   help="N of the one-problem pseudo-likelihood timings ('' for none)")
    p.add_argument("--pl-samples", type=int, default=2000)
    p.add_argument("--pl-reuse", default=None, help="folder of an earlier large-N PL run")
    a = p.parse_args(argv)
    venv = Path(a.venv)
    py = ensure_venv(venv)
    if a.mode in ("data", "all"):
        write_data(py, venv)
    if a.mode in ("bench", "all"):
        bench(py, a.batch, a.reuse)
        sizes = [int(v) for v in a.pl_sizes.split(",") if v.strip()]
        if sizes:
            print()
            bench_pl_large(py, sizes, a.pl_samples, a.pl_reuse)


if __name__ == "__main__":
    sys.exit(main())
