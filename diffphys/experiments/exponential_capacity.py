"""`exponential-capacity`: capacity of the exponential memories versus N, P_max = exp(alpha N)."""

import jax
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import ensemble, models, theory
from ._core import RunContext, experiment
from .dense_capacity import p_max_from, stable_fraction

DEFAULTS = {
    "family": ["exponential", "exponential_loss"],
    "N": [8, 12, 16, 20, 24, 28],
    "lam": 0.25,
    "n_grid": 14,
    "grid_span": [0.02, 4.0],
    "n_samples": 48,
    "n_test": 8,
    "recall": 0.99,
}

FAMILIES = {
    "exponential": ("Demircigil et al. 2017: E = -sum exp(lam xi.s)", models.ExponentialMemory),
    "exponential_loss": (
        "arXiv 2509.06905: E = -sum exp(-lam |s - xi|^2 / 2)",
        models.ExponentialLossMemory,
    ),
}


def _fit(n, pmax):
    ok = np.isfinite(pmax)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    slope, icpt = np.polyfit(n[ok], np.log(pmax[ok]), 1)
    return float(slope), float(icpt)


def _summary(ds) -> dict:
    lam = float(ds.attrs["lam"])
    out = {
        "lam": lam,
        "alpha_theory": theory.exponential_capacity_rate(lam),
        "alpha_theory_source": "signal-to-noise / large deviations, "
        "diffphys.theory.exponential_capacity_rate: 2 lam - ln cosh(2 lam)",
        "recall_level": float(ds.attrs["recall"]),
    }
    for fam in ds["family"].values:
        a, _ = _fit(ds["N"].values.astype(float), ds["P_max"].sel(family=fam).values)
        out[f"alpha_{fam}"] = a
        out[f"P_max_{fam}"] = {
            int(n): float(v) for n, v in zip(ds["N"].values, ds["P_max"].sel(family=fam).values)
        }
    # the headline: the 2509.06905 model when present, else the first family
    fams = list(ds["family"].values)
    head = "exponential_loss" if "exponential_loss" in fams else fams[0]
    out["alpha"] = out[f"alpha_{head}"]
    out["alpha_model"] = head
    return out


def _figure(ds):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    n = ds["N"].values.astype(float)
    lam = float(ds.attrs["lam"])
    for k, fam in enumerate(ds["family"].values):
        pm = ds["P_max"].sel(family=fam).values
        a, b = _fit(n, pm)
        mk = "o" if k == 0 else "s"
        axes[0].semilogy(
            n, pm, mk, mfc="none" if k else None, ms=7 - 2 * k, label=f"{fam}: fit alpha = {a:.3f}"
        )
        axes[0].semilogy(n, np.exp(a * n + b), "-", lw=1, color=f"C{k}")
        for j, nj in enumerate(ds["N"].values):
            g = ds["grid"].sel(family=fam, N=nj).values
            f = ds["fraction"].sel(family=fam, N=nj).values
            ok = np.isfinite(g)
            axes[1].semilogx(
                g[ok], f[ok], "-", color=f"C{k}", alpha=0.3 + 0.7 * j / max(len(n) - 1, 1)
            )
    at = theory.exponential_capacity_rate(lam)
    axes[0].semilogy(
        n,
        np.exp(at * n) * np.exp(_fit(n, ds["P_max"].isel(family=0).values)[1]),
        "k:",
        label=f"slope of theory alpha = {at:.3f}",
    )
    axes[0].set_xlabel("N")
    axes[0].set_ylabel(f"P_max ({100 * ds.attrs['recall']:.0f}% of patterns stable)")
    axes[0].set_title(f"exponential memories, lam = {lam}: log P_max linear in N", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[1].axhline(ds.attrs["recall"], color="k", ls=":", lw=1)
    axes[1].set_xlabel("P")
    axes[1].set_ylabel("fraction of stored patterns that are fixed points")
    axes[1].set_title("recall curves (darker = larger N)", fontsize=9)
    fig.tight_layout()
    return fig


@experiment("exponential-capacity", defaults=DEFAULTS, summary=_summary, figure=_figure)
def exponential_capacity(ctx: RunContext, cfg: dict):
    """Exponential (Demircigil) and arXiv 2509.06905 memories: log P_max linear in N."""
    fams = list(cfg["family"])
    for fam in fams:
        if fam not in FAMILIES:
            from .._errors import ConfigError

            raise ConfigError(f"unknown family {fam!r}; choose from {sorted(FAMILIES)}.")
    lam = float(cfg["lam"])
    ns = [int(n) for n in cfg["N"]]
    ctx.set_total(len(fams) * len(ns))
    G = np.full((len(fams), len(ns), cfg["n_grid"]), np.nan)
    F = np.full_like(G, np.nan)
    PM = np.full((len(fams), len(ns)), np.nan)
    for a, fam in enumerate(fams):
        cls = FAMILIES[fam][1]
        for j, n in enumerate(ns):
            centre = float(theory.exponential_capacity(n, lam))
            span = cfg["grid_span"]
            grid = np.geomspace(max(span[0] * centre, 2), max(span[1] * centre, 8), cfg["n_grid"])
            grid = np.unique(np.round(grid).astype(np.int64))

            def model_fn(xi, w, cls=cls):
                return cls(xi, lam=lam, weights=w)

            def work(n=n, grid=grid, model_fn=model_fn, fam=fam):
                keys = jax.random.split(ctx.key(fam, n), cfg["n_samples"])
                f = ensemble.run(
                    lambda k: stable_fraction(model_fn, k, n, grid, cfg["n_test"]),
                    keys,
                    chunk_size=8,
                )
                return {"grid": grid, "fraction": f.mean(0)}

            res = ctx.task(f"{fam}/N={n}", work)
            g, f = np.asarray(res["grid"]), np.asarray(res["fraction"])
            G[a, j, : len(g)] = g
            F[a, j, : len(f)] = f
            PM[a, j] = p_max_from(g, f, cfg["recall"])
    ds = xr.Dataset(
        {
            "P_max": (("family", "N"), PM),
            "grid": (("family", "N", "grid_index"), G),
            "fraction": (("family", "N", "grid_index"), F),
        },
        coords={"family": fams, "N": np.asarray(ns), "grid_index": np.arange(cfg["n_grid"])},
    )
    ds["P_max"].attrs["long_name"] = "largest P with the recall fraction >= recall (log-interp.)"
    ds.attrs["lam"] = lam
    ds.attrs["recall"] = float(cfg["recall"])
    return ds
