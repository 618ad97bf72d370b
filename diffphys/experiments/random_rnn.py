"""`random-rnn`: random rate networks x' = -x + J tanh(x), J ~ N(0, g^2/N) (Sompolinsky,
Crisanti & Sommers, PRL 61, 259 (1988)): the autocorrelation Delta(tau) from simulation next to
the SCS DMFT (`theory.rnn_dmft`), Delta_0 and the decay time against g, and the largest
Lyapunov exponents against g (tangent dynamics, `models.lyapunov_spectrum`) next to g - 1,
their N -> inf value below the transition."""

import jax
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import ensemble, models, theory
from ._core import Param, RunContext, experiment

PARAMS = {
    "g": Param([2.0, 3.0], "gains simulated next to the DMFT", gt=0),
    "N": Param(500, "neurons per network", ge=2),
    "n_networks": Param(4, "networks per gain (>= 2 for error bars)", ge=2),
    "dt": Param(0.1, "RK4 time step", gt=0),
    "t_burn": Param(50.0, "burn-in time discarded", ge=0),
    "t_max": Param(300.0, "recorded time after burn-in", gt=0),
    "record_dt": Param(0.5, "time between records", gt=0),
    "max_lag": Param(15.0, "largest lag of the autocorrelation", gt=0),
    "g_theory": Param(
        [1.02, 1.05, 1.1, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0],
        "gains of the DMFT curves (Delta_0 and decay time)",
        gt=0,
    ),
    "g_lyapunov": Param([0.5, 0.8, 1.2, 1.5, 2.0, 3.0], "gains of the Lyapunov spectra", gt=0),
    "N_lyapunov": Param(200, "neurons for the Lyapunov spectra", ge=2),
    "k_lyapunov": Param(4, "number of Lyapunov exponents", ge=1),
    "t_lyapunov": Param(200.0, "averaging time of the Lyapunov exponents", gt=0),
}


def _simulate(key, g, cfg):
    n_lag = round(cfg["max_lag"] / cfg["record_dt"])

    def one(k):
        kj, kx, kr = jax.random.split(k, 3)
        m = models.RandomRNN.sample(kj, n=cfg["N"], g=g)
        out = models.simulate_rnn(
            kr,
            m,
            m.random_state(key=kx),
            dt=cfg["dt"],
            t_burn=cfg["t_burn"],
            t_max=cfg["t_max"],
            record_dt=cfg["record_dt"],
        )
        return models.autocorrelation(out["record"], n_lag), out["diverged"]

    c, div = ensemble.run(one, jax.random.split(key, cfg["n_networks"]))
    return {"C": np.asarray(c), "diverged": np.asarray(div)}


def _lyapunov(key, g, cfg):
    def one(k):
        kj, kx, kq = jax.random.split(k, 3)
        m = models.RandomRNN.sample(kj, n=cfg["N_lyapunov"], g=g)
        r = models.lyapunov_spectrum(
            m,
            m.random_state(key=kx),
            k=cfg["k_lyapunov"],
            dt=cfg["dt"],
            t_burn=cfg["t_burn"],
            t_max=cfg["t_lyapunov"],
            key=kq,
        )
        return r.exponents, r.diverged

    lam, div = ensemble.run(
        one, jax.random.split(key, cfg["n_networks"]), chunk_size=ensemble.default_chunk_size()
    )
    return {"lam": np.asarray(lam), "diverged": np.asarray(div)}


def _a(long_name, units="1"):
    return {"long_name": long_name, "units": units}


