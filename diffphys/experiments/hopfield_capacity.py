"""`hopfield-capacity`: retrieval overlap of the Hopfield model versus load, next to AGS theory."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import ensemble, io, models, theory
from ._core import Param, RunContext, experiment

PARAMS = {
    "N": Param([500, 1000, 2000], "network sizes", ge=2),
    "alpha": Param(
        [0.02, 0.05, 0.08, 0.1, 0.12, 0.13, 0.14, 0.15, 0.16, 0.18, 0.2, 0.23, 0.26],
        "loads alpha = P / N",
        gt=0,
    ),
    "n_samples": Param(12, "pattern sets per (N, alpha)", ge=1),
    "max_sweeps": Param(40, "maximum zero-temperature asynchronous sweeps", ge=1),
    "retrieved": Param(0.9, "final overlap above which a pattern counts as retrieved", gt=0, le=1),
}

METHOD = (
    "alpha_c_sim: for each N, the load at which the fraction of samples whose final overlap "
    "exceeds `retrieved` crosses 1/2 (linear interpolation in alpha); reported at the largest N "
    "and extrapolated to N -> infinity by a linear fit in N^(-1/2)."
)


def _overlaps(ctx: RunContext, N: int, cfg: dict) -> np.ndarray:
    """Final overlaps, shape (alpha, sample): one compiled call over loads and disorder samples.

    Every sample stores P_max = max(alpha) N patterns and masks out all but alpha N of them, so
    the whole sweep over loads has one array shape.
    """
    alphas = np.asarray(cfg["alpha"], np.float64)
    n_pat = np.maximum(1, np.round(alphas * N)).astype(np.int32)
    p_max = int(n_pat.max())
    S = cfg["n_samples"]

    def one(key, p_active):
        k_xi, k_dyn = jax.random.split(key)
        xi = models.random_patterns(k_xi, p_max, N)
        w = (jnp.arange(p_max) < p_active).astype(jnp.float32)
        model = models.Hopfield(xi, weights=w, binary=True)
        _, m, _ = models.retrieve(
            model, xi[0].astype(jnp.int8), key=k_dyn, max_sweeps=cfg["max_sweeps"]
        )
        return m[0]

    def work():
        keys = jax.random.split(ctx.key("N", N), len(alphas) * S)
        p = jnp.repeat(jnp.asarray(n_pat), S)
        # chunk_size=1 on CPU: lax.map over samples. A vmapped fori_loop on XLA:CPU re-copies the
        # batched patterns every site update (measured ~20x slower than mapping).
        overlap = ensemble.run(one, keys, p, chunk_size=ensemble.default_chunk_size())
        return {"overlap": overlap.reshape(len(alphas), S)}

    return ctx.task(f"N={N}", work)["overlap"]


def _crossing(alphas, frac, level=0.5):
    """First alpha where `frac` falls below `level` (linear interpolation), nan if never."""
    below = np.nonzero(frac < level)[0]
    if below.size == 0 or below[0] == 0:
        return float("nan")
    j = below[0]
    a0, a1, f0, f1 = alphas[j - 1], alphas[j], frac[j - 1], frac[j]
    return float(a0 + (f0 - level) * (a1 - a0) / (f0 - f1))


def _alpha_c_sim(ds):
    alphas = ds["alpha"].values
    frac = (ds["overlap"] > ds.attrs["retrieved"]).mean("sample").values  # (N, alpha)
    per_n = np.array([_crossing(alphas, f) for f in frac])
    n = ds["N"].values.astype(np.float64)
    ok = np.isfinite(per_n)
    extrap = float("nan")
    if ok.sum() >= 2:
        extrap = float(np.polyfit(n[ok] ** -0.5, per_n[ok], 1)[1])
    return per_n, extrap


def _summary(ds) -> dict:
    per_n, extrap = _alpha_c_sim(ds)
    return {
        "alpha_c_theory": float(ds.attrs["alpha_c_theory"]),
        "alpha_c_sim": float(per_n[-1]),
        "alpha_c_sim_extrapolated": extrap,
        "alpha_c_sim_per_N": {int(n): float(a) for n, a in zip(ds["N"].values, per_n)},
        "alpha_c_sim_method": METHOD,
        "overlap_at_alpha_0.05": {
            int(n): float(ds["overlap"].sel(N=n).mean("sample").interp(alpha=0.05))
            for n in ds["N"].values
        },
    }


def _figure(ds):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    a_fine = np.linspace(0.005, float(ds["alpha"].max()), 300)
    ac = float(ds.attrs["alpha_c_theory"])
    for ax, what in zip(axes, ["mean", "fraction"]):
        for n in ds["N"].values:
            o = ds["overlap"].sel(N=n)
            if what == "mean":
                err = o.std("sample") / np.sqrt(o.sizes["sample"])
                ax.errorbar(ds["alpha"], o.mean("sample"), err, marker="o", ms=3, label=f"N={n}")
            else:
                ax.plot(
                    ds["alpha"],
                    (o > ds.attrs["retrieved"]).mean("sample"),
                    "o-",
                    ms=3,
                    label=f"N={n}",
                )
        if what == "mean":
            m_th = theory.ags_overlap(a_fine)
            m_th = np.where(m_th > 1e-6, m_th, np.nan)  # the retrieval branch only
            ax.plot(a_fine, m_th, "k-", lw=1.5, label="AGS RS retrieval, T=0")
            ax.set_ylabel("final overlap m with the stored pattern")
        else:
            ax.set_ylabel(f"P(m > {ds.attrs['retrieved']})")
        ax.axvline(ac, color="k", ls=":", lw=1)
        ax.set_xlabel(r"load $\alpha = P/N$")
        ax.legend(fontsize=8)
    axes[0].set_title(r"Hopfield, T=0 async dynamics from a stored pattern")
    axes[1].set_title(rf"retrieval probability; AGS $\alpha_c$ = {ac:.4f}")
    fig.tight_layout()
    return fig


@experiment("hopfield-capacity", runtime="under 1 min (31 CPU-s measured)", params=PARAMS, summary=_summary, figure=_figure)
def hopfield_capacity(ctx: RunContext, cfg: dict):
    """Hopfield final overlap vs load alpha = P/N for several N, beside the AGS RS curve."""
    ctx.set_total(len(cfg["N"]))
    data = np.stack([_overlaps(ctx, int(n), cfg) for n in cfg["N"]])
    alphas = np.asarray(cfg["alpha"], np.float64)
    ds = xr.Dataset(
        {
            "overlap": (("N", "alpha", "sample"), data),
            "overlap_theory": (("alpha",), theory.ags_overlap(alphas)),
        },
        coords={"N": np.asarray(cfg["N"]), "alpha": alphas, "sample": np.arange(cfg["n_samples"])},
    )
    io.annotate(
        ds,
        N=("number of neurons", "1"),
        alpha=("load P / N", "1"),
        sample=("sample index", "1"),
        overlap=("overlap with the stored pattern after T=0 async dynamics", "1"),
        overlap_theory=("AGS replica-symmetric retrieval overlap", "1"),
    )
    ds.attrs["alpha_c_theory"] = theory.ags_alpha_c()
    ds.attrs["retrieved"] = float(cfg["retrieved"])
    return ds
