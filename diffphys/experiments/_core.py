"""Experiments: config -> xarray.Dataset -> summary + figure, checkpointed task by task.

An experiment is registered with `@experiment(name, defaults=...)` on a function
`fn(ctx: RunContext, cfg: dict) -> xarray.Dataset`, plus `summary(ds) -> dict` and
`figure(ds) -> matplotlib Figure`. Inside, every expensive piece of work goes through
`ctx.task(name, fn)`: its result is checkpointed, so an interrupted run (SIGINT/SIGTERM)
resumes where it stopped, and uses `ctx.key(name)`, so the result is the same whatever the
order of interruptions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import signal
import threading
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .. import io
from .._errors import ConfigError, Interrupted, UnknownExperimentError

REGISTRY: dict[str, Experiment] = {}


@dataclasses.dataclass(frozen=True)
class Param:
    """One config key of an experiment: its default, a one-line description and its bounds.

    The type comes from the default (`int`, `float`, `bool`, `str`, or a list of one of
    them); bounds apply to every element of a list. Everything is checked by
    `resolve_config` before the experiment computes anything.

    **Arguments:**

    - `default`: the value at the default (CPU-friendly) size.
    - `doc`: a one-line description shown by `diffphys list -v`.
    - `ge` / `gt` / `le`: inclusive lower, exclusive lower and inclusive upper bounds.
    - `choices`: the allowed values (for strings, or each element of a list of strings).
    - `nonempty`: a list must have at least one element.
    """

    default: Any
    doc: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    choices: tuple | None = None
    nonempty: bool = True

    @property
    def kind(self) -> str:
        """`"int"`, `"float"`, `"bool"`, `"str"` or `"list[...]"` of one of them."""
        d = self.default
        if isinstance(d, list | tuple):
            inner = {_scalar_kind(v) for v in d} or {"float"}
            inner = {"float"} if inner == {"int", "float"} else inner
            return f"list[{inner.pop() if len(inner) == 1 else 'any'}]"
        return _scalar_kind(d)


def _scalar_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    return "any"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment: its name, description, documented parameters, the function
    that computes its dataset, and its summary and figure functions (see `experiment`)."""

    name: str
    description: str
    params: dict[str, Param]
    compute: Callable[[RunContext, dict], Any]
    summary: Callable[[Any], dict]
    figure: Callable[[Any], Any]
    runtime: str = ""
    validate: Callable[[dict], None] | None = None

    @property
    def defaults(self) -> dict[str, Any]:
        """The default config: `{key: default}`."""
        return {k: p.default for k, p in self.params.items()}


def experiment(
    name: str,
    *,
    params: dict[str, Param | Any] | None = None,
    defaults: dict[str, Any] | None = None,
    summary,
    figure,
    runtime: str = "",
    validate: Callable[[dict], None] | None = None,
):
    """Decorator registering `fn(ctx, cfg) -> xarray.Dataset` as experiment `name`.

    **Arguments:**

    - `params`: `{key: Param(default, doc, bounds...)}`; a bare value is a `Param` without a
      description (`defaults=` is the same, kept for experiments written before `Param`).
    - `summary` / `figure`: `summary(ds) -> dict` and `figure(ds) -> matplotlib Figure`.
    - `runtime`: the expected time at the default size on a 2-core CPU (`diffphys list -v`),
      from the CPU seconds (user + system, compilation included) that a first run measured; an
      idle 2-core machine's wall time is about that or less (ising2d: 134 CPU-s, 114 s wall).
    - `validate`: `validate(cfg)` raising `ConfigError` for constraints between keys (run before
      anything compiles, after each key passed its own `Param` checks).
    """
    if (params is None) == (defaults is None):
        raise ValueError(f"experiment {name!r}: give exactly one of params= and defaults=")
    spec = {k: v if isinstance(v, Param) else Param(v) for k, v in (params or defaults).items()}

    def register(fn):
        if name in REGISTRY:
            raise ValueError(f"experiment {name!r} registered twice")
        doc = (fn.__doc__ or "").strip()
        REGISTRY[name] = Experiment(name, doc, spec, fn, summary, figure, runtime, validate)
        return fn

    return register


def get(name: str) -> Experiment:
    """The registered experiment `name` (its params, summary and figure functions), or an
    `UnknownExperimentError` that lists the registered names."""
    from . import _discover

    _discover()
    if name not in REGISTRY:
        raise UnknownExperimentError(
            f"unknown experiment {name!r}. Available: {', '.join(sorted(REGISTRY))} "
            f"(see `diffphys list`)."
        )
    return REGISTRY[name]


