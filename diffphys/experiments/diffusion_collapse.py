"""`diffusion-collapse`: memorisation in diffusion models with the exact empirical score
(Biroli, Bonnaire, de Bortoli, Mézard, arXiv 2402.18491, Sec. 4 and Fig. 3).

Data: n = e^{alpha d} points from N(0, I_d). At time t the noised point x_t ~ P^e_t (exactly the
marginal of the backward dynamics driven by the exact empirical score) has posterior weights
w_mu on the training points; the trajectory has *collapsed* when one point carries more than
half of the weight. We measure, versus t, n and d:

- the empirical excess entropy f^e(t) (Monte Carlo, `theory.excess_entropy_empirical`), to be
  compared with the Gaussian f(t) = alpha + (1/2) log(Delta_t / (Delta_t + e^{-2t})),
- the fraction of collapsed samples and the mean participation ratio 1 / sum_mu w_mu^2,

and compare the measured collapse time (collapsed fraction = 1/2) with t_C, the zero of f.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import io, models, theory
from ._core import Param, RunContext, experiment

PARAMS = {
    "alpha": Param([0.2, 0.4], "data-set size exponent: n = exp(alpha d) training points", gt=0),
    "d": Param([8, 16, 24], "data dimensions", ge=1),
    "t": Param(
        [float(v) for v in np.round(np.geomspace(0.01, 3.0, 24), 5)],
        "diffusion times at which the collapse statistics are measured",
        gt=0,
    ),
    "n_samples": Param(500, "noised points x_t per time", ge=2),
    "chunk_size": Param(4096, "training points per chunk of the empirical score", ge=1),
}


def _measure(key, alpha: float, d: int, cfg: dict):
    n = int(round(math.exp(alpha * d)))
    k_data, k_t = jax.random.split(key)
    data = jax.random.normal(k_data, (n, d), jnp.float32)
    score = models.EmpiricalScore(data, cfg["chunk_size"])
    a_eff = math.log(n) / d
    ts = jnp.asarray(cfg["t"], jnp.float32)
    m = cfg["n_samples"]

    @jax.jit
    def at_time(k, t):
        k1, k2 = jax.random.split(k)
        idx = jax.random.randint(k1, (m,), 0, n)
        x = models.forward_sample(k2, data[idx], t)
        logp = jax.vmap(score.log_density, in_axes=(0, None))(x, t) / d
        stats = jax.vmap(score.posterior_stats, in_axes=(0, None))(x, t)
        const = a_eff + 0.5 * (1 + jnp.log(2 * jnp.pi * models.ou_variance(t)))
        return {
            "f_e": jnp.mean(logp) + const,
            "f_e_err": jnp.std(logp) / math.sqrt(m),
            "collapsed": jnp.mean((stats["max_weight"] > 0.5).astype(jnp.float32)),
            "participation": jnp.mean(stats["participation"]),
        }

    outs = [at_time(jax.random.fold_in(k_t, i), t) for i, t in enumerate(ts)]
    res = {k: np.stack([np.asarray(o[k]) for o in outs]) for k in outs[0]}
    res["n"] = np.asarray(n)
    return res


@experiment(
    "diffusion-collapse", runtime="under 1 min (31 CPU-s measured)",
    params=PARAMS,
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def diffusion_collapse(ctx: RunContext, cfg: dict):
    """Collapse (memorisation) time of diffusion models vs n = e^{alpha d} and d (2402.18491)."""
    alphas, dims, t = cfg["alpha"], cfg["d"], np.asarray(cfg["t"])
    ctx.set_total(len(alphas) * len(dims))
    names = ("f_e", "f_e_err", "collapsed", "participation")
    out = {k: np.zeros((len(alphas), len(dims), len(t))) for k in names}
    f_th = np.zeros_like(out["f_e"])
    n_arr = np.zeros((len(alphas), len(dims)), np.int64)
    tc_th = np.zeros(n_arr.shape)
    tc_meas = np.zeros(n_arr.shape)
    for i, alpha in enumerate(alphas):
        for j, d in enumerate(dims):
            r = ctx.task(
                f"alpha={alpha}_d={d}",
                lambda alpha=alpha, d=d: _measure(ctx.key("alpha", alpha, "d", d), alpha, d, cfg),
            )
            for k in names:
                out[k][i, j] = r[k]
            n = int(r["n"])
            a_eff = math.log(n) / d
            n_arr[i, j] = n
            f_th[i, j] = theory.excess_entropy_gaussian(t, a_eff, np.ones(d))
            tc_th[i, j] = theory.collapse_time_gaussian(a_eff, np.ones(d))
            tc_meas[i, j] = theory.crossing_time(t, r["collapsed"], 0.5)
    dims2 = ("alpha", "d")
    ds = xr.Dataset(
        {k: (("alpha", "d", "t"), v) for k, v in out.items()}
        | {
            "f_theory": (("alpha", "d", "t"), f_th),
            "n": (dims2, n_arr),
            "t_C_theory": (dims2, tc_th),
            "t_C_measured": (dims2, tc_meas),
        },
        coords={"alpha": np.asarray(alphas), "d": np.asarray(dims), "t": t},
    )
    io.annotate(
        ds,
        alpha=("data-set size exponent alpha = log(n) / d", "1"),
        d=("data dimension", "1"),
        t=("diffusion time", "1"),
        f_e=("empirical excess entropy density f^e(t)", "nat"),
        f_e_err=("Monte Carlo standard error of f^e(t)", "nat"),
        collapsed=("fraction of x_t ~ P^e_t with max posterior weight > 1/2", "1"),
        participation=("mean participation ratio 1 / sum_mu w_mu^2", "1"),
        f_theory=("Gaussian-data excess entropy density f(t)", "nat"),
        n=("number of training points", "1"),
        t_C_theory=("collapse time t_C, zero of the Gaussian f(t)", "1"),
        t_C_measured=("time at which half of the samples have collapsed", "1"),
    )
    return ds


def _summary(ds) -> dict:
    rows = []
    for a in ds["alpha"].values:
        for d in ds["d"].values:
            sel = ds.sel(alpha=a, d=d)
            rows.append(
                {
                    "alpha": float(a),
                    "d": int(d),
                    "n": int(sel["n"]),
                    "t_C_theory": float(sel["t_C_theory"]),
                    "t_C_measured": float(sel["t_C_measured"]),
                }
            )
    return {"collapse": rows}


def _figure(ds):
    import matplotlib.pyplot as plt

    na = ds.sizes["alpha"]
    fig, axes = plt.subplots(na, 3, figsize=(15, 3.8 * na), squeeze=False)
    for i, a in enumerate(ds["alpha"].values):
        for j, d in enumerate(ds["d"].values):
            sel = ds.sel(alpha=a, d=d)
            c = f"C{j}"
            lab = f"d={d}, n={int(sel['n'])}"
            axes[i, 0].errorbar(
                sel["t"], sel["f_e"], sel["f_e_err"], fmt="o", ms=3, color=c, label=lab
            )
            axes[i, 0].plot(sel["t"], np.clip(sel["f_theory"], 0, None), "-", color=c, lw=1)
            axes[i, 1].plot(sel["t"], sel["collapsed"], "o-", ms=3, color=c, label=lab)
            axes[i, 1].axvline(float(sel["t_C_theory"]), color=c, ls=":")
            axes[i, 2].plot(sel["t"], sel["participation"], "o-", ms=3, color=c, label=lab)
        axes[i, 0].set(
            xscale="log", xlabel="t", ylabel="f^e(t)", title=f"excess entropy, alpha={a}"
        )
        axes[i, 1].set(
            xscale="log",
            xlabel="t",
            ylabel="fraction collapsed",
            title="max posterior weight > 1/2 (dotted: t_C theory)",
        )
        axes[i, 2].set(
            xscale="log",
            yscale="log",
            xlabel="t",
            ylabel="1 / sum w^2",
            title="participation ratio",
        )
        for ax in axes[i]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
