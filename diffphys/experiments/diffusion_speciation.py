"""`diffusion-speciation`: the cloning experiment of Biroli, Bonnaire, de Bortoli, Mézard
(arXiv 2402.18491, Sec. 3 and Fig. 2) on Gaussian mixtures and on the scikit-learn digits.

A backward trajectory (reverse SDE, exact score) started from N(0, I) at time T is cloned at
time t; the two clones continue with independent noise down to t_end, and `phi(t)` is the
probability that they end in the same class. The speciation time is where phi rises from its
chance value to 1; the theory predicts t_S = (1/2) log(Lambda), Lambda the top eigenvalue of
the data covariance. For the symmetric mixture +-m (|m|^2 = d, unit variance; the model of the
paper and its repository) phi(t) is known exactly (`theory.clone_probability`), and the
measured t_S is where phi crosses its exact value at signal-to-noise one.
"""

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import io, models, theory
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

PARAMS = {
    "d": Param([16, 64, 256], "dimensions of the symmetric Gaussian mixture +-m", ge=1),
    "t": Param(
        [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0, 5.0],
        "cloning (split) times of the backward trajectories",
        gt=0,
    ),
    "n_samples": Param(1000, "cloned trajectory pairs per split time", ge=2),
    "T": Param(8.0, "start time of the backward dynamics", gt=0),
    "dt": Param(0.02, "reverse-SDE time step", gt=0),
    "t_end": Param(0.0, "end time of the backward dynamics (mixture)", ge=0),
    "digits": Param(True, "also run the cloning experiment on the scikit-learn digits"),
    "digits_t": Param(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.4, 1.7, 2.0, 2.5],
        "split times for the digits",
        gt=0,
    ),
    "digits_samples": Param(300, "cloned pairs per split time for the digits", ge=2),
    "digits_t_end": Param(0.01, "end time of the backward dynamics (digits)", ge=0),
}


def _validate(cfg: dict) -> None:
    for key, end in (("t", "t_end"), ("digits_t", "digits_t_end")):
        bad = [v for v in cfg[key] if not cfg[end] < v < cfg["T"]]
        if bad:
            raise ConfigError(
                f"every {key} must lie in ({end}, T) = ({cfg[end]}, {cfg['T']}), got {bad}."
            )


def _clone_run(key, score, x0, t_split, *, T, dt, t_end, classify):
    """phi at each split time: one common trunk from T, then two clones per split."""
    t_split = np.sort(np.asarray(t_split, dtype=np.float64))[::-1]
    n_steps = int(round((T - t_end) / dt))
    record_at = np.round((T - t_split) / dt).astype(int)
    k_trunk, k_clone = jax.random.split(key)
    _, states = models.reverse_sde(
        k_trunk, score, x0, t_start=T, t_end=t_end, n_steps=n_steps, record_at=record_at
    )
    times = models.reverse_sde_times(T, t_end, n_steps, record_at)

    # every clone pair runs the same number of steps (dt <= cfg dt): one compiled vmapped call
    n_clone = max(1, int(np.ceil((times.max() - t_end) / dt)))

    def clone_pair(k, x, t0):
        y1, _ = models.reverse_sde(
            jax.random.fold_in(k, 0), score, x, t_start=t0, t_end=t_end, n_steps=n_clone
        )
        y2, _ = models.reverse_sde(
            jax.random.fold_in(k, 1), score, x, t_start=t0, t_end=t_end, n_steps=n_clone
        )
        return jnp.mean((classify(y1) == classify(y2)).astype(jnp.float32))

    keys = jax.random.split(k_clone, len(times))
    phi = jax.jit(jax.vmap(clone_pair))(keys, states, jnp.asarray(times, states.dtype))
    phi = np.where(times > t_end, np.asarray(phi), 1.0)
    order = np.argsort(times)
    return np.asarray(times)[order], np.asarray(phi)[order]


def _mixture(ctx: RunContext, d: int, cfg: dict):
    m = jnp.ones(d, jnp.float32)
    score = models.GaussianMixtureScore(jnp.stack([m, -m]), sigma2=1.0)
    key = ctx.key("mixture", d)
    x0 = jax.random.normal(jax.random.fold_in(key, 0), (cfg["n_samples"], d), jnp.float32)
    times, phi = _clone_run(
        jax.random.fold_in(key, 1),
        score,
        x0,
        cfg["t"],
        T=cfg["T"],
        dt=cfg["dt"],
        t_end=cfg["t_end"],
        classify=lambda y: jnp.sign(y @ m),
    )
    return {"t": times, "phi": phi}


def _digits_data():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.float32) / 8.0 - 1.0  # pixels in [-1, 1], as images in the paper
    return x - x.mean(axis=0), digits.target.astype(np.int32)


def _digits(ctx: RunContext, cfg: dict):
    data, labels = _digits_data()
    score = models.EmpiricalScore(data)
    a = jnp.asarray(data)
    lab = jnp.asarray(labels)

    def classify(y):  # label of the nearest training point (trajectories end on one at t_end)
        d2 = jnp.sum(a**2, axis=1)[None, :] - 2 * y @ a.T
        return lab[jnp.argmin(d2, axis=1)]

    key = ctx.key("digits")
    x0 = jax.random.normal(jax.random.fold_in(key, 0), (cfg["digits_samples"], a.shape[1]))
    times, phi = _clone_run(
        jax.random.fold_in(key, 1),
        score,
        x0,
        cfg["digits_t"],
        T=cfg["T"],
        dt=cfg["dt"],
        t_end=cfg["digits_t_end"],
        classify=classify,
    )
    return {"t": times, "phi": phi}


