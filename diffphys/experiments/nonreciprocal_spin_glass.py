"""`nonreciprocal-spin-glass`: static vs oscillating dynamics of two spherical SK systems coupled
non-reciprocally (Garcia Lorenzana, Altieri, Biroli, Fruchart & Vitelli, PRL 135, 187402),
across the self-consistent exceptional point, from Langevin simulation and the exact N -> inf
dynamics (the model's DMFT for p = 2)."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import models, sampling, theory
from ._core import RunContext, experiment

DEFAULTS = {
    "T": 0.3,
    "kappa": 0.5,
    "alpha": [0.5, 1.0, 1.25, 1.35, 1.5, 1.65, 2.0],
    "N": 512,
    "n_samples": 2,
    "t_w": 20.0,
    "t_max": 40.0,
    "dt": 0.02,
    "theory_dt": 0.05,
    "n_lambda": 400,
    "prl_T": 0.5,
    "prl_alpha": 1.0,
    "prl_t_w": 5.0,
    "prl_t_max": 25.0,
    "prl_dt": 0.01,
}


def simulate(key, n, T, alpha, kappa, dt, t_w, t_max, n_samples):
    """C_11(t_w + tau, t_w), C_12(t_w + tau, t_w) and the Lagrange multipliers z_a(t) (t >= t_w)
    averaged over `n_samples` disorder samples (per-sample values are kept for errors)."""
    steps = np.arange(round(t_w / dt), round(t_max / dt) + 1, max(1, round(0.25 / dt)))

    def one(k):
        k_j, k_x, k_run = jax.random.split(k, 3)
        model = models.NonreciprocalSK.sample(k_j, n, alpha, kappa)
        alg = models.nonreciprocal_langevin(beta=1.0 / T, dt=dt)
        state = alg.init(model.random_state(key=k_x), model)

        def record(s):
            return s.x, T + jnp.sum(s.x * model.drift(s.x), axis=-1) / n

        _, tr = sampling.run(
            k_run, alg, state, model, int(steps[-1]), record=record, record_at=steps
        )
        x, z = tr["record"]
        c = jnp.einsum("an,tbn->tab", x[0], x) / n  # C_ab(t, t_w) with a the t_w system
        return jnp.swapaxes(c, 1, 2), z

    c, z = jax.jit(jax.vmap(one))(jax.random.split(key, n_samples))
    return {"tau": steps * dt - t_w, "C": np.asarray(c), "z": np.asarray(z)}


def predict(T, alpha, kappa, dt, t_w, t_max, n_lambda):
    d = theory.nonreciprocal_sk_dynamics(
        T,
        alpha,
        kappa,
        t_max=t_max,
        t_w=[t_w],
        dt=dt,
        record_every=max(1, round(0.25 / dt)),
        n_lambda=n_lambda,
    )
    later = d.t >= t_w - 1e-9
    return {"tau": d.t[later] - t_w, "C": d.C[0, later], "z": d.z[later], "q12": d.q12[later]}


def _crossing(alpha, D):
    """alpha where D(alpha) first changes sign from + to - (linear interpolation), else NaN."""
    alpha, D = np.asarray(alpha, float), np.asarray(D, float)
    for i in range(len(alpha) - 1):
        if D[i] > 0 >= D[i + 1]:
            return float(alpha[i] + D[i] / (D[i] - D[i + 1]) * (alpha[i + 1] - alpha[i]))
    return float("nan")


def _on_grid(tau, th):
    out = np.empty((len(tau), 2, 2))
    for i in range(2):
        for j in range(2):
            out[:, i, j] = np.interp(tau, th["tau"], th["C"][:, i, j])
    return out


def _late_mean(z, tau, frac=0.5):
    late = tau >= tau[-1] * (1 - frac)
    return z[..., late, :].mean(axis=-2)


@experiment(
    "nonreciprocal-spin-glass",
    defaults=DEFAULTS,
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def nonreciprocal_spin_glass(ctx: RunContext, cfg: dict):
    """Static vs oscillating phases of non-reciprocally coupled spherical SK systems (sim + DMFT)."""
    T, kappa, t_w = cfg["T"], cfg["kappa"], cfg["t_w"]
    alphas = np.asarray(cfg["alpha"], float)
    sims, ths = [], []
    for a in alphas:
        sims.append(
            ctx.task(
                f"sim-alpha={a:g}",
                lambda a=a: simulate(
                    ctx.key("alpha", a),
                    cfg["N"],
                    T,
                    a,
                    kappa,
                    cfg["dt"],
                    t_w,
                    cfg["t_max"],
                    cfg["n_samples"],
                ),
            )
        )
        ths.append(
            ctx.task(
                f"theory-alpha={a:g}",
                lambda a=a: predict(
                    T, a, kappa, cfg["theory_dt"], t_w, cfg["t_max"], cfg["n_lambda"]
                ),
            )
        )
    tau = sims[0]["tau"]
    c_sim = np.stack([s["C"].mean(0) for s in sims])  # (alpha, tau, a, b)
    c_err = np.stack([s["C"].std(0, ddof=1) / np.sqrt(s["C"].shape[0]) for s in sims])
    c_th = np.stack([_on_grid(tau, th) for th in ths])
    z_sim = np.stack([_late_mean(s["z"].mean(0), s["tau"]) for s in sims])
    z_th = np.stack([_late_mean(th["z"], th["tau"]) for th in ths])
    D_sim = theory.exceptional_discriminant(z_sim[:, 0], z_sim[:, 1], alphas, kappa)
    D_th = theory.exceptional_discriminant(z_th[:, 0], z_th[:, 1], alphas, kappa)

    # The PRL model itself (kappa = 0): oscillating aging below T_c = 1.
    prl_sim = ctx.task(
        "prl-sim",
        lambda: simulate(
            ctx.key("prl"),
            cfg["N"],
            cfg["prl_T"],
            cfg["prl_alpha"],
            0.0,
            cfg["prl_dt"],  # the projected Euler step has an O(dt) phase lag
            cfg["prl_t_w"],
            cfg["prl_t_max"],
            cfg["n_samples"],
        ),
    )
    prl_th = ctx.task(
        "prl-theory",
        lambda: predict(
            cfg["prl_T"],
            cfg["prl_alpha"],
            0.0,
            cfg["theory_dt"],
            cfg["prl_t_w"],
            cfg["prl_t_max"],
            cfg["n_lambda"],
        ),
    )
    tau_prl = prl_sim["tau"]
    return xr.Dataset(
        {
            "correlation": (("alpha", "tau", "a", "b"), c_sim),
            "correlation_error": (("alpha", "tau", "a", "b"), c_err),
            "correlation_theory": (("alpha", "tau", "a", "b"), c_th),
            "lagrange": (("alpha", "a"), z_sim),
            "lagrange_theory": (("alpha", "a"), z_th),
            "discriminant": (("alpha",), D_sim),
            "discriminant_theory": (("alpha",), D_th),
            "frequency": (("alpha",), np.sqrt(np.maximum(-D_sim, 0.0))),
            "frequency_theory": (("alpha",), np.sqrt(np.maximum(-D_th, 0.0))),
            "correlation_kappa0": (("tau_prl",), prl_sim["C"].mean(0)[:, 0, 0]),
            "correlation_kappa0_error": (
                ("tau_prl",),
                prl_sim["C"][:, :, 0, 0].std(0, ddof=1) / np.sqrt(prl_sim["C"].shape[0]),
            ),
            "correlation_kappa0_theory": (
                ("tau_prl",),
                np.interp(tau_prl, prl_th["tau"], prl_th["C"][:, 0, 0]),
            ),
        },
        coords={"alpha": alphas, "tau": tau, "a": [1, 2], "b": [1, 2], "tau_prl": tau_prl},
        attrs={
            "description": "C_ab(t_w + tau, t_w) = s^a(t_w+tau).s^b(t_w)/N, Lagrange multipliers "
            "z_a averaged over the second half of the window, and the discriminant "
            "D = ((z_1-z_2)/2)^2 + kappa^2 - alpha^2 of the one-mode generator (D > 0 static, "
            "D < 0 oscillating at sqrt(-D)); theory = exact N -> inf mode dynamics.",
            "T": T,
            "kappa": kappa,
            "t_w": t_w,
        },
    )


def _summary(ds) -> dict:
    alpha = ds["alpha"].values
    D, D_th = ds["discriminant"].values, ds["discriminant_theory"].values
    phase = lambda d: ["static" if x > 0 else "oscillating" for x in d]
    dev = np.abs(ds["correlation"] - ds["correlation_theory"]).sel(a=1, b=1).values
    return {
        "T": float(ds.attrs["T"]),
        "kappa": float(ds.attrs["kappa"]),
        "alpha_c_measured": _crossing(alpha, D),
        "alpha_c_predicted": _crossing(alpha, D_th),
        "alpha_bare_exceptional_point": theory.exceptional_point(float(ds.attrs["kappa"])),
        "phase_measured": dict(zip(map(float, alpha), phase(D))),
        "phase_predicted": dict(zip(map(float, alpha), phase(D_th))),
        "phases_agree": int(np.sum(np.sign(D) == np.sign(D_th))),
        "n_alpha": int(len(alpha)),
        "max_abs_C11_deviation": float(np.nanmax(dev)),
        "kappa0_max_abs_C11_deviation": float(
            np.max(np.abs(ds["correlation_kappa0"] - ds["correlation_kappa0_theory"]).values)
        ),
    }


def _figure(ds):
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    alpha = ds["alpha"].values
    kappa = float(ds.attrs["kappa"])
    ax = axes[0, 0]
    ax.plot(alpha, ds["discriminant"], "o", label="simulation (measured $z_a$)")
    ax.plot(alpha, ds["discriminant_theory"], "k-", label="exact $N\\to\\infty$ dynamics")
    ax.axhline(0, color="gray", lw=0.8)
    ax.axvline(kappa, color="C3", ls=":", label=f"bare EP $\\alpha=\\kappa$={kappa:g}")
    ac = _crossing(alpha, ds["discriminant_theory"].values)
    if np.isfinite(ac):
        ax.axvline(ac, color="k", ls="--", label=f"self-consistent EP $\\alpha_c$={ac:.2f}")
    ax.set_xlabel("$\\alpha$ (antagonistic coupling)")
    ax.set_ylabel("$D = ((z_1-z_2)/2)^2 + \\kappa^2 - \\alpha^2$")
    ax.set_title(f"static (D>0) vs oscillating (D<0), T={ds.attrs['T']:g}, $\\kappa$={kappa:g}")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    ax.plot(alpha, ds["frequency"], "o", label="simulation $\\sqrt{-D}$")
    ax.plot(alpha, ds["frequency_theory"], "k-", label="theory")
    ax.plot(
        alpha,
        theory.oscillation_frequency(alpha, kappa),
        "C3:",
        label="bare $\\sqrt{\\alpha^2-\\kappa^2}$",
    )
    ax.set_xlabel("$\\alpha$")
    ax.set_ylabel("oscillation frequency")
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    tau = ds["tau"].values
    for i, a in enumerate([alpha[0], alpha[-1]]):
        d = ds.sel(alpha=a, a=1, b=1)
        ax.errorbar(
            tau,
            d["correlation"],
            d["correlation_error"],
            fmt="o",
            ms=3,
            color=f"C{i}",
            label=f"sim $\\alpha$={a:g}",
        )
        ax.plot(tau, d["correlation_theory"], "-", color=f"C{i}", lw=1)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel(f"$\\tau = t - t_w$ ($t_w$={ds.attrs['t_w']:g})")
    ax.set_ylabel("$C_{11}(t_w+\\tau, t_w)$")
    ax.set_title("inside each phase (lines: theory)")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    tp = ds["tau_prl"].values
    ax.errorbar(
        tp,
        ds["correlation_kappa0"],
        ds["correlation_kappa0_error"],
        fmt="o",
        ms=3,
        label="simulation",
    )
    ax.plot(
        tp, ds["correlation_kappa0_theory"], "k-", lw=1, label="exact: $C_{SK}\\cos\\alpha\\tau$"
    )
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel("$\\tau$")
    ax.set_ylabel("$C_{11}$")
    ax.set_title("PRL model ($\\kappa=0$): oscillating aging below $T_c$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