def _parse(key: str, text: str, default: Any) -> Any:
    """Parse a `--set key=value` string: JSON, or a bare comma-separated list."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if isinstance(default, list | tuple):
        items = [v.strip() for v in text.strip("[]()").split(",") if v.strip()]
        try:
            return [json.loads(v) for v in items]
        except json.JSONDecodeError:
            if all(isinstance(d, str) for d in default):
                return items
    raise ConfigError(f"cannot parse {key}={text!r}; expected a value like {json.dumps(default)}.")


def _check_scalar(key: str, value: Any, kind: str, p: Param) -> Any:
    """One value against the kind and bounds of `p`; returns it converted to the kind."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}.")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string like {p.default!r}, got {value!r}.")
    elif kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}.")
        if not np.isfinite(value):
            raise ConfigError(f"{key} must be finite, got {value!r}.")
        if kind == "int":
            if float(value) != int(value):
                raise ConfigError(f"{key} must be an integer, got {value!r}.")
            value = int(value)
        else:
            value = float(value)
        if p.ge is not None and value < p.ge:
            raise ConfigError(f"{key} must be >= {p.ge:g}, got {value!r}.")
        if p.gt is not None and value <= p.gt:
            raise ConfigError(f"{key} must be > {p.gt:g}, got {value!r}.")
        if p.le is not None and value > p.le:
            raise ConfigError(f"{key} must be <= {p.le:g}, got {value!r}.")
    if p.choices is not None and value not in p.choices:
        raise ConfigError(f"{key} must be one of {list(p.choices)}, got {value!r}.")
    return value


def _coerce(key: str, value: Any, p: Param | Any) -> Any:
    """Parse a `--set key=value` string (or check a Python value) against its `Param`."""
    p = p if isinstance(p, Param) else Param(p)
    if isinstance(value, str) and p.kind != "str":
        value = _parse(key, value, p.default)
    kind = p.kind
    if not kind.startswith("list"):
        return _check_scalar(key, value, kind, p)
    if not isinstance(value, list | tuple):
        value = [value]
    if p.nonempty and len(value) == 0:
        raise ConfigError(f"{key} must be a non-empty list like {json.dumps(p.default)}.")
    inner = kind[5:-1]
    return [_check_scalar(f"every element of {key}", v, inner, p) for v in value]


def resolve_config(exp: Experiment, overrides: dict[str, Any]) -> dict[str, Any]:
    """The experiment's defaults updated with `overrides`, every key checked against its
    `Param` (type, bounds, choices), then the experiment's own cross-key `validate`."""
    unknown = sorted(set(overrides) - set(exp.params))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {unknown} for experiment {exp.name!r}. "
            f"Valid keys: {', '.join(sorted(exp.params))}."
        )
    cfg = dict(exp.defaults)
    for k, v in overrides.items():
        cfg[k] = _coerce(k, v, exp.params[k])
    if exp.validate is not None:
        exp.validate(cfg)
    return cfg


class RunContext:
    """Keys, checkpoints, progress and interruption for one experiment run."""

    def __init__(self, seed: int, ckpt_dir: Path | None, progress: bool = False):
        self.seed = int(seed)
        self.ckpt_dir = ckpt_dir
        self.progress = progress
        self._stop = threading.Event()
        self._bar = None
        self.n_tasks_run = 0

    def key(self, *names: Any):
        """A PRNG key that depends only on the seed and `names` (stable across runs)."""
        k = jax.random.key(self.seed)
        for name in names:
            k = jax.random.fold_in(k, zlib.crc32(str(name).encode()) & 0x7FFFFFFF)
        return k

    def set_total(self, n: int) -> None:
        """Declare the number of tasks (for the progress bar)."""
        if self.progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=n, unit="task", dynamic_ncols=True)

    def task(self, name: str, fn: Callable[[], Any], like: Any = None) -> Any:
        """Return `fn()`, computed once: its result (a pytree of arrays) is checkpointed.

        `like` gives the pytree structure to restore into (default: a dict of arrays as
        returned). After the checkpoint is written, a pending SIGINT/SIGTERM stops the run.
        """
        path = None if self.ckpt_dir is None else self.ckpt_dir / _safe(name)
        if path is not None and path.exists():
            out = io.load_checkpoint(path, like=like)
        else:
            out = jax.tree.map(np.asarray, jax.device_get(fn()))
            if path is not None:
                io.save_checkpoint(path, out)
            self.n_tasks_run += 1
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(name)
        if self._stop.is_set():
            raise Interrupted(f"stopped after task {name!r}; checkpoint saved.")
        return out

    def request_stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_=." else "_" for c in name)


