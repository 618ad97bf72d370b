"""`kde-regimes`: statistics of the Gaussian kernel density estimator versus its bandwidth h,
for n = e^{alpha d} Gaussian data points in d dimensions (Biroli & Mézard, arXiv 2408.05807).

At query points x ~ N(0, I) we record log rho_h(x), the participation ratio Y_2 = sum_i w_i^2
of the kernel weights and the largest weight, and compare with the random-energy-model theory
(`diffphys.theory`): the annealed log-density above h_G, the extreme-value one below, the
boundaries h_G (mu = 1) and h_CLT = sqrt(2) h_G (mu = 2), and E[Y_2] = 1 - mu below h_G.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import io, models, theory
from ._core import Param, RunContext, experiment

PARAMS = {
    "alpha": Param(0.5, "data-set size exponent: n = exp(alpha d) points", gt=0),
    "d": Param([8, 14, 20, 24], "data dimensions", ge=1),
    "h": Param(
        [float(v) for v in np.round(np.geomspace(0.15, 2.5, 16), 4)], "kernel bandwidths", gt=0
    ),
    "n_query": Param(400, "query points x ~ N(0, I) per dimension", ge=2),
    "chunk_size": Param(4096, "data points per chunk of the density evaluation", ge=1),
}


def _measure(key, d: int, cfg: dict):
    n = int(round(math.exp(cfg["alpha"] * d)))
    k1, k2 = jax.random.split(key)
    y = jax.random.normal(k1, (n, d), jnp.float32)
    x = jax.random.normal(k2, (cfg["n_query"], d), jnp.float32)

    @jax.jit
    def at_h(h):
        kde = models.GaussianKDE(y, h, cfg["chunk_size"])
        return jax.vmap(kde.statistics)(x)

    outs = [at_h(jnp.float32(h)) for h in cfg["h"]]
    res = {k: np.stack([np.asarray(o[k]) for o in outs]) for k in outs[0]}
    res["n"] = np.asarray(n)
    res["q"] = np.asarray(jnp.sum(x**2, axis=1)) / d
    return res


@experiment(
    "kde-regimes", runtime="under 1 min (25 CPU-s measured)", params=PARAMS, summary=lambda ds: _summary(ds), figure=lambda ds: _figure(ds)
)
def kde_regimes(ctx: RunContext, cfg: dict):
    """Kernel density estimation in high dimension: CLT, heavy-tailed and extreme-value regimes."""
    dims, h = cfg["d"], np.asarray(cfg["h"])
    alpha = cfg["alpha"]
    ctx.set_total(len(dims))
    log_rho = np.zeros((len(dims), len(h), cfg["n_query"]))
    y2 = np.zeros_like(log_rho)
    wmax = np.zeros_like(log_rho)
    n_arr = np.zeros(len(dims), np.int64)
    q = np.zeros((len(dims), 1, cfg["n_query"]))
    for j, d in enumerate(dims):
        r = ctx.task(f"d={d}", lambda d=d: _measure(ctx.key("d", d), d, cfg))
        log_rho[j] = r["log_density"] / d
        y2[j], wmax[j] = r["participation_ratio"], r["max_weight"]
        n_arr[j] = int(r["n"])
        q[j, 0] = r["q"]
    # log of rho_h / E_D rho_h = N(x; 0, (1 + h^2) I): removes the query point's own
    # fluctuations, leaving those of the data set that the paper's regimes are about
    hh = h[None, :, None]
    log_ratio = log_rho + 0.5 * np.log(2 * np.pi * (1 + hh**2)) + q / (2 * (1 + hh**2))
    centred = log_ratio - log_ratio.mean(axis=-1, keepdims=True)
    skew = np.mean(centred**3, axis=-1) / np.mean(centred**2, axis=-1) ** 1.5
    ds = xr.Dataset(
        {
            "log_rho": (("d", "h", "query"), log_rho),
            "log_rho_mean": (("d", "h"), log_rho.mean(-1)),
            "log_ratio": (("d", "h", "query"), log_ratio),
            "log_ratio_std": (("d", "h"), log_ratio.std(-1)),
            "log_ratio_skewness": (("d", "h"), skew),
            "participation_ratio": (("d", "h"), y2.mean(-1)),
            "max_weight": (("d", "h"), wmax.mean(-1)),
            "log_rho_theory": ("h", theory.log_density_per_dim(h, alpha)),
            "participation_theory": ("h", theory.mean_participation_ratio(h, alpha)),
            "tail_index": ("h", theory.tail_index(h, alpha)),
            "n": ("d", n_arr),
        },
        coords={"d": np.asarray(dims), "h": h, "query": np.arange(cfg["n_query"])},
    )
    io.annotate(
        ds,
        d=("data dimension", "1"),
        h=("kernel bandwidth", "1"),
        query=("query point index", "1"),
        log_rho=("(1/d) log rho_h(x) at query points x ~ N(0, I)", "nat"),
        log_rho_mean=("mean over query points of (1/d) log rho_h(x)", "nat"),
        log_ratio=("(1/d) log [rho_h(x) / N(x; 0, (1 + h^2) I)]", "nat"),
        log_ratio_std=("standard deviation over query points of log_ratio", "nat"),
        log_ratio_skewness=("skewness over query points of log_ratio", "1"),
        participation_ratio=("mean participation ratio Y_2 = sum_i w_i^2", "1"),
        max_weight=("mean largest kernel weight", "1"),
        log_rho_theory=("random-energy-model (1/d) log rho_h", "nat"),
        participation_theory=("random-energy-model E[Y_2]", "1"),
        tail_index=("tail index mu of the kernel weights", "1"),
        n=("number of data points", "1"),
    )
    ds.attrs["alpha"] = float(alpha)
    ds.attrs["h_G"] = float(theory.h_glass(alpha)[0])
    ds.attrs["h_CLT"] = float(theory.h_clt(alpha)[0])
    return ds


def _summary(ds) -> dict:
    big = ds.isel(d=-1)
    return {
        "alpha": float(ds.attrs["alpha"]),
        "h_G_theory": float(ds.attrs["h_G"]),
        "h_CLT_theory": float(ds.attrs["h_CLT"]),
        "largest_d": int(big["d"]),
        "max_abs_log_rho_minus_theory_above_h_CLT": float(
            np.abs(big["log_rho_mean"] - big["log_rho_theory"])
            .where(ds["h"] > ds.attrs["h_CLT"])
            .max()
        ),
        "participation_at_smallest_h": float(big["participation_ratio"].isel(h=0)),
        "participation_theory_at_smallest_h": float(big["participation_theory"].isel(h=0)),
    }


def _figure(ds):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    h = ds["h"].values
    for j, d in enumerate(ds["d"].values):
        sel, c = ds.sel(d=d), f"C{j}"
        lab = f"d={d}, n={int(sel['n'])}"
        axes[0].plot(h, sel["log_rho_mean"], "o", color=c, label=lab)
        axes[1].plot(h, sel["participation_ratio"], "o-", color=c, label=lab)
        axes[2].plot(h, sel["log_ratio_skewness"], "o-", color=c, label=lab)
    axes[0].plot(h, ds["log_rho_theory"], "k-", label="theory (d -> inf)")
    axes[1].plot(h, ds["participation_theory"], "k-", label="1 - mu (theory)")
    axes[0].set(
        xscale="log", xlabel="h", ylabel="E (1/d) log rho_h", title="log-density per dimension"
    )
    axes[1].set(xscale="log", xlabel="h", ylabel="E Y_2", title="participation ratio sum w^2")
    axes[2].axhline(0, color="gray", lw=0.8)
    axes[2].set(
        xscale="log", xlabel="h", ylabel="skewness", title="skewness of log(rho / E rho) (0: CLT)"
    )
    big = ds.isel(d=-1)
    for k, i in enumerate(np.linspace(0, len(h) - 1, 4).astype(int)):
        v = big["log_ratio"].isel(h=i).values
        z = (v - v.mean()) / v.std()
        axes[3].hist(
            z, bins=30, density=True, histtype="step", color=f"C{k}", label=f"h={h[i]:.2f}"
        )
    zz = np.linspace(-4, 4, 200)
    axes[3].plot(zz, np.exp(-(zz**2) / 2) / np.sqrt(2 * np.pi), "k--", lw=1, label="N(0,1)")
    axes[3].set(
        xlabel="standardised log(rho / E rho)", title=f"distribution over x, d={int(big['d'])}"
    )
    for ax in axes[:3]:
        ax.set_xticks([0.2, 0.5, 1.0, 2.0], ["0.2", "0.5", "1", "2"])
        ax.set_xticks([], minor=True)
        ax.axvline(ds.attrs["h_G"], color="k", ls=":", lw=1)
        ax.axvline(ds.attrs["h_CLT"], color="k", ls="--", lw=1)
    for ax in axes:
        ax.legend(fontsize=7)
    axes[0].text(0.02, 0.02, "dotted: h_G, dashed: h_CLT", transform=axes[0].transAxes, fontsize=8)
    fig.tight_layout()
    return fig
