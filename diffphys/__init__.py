"""diffphys: differentiable, GPU-accelerated simulation of disordered systems and of learning."""

from importlib.metadata import PackageNotFoundError, version

from . import data, ensemble, exact, io, models, observables, sampling
from ._errors import ConfigError, DiffphysError, Interrupted, ShapeError, UnknownExperimentError
from ._loop import log_times

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
    "data",
    "ensemble",
    "exact",
    "io",
    "log_times",
    "models",
    "observables",
    "sampling",
]
