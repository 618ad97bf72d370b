"""`random-rnn`: random rate networks x' = -x + J tanh(x), J ~ N(0, g^2/N) (Sompolinsky,
Crisanti & Sommers, PRL 61, 259 (1988)): the autocorrelation Delta(tau) from simulation next to
the SCS DMFT (`theory.rnn_dmft`), Delta_0 and the decay time against g, and the largest
Lyapunov exponents against g (tangent dynamics, `models.lyapunov_spectrum`) next to g - 1,
their N -> inf value below the transition. With white noise (x' = -x + J tanh x + sigma xi):
Delta(tau) from simulation next to the noisy DMFT. Fixed connectivity: the rank-ordered
eigenvalues of ONE network's long-window covariance of the rates tanh(x) next to the linear
theory (`theory.rnn_covariance_spectrum`, finite sampling included) at the DMFT effective gain
g <phi'> and at the gain fitted to the participation ratio, and the linear theory checked
against the exact (1 - J)^-1 (1 - J)^-T of a sampled J."""

import jax
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import ensemble, models, theory
from .._errors import ConfigError
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
    "g_noisy": Param([0.8, 1.5], "gains simulated with white noise next to the noisy DMFT", gt=0),
    "sigma": Param(1.0, "white-noise amplitude of the noisy runs", gt=0),
    "g_cov": Param([0.8, 1.5, 2.0], "gains of the covariance-spectrum networks", gt=0),
    "sigma_cov": Param([1.0, 0.5, 0.0], "noise amplitude of each covariance network", ge=0),
    "N_cov": Param(200, "neurons of the covariance-spectrum networks", ge=2),
    "t_cov": Param(10000.0, "recorded time of the covariance-spectrum runs", gt=0),
    "t_bin": Param(20.0, "time bin of the long-window covariance", gt=0),
    "g_linear": Param(
        0.7, "gain of the linear-theory check against exact eigenvalues", gt=0, le=0.99
    ),
}


def _simulate(key, g, cfg, sigma: float = 0.0):
    """Autocorrelations of `n_networks` independent networks at gain g and noise sigma."""
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
            sigma=sigma,
        )
        return models.autocorrelation(out["record"], n_lag), out["diverged"]

    c, div = ensemble.run(one, jax.random.split(key, cfg["n_networks"]))
    return {"C": np.asarray(c), "diverged": np.asarray(div)}


def _covariance(key, g, sigma, cfg):
    """Eigenvalues of the long-window covariance of the rates tanh(x) of one network:
    bin averages over t_bin, covariance times t_bin (Shen & Hu's estimator)."""
    kj, kx, kr = jax.random.split(key, 3)
    m = models.RandomRNN.sample(kj, n=cfg["N_cov"], g=g)
    out = models.simulate_rnn(
        kr,
        m,
        m.random_state(key=kx),
        dt=cfg["dt"],
        t_burn=cfg["t_burn"],
        t_max=cfg["t_cov"],
        record_dt=cfg["record_dt"],
        sigma=sigma,
        record=jax.numpy.tanh,
    )
    r = np.asarray(out["record"], float)
    per_bin = max(1, round(cfg["t_bin"] / cfg["record_dt"]))
    n_bins = r.shape[0] // per_bin  # > N_cov: checked by _check before anything runs
    rb = r[: n_bins * per_bin].reshape(n_bins, per_bin, -1).mean(1)
    ev = np.linalg.eigvalsh(np.cov(rb.T) * cfg["t_bin"])[::-1]
    return {"ev": ev, "n_bins": n_bins, "diverged": np.asarray(out["diverged"])}


def _ks(sorted_desc, spec):
    """Largest CDF gap between eigenvalues (descending, normalised by their mean) and a
    theory spectrum (normalised by its mean)."""
    x = np.sort(sorted_desc / np.mean(sorted_desc)) * spec.mean
    n = len(x)
    cdf = np.interp(x, spec.x, spec.cdf / spec.cdf[-1])
    return float(np.max(np.maximum(np.arange(1, n + 1) / n - cdf, cdf - np.arange(n) / n)))


