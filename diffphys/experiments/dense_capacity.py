"""`dense-capacity`: largest number of perfectly recalled patterns versus N for p = 2, 3, 4."""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import models, theory
from ._capacity import (
    CAPACITY_PARAMS,
    annotate_capacity,
    capacity_grid,
    measure_capacity,
    validate_capacity,
)
from ._core import Param, RunContext, experiment

PARAMS = {
    "p": Param([2, 3, 4], "interaction orders p of F(x) = x^p", choices=(2, 3, 4)),
    "N_p2": Param([100, 200, 400, 800], "network sizes N for p = 2", ge=4),
    "N_p3": Param([40, 60, 90, 135, 200], "network sizes N for p = 3", ge=4),
    "N_p4": Param([24, 32, 44, 60, 80], "network sizes N for p = 4", ge=4),
    **CAPACITY_PARAMS,
}


def _fit(n, pmax):
    ok = np.isfinite(pmax)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(n[ok]), np.log(pmax[ok]), 1)[0])


def _summary(ds) -> dict:
    out = {"recall_level": float(ds.attrs["recall"])}
    for p in ds["p"].values:
        n_vals = ds["N"].sel(p=p).values
        pm = ds["P_max"].sel(p=p).values
        ok = np.isfinite(n_vals)
        out[f"exponent_p{p}"] = _fit(n_vals[ok], pm[ok])
        out[f"exponent_p{p}_theory_asymptotic"] = float(p - 1)
        kh = theory.dense_capacity(n_vals[ok], int(p))
        out[f"exponent_p{p}_krotov_hopfield_same_N"] = _fit(n_vals[ok], kh)
        out[f"P_max_p{p}"] = {int(a): float(b) for a, b in zip(n_vals[ok], pm[ok])}
    return out


def _figure(ds):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {2: "C0", 3: "C1", 4: "C2"}
    for p in ds["p"].values:
        n = ds["N"].sel(p=p).values
        ok = np.isfinite(n)
        n = n[ok]
        pm = ds["P_max"].sel(p=p).values[ok]
        c = colours.get(int(p), None)
        slope = _fit(n, pm)
        axes[0].loglog(n, pm, "o", color=c, label=f"p={p}: slope {slope:.2f}")
        nn = np.geomspace(n.min(), n.max(), 50)
        axes[0].loglog(nn, theory.dense_capacity(nn, int(p)), "-", color=c, lw=1)
        axes[0].loglog(nn, theory.dense_capacity_snr(nn, int(p), 1e-2 / nn), ":", color=c, lw=1)
        for j in np.nonzero(ok)[0]:
            g = ds["grid"].sel(p=p).isel(N_index=j).values
            f = ds["fraction"].sel(p=p).isel(N_index=j).values
            good = np.isfinite(g)
            n_j = float(ds["N"].sel(p=p).values[j])
            shade = 0.3 + 0.7 * j / max(ok.sum() - 1, 1)
            kh_j = theory.dense_capacity(n_j, int(p))
            axes[1].semilogx(g[good] / kh_j, f[good], "-", color=c, alpha=shade)
    from matplotlib.ticker import NullFormatter

    for ax in axes:
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_xlabel("N")
    axes[0].set_ylabel(f"P_max ({100 * ds.attrs['recall']:.0f}% of patterns perfectly stable)")
    axes[0].set_title(
        "markers: simulation; solid: N^(p-1)/(2(2p-3)!! ln N); dotted: SNR, 1% pattern errors",
        fontsize=9,
    )
    axes[0].legend(fontsize=8)
    axes[1].axhline(ds.attrs["recall"], color="k", ls=":", lw=1)
    axes[1].set_xlabel("P / Krotov-Hopfield capacity")
    axes[1].set_ylabel("fraction of stored patterns that are fixed points")
    axes[1].set_title("recall curves (darker = larger N)", fontsize=9)
    fig.tight_layout()
    return fig


@experiment(
    "dense-capacity", runtime="about 1 min (62 CPU-s measured)",
    params=PARAMS,
    validate=validate_capacity,
    summary=_summary,
    figure=_figure,
)
def dense_capacity(ctx: RunContext, cfg: dict):
    """Dense associative memories F(x)=x^p: largest P with perfect recall vs N, p = 2, 3, 4."""
    ps = [int(p) for p in cfg["p"]]
    ctx.set_total(sum(len(cfg[f"N_p{p}"]) for p in ps))
    n_max = max(len(cfg[f"N_p{p}"]) for p in ps)
    g_max = cfg["n_grid"]
    N = np.full((len(ps), n_max), np.nan)
    PM = np.full((len(ps), n_max), np.nan)
    G = np.full((len(ps), n_max, g_max), np.nan)
    F = np.full((len(ps), n_max, g_max), np.nan)
    for a, p in enumerate(ps):

        def model_fn(xi, w, p=p):
            return models.DenseAssociativeMemory(xi, p=p, weights=w, binary=True)

        for j, n in enumerate(cfg[f"N_p{p}"]):
            grid = capacity_grid(float(theory.dense_capacity(n, p)), g_max, cfg["grid_span"])
            key = ctx.key("p", p, "N", n)
            g, f, pm = measure_capacity(ctx, f"p={p}/N={n}", key, n, grid, model_fn, cfg)
            N[a, j] = n
            G[a, j, : len(g)] = g
            F[a, j, : len(f)] = f
            PM[a, j] = pm
    ds = xr.Dataset(
        {
            "N": (("p", "N_index"), N),
            "P_max": (("p", "N_index"), PM),
            "grid": (("p", "N_index", "grid_index"), G),
            "fraction": (("p", "N_index", "grid_index"), F),
        },
        coords={"p": np.asarray(ps), "N_index": np.arange(n_max), "grid_index": np.arange(g_max)},
    )
    annotate_capacity(ds)
    ds["p"].attrs.update(long_name="interaction order p", units="1")
    ds.attrs["recall"] = float(cfg["recall"])
    return ds
