"""`weight-spectra`: heavy-tailed self-regularisation of an MLP trained on digits, beside MP.

Martin & Mahoney (JMLR 22 (2021) 165, arXiv 1810.01075; SETOL arXiv 2507.17912): the
eigenvalues of `W^T W / N` of a trained layer develop a power-law tail, more so at a large
learning rate and a small batch, whereas a random matrix of the same shape and variance
follows the Marchenko–Pastur law. Here an equinox MLP (64 -> width -> width -> 10, tanh) is
trained by `diffphys.training.train` (SGD, cross-entropy) on scikit-learn's digits, one
vmapped call over seeds x learning rates per batch size; the hidden `width x width` layer is
recorded at log-spaced times and its tail exponent fitted by `diffphys.spectra`.

Other students' weights enter through `sources_dataset({"name": W})`, which returns the same
histogram/MP/fit variables along `source`.

The grokking network (`models.TwoLayer`, Kumar et al., arXiv 2310.06110, trained as in the
`grokking` experiment: full-batch GD, eta = N / alpha^2, centred loss) is trained here too at
a rich (small) and a lazy (large) output scale, and its first layer `W` (N x D, 150 x 30 by
default) recorded at log-spaced times, before and after the test loss drops. Honest reading:
with D = 30 eigenvalues a power-law fit of the ESD is barely defined (n_tail >= min_tail of
30 points), and the rich regime does not grow a heavy tail: it grows one outlier along the
teacher direction beta. Derived here: fitting the teacher with the quadratic part of
phi requires W^T W - W_0^T W_0 = N / (alpha eps) beta beta^T, a rank-one spike of strength
theta = |beta|^2 / (alpha eps) on top of the MP bulk of W_0^T W_0 / N, so the top eigenvalue
is `spectra.mp_outlier(theta, N / D)` (BBP: an outlier only when theta > sqrt(D/N) + D/N) and
the top eigenvector aligns with beta; in the lazy regime W stays near W_0, the spectrum stays
MP and its top eigenvector stays that of W_0.

Measured at the default size (`diffphys run weight-spectra`, seed 0, eps = 0.2, 10^4 steps):
alpha = 1/8 (rich, test loss 5e-4 of initial) has lambda_max = 1145 against the predicted
1167 (13.7x the MP edge at var(W)) and |v_1.beta|/|beta| = 0.99997; alpha = 8 (grokking,
test loss 0.27 at the end) 10.9 (prediction for the fully learned teacher: 19.2) and 0.949;
alpha = 1024 (lazy, test loss 0.60) lambda_max / MP edge = 0.946 (0.946 at t = 0), overlap
with beta 0.083 (0.079 at t = 0) and with the initial top eigenvector 0.9999. The ESD
exponent is not a usable statistic here: the lazy matrix's fit jumps from 5.4 +- 1.3 to
2.8 +- 0.4 while its spectrum moves by < 1% (a different KS-optimal x_min among 30 points),
and the rich matrix's "alpha" of 1.6 is one outlier above a spread bulk, not a power law.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import data, models, spectra, training
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
    "grok_D": Param(30, "grokking network: input dimension D", ge=2),
    "grok_N": Param(150, "grokking network: hidden width N (first layer is N x D)", ge=2),
    "grok_P": Param(165, "grokking network: training samples", ge=1),
    "grok_P_test": Param(500, "grokking network: test samples", ge=2),
    "grok_eps": Param(0.2, "grokking network: eps of phi(z) = z + eps z^2 / 2", gt=0),
    "grok_alphas": Param(
        [0.125, 8.0, 1024.0], "grokking network: output scales (rich ... lazy)", gt=0
    ),
    "grok_steps": Param(10000, "grokking network: full-batch GD steps (0: skip it)", ge=0),
    "grok_records": Param(12, "grokking network: log-spaced record times", ge=2),
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


_GROK_VARS = {
    "grok_train_loss": ("grokking network: centred train loss / its value at t = 0", "1"),
    "grok_test_loss": ("grokking network: centred test loss / its value at t = 0", "1"),
    "grok_lambda_max": ("top eigenvalue of W^T W / N (first layer)", "1"),
    "grok_mp_lambda_plus": ("MP upper edge at var(W), same shape N x D", "1"),
    "grok_top_overlap": ("|v_1 . beta| / |beta|, v_1 the top eigenvector of W^T W", "1"),
    "grok_top_overlap_init": ("|v_1 . v_1(t=0)|: top eigenvector against the initial one", "1"),
    "grok_alpha": ("ESD power-law exponent of W^T W / N (D eigenvalues: barely defined)", "1"),
    "grok_alpha_err": ("standard error of grok_alpha, (alpha-1)/sqrt(n_tail)", "1"),
    "grok_n_tail": ("eigenvalues in the fitted tail", "1"),
}


def _train_grokking(ctx: RunContext, cfg: dict) -> dict:
    """Train `models.TwoLayer` as the `grokking` experiment does, one vmapped call over the
    output scales; record the first layer W and both losses at log-spaced times."""
    D, N, P, Pt = cfg["grok_D"], cfg["grok_N"], cfg["grok_P"], cfg["grok_P_test"]
    n_steps = cfg["grok_steps"]
    times = np.concatenate([[0], log_times(n_steps, cfg["grok_records"] - 1)])
    task = models.GrokkingTask.sample(ctx.key("grokking", "task"), D=D, P=P, P_test=Pt)
    w0 = jax.random.normal(ctx.key("grokking", "init"), (N, D), jnp.float32)
    alphas = jnp.asarray(cfg["grok_alphas"], jnp.float32)
    eps = jnp.float32(cfg["grok_eps"])

    def work():
        def one(a):
            net = models.TwoLayer(w0, a, eps)
            f0, f0t = net.batch(task.x_train), net.batch(task.x_test)

            def loss(p, batch, key):
                return models.centred_loss(p, task.x_train, task.y_train, f0)

            def rec(s):
                return {
                    "w": s.params.w,
                    "train": models.centred_loss(s.params, task.x_train, task.y_train, f0),
                    "test": models.centred_loss(s.params, task.x_test, task.y_test, f0t),
                }

            _, trace = training.train(
                ctx.key("grokking", "train"),
                net,
                training.from_loss(loss),
                optax.sgd(net.learning_rate),
                n_steps,
                record_at=times[1:],
                record=rec,
            )
            r = trace["record"]
            first = {"w": w0, "train": jnp.mean(task.y_train**2), "test": jnp.mean(task.y_test**2)}
            return jax.tree.map(lambda a0, a: jnp.concatenate([a0[None], a]), first, r)

        out = jax.jit(jax.vmap(one))(alphas)
        return {**out, "beta": task.teacher.beta, "time": np.asarray(times)}

    like = {
        "w": np.zeros((alphas.shape[0], times.size, N, D), np.float32),
        "train": np.zeros((alphas.shape[0], times.size), np.float32),
        "test": np.zeros((alphas.shape[0], times.size), np.float32),
        "beta": np.zeros(D, np.float32),
        "time": np.zeros(times.size, times.dtype),
    }
    return ctx.task("grokking/train", work, like=like)


def grokking_dataset(g: dict, *, alphas, eps: float, min_tail: int) -> xr.Dataset:
    """Spectral reading of the grokking network's first layer along (output_scale, grok_time).

    **Arguments:** `g`: `{"w": (A, T, N, D), "train", "test": (A, T), "beta": (D,),
    "time": (T,)}` (time 0 first); `alphas`: the A output scales; `eps`; `min_tail`.

    **Returns:** losses (relative to t = 0), top eigenvalue against the MP edge at var(W)
    and against the spiked-MP prediction `spectra.mp_outlier(|beta|^2 / (alpha eps), N / D)`,
    the overlap of the top eigenvector with beta and with the initial top eigenvector, and
    the ESD power-law fit. Float64 NumPy eigendecompositions (small matrices).
    """
    w = np.asarray(g["w"], np.float64)
    A, T, N, D = w.shape
    if N < D:
        raise ConfigError(f"grokking first layer must be N x D with N >= D, got {N} x {D}.")
    diverged = ~np.all(np.isfinite(w.reshape(A, -1)), axis=-1)
    diverged |= ~np.all(np.isfinite(np.asarray(g["train"])), axis=-1)
    w = np.where(diverged[:, None, None, None], w[:, :1], w)
    X = np.einsum("atni,atnj->atij", w, w) / N
    lam, vec = np.linalg.eigh(X)
    top = vec[..., -1]  # (A, T, D)
    beta = np.asarray(g["beta"], np.float64)
    ov = np.abs(top @ (beta / np.linalg.norm(beta)))
    ov0 = np.abs(np.einsum("atd,ad->at", top, top[:, 0]))
    q = N / D
    s2 = w.reshape(A, T, -1).var(axis=-1)
    lam_plus = s2 * (1 + 1 / np.sqrt(q)) ** 2
    fit = spectra.fit_power_law(lam.astype(np.float32), min_tail=min_tail)
    theta = float(beta @ beta) / (np.asarray(alphas, np.float64) * eps)
    train0, test0 = np.asarray(g["train"])[:, :1], np.asarray(g["test"])[:, :1]
    at = ("output_scale", "grok_time")
    ds = xr.Dataset(
        {
            "grok_train_loss": (at, np.asarray(g["train"], np.float64) / train0),
            "grok_test_loss": (at, np.asarray(g["test"], np.float64) / test0),
            "grok_lambda_max": (at, lam[..., -1]),
            "grok_mp_lambda_plus": (at, lam_plus),
            "grok_top_overlap": (at, ov),
            "grok_top_overlap_init": (at, ov0),
            "grok_alpha": (at, np.asarray(fit.alpha, np.float64)),
            "grok_alpha_err": (at, np.asarray(fit.alpha_err, np.float64)),
            "grok_n_tail": (at, np.asarray(fit.n_tail)),
            "grok_spike_theta": (("output_scale",), theta),
            "grok_lambda_max_theory": (("output_scale",), spectra.mp_outlier(theta, q)),
            "grok_diverged": (("output_scale",), diverged.astype(np.int8)),
        },
        coords={
            "output_scale": np.asarray(alphas, np.float64),
            "grok_time": np.asarray(g["time"], np.int64),
        },
    )
    for v, (ln, u) in _GROK_VARS.items():
        _attrs(ds, v, ln, u)
    _attrs(ds, "grok_spike_theta", "spike strength |beta|^2 / (alpha eps) of the learned teacher")
    _attrs(ds, "grok_lambda_max_theory", "top eigenvalue of MP(var 1) + theta beta beta^T (BBP)")
    _attrs(ds, "grok_diverged", "1 if the grokking network diverged")
    _attrs(ds, "output_scale", "output scale alpha of the grokking network (large: lazy)")
    _attrs(ds, "grok_time", "full-batch GD step of the grokking network", "step")
    ds.attrs.update(grok_N=N, grok_D=D)
    ds.attrs["grok_layer"] = f"first layer W ({N} x {D}) of models.TwoLayer, eps = {eps:g}"
    return ds


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
    "weight-spectra", runtime="about 1 min (73 CPU-s measured)",
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
    grok = cfg["grok_steps"] > 0
    if grok:
        for k in ("grok_D", "grok_N", "grok_P", "grok_P_test", "grok_records"):
            if cfg[k] < 2:
                raise ConfigError(f"{k} must be >= 2, got {cfg[k]}.")
        if cfg["grok_N"] < cfg["grok_D"]:
            raise ConfigError(f"grok_N must be >= grok_D (W is N x D), got {cfg['grok_N']}.")
        if cfg["grok_D"] < cfg["min_tail"] + 1:
            raise ConfigError(f"grok_D={cfg['grok_D']} leaves too few eigenvalues for min_tail.")
        alphas = cfg["grok_alphas"]
        if not alphas or any(not np.isfinite(a) or a <= 0 for a in alphas):
            raise ConfigError(f"grok_alphas must be positive and finite, got {alphas}.")
        if not cfg["grok_eps"] > 0:
            raise ConfigError(f"grok_eps must be > 0, got {cfg['grok_eps']}.")
    ctx.set_total(len(cfg["batch_sizes"]) + int(grok))
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
    if grok:
        g = _train_grokking(ctx, cfg)
        gds = grokking_dataset(
            g, alphas=cfg["grok_alphas"], eps=cfg["grok_eps"], min_tail=cfg["min_tail"]
        )
        # ESD histograms + MP null of the same shape: W_0 and every final W
        gw = {"grokking init": g["w"][0, 0]}
        for i, a in enumerate(cfg["grok_alphas"]):
            if not gds["grok_diverged"].values[i]:
                gw[f"grokking alpha={a:g}"] = g["w"][i, -1]
        gev = np.concatenate([np.asarray(spectra.esd(m)) for m in gw.values()])
        gev = gev[gev > 1e-6 * gev.max()]
        gedges = np.geomspace(gev.min() * 0.9, gev.max() * 1.1, cfg["bins"] + 1)
        gsrc = sources_dataset(
            gw, edges=gedges, min_tail=cfg["min_tail"], use_weightwatcher=cfg["weightwatcher"]
        )
        ww = gsrc.attrs.pop("weightwatcher_available")
        ds.attrs["weightwatcher_available"] = max(int(ds.attrs["weightwatcher_available"]), ww)
        ren = {v: "grok_" + v for v in list(gsrc.data_vars)}
        ren.update(source="grok_source", lam="grok_lam")
        gsrc = gsrc.rename(ren)
        ds = xr.merge([ds, gds, gsrc], combine_attrs="no_conflicts")
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
    if "output_scale" in ds.dims:
        out["grokking"] = _grok_summary(ds)
    d = ds["source_alpha"] - ds["source_alpha_weightwatcher"]
    if out["weightwatcher_available"]:
        out["max_abs_alpha_minus_weightwatcher_in_sigma"] = float(
            np.nanmax(np.abs(d / ds["source_alpha_err"]))
        )
    return out


def _grok_summary(ds: xr.Dataset) -> dict:
    """Per output scale: at t = 0, at the first record with train loss < 0.1 x initial (the
    net has fitted the data; "before grokking" where the test loss is still high) and at the
    end: test loss, top eigenvalue / MP edge, overlap of the top eigenvector with beta."""
    out = {}
    for a in ds["output_scale"].values:
        d = ds.sel(output_scale=a)
        fitted = np.nonzero(d["grok_train_loss"].values < 0.1)[0]
        idx = {"init": 0, "final": -1}
        if fitted.size:
            idx["train_fitted"] = int(fitted[0])
        row = {"spike_theta": float(d["grok_spike_theta"])}
        row["lambda_max_theory"] = float(d["grok_lambda_max_theory"])
        for name, i in idx.items():
            e = d.isel(grok_time=i)
            row[name] = {
                "step": int(e["grok_time"]),
                "test_loss": float(e["grok_test_loss"]),
                "lambda_max_over_mp_edge": float(e["grok_lambda_max"] / e["grok_mp_lambda_plus"]),
                "lambda_max": float(e["grok_lambda_max"]),
                "top_overlap_beta": float(e["grok_top_overlap"]),
                "top_overlap_init_vector": float(e["grok_top_overlap_init"]),
                "esd_alpha": float(e["grok_alpha"]),
                "esd_alpha_err": float(e["grok_alpha_err"]),
            }
        out[f"alpha={a:g}"] = row
    return out


def _figure(ds: xr.Dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grok = "output_scale" in ds.dims
    fig, axes = plt.subplots(1, 5 if grok else 3, figsize=(25 if grok else 15, 4.2))
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
    for ax, lab in zip(axes[1:3], ["alpha (mean over seeds)", "x_min (mean over seeds)"]):
        ax.set_xscale("log")
        ax.set_xlabel("SGD step")
        ax.set_ylabel(lab)
    axes[1].legend(fontsize=6)
    if grok:
        ax = axes[3]
        glam = ds["grok_lam"].values
        for src in ds["grok_source"].values:
            ax.step(glam, ds["grok_esd"].sel(grok_source=src), where="mid", label=src)
        ax.plot(glam, ds["grok_mp_density"].isel(grok_source=0), "k--", lw=1, label="MP null")
        for a in ds["output_scale"].values:
            ax.axvline(float(ds["grok_lambda_max_theory"].sel(output_scale=a)), ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="eigenvalue of W^T W / N", ylabel="density")
        ax.set_title("grokking W (final); dotted: spiked-MP outlier theory", fontsize=9)
        ax.legend(fontsize=6)
        gt = np.maximum(ds["grok_time"].values, 1)
        for a in ds["output_scale"].values:
            d = ds.sel(output_scale=a)
            (ln,) = axes[4].semilogx(gt, d["grok_top_overlap"], "o-", ms=3, label=f"α={a:g}")
            axes[4].semilogx(gt, d["grok_test_loss"], "--", color=ln.get_color(), lw=1)
        rnd = 1 / np.sqrt(ds.attrs["grok_D"])
        axes[4].axhline(rnd, color="gray", ls=":", label="random: 1/sqrt(D)")
        axes[4].set(xlabel="GD step (0 plotted at 1)", ylabel="|v1 . beta| (solid), test loss")
        axes[4].set_title("top eigenvector vs teacher; dashed: test loss / initial", fontsize=9)
        axes[4].legend(fontsize=7)
    fig.suptitle(ds.attrs.get("layer", "weight spectra"))
    fig.tight_layout()
    return fig
