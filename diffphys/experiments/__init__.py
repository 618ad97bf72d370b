"""Reproductions and studies: `run(name, **config) -> xarray.Dataset`, also `diffphys run NAME`.

Every module in this package that registers an experiment with `@experiment` is imported on
first use, so a new experiment is one new file.
"""

import importlib
import pkgutil

from ._core import REGISTRY, Experiment, RunContext, experiment, get, resolve_config, run


def _discover() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def names() -> list[str]:
    """Names of all registered experiments."""
    _discover()
    return sorted(REGISTRY)


__all__ = ["Experiment", "RunContext", "experiment", "get", "names", "resolve_config", "run"]
