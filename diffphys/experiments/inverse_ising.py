r"""`inverse-ising`: coupling reconstruction error vs the number of samples, every method.

A planted Sherrington–Kirkpatrick instance at inverse temperature beta,
$J_{ij} = \beta z_{ij}/\sqrt N$ ($z \sim \mathcal N(0, 1)$), $h_i = \beta\, h_{\rm scale}\,
\xi_i$ ($\xi \sim \mathcal N(0, 1)$), is sampled EXACTLY (Boltzmann probabilities of all
$2^N$ configurations by enumeration, `jax.random.choice`), M samples per data set, and the
couplings are fitted by exact maximum likelihood, pseudo-likelihood, minimum probability flow
(`diffphys.training`, vmapped over data sets) and the closed-form naive mean-field, TAP and
Sessak–Monasson inversions (`diffphys.theory`). Recorded: the RMS coupling error
$\epsilon = [\tfrac{2}{N(N-1)}\sum_{i<j}(J^{\rm fit}_{ij} - J_{ij})^2]^{1/2}$, mean and
standard error over data sets.

Theory beside simulation (both computed exactly by enumeration of the planted model):

- Cramér–Rao: exact ML is asymptotically efficient, so for large M its error tends to
  $\epsilon_{\rm CR} = [\tfrac{1}{M n_{\rm pairs}}\sum_{i<j}(F^{-1})_{(ij),(ij)}]^{1/2}$ with $F$
  the covariance of the sufficient statistics $(s_i, s_i s_j)$ under the planted model (the
  Fisher information per sample): the $M^{-1/2}$ law of consistent estimators (derived here,
  standard asymptotic statistics).
- The $M \to \infty$ limit of every method: each estimator applied to the exact moments
  (all $2^N$ configurations weighted by their probabilities). Consistent estimators (ML, PL,
  MPF) give zero; the mean-field inversions keep a bias that grows with beta, so their error
  saturates with M at low temperature (Nguyen, Zecchina & Berg, Adv. Phys. 66, 197 (2017)).

Every (beta, M) pair is one checkpointed task. All data sets are stored as the $2^N$
configurations with their sample counts as weights, so one compilation per method serves
every M.
"""

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import exact, io, models, theory, training
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

METHODS = ("exact", "pseudolikelihood", "mpf", "nmf", "tap", "sessak_monasson")
_ITERATIVE = {
    "exact": training.fit_exact,
    "pseudolikelihood": training.fit_pseudolikelihood,
    "mpf": training.fit_mpf,
}
_CLOSED = {
    "nmf": theory.mean_field_inverse,
    "tap": theory.tap_inverse,
    "sessak_monasson": theory.sessak_monasson_inverse,
}

PARAMS = {
    "N": Param(10, "number of spins of the planted SK instance (enumerated: 2^N states)",
               ge=3, le=16),
    "beta": Param([0.5, 1.2], "inverse temperatures (planted J_ij ~ N(0, beta^2/N))", gt=0),
    "M": Param([250, 1000, 4000], "numbers of exact samples per data set", ge=10),
    "n_datasets": Param(4, "independent data sets per (beta, M) (error bars)", ge=2),
    "h_scale": Param(0.1, "planted fields h_i ~ N(0, (beta h_scale)^2)", ge=0),
    "n_steps": Param(1500, "iteration cap of the ML, PL, MPF fits (Newton; Adam steps where "
                     "a fit falls back to Adam)", ge=10),
    "learning_rate": Param(0.05, "initial Adam learning rate of the iterative fits", gt=0),
}


def _validate(cfg: dict) -> None:
    if len(set(cfg["M"])) != len(cfg["M"]) or len(set(cfg["beta"])) != len(cfg["beta"]):
        raise ConfigError("M and beta must not contain repeated values.")


def _planted(ctx: RunContext, cfg: dict, beta: float) -> models.SK:
    kj, kh = jax.random.split(ctx.key("planted", beta))
    base = models.SK.sample(kj, cfg["N"])
    h = beta * cfg["h_scale"] * jax.random.normal(kh, (cfg["N"],), jnp.float32)
    return models.SK(beta * base.J, h)


