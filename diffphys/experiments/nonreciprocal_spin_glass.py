"""`nonreciprocal-spin-glass`: two spherical SK systems with shared couplings, coupled
non-reciprocally (after Garcia Lorenzana, Altieri, Biroli, Fruchart & Vitelli, PRL 135, 187402
(2025)), from Langevin simulation, the two-time DMFT (`theory.nonreciprocal_dmft`) and the exact
p = 2 eigenmode solution (`theory.nonreciprocal_sk_dynamics`).

Two phase diagrams:

- the papers' model (antagonistic coupling alpha, kappa = 0): a temperature scan across the
  transition from the static disordered phase (T > T_c) to the oscillating amorphous phase
  (T < T_c). The predicted T_c = 1 for every alpha is derived here (`theory.critical_temperature`);
  the measured transition is bracketed by the temperatures at which the amplitude of the
  persistent oscillation is above / below 3x its finite-N noise floor (critical slowing down
  makes a finite-time classification close to T_c unreliable, so the scan avoids T ~ 1);
- our reciprocal extension (kappa > 0): an alpha scan at fixed T across the exceptional point of
  the self-consistent one-mode generator, where D = ((z_1-z_2)/2)^2 + kappa^2 - alpha^2 changes
  sign (static for D > 0, oscillating at frequency sqrt(-D) for D < 0).
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import io, models, sampling, theory
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

PARAMS = {
    # the papers' model: kappa = 0, temperature scan at fixed antagonistic coupling
    "prl_alpha": Param(1.0, "antagonistic coupling alpha of the kappa = 0 scan", ge=0),
    "prl_T": Param([0.4, 0.55, 0.7, 1.3, 1.6], "temperatures of the kappa = 0 scan", gt=0),
    "prl_t_w": Param(10.0, "waiting time t_w of the kappa = 0 scan", gt=0),
    "prl_t_max": Param(30.0, "final time of the kappa = 0 scan", gt=0),
    "prl_dt": Param(0.01, "Langevin time step of the kappa = 0 scan", gt=0),
    # finite-N phase drift of C below T_c is the largest error (0.25 at N = 512)
    "prl_N": Param(1024, "spins per system in the kappa = 0 scan", ge=2),
    # our reciprocal extension: alpha scan across the exceptional point at fixed T
    "T": Param(0.3, "temperature of the kappa > 0 alpha scan", gt=0),
    "kappa": Param(0.5, "reciprocal part kappa of the inter-system coupling", ge=0),
    "alpha": Param(
        [0.5, 1.0, 1.25, 1.35, 1.5, 1.65, 2.0], "antagonistic couplings of the alpha scan", ge=0
    ),
    "t_w": Param(20.0, "waiting time of the alpha scan", gt=0),
    "t_max": Param(40.0, "final time of the alpha scan", gt=0),
    "dt": Param(0.02, "Langevin time step of the alpha scan", gt=0),
    # shared
    "N": Param(512, "spins per system in the alpha scan", ge=2),
    "n_samples": Param(2, "disorder samples per point (>= 2 for error bars)", ge=2),
    "dmft_dt": Param(0.1, "time step of the two-time DMFT integrator", gt=0),
    "theory_dt": Param(0.05, "time step of the exact p = 2 eigenmode solution", gt=0),
    "n_lambda": Param(400, "quadrature points over the semicircle in the exact solution", ge=10),
}


def _validate(cfg: dict) -> None:
    for tw, tmax in (("prl_t_w", "prl_t_max"), ("t_w", "t_max")):
        if not cfg[tw] < cfg[tmax]:
            raise ConfigError(f"{tw} must be smaller than {tmax}, got {cfg[tw]} >= {cfg[tmax]}.")


# C_SK(2 t_w, t_w) / q_EA in the asymptotic aging regime: [2 sqrt(2) / 3]^{3/2}
_AGING_FACTOR = float((2.0 * np.sqrt(2.0) / 3.0) ** 1.5)


def simulate(key, n, T, alpha, kappa, dt, t_w, t_max, n_samples):
    """C_ab(t_w + tau, t_w) and the Lagrange multipliers z_a(t) (t >= t_w) of `n_samples`
    quenches from T = inf, one disorder sample each (per-sample values are kept for errors)."""
    steps = np.arange(round(t_w / dt), round(t_max / dt) + 1, max(1, round(0.25 / dt)))

    def one(k):
        k_j, k_x, k_run = jax.random.split(k, 3)
        model = models.NonreciprocalSK.sample(k_j, n, alpha, kappa)
        alg = models.nonreciprocal_langevin(beta=1.0 / T, dt=dt)
        state = alg.init(model.random_state(key=k_x), model)

        def record(s):
            return s.x, model.lagrange_multipliers(s.x, 1.0 / T)

        _, tr = sampling.run(
            k_run, alg, state, model, int(steps[-1]), record=record, record_at=steps
        )
        x, z = tr["record"]
        c = jnp.einsum("an,tbn->tab", x[0], x) / n  # x_a(t_w) . x_b(t) / N = C_ba(t, t_w)
        return jnp.swapaxes(c, 1, 2), z

    c, z = jax.jit(jax.vmap(one))(jax.random.split(key, n_samples))
    return {"tau": steps * dt - t_w, "C": np.asarray(c), "z": np.asarray(z)}


def predict_exact(T, alpha, kappa, dt, t_w, t_max, n_lambda):
    """The exact p = 2 eigenmode solution from t_w on."""
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
    return {"tau": d.t[later] - t_w, "C": d.C[0, later], "z": d.z[later]}


def predict_dmft(T, alpha, kappa, dt, t_w, tau):
    """The two-time DMFT: C_ab(t_w + tau, t_w) on the simulation's tau grid and z_a(t)."""
    t_max = np.ceil((t_w + tau[-1]) / dt - 1e-9) * dt  # the grid must cover the last time
    sol = theory.nonreciprocal_dmft(2, T, alpha, kappa, t_max=t_max, dt=dt)
    z = np.stack([np.interp(t_w + tau, sol.t, sol.z[:, a]) for a in range(2)], axis=-1)
    return {"C": sol.correlation(t_w + tau, t_w), "z": z}


