"""Command line: `diffphys list | run NAME [--set k=v ...] [--out DIR] [--seed N] [--resume] |
bench [NAME | --all [--quick] [--out FILE]]`."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from ._errors import DiffphysError, Interrupted


def _parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise DiffphysError(f"--set expects key=value, got {item!r}.")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def _print_table(summary: dict) -> None:
    width = max((len(k) for k in summary), default=0)
    print("-" * (width + 30))
    for k, v in summary.items():
        if isinstance(v, float):
            v = f"{v:.6g}"
        elif isinstance(v, list | dict):
            v = json.dumps(v)
        print(f"{k:<{width}}  {v}")
    print("-" * (width + 30))


def _bounds(p) -> str:
    parts = []
    if p.choices is not None:
        parts.append("one of " + ", ".join(map(str, p.choices)))
    for sym, v in ((">=", p.ge), (">", p.gt), ("<=", p.le)):
        if v is not None:
            parts.append(f"{sym} {v:g}")
    return f" ({'; '.join(parts)})" if parts else ""


CACHE_ENV = "DIFFPHYS_CACHE_DIR"


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/diffphys/jax`, or `~/.cache/diffphys/jax` when XDG_CACHE_HOME is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "diffphys" / "jax"


def cache_dir(flag: str | None = None) -> Path | None:
    """The persistent compilation cache folder: the `--cache-dir` flag, else the environment
    variable `DIFFPHYS_CACHE_DIR`, else `default_cache_dir()`; an empty value disables it."""
    value = flag if flag is not None else os.environ.get(CACHE_ENV)
    if value is None:
        return default_cache_dir()
    return Path(value).expanduser() if value.strip() else None


def enable_compilation_cache(path: Path | None) -> None:
    """Turn on JAX's persistent compilation cache in `path` (None: leave it off).

    Every compilation is stored, however short (`jax_persistent_cache_min_compile_time_secs
    = 0`, `..._min_entry_size_bytes = 0`): a second run of the same experiment and config
    then loads its executables instead of compiling them.
    """
    if path is None:
        return
    import jax

    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def cmd_list(args) -> int:
    from . import experiments

    for name in experiments.names():
        exp = experiments.get(name)
        # the whole first paragraph of the docstring, wrapped (never cut off)
        summary = " ".join(exp.description.split("\n\n")[0].split()) if exp.description else ""
        lines = textwrap.wrap(summary, width=72) or [""]
        print(f"{name:<26} {lines[0]}")
        for line in lines[1:]:
            print(f"{'':<26} {line}")
        if args.verbose:
            if exp.runtime:
                print(
                    f"    expected time at the default size: {exp.runtime} "
                    "(2-core CPU, first run, compilation included)"
                )
            width = max(len(k) for k in exp.params)
            for k, p in exp.params.items():
                print(f"    {k:<{width}}  {p.kind:<11} = {json.dumps(p.default)}")
                if p.doc:
                    print(f"    {'':<{width}}    {p.doc}{_bounds(p)}")
            print()
    for module, err in experiments.BROKEN.items():
        print(f"{module:<26} BROKEN: {err!r}", file=sys.stderr)
    return 1 if experiments.BROKEN else 0


def cmd_run(args) -> int:
    from . import experiments

    out = Path(args.out) if args.out else Path("runs") / args.name
    enable_compilation_cache(cache_dir(args.cache_dir))
    try:
        experiments.get(args.name)
        experiments.run(
            args.name,
            out=out,
            seed=args.seed,
            resume=args.resume,
            progress=not args.no_progress,
            **_parse_sets(args.set),
        )
    except Interrupted as e:
        print(
            f"\ninterrupted: {e} Resume with: diffphys run {args.name} --out {out} --resume "
            f"(same --seed and --set)",
            file=sys.stderr,
        )
        return 130
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("run", None)  # provenance: in the file, not in the table
    print(f"\n{args.name}: results in {out}/ (results.nc, summary.json, figure.png)")
    _print_table(summary)
    return 0


def cmd_bench(args) -> int:
    if args.all:
        from ._bench import run_all

        out = Path(args.out) if args.out else None
        run_all(quick=args.quick, repeats=args.repeats, out=out)
        return 0
    root = Path(args.dir)
    scripts = sorted(p for p in root.glob("*.py") if not p.name.startswith("_"))
    if not args.name:
        for p in scripts:
            print(p.stem)
        return 0
    path = root / f"{args.name}.py"
    if not path.exists():
        raise DiffphysError(
            f"no benchmark {args.name!r} in {root}/; available: {', '.join(p.stem for p in scripts)}"
        )
    return subprocess.call([sys.executable, str(path), *args.extra])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="diffphys", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list the experiments")
    p.add_argument("-v", "--verbose", action="store_true", help="also show every config key")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("run", help="run an experiment")
    p.add_argument("name")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set L=[16,32,64] (repeatable)",
    )
    p.add_argument("--out", help="output folder (default: runs/NAME)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help=(
            "JAX persistent compilation cache folder, so a second run of the same experiment "
            f"and config compiles nothing (default: ${CACHE_ENV}, else "
            "$XDG_CACHE_HOME/diffphys/jax or ~/.cache/diffphys/jax; an empty value disables it)"
        ),
    )
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("bench", help="list or run the benchmarks in ./benchmarks")
    p.add_argument("name", nargs="?")
    p.add_argument("extra", nargs=argparse.REMAINDER)
    p.add_argument("--dir", default="benchmarks")
    p.add_argument(
        "--all",
        action="store_true",
        help="measure every Ising sweep kernel (flips/ns, markdown table; GPU kernels if a GPU "
        "is present)",
    )
    p.add_argument("--quick", action="store_true", help="with --all: tiny sizes (a smoke test)")
    p.add_argument("--repeats", type=int, default=3, help="with --all: timed runs per case")
    p.add_argument("--out", help="with --all: also write the markdown table to this file")
    p.set_defaults(func=cmd_bench)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DiffphysError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `diffphys list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