def _pair_rmse(J_fit, J_true):
    n = J_true.shape[-1]
    iu = np.triu_indices(n, 1)
    d = np.asarray(J_fit)[..., iu[0], iu[1]] - np.asarray(J_true)[iu]
    return np.sqrt(np.mean(d**2, axis=-1))


def _cramer_rao(model: models.SK, x, p) -> float:
    """RMS Cramér–Rao coupling error at M = 1 (divide by sqrt(M))."""
    n = model.J.shape[0]
    iu = np.triu_indices(n, 1)
    x = np.asarray(x, np.float64)
    p = np.asarray(p, np.float64)
    stats = np.concatenate([x, x[:, iu[0]] * x[:, iu[1]]], axis=1)
    mean = p @ stats
    F = (stats - mean).T @ ((stats - mean) * p[:, None])
    cov = np.linalg.inv(F)
    return float(np.sqrt(np.mean(np.diag(cov)[n:])))


def _fit_all(data: training.SpinData, cfg: dict, J_true) -> tuple[np.ndarray, np.ndarray]:
    """Errors (n_sets, n_methods) and convergence flags for a stack of data sets."""
    errs, conv = [], []
    for name in METHODS:
        if name in _ITERATIVE:
            fit = _ITERATIVE[name]
            res = jax.vmap(lambda d, fit=fit: fit(
                d, n_steps=cfg["n_steps"], learning_rate=cfg["learning_rate"]))(data)
            errs.append(_pair_rmse(res.model.J, J_true))
            conv.append(np.asarray(res.converged) & np.isfinite(errs[-1]))
        else:
            m, C = jax.vmap(training.spin_moments)(data)
            Js = []
            for i in range(m.shape[0]):
                _, J = _CLOSED[name](m[i], C[i])
                Js.append(np.asarray(J))
            errs.append(_pair_rmse(np.stack(Js), J_true))
            conv.append(np.isfinite(errs[-1]))
    return np.stack(errs, axis=1), np.stack(conv, axis=1)


def _stack(x, counts) -> training.SpinData:
    sets = [training.spin_data(x, weights=c) for c in counts]
    return training.stack_spin_data(sets, unique=False)