def _linear_check(key, cfg):
    n, g = cfg["N_cov"], cfg["g_linear"]
    j = np.asarray(models.RandomRNN.sample(key, n=n, g=g, dtype=jax.numpy.float32).couplings)
    a_inv = np.linalg.inv(np.eye(n) - j.astype(float))
    return {"ev": np.linalg.eigvalsh(a_inv @ a_inv.T)[::-1]}


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


def _check(cfg: dict) -> None:
    # the covariance runs need more time bins than neurons (a full-rank sample covariance);
    # the number of records is simulate_rnn's round(t_cov / (every dt))
    every = max(1, round(cfg["record_dt"] / cfg["dt"]))
    n_rec = max(1, round(cfg["t_cov"] / (every * cfg["dt"])))
    n_bins = n_rec // max(1, round(cfg["t_bin"] / cfg["record_dt"]))
    if n_bins <= cfg["N_cov"]:
        raise ConfigError(
            f"t_cov / t_bin = {n_bins} bins must exceed N_cov = {cfg['N_cov']}; raise t_cov."
        )


@experiment(
    "random-rnn", runtime="about 1.5 min (93 CPU-s measured)",
    params=PARAMS,
    validate=_check,
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
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
    # white noise: simulation next to the noisy DMFT
    g_no = np.asarray(cfg["g_noisy"], float)
    cn, cn_err, cn_th, n_div = [], [], [], []
    for g in g_no:
        sim = ctx.task(
            f"sim-noisy-g={g:g}",
            lambda g=g: _simulate(ctx.key("noisy", g), g, cfg, sigma=cfg["sigma"]),
        )
        th = ctx.task(
            f"dmft-noisy-g={g:g}",
            lambda g=g: {
                "delta": theory.rnn_dmft(
                    g, sigma=cfg["sigma"], tau_max=tau[-1], dtau=cfg["record_dt"]
                ).delta
            },
        )
        cn.append(sim["C"].mean(0))
        cn_err.append(sim["C"].std(0, ddof=1) / np.sqrt(len(sim["C"])))
        cn_th.append(th["delta"][: len(tau)])
        n_div.append(bool(np.any(sim["diverged"])))
    # fixed connectivity: covariance spectra of single networks against the linear theory
    g_cv = np.asarray(cfg["g_cov"], float)
    s_cv = np.asarray(cfg["sigma_cov"], float)
    if len(s_cv) != len(g_cv):
        raise ConfigError(f"sigma_cov needs one value per g_cov ({len(g_cv)}), got {len(s_cv)}.")
    n_cov = cfg["N_cov"]
    q = (np.arange(n_cov)[::-1] + 0.5) / n_cov  # quantile of the rank-th largest eigenvalue
    ev, ev_fit, ev_dm, ks_fit, ks_dm, g_fit, g_dm, alphas, c_div = ([] for _ in range(9))
    for i, (g, sg) in enumerate(zip(g_cv, s_cv)):
        cov = ctx.task(
            f"cov-{i}-g={g:g}-s={sg:g}",
            lambda g=g, sg=sg, i=i: _covariance(ctx.key("cov", i), g, sg, cfg),
        )
        alpha = n_cov / cov["n_bins"]
        gf = theory.rnn_fit_effective_gain(cov["ev"], alpha=alpha)
        gd = float(theory.rnn_effective_gain(g, sigma=sg))
        row = {}
        for name, gg in (("fit", gf), ("dmft", gd)):
            if np.isfinite(gg) and 0 < gg < 1:
                spec = theory.rnn_covariance_spectrum_sampled(
                    theory.rnn_covariance_spectrum(gg), alpha
                )
                row[name] = (spec.quantiles(q) / spec.mean, _ks(cov["ev"], spec))
            else:
                row[name] = (np.full(n_cov, np.nan), float("nan"))
        ev.append(cov["ev"] / cov["ev"].mean())
        ev_fit.append(row["fit"][0])
        ev_dm.append(row["dmft"][0])
        ks_fit.append(row["fit"][1])
        ks_dm.append(row["dmft"][1])
        g_fit.append(gf)
        g_dm.append(gd)
        alphas.append(alpha)
        c_div.append(bool(cov["diverged"]))
    lin = ctx.task("linear-exact", lambda: _linear_check(ctx.key("linear"), cfg))
    lin_spec = theory.rnn_covariance_spectrum(cfg["g_linear"])
    lin_th = lin_spec.quantiles(q)
    ks_lin = _ks(lin["ev"], lin_spec)
    rank = np.arange(1, n_cov + 1)
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
            "autocorrelation_noisy": (
                ("g_noisy", "tau"),
                np.asarray(cn),
                _a("Delta(tau) with white noise, simulation"),
            ),
            "autocorrelation_noisy_err": (
                ("g_noisy", "tau"),
                np.asarray(cn_err),
                _a("standard error over networks"),
            ),
            "autocorrelation_noisy_dmft": (
                ("g_noisy", "tau"),
                np.asarray(cn_th),
                _a("Delta(tau) with white noise, DMFT"),
            ),
            "noisy_diverged": (("g_noisy",), np.asarray(n_div), _a("noisy run diverged")),
            "cov_sigma": (("cov_case",), s_cv, _a("noise amplitude of the network")),
            "cov_alpha": (("cov_case",), np.asarray(alphas), _a("N / number of time bins")),
            "cov_eigenvalue": (
                ("cov_case", "rank"),
                np.asarray(ev),
                _a("eigenvalue of the long-window rate covariance / mean, simulation"),
            ),
            "cov_eigenvalue_theory_fit": (
                ("cov_case", "rank"),
                np.asarray(ev_fit),
                _a("linear theory with sampling at the fitted gain, quantile / mean"),
            ),
            "cov_eigenvalue_theory_dmft": (
                ("cov_case", "rank"),
                np.asarray(ev_dm),
                _a("linear theory with sampling at g <phi'> (DMFT), quantile / mean"),
            ),
            "g_eff_fit": (
                ("cov_case",),
                np.asarray(g_fit),
                _a("effective gain fitted to the participation ratio"),
            ),
            "g_eff_dmft": (("cov_case",), np.asarray(g_dm), _a("effective gain g <phi'>, DMFT")),
            "ks_fit": (
                ("cov_case",),
                np.asarray(ks_fit),
                _a("KS distance of the spectrum to the theory at the fitted gain"),
            ),
            "ks_dmft": (
                ("cov_case",),
                np.asarray(ks_dm),
                _a("KS distance of the spectrum to the theory at g <phi'>"),
            ),
            "cov_diverged": (("cov_case",), np.asarray(c_div), _a("covariance run diverged")),
            "linear_eigenvalue": (
                ("rank",),
                lin["ev"],
                _a("eigenvalue of (1 - J)^-1 (1 - J)^-T, exact, one sampled J"),
            ),
            "linear_eigenvalue_theory": (
                ("rank",),
                lin_th,
                _a("quantile of the Hu-Sompolinsky density at g_linear"),
            ),
            "ks_linear": ((), ks_lin, _a("KS distance, exact eigenvalues vs density")),
        },
        coords={
            "g": ("g", gs, _a("gain g")),
            "tau": ("tau", tau, _a("lag tau", "time constant")),
            "g_theory": ("g_theory", g_th, _a("gain g")),
            "g_lyapunov": ("g_lyapunov", g_ly, _a("gain g")),
            "index": ("index", k_idx, _a("index of the Lyapunov exponent")),
            "g_noisy": ("g_noisy", g_no, _a("gain g (noisy runs)")),
            "cov_case": ("cov_case", g_cv, _a("gain g of the covariance network")),
            "rank": ("rank", rank, _a("rank of the eigenvalue (1 = largest)")),
        },
        attrs={
            "N": cfg["N"],
            "N_lyapunov": cfg["N_lyapunov"],
            "n_networks": cfg["n_networks"],
            "sigma": cfg["sigma"],
            "N_cov": cfg["N_cov"],
            "g_linear": cfg["g_linear"],
            "description": "x' = -x + J tanh x, J ~ N(0, g^2/N); time in units of the unit "
            "time constant. Errors: standard error over independent networks (includes the "
            "finite-time error).",
        },
    )