def _crossing(x, y):
    """x where y(x) first changes sign from + to - (linear interpolation), else NaN."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    for i in range(len(x) - 1):
        if y[i] > 0 >= y[i + 1]:
            return float(x[i] + y[i] / (y[i] - y[i + 1]) * (x[i + 1] - x[i]))
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


def oscillation_amplitude(C, tau, t_w):
    """Amplitude of the persistent oscillation, sqrt(C_11^2 + C_12^2) at t = 2 t_w divided by the
    aging factor [2 sqrt(2)/3]^{3/2}: an estimate of q_EA = 1 - T below T_c (for kappa = 0,
    C_11 = C_SK cos, C_12 = C_SK sin and C_SK(2t_w, t_w) -> q_EA [2 sqrt(2)/3]^{3/2}), ~0 in the
    paramagnet."""
    i = int(np.argmin(np.abs(tau - t_w)))
    return float(np.hypot(C[i, 0, 0], C[i, 0, 1]) / _AGING_FACTOR)


def oscillation_frequency_measured(C, tau):
    """Mean angular velocity of the phase of C_11 + i C_12 over the window (the rotation
    frequency; alpha for kappa = 0)."""
    phase = np.unwrap(np.arctan2(C[:, 0, 1], C[:, 0, 0]))
    return float(np.polyfit(tau, phase, 1)[0])


def amplitude_threshold(n) -> float:
    """Amplitude above which an oscillation counts as persistent: 3 x the finite-N noise floor
    of the estimator, |C| ~ sqrt(2/N) between decorrelated configurations, over the aging
    factor (0.22 at N = 512); for the DMFT (N = inf) the same value is used."""
    return float(3.0 * np.sqrt(2.0 / n) / _AGING_FACTOR)


def _tc_bracket(T, amp, threshold):
    """[highest T classed oscillating, lowest T classed static] if the classes are separated
    in T (the transition lies inside), else [NaN, NaN]."""
    T, amp = np.asarray(T, float), np.asarray(amp, float)
    osc, stat = T[amp > threshold], T[amp <= threshold]
    if len(osc) == 0 or len(stat) == 0 or osc.max() > stat.min():
        return [float("nan"), float("nan")]
    return [float(osc.max()), float(stat.min())]


@experiment(
    "nonreciprocal-spin-glass", runtime="about 1.5 min (85 CPU-s measured)",
    params=PARAMS,
    validate=_validate,
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def nonreciprocal_spin_glass(ctx: RunContext, cfg: dict):
    """Non-reciprocally coupled spherical SK systems: T_c of the oscillating phase (kappa = 0) and
    the exceptional point (kappa > 0), simulation vs DMFT vs exact."""
    n, ns = cfg["N"], cfg["n_samples"]

    # -- the papers' model: temperature scan at kappa = 0 ------------------------------------
    a0, tw0 = cfg["prl_alpha"], cfg["prl_t_w"]
    temps = np.asarray(cfg["prl_T"], float)
    prl_sims, prl_dmft = [], []
    for T in temps:
        prl_sims.append(
            ctx.task(
                f"prl-sim-T={T:g}",
                lambda T=T: simulate(
                    ctx.key("prl", T),
                    cfg["prl_N"],
                    T,
                    a0,
                    0.0,
                    cfg["prl_dt"],
                    tw0,
                    cfg["prl_t_max"],
                    ns,
                ),
            )
        )
        tau0 = prl_sims[-1]["tau"]
        prl_dmft.append(
            ctx.task(
                f"prl-dmft-T={T:g}",
                lambda T=T, tau0=tau0: predict_dmft(T, a0, 0.0, cfg["dmft_dt"], tw0, tau0),
            )
        )
    tau0 = prl_sims[0]["tau"]
    c0 = np.stack([s["C"].mean(0) for s in prl_sims])
    c0_err = np.stack([s["C"].std(0, ddof=1) / np.sqrt(ns) for s in prl_sims])
    c0_dmft = np.stack([d["C"] for d in prl_dmft])
    amp = np.array([oscillation_amplitude(c, tau0, tw0) for c in c0])
    amp_dmft = np.array([oscillation_amplitude(c, tau0, tw0) for c in c0_dmft])
    freq = np.array([oscillation_frequency_measured(c, tau0) for c in c0])

    # -- our reciprocal extension: alpha scan at fixed T ----------------------------------
    T, kappa, t_w = cfg["T"], cfg["kappa"], cfg["t_w"]
    alphas = np.asarray(cfg["alpha"], float)
    sims, exact, dmft = [], [], []
    for a in alphas:
        sims.append(
            ctx.task(
                f"sim-alpha={a:g}",
                lambda a=a: simulate(
                    ctx.key("alpha", a), n, T, a, kappa, cfg["dt"], t_w, cfg["t_max"], ns
                ),
            )
        )
        exact.append(
            ctx.task(
                f"theory-alpha={a:g}",
                lambda a=a: predict_exact(
                    T, a, kappa, cfg["theory_dt"], t_w, cfg["t_max"], cfg["n_lambda"]
                ),
            )
        )
        tau = sims[-1]["tau"]
        dmft.append(
            ctx.task(
                f"dmft-alpha={a:g}",
                lambda a=a, tau=tau: predict_dmft(T, a, kappa, cfg["dmft_dt"], t_w, tau),
            )
        )
    tau = sims[0]["tau"]
    c_sim = np.stack([s["C"].mean(0) for s in sims])  # (alpha, tau, a, b)
    c_err = np.stack([s["C"].std(0, ddof=1) / np.sqrt(ns) for s in sims])
    c_th = np.stack([_on_grid(tau, th) for th in exact])
    c_dmft = np.stack([d["C"] for d in dmft])
    z_sim = np.stack([_late_mean(s["z"].mean(0), s["tau"]) for s in sims])
    z_th = np.stack([_late_mean(th["z"], th["tau"]) for th in exact])
    z_dmft = np.stack([_late_mean(d["z"], tau) for d in dmft])
    D_sim = theory.exceptional_discriminant(z_sim[:, 0], z_sim[:, 1], alphas, kappa)
    D_th = theory.exceptional_discriminant(z_th[:, 0], z_th[:, 1], alphas, kappa)
    D_dmft = theory.exceptional_discriminant(z_dmft[:, 0], z_dmft[:, 1], alphas, kappa)

    ab = ("a", "b")
    ds = xr.Dataset(
        {
            # the papers' model (kappa = 0)
            "correlation_prl": (("T_prl", "tau_prl", *ab), c0),
            "correlation_prl_error": (("T_prl", "tau_prl", *ab), c0_err),
            "correlation_prl_dmft": (("T_prl", "tau_prl", *ab), c0_dmft),
            "amplitude_prl": (("T_prl",), amp),
            "amplitude_prl_dmft": (("T_prl",), amp_dmft),
            "frequency_prl": (("T_prl",), freq),
            # the reciprocal extension (kappa > 0)
            "correlation": (("alpha", "tau", *ab), c_sim),
            "correlation_error": (("alpha", "tau", *ab), c_err),
            "correlation_theory": (("alpha", "tau", *ab), c_th),
            "correlation_dmft": (("alpha", "tau", *ab), c_dmft),
            "lagrange": (("alpha", "a"), z_sim),
            "lagrange_theory": (("alpha", "a"), z_th),
            "lagrange_dmft": (("alpha", "a"), z_dmft),
            "discriminant": (("alpha",), D_sim),
            "discriminant_theory": (("alpha",), D_th),
            "discriminant_dmft": (("alpha",), D_dmft),
            "frequency": (("alpha",), np.sqrt(np.maximum(-D_sim, 0.0))),
            "frequency_theory": (("alpha",), np.sqrt(np.maximum(-D_th, 0.0))),
        },
        coords={
            "T_prl": temps,
            "tau_prl": tau0,
            "alpha": alphas,
            "tau": tau,
            "a": [1, 2],
            "b": [1, 2],
        },
        attrs={
            "description": "C_ab(t_w + tau, t_w) = s^a(t_w+tau).s^b(t_w)/N. kappa = 0 (the papers' "
            "antagonistic coupling): temperature scan at alpha = prl_alpha; amplitude = "
            "|C_11 + i C_12|(2 t_w, t_w) / [2 sqrt(2)/3]^{3/2} (-> 1 - T below T_c = 1, 0 above); "
            "frequency = phase velocity of C_11 + i C_12. kappa > 0 (our extension): alpha scan "
            "at T; Lagrange multipliers z_a averaged over the second half of the window and the "
            "discriminant D = ((z_1-z_2)/2)^2 + kappa^2 - alpha^2 of the one-mode generator "
            "(D > 0 static, D < 0 oscillating at sqrt(-D)). theory = exact p = 2 eigenmode "
            "solution, dmft = two-time DMFT integrator.",
            "T": T,
            "kappa": kappa,
            "t_w": t_w,
            "prl_alpha": a0,
            "prl_t_w": tw0,
            "amplitude_threshold": amplitude_threshold(cfg["prl_N"]),
            "prl_N": cfg["prl_N"],
            "N": n,
        },
    )
    c = "two-time correlation C_ab(t_w + tau, t_w)"
    io.annotate(
        ds,
        T_prl=("temperature (kappa = 0 scan)", "1"),
        tau_prl=("time difference tau = t - t_w (kappa = 0 scan)", "1"),
        alpha=("antagonistic coupling alpha", "1"),
        tau=("time difference tau = t - t_w", "1"),
        a=("system index a", "1"),
        b=("system index b", "1"),
        correlation_prl=(f"{c}, simulation, kappa = 0", "1"),
        correlation_prl_error=(f"standard error of the simulated {c}, kappa = 0", "1"),
        correlation_prl_dmft=(f"{c}, DMFT, kappa = 0", "1"),
        amplitude_prl=("normalised amplitude of the persistent oscillation, simulation", "1"),
        amplitude_prl_dmft=("normalised amplitude of the persistent oscillation, DMFT", "1"),
        frequency_prl=("phase velocity of C_11 + i C_12, simulation", "1/time"),
        correlation=(f"{c}, simulation", "1"),
        correlation_error=(f"standard error of the simulated {c}", "1"),
        correlation_theory=(f"{c}, exact p = 2 eigenmode solution", "1"),
        correlation_dmft=(f"{c}, DMFT", "1"),
        lagrange=("late-time Lagrange multiplier z_a, simulation", "1"),
        lagrange_theory=("late-time Lagrange multiplier z_a, exact solution", "1"),
        lagrange_dmft=("late-time Lagrange multiplier z_a, DMFT", "1"),
        discriminant=("discriminant D of the one-mode generator, simulation", "1"),
        discriminant_theory=("discriminant D of the one-mode generator, exact solution", "1"),
        discriminant_dmft=("discriminant D of the one-mode generator, DMFT", "1"),
        frequency=("oscillation frequency sqrt(-D), simulation", "1/time"),
        frequency_theory=("oscillation frequency sqrt(-D), exact solution", "1/time"),
    )
    return ds


def _summary(ds) -> dict:
    alpha = ds["alpha"].values
    D, D_th, D_dmft = (
        ds[v].values for v in ("discriminant", "discriminant_theory", "discriminant_dmft")
    )

    def phase(d):
        return ["static" if x > 0 else "oscillating" for x in d]

    temps = ds["T_prl"].values
    tc = float(theory.critical_temperature(float(ds.attrs["prl_alpha"])))
    dev = np.abs(ds["correlation"] - ds["correlation_dmft"]).sel(a=1, b=1).values
    dev_exact = np.abs(ds["correlation_dmft"] - ds["correlation_theory"]).values
    dev0 = np.abs(ds["correlation_prl"] - ds["correlation_prl_dmft"]).sel(a=1, b=1).values
    thr = float(ds.attrs["amplitude_threshold"])
    amp, amp_dmft = ds["amplitude_prl"].values, ds["amplitude_prl_dmft"].values

    def prl_phase(values):
        return {float(t): "oscillating" if a > thr else "static" for t, a in zip(temps, values)}

    return {
        "prl_alpha": float(ds.attrs["prl_alpha"]),
        "T_c_predicted": tc,
        "T_c_bracket_measured": _tc_bracket(temps, amp, thr),
        "T_c_bracket_dmft": _tc_bracket(temps, amp_dmft, thr),
        "phase_prl_measured": prl_phase(amp),
        "phase_prl_dmft": prl_phase(amp_dmft),
        "phase_prl_predicted": {float(t): "oscillating" if t < tc else "static" for t in temps},
        "amplitude_threshold": thr,
        "frequency_prl_measured": {
            float(t): float(f) for t, f, a in zip(temps, ds["frequency_prl"].values, amp) if a > thr
        },
        "frequency_prl_predicted": float(ds.attrs["prl_alpha"]),
        "prl_max_abs_C11_deviation_sim_dmft": float(np.max(dev0)),
        "T": float(ds.attrs["T"]),
        "kappa": float(ds.attrs["kappa"]),
        "alpha_c_measured": _crossing(alpha, D),
        "alpha_c_predicted": _crossing(alpha, D_th),
        "alpha_c_dmft": _crossing(alpha, D_dmft),
        "alpha_bare_exceptional_point": theory.exceptional_point(float(ds.attrs["kappa"])),
        "phase_measured": dict(zip(map(float, alpha), phase(D))),
        "phase_predicted": dict(zip(map(float, alpha), phase(D_th))),
        "phases_agree": int(np.sum(np.sign(D) == np.sign(D_th))),
        "n_alpha": int(len(alpha)),
        "max_abs_C11_deviation_sim_dmft": float(np.nanmax(dev)),
        "max_abs_C_deviation_dmft_exact": float(np.nanmax(dev_exact)),
    }


def _figure(ds):
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    # -- kappa = 0 --------------------------------------------------------------------------
    temps = ds["T_prl"].values
    tau0 = ds["tau_prl"].values
    a0, tw0 = float(ds.attrs["prl_alpha"]), float(ds.attrs["prl_t_w"])
    ax = axes[0, 0]
    ax.plot(temps, ds["amplitude_prl"], "o", label="simulation")
    ax.plot(temps, ds["amplitude_prl_dmft"], "k^", mfc="none", label="DMFT")
    tt = np.linspace(0, max(temps.max(), 1.2), 100)
    ax.plot(tt, np.maximum(1 - tt, 0), "C3:", label="$q_{EA} = 1-T$")
    ax.axvline(1.0, color="gray", ls="--", label="$T_c = 1$ (all $\\alpha$)")
    ax.axhline(
        float(ds.attrs["amplitude_threshold"]), color="C2", ls=":", lw=1, label="noise threshold"
    )
    ax.set_xlabel("T")
    ax.set_ylabel("oscillation amplitude $|C_{11}+iC_{12}|(2t_w,t_w)/0.84$")
    ax.set_title(f"$\\kappa=0$, $\\alpha$={a0:g}: static disordered vs oscillating amorphous")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for i, T in enumerate([temps[0], temps[-1]]):
        _sim_and_dmft(ax, tau0, ds.sel(T_prl=T, a=1, b=1), "correlation_prl", i, f"T={T:g}")
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel(f"$\\tau = t - t_w$ ($t_w$={tw0:g})")
    ax.set_ylabel("$C_{11}(t_w+\\tau, t_w)$")
    ax.set_title(f"$\\kappa=0$: below / above $T_c$ (N={ds.attrs['prl_N']}; lines: DMFT)")
    ax.legend(fontsize=8)
    ax = axes[0, 2]
    d = ds.sel(T_prl=temps[0])
    cd, ca = theory.rotation_components(d["correlation_prl"].values)
    cd_th, ca_th = theory.rotation_components(d["correlation_prl_dmft"].values)
    ax.plot(tau0, cd, "o", ms=2.5, label="$C_d$ sim")
    ax.plot(tau0, ca, "s", ms=2.5, label="$C_a$ sim")
    ax.plot(tau0, cd_th, "C0-", lw=1, label="$C_d$ DMFT")
    ax.plot(tau0, ca_th, "C1-", lw=1, label="$C_a$ DMFT")
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel("$\\tau$")
    ax.set_title(f"diagonal / antisymmetric parts, T={temps[0]:g}")
    ax.legend(fontsize=8)
    # -- kappa > 0 --------------------------------------------------------------------------
    alpha = ds["alpha"].values
    kappa = float(ds.attrs["kappa"])
    ax = axes[1, 0]
    ax.plot(alpha, ds["discriminant"], "o", label="simulation (measured $z_a$)")
    ax.plot(alpha, ds["discriminant_theory"], "k-", label="exact $N\\to\\infty$ (eigenmodes)")
    ax.plot(alpha, ds["discriminant_dmft"], "k^", mfc="none", label="DMFT")
    ax.axhline(0, color="gray", lw=0.8)
    ax.axvline(kappa, color="C3", ls=":", label=f"bare EP $\\alpha=\\kappa$={kappa:g}")
    ac = _crossing(alpha, ds["discriminant_theory"].values)
    if np.isfinite(ac):
        ax.axvline(ac, color="k", ls="--", label=f"self-consistent EP $\\alpha_c$={ac:.2f}")
    ax.set_xlabel("$\\alpha$ (antagonistic coupling)")
    ax.set_ylabel("$D = ((z_1-z_2)/2)^2 + \\kappa^2 - \\alpha^2$")
    ax.set_title(f"extension $\\kappa$={kappa:g}, T={ds.attrs['T']:g}: static (D>0) / oscillating")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.plot(alpha, ds["frequency"], "o", label="simulation $\\sqrt{-D}$")
    ax.plot(alpha, ds["frequency_theory"], "k-", label="exact")
    ax.plot(
        alpha,
        theory.oscillation_frequency(alpha, kappa),
        "C3:",
        label="bare $\\sqrt{\\alpha^2-\\kappa^2}$",
    )
    ax.set_xlabel("$\\alpha$")
    ax.set_ylabel("oscillation frequency")
    ax.legend(fontsize=8)
    ax = axes[1, 2]
    tau = ds["tau"].values
    for i, a in enumerate([alpha[0], alpha[-1]]):
        _sim_and_dmft(ax, tau, ds.sel(alpha=a, a=1, b=1), "correlation", i, f"$\\alpha$={a:g}")
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel(f"$\\tau = t - t_w$ ($t_w$={ds.attrs['t_w']:g})")
    ax.set_ylabel("$C_{11}(t_w+\\tau, t_w)$")
    ax.set_title("extension: inside each phase (lines: DMFT)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _sim_and_dmft(ax, tau, d, var, i, label):
    """Simulated `var` with its error bars (markers) and its DMFT curve (line) in colour Ci."""
    ax.errorbar(
        tau, d[var], d[f"{var}_error"], fmt="o", ms=2.5, color=f"C{i}", label=f"sim {label}"
    )
    ax.plot(tau, d[f"{var}_dmft"], "-", color=f"C{i}", lw=1)
