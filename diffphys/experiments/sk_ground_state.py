"""`sk-ground-state`: SK ground-state energy per spin e_N for N = 32 .. 512 and its N -> ∞ limit.

Each disorder sample (Gaussian couplings of variance 1/N, h = 0) is searched by parallel
tempering with `models.sk_metropolis` over a geometric ladder down to `T_min`, followed by a
zero-temperature quench of every rung; the estimate of its ground-state energy is the lowest
energy seen (recorded every sweep) or reached by the quench. The per-size means are fitted
with the finite-size form $e_N = e_\\infty + a N^{-2/3}$ (Boettcher, cond-mat/0407130) and
$e_\\infty$ is compared with Parisi's $-0.7631667$ (Crisanti & Rizzo 2002).

The search is a heuristic: at small N (<= 128) PT at these lengths finds the true ground state
of almost every sample, at N = 256, 512 and the CPU default lengths it may stop slightly above
it, biasing e_N upwards. `found_twice` (the fraction of samples whose best energy was reached
by both of two independent PT runs) measures how reliable each size is, and the fit can be
restricted to reliable sizes with `fit_N_max`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import ensemble, io, models, sampling, theory
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

PARAMS = {
    "N": Param([32, 64, 128, 256, 512], "numbers of spins", ge=4),
    "n_disorder": Param([48, 32, 16, 8, 4], "disorder samples, one per N", ge=2),
    "n_sweeps": Param([300, 600, 1000, 1500, 2000], "PT sweeps, one per N", ge=1),
    "T_min": Param(0.2, "lowest temperature of the PT ladder", gt=0),
    "T_max": Param(1.3, "highest temperature of the PT ladder", gt=0),
    "n_T": Param([8, 10, 12, 16, 20], "PT rungs, one per N", ge=2),
    "kind": Param("gaussian", "coupling distribution", choices=("gaussian", "bimodal")),
    "chunk_size": Param(16, "disorder samples per vmapped chunk", ge=1),
    "fit_N_max": Param(512, "largest N used in the finite-size fit", ge=4),
}

_QUENCH_BETA = 1e3  # exp(-beta dE) underflows for every dE > 0.1: a zero-temperature sweep
_QUENCH_SWEEPS = 10


def _search(key, N: int, pt: sampling.SamplingAlgorithm, n_T: int, n_sweeps: int, cfg: dict):
    """Best energy per spin of one sample from two independent PT runs (+ quench each)."""
    k_model, k_runs = jax.random.split(key)
    model = models.SK.sample(k_model, N, kind=cfg["kind"])
    quench = models.sk_metropolis(_QUENCH_BETA)

    def one_run(k):
        k_x, k_pt, k_q = jax.random.split(k, 3)
        state = pt.init(jax.random.rademacher(k_x, (n_T, N), jnp.int8), model)
        state, trace = sampling.run(
            k_pt, pt, state, model, n_sweeps, record=lambda s: jnp.min(s.states.energy), every=1
        )
        base = state.states

        def quench_one(kq, s):
            s, _ = sampling.run(kq, quench, s, model, _QUENCH_SWEEPS)
            return s.energy

        e_quench = jax.vmap(quench_one)(jax.random.split(k_q, n_T), base)
        best = jnp.minimum(jnp.min(trace["record"]), jnp.min(e_quench))
        return best / N, sampling.swap_rates(trace["info"])

    best, rates = jax.vmap(one_run)(jax.random.split(k_runs, 2))
    return {"e": jnp.min(best), "agree": jnp.abs(best[0] - best[1]) < 1e-5, "swap": rates.mean(0)}


def _check(cfg: dict) -> None:
    n = len(cfg["N"])
    for name in ("n_disorder", "n_sweeps", "n_T"):
        if len(cfg[name]) != n:
            raise ConfigError(
                f"{name} needs one entry per N ({n} values for N={cfg['N']}), got {cfg[name]}."
            )
    if not cfg["T_min"] < cfg["T_max"]:
        raise ConfigError(f"need T_min < T_max, got {cfg['T_min']}, {cfg['T_max']}.")
    if sum(int(N) <= cfg["fit_N_max"] for N in cfg["N"]) < 2:
        raise ConfigError("the fit needs at least two sizes N <= fit_N_max.")


@experiment(
    "sk-ground-state", runtime="about 3 min (191 CPU-s measured)",
    params=PARAMS,
    validate=_check,
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def sk_ground_state(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """SK ground-state energy per spin vs N by parallel tempering; e_N = e_inf + a N^(-2/3) fit."""
    ctx.set_total(len(cfg["N"]))
    e_mean, e_err, agree, swap_min, S_all, e_samples = [], [], [], [], [], []
    for N, S, n_sweeps, n_T in zip(cfg["N"], cfg["n_disorder"], cfg["n_sweeps"], cfg["n_T"]):
        N, S = int(N), int(S)
        betas = (1.0 / np.geomspace(cfg["T_min"], cfg["T_max"], int(n_T))).astype(np.float32)
        pt = sampling.parallel_tempering(models.sk_metropolis(), betas)
        fn = functools.partial(_search, N=N, pt=pt, n_T=int(n_T), n_sweeps=int(n_sweeps), cfg=cfg)
        keys = jax.random.split(ctx.key("sk-gs", N), S)
        out = ctx.task(
            f"N={N}",
            lambda fn=fn, keys=keys, S=S: ensemble.run(
                fn, keys, chunk_size=min(cfg["chunk_size"], S)
            ),
            like={
                "e": np.zeros(S, np.float32),
                "agree": np.zeros(S, bool),
                "swap": np.zeros((S, int(n_T) - 1), np.float32),
            },
        )
        e = np.asarray(out["e"], np.float64)
        e_mean.append(e.mean())
        e_err.append(e.std(ddof=1) / np.sqrt(S))
        agree.append(float(np.mean(out["agree"])))
        swap_min.append(float(np.min(np.mean(out["swap"], axis=0))))
        S_all.append(S)
        e_samples.append(e)
    Ns = np.asarray(cfg["N"], np.int64)
    sel = Ns <= cfg["fit_N_max"]
    fit = theory.sk_fit_finite_size(Ns[sel], np.asarray(e_mean)[sel], np.asarray(e_err)[sel])
    S_max = max(S_all)
    padded = np.full((len(Ns), S_max), np.nan)
    for i, e in enumerate(e_samples):
        padded[i, : e.size] = e
    ds = xr.Dataset(
        {
            "energy_per_spin": (("N",), np.asarray(e_mean)),
            "energy_per_spin_err": (("N",), np.asarray(e_err)),
            "energy_samples": (("N", "disorder"), padded),
            "found_twice": (("N",), np.asarray(agree)),
            "min_swap_rate": (("N",), np.asarray(swap_min)),
            "n_disorder": (("N",), np.asarray(S_all)),
            "energy_fit": (("N",), theory.sk_finite_size_energy(Ns, fit["e_inf"], fit["a"])),
        },
        coords={"N": Ns, "disorder": np.arange(S_max)},
    )
    io.annotate(
        ds,
        N=("number of spins", "1"),
        disorder=("disorder sample index", "1"),
        energy_per_spin=("mean ground-state energy per spin e_N", "J"),
        energy_samples=("best energy per spin of each sample (NaN: none)", "J"),
        found_twice=("fraction of samples where both PT runs agree", "1"),
        min_swap_rate=("smallest PT swap acceptance rate over the ladder", "1"),
        n_disorder=("number of disorder samples", "1"),
        energy_fit=("fitted e_inf + a N^(-2/3)", "J"),
    )
    ds.attrs.update(
        {f"fit_{k}": v for k, v in fit.items()},
        e_parisi=theory.SK_GROUND_STATE_ENERGY,
        omega=theory.SK_FINITE_SIZE_EXPONENT,
    )
    return ds


def _summary(ds: xr.Dataset) -> dict:
    e_inf, err = float(ds.attrs["fit_e_inf"]), float(ds.attrs["fit_e_inf_err"])
    return {
        "e_inf": e_inf,
        "e_inf_err": err,
        "a": float(ds.attrs["fit_a"]),
        "a_err": float(ds.attrs["fit_a_err"]),
        "chi2_per_dof": float(ds.attrs["fit_chi2"]) / max(int(ds.attrs["fit_dof"]), 1),
        "e_parisi": theory.SK_GROUND_STATE_ENERGY,
        "deviation_from_parisi_sigma": (e_inf - theory.SK_GROUND_STATE_ENERGY) / err,
        "e_N": {int(N): float(e) for N, e in zip(ds["N"].values, ds["energy_per_spin"].values)},
        "found_twice": {int(N): float(f) for N, f in zip(ds["N"].values, ds["found_twice"].values)},
    }


def _figure(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    N = ds["N"].values
    x = N ** (-2.0 / 3.0)
    e_inf, a = float(ds.attrs["fit_e_inf"]), float(ds.attrs["fit_a"])
    err = float(ds.attrs["fit_e_inf_err"])
    ax = axes[0]
    for i in range(N.size):
        s = ds["energy_samples"].values[i]
        s = s[np.isfinite(s)]
        ax.plot(np.full(s.size, x[i]), s, ".", color="0.7", ms=3)
    ax.errorbar(
        x,
        ds["energy_per_spin"],
        ds["energy_per_spin_err"],
        fmt="o",
        color="C0",
        label="PT + quench, mean over samples",
    )
    xf = np.linspace(0, x.max() * 1.05, 100)
    ax.plot(xf, e_inf + a * xf, "C0-", lw=1, label=f"fit: $e_\\infty$ = {e_inf:.4f} ± {err:.4f}")
    ax.plot(0, theory.SK_GROUND_STATE_ENERGY, "k*", ms=12, label="Parisi $-0.76317$")
    ax.set(
        xlabel="$N^{-2/3}$",
        ylabel="ground-state energy per spin",
        title="SK ground state, $e_N = e_\\infty + a N^{-2/3}$",
    )
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(N, ds["found_twice"], "o-", label="both PT runs agree")
    ax.plot(N, ds["min_swap_rate"], "s-", label="min PT swap rate")
    ax.set(xscale="log", xlabel="N", ylim=(0, 1.05), title="search reliability")
    ax.set_xticks(N, [str(n) for n in N])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