def _summary(ds) -> dict:
    z = (ds["autocorrelation"] - ds["autocorrelation_dmft"]) / ds["autocorrelation_err"]
    zn = (ds["autocorrelation_noisy"] - ds["autocorrelation_noisy_dmft"]) / ds[
        "autocorrelation_noisy_err"
    ]
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
        "max_abs_z_autocorrelation_noisy": float(np.nanmax(np.abs(zn.values))),
        "ks_linear_exact": float(ds["ks_linear"]),
        "covariance": [
            {
                "g": float(g),
                "sigma": float(ds["cov_sigma"].values[i]),
                "alpha": float(ds["cov_alpha"].values[i]),
                "g_eff_fit": float(ds["g_eff_fit"].values[i]),
                "g_eff_dmft": float(ds["g_eff_dmft"].values[i]),
                "ks_fit": float(ds["ks_fit"].values[i]),
                "ks_dmft": float(ds["ks_dmft"].values[i]),
            }
            for i, g in enumerate(ds["cov_case"].values)
        ],
        "any_diverged": bool(
            ds["diverged"].any()
            or ds["lyapunov_diverged"].any()
            or ds["noisy_diverged"].any()
            or ds["cov_diverged"].any()
        ),
    }


def _figure(ds):
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    _figure_extra(ds, axes[1])
    axes = axes[0]
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


