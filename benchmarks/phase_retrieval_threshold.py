"""Combine per-N `diffphys run phase-retrieval` results into the finite-N threshold study.

The study runs one invocation per N (smallest first, so that whatever finished by a deadline
is usable). Every run's key depends only on (seed, N, alpha, instance), so the per-N folders
hold exactly the runs a single invocation over all N would make; alpha_half(N) and its
cluster-bootstrap error are per N, and the weighted fit alpha_half = a + b log N is the
experiment's own (`phase_retrieval._fit_log`).

    python benchmarks/phase_retrieval_threshold.py OUT_PNG DIR_N64 DIR_N128 ...

prints the markdown tables of `benchmarks/results/phase_retrieval.md` and writes the figure.
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from diffphys.experiments import phase_retrieval as pr

KEEP = [
    "success",
    "success_err",
    "success_err_binomial",
    "design_effect",
    "success_at_check",
    "overlap_mean",
    "diverged_fraction",
    "n_runs",
    "alpha_half",
    "alpha_half_err",
]


def combine(dirs):
    parts = [xr.open_dataset(f"{d}/results.nc")[KEEP] for d in dirs]
    ds = xr.concat(parts, dim="N", join="outer", data_vars="all", coords="minimal")
    ds = ds.sortby("N")
    # an N run with one instance per point (written before that case gave NaN): no error bar
    err = ds["alpha_half_err"]
    ds["alpha_half_err"] = err.where(err > 0)
    a, b, ea, eb, chi2, dof = pr._fit_log(
        ds["N"].values, ds["alpha_half"].values, ds["alpha_half_err"].values
    )
    ds.attrs.update(
        fit_intercept=a,
        fit_slope=b,
        fit_intercept_err=ea,
        fit_slope_err=eb,
        fit_chi2=chi2,
        fit_dof=dof,
    )
    return ds


def tables(ds):
    alphas = ds["alpha"].values
    head = "| N | runs | " + " | ".join(f"{a:g}" for a in alphas) + " |"
    lines = [head, "|" + "---|" * (len(alphas) + 2)]
    for n in ds["N"].values:
        s, e = ds["success"].sel(N=n).values, ds["success_err"].sel(N=n).values
        cells = [f"{x:.3f}({1000 * y:.0f})" if np.isfinite(x) else "" for x, y in zip(s, e)]
        lines.append(f"| {n} | {int(ds['n_runs'].sel(N=n))} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| N | alpha_1/2 | bootstrap error | max design effect | max abs(P(first check) - P(T)) "
        "| max abs(P(last check before T) - P(T)) |",
    ]
    lines.append("|---|---|---|---|---|---|")
    for n in ds["N"].values:
        d = ds.sel(N=n)
        chk = d["success_at_check"].sel(alpha=d["alpha"]).transpose("alpha", "check").values
        diff = np.nanmax(np.abs(chk[:, 0] - chk[:, -1]))
        last = np.nanmax(np.abs(chk[:, -2] - chk[:, -1])) if chk.shape[1] > 1 else np.nan
        lines.append(
            f"| {n} | {float(d['alpha_half']):.3f} | {float(d['alpha_half_err']):.3f} | "
            f"{np.nanmax(d['design_effect'].values):.2f} | {diff:.3f} | {last:.3f} |"
        )
    # the threshold at every check time: how alpha_1/2 and its ln N slope depend on the steps
    checks = ds["check"].values
    lines += ["", "| N | " + " | ".join(f"alpha_1/2 at {int(c)} steps" for c in checks) + " |"]
    lines.append("|" + "---|" * (len(checks) + 1))
    a_chk = np.full((ds.sizes["N"], len(checks)), np.nan)
    for i, n in enumerate(ds["N"].values):
        d = ds.sel(N=n)
        for j in range(len(checks)):
            p_j = d["success_at_check"].isel(check=j).transpose("alpha").values
            a_chk[i, j] = pr._alpha_half(d["alpha"].values, p_j)
        lines.append(f"| {n} | " + " | ".join(f"{a:.3f}" for a in a_chk[i]) + " |")
    err = ds["alpha_half_err"].values
    fits = []
    for j, c in enumerate(checks):
        a, b, ea, eb, chi2, dof = pr._fit_log(ds["N"].values, a_chk[:, j], err)
        fits.append(f"{int(c)} steps: b = {b:.3f} +- {eb:.3f} (a = {a:.2f}, chi2 = {chi2:.1f}/{dof})")
    lines += ["", "ln N slope at each check (errors of the final threshold reused): " + "; ".join(fits)]
    at = ds.attrs
    lines += [
        "",
        f"fit alpha_1/2 = a + b log N: a = {at['fit_intercept']:.3f} +- "
        f"{at['fit_intercept_err']:.3f}, b = {at['fit_slope']:.3f} +- {at['fit_slope_err']:.3f}"
        f", chi2 = {at['fit_chi2']:.2f} for {at['fit_dof']} dof",
    ]
    return "\n".join(lines)


def figure(ds, path):
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for n in ds["N"].values:
        s = ds["success"].sel(N=n).values
        ok = np.isfinite(s)
        ax[0].errorbar(
            ds["alpha"].values[ok],
            s[ok],
            ds["success_err"].sel(N=n).values[ok],
            marker="o",
            ms=3,
            label=f"N={n} ({int(ds['n_runs'].sel(N=n))} runs)",
        )
    ax[0].axhline(0.5, color="k", lw=0.5)
    ax[0].set(xlabel="alpha = M/N", ylabel="P(final overlap >= 0.9)", title="GD on the sphere")
    ax[0].legend(fontsize=7)
    pr._threshold_panel(ax[1], ds)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    ds = combine(sys.argv[2:])
    print(tables(ds))
    figure(ds, sys.argv[1])
