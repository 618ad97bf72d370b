"""`fisher-curvature`: scalar curvature of the Fisher metric of the critical 2D Ising torus.

Zhuravlev, "Fisher Curvature Scaling at Critical Points: An Exact Information-Geometric
Exponent from Periodic Boundary Conditions" (arXiv:2603.07651, 2026): on the manifold of all
$m = 2n$ bond couplings of the $L \\times L$ torus ($n = L^2$ sites), at the uniform critical
coupling $K_c = \\frac12 \\ln(1+\\sqrt2)$ and zero field, the scalar curvature of the Fisher
metric grows as $|R| \\sim n^{d_R}$, with the prediction $d_R = (d\\nu + 2\\eta)/(d\\nu + \\eta)
= 10/9$ for 2D Ising (the paper's exact transfer-matrix fit over L = 6..9 gives 1.1115).

Here the metric, the third cumulants and R are exact derivatives (float64 autodiff) of the
transfer-matrix ln Z (`diffphys.theory.ising_torus_fisher_geometry`); no finite differences.

Cost: the default L = 3..7 takes about 50 s of CPU time on a 2-core machine (measured with
the machine shared); L = 8 adds about 2 minutes (R = -1272.14) and L = 9 of order ten more
(not measured), so the paper's fit window, `--set L=[3,4,5,6,7,8,9] fit_sizes=4`, is a
GPU-sized or patient run.
"""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import io
from ..exact import ising_critical_coupling
from ..theory import curvature_invariants, ising_torus_fisher_geometry
from ._core import Param, RunContext, experiment

D_R_PREDICTION = 10.0 / 9.0
"""$d_R = (d\\nu + 2\\eta)/(d\\nu + \\eta)$ at $d = 2$, $\\nu = 1$, $\\eta = 1/4$."""

PARAMS = {
    "L": Param([3, 4, 5, 6, 7], "linear sizes of the critical L x L torus", ge=2, le=16),
    "fit_sizes": Param(3, "largest sizes used in the log-log fit of |R|", ge=2),
    "batch_size": Param(8, "transfer-matrix columns per batch of the Fisher geometry", ge=1),
}


def torus_curvature(L: int, batch_size: int = 8) -> dict:
    """Fisher geometry of the critical L x L torus, reduced to the numbers the dataset keeps."""
    with jax.enable_x64(True):
        geo = ising_torus_fisher_geometry(L, batch_size=batch_size)
        t_sq, t_trace_sq = curvature_invariants(geo.metric, geo.cumulants3)
        eig = np.linalg.eigvalsh(np.asarray(geo.metric))
        return {
            "scalar_curvature": np.float64(geo.scalar_curvature),
            "t_norm_sq": np.float64(t_sq),
            "t_trace_norm_sq": np.float64(t_trace_sq),
            "log_z": np.float64(geo.log_z),
            "bond_mean": np.float64(geo.bond_mean[0]),
            "metric_eig_min": np.float64(eig[0]),
            "metric_eig_max": np.float64(eig[-1]),
            "metric_trace": np.float64(eig.sum()),
        }


def fit_exponent(n, abs_r) -> tuple[float, float]:
    """Least-squares slope and intercept of log|R| against log n (unweighted)."""
    slope, intercept = np.polyfit(np.log(np.asarray(n, float)), np.log(np.asarray(abs_r)), 1)
    return float(slope), float(intercept)


def _fit_slice(ds) -> slice:
    k = int(ds.attrs.get("fit_sizes", 3))
    return slice(max(0, ds.sizes["L"] - k), None)


def _summary(ds) -> dict:
    L = ds["L"].values
    n = ds["n_sites"].values
    abs_r = np.abs(ds["scalar_curvature"].values)
    sl = _fit_slice(ds)
    d_r, _ = fit_exponent(n[sl], abs_r[sl]) if len(n[sl]) >= 2 else (float("nan"), 0.0)
    return {
        "d_R": d_r,
        "d_R_fit_L": [int(v) for v in L[sl]],
        "d_R_method": (
            "unweighted least-squares slope of log|R| versus log n (n = L^2 sites) over the "
            "largest sizes listed in d_R_fit_L"
        ),
        "d_R_prediction": D_R_PREDICTION,
        "d_eff": [float(v) for v in ds["d_eff"].values[1:]],
        "L": [int(v) for v in L],
        "n_params": [int(v) for v in ds["n_params"].values],
        "scalar_curvature": [float(v) for v in ds["scalar_curvature"].values],
        "coupling": float(ds.attrs["coupling"]),
    }


