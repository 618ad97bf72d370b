"""`sk-parallel-tempering`: SK spin glass across T_c = 1 by parallel tempering, several N.

For every N, `n_disorder` Gaussian (or ±J) SK samples are simulated with
`sampling.parallel_tempering(models.sk_metropolis())` over a geometric temperature ladder, with
two independent replicas per sample for the overlap $q = \\frac1N\\sum_i s^a_i s^b_i$. The
disorder samples are vmapped with `ensemble.run` (chunked), one checkpointed task per block.

Measured (disorder average [.] of thermal averages <.>):

- `energy_per_spin` [<E>]/N next to the replica-symmetric theory (= the exact paramagnetic
  $-\\beta/2$ above T_c);
- `binder_q` $g = \\frac12\\big(3 - [\\langle q^4\\rangle]/[\\langle q^2\\rangle]^2\\big)$
  (Bhatt & Young 1985; Katzgraber, Palassini & Young 2001), whose curves for different N
  cross at T_c;
- `p_q` the overlap distribution P(q), disorder-averaged histogram density;
- `energy_from_q2` $-\\frac\\beta2(1 - [\\langle q^2\\rangle])$: for Gaussian couplings at
  h = 0 this equals [<E>]/N *exactly at every N* in equilibrium (Gaussian integration by
  parts, the SK form of the Katzgraber–Palassini–Young equilibration test), so the two
  agreeing shows the runs are equilibrated.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import ensemble, io, models, observables, sampling, theory
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

PARAMS = {
    "N": Param([32, 64, 128], "numbers of spins", ge=4),
    "T_min": Param(0.4, "lowest temperature of the geometric PT ladder", gt=0),
    "T_max": Param(1.6, "highest temperature of the PT ladder", gt=0),
    "n_T": Param(12, "PT rungs", ge=2),
    "n_disorder": Param(32, "disorder samples per N (>= 4 for jackknife errors)", ge=4),
    "n_equil": Param(1500, "equilibration sweeps", ge=1),
    "n_measure": Param(1500, "measuring sweeps", ge=1),
    "measure_every": Param(2, "sweeps between measurements", ge=1),
    "kind": Param("gaussian", "coupling distribution", choices=("gaussian", "bimodal")),
    "disorder_per_task": Param(32, "disorder samples per checkpointed task", ge=1),
    "chunk_size": Param(8, "disorder samples per vmapped chunk", ge=1),
    "n_q_bins": Param(33, "bins of the overlap histogram P(q)", ge=3),
}


def temperatures(cfg: dict) -> np.ndarray:
    """The geometric ladder T_min .. T_max with n_T rungs."""
    if not 0 < cfg["T_min"] < cfg["T_max"] or cfg["n_T"] < 2:
        raise ConfigError(
            f"need 0 < T_min < T_max and n_T >= 2, got T_min={cfg['T_min']}, "
            f"T_max={cfg['T_max']}, n_T={cfg['n_T']}."
        )
    return np.geomspace(cfg["T_min"], cfg["T_max"], cfg["n_T"])


def _simulate_sample(key, N: int, betas, cfg: dict):
    """One disorder sample: PT with two replicas; per-record overlaps and energies per spin."""
    k_model, k_x, k_run = jax.random.split(key, 3)
    model = models.SK.sample(k_model, N, kind=cfg["kind"])
    R = betas.shape[0]
    alg = sampling.replicas(sampling.parallel_tempering(models.sk_metropolis(), betas), 2)
    xs = jax.random.rademacher(k_x, (2, R, N), jnp.int8)
    state = alg.init(xs, model)
    n_equil = cfg["n_equil"]
    state, _ = sampling.run(k_run, alg, state, model, n_equil)

    def record(s):
        q = jax.vmap(observables.overlap)(s.states.x[0], s.states.x[1])
        return q, jnp.mean(s.states.energy, axis=0) / N

    _, trace = sampling.run(
        k_run,
        alg,
        state,
        model,
        cfg["n_measure"],
        record=record,
        every=cfg["measure_every"],
        start=n_equil,
    )
    q, e = trace["record"]  # (n_records, R)
    return {"q": q, "e": e, "swap": sampling.swap_rates(trace["info"])}


def _thermal(out: dict, q_edges: np.ndarray) -> dict:
    """Per-sample thermal averages and per-sample P(q) histograms."""
    q = np.asarray(out["q"], np.float64)  # (S, n_records, R)
    e = np.asarray(out["e"], np.float64)
    S, n_rec, R = q.shape
    hist = np.zeros((S, R, q_edges.size - 1))
    for r in range(R):
        for s in range(S):
            hist[s, r] = np.histogram(q[s, :, r], bins=q_edges)[0]
    return {
        "q2": np.mean(q**2, axis=1),
        "q4": np.mean(q**4, axis=1),
        "e": np.mean(e, axis=1),
        "hist": hist / n_rec,
        "swap": np.asarray(out["swap"], np.float64),
    }


def _size(ctx: RunContext, N: int, T: np.ndarray, cfg: dict) -> dict:
    betas = jnp.asarray(1.0 / T, jnp.float32)
    S, per = cfg["n_disorder"], cfg["disorder_per_task"]
    n_rec = cfg["n_measure"] // cfg["measure_every"]
    keys = jax.random.split(ctx.key("sk-pt", N), S)
    fn = functools.partial(_simulate_sample, N=N, betas=betas, cfg=cfg)
    parts = []
    for lo in range(0, S, per):
        hi = min(lo + per, S)
        like = {
            "q": np.zeros((hi - lo, n_rec, T.size), np.float32),
            "e": np.zeros((hi - lo, n_rec, T.size), np.float32),
            "swap": np.zeros((hi - lo, T.size - 1), np.float32),
        }
        parts.append(
            ctx.task(
                f"N={N}/disorder={lo}-{hi}",
                lambda lo=lo, hi=hi: ensemble.run(
                    fn, keys[lo:hi], chunk_size=min(cfg["chunk_size"], hi - lo)
                ),
                like=like,
            )
        )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _check(cfg: dict) -> None:
    if cfg["n_measure"] // cfg["measure_every"] < 2:
        raise ConfigError("n_measure / measure_every must give at least 2 measurements.")
    if not cfg["T_min"] < cfg["T_max"]:
        raise ConfigError(f"need T_min < T_max, got {cfg['T_min']}, {cfg['T_max']}.")


@experiment(
    "sk-parallel-tempering", runtime="about 1.5 min (89 CPU-s measured)",
    params=PARAMS,
    validate=_check,
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def sk_parallel_tempering(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """SK spin glass by parallel tempering: energy, P(q) and overlap Binder g vs T for several N."""
    T = temperatures(cfg)
    nb = cfg["n_q_bins"]
    q_edges = np.linspace(-1 - 1 / (nb - 1), 1 + 1 / (nb - 1), nb + 1)
    q_centres = 0.5 * (q_edges[1:] + q_edges[:-1])
    n_tasks = -(-cfg["n_disorder"] // cfg["disorder_per_task"])
    ctx.set_total(len(cfg["N"]) * n_tasks)
    beta = 1.0 / T
    data: dict[str, list] = {
        k: []
        for k in (
            "energy_per_spin",
            "energy_per_spin_err",
            "binder_q",
            "binder_q_err",
            "q2",
            "energy_from_q2",
            "energy_from_q2_err",
            "p_q",
            "swap_rate",
        )
    }
    S = cfg["n_disorder"]
    for N in cfg["N"]:
        th = _thermal(_size(ctx, int(N), T, cfg), q_edges)
        e = th["e"]
        data["energy_per_spin"].append(e.mean(0))
        data["energy_per_spin_err"].append(e.std(0, ddof=1) / np.sqrt(S))
        g, g_err = observables.jackknife(
            lambda a, b: 0.5 * (3.0 - b / a**2), th["q2"], th["q4"], n_blocks=S
        )
        data["binder_q"].append(np.asarray(g))
        data["binder_q_err"].append(np.asarray(g_err))
        data["q2"].append(th["q2"].mean(0))
        eq = -0.5 * beta * (1.0 - th["q2"])
        data["energy_from_q2"].append(eq.mean(0))
        # error of the difference (paired over samples) is what the equilibration test uses
        data["energy_from_q2_err"].append((e - eq).std(0, ddof=1) / np.sqrt(S))
        width = q_edges[1] - q_edges[0]
        data["p_q"].append(th["hist"].mean(0) / width)
        data["swap_rate"].append(th["swap"].mean(0))
    dims = {"p_q": ("N", "T", "q"), "swap_rate": ("N", "pair")}
    ds = xr.Dataset(
        {k: (dims.get(k, ("N", "T")), np.stack(v)) for k, v in data.items()},
        coords={"N": np.asarray(cfg["N"]), "T": T, "q": q_centres, "pair": np.arange(T.size - 1)},
    )
    ds["energy_rs"] = (("T",), np.asarray(theory.sk_rs_energy(T)))
    io.annotate(
        ds,
        N=("number of spins", "1"),
        T=("temperature", "J/k_B"),
        q=("overlap q (bin centre)", "1"),
        pair=("PT rung pair (pair, pair + 1)", "1"),
        energy_per_spin=("disorder-averaged energy per spin [<E>]/N", "J"),
        binder_q=("overlap Binder ratio (3 - [<q^4>]/[<q^2>]^2)/2", "1"),
        q2=("disorder-averaged [<q^2>]", "1"),
        p_q=("disorder-averaged overlap distribution P(q) (density)", "1"),
        energy_from_q2=(
            "-(beta/2)(1 - [<q^2>]): equals [<E>]/N in equilibrium (Gaussian J, h = 0)",
            "J",
        ),
        energy_from_q2_err=("standard error of energy - energy_from_q2", "J"),
        energy_rs=("replica-symmetric energy (exact for T >= 1)", "J"),
        swap_rate=("PT swap acceptance between rungs pair, pair + 1", "1"),
    )
    ds.attrs["T_c"] = 1.0
    return ds


def binder_crossing(ds: xr.Dataset) -> float | None:
    """Temperature where the g curves of the two largest sizes cross (linear interpolation
    between ladder points), or None."""
    if ds.sizes["N"] < 2:
        return None
    Ns = np.sort(ds["N"].values)
    d = ds["binder_q"].sel(N=Ns[-1]).values - ds["binder_q"].sel(N=Ns[-2]).values
    T = ds["T"].values
    idx = np.where(np.sign(d[:-1]) != np.sign(d[1:]))[0]
    if idx.size == 0:
        return None
    i = idx[np.argmin(np.abs(T[idx] - 1.0))]
    return float(T[i] - d[i] * (T[i + 1] - T[i]) / (d[i + 1] - d[i]))


def _summary(ds: xr.Dataset) -> dict:
    z = (ds["energy_per_spin"] - ds["energy_from_q2"]) / ds["energy_from_q2_err"]
    hot = ds["T"].values >= 1.2
    Nmax = int(ds["N"].values.max())
    big = ds.sel(N=Nmax)
    dev_hot = (big["energy_per_spin"] - ds["energy_rs"]).values[hot]
    return {
        "T_c_exact": 1.0,
        "binder_crossing_T": binder_crossing(ds),
        "N_max": Nmax,
        "max_abs_z_energy_vs_energy_from_q2": float(np.max(np.abs(z.values))),
        "max_abs_energy_minus_paramagnetic_T_ge_1.2_at_N_max": float(np.max(np.abs(dev_hot)))
        if hot.any()
        else None,
        "min_swap_rate": float(ds["swap_rate"].min()),
        "energy_per_spin_at_T_min": {
            int(N): float(ds["energy_per_spin"].sel(N=N).values[0]) for N in ds["N"].values
        },
    }


def _figure(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    T = ds["T"].values
    colours = plt.cm.viridis(np.linspace(0.1, 0.85, ds.sizes["N"]))
    ax = axes[0]
    for c, N in zip(colours, ds["N"].values):
        d = ds.sel(N=N)
        ax.errorbar(
            T,
            d["energy_per_spin"],
            d["energy_per_spin_err"],
            fmt="o",
            ms=4,
            color=c,
            label=f"N={N}",
        )
        ax.plot(T, d["energy_from_q2"], "x", color=c, ms=5)
    Tf = np.linspace(T.min(), T.max(), 200)
    ax.plot(Tf, theory.sk_rs_energy(Tf), "k-", lw=1, label="RS theory (exact for T>1)")
    ax.plot([], [], "kx", label=r"$-\frac{\beta}{2}(1-[\langle q^2\rangle])$")
    ax.axhline(theory.SK_GROUND_STATE_ENERGY, color="grey", ls=":", lw=1, label="Parisi $e_0$")
    ax.set(xlabel="T", ylabel="energy per spin", title="energy")
    ax.legend(fontsize=8)
    ax = axes[1]
    for c, N in zip(colours, ds["N"].values):
        d = ds.sel(N=N)
        ax.errorbar(T, d["binder_q"], d["binder_q_err"], fmt="o-", ms=4, color=c, label=f"N={N}")
    ax.axvline(1.0, color="k", ls="--", lw=1, label="$T_c = 1$")
    ax.set(xlabel="T", ylabel="g", title="overlap Binder ratio")
    ax.legend(fontsize=8)
    ax = axes[2]
    i_low = 0
    i_c = int(np.argmin(np.abs(T - 1.0)))
    for c, N in zip(colours, ds["N"].values):
        d = ds.sel(N=N)
        ax.plot(ds["q"], d["p_q"].isel(T=i_low), "-", color=c, label=f"N={N}, T={T[i_low]:.2f}")
        ax.plot(ds["q"], d["p_q"].isel(T=i_c), ":", color=c, label=f"N={N}, T={T[i_c]:.2f}")
    q_ea = np.sqrt(max(theory.sk_rs_overlap(T[i_low]), 0.0))
    ax.axvline(q_ea, color="grey", lw=0.8)
    ax.axvline(-q_ea, color="grey", lw=0.8)
    ax.set(xlabel="q", ylabel="P(q)", title="overlap distribution (grey: $\\pm q_{RS}$)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
