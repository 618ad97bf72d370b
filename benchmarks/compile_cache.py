"""Time to first result of `diffphys run` twice with one config: the persistent cache at work.

Runs `diffphys run NAME --set ...` twice, each in a fresh process with the same fresh
compilation cache folder (`--cache-dir`) and a fresh output folder, and reports per run: the
wall and CPU time of the whole process, the time of `import diffphys`, the time XLA spent
in backend compilation *or loading from the cache* (the sum of JAX's
`/jax/core/compile/backend_compile_duration` events), and the cache hits and misses
(`/jax/compilation_cache/cache_hits` / `cache_misses`). A third run with the cache disabled
(`--cache-dir ""`) is the "before". Run:

    python benchmarks/compile_cache.py [--name ising2d] [--set T=[2.0,2.5] --set ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import diffphys  # noqa: F401
t_import = time.perf_counter() - t0
from jax import monitoring
stats = {"compile_s": 0.0, "hits": 0, "misses": 0}
def _dur(event, secs, **kw):
    if event == "/jax/core/compile/backend_compile_duration":
        stats["compile_s"] += secs
def _ev(event, **kw):
    if event == "/jax/compilation_cache/cache_hits":
        stats["hits"] += 1
    elif event == "/jax/compilation_cache/cache_misses":
        stats["misses"] += 1
monitoring.register_event_duration_secs_listener(_dur)
monitoring.register_event_listener(_ev)
from diffphys import cli
rc = cli.main(sys.argv[1:])
stats.update(import_s=t_import, rc=rc)
print("STATS " + json.dumps(stats))
"""


def one_run(args: list[str]) -> dict:
    w0 = time.perf_counter()
    before = os.times()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True)
    after = os.times()
    wall = time.perf_counter() - w0
    line = [x for x in proc.stdout.splitlines() if x.startswith("STATS ")]
    if proc.returncode or not line:
        raise RuntimeError(proc.stderr[-3000:])
    out = json.loads(line[-1][6:])
    out["wall_s"] = wall
    out["cpu_s"] = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", default="ising2d")
    p.add_argument("--set", action="append", default=[])
    a = p.parse_args()
    sets = [x for s in a.set for x in ("--set", s)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        for label, cdir in [
            ("no cache", ""),
            ("first (cold cache)", cache),
            ("second (warm cache)", cache),
        ]:
            out = os.path.join(tmp, f"out{len(rows)}")
            args = ["run", a.name, "--out", out, "--no-progress", "--cache-dir", cdir, *sets]
            r = one_run(args)
            r["label"] = label
            rows.append(r)
            print(r, flush=True)
        n_files = sum(len(f) for _, _, f in os.walk(cache))
    print()
    print(
        f"date {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, load average {os.getloadavg()}, "
        f"command: diffphys run {a.name} {' '.join(sets)}; cache files: {n_files}"
    )
    print()
    print("| run | wall s | CPU s | import s | compile or cache load s | cache hits | misses |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['label']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['import_s']:.1f} | "
            f"{r['compile_s']:.2f} | {r['hits']} | {r['misses']} |"
        )


if __name__ == "__main__":
    main()
