r"""`spherical-bm-ensembles`: ensemble learning vs loss minimisation for spherical Boltzmann
machines, test log-likelihood against the number of training samples.

Set-up (after the title and abstract of Tulinski, Fernandez-de-Cossio-Diaz, Cocco, Monasson,
arXiv 2604.17936; the paper's text, and hence its replica prediction, could not be read from
here, so no theory curve is drawn): data are drawn from a teacher spherical BM with a rank-one
coupling $J_t = \beta_t\, u u^\top$ (u a random unit vector), using the large-N sampler
(`SphericalBM.sample`). With M training samples and a Gaussian prior
$\log P(J) = -\frac{\gamma N}{4}\mathrm{tr}J^2$:

- loss minimisation: the MAP couplings $J^*$ (gradient descent, `map_fit`), test score
  $\langle \log p(x|J^*)\rangle_{\rm test}$;
- ensemble learning: S couplings sampled from the posterior by Langevin dynamics
  (`posterior_langevin`), test score $\langle \log \frac1S\sum_s p(x|J_s)\rangle_{\rm test}$;
- the teacher's own test score as the ceiling.

Data sizes and posterior chains are `vmap`-ped (C and M are sufficient statistics, so every
data size shares one compiled program); seeds are checkpointed tasks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..models._spherical_bm import (
    SphericalBM,
    ensemble_log_prob,
    map_fit,
    posterior_langevin,
    second_moment,
)
from ._core import RunContext, experiment

DEFAULTS = {
    "N": 20,
    "beta_teacher": 0.8,
    "M": [5, 10, 20, 40, 80, 160, 320, 640],
    "n_test": 2000,
    "gamma": 1.0,
    "n_models": 32,
    "n_langevin": 2000,
    "dt": 0.05,
    "map_steps": 2000,
    "map_lr": 0.05,
    "n_seeds": 3,
}


def _one_seed(key, cfg):
    N = cfg["N"]
    ms = np.asarray(cfg["M"])
    ku, kd, kt, kl = jax.random.split(key, 4)
    u = jax.random.normal(ku, (N,))
    u = u / jnp.linalg.norm(u)
    teacher = SphericalBM(cfg["beta_teacher"] * jnp.outer(u, u))
    x_train = teacher.sample(kd, int(ms.max()))
    x_test = teacher.sample(kt, cfg["n_test"])
    Cs = jnp.stack([second_moment(x_train[:m]) for m in ms])
    m_arr = jnp.asarray(ms, jnp.float32)

    def fit(C, m, k):
        J_map = map_fit(C, m, gamma=cfg["gamma"], n_steps=cfg["map_steps"], lr=cfg["map_lr"])
        dt = cfg["dt"] / (m + cfg["gamma"] * N)
        Js = posterior_langevin(
            k,
            C,
            m,
            gamma=cfg["gamma"],
            n_models=cfg["n_models"],
            n_steps=cfg["n_langevin"],
            dt=dt,
            J0=J_map.J,
        )
        ll_map = jnp.mean(jax.vmap(J_map.log_prob)(x_test)) / N
        ll_ens = jnp.mean(ensemble_log_prob(Js, x_test)) / N
        ll_single = jnp.mean(jax.vmap(lambda J: jax.vmap(SphericalBM(J).log_prob)(x_test))(Js)) / N
        top = jnp.abs(jnp.linalg.eigh(J_map.J)[1][:, -1] @ u)
        return ll_map, ll_ens, ll_single, top

    keys = jax.random.split(kl, len(ms))
    ll_map, ll_ens, ll_single, top = jax.jit(jax.vmap(fit))(Cs, m_arr, keys)
    ll_teacher = jnp.mean(jax.vmap(teacher.log_prob)(x_test)) / N
    return {
        "map": ll_map,
        "ensemble": ll_ens,
        "single_posterior_sample": ll_single,
        "teacher": jnp.broadcast_to(ll_teacher, ll_map.shape),
        "overlap": top,
    }


def _summary(ds: xr.Dataset) -> dict:
    ll = ds.test_log_likelihood.mean("seed")
    gain = (ll.sel(estimator="ensemble") - ll.sel(estimator="map")).values
    return {
        "M": [int(m) for m in ds.M.values],
        "ensemble_minus_map_per_dim": [float(g) for g in gain],
        "teacher_per_dim": float(ll.sel(estimator="teacher").mean()),
        "map_overlap_with_teacher": [float(v) for v in ds.map_overlap.mean("seed").values],
        "replica_prediction": "not available (paper text not accessible); none drawn",
    }


def _figure(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    M = ds.M.values
    styles = {
        "teacher": ("k--", "teacher"),
        "map": ("o-", "loss minimisation (MAP)"),
        "ensemble": ("s-", "ensemble (posterior predictive)"),
        "single_posterior_sample": ("^:", "one posterior sample"),
    }
    for method, (fmt, label) in styles.items():
        v = ds.test_log_likelihood.sel(estimator=method)
        err = v.std("seed") / np.sqrt(max(v.sizes["seed"] - 1, 1))
        ax[0].errorbar(M, v.mean("seed"), err, fmt=fmt, label=label, capsize=2)
    ax[0].set(
        xscale="log",
        xlabel="training samples M",
        ylabel="test log-likelihood / N",
        title=f"spherical BM, N={int(ds.attrs.get('N', 0)) or ''}",
    )
    ax[0].legend(fontsize=8)
    gain = ds.test_log_likelihood.sel(estimator="ensemble") - ds.test_log_likelihood.sel(
        estimator="map"
    )
    ax[1].errorbar(
        M,
        gain.mean("seed"),
        gain.std("seed") / np.sqrt(max(gain.sizes["seed"] - 1, 1)),
        fmt="o-",
        capsize=2,
    )
    ax[1].axhline(0, color="k", lw=0.5)
    ax[1].set(
        xscale="log",
        xlabel="training samples M",
        ylabel="ensemble - MAP (per dim)",
        title="gain of ensemble learning (no replica curve: see docstring)",
    )
    fig.tight_layout()
    return fig


@experiment("spherical-bm-ensembles", defaults=DEFAULTS, summary=_summary, figure=_figure)
def spherical_bm_ensembles(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """Spherical BM: test log-likelihood of posterior ensembles vs MAP, against data size."""
    ctx.set_total(cfg["n_seeds"])
    outs = [
        ctx.task(f"seed={s}", lambda s=s: _one_seed(ctx.key("seed", s), cfg))
        for s in range(cfg["n_seeds"])
    ]
    methods = ["teacher", "map", "ensemble", "single_posterior_sample"]
    ll = np.stack([np.stack([np.asarray(o[m]) for m in methods]) for o in outs])
    ds = xr.Dataset(
        {
            "test_log_likelihood": (("seed", "estimator", "M"), ll),
            "map_overlap": (("seed", "M"), np.stack([np.asarray(o["overlap"]) for o in outs])),
        },
        coords={"seed": np.arange(cfg["n_seeds"]), "estimator": methods, "M": np.asarray(cfg["M"])},
    )
    ds.attrs["N"] = cfg["N"]
    ds.test_log_likelihood.attrs["long_name"] = "mean test log-likelihood per dimension"
    return ds