@experiment(
    "random-rnn", params=PARAMS, summary=lambda ds: _summary(ds), figure=lambda ds: _figure(ds)
)
def random_rnn(ctx: RunContext, cfg: dict):
    """Random rate networks: Delta(tau) simulation vs SCS DMFT, Delta_0 and decay time vs g,
    Lyapunov exponents vs g."""
    gs = np.asarray(cfg["g"], float)
    n_lag = round(cfg["max_lag"] / cfg["record_dt"])
    tau = np.arange(n_lag + 1) * cfg["record_dt"]
    c, c_err, c_th, div = [], [], [], []
    for g in gs:
        sim = ctx.task(f"sim-g={g:g}", lambda g=g: _simulate(ctx.key("sim", g), g, cfg))
        th = ctx.task(
            f"dmft-g={g:g}",
            lambda g=g: {"delta": theory.rnn_dmft(g, tau_max=tau[-1], dtau=cfg["record_dt"]).delta},
        )
        c.append(sim["C"].mean(0))
        c_err.append(sim["C"].std(0, ddof=1) / np.sqrt(len(sim["C"])))
        c_th.append(th["delta"][: len(tau)])
        div.append(bool(np.any(sim["diverged"])))
    g_th = np.asarray(cfg["g_theory"], float)
    tt = ctx.task(
        "theory-vs-g",
        lambda: {
            "d0": np.asarray(theory.rnn_delta0(g_th)),
            "tc": np.asarray(theory.rnn_decay_time(g_th)),
            "th": np.asarray(
                [theory.rnn_dmft(g, tau_max=5 * theory.rnn_decay_time(g)).half_time for g in g_th]
            ),
        },
    )
    g_ly = np.asarray(cfg["g_lyapunov"], float)
    lam, lam_err, ly_div = [], [], []
    for g in g_ly:
        ly = ctx.task(f"lyapunov-g={g:g}", lambda g=g: _lyapunov(ctx.key("lyap", g), g, cfg))
        lam.append(ly["lam"].mean(0))
        lam_err.append(ly["lam"].std(0, ddof=1) / np.sqrt(len(ly["lam"])))
        ly_div.append(bool(np.any(ly["diverged"])))
    k_idx = np.arange(1, cfg["k_lyapunov"] + 1)
    return xr.Dataset(
        {
            "autocorrelation": (
                ("g", "tau"),
                np.asarray(c),
                _a("Delta(tau) = <x_i(t) x_i(t+tau)>, simulation"),
            ),
            "autocorrelation_err": (
                ("g", "tau"),
                np.asarray(c_err),
                _a("standard error over networks"),
            ),
            "autocorrelation_dmft": (("g", "tau"), np.asarray(c_th), _a("Delta(tau), SCS DMFT")),
            "diverged": (("g",), np.asarray(div), _a("integration diverged (any network)")),
            "delta0_theory": (("g_theory",), tt["d0"], _a("Delta_0 = <x^2>, SCS DMFT")),
            "delta0_threshold": (
                ("g_theory",),
                theory.rnn_delta0_threshold(g_th),
                _a("Delta_0 expansion (g-1) + 7/6 (g-1)^2"),
            ),
            "decay_time_theory": (
                ("g_theory",),
                tt["tc"],
                _a("exponential decay time of Delta(tau)", "time constant"),
            ),
            "half_time_theory": (
                ("g_theory",),
                tt["th"],
                _a("lag where Delta = Delta_0 / 2", "time constant"),
            ),
            "lyapunov": (
                ("g_lyapunov", "index"),
                np.asarray(lam),
                _a("Lyapunov exponent", "1/time constant"),
            ),
            "lyapunov_err": (
                ("g_lyapunov", "index"),
                np.asarray(lam_err),
                _a("standard error over networks", "1/time constant"),
            ),
            "lyapunov_linear_theory": (
                ("g_lyapunov",),
                np.where(g_ly < 1, g_ly - 1, np.nan),
                _a("largest exponent g - 1 for g < 1, N -> inf", "1/time constant"),
            ),
            "lyapunov_diverged": (
                ("g_lyapunov",),
                np.asarray(ly_div),
                _a("tangent dynamics diverged"),
            ),
        },
        coords={
            "g": ("g", gs, _a("gain g")),
            "tau": ("tau", tau, _a("lag tau", "time constant")),
            "g_theory": ("g_theory", g_th, _a("gain g")),
            "g_lyapunov": ("g_lyapunov", g_ly, _a("gain g")),
            "index": ("index", k_idx, _a("index of the Lyapunov exponent")),
        },
        attrs={
            "N": cfg["N"],
            "N_lyapunov": cfg["N_lyapunov"],
            "n_networks": cfg["n_networks"],
            "description": "x' = -x + J tanh x, J ~ N(0, g^2/N); time in units of the unit "
            "time constant. Errors: standard error over independent networks (includes the "
            "finite-time error).",
        },
    )


