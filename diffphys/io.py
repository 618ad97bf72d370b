"""Results and checkpoints: xarray -> netCDF, orbax checkpoints, atomic writes.

Every file is written to a temporary name in the destination folder and moved into place with
`os.replace`, so a crash never leaves a half-written result.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside `path`; on success it replaces `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates 0600; results get the user's normal permissions (0666 & ~umask)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> None:
    """Write `text` to `path` atomically (a temporary file renamed into place)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj: Any) -> None:
    """Write `obj` (NumPy/JAX values converted to Python ones) as indented JSON, atomically."""
    write_text(path, json.dumps(to_builtin(obj), indent=2, sort_keys=True) + "\n")


def to_builtin(obj: Any) -> Any:
    """Convert NumPy/JAX scalars and arrays inside `obj` to JSON-friendly Python objects."""
    if isinstance(obj, dict):
        return {str(k): to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_builtin(v) for v in obj]
    if isinstance(obj, jax.Array | np.ndarray | np.generic):
        return np.asarray(obj).tolist()
    return obj


def write_dataset(ds, path) -> None:
    """Write an `xarray.Dataset` to netCDF (h5netcdf engine) atomically.

    Attributes that netCDF cannot store (dicts, booleans, None) are JSON-encoded.
    """
    ds = ds.copy()
    ds.attrs = {k: _nc_attr(v) for k, v in ds.attrs.items()}
    for name in ds.variables:
        ds[name].attrs = {k: _nc_attr(v) for k, v in ds[name].attrs.items()}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def missing_metadata(ds) -> list[str]:
    """Names of the variables and coordinates of `ds` without a CF `long_name` or `units`."""
    return sorted(
        str(name)
        for name, var in ds.variables.items()
        if "long_name" not in var.attrs or "units" not in var.attrs
    )


def annotate(ds, **meta: tuple[str, str]) -> None:
    """Set CF `long_name` and `units` in place: `annotate(ds, T=("temperature", "J/k_B"))`.

    An error variable `X_err` without its own entry gets "standard error of " + X's long_name
    and X's units.
    """
    for name, (long_name, units) in meta.items():
        if name not in ds.variables:
            raise KeyError(f"annotate: {name!r} is not a variable or coordinate of the dataset")
        ds[name].attrs.update(long_name=long_name, units=units)
        err = f"{name}_err"
        if err in ds.variables and err not in meta:
            ds[err].attrs.update(long_name=f"standard error of {long_name}", units=units)


def link_errors(ds) -> None:
    """Set CF `ancillary_variables` on every `X` that has an error variable `X_err` (or
    `X_error`), in place."""
    for name in list(ds.data_vars):
        for err in (f"{name}_err", f"{name}_error"):
            if err in ds.data_vars:
                ds[name].attrs.setdefault("ancillary_variables", err)
                ds[err].attrs.setdefault("standard_error_of", str(name))


def _nc_attr(v):
    if isinstance(v, str | int | float | np.number) and not isinstance(v, bool):
        return v
    return json.dumps(to_builtin(v))


def read_dataset(path):
    """Read a dataset written by `write_dataset` (loaded into memory, file closed)."""
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds = ds.load()
    for k, v in list(ds.attrs.items()):
        if isinstance(v, str) and v[:1] in "{[" or v in ("true", "false", "null"):
            with contextlib.suppress(json.JSONDecodeError):
                ds.attrs[k] = json.loads(v)
    return ds


def save_figure(fig, path, dpi: int = 120) -> None:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix.lstrip("."))
    plt.close(fig)


def _to_numpy_tree(tree):
    def conv(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            raise TypeError(
                "typed PRNG keys cannot be checkpointed directly: store jax.random.key_data(key)."
            )
        return np.asarray(x)

    return jax.tree.map(conv, tree)


def save_checkpoint(path, tree) -> None:
    """Save a pytree of arrays with orbax, atomically (written beside, then renamed)."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    ocp.PyTreeCheckpointer().save(tmp, _to_numpy_tree(tree))
    if path.exists():
        import shutil

        shutil.rmtree(path)
    os.replace(tmp, path)


def load_checkpoint(path, like=None):
    """Restore a pytree saved by `save_checkpoint` (as NumPy arrays).

    With `like`, the result has the same pytree structure (NamedTuples, equinox modules).
    """
    import orbax.checkpoint as ocp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        restored = ocp.PyTreeCheckpointer().restore(Path(path).absolute())
    if like is None:
        return restored
    leaves = jax.tree.leaves(restored)
    # orbax restores dicts keyed by position for sequences; flatten both in the same order
    flat_like, treedef = jax.tree.flatten(like)
    if len(leaves) != len(flat_like):
        raise ValueError(
            f"checkpoint at {path} holds {len(leaves)} arrays but `like` has {len(flat_like)}."
        )
    ordered = jax.tree.leaves(_restore_order(restored, _to_numpy_tree(like)))
    return jax.tree.unflatten(treedef, ordered)


def _restore_order(restored, like):
    """Re-key orbax's restored nested dicts in the flatten order of `like`."""
    import orbax.checkpoint as ocp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return (
            ocp.utils.deserialize_tree(restored, like)
            if hasattr(ocp.utils, "deserialize_tree")
            else restored
        )


__all__ = [
    "annotate",
    "atomic_path",
    "link_errors",
    "load_checkpoint",
    "missing_metadata",
    "read_dataset",
    "save_checkpoint",
    "save_figure",
    "to_builtin",
    "write_dataset",
    "write_json",
    "write_text",
]
