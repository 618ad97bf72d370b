"""Reproductions and studies: `run(name, **config) -> xarray.Dataset`, also `diffphys run NAME`.

Every module in this package that registers an experiment with `@experiment` is imported on
first use, so a new experiment is one new file.
"""

import importlib
import pkgutil
import sys
import warnings

from ._core import REGISTRY, Experiment, RunContext, experiment, get, resolve_config, run

BROKEN: dict[str, BaseException] = {}
"""Experiment modules that failed to import, with their error (shown by `diffphys list`)."""


def _discover() -> None:
    """Import every experiment module once; one broken module does not hide the others."""
    for mod in pkgutil.iter_modules(__path__):
        name = f"{__name__}.{mod.name}"
        if mod.name.startswith("_") or name in sys.modules or mod.name in BROKEN:
            continue
        try:
            importlib.import_module(name)
        except Exception as e:  # reported by `diffphys list` and by the test suite
            BROKEN[mod.name] = e
            warnings.warn(f"experiment module {name} failed to import: {e!r}", stacklevel=2)


def names() -> list[str]:
    """Names of all registered experiments."""
    _discover()
    return sorted(REGISTRY)


__all__ = [
    "BROKEN",
    "Experiment",
    "RunContext",
    "experiment",
    "get",
    "names",
    "resolve_config",
    "run",
]