def _figure_extra(ds, axes):
    ax = axes[0]
    for i, g in enumerate(ds["g_noisy"].values):
        d = ds.sel(g_noisy=g)
        ax.errorbar(
            ds["tau"],
            d["autocorrelation_noisy"],
            d["autocorrelation_noisy_err"],
            fmt="o",
            ms=3,
            color=f"C{i}",
            label=f"sim g={g:g}",
        )
        ax.plot(ds["tau"], d["autocorrelation_noisy_dmft"], "-", color=f"C{i}", label="DMFT")
    ax.set_xlabel("tau")
    ax.set_ylabel("Delta(tau)")
    ax.set_title(f"with white noise, sigma={ds.attrs['sigma']:g}")
    ax.legend(fontsize=8)
    ax = axes[1]
    r = ds["rank"].values
    ax.loglog(r, ds["linear_eigenvalue"], "k.", ms=3, label="exact, one J")
    ax.loglog(r, ds["linear_eigenvalue_theory"], "r-", label="Hu-Sompolinsky density")
    ax.set_xlabel("rank")
    ax.set_ylabel("eigenvalue of (1-J)^-1 (1-J)^-T")
    ax.set_title(f"linear network, g={ds.attrs['g_linear']:g}, KS={float(ds['ks_linear']):.3f}")
    ax.legend(fontsize=8)
    ax = axes[2]
    for i, g in enumerate(ds["cov_case"].values):
        d = ds.isel(cov_case=i)
        lab = f"g={g:g}, sigma={float(d['cov_sigma']):g}"
        ax.loglog(r, d["cov_eigenvalue"], ".", ms=3, color=f"C{i}", label=lab)
        ax.loglog(r, d["cov_eigenvalue_theory_fit"], "-", color=f"C{i}", lw=1)
        ax.loglog(r, d["cov_eigenvalue_theory_dmft"], "--", color=f"C{i}", lw=1)
    ax.set_xlabel("rank")
    ax.set_ylabel("eigenvalue / mean")
    ax.set_title(f"tanh network, N={ds.attrs['N_cov']}: - fitted g_eff, -- g<phi'>")
    ax.legend(fontsize=8)
