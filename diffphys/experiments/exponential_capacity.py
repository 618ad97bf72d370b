"""`exponential-capacity`: capacity of the exponential memories versus N, P_max = exp(alpha N)."""

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

FAMILIES = {
    "exponential": ("Demircigil et al. 2017: E = -sum exp(lam xi.s)", models.ExponentialMemory),
    "exponential_loss": (
        "arXiv 2509.06905 (read from its abstract): E = -sum exp(-lam |s - xi|^2 / 2)",
        models.ExponentialLossMemory,
    ),
}

PARAMS = {
    "family": Param(
        ["exponential", "exponential_loss"], "memory families", choices=tuple(FAMILIES)
    ),
    "N": Param([8, 12, 16, 20, 24, 28, 32], "network sizes", ge=4),
    "lam": Param(0.25, "inverse width lambda of the exponential energy", gt=0),
    **CAPACITY_PARAMS,
    "grid_span": Param(
        [0.05, 6.0], "grid from span[0] to span[1] times the predicted capacity", gt=0
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
    recall = float(ds.attrs["recall"])
    n = ds["N"].values.astype(float)
    out = {
        "lam": lam,
        "alpha_theory": theory.exponential_capacity_rate(lam),
        "alpha_theory_source": "signal-to-noise / large deviations (derived in this library, "
        "not the paper's formula): diffphys.theory.exponential_capacity_rate = "
        "2 lam - ln cosh(2 lam)",
        "alpha_snr_same_N": _fit(n, theory.exponential_capacity_snr(n, lam, recall))[0],
        "alpha_snr_same_N_source": "slope of ln P_max from diffphys.theory."
        "exponential_capacity_snr (Gaussian crosstalk, same recall criterion) over the same N",
        "recall_level": recall,
    }
    for fam in ds["family"].values:
        a, _ = _fit(n, ds["P_max"].sel(family=fam).values)
        out[f"alpha_{fam}"] = a
        out[f"P_max_{fam}"] = {
            int(k): float(v) for k, v in zip(ds["N"].values, ds["P_max"].sel(family=fam).values)
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
    recall = float(ds.attrs["recall"])
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
    nn = np.linspace(n.min(), n.max(), 50)
    snr = theory.exponential_capacity_snr(nn, lam, recall)
    a_snr = _fit(nn, snr)[0]
    axes[0].semilogy(nn, snr, "k--", lw=1, label=f"SNR theory, same criterion (slope {a_snr:.3f})")
    at = theory.exponential_capacity_rate(lam)
    axes[0].semilogy(nn, np.exp(at * nn), "k:", lw=1, label=f"exp(alpha_c N), alpha_c = {at:.3f}")
    axes[0].set_xlabel("N")
    axes[0].set_ylabel(f"P_max ({100 * recall:.0f}% of patterns stable)")
    axes[0].set_title(f"exponential memories, lam = {lam}: log P_max linear in N", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[1].axhline(recall, color="k", ls=":", lw=1)
    axes[1].set_xlabel("P")
    axes[1].set_ylabel("fraction of stored patterns that are fixed points")
    axes[1].set_title("recall curves (darker = larger N)", fontsize=9)
    fig.tight_layout()
    return fig


@experiment(
    "exponential-capacity", runtime="about 1 min (64 CPU-s measured)",
    params=PARAMS,
    validate=validate_capacity,
    summary=_summary,
    figure=_figure,
)
def exponential_capacity(ctx: RunContext, cfg: dict):
    """Exponential (Demircigil) and arXiv 2509.06905 memories: log P_max linear in N."""
    fams = list(cfg["family"])
    lam = float(cfg["lam"])
    recall = float(cfg["recall"])
    ns = [int(n) for n in cfg["N"]]
    ctx.set_total(len(fams) * len(ns))
    G = np.full((len(fams), len(ns), cfg["n_grid"]), np.nan)
    F = np.full_like(G, np.nan)
    PM = np.full((len(fams), len(ns)), np.nan)
    for a, fam in enumerate(fams):
        cls = FAMILIES[fam][1]

        def model_fn(xi, w, cls=cls):
            return cls(xi, lam=lam, weights=w)

        for j, n in enumerate(ns):
            # centred on the finite-N signal-to-noise prediction with the same recall criterion
            centre = float(theory.exponential_capacity_snr(n, lam, recall))
            grid = capacity_grid(centre, cfg["n_grid"], cfg["grid_span"])
            g, f, pm = measure_capacity(
                ctx, f"{fam}/N={n}", ctx.key(fam, n), n, grid, model_fn, cfg
            )
            G[a, j, : len(g)] = g
            F[a, j, : len(f)] = f
            PM[a, j] = pm
    ds = xr.Dataset(
        {
            "P_max": (("family", "N"), PM),
            "grid": (("family", "N", "grid_index"), G),
            "fraction": (("family", "N", "grid_index"), F),
        },
        coords={"family": fams, "N": np.asarray(ns), "grid_index": np.arange(cfg["n_grid"])},
    )
    annotate_capacity(ds)
    ds["family"].attrs.update(long_name="memory family", units="1")
    ds.attrs["lam"] = lam
    ds.attrs["recall"] = float(cfg["recall"])
    return ds