def _figure(ds):
    L = ds["L"].values
    n = ds["n_sites"].values
    abs_r = np.abs(ds["scalar_curvature"].values)
    sl = _fit_slice(ds)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax.loglog(n, abs_r, "o", label="exact (transfer matrix + autodiff)")
    if len(n[sl]) >= 2:
        d_r, c = fit_exponent(n[sl], abs_r[sl])
        grid = np.geomspace(n[0], n[-1] * 1.3, 50)
        ax.loglog(
            grid,
            np.exp(c) * grid**d_r,
            "-",
            label=f"fit L={L[sl][0]}..{L[sl][-1]}: $d_R$ = {d_r:.4f}",
        )
        ax.loglog(
            grid,
            abs_r[-1] * (grid / n[-1]) ** D_R_PREDICTION,
            ":",
            color="grey",
            label="slope 10/9 (prediction)",
        )
    ax.set_xlabel("n = $L^2$ sites")
    ax.set_ylabel("$|R|$ at $K_c$")
    ax.set_title("Fisher scalar curvature, 2D Ising torus")
    ax.legend(fontsize=8)
    d_eff = ds["d_eff"].values[1:]
    if d_eff.size:
        mid = np.sqrt(L[1:] * L[:-1])
        ax2.plot(1.0 / mid, d_eff, "o-", label="$d_{eff}$ between consecutive L")
    ax2.axhline(D_R_PREDICTION, color="grey", ls=":", label="10/9")
    ax2.set_xlabel("1 / L (geometric mean of the pair)")
    ax2.set_ylabel("$d \\ln|R| / d \\ln n$")
    ax2.set_xlim(left=0)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


@experiment("fisher-curvature", runtime="about 1 min (69 CPU-s measured)", params=PARAMS, summary=_summary, figure=_figure)
def fisher_curvature(ctx: RunContext, cfg: dict):
    """Exact Fisher scalar curvature of the critical 2D Ising torus vs L; d_R from log-log fit."""
    sizes = sorted({int(v) for v in cfg["L"]})
    ctx.set_total(len(sizes))
    rows = [
        ctx.task(f"L={L}", lambda L=L: torus_curvature(L, int(cfg["batch_size"]))) for L in sizes
    ]
    data = {k: ("L", np.array([r[k] for r in rows], np.float64)) for k in rows[0]}
    n = np.array([L * L for L in sizes])
    abs_r = np.abs(data["scalar_curvature"][1])
    d_eff = np.full(len(sizes), np.nan)
    d_eff[1:] = np.diff(np.log(abs_r)) / np.diff(np.log(n))
    ds = xr.Dataset(
        {
            **data,
            "n_sites": ("L", n),
            "n_params": ("L", 2 * n),
            "d_eff": ("L", d_eff),
        },
        coords={"L": np.array(sizes)},
        attrs={
            "coupling": ising_critical_coupling(),
            "fit_sizes": int(cfg["fit_sizes"]),
            "reference": "Zhuravlev, arXiv:2603.07651 (2026)",
        },
    )
    io.annotate(
        ds,
        L=("linear size of the torus", "1"),
        scalar_curvature=(
            "scalar curvature of the Fisher metric on the 2L^2 bond couplings at K_c "
            "(convention: Gaussian family R = -1)",
            "1",
        ),
        t_norm_sq=("squared norm of the third-cumulant tensor", "1"),
        t_trace_norm_sq=("squared norm of the trace of the third-cumulant tensor", "1"),
        log_z=("log partition function at K_c", "nat"),
        bond_mean=("mean bond energy <s_i s_j>", "1"),
        metric_eig_min=("smallest eigenvalue of the Fisher metric", "1"),
        metric_eig_max=("largest eigenvalue of the Fisher metric", "1"),
        metric_trace=("trace of the Fisher metric", "1"),
        n_sites=("number of sites n = L^2", "1"),
        n_params=("number of bond couplings 2 L^2", "1"),
        d_eff=("log-log slope of |R| vs n between L and the previous L", "1"),
    )
    return ds
