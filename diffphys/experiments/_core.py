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
import shutil
import signal
import threading
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
class Experiment:
    name: str
    description: str
    defaults: dict[str, Any]
    compute: Callable[[RunContext, dict], Any]
    summary: Callable[[Any], dict]
    figure: Callable[[Any], Any]


def experiment(name: str, *, defaults: dict[str, Any], summary, figure):
    """Decorator registering `fn(ctx, cfg) -> xarray.Dataset` as experiment `name`."""

    def register(fn):
        if name in REGISTRY:
            raise ValueError(f"experiment {name!r} registered twice")
        doc = (fn.__doc__ or "").strip()
        REGISTRY[name] = Experiment(name, doc, dict(defaults), fn, summary, figure)
        return fn

    return register


def get(name: str) -> Experiment:
    from . import _discover

    _discover()
    if name not in REGISTRY:
        raise UnknownExperimentError(
            f"unknown experiment {name!r}. Available: {', '.join(sorted(REGISTRY))} "
            f"(see `diffphys list`)."
        )
    return REGISTRY[name]


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Parse a `--set key=value` string (or check a Python value) against the default's type."""
    if isinstance(value, str) and not isinstance(default, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if isinstance(default, list | tuple):
                try:
                    value = [json.loads(v) for v in text.strip("[]()").split(",") if v.strip()]
                except json.JSONDecodeError:
                    value = None
            if value is None or isinstance(value, str):
                raise ConfigError(
                    f"cannot parse {key}={text!r}; expected a value like {json.dumps(default)}."
                ) from None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}.")
    elif isinstance(default, int | float):
        if isinstance(value, list | tuple | dict | bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number like {default!r}, got {value!r}.")
        if isinstance(default, int) and not isinstance(default, bool):
            if float(value) != int(value):
                raise ConfigError(f"{key} must be an integer, got {value!r}.")
            value = int(value)
        else:
            value = float(value)
    elif isinstance(default, list | tuple):
        if not isinstance(value, list | tuple):
            value = [value]
        value = list(value)
    return value


def resolve_config(exp: Experiment, overrides: dict[str, Any]) -> dict[str, Any]:
    """The experiment's defaults updated with `overrides`, type-checked key by key."""
    unknown = sorted(set(overrides) - set(exp.defaults))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {unknown} for experiment {exp.name!r}. "
            f"Valid keys: {', '.join(sorted(exp.defaults))}."
        )
    cfg = dict(exp.defaults)
    for k, v in overrides.items():
        cfg[k] = _coerce(k, v, exp.defaults[k])
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

    **Arguments:**

    - `out`: folder for `results.nc`, `summary.json`, `figure.png` and checkpoints
      (`out/.checkpoints`); `None` keeps everything in memory.
    - `seed`: the run's seed; every random number derives from it.
    - `resume`: continue from the checkpoints in `out` (the config must be the same).
    - `**overrides`: config values (see `diffphys list` / `Experiment.defaults`).
    """
    exp = get(name)
    cfg = resolve_config(exp, overrides)
    ckpt = None
    if out is not None:
        out = Path(out)
        ckpt = out / ".checkpoints"
        meta = {"experiment": name, "seed": int(seed), "config": cfg}
        meta_path = ckpt / "run.json"
        if resume:
            if not meta_path.exists():
                raise ConfigError(f"nothing to resume in {out}: no checkpoint found.")
            saved = json.loads(meta_path.read_text())
            if saved != io.to_builtin(meta):
                raise ConfigError(
                    f"--resume with a different experiment, seed or config than the checkpoint "
                    f"in {out}: checkpoint has {saved}, this run has {io.to_builtin(meta)}."
                )
        else:
            if ckpt.exists():
                shutil.rmtree(ckpt)
            io.write_json(meta_path, meta)
    ctx = RunContext(seed, ckpt, progress)
    try:
        with _signals(ctx):
            ds = exp.compute(ctx, cfg)
    finally:
        ctx.close()
    from .. import __version__

    ds.attrs.update(
        experiment=name,
        config=json.dumps(io.to_builtin(cfg), sort_keys=True),
        seed=int(seed),
        diffphys_version=__version__,
        jax_version=jax.__version__,
        backend=jax.default_backend(),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    if out is not None:
        io.write_dataset(ds, out / "results.nc")
        io.write_json(out / "summary.json", exp.summary(ds))
        io.save_figure(exp.figure(ds), out / "figure.png")
        shutil.rmtree(ckpt, ignore_errors=True)
    return ds