@contextlib.contextmanager
def _signals(ctx: RunContext):
    """SIGINT/SIGTERM ask the run to stop at the next checkpoint; a second SIGINT aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if ctx._stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        ctx.request_stop()

    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _check_out(out: Path) -> None:
    """Fail early, in one line, when `out` cannot hold the results."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file; give a folder (new or existing).")
    parent = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: cannot write in {parent}; choose a writable folder.")
    free = shutil.disk_usage(parent).free
    if free < _MIN_FREE_BYTES:
        raise ConfigError(
            f"--out {out}: only {free / 2**20:.0f} MiB free on that disk; free some space or "
            "choose another folder."
        )


_MIN_FREE_BYTES = 64 * 2**20


def _config_diff(saved: dict, now: dict) -> str:
    """`key: saved -> now` for every differing entry of two run descriptions."""
    diffs = []
    for k in sorted(set(saved) | set(now)):
        a, b = saved.get(k), now.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _config_diff(a, b)
            if inner:
                diffs.append(inner)
        elif a != b:
            diffs.append(f"{k}: {json.dumps(a)} -> {json.dumps(b)}")
    return "; ".join(diffs)


def describe(exp: Experiment, cfg: dict, seed: int) -> dict:
    """The provenance of a run: experiment, config, seed, versions, backend and time."""
    from .. import __version__

    return {
        "experiment": exp.name,
        "config": io.to_builtin(cfg),
        "seed": int(seed),
        "diffphys_version": __version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def run(
    name: str,
    *,
    out: str | Path | None = None,
    seed: int = 0,
    resume: bool = False,
    progress: bool = False,
    **overrides,
):
    """Run experiment `name` and return its `xarray.Dataset`.

    Everything is validated before anything compiles: the config (every key against its
    `Param`, then the experiment's cross-key checks) and the output folder.

    **Arguments:**

    - `out`: folder for `results.nc`, `summary.json`, `figure.png` and checkpoints
      (`out/.checkpoints`); `None` keeps everything in memory.
    - `seed`: the run's seed; every random number derives from it.
    - `resume`: continue from the checkpoints in `out` (the config must be the same).
    - `**overrides`: config values (see `diffphys list -v` / `Experiment.params`).

    **Returns:** the dataset, with CF attributes (`long_name`, `units` on every variable,
    `ancillary_variables` linking each `X_err` to `X`) and the provenance in its global
    attributes (`experiment`, `config`, `seed`, versions); `summary.json` repeats the provenance
    under `"run"`.
    """
    exp = get(name)
    cfg = resolve_config(exp, overrides)
    ckpt = None
    created_ckpt = False
    if out is not None:
        out = Path(out)
        _check_out(out)
        out_existed = out.exists()
        ckpt = out / ".checkpoints"
        meta = io.to_builtin({"experiment": name, "seed": int(seed), "config": cfg})
        meta_path = ckpt / "run.json"
        if resume:
            if not meta_path.exists():
                raise ConfigError(f"nothing to resume in {out}: no checkpoint found.")
            saved = json.loads(meta_path.read_text())
            if saved != meta:
                raise ConfigError(
                    f"--resume needs the same experiment, seed and config as the checkpoint in "
                    f"{out}; these differ (checkpoint -> this run): {_config_diff(saved, meta)}."
                )
        else:
            if ckpt.exists():
                shutil.rmtree(ckpt)
            io.write_json(meta_path, meta)
            created_ckpt = True
    ctx = RunContext(seed, ckpt, progress)
    try:
        with _signals(ctx):
            ds = exp.compute(ctx, cfg)
    except Interrupted:
        raise
    except BaseException:
        # a failed fresh run that checkpointed nothing leaves nothing behind
        if created_ckpt and ctx.n_tasks_run == 0:
            shutil.rmtree(ckpt, ignore_errors=True)
            if not out_existed:
                with contextlib.suppress(OSError):
                    out.rmdir()  # only if nothing else was written there
        raise
    finally:
        ctx.close()
    provenance = describe(exp, cfg, seed)
    ds.attrs.update({**provenance, "config": json.dumps(provenance["config"], sort_keys=True)})
    ds.attrs.setdefault("Conventions", "CF-1.10")
    io.link_errors(ds)
    missing = io.missing_metadata(ds)
    if missing:
        warnings.warn(
            f"experiment {name!r}: variables without long_name/units: {missing}",
            MetadataWarning,
            stacklevel=2,
        )
    if out is not None:
        io.write_dataset(ds, out / "results.nc")
        io.write_json(out / "summary.json", {**exp.summary(ds), "run": provenance})
        io.save_figure(exp.figure(ds), out / "figure.png")
        shutil.rmtree(ckpt, ignore_errors=True)
    return ds


class MetadataWarning(UserWarning):
    """A results variable lacks its CF `long_name` or `units` (a bug in the experiment)."""
