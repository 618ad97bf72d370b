"""`basins`: retrieval probability versus initial corruption and load, for each memory family."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import ensemble, io, models, theory
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

FAMILIES = ("hopfield", "dense3", "dense4", "exponential", "exponential_loss")
PARAMS = {
    "family": Param(
        ["hopfield", "dense3", "exponential", "exponential_loss"],
        "memory families to compare",
        choices=FAMILIES,
    ),
    "N": Param(200, "number of neurons", ge=2),
    "P": Param([10, 25, 50, 200, 1000, 4000], "numbers of stored patterns (loads)", ge=1),
    "corruption": Param(
        [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45],
        "fraction of flipped spins in the initial state",
        ge=0,
        le=0.5,
    ),
    "lam": Param(0.25, "inverse width lambda of the exponential memories", gt=0),
    "n_samples": Param(16, "independent pattern sets and corruptions per point", ge=1),
    "max_sweeps": Param(50, "maximum zero-temperature asynchronous sweeps", ge=1),
}


def _make(family: str, xi, lam: float, w=None):
    if family == "hopfield":
        return models.Hopfield(xi, weights=w, binary=True)
    if family == "dense3":
        return models.DenseAssociativeMemory(xi, p=3, weights=w, binary=True)
    if family == "dense4":
        return models.DenseAssociativeMemory(xi, p=4, weights=w, binary=True)
    if family == "exponential":
        return models.ExponentialMemory(xi, lam=lam, weights=w)
    if family == "exponential_loss":
        return models.ExponentialLossMemory(xi, lam=lam, weights=w)
    raise ConfigError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}.")


def _radius_theory(family: str, n: int, Ps, lam: float) -> np.ndarray:
    """Predicted basin radius per load: the signal-to-noise estimate
    (`diffphys.theory.exponential_basin_radius`) for the exponential families, NaN otherwise."""
    if family.startswith("exponential"):
        return theory.exponential_basin_radius(n, np.asarray(Ps), lam)
    return np.full(len(Ps), np.nan)


def _capacity(family: str, n: int, lam: float) -> float:
    if family == "hopfield":
        return theory.ags_alpha_c() * n
    if family.startswith("dense"):
        return float(theory.dense_capacity(n, int(family[-1])))
    return float(theory.exponential_capacity(n, lam))


def _run(ctx: RunContext, family: str, cfg: dict):
    """Final overlaps (P, corruption, sample) of one family: one compiled call for all loads
    (every sample draws max(P) patterns and masks out the extra ones with zero weights)."""
    n, lam = int(cfg["N"]), float(cfg["lam"])
    rho = np.asarray(cfg["corruption"], np.float32)
    Ps = np.asarray(cfg["P"], np.int32)
    p_cap = int(Ps.max())
    S = cfg["n_samples"]

    def one(key, p_active, r):
        k_xi, k_c, k_dyn = jax.random.split(key, 3)
        xi = models.random_patterns(k_xi, p_cap, n)
        w = (jnp.arange(p_cap) < p_active).astype(jnp.float32)
        model = _make(family, xi, lam, w)
        x0 = models.corrupt(k_c, xi[0].astype(jnp.int8), r)
        _, m, _ = models.retrieve(model, x0, key=k_dyn, max_sweeps=cfg["max_sweeps"])
        return m[0]

    def work():
        keys = jax.random.split(ctx.key(family), len(Ps) * len(rho) * S)
        p = jnp.repeat(jnp.asarray(Ps), len(rho) * S)
        r = jnp.tile(jnp.repeat(jnp.asarray(rho), S), len(Ps))
        # lax.map over samples on CPU: faster than vmap for the sequential async kernel there
        out = ensemble.run(one, keys, p, r, chunk_size=ensemble.default_chunk_size())
        return {"overlap": out.reshape(len(Ps), len(rho), S)}

    return ctx.task(family, work)["overlap"]


def _summary(ds) -> dict:
    out = {"N": int(ds.attrs["N"])}
    for fam in ds["family"].values:
        radius = {}
        for P in ds["P"].values:
            r = ds["retrieval"].sel(family=fam, P=P).values
            rho = ds["corruption"].values
            ok = np.nonzero(r >= 0.5)[0]
            radius[int(P)] = float(rho[ok[-1]]) if ok.size and ok[0] == 0 else 0.0
        out[f"basin_radius_{fam}"] = radius
        th = ds["basin_radius_theory"].sel(family=fam).values
        if np.all(np.isfinite(th)):
            out[f"basin_radius_theory_{fam}"] = {
                int(P): float(v) for P, v in zip(ds["P"].values, th)
            }
    out["basin_radius_definition"] = (
        "largest initial corruption on the grid with exact-retrieval probability >= 1/2"
    )
    out["basin_radius_theory_source"] = (
        "signal-to-noise / large deviations at leading exponential order, derived in this "
        "library: diffphys.theory.exponential_basin_radius (inverse of exponential_capacity_rate)"
    )
    return out


def _figure(ds):
    fams = list(ds["family"].values)
    fig, axes = plt.subplots(1, len(fams), figsize=(3.6 * len(fams), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, fam in zip(axes, fams):
        for k, P in enumerate(ds["P"].values):
            shade = plt.cm.viridis(k / max(ds.sizes["P"] - 1, 1))
            ax.plot(
                ds["corruption"],
                ds["retrieval"].sel(family=fam, P=P),
                "o-",
                ms=3,
                color=shade,
                label=f"P={P} ({P / ds.attrs['N']:.3g} N)",
            )
            r_th = float(ds["basin_radius_theory"].sel(family=fam, P=P))
            if np.isfinite(r_th):
                ax.axvline(r_th, color=shade, ls="--", lw=0.8)
        ax.set_title(f"{fam}", fontsize=10)
        ax.set_xlabel("initial corruption (fraction of flipped bits)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("P(exact retrieval)")
    fig.suptitle(
        f"basins of attraction, T=0 async dynamics, N={ds.attrs['N']}, "
        f"lam={ds.attrs['lam']} for the exponential families "
        "(dashed: signal-to-noise basin radius per P)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


@experiment("basins", params=PARAMS, runtime="about 1.5 min (88 CPU-s measured)", summary=_summary, figure=_figure)
def basins(ctx: RunContext, cfg: dict):
    """Retrieval probability vs initial corruption and load for Hopfield, dense, exponential."""
    fams = list(cfg["family"])
    Ps = [int(p) for p in cfg["P"]]
    ctx.set_total(len(fams))
    ov = np.stack([_run(ctx, f, cfg) for f in fams])
    ds = xr.Dataset(
        {
            "overlap": (("family", "P", "corruption", "sample"), ov),
            "retrieval": (("family", "P", "corruption"), (ov >= 1.0 - 1e-6).mean(-1)),
            "capacity_theory": (
                ("family",),
                [_capacity(f, int(cfg["N"]), float(cfg["lam"])) for f in fams],
            ),
            "basin_radius_theory": (
                ("family", "P"),
                np.stack([_radius_theory(f, int(cfg["N"]), Ps, float(cfg["lam"])) for f in fams]),
            ),
        },
        coords={
            "family": fams,
            "P": np.asarray(Ps),
            "corruption": np.asarray(cfg["corruption"], np.float64),
            "sample": np.arange(cfg["n_samples"]),
        },
    )
    io.annotate(
        ds,
        family=("memory family", "1"),
        P=("number of stored patterns", "1"),
        corruption=("fraction of flipped spins in the initial state", "1"),
        sample=("sample index", "1"),
        overlap=("final overlap with the corrupted pattern", "1"),
        retrieval=("probability that the dynamics ends on the pattern", "1"),
        capacity_theory=("predicted capacity (number of patterns)", "1"),
        basin_radius_theory=(
            "signal-to-noise basin radius (exponential families; NaN for the others)",
            "1",
        ),
    )
    ds.attrs["N"] = int(cfg["N"])
    ds.attrs["lam"] = float(cfg["lam"])
    return ds
