r"""`spherical-bm-ensembles`: ensemble learning vs loss minimisation for spherical Boltzmann
machines, test log-likelihood against the number of training samples, next to the large-N
prediction.

Set-up (the convention of the public code of Tulinski, Cocco, Monasson &
Fernandez-de-Cossio-Diaz for arXiv 2605.09031, the companion of "Replica theory of spherical
Boltzmann machine ensembles", arXiv 2604.17936, whose text could not be read: see
`diffphys.models.SphericalBM`): a rank-one teacher $W^* = \omega uu^\top$ ($\omega > 1$,
condensed) generates exact samples (`sbm_sample_rank_one`); from the first M = K of them

- loss minimisation: the MAP couplings of $-\sum_a\log p(x^a|W) + \frac{\gamma N}4\mathrm{tr}W^2$
  (`sbm_map_fit`), scored by $\langle\log p(x|W^*)\rangle_{\rm test}/N$;
- ensemble learning: S couplings from the tempered posterior $P_\eta \propto e^{-\eta\,\rm loss}$
  (`sbm_posterior_langevin`, started from its Gaussian factor), scored by the
  posterior-predictive density $\log\frac1S\sum_s p(x|W_s)$;
- one posterior sample (the mean over the S chains of each chain's own score);
- the teacher itself (the ceiling).

Every score uses the exact $\log Z$ (contour integral). The theory
(`diffphys.theory.sbm_teacher_student`, derived here at large N and fixed K) gives MAP for
all K and the ensemble and single-sample scores where the posterior is paramagnetic
($\gamma\eta > 1$, $c_1 = 1 + (K-1)(1-1/\omega) < \gamma$): there the ensemble equals MAP and
beats one sample by $1/(4\gamma\eta)$ per dimension. For larger K (condensed MAP and
posterior) only the simulation is drawn. The theory assumes $K \ll N$: finite-size
corrections are O(K/N).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..io import annotate
from ..models import (
    SphericalBM,
    sbm_ensemble_log_prob,
    sbm_log_partition_from_eigenvalues,
    sbm_map_fit,
    sbm_posterior_langevin,
    sbm_sample_rank_one,
    sbm_second_moment,
)
from ..theory import sbm_teacher_student
from ._core import Param, RunContext, experiment

PARAMS = {
    "N": Param(64, "visible dimension", ge=2),
    "omega": Param(2.0, "teacher strength omega of W* = omega u u^T (> 1: condensed)", gt=0),
    "M": Param([1, 2, 3, 4, 6, 8, 12, 16], "numbers of training samples K", ge=1),
    "n_test": Param(2000, "test samples for the log-likelihood", ge=1),
    "gamma": Param(3.0, "L2 strength gamma of the loss", gt=0),
    "eta": Param(4.0, "inverse temperature eta of the tempered posterior", gt=0),
    "n_models": Param(32, "posterior samples S in the ensemble", ge=1),
    "n_langevin": Param(200, "Langevin steps per posterior chain", ge=1),
    "dt": Param(0.05, "Langevin time step", gt=0),
    "map_steps": Param(1500, "optax steps of the MAP fit", ge=1),
    "map_lr": Param(0.05, "learning rate of the MAP fit", gt=0),
    "n_seeds": Param(3, "independent teachers and data sets", ge=1),
}

ESTIMATORS = ["teacher", "map", "ensemble", "single_posterior_sample"]


def _one_seed(key, cfg):
    N = cfg["N"]
    ms = np.asarray(cfg["M"])
    gamma, eta = cfg["gamma"], cfg["eta"]
    ku, kd, kt, kl = jax.random.split(key, 4)
    u = jax.random.normal(ku, (N,))
    u = u / jnp.linalg.norm(u)
    x_train = sbm_sample_rank_one(kd, u, cfg["omega"], int(ms.max()))
    x_test = sbm_sample_rank_one(kt, u, cfg["omega"], cfg["n_test"])
    Cs = jnp.stack([sbm_second_moment(x_train[:m]) for m in ms])
    m_arr = jnp.asarray(ms, jnp.float32)

    def score(J):
        """Mean test log p(x|J) / N with the exact log Z."""
        log_z = sbm_log_partition_from_eigenvalues(jnp.linalg.eigvalsh(J))
        return (0.5 * jnp.mean(jnp.einsum("ni,ij,nj->n", x_test, J, x_test)) - log_z) / N

    def fit(C, m, k):
        lr = cfg["map_lr"] / (1.0 + gamma * N / (2.0 * m))
        J_map = sbm_map_fit(C, m, gamma=gamma, n_steps=cfg["map_steps"], lr=lr)
        dt = cfg["dt"] / (eta * (m + gamma * N))
        Js = sbm_posterior_langevin(
            k,
            C,
            m,
            gamma=gamma,
            eta=eta,
            n_models=cfg["n_models"],
            n_steps=cfg["n_langevin"],
            dt=dt,
        )
        ll_ens = jnp.mean(sbm_ensemble_log_prob(Js, x_test)) / N
        ll_single = jnp.mean(jax.vmap(score)(Js))
        top = jnp.abs(J_map.saddle()[2][:, -1] @ u)
        return score(J_map.J), ll_ens, ll_single, top

    keys = jax.random.split(kl, len(ms))
    ll_map, ll_ens, ll_single, top = jax.jit(jax.vmap(fit))(Cs, m_arr, keys)
    teacher = SphericalBM(cfg["omega"] * jnp.outer(u, u))
    ll_teacher = (
        0.5 * jnp.mean(jnp.einsum("ni,ij,nj->n", x_test, teacher.J, x_test))
        - teacher.log_partition_exact()
    ) / N
    return {
        "map": ll_map,
        "ensemble": ll_ens,
        "single_posterior_sample": ll_single,
        "teacher": jnp.broadcast_to(ll_teacher, ll_map.shape),
        "overlap": top,
    }


def _summary(ds: xr.Dataset) -> dict:
    ll = ds.test_log_likelihood.mean("seed")
    th = ds.test_log_likelihood_theory
    gain = (ll.sel(estimator="ensemble") - ll.sel(estimator="map")).values
    return {
        "M": [int(m) for m in ds.M.values],
        "ensemble_minus_map_per_dim": [float(g) for g in gain],
        "single_minus_map_per_dim": [
            float(g)
            for g in (ll.sel(estimator="single_posterior_sample") - ll.sel(estimator="map")).values
        ],
        "map_minus_theory_per_dim": [
            float(g) for g in (ll.sel(estimator="map") - th.sel(estimator="map")).values
        ],
        "teacher_per_dim": float(ll.sel(estimator="teacher").mean()),
        "teacher_theory_per_dim": float(th.sel(estimator="teacher").mean()),
        "map_overlap_with_teacher": [float(v) for v in ds.map_overlap.mean("seed").values],
        "theory": "large-N, fixed-K prediction derived in diffphys.theory._spherical_bm "
        "(MAP everywhere; ensemble and one posterior sample in the paramagnetic posterior only)",
    }


def _figure(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.4))
    M = ds.M.values
    th = ds.test_log_likelihood_theory
    styles = {
        "teacher": ("k", "o", "teacher"),
        "map": ("C0", "o", "loss minimisation (MAP)"),
        "ensemble": ("C1", "s", "ensemble (posterior predictive)"),
        "single_posterior_sample": ("C2", "^", "one posterior sample"),
    }
    n_seed = ds.sizes["seed"]
    for method, (col, mk, label) in styles.items():
        v = ds.test_log_likelihood.sel(estimator=method)
        err = v.std("seed") / np.sqrt(max(n_seed - 1, 1))
        ax[0].errorbar(M, v.mean("seed"), err, fmt=mk, color=col, label=label, capsize=2, ms=5)
        ax[0].plot(M, th.sel(estimator=method), "-", color=col, lw=1.2, alpha=0.8)
    condensed = ds.map_condensed_theory.values.astype(bool)
    if condensed.any():
        ax[0].axvspan(M[condensed].min() * 0.9, M.max() * 1.1, color="0.9", zorder=0)
        ax[0].text(
            M[condensed].min(),
            ax[0].get_ylim()[1],
            " condensed MAP / posterior:\n no ensemble theory",
            va="top",
            fontsize=8,
        )
    ax[0].set(
        xscale="log",
        xlabel="training samples M (= K)",
        ylabel="test log-likelihood / N",
        title=f"spherical BM, N={int(ds.attrs.get('N', 0))}, "
        f"omega={ds.attrs.get('omega')}, gamma={ds.attrs.get('gamma')}, eta={ds.attrs.get('eta')}"
        "\nmarkers: simulation; lines: large-N theory",
    )
    ax[0].legend(fontsize=8, loc="lower right")
    for method, col in (("ensemble", "C1"), ("single_posterior_sample", "C2")):
        gain = ds.test_log_likelihood.sel(estimator=method) - ds.test_log_likelihood.sel(
            estimator="map"
        )
        ax[1].errorbar(
            M,
            gain.mean("seed"),
            gain.std("seed") / np.sqrt(max(n_seed - 1, 1)),
            fmt="o",
            color=col,
            capsize=2,
            label=f"{method} - MAP (simulation)",
        )
        ax[1].plot(
            M,
            th.sel(estimator=method) - th.sel(estimator="map"),
            "-",
            color=col,
            label=f"{method} - MAP (theory)",
        )
    ax[1].axhline(0, color="k", lw=0.5)
    ax[1].set(
        xscale="log",
        xlabel="training samples M (= K)",
        ylabel="difference per dimension",
        title="gain of ensemble learning over loss minimisation",
    )
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


@experiment("spherical-bm-ensembles", runtime="about 6.5 min (400 CPU-s measured)", params=PARAMS, summary=_summary, figure=_figure)
def spherical_bm_ensembles(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """Spherical BM: test log-likelihood of posterior ensembles vs MAP against data size, with
    the large-N theory."""
    ctx.set_total(cfg["n_seeds"])
    outs = [
        ctx.task(f"seed={s}", lambda s=s: _one_seed(ctx.key("seed", s), cfg))
        for s in range(cfg["n_seeds"])
    ]
    ll = np.stack([np.stack([np.asarray(o[m]) for m in ESTIMATORS]) for o in outs])
    theory = sbm_teacher_student(
        cfg["omega"], np.asarray(cfg["M"]), cfg["gamma"], cfg["eta"], n=cfg["N"]
    )
    ll_theory = np.stack(
        [
            np.asarray(theory.teacher),
            np.asarray(theory.map),
            np.asarray(theory.ensemble),
            np.asarray(theory.single_sample),
        ]
    )
    ds = xr.Dataset(
        {
            "test_log_likelihood": (("seed", "estimator", "M"), ll),
            "test_log_likelihood_theory": (("estimator", "M"), ll_theory),
            "map_condensed_theory": (("M",), np.asarray(theory.map_condensed)),
            "map_overlap": (("seed", "M"), np.stack([np.asarray(o["overlap"]) for o in outs])),
        },
        coords={
            "seed": np.arange(cfg["n_seeds"]),
            "estimator": ESTIMATORS,
            "M": np.asarray(cfg["M"]),
        },
    )
    for k in ("N", "omega", "gamma", "eta"):
        ds.attrs[k] = cfg[k]
    annotate(
        ds,
        seed=("teacher and data-set seed", "1"),
        estimator=("estimator", "1"),
        M=("number of training samples K", "1"),
        test_log_likelihood=("mean test log-likelihood per dimension (exact log Z)", "nat"),
        test_log_likelihood_theory=(
            "large-N fixed-K prediction (diffphys.theory.sbm_teacher_student); nan where none",
            "nat",
        ),
        map_condensed_theory=("whether the MAP couplings are condensed (theory)", "1"),
        map_overlap=("overlap of the MAP top eigenvector with the teacher direction", "1"),
    )
    return ds
