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

Sparse instances: a planted Edwards–Anderson spin glass on a periodic 2D lattice of shape
`ea_shape` (N = product <= 16, each axis >= 3 so that the periodic neighbours are distinct),
$J_{xy} = \beta z_{xy}/\sqrt{k}$ on the 2N lattice edges, $k = 4$ the coordination number
($z$ Gaussian or ±1, `ea_bonds`, from `models.random_bond_couplings`), zero elsewhere, fields
as above; sampled exactly in the same way. The $1/\sqrt k$ gives every spin the local-field
variance $\sum_j J_{ij}^2 = \beta^2$ of the SK instance (which has $\beta^2 (N-1)/N$), so one
beta means the same coupling strength on both instances (unscaled, $\beta = 1.2$ on the lattice
is far in the glassy regime: the fits do not converge and the closed forms break down). ML, PL and MPF are fitted WITH the lattice as coupling mask (they know the graph: off the
edges their couplings are exactly zero); the closed-form inversions do not know it. For every
method the RMS error is reported over all pairs, over the true edges and over the non-edges.
The Cramér–Rao reference of the masked ML fit is the same formula with the sufficient
statistics restricted to the fields and the edges ($s_i$, $s_i s_j$ for edges (ij)), RMS over
edges.

Every NaN in the results has a flag next to it: `finite_fraction` (fraction of data sets
where a method's couplings are finite; a closed form's TAP discriminant or Sessak–Monasson pair
marginal can fail at strong coupling) and `converged_fraction` (finite AND converged) for the
finite-M errors, `converged_infinite_M` (1 = finite and converged) for the M -> infinity
limits; `_ea` suffixed for the EA instance.

Every (instance, beta, M) triple is one checkpointed task. All data sets are stored as the $2^N$
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
    "instances": Param(["sk", "ea"], "planted instances: dense SK and/or sparse EA",
                       choices=("sk", "ea")),
    "ea_shape": Param([3, 4], "periodic 2D lattice of the EA instance (N = product <= 16)",
                      ge=3),
    "ea_bonds": Param("gaussian", "EA bond distribution (times beta/sqrt(4): the local "
                      "field variance beta^2 of SK)",
                      choices=("gaussian", "bimodal")),
}


def _validate(cfg: dict) -> None:
    if len(set(cfg["M"])) != len(cfg["M"]) or len(set(cfg["beta"])) != len(cfg["beta"]):
        raise ConfigError("M and beta must not contain repeated values.")
    if len(set(cfg["instances"])) != len(cfg["instances"]):
        raise ConfigError("instances must not contain repeated values.")
    if len(cfg["ea_shape"]) != 2 or int(np.prod(cfg["ea_shape"])) > 16:
        raise ConfigError(
            f"ea_shape must be two linear sizes with a product <= 16 (enumeration), got "
            f"{cfg['ea_shape']}."
        )


def lattice_couplings(bonds, shape) -> tuple[np.ndarray, np.ndarray]:
    """The (N, N) coupling matrix and edge mask of per-bond couplings `bonds[a, x]` (x to
    x + e_a) on a periodic lattice of linear sizes `shape` (each >= 3, so no pair is doubled);
    sites in row-major order."""
    shape = tuple(int(n) for n in shape)
    bonds = np.asarray(bonds, np.float64)
    n = int(np.prod(shape))
    idx = np.arange(n).reshape(shape)
    J = np.zeros((n, n))
    for a in range(len(shape)):
        nb = np.roll(idx, -1, axis=a)
        J[idx.ravel(), nb.ravel()] = bonds[a].ravel()
    J = J + J.T
    mask = np.zeros((n, n), bool)
    for a in range(len(shape)):
        nb = np.roll(idx, -1, axis=a)
        mask[idx.ravel(), nb.ravel()] = True
    return J, mask | mask.T


def _planted(ctx: RunContext, cfg: dict, beta: float) -> models.SK:
    kj, kh = jax.random.split(ctx.key("planted", beta))
    base = models.SK.sample(kj, cfg["N"])
    h = beta * cfg["h_scale"] * jax.random.normal(kh, (cfg["N"],), jnp.float32)
    return models.SK(beta * base.J, h)


def _planted_ea(ctx: RunContext, cfg: dict, beta: float) -> tuple[models.SK, np.ndarray]:
    """Planted EA instance on the periodic `ea_shape` lattice and its edge mask."""
    kj, kh = jax.random.split(ctx.key("planted-ea", beta))
    shape = tuple(cfg["ea_shape"])
    bonds = models.random_bond_couplings(kj, shape, kind=cfg["ea_bonds"])
    J, mask = lattice_couplings(np.asarray(bonds), shape)
    n = J.shape[0]
    h = beta * cfg["h_scale"] * jax.random.normal(kh, (n,), jnp.float32)
    k = 2 * len(shape)  # coordination: the local-field variance is beta^2, as for SK
    return models.SK(jnp.asarray(beta * J / np.sqrt(k), jnp.float32), h), mask


