"""`weight-spectra`: heavy-tailed self-regularisation of an MLP trained on digits, beside MP.

Martin & Mahoney (JMLR 22 (2021) 165, arXiv 1810.01075; SETOL arXiv 2507.17912): the
eigenvalues of `W^T W / N` of a trained layer develop a power-law tail, more so at a large
learning rate and a small batch, whereas a random matrix of the same shape and variance
follows the Marchenko–Pastur law. Here an equinox MLP (64 -> width -> width -> 10, tanh) is
trained by `diffphys.training.train` (SGD, cross-entropy) on scikit-learn's digits, one
vmapped call over seeds x learning rates per batch size; the hidden `width x width` layer is
recorded at log-spaced times and its tail exponent fitted by `diffphys.spectra`.

Other students' weights enter through `sources_dataset({"name": W})` (e.g. the grokking
network's first layer), which returns the same histogram/MP/fit variables along `source`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import data, spectra, training
from .._errors import ConfigError
from .._loop import log_times
from ._core import Param, RunContext, experiment

PARAMS = {
    "width": Param(128, "hidden width of the digits MLP", ge=2),
    "n_steps": Param(6000, "SGD steps", ge=1),
    "n_records": Param(8, "log-spaced times at which the spectra are recorded", ge=1),
    "learning_rates": Param([0.02, 0.1, 0.4], "SGD learning rates", gt=0),
    "batch_sizes": Param([4, 64], "minibatch sizes", ge=1),
    "n_seeds": Param(3, "training seeds per (learning rate, batch size)", ge=1),
    "bins": Param(30, "log-spaced histogram bins of the ESD", ge=2),
    "min_tail": Param(10, "fewest eigenvalues in the power-law tail", ge=2),
    "weightwatcher": Param(True, "also fit with the weightwatcher package when installed"),
}

_FIT_VARS = {
    "alpha": ("power-law exponent alpha of the ESD tail", "1"),
    "alpha_err": ("standard error of alpha, (alpha-1)/sqrt(n_tail)", "1"),
    "x_min": ("KS-optimal lower cut-off of the tail", "1"),
    "ks": ("KS distance of the power-law fit", "1"),
    "n_tail": ("eigenvalues in the fitted tail", "1"),
}


def _mlp(width, key):
    return eqx.nn.MLP(64, 10, width, depth=2, activation=jax.nn.tanh, key=key)


def _train_group(ctx: RunContext, cfg: dict, batch_size: int):
    """All seeds x learning rates at one batch size: one vmapped `training.train` call."""
    x, y = data.load_digits(binarize=False, return_labels=True)
    x = jnp.asarray(x - x.mean(axis=0))
    y = jnp.asarray(y)
    width = cfg["width"]
    # structure only (no eager op-by-op initialisation): eval_shape
    static = eqx.partition(eqx.filter_eval_shape(_mlp, width, jax.random.key(0)), eqx.is_array)[1]

    def loss(params, batch, key):
        xb, yb = batch
        logits = jax.vmap(eqx.combine(params, static))(xb)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))

    grad_fn = training.from_loss(loss, (x, y), batch_size=batch_size)
    times = log_times(cfg["n_steps"], cfg["n_records"])
    lrs = jnp.asarray(cfg["learning_rates"], jnp.float32)
    n_seeds, n_lr = cfg["n_seeds"], lrs.shape[0]
    # the same initial networks at every batch size: only the SGD noise differs
    seed_keys = jax.random.split(ctx.key("init"), n_seeds)
    train_keys = jax.random.split(ctx.key("batch_size", batch_size), n_seeds)

    def work():
        def one(k_init, k_train, lr):
            params = eqx.partition(_mlp(width, k_init), eqx.is_array)[0]
            opt = optax.inject_hyperparams(optax.sgd)(learning_rate=lr)

            def record(s):
                full = jax.vmap(eqx.combine(s.params, static))(x)
                acc = jnp.mean(jnp.argmax(full, axis=-1) == y)
                return s.params.layers[1].weight, acc

            _, trace = training.train(
                k_train, params, grad_fn, opt, cfg["n_steps"], record_at=times, record=record
            )
            w, acc = trace["record"]
            return w, acc, trace["metrics"]["loss"]

        f = jax.vmap(jax.vmap(one, in_axes=(None, None, 0)), in_axes=(0, 0, None))

        def both(seed_keys, train_keys, lrs):
            w0 = jax.vmap(lambda k: _mlp(width, k).layers[1].weight)(seed_keys)
            return f(seed_keys, train_keys, lrs), w0

        (w, acc, lossv), w0 = jax.jit(both)(seed_keys, train_keys, lrs)
        return {"w": w, "acc": acc, "loss": lossv, "w0": w0, "time": np.asarray(times)}

    like = {
        "w": np.zeros((n_seeds, n_lr, len(times), width, width), np.float32),
        "acc": np.zeros((n_seeds, n_lr, len(times)), np.float32),
        "loss": np.zeros((n_seeds, n_lr, len(times)), np.float32),
        "w0": np.zeros((n_seeds, width, width), np.float32),
        "time": np.zeros(len(times), np.asarray(times).dtype),
    }
    return ctx.task(f"train/batch_size={batch_size}", work, like=like)


def _attrs(ds: xr.Dataset, name: str, long_name: str, units: str = "1") -> None:
    ds[name].attrs.update(long_name=long_name, units=units)


def sources_dataset(
    weights: dict, *, edges, min_tail: int = 10, use_weightwatcher: bool = True
) -> xr.Dataset:
    """ESD histogram, MP null and tail fit of named matrices, stacked along `source`.

    **Arguments:**

    - `weights`: `{"name": (N, M) matrix}`: the seam for any student's weights.
    - `edges`: histogram bin edges of `lambda` (shared so sources are comparable).
    - `min_tail`: passed to `spectra.fit_power_law`.
    - `use_weightwatcher`: also run weightwatcher's own fit (NaN if not installed).

    **Returns:** an `xarray.Dataset` with dims `source`, `lam` (bin centres).
    """
    edges = np.asarray(edges, np.float64)
    centres = np.sqrt(edges[1:] * edges[:-1])
    res = spectra.spectra_of(weights, min_tail=min_tail)
    names = list(res)
    hist, mp, mp_fit, fits, q, s2, s2f, lo, hi = [], [], [], [], [], [], [], [], []
    ww_a, ww_s = [], []
    have_ww = False
    for n in names:
        r = res[n]
        h, _ = np.histogram(r["eigenvalues"], bins=edges)
        hist.append(h / (r["eigenvalues"].size * np.diff(edges)))
        mp.append(np.asarray(spectra.mp_density(centres.astype(np.float32), r["q"], r["sigma2"])))
        mp_fit.append(
            np.asarray(spectra.mp_density(centres.astype(np.float32), r["q"], r["sigma2_fit"]))
        )
        fits.append([float(v) for v in r["fit"]])
        q.append(r["q"])
        s2.append(r["sigma2"])
        s2f.append(r["sigma2_fit"])
        lo.append(r["mp_lambda"][0])
        hi.append(r["mp_lambda"][1])
        a, s = math.nan, math.nan
        if use_weightwatcher:
            try:
                a, s = spectra.weightwatcher_alpha(weights[n])
                have_ww = True
            except ImportError:
                pass
        ww_a.append(a)
        ww_s.append(s)
    fits = np.asarray(fits)
    ds = xr.Dataset(
        {
            "esd": (("source", "lam"), np.asarray(hist)),
            "mp_density": (("source", "lam"), np.asarray(mp)),
            "mp_density_fit": (("source", "lam"), np.asarray(mp_fit)),
            "source_q": (("source",), np.asarray(q)),
            "source_sigma2": (("source",), np.asarray(s2)),
            "source_sigma2_fit": (("source",), np.asarray(s2f)),
            "source_mp_lambda_minus": (("source",), np.asarray(lo)),
            "source_mp_lambda_plus": (("source",), np.asarray(hi)),
            "source_alpha_weightwatcher": (("source",), np.asarray(ww_a)),
            "source_alpha_weightwatcher_err": (("source",), np.asarray(ww_s)),
        },
        coords={"source": names, "lam": centres},
    )
    for j, v in enumerate(_FIT_VARS):
        ds[f"source_{v}"] = (("source",), fits[:, j])
        _attrs(ds, f"source_{v}", _FIT_VARS[v][0])
    _attrs(ds, "source", "weight matrix")
    _attrs(ds, "lam", "eigenvalue of W^T W / N (bin centre)")
    _attrs(ds, "esd", "empirical spectral density")
    _attrs(ds, "mp_density", "Marchenko-Pastur density, same shape and variance as W")
    _attrs(ds, "mp_density_fit", "Marchenko-Pastur density, variance fitted to the bulk (KS)")
    _attrs(ds, "source_q", "aspect ratio Q = N/M")
    _attrs(ds, "source_sigma2", "variance of the entries of W")
    _attrs(ds, "source_sigma2_fit", "MP variance fitted to the bulk (KS)")
    _attrs(ds, "source_mp_lambda_minus", "lower MP edge at var(W)")
    _attrs(ds, "source_mp_lambda_plus", "upper MP edge at var(W)")
    _attrs(ds, "source_alpha_weightwatcher", "alpha fitted by weightwatcher (NaN if absent)")
    _attrs(ds, "source_alpha_weightwatcher_err", "weightwatcher's sigma of alpha")
    ds.attrs["weightwatcher_available"] = int(have_ww)
    return ds


@experiment(
    "weight-spectra",
    params=PARAMS,
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def weight_spectra(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """Heavy-tailed weight spectra of MLPs trained on digits vs learning rate, batch, time."""
    for k in ("width", "n_steps", "n_records", "n_seeds", "bins", "min_tail"):
        if cfg[k] < 2:
            raise ConfigError(f"{k} must be >= 2, got {cfg[k]}.")
    if cfg["width"] < cfg["min_tail"] + 2:
        raise ConfigError(f"width={cfg['width']} leaves too few eigenvalues for min_tail.")
    if any(lr <= 0 for lr in cfg["learning_rates"]) or not cfg["learning_rates"]:
        raise ConfigError(f"learning rates must be positive, got {cfg['learning_rates']}.")
    if any(b < 1 for b in cfg["batch_sizes"]) or not cfg["batch_sizes"]:
        raise ConfigError(f"batch sizes must be >= 1, got {cfg['batch_sizes']}.")
    ctx.set_total(len(cfg["batch_sizes"]))
    groups = [_train_group(ctx, cfg, b) for b in cfg["batch_sizes"]]
    times = groups[0]["time"]
    w = np.stack([g["w"] for g in groups])  # (bs, seed, lr, time, n, n)
    acc = np.stack([g["acc"] for g in groups])
    lossv = np.stack([g["loss"] for g in groups])
    diverged = ~np.all(np.isfinite(w.reshape(*w.shape[:3], -1)), axis=-1)
    diverged |= ~np.all(np.isfinite(lossv), axis=-1)
    safe = np.where(diverged[..., None, None, None], groups[0]["w0"][None, :, None, None], w)
    ev = np.asarray(spectra.esd(safe.reshape(-1, *w.shape[-2:])))
    fit = spectra.fit_power_law(ev, min_tail=cfg["min_tail"])
    dims = ("batch_size", "seed", "learning_rate", "time")
    ds = xr.Dataset(
        coords={
            "batch_size": np.asarray(cfg["batch_sizes"]),
            "seed": np.arange(cfg["n_seeds"]),
            "learning_rate": np.asarray(cfg["learning_rates"], np.float64),
            "time": np.asarray(times),
        }
    )
    for v, arr in zip(_FIT_VARS, fit):
        a = np.asarray(arr, np.float64).reshape(w.shape[:4])
        a[np.broadcast_to(diverged[..., None], a.shape)] = np.nan
        ds[v] = (dims, a)
        _attrs(ds, v, _FIT_VARS[v][0] + " (hidden layer)")
    ds["train_accuracy"] = (dims, acc)
    _attrs(ds, "train_accuracy", "training-set accuracy")
    ds["loss"] = (dims, lossv)
    _attrs(ds, "loss", "training loss (cross-entropy, averaged between records)")
    ds["diverged"] = (("batch_size", "seed", "learning_rate"), diverged.astype(np.int8))
    _attrs(ds, "diverged", "1 if training diverged (non-finite loss or weights)")

    # random null: each seed's initial matrix, fitted the same way
    ev0 = np.asarray(spectra.esd(groups[0]["w0"]))
    fit0 = spectra.fit_power_law(ev0, min_tail=cfg["min_tail"])
    for v, arr in zip(_FIT_VARS, fit0):
        ds[f"{v}_init"] = (("seed",), np.asarray(arr, np.float64))
        _attrs(ds, f"{v}_init", _FIT_VARS[v][0] + " at initialisation (random null)")

    # ESD sources: initial matrix and the final matrix of every (batch, lr) at seed 0
    weights = {"init": groups[0]["w0"][0]}
    for i, b in enumerate(cfg["batch_sizes"]):
        for j, lr in enumerate(cfg["learning_rates"]):
            if not diverged[i, 0, j]:
                weights[f"B={b}, lr={lr:g}"] = w[i, 0, j, -1]
    allev = np.concatenate([np.asarray(spectra.esd(m)) for m in weights.values()])
    allev = allev[allev > 1e-6 * allev.max()]
    edges = np.geomspace(allev.min() * 0.9, allev.max() * 1.1, cfg["bins"] + 1)
    src = sources_dataset(
        weights, edges=edges, min_tail=cfg["min_tail"], use_weightwatcher=cfg["weightwatcher"]
    )
    ds = xr.merge([ds, src], combine_attrs="no_conflicts")
    _attrs(ds, "batch_size", "minibatch size")
    _attrs(ds, "seed", "seed index")
    _attrs(ds, "learning_rate", "SGD learning rate")
    _attrs(ds, "time", "SGD step", "step")
    ds.attrs["layer"] = (
        f"hidden {cfg['width']}x{cfg['width']} layer of a 64-{cfg['width']}-"
        f"{cfg['width']}-10 tanh MLP"
    )
    return ds


def _summary(ds: xr.Dataset) -> dict:
    fin = ds.isel(time=-1)
    mean_alpha = fin["alpha"].mean("seed")
    out = {
        "alpha_init_mean": float(ds["alpha_init"].mean()),
        "alpha_final_mean": {
            f"B={int(b)}, lr={float(lr):g}": float(mean_alpha.sel(batch_size=b, learning_rate=lr))
            for b in ds["batch_size"].values
            for lr in ds["learning_rate"].values
        },
        "n_diverged": int(ds["diverged"].sum()),
        "weightwatcher_available": int(ds.attrs.get("weightwatcher_available", 0)),
    }
    d = ds["source_alpha"] - ds["source_alpha_weightwatcher"]
    if out["weightwatcher_available"]:
        out["max_abs_alpha_minus_weightwatcher_in_sigma"] = float(
            np.nanmax(np.abs(d / ds["source_alpha_err"]))
        )
    return out


def _figure(ds: xr.Dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    lam = ds["lam"].values
    ax = axes[0]
    for s in ds["source"].values:
        d = ds.sel(source=s)
        lw = 2 if s == "init" else 1
        ax.step(
            lam, d["esd"], where="mid", lw=lw, label=f"{s}: alpha={float(d['source_alpha']):.2f}"
        )
    ax.plot(lam, ds["mp_density"].sel(source="init"), "k--", lw=1, label="MP, var(W) of init")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue of W^T W / N")
    ax.set_ylabel("density")
    ax.legend(fontsize=6)
    ax.set_title("ESDs (seed 0, final) and MP null")
    t = ds["time"].values
    for b in ds["batch_size"].values:
        for lr in ds["learning_rate"].values:
            d = ds.sel(batch_size=b, learning_rate=lr)
            m = d["alpha"].mean("seed")
            e = np.sqrt((d["alpha_err"] ** 2).mean("seed") / ds.sizes["seed"])
            axes[1].errorbar(
                t, m, e, marker="o", ms=3, capsize=2, label=f"B={int(b)}, lr={float(lr):g}"
            )
            axes[2].plot(t, d["x_min"].mean("seed"), marker="o", ms=3)
    axes[1].axhline(float(ds["alpha_init"].mean()), color="k", ls=":", label="init (random)")
    for ax, lab in zip(axes[1:], ["alpha (mean over seeds)", "x_min (mean over seeds)"]):
        ax.set_xscale("log")
        ax.set_xlabel("SGD step")
        ax.set_ylabel(lab)
    axes[1].legend(fontsize=6)
    fig.suptitle(ds.attrs.get("layer", "weight spectra"))
    fig.tight_layout()
    return fig