def _summary(ds) -> dict:
    z = (ds["autocorrelation"] - ds["autocorrelation_dmft"]) / ds["autocorrelation_err"]
    lam1 = ds["lyapunov"].sel(index=1).values
    g_ly = ds["g_lyapunov"].values
    cross = float("nan")
    for i in range(len(g_ly) - 1):
        if lam1[i] < 0 <= lam1[i + 1]:
            cross = float(g_ly[i] - lam1[i] * (g_ly[i + 1] - g_ly[i]) / (lam1[i + 1] - lam1[i]))
            break
    return {
        "max_abs_z_autocorrelation": float(np.nanmax(np.abs(z.values))),
        "delta0_sim": {
            float(g): float(v)
            for g, v in zip(ds["g"].values, ds["autocorrelation"].isel(tau=0).values)
        },
        "delta0_dmft": {
            float(g): float(v)
            for g, v in zip(ds["g"].values, ds["autocorrelation_dmft"].isel(tau=0).values)
        },
        "lyapunov_max": {float(g): float(v) for g, v in zip(g_ly, lam1)},
        "lyapunov_zero_crossing_g": cross,
        "any_diverged": bool(ds["diverged"].any() or ds["lyapunov_diverged"].any()),
    }


def _figure(ds):
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    for i, g in enumerate(ds["g"].values):
        d = ds.sel(g=g)
        ax.errorbar(
            ds["tau"],
            d["autocorrelation"],
            d["autocorrelation_err"],
            fmt="o",
            ms=3,
            color=f"C{i}",
            label=f"sim g={g:g}",
        )
        ax.plot(ds["tau"], d["autocorrelation_dmft"], "-", color=f"C{i}", label=f"DMFT g={g:g}")
    ax.set_xlabel("tau")
    ax.set_ylabel("Delta(tau)")
    ax.set_title(f"autocorrelation, N={ds.attrs['N']}")
    ax.legend(fontsize=8)
    ax = axes[1]
    gt = ds["g_theory"].values
    ax.plot(gt, ds["delta0_theory"], "k-o", ms=3, label="Delta_0 DMFT")
    ax.plot(gt, ds["delta0_threshold"], "k:", label="(g-1) + 7/6 (g-1)^2")
    ax.plot(ds["g"], ds["autocorrelation"].isel(tau=0), "rs", label="Delta_0 sim")
    ax2 = ax.twinx()
    ax2.semilogy(gt, ds["decay_time_theory"], "C2-^", ms=3, label="decay time")
    ax2.set_ylabel("decay time", color="C2")
    ax.set_xlabel("g")
    ax.set_ylabel("Delta_0")
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[2]
    gl = ds["g_lyapunov"].values
    for k in ds["index"].values:
        ax.errorbar(
            gl,
            ds["lyapunov"].sel(index=k),
            ds["lyapunov_err"].sel(index=k),
            fmt="o-",
            ms=3,
            label=f"lambda_{k}",
        )
    gg = np.linspace(gl.min(), 1, 20)
    ax.plot(gg, gg - 1, "k--", label="g - 1 (N -> inf, g < 1)")
    ax.axhline(0, color="gray", lw=0.8)
    ax.axvline(1, color="gray", ls=":")
    ax.set_xlabel("g")
    ax.set_ylabel("Lyapunov exponent")
    ax.set_title(f"N={ds.attrs['N_lyapunov']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
