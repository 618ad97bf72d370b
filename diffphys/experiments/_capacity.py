"""The capacity measurement shared by `dense-capacity` and `exponential-capacity`.

For one network size N and a geometric grid of pattern counts P, the fraction of stored patterns
that are exact fixed points of the zero-temperature dynamics is averaged over disorder samples
(one compiled call: every sample draws max(P) patterns and masks the extra ones with zero
weights), and P_max is where that fraction crosses the recall level.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .. import ensemble, models
from .._errors import ConfigError
from ._core import Param, RunContext

CAPACITY_PARAMS = {
    "n_grid": Param(
        14, "pattern counts P on the geometric grid around the predicted capacity", ge=2
    ),
    "grid_span": Param(
        [0.15, 8.0], "grid from span[0] to span[1] times the predicted capacity", gt=0
    ),
    "n_samples": Param(48, "disorder samples (pattern sets) per grid point", ge=1),
    "n_test": Param(8, "stored patterns tested for stability per sample", ge=1),
    "recall": Param(0.99, "recall level that defines P_max", gt=0, le=1),
}
"""The config keys every capacity experiment shares (`measure_capacity` reads them)."""


def validate_capacity(cfg: dict) -> None:
    """Cross-key checks of `CAPACITY_PARAMS`."""
    lo, *rest = cfg["grid_span"]
    if len(rest) != 1 or not lo < rest[0]:
        raise ConfigError(f"grid_span must be [low, high] with low < high, got {cfg['grid_span']}.")


def annotate_capacity(ds) -> None:
    """CF metadata of the variables `measure_capacity` results are stored in."""
    from .. import io

    meta = {
        "N_index": ("index of the network size", "1"),
        "grid_index": ("index on the pattern-count grid", "1"),
        "N": ("number of neurons", "1"),
        "P_max": ("largest P with the recall fraction >= recall (log-interpolated)", "1"),
        "grid": ("number of stored patterns P", "1"),
        "fraction": ("fraction of tested stored patterns that are fixed points", "1"),
    }
    io.annotate(ds, **{k: v for k, v in meta.items() if k in ds.variables})


def capacity_grid(centre: float, n_grid: int, span, floor: int = 2) -> np.ndarray:
    """Geometric grid of `n_grid` pattern counts from `span[0]` to `span[1]` times `centre`
    (integers >= `floor`, duplicates removed)."""
    grid = np.geomspace(span[0] * centre, span[1] * centre, n_grid)
    return np.unique(np.maximum(np.round(grid), floor).astype(np.int64))


def stable_fraction(model_fn, key, n: int, grid, n_test: int):
    """Fraction of the first min(`n_test`, P) stored patterns that are exact fixed points of the
    T = 0 dynamics, for every pattern count in `grid` (nested masks of one pattern draw).

    `model_fn(patterns, weights)` builds the memory. A pattern is perfectly recalled when no
    single flip lowers its energy (all N bits stable), tested with the all-sites flip kernel.
    """
    p_cap = int(np.asarray(grid)[-1])
    grid = jnp.asarray(grid)
    xi = models.random_patterns(key, p_cap, n)
    tests = xi[:n_test].astype(jnp.int8)

    def at(p_active):
        w = (jnp.arange(p_cap) < p_active).astype(jnp.float32)
        model = model_fn(xi, w)
        stable = jax.vmap(model.is_fixed_point)(tests)
        stored = jnp.arange(n_test) < p_active  # only stored patterns can be recalled
        n_stored = jnp.minimum(n_test, p_active).astype(jnp.float32)
        return jnp.sum((stable & stored).astype(jnp.float32)) / n_stored

    return jax.lax.map(at, grid, batch_size=ensemble.default_chunk_size(len(grid), cpu=None))


def p_max_from(grid, frac, level):
    """Largest P with recall >= level, interpolated (in log P) to where the fraction crosses it;
    NaN when the fraction never crosses the level on the grid, or is below it already at the
    smallest P."""
    grid = np.asarray(grid, np.float64)
    frac = np.asarray(frac, np.float64)
    below = np.nonzero(frac < level)[0]
    if below.size == 0:
        return float("nan")
    j = below[0]
    if j == 0:
        return float("nan")
    lg = np.log(grid)
    t = (frac[j - 1] - level) / (frac[j - 1] - frac[j])
    return float(np.exp(lg[j - 1] + t * (lg[j] - lg[j - 1])))


def measure_capacity(ctx: RunContext, name: str, key, n: int, grid, model_fn, cfg: dict):
    """Recall curve and P_max of one memory at size `n` (checkpointed as task `name`).

    `cfg` supplies `n_samples` (disorder samples), `n_test` (patterns tested per sample) and
    `recall` (the level that defines P_max).

    **Returns:** `(grid, fraction, p_max)`.
    """

    def work():
        keys = jax.random.split(key, cfg["n_samples"])
        f = ensemble.run(
            lambda k: stable_fraction(model_fn, k, n, grid, cfg["n_test"]),
            keys,
            chunk_size=ensemble.default_chunk_size(cpu=8),
        )
        return {"grid": grid, "fraction": f.mean(0)}

    res = ctx.task(name, work)
    g, f = np.asarray(res["grid"]), np.asarray(res["fraction"])
    return g, f, p_max_from(g, f, cfg["recall"])