def _pair_rmse(J_fit, J_true, pairs=None):
    """RMS of J_fit - J_true over the pairs i<j selected by the boolean (N, N) `pairs`."""
    n = J_true.shape[-1]
    iu = np.triu_indices(n, 1)
    sel = np.ones(len(iu[0]), bool) if pairs is None else np.asarray(pairs)[iu]
    d = np.asarray(J_fit)[..., iu[0][sel], iu[1][sel]] - np.asarray(J_true)[iu[0][sel], iu[1][sel]]
    return np.sqrt(np.mean(d**2, axis=-1))


def _cramer_rao(model: models.SK, x, p, mask=None) -> float:
    """RMS Cramér–Rao coupling error at M = 1 (divide by sqrt(M)), over the pairs of `mask`
    (all pairs if None), the model's sufficient statistics restricted to them."""
    n = model.J.shape[0]
    iu = np.triu_indices(n, 1)
    if mask is not None:
        sel = np.asarray(mask)[iu]
        iu = (iu[0][sel], iu[1][sel])
    x = np.asarray(x, np.float64)
    p = np.asarray(p, np.float64)
    stats = np.concatenate([x, x[:, iu[0]] * x[:, iu[1]]], axis=1)
    mean = p @ stats
    F = (stats - mean).T @ ((stats - mean) * p[:, None])
    cov = np.linalg.inv(F)
    return float(np.sqrt(np.mean(np.diag(cov)[n:])))


def _fit_all(data: training.SpinData, cfg: dict, J_true, mask=None):
    """Errors (n_sets, n_methods) and convergence flags for a stack of data sets; with a
    `mask`, the iterative fits use it, and the errors are (n_sets, n_methods, 3): all pairs,
    edges, non-edges."""

    def errors(J):
        if mask is None:
            return _pair_rmse(J, J_true)
        off = ~mask & ~np.eye(mask.shape[0], dtype=bool)
        return np.stack([_pair_rmse(J, J_true), _pair_rmse(J, J_true, mask),
                         _pair_rmse(J, J_true, off)], axis=-1)

    errs, conv = [], []
    for name in METHODS:
        if name in _ITERATIVE:
            fit = _ITERATIVE[name]
            res = jax.vmap(lambda d, fit=fit: fit(
                d, mask=mask, n_steps=cfg["n_steps"], learning_rate=cfg["learning_rate"]))(data)
            errs.append(errors(res.model.J))
            conv.append(np.asarray(res.converged) & np.all(np.isfinite(errs[-1]), axis=-1)
                        if mask is not None else
                        np.asarray(res.converged) & np.isfinite(errs[-1]))
        else:
            m, C = jax.vmap(training.spin_moments)(data)
            Js = []
            for i in range(m.shape[0]):
                _, J = _CLOSED[name](m[i], C[i])
                Js.append(np.asarray(J))
            errs.append(errors(np.stack(Js)))
            e = errs[-1]
            conv.append(np.all(np.isfinite(e), axis=-1) if mask is not None else np.isfinite(e))
    return np.stack(errs, axis=1), np.stack(conv, axis=1)


def _stack(x, counts) -> training.SpinData:
    sets = [training.spin_data(x, weights=c) for c in counts]
    return training.stack_spin_data(sets, unique=False)