@experiment(
    "diffusion-speciation", runtime="about 1.5 min (89 CPU-s measured)",
    params=PARAMS,
    validate=_validate,
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def diffusion_speciation(ctx: RunContext, cfg: dict):
    """Speciation time of diffusion models: cloning of backward trajectories (2402.18491)."""
    ctx.set_total(len(cfg["d"]) + int(cfg["digits"]))
    phis = []
    for d in cfg["d"]:
        out = ctx.task(f"mixture_d={d}", lambda d=d: _mixture(ctx, d, cfg))
        phis.append(out["phi"])
        t_grid = out["t"]
    d_arr = np.asarray(cfg["d"])
    phi_theory = np.stack([theory.clone_probability(t_grid, float(d), 1.0) for d in d_arr])
    level = theory.clone_probability_at_speciation()
    t_s_theory = np.asarray([float(theory.speciation_time(d + 1.0)) for d in d_arr])
    t_s_meas = np.asarray([theory.crossing_time(t_grid, p, level) for p in phis])
    ds = xr.Dataset(
        {
            "phi": (("d", "t"), np.stack(phis)),
            "phi_theory": (("d", "t"), phi_theory),
            "t_S_theory": ("d", t_s_theory),
            "t_S_measured": ("d", t_s_meas),
        },
        coords={"d": d_arr, "t": t_grid},
    )
    io.annotate(
        ds,
        d=("data dimension", "1"),
        t=("split time of the two clones", "1"),
        phi=("probability that two clones split at t end in the same class", "1"),
        phi_theory=("exact clone probability for the symmetric mixture", "1"),
        t_S_theory=("speciation time (1/2) log Lambda", "1"),
        t_S_measured=("time at which phi crosses its value at signal-to-noise one", "1"),
    )
    ds.attrs["speciation_level"] = level
    if cfg["digits"]:
        out = ctx.task("digits", lambda: _digits(ctx, cfg))
        data, labels = _digits_data()
        t_s = theory.speciation_time_from_data(data)
        chance = float(np.sum((np.bincount(labels) / labels.size) ** 2))
        half = 0.5 * (1.0 + chance)
        ds["phi_digits"] = (("t_digits",), out["phi"])
        ds = ds.assign_coords(t_digits=out["t"])
        io.annotate(
            ds,
            t_digits=("split time of the two clones (digits)", "1"),
            phi_digits=("probability that two clones end as the same digit class", "1"),
        )
        ds.attrs["digits_t_S_theory"] = t_s
        ds.attrs["digits_t_S_measured"] = theory.crossing_time(out["t"], out["phi"], half)
        ds.attrs["digits_chance"] = chance
        ds.attrs["digits_top_eigenvalue"] = float(theory.data_covariance_spectrum(data)[0])
    return ds


def _summary(ds) -> dict:
    out = {
        "d": [int(v) for v in ds["d"].values],
        "t_S_measured": [float(v) for v in ds["t_S_measured"].values],
        "t_S_theory": [float(v) for v in ds["t_S_theory"].values],
        "max_abs_phi_minus_theory": float(np.nanmax(np.abs(ds["phi"] - ds["phi_theory"]))),
    }
    if "phi_digits" in ds:
        out["digits_t_S_theory"] = float(ds.attrs["digits_t_S_theory"])
        out["digits_t_S_measured"] = float(ds.attrs["digits_t_S_measured"])
    return out


def _figure(ds):
    import matplotlib.pyplot as plt

    n_panels = 3 if "phi_digits" in ds else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 4))
    t_fine = np.linspace(0, float(ds["t"].max()), 300)
    for i, d in enumerate(ds["d"].values):
        c = f"C{i}"
        ts = float(ds["t_S_theory"].sel(d=d))
        axes[0].plot(ds["t"], ds["phi"].sel(d=d), "o", color=c, label=f"d={d} (clones)")
        axes[0].plot(t_fine, theory.clone_probability(t_fine, float(d)), "-", color=c, lw=1)
        axes[0].axvline(ts, color=c, ls=":", lw=1)
        axes[1].plot(ds["t"] - ts, ds["phi"].sel(d=d), "o-", color=c, label=f"d={d}")
    axes[0].set(xlabel="split time t", ylabel="phi(t)", title="Gaussian mixture: clones vs exact")
    axes[0].legend(fontsize=8)
    axes[1].axvline(0, color="k", ls=":")
    axes[1].set(xlabel="t - t_S,  t_S = log(Lambda)/2", ylabel="phi", title="collapse in t - t_S")
    axes[1].legend(fontsize=8)
    if n_panels == 3:
        axes[2].plot(ds["t_digits"], ds["phi_digits"], "o-", label="clones (exact empirical score)")
        axes[2].axvline(
            ds.attrs["digits_t_S_theory"], color="k", ls=":", label="t_S from covariance"
        )
        axes[2].axhline(ds.attrs["digits_chance"], color="gray", lw=0.8, label="chance")
        axes[2].set(xlabel="split time t", ylabel="phi(t)", title="sklearn digits (10 classes)")
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig
