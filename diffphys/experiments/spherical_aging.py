"""`spherical-aging`: C(t, t_w) and e(t) of spherical SK (p = 2) and 3-spin Langevin dynamics
after a quench, next to the DMFT solution (exact for p = 2, Cugliandolo–Kurchan for p = 3)."""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import io, models, theory
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

PARAMS = {
    "p": Param([2, 3], "interaction orders (2: spherical SK, 3: spherical 3-spin)", choices=(2, 3)),
    "T_p2": Param(0.5, "temperature after the quench, p = 2", gt=0),
    "T_p3": Param(0.5, "temperature after the quench, p = 3", gt=0),
    "N_p2": Param(2000, "spins, p = 2", ge=2),
    "N_p3": Param(256, "spins, p = 3", ge=3),
    "n_samples_p2": Param(4, "disorder samples, p = 2 (>= 2 for error bars)", ge=2),
    "n_samples_p3": Param(8, "disorder samples, p = 3 (>= 2 for error bars)", ge=2),
    "t_max_p2": Param(200.0, "final time, p = 2", gt=0),
    "t_max_p3": Param(60.0, "final time, p = 3", gt=0),
    "t_w": Param([2.0, 8.0, 32.0], "waiting times t_w of C(t, t_w)", gt=0),
    "n_times": Param(40, "log-spaced recording times", ge=2),
    "dt": Param(
        0.02,
        "Langevin time step (0.05 biases C(t, t_w) at short lags by ~0.02 for p = 2, beyond "
        "4 sigma; 0.02 agrees with theory within 4 sigma + 0.01 everywhere at the defaults)",
        gt=0,
    ),
    "dmft_n_p3": Param(128, "window size of the decimated-grid DMFT (reach ~ 80 n)", ge=8),
}


def _time_grid(t_max: float, t_w, n_times: int, dt: float) -> np.ndarray:
    """Record step counts: log-spaced up to t_max, plus every waiting time."""
    t = np.geomspace(2 * dt, t_max, n_times)
    steps = np.round(np.concatenate([t, np.asarray(t_w, float)]) / dt).astype(np.int64)
    return np.unique(steps[(steps > 0) & (steps <= round(t_max / dt))])


def simulate(key, p: int, n: int, T: float, dt: float, steps: np.ndarray, n_samples: int):
    """Per-sample trajectories s(t) at `steps` and energies per spin (quench from T = inf)."""
    x, e = models.spherical_quench(key, p, n, T, dt, steps, n_samples)
    x = np.asarray(x)
    corr = np.einsum("sin,sjn->sij", x, x) / n  # C(t_i, t_j) per sample
    return {"C": corr, "energy": np.asarray(e)}


@experiment(
    "spherical-aging",
    params=PARAMS,
    runtime="about 3.5 min (218 CPU-s measured)",
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def spherical_aging(ctx: RunContext, cfg: dict):
    """Aging of spherical SK and 3-spin Langevin dynamics vs DMFT (exact p = 2, CK p = 3)."""
    t_w = np.asarray(cfg["t_w"], float)
    dt = cfg["dt"]
    ps = [int(p) for p in cfg["p"]]
    t_max_all = max(cfg[f"t_max_p{p}"] for p in ps)
    steps_all = _time_grid(t_max_all, t_w, cfg["n_times"], dt)
    t_all = steps_all * dt
    shape = (len(ps), len(t_w), len(t_all))
    corr, corr_err, corr_th = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    energy, energy_err, energy_th = (np.full((len(ps), len(t_all)), np.nan) for _ in range(3))
    for ip, p in enumerate(ps):
        T, n, t_max = cfg[f"T_p{p}"], cfg[f"N_p{p}"], cfg[f"t_max_p{p}"]
        keep = t_all <= t_max + 1e-9
        steps = steps_all[keep]
        out = ctx.task(
            f"simulate-p={p}",
            lambda p=p, T=T, n=n, steps=steps: simulate(
                ctx.key("p", p), p, n, T, dt, steps, cfg[f"n_samples_p{p}"]
            ),
        )
        th = ctx.task(
            f"dmft-p={p}",
            lambda p=p, T=T, t_max=t_max, steps=steps: _theory_on_grid(
                p, T, t_max, cfg["dmft_n_p3"], steps * dt, t_w
            ),
        )
        t = steps * dt
        idx_w = [int(np.argmin(np.abs(t - w))) for w in t_w]
        n_s = out["C"].shape[0]
        for iw, i in enumerate(idx_w):
            later = t >= t[i]
            c = out["C"][:, i, :][:, later]
            corr[ip, iw, np.nonzero(keep)[0][later]] = c.mean(0)
            corr_err[ip, iw, np.nonzero(keep)[0][later]] = c.std(0, ddof=1) / np.sqrt(n_s)
        corr_th[ip][:, keep] = th["C"]
        energy[ip, keep] = out["energy"].mean(0)
        energy_err[ip, keep] = out["energy"].std(0, ddof=1) / np.sqrt(n_s)
        energy_th[ip, keep] = th["energy"]
    coords = {"p": ps, "t_w": t_w, "t": t_all}
    ds = xr.Dataset(
        {
            "correlation": (("p", "t_w", "t"), corr),
            "correlation_error": (("p", "t_w", "t"), corr_err),
            "correlation_theory": (("p", "t_w", "t"), corr_th),
            "energy": (("p", "t"), energy),
            "energy_error": (("p", "t"), energy_err),
            "energy_theory": (("p", "t"), energy_th),
            "temperature": (("p",), np.array([cfg[f"T_p{p}"] for p in ps])),
            "n_spins": (("p",), np.array([cfg[f"N_p{p}"] for p in ps])),
        },
        coords=coords,
        attrs={
            "description": "C(t, t_w) = s(t).s(t_w)/N (NaN for t < t_w) and energy per spin "
            "after a quench from T = inf; theory: exact p = 2 (eigenmodes of J on the semicircle), "
            "Cugliandolo-Kurchan DMFT for p = 3."
        },
    )
    io.annotate(
        ds,
        p=("interaction order p", "1"),
        t_w=("waiting time", "1"),
        t=("time since the quench", "1"),
        correlation=("two-time correlation C(t, t_w), simulation", "1"),
        correlation_error=("standard error of the simulated C(t, t_w)", "1"),
        correlation_theory=("C(t, t_w), DMFT (exact for p = 2)", "1"),
        energy=("energy per spin, simulation", "J"),
        energy_error=("standard error of the simulated energy per spin", "J"),
        energy_theory=("energy per spin, DMFT", "J"),
        temperature=("temperature after the quench", "J/k_B"),
        n_spins=("number of spins", "1"),
    )
    return ds


def _theory_on_grid(p, T, t_max, dmft_n, t, t_w):
    C = np.full((len(t_w), len(t)), np.nan)
    if p == 2:
        # Exact eigenmode solution (semicircle quadrature): accurate to t ~ 10^3 and beyond.
        n_lambda = int(max(400, 30 * np.sqrt(t_max)))
        d = theory.nonreciprocal_sk_dynamics(
            T, 0.0, 0.0, t_max=t_max, t_w=t_w, dt=0.05, record_every=2, n_lambda=n_lambda
        )
        t_th = np.concatenate([[0.0], d.t])
        e_th = np.concatenate([[0.0], d.energy[:, 0]])
        for iw, w in enumerate(t_w):
            later = t >= w - 1e-9
            ok = d.t >= w - 1e-9
            if later.any():
                tt = np.concatenate([[w], d.t[ok]])
                cc = np.concatenate([[1.0], d.C[iw, ok, 0, 0]])
                C[iw, later] = np.interp(t[later], tt, cc)
        return {"C": C, "energy": np.interp(t, t_th, e_th)}
    # Kim-Latz decimated grid (theory/_dmft_grid.py): more accurate than the uniform grid at
    # dt = 0.1 at every time used here, and seconds instead of minutes.
    sol = theory.cugliandolo_kurchan_decimated(p, T, t_max, 0.02, n=int(dmft_n))
    if np.isfinite(sol.t_breakdown):
        raise ConfigError(
            f"the p = {p} DMFT broke down at t = {sol.t_breakdown:g} < t_max = {t_max:g}: "
            "raise dmft_n_p3 (the window size; reach grows like 80 n)."
        )
    for iw, w in enumerate(t_w):
        later = t >= w - 1e-9
        if later.any():
            C[iw, later] = sol.correlation(np.maximum(t[later], w), w)
    return {"C": C, "energy": np.interp(t, sol.t, sol.energy)}


def _summary(ds) -> dict:
    out = {}
    for p in ds["p"].values:
        d = ds.sel(p=p)
        diff = np.abs(d["correlation"] - d["correlation_theory"]).values
        ok = np.isfinite(diff)
        last = np.nonzero(np.isfinite(d["energy"].values))[0][-1]
        out[f"p{p}"] = {
            "T": float(d["temperature"]),
            "N": int(d["n_spins"]),
            "max_abs_correlation_deviation": float(diff[ok].max()),
            "median_abs_correlation_deviation": float(np.median(diff[ok])),
            "final_time": float(d["t"].values[last]),
            "final_energy": float(d["energy"].values[last]),
            "final_energy_error": float(d["energy_error"].values[last]),
            "final_energy_theory": float(d["energy_theory"].values[last]),
            # fidelity: the largest |sim - theory| - (4 sigma + 0.01); <= 0 means agreement
            "max_correlation_excess_over_4sigma_plus_0.01": float(
                np.nanmax(diff - 4 * d["correlation_error"].values - 0.01)
            ),
            "max_energy_excess_over_4sigma_plus_0.01": float(
                np.nanmax(
                    np.abs(d["energy"] - d["energy_theory"]).values
                    - 4 * d["energy_error"].values
                    - 0.01
                )
            ),
        }
    if 2 in ds["p"].values:
        T = float(ds["temperature"].sel(p=2))
        out["p2"]["equilibrium_energy_KTJ"] = float(theory.spherical_sk_equilibrium_energy(T))
    return out


def _figure(ds):
    ps = list(ds["p"].values)
    fig, axes = plt.subplots(2, len(ps), figsize=(5.5 * len(ps), 8), squeeze=False)
    for j, p in enumerate(ps):
        d = ds.sel(p=p)
        ax = axes[0, j]
        for iw, w in enumerate(d["t_w"].values):
            c, e, th = (
                d[v].isel(t_w=iw).values
                for v in ("correlation", "correlation_error", "correlation_theory")
            )
            lag = d["t"].values - w
            ok = np.isfinite(c) & (lag > 0)
            col = f"C{iw}"
            ax.errorbar(lag[ok], c[ok], e[ok], fmt="o", ms=3, color=col, label=f"sim $t_w$={w:g}")
            ok_th = np.isfinite(th) & (lag > 0)
            ax.plot(lag[ok_th], th[ok_th], "-", color=col, lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("$t - t_w$")
        ax.set_ylabel("$C(t, t_w)$")
        ax.set_title(f"p={p}, T={float(d['temperature']):g}, N={int(d['n_spins'])} (lines: DMFT)")
        ax.legend(fontsize=8)
        ax = axes[1, j]
        ok = np.isfinite(d["energy"].values)
        ax.errorbar(
            d["t"].values[ok],
            d["energy"].values[ok],
            d["energy_error"].values[ok],
            fmt="o",
            ms=3,
            label="simulation",
        )
        ax.plot(d["t"].values[ok], d["energy_theory"].values[ok], "k-", lw=1, label="DMFT")
        if p == 2:
            ax.axhline(
                float(theory.spherical_sk_equilibrium_energy(float(d["temperature"]))),
                color="gray",
                ls="--",
                label="equilibrium $-1+T/2$",
            )
        ax.set_xscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("energy per spin")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
