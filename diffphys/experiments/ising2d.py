"""`ising2d`: the 2D Ising ferromagnet across T_c, next to Onsager's and Yang's exact results."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import io, models, observables, sampling, theory
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

PARAMS = {
    "L": Param([16, 32, 64, 128], "linear sizes of the periodic L x L lattices (even)", ge=4),
    "T": Param(
        [1.6, 1.9, 2.1, 2.2, 2.25, 2.27, 2.3, 2.35, 2.45, 2.7, 3.2],
        "temperatures (units of J/k_B); T_c = 2.269",
        gt=0,
    ),
    "n_sweeps": Param(12000, "measured sweeps per chain (after n_therm)", ge=10),
    "n_therm": Param(2000, "thermalisation sweeps discarded before measuring", ge=0),
    "n_segments": Param(4, "checkpointed pieces per lattice size", ge=1),
    "n_blocks": Param(20, "jackknife blocks for the error bars", ge=2),
    "rule": Param(
        "metropolis",
        "update: exact multispin Metropolis kernel or generic checkerboard heat bath",
        choices=("metropolis", "heat_bath"),
    ),
}


def _validate(cfg: dict) -> None:
    if any(L % 2 for L in cfg["L"]):
        raise ConfigError(f"checkerboard updates need even L, got L={cfg['L']}.")
    if cfg["n_sweeps"] < cfg["n_blocks"]:
        raise ConfigError(
            f"n_sweeps={cfg['n_sweeps']} must be at least n_blocks={cfg['n_blocks']}."
        )
    if cfg["n_segments"] > cfg["n_therm"] + cfg["n_sweeps"]:
        raise ConfigError("n_segments must not exceed the total number of sweeps.")


def _chains(ctx: RunContext, L: int, cfg: dict):
    """Run one chain per temperature at size L, `n_segments` checkpointed pieces."""
    T = jnp.asarray(cfg["T"], jnp.float32)
    model = models.Ising((L, L))
    # metropolis: the exact multispin-coded kernel (4-15x the generic one on a CPU,
    # benchmarks/results/ising.md); heat_bath: the generic checkerboard kernel.
    if cfg["rule"] == "metropolis":
        alg = models.ising_checkerboard_metropolis()
    else:
        alg = sampling.checkerboard(rule=cfg["rule"])
    key = ctx.key("L", L)
    total = cfg["n_therm"] + cfg["n_sweeps"]
    bounds = np.linspace(0, total, cfg["n_segments"] + 1).astype(int)

    def record(s):
        return s.energy / model.n_sites, jnp.mean(s.x.astype(jnp.float32))

    @functools.partial(jax.jit, static_argnums=2)
    def segment(states, start, n):
        def one(k, s, beta):
            return sampling.run(k, alg, s, model, n, record=record, every=1, start=start, beta=beta)

        keys = jax.random.split(key, T.shape[0])
        return jax.vmap(one)(keys, states, 1.0 / T)

    x0 = jnp.ones((L, L), jnp.int8)  # cold start: the ordered phase equilibrates fast
    state0 = alg.init(x0, model)
    states = jax.tree.map(lambda a: jnp.broadcast_to(a, (T.shape[0], *a.shape)), state0)
    traces_e, traces_m = [], []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):

        def work(states=states, lo=lo, hi=hi):
            final, trace = segment(states, int(lo), int(hi - lo))
            e, m = trace["record"]
            return {"state": final, "e": e, "m": m}

        trace_like = np.zeros((T.shape[0], hi - lo), np.float32)
        like = {"state": states, "e": trace_like, "m": trace_like}
        out = ctx.task(f"L={L}/segment={i}", work, like=like)
        states = jax.tree.map(jnp.asarray, out["state"])
        traces_e.append(out["e"])
        traces_m.append(out["m"])
    e = np.concatenate(traces_e, axis=1)[:, cfg["n_therm"] :].T  # (time, T)
    m = np.concatenate(traces_m, axis=1)[:, cfg["n_therm"] :].T
    nb = cfg["n_blocks"]
    e_mean, e_err = observables.mean_error(e, nb)
    am_mean, am_err = observables.mean_error(np.abs(m), nb)
    u, u_err = observables.binder_cumulant(m, nb)
    c, c_err = observables.specific_heat(e * L * L, L * L, 1.0 / np.asarray(cfg["T"]), nb)
    chi, chi_err = observables.susceptibility(m, L * L, 1.0 / np.asarray(cfg["T"]), nb)
    tau = observables.integrated_autocorr_time(e)
    return {
        "energy_per_spin": (e_mean, e_err),
        "abs_magnetization": (am_mean, am_err),
        "binder": (u, u_err),
        "specific_heat": (c, c_err),
        "susceptibility": (chi, chi_err),
        "tau_energy": (tau, None),
    }


@experiment(
    "ising2d",
    params=PARAMS,
    validate=_validate,
    runtime="about 2 min (134 CPU-s measured)",
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def ising2d(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """2D Ising ferromagnet (J = 1, periodic L x L): energy, |m|, Binder cumulant vs T and L."""
    ctx.set_total(len(cfg["L"]) * cfg["n_segments"])
    per_L = [_chains(ctx, L, cfg) for L in cfg["L"]]
    data = {}
    for name in per_L[0]:
        data[name] = (("L", "T"), np.stack([np.asarray(r[name][0]) for r in per_L]))
        if per_L[0][name][1] is not None:
            data[f"{name}_err"] = (("L", "T"), np.stack([np.asarray(r[name][1]) for r in per_L]))
    T = np.asarray(cfg["T"], np.float64)
    data["energy_onsager"] = (("T",), theory.onsager_energy(T))
    data["magnetization_yang"] = (("T",), theory.yang_magnetization(T))
    ds = xr.Dataset(data, coords={"L": np.asarray(cfg["L"]), "T": T})
    io.annotate(
        ds,
        L=("linear lattice size", "1"),
        T=("temperature", "J/k_B"),
        energy_per_spin=("energy per spin <E>/N", "J"),
        abs_magnetization=("mean absolute magnetisation per spin <|m|>", "1"),
        binder=("Binder cumulant 1 - <m^4>/(3<m^2>^2)", "1"),
        specific_heat=("specific heat per spin", "k_B"),
        susceptibility=("connected susceptibility per spin", "1/J"),
        tau_energy=("integrated autocorrelation time of the energy", "sweeps"),
        energy_onsager=("exact energy per spin, infinite lattice (Onsager)", "J"),
        magnetization_yang=("exact spontaneous magnetisation, infinite lattice (Yang)", "1"),
    )
    ds.attrs["T_c"] = float(theory.ISING_2D_TC)
    return ds


def binder_crossings(ds: xr.Dataset) -> list[float]:
    """Temperatures where the Binder curves of consecutive sizes cross (linear interpolation),
    ignoring crossings in the disordered phase where both cumulants fluctuate around 0."""
    T = ds["T"].values
    out = []
    for a, b in zip(ds["L"].values[:-1], ds["L"].values[1:]):
        d = ds["binder"].sel(L=b).values - ds["binder"].sel(L=a).values
        idx = np.where(np.sign(d[:-1]) != np.sign(d[1:]))[0]
        for i in idx:
            w = d[i] / (d[i] - d[i + 1])
            u = (1 - w) * ds["binder"].sel(L=b).values[i] + w * ds["binder"].sel(L=b).values[i + 1]
            if u > 0.3:  # the critical crossing is at U* ~ 0.61; near U = 0 it is noise
                out.append(float(T[i] + w * (T[i + 1] - T[i])))
    return out


def _summary(ds: xr.Dataset) -> dict:
    Lmax = int(ds["L"].values.max())
    big = ds.sel(L=Lmax)
    far = np.abs(ds["T"].values - ds.attrs["T_c"]) > 0.2
    z_e = (big["energy_per_spin"] - ds["energy_onsager"]) / big["energy_per_spin_err"]
    low = ds["T"].values < ds.attrs["T_c"] - 0.2
    z_m = (big["abs_magnetization"] - ds["magnetization_yang"]) / big["abs_magnetization_err"]
    crossings = binder_crossings(ds)
    return {
        "T_c_exact": ds.attrs["T_c"],
        "binder_crossings": crossings,
        "T_c_binder": float(np.median(crossings)) if crossings else None,
        "L_max": Lmax,
        "max_abs_z_energy_vs_onsager_far_from_Tc": float(np.max(np.abs(z_e.values[far]))),
        "max_abs_z_magnetization_vs_yang_low_T": float(np.max(np.abs(z_m.values[low])))
        if low.any()
        else None,
    }


def _figure(ds: xr.Dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    Tf = np.linspace(float(ds["T"].min()), float(ds["T"].max()), 300)
    Tc = ds.attrs["T_c"]
    for L in ds["L"].values:
        d = ds.sel(L=L)
        kw = {"marker": "o", "ms": 3, "capsize": 2, "ls": "none", "label": f"L = {L}"}
        axes[0].errorbar(d["T"], d["energy_per_spin"], d["energy_per_spin_err"], **kw)
        axes[1].errorbar(d["T"], d["abs_magnetization"], d["abs_magnetization_err"], **kw)
        axes[2].errorbar(d["T"], d["binder"], d["binder_err"], **{**kw, "ls": "-"})
    axes[0].plot(Tf, theory.onsager_energy(Tf), "k-", lw=1, label="Onsager (L = ∞)")
    axes[1].plot(Tf, theory.yang_magnetization(Tf), "k-", lw=1, label="Yang (L = ∞)")
    for ax, lab in zip(axes, ["energy per spin", "<|m|>", "Binder cumulant U_4"]):
        ax.axvline(Tc, color="grey", ls=":", lw=1)
        ax.set_xlabel("T")
        ax.set_ylabel(lab)
        ax.legend(fontsize=8)
    fig.suptitle("2D Ising model, checkerboard Metropolis (dotted: T_c = 2/ln(1+√2))")
    fig.tight_layout()
    return fig