@experiment(
    "inverse-ising",
    params=PARAMS,
    validate=_validate,
    runtime="about 2 min",
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def inverse_ising(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """Planted SK, exact samples: coupling error vs M and beta for ML, PL, MPF, nMF, TAP, SM."""
    betas, Ms, S = cfg["beta"], cfg["M"], cfg["n_datasets"]
    ctx.set_total(len(betas) * (len(Ms) + 1))
    err = np.zeros((len(betas), len(Ms), len(METHODS)))
    err_se = np.zeros_like(err)
    conv = np.zeros_like(err)
    inf_err = np.zeros((len(betas), len(METHODS)))
    cr = np.zeros(len(betas))
    for b, beta in enumerate(betas):
        model = _planted(ctx, cfg, beta)
        x = exact.all_configurations(model)
        p = exact.probabilities(model, 1.0)
        cr[b] = _cramer_rao(model, x, p)
        J_true = np.asarray(model.J)

        def limit(x=x, p=p, J_true=J_true):
            # the exact moments, replicated to the batch shape of the finite-M calls
            e, c = _fit_all(_stack(x, [np.asarray(p)] * S), cfg, J_true)
            return {"err": e[0], "conv": c[0]}

        out = ctx.task(f"beta={beta}/M=inf", limit)
        inf_err[b] = out["err"]
        for k, M in enumerate(Ms):

            def work(x=x, p=p, M=M, beta=beta, J_true=J_true):
                keys = jax.random.split(ctx.key("data", beta, M), S)
                idx = jax.vmap(lambda kk: jax.random.choice(kk, p.shape[0], (M,), p=p))(keys)
                counts = [np.bincount(np.asarray(i), minlength=p.shape[0]) for i in idx]
                e, c = _fit_all(_stack(x, counts), cfg, J_true)
                return {"err": e, "conv": c}

            out = ctx.task(f"beta={beta}/M={M}", work)
            e = np.asarray(out["err"], np.float64)
            err[b, k] = np.mean(e, axis=0)
            err_se[b, k] = np.std(e, axis=0, ddof=1) / np.sqrt(S)
            conv[b, k] = np.mean(np.asarray(out["conv"], np.float64), axis=0)
    M_arr = np.asarray(Ms, np.float64)
    ds = xr.Dataset(
        {
            "coupling_error": (("beta", "M", "method"), err),
            "coupling_error_err": (("beta", "M", "method"), err_se),
            "converged_fraction": (("beta", "M", "method"), conv),
            "coupling_error_infinite_M": (("beta", "method"), inf_err),
            "coupling_error_cramer_rao": (("beta", "M"), cr[:, None] / np.sqrt(M_arr)[None]),
        },
        coords={"beta": np.asarray(betas, np.float64), "M": np.asarray(Ms), "method": list(METHODS)},
    )
    io.annotate(
        ds,
        beta=("inverse temperature of the planted SK instance", "1"),
        M=("number of exact samples per data set", "1"),
        method=("inverse-Ising method", "1"),
        coupling_error=("RMS coupling error over pairs i<j, mean over data sets", "1"),
        converged_fraction=("fraction of data sets where the fit converged", "1"),
        coupling_error_infinite_M=("RMS coupling error of the method on the exact moments", "1"),
        coupling_error_cramer_rao=("Cramér–Rao RMS coupling error (exact ML asymptote)", "1"),
    )
    ds.attrs["N"] = int(cfg["N"])
    ds.attrs["n_datasets"] = int(S)
    return ds


def _summary(ds: xr.Dataset) -> dict:
    logM = np.log(ds["M"].values.astype(np.float64))
    out = {"N": ds.attrs["N"], "slopes": {}, "error_at_largest_M": {}, "error_infinite_M": {}}
    for beta in ds["beta"].values:
        tag = f"beta={float(beta):g}"
        d = ds.sel(beta=beta)
        out["slopes"][tag] = {
            str(m): float(np.polyfit(logM, np.log(d["coupling_error"].sel({"method": m}).values), 1)[0])
            if len(logM) > 1
            else None
            for m in ds["method"].values
        }
        out["error_at_largest_M"][tag] = {
            str(m): float(d["coupling_error"].sel({"method": m}).values[-1]) for m in ds["method"].values
        }
        out["error_infinite_M"][tag] = {
            str(m): float(d["coupling_error_infinite_M"].sel({"method": m}))
            for m in ds["method"].values
        }
        out["error_at_largest_M"][tag]["cramer_rao"] = float(
            d["coupling_error_cramer_rao"].values[-1]
        )
    out["expected_slope_consistent"] = -0.5
    out["min_converged_fraction"] = float(ds["converged_fraction"].min())
    return out


def _figure(ds: xr.Dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    nb = ds.sizes["beta"]
    fig, axes = plt.subplots(1, nb, figsize=(5.5 * nb, 4.2), squeeze=False)
    M = ds["M"].values
    for ax, beta in zip(axes[0], ds["beta"].values):
        d = ds.sel(beta=beta)
        for i, m in enumerate(ds["method"].values):
            c = f"C{i}"
            ax.errorbar(M, d["coupling_error"].sel({"method": m}), d["coupling_error_err"].sel({"method": m}),
                        marker="o", ms=4, capsize=2, color=c, label=str(m))
            lim = float(d["coupling_error_infinite_M"].sel({"method": m}))
            if lim > 1e-3:
                ax.axhline(lim, color=c, ls=":", lw=1)
        ax.plot(M, d["coupling_error_cramer_rao"], "k--", lw=1, label="Cramér–Rao ∝ M^-1/2")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("samples M")
        ax.set_ylabel("RMS coupling error")
        ax.set_title(f"beta = {float(beta):g} (dotted: M → ∞ limit)")
        ax.legend(fontsize=7)
    fig.suptitle(f"Inverse Ising, planted SK N = {ds.attrs['N']}, exact samples")
    fig.tight_layout()
    return fig