@experiment(
    "inverse-ising",
    params=PARAMS,
    validate=_validate,
    runtime="about 1 min (75 CPU-s measured)",
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def inverse_ising(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """Planted SK and EA, exact samples: coupling error vs M and beta for ML, PL, MPF, nMF, TAP,
    SM (on EA: ML, PL, MPF with the lattice mask; errors on and off the edges)."""
    betas, Ms, S = cfg["beta"], cfg["M"], cfg["n_datasets"]
    kinds = cfg["instances"]
    ctx.set_total(len(kinds) * len(betas) * (len(Ms) + 1))
    M_arr = np.asarray(Ms, np.float64)
    data_vars, attrs = {}, {}
    for kind in kinds:
        ea = kind == "ea"
        tail = (3,) if ea else ()
        err = np.zeros((len(betas), len(Ms), len(METHODS), *tail))
        err_se = np.zeros_like(err)
        conv = np.zeros((len(betas), len(Ms), len(METHODS)))
        fin = np.zeros_like(conv)
        inf_conv = np.zeros((len(betas), len(METHODS)))
        inf_err = np.zeros((len(betas), len(METHODS), *tail))
        cr = np.zeros(len(betas))
        for b, beta in enumerate(betas):
            if ea:
                model, mask = _planted_ea(ctx, cfg, beta)
            else:
                model, mask = _planted(ctx, cfg, beta), None
            x = exact.all_configurations(model)
            p = exact.probabilities(model, 1.0)
            cr[b] = _cramer_rao(model, x, p, mask)
            J_true = np.asarray(model.J)
            pre = "ea/" if ea else ""

            def limit(x=x, p=p, J_true=J_true, mask=mask):
                # the exact moments, replicated to the batch shape of the finite-M calls
                e, c = _fit_all(_stack(x, [np.asarray(p)] * S), cfg, J_true, mask)
                return {"err": e[0], "conv": c[0]}

            out = ctx.task(f"{pre}beta={beta}/M=inf", limit)
            inf_err[b] = out["err"]
            inf_conv[b] = np.asarray(out["conv"], np.float64)
            for k, M in enumerate(Ms):

                def work(x=x, p=p, M=M, beta=beta, J_true=J_true, mask=mask, pre=pre):
                    keys = jax.random.split(ctx.key(pre + "data", beta, M), S)
                    idx = jax.vmap(lambda kk: jax.random.choice(kk, p.shape[0], (M,), p=p))(
                        keys
                    )
                    counts = [np.bincount(np.asarray(i), minlength=p.shape[0]) for i in idx]
                    e, c = _fit_all(_stack(x, counts), cfg, J_true, mask)
                    return {"err": e, "conv": c}

                out = ctx.task(f"{pre}beta={beta}/M={M}", work)
                e = np.asarray(out["err"], np.float64)
                err[b, k] = np.mean(e, axis=0)
                err_se[b, k] = np.std(e, axis=0, ddof=1) / np.sqrt(S)
                conv[b, k] = np.mean(np.asarray(out["conv"], np.float64), axis=0)
                fin[b, k] = np.mean(np.isfinite(e).reshape(S, len(METHODS), -1).all(-1), axis=0)
        sfx = "_ea" if ea else ""
        dims = ("beta", "M", "method", "pairs") if ea else ("beta", "M", "method")
        data_vars.update({
            f"coupling_error{sfx}": (dims, err),
            f"coupling_error{sfx}_err": (dims, err_se),
            f"converged_fraction{sfx}": (("beta", "M", "method"), conv),
            f"finite_fraction{sfx}": (("beta", "M", "method"), fin),
            f"converged{sfx}_infinite_M": (("beta", "method"), inf_conv),
            f"coupling_error{sfx}_infinite_M": (("beta", "method", *dims[3:]), inf_err),
            f"coupling_error{sfx}_cramer_rao": (("beta", "M"), cr[:, None] / np.sqrt(M_arr)[None]),
        })
        what = (f"planted EA {cfg['ea_shape'][0]}x{cfg['ea_shape'][1]} periodic lattice, "
                "iterative fits masked to it") if ea else "planted SK"
        over = "over the pairs i<j of `pairs`" if ea else "over pairs i<j"
        attrs.update({
            f"coupling_error{sfx}": (f"RMS coupling error {over}, mean over data sets ({what})",
                                     "1"),
            f"converged_fraction{sfx}": (f"fraction of data sets where the fit converged ({what})",
                                         "1"),
            f"finite_fraction{sfx}": (
                f"fraction of data sets where the method's couplings are finite ({what})", "1"),
            f"converged{sfx}_infinite_M": (
                f"1 if the method on the exact moments converged to finite couplings ({what})",
                "1"),
            f"coupling_error{sfx}_infinite_M": (
                f"RMS coupling error of the method on the exact moments ({what})", "1"),
            f"coupling_error{sfx}_cramer_rao": (
                "Cramér–Rao RMS coupling error (exact ML asymptote"
                + (", masked, over the edges)" if ea else ")"), "1"),
        })
    coords = {"beta": np.asarray(betas, np.float64), "M": np.asarray(Ms),
              "method": list(METHODS)}
    if "ea" in kinds:
        coords["pairs"] = ["all", "edges", "non_edges"]
    ds = xr.Dataset(data_vars, coords=coords)
    io.annotate(
        ds,
        beta=("inverse temperature (scale) of the planted couplings", "1"),
        M=("number of exact samples per data set", "1"),
        method=("inverse-Ising method", "1"),
        **({"pairs": ("pairs i<j the EA error is taken over: all, true edges, non-edges", "1")}
           if "ea" in kinds else {}),
        **attrs,
    )
    ds.attrs["N"] = int(cfg["N"])
    ds.attrs["n_datasets"] = int(S)
    ds.attrs["instances"] = ",".join(kinds)
    if "ea" in kinds:
        ds.attrs["ea_shape"] = "x".join(str(n) for n in cfg["ea_shape"])
        ds.attrs["ea_bonds"] = cfg["ea_bonds"]
    return ds


def _slope(logM, y):
    return float(np.polyfit(logM, np.log(y), 1)[0]) if len(logM) > 1 else None


def _summary(ds: xr.Dataset) -> dict:
    logM = np.log(ds["M"].values.astype(np.float64))
    methods = [str(m) for m in ds["method"].values]
    out = {"N": ds.attrs["N"], "instances": ds.attrs["instances"]}
    if "coupling_error" in ds:
        out.update({"slopes": {}, "error_at_largest_M": {}, "error_infinite_M": {}})
        for beta in ds["beta"].values:
            tag = f"beta={float(beta):g}"
            d = ds.sel(beta=beta)
            out["slopes"][tag] = {
                m: _slope(logM, d["coupling_error"].sel({"method": m}).values) for m in methods
            }
            out["error_at_largest_M"][tag] = {
                m: float(d["coupling_error"].sel({"method": m}).values[-1]) for m in methods
            }
            out["error_infinite_M"][tag] = {
                m: float(d["coupling_error_infinite_M"].sel({"method": m})) for m in methods
            }
            out["error_at_largest_M"][tag]["cramer_rao"] = float(
                d["coupling_error_cramer_rao"].values[-1]
            )
        out["min_converged_fraction"] = float(ds["converged_fraction"].min())
    if "coupling_error_ea" in ds:
        ea = {"lattice": ds.attrs["ea_shape"], "bonds": ds.attrs["ea_bonds"], "slopes_edges": {},
              "error_at_largest_M": {}, "error_infinite_M": {}}
        for beta in ds["beta"].values:
            tag = f"beta={float(beta):g}"
            d = ds.sel(beta=beta)
            e = d["coupling_error_ea"]
            ea["slopes_edges"][tag] = {
                m: _slope(logM, e.sel({"method": m, "pairs": "edges"}).values) for m in methods
            }
            ea["error_at_largest_M"][tag] = {
                m: {str(q): float(e.sel({"method": m, "pairs": q}).values[-1])
                    for q in ds["pairs"].values}
                for m in methods
            }
            ea["error_at_largest_M"][tag]["cramer_rao_edges"] = float(
                d["coupling_error_ea_cramer_rao"].values[-1]
            )
            ea["error_infinite_M"][tag] = {
                m: {str(q): float(d["coupling_error_ea_infinite_M"].sel({"method": m, "pairs": q}))
                    for q in ds["pairs"].values}
                for m in methods
            }
        ea["min_converged_fraction"] = float(ds["converged_fraction_ea"].min())
        out["ea"] = ea
    out["expected_slope_consistent"] = -0.5
    return out


def _panel(ax, M, err, err_se, lim, cr, methods, title):
    from matplotlib.ticker import NullFormatter

    for m in methods:
        c = f"C{METHODS.index(str(m))}"  # one colour per method in every panel
        ax.errorbar(M, err.sel({"method": m}), err_se.sel({"method": m}),
                    marker="o", ms=4, capsize=2, color=c, label=str(m))
        li = float(lim.sel({"method": m}))
        if li > 1e-3:
            ax.axhline(li, color=c, ls=":", lw=1)
    ax.plot(M, cr, "k--", lw=1, label="Cramér–Rao ∝ M^-1/2")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("samples M")
    ax.set_ylabel("RMS coupling error")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def _figure(ds: xr.Dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [k for k in ("coupling_error", "coupling_error_ea") if k in ds]
    nb = ds.sizes["beta"]
    ncol = nb * (2 if "coupling_error_ea" in ds else 1)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(5.0 * ncol, 4.0 * len(rows)),
                             squeeze=False)
    M = ds["M"].values
    methods = list(ds["method"].values)
    for r, var in enumerate(rows):
        for b, beta in enumerate(ds["beta"].values):
            d = ds.sel(beta=beta)
            if var == "coupling_error":
                _panel(axes[r, b], M, d[var], d[f"{var}_err"], d[f"{var}_infinite_M"],
                       d[f"{var}_cramer_rao"], methods,
                       f"SK N = {ds.attrs['N']}, beta = {float(beta):g} (dotted: M → ∞)")
                for extra in axes[r, nb:]:
                    extra.axis("off")
                continue
            for j, q in enumerate(("edges", "non_edges")):
                ax = axes[r, 2 * b + j]
                _panel(ax, M, d[var].sel(pairs=q), d[f"{var}_err"].sel(pairs=q),
                       d[f"{var}_infinite_M"].sel(pairs=q),
                       d[f"{var}_cramer_rao"] if q == "edges" else np.full(len(M), np.nan),
                       [m for m in methods if q == "edges" or m not in _ITERATIVE],
                       f"EA {ds.attrs['ea_shape']} {ds.attrs['ea_bonds']}, beta = "
                       f"{float(beta):g}: {q.replace('_', '-')} (ML/PL/MPF masked)")
    fig.suptitle("Inverse Ising, planted instances, exact samples")
    fig.tight_layout()
    return fig
