"""diffphys: differentiable, GPU-accelerated simulation of disordered systems and of learning."""

from importlib.metadata import PackageNotFoundError, version

from . import (
    curvature,
    data,
    ensemble,
    exact,
    io,
    models,
    observables,
    sampling,
    spectra,
    theory,
    training,
)
from ._errors import ConfigError, DiffphysError, Interrupted, ShapeError, UnknownExperimentError
from ._loop import log_times


def __getattr__(name):
    # experiments pull in xarray and matplotlib: imported on first use only
    if name == "experiments":
        import importlib

        return importlib.import_module(".experiments", __name__)
    raise AttributeError(f"module 'diffphys' has no attribute {name!r}")


try:
    __version__ = version("diffphys")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "ConfigError",
    "DiffphysError",
    "Interrupted",
    "ShapeError",
    "UnknownExperimentError",
    "__version__",
    "curvature",
    "data",
    "ensemble",
    "exact",
    "experiments",
    "io",
    "log_times",
    "models",
    "observables",
    "sampling",
    "spectra",
    "theory",
    "training",
]
