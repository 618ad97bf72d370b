"""Named exceptions for the mistakes users make most often, and shared input validators."""

import numpy as np


class DiffphysError(Exception):
    """Base class of every error raised by diffphys itself."""


class ConfigError(DiffphysError, ValueError):
    """A configuration value is invalid (unknown key, wrong type, out of range)."""


class ShapeError(DiffphysError, ValueError):
    """An array does not have the shape the model or sampler expects."""


class UnknownExperimentError(DiffphysError, KeyError):
    """`diffphys run NAME` with a NAME that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Interrupted(DiffphysError):
    """A run was stopped by SIGINT/SIGTERM after its last checkpoint was written."""


def check_positive(name: str, value) -> None:
    """Eagerly reject a non-positive scalar (only when it is a concrete Python/NumPy number)."""
    import numpy as np

    try:
        arr = np.asarray(value)
    except Exception:  # a tracer: checked at run time by the caller, if at all
        return
    if arr.dtype == object or arr.size == 0:
        return
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ConfigError(f"{name} must be positive and finite, got {value!r}.")


def check_nonnegative(name: str, value) -> None:
    """Eagerly reject a negative or non-finite scalar (only when it is concrete)."""
    import numpy as np

    try:
        arr = np.asarray(value)
    except Exception:  # a tracer
        return
    if arr.dtype == object or arr.size == 0:
        return
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ConfigError(f"{name} must be >= 0 and finite, got {value!r}.")
def check_mask(mask, n: int) -> np.ndarray:
    """A validated symmetric boolean (N, N) edge mask with a false diagonal (all edges if None)."""
    if mask is None:
        return ~np.eye(n, dtype=bool)
    m = np.asarray(mask)
    if m.shape != (n, n):
        raise ShapeError(f"mask must be a boolean (N, N) = ({n}, {n}) array, got {m.shape}.")
    if m.dtype != bool:
        raise ConfigError(f"mask must be a boolean array (True = edge), got dtype {m.dtype}.")
    if not np.array_equal(m, m.T):
        raise ConfigError("mask must be symmetric (an undirected graph); use mask | mask.T.")
    return m & ~np.eye(n, dtype=bool)
