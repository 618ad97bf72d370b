r"""`rbm-cascade`: the cascade of learning transitions of a Bernoulli-Bernoulli RBM (SVD of W).

Bachtis, Biroli, Decelle, Seoane, "Cascade of phase transitions in the training of
energy-based models" (NeurIPS 2024, arXiv 2405.14689). A Bernoulli-Bernoulli RBM trained by
PCD learns the principal modes of the data one at a time: each singular value $w_\alpha$ of
$W$ stays small and then grows abruptly, each growth being a paramagnet-to-ferromagnet-like
phase transition of the model along the singular vector $u_\alpha$. Here:

- synthetic two-cluster data (the Curie-Weiss/Mattis set-up of the paper, `data.clustered_binary`)
  of increasing dimension N, where the first transition sharpens with N. Finite-size scaling
  uses the model's "magnetisation" along the first singular vector, $p = u_1\cdot(2v-1)/\sqrt N$
  over the persistent chains, and its susceptibility $\chi = N(\langle p^2\rangle -
  \langle |p|\rangle^2)$: at a mean-field transition its peak grows as $N^{1/2}$
  (the paper's mean-field finite-size scaling, $\gamma = 1$);
- scikit-learn's 8x8 digits (64 pixels), where several singular values emerge in turn.

Variables: `singular_values` (dims `time`, `k`: the issue's contract) is the headline run,
the digits data set (or the largest synthetic N without digits) and seed 0;
`singular_values_all` (dims `dataset`, `seed`, `time`, `k`) holds every run.

All models have at most 20 hidden units, so the log-likelihood along training is exact
(enumeration of the hidden layer); AIS is checked against it at the end, in both directions:
forward AIS from the independent-site base (`log_z_ais`, biased low) and reverse AIS from 128
exact samples of the trained model (`log_z_ais_reverse`, biased high; Grosse, Ghahramani &
Adams, arXiv 1511.02543). On the bimodal two-cluster models forward AIS can miss the dominant
mode: the chains choose a cluster when the annealed couplings cross the transition and Gibbs
sweeps cannot move them between clusters afterwards, so only a few of the 128 runs end in
the mode that carries most of Z (at N = 100 forward AIS was 1.09 +- 0.21 nats low, and more
intermediate distributions did not help: 20000 gave -0.49 +- 0.21). The reverse chains start
in the right proportions and only have to melt, which Gibbs sampling does easily. Seeds are `vmap`-ped,
training runs through `diffphys.training.train` in checkpointed segments (`start=`).

The SGD learning rate is `learning_rate / N`: the linear growth rate of the first mode is
lr times the top eigenvalue of the data covariance, which is O(N) for clustered data, so this
puts every N on the same time axis and leaves only the sharpening of the transition.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import data as datasets
from .._errors import ConfigError
from .._loop import log_times
from ..io import annotate
from ..models import RBM
from ..training import TrainState, ais, ais_reverse, init_chains, pcd, train
from ._core import Param, RunContext, experiment

PARAMS = {
    "dims": Param(
        [25, 50, 100, 200],
        "visible dimensions N of the two-cluster data sets ([] for digits only)",
        ge=2,
        nonempty=False,
    ),
    "n_samples": Param(2000, "training samples per synthetic data set", ge=2),
    "m": Param(0.5, "cluster magnetisation of the two-cluster data", gt=0, le=1),
    "digits": Param(True, "also train on scikit-learn's binarised 8x8 digits"),
    "n_hidden": Param(12, "hidden units (<= 20: exact log-likelihood)", ge=1, le=20),
    "n_steps": Param(2000, "PCD training steps", ge=2),
    "n_times": Param(40, "log-spaced recording times", ge=1),
    "learning_rate": Param(10.0, "SGD learning rate times N", gt=0),
    "batch_size": Param(200, "minibatch size", ge=1),
    "n_chains": Param(300, "persistent chains", ge=2),
    "k": Param(5, "Gibbs sweeps per PCD step", ge=1),
    "n_seeds": Param(2, "training seeds per data set (vmapped)", ge=1),
    "n_segments": Param(2, "checkpointed training pieces", ge=1),
    "ais_betas": Param(2000, "intermediate distributions of AIS", ge=2),
}


def _record(data, n_visible):
    def record(state: TrainState):
        model = state.params
        u, s, _ = jnp.linalg.svd(model.W, full_matrices=False)
        spins = 2.0 * state.aux.v - 1.0
        p = spins @ u[:, 0] / jnp.sqrt(jnp.asarray(n_visible, jnp.float32))
        mag = jnp.mean(jnp.abs(p))
        chi = n_visible * (jnp.mean(p**2) - mag**2)
        return {"s": s, "ll": model.log_likelihood(data), "mag": mag, "chi": chi}

    return record


def _train_dataset(ctx: RunContext, name: str, x: np.ndarray, cfg: dict):
    n_seeds, M = cfg["n_seeds"], cfg["n_hidden"]
    N = x.shape[1]
    data = jnp.asarray(x)
    opt = optax.sgd(cfg["learning_rate"] / N)
    grad_fn = pcd(data, batch_size=cfg["batch_size"], k=cfg["k"])
    record = _record(data, N)
    k_init, k_train = jax.random.split(ctx.key("dataset", name))

    def init_one(k):
        k1, k2 = jax.random.split(k)
        model = RBM.sample(k1, N, M, scale=1e-3, data=x)
        return TrainState(model, opt.init(model), init_chains(k2, model, cfg["n_chains"]))

    states = jax.vmap(init_one)(jax.random.split(k_init, n_seeds))
    train_keys = jax.random.split(k_train, n_seeds)
    times = np.union1d(
        log_times(cfg["n_steps"], cfg["n_times"]),
        np.linspace(0, cfg["n_steps"], cfg["n_segments"] + 1).astype(int)[1:],
    )
    bounds = np.linspace(0, cfg["n_steps"], cfg["n_segments"] + 1).astype(int)

    # No outer jit: `train` compiles its loop once per power of two of the number of records
    # when given the same grad_fn/opt/record objects (diffphys/_loop.py), while a jit with
    # static (lo, n, rec) would compile every segment again.
    def segment(states, lo, n, rec):
        def one(k, s):
            return train(
                k,
                s.params,
                grad_fn,
                opt,
                n,
                state=s,
                start=lo,
                record_at=np.asarray(rec),
                record=record,
            )

        return jax.vmap(one)(train_keys, states)

    like_state = jax.tree.map(np.asarray, states)
    pieces = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        rec = tuple(int(t - lo) for t in times if lo < t <= hi)
        nt = len(rec)

        def work(states=states, lo=int(lo), n=int(hi - lo), rec=rec):
            final, trace = segment(states, lo, n, rec)
            return {"state": final, **trace["record"]}

        like = {
            "state": like_state,
            "s": np.zeros((n_seeds, nt, M), np.float32),
            "ll": np.zeros((n_seeds, nt), np.float32),
            "mag": np.zeros((n_seeds, nt), np.float32),
            "chi": np.zeros((n_seeds, nt), np.float32),
        }
        out = ctx.task(f"{name}/segment={i}", work, like=like)
        states = jax.tree.map(jnp.asarray, out["state"])
        pieces.append(out)
    rec = {k: np.concatenate([p[k] for p in pieces], axis=1) for k in ("s", "ll", "mag", "chi")}

    def check():
        final = jax.tree.map(lambda a: a[0], states.params)
        res = ais(ctx.key("ais", name), final, n_runs=128, n_betas=cfg["ais_betas"])
        exact_samples = final.sample_exact(ctx.key("ais-samples", name), 128)
        rev = ais_reverse(
            ctx.key("ais-reverse", name), final, exact_samples, n_betas=cfg["ais_betas"]
        )
        return {
            "exact": final.log_partition(),
            "ais": res.log_z,
            "err": res.log_z_err,
            "ais_rev": rev.log_z,
            "err_rev": rev.log_z_err,
            "samples": states.aux.v[0, :40],
        }

    like = {
        "exact": np.float32(0),
        "ais": np.float32(0),
        "err": np.float32(0),
        "ais_rev": np.float32(0),
        "err_rev": np.float32(0),
        "samples": np.zeros((40, N), np.float32),
    }
    final = ctx.task(f"{name}/ais", check, like=like)
    return times, rec, final


def _pad(a, n):
    out = np.full(a.shape[:-1] + (n,), np.nan, np.float32)
    out[..., : a.shape[-1]] = a
    return out


def fss(ds: xr.Dataset) -> dict:
    """Peak susceptibility and its time for each synthetic size, and the fitted exponent of
    chi_max ~ N^x (mean-field prediction x = 1/2)."""
    sel = ds.sel(dataset=ds.kind == "clusters")
    chi = sel.susceptibility.mean("seed")
    N = sel.n_visible.values.astype(float)
    chi_max = chi.max("time").values
    t_peak = chi.time.values[chi.argmax("time").values]
    slope = float(np.polyfit(np.log(N), np.log(chi_max), 1)[0]) if len(N) > 1 else float("nan")
    return {"N": N, "chi_max": chi_max, "t_peak": t_peak, "exponent": slope}


def _summary(ds: xr.Dataset) -> dict:
    f = fss(ds)
    ll = ds.log_likelihood.mean("seed").isel(time=-1)
    return {
        "chi_max_exponent": f["exponent"],
        "chi_max_exponent_mean_field": 0.5,
        "chi_max": dict(zip([int(n) for n in f["N"]], map(float, f["chi_max"]))),
        "t_peak": dict(zip([int(n) for n in f["N"]], map(int, f["t_peak"]))),
        "final_log_likelihood": {str(d): float(v) for d, v in zip(ds.dataset.values, ll.values)},
        "ais_minus_exact_log_z": {
            str(d): float(a - e)
            for d, a, e in zip(ds.dataset.values, ds.log_z_ais.values, ds.log_z_exact.values)
        },
        "ais_err": {str(d): float(v) for d, v in zip(ds.dataset.values, ds.log_z_ais_err.values)},
        "ais_reverse_minus_exact_log_z": {
            str(d): float(a - e)
            for d, a, e in zip(
                ds.dataset.values, ds.log_z_ais_reverse.values, ds.log_z_exact.values
            )
        },
        "ais_reverse_err": {
            str(d): float(v) for d, v in zip(ds.dataset.values, ds.log_z_ais_reverse_err.values)
        },
    }


def _figure(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(15, 8.5))
    t = ds.time.values
    clusters = [d for d, k in zip(ds.dataset.values, ds.kind.values) if k == "clusters"]
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(clusters), 1)))
    if "digits" in ds.dataset.values:
        s = ds.singular_values_all.sel(dataset="digits").mean("seed")
        for j in range(s.sizes["k"]):
            ax[0, 0].plot(t, s.isel(k=j), lw=1)
        ax[0, 0].set(
            xscale="log",
            xlabel="PCD updates",
            ylabel="$w_\\alpha$",
            title="digits: singular values of W (cascade)",
        )
    for c, d in zip(colours, clusters):
        n = int(ds.n_visible.sel(dataset=d))
        s1 = ds.singular_values_all.sel(dataset=d, k=1)
        ax[0, 1].plot(t, s1.mean("seed") / np.sqrt(n), color=c, label=f"N={n}")
        ax[0, 2].plot(t, ds.susceptibility.sel(dataset=d).mean("seed"), color=c, label=f"N={n}")
        ax[1, 1].plot(t, ds.log_likelihood.sel(dataset=d).mean("seed") / n, color=c, label=f"N={n}")
    ax[0, 1].set(
        xscale="log",
        xlabel="PCD updates",
        ylabel="$w_1/\\sqrt{N}$",
        title="two clusters: first singular value",
    )
    ax[0, 2].set(
        xscale="log",
        xlabel="PCD updates",
        ylabel="$\\chi$",
        title="susceptibility along $u_1$ (PCD chains)",
    )
    if clusters:
        ax[0, 1].legend(fontsize=8)
        ax[0, 2].legend(fontsize=8)
    f = fss(ds)
    if len(f["N"]):
        ax[1, 0].loglog(f["N"], f["chi_max"], "o-", label=f"fit: $N^{{{f['exponent']:.2f}}}$")
        ref = f["chi_max"][0] * (f["N"] / f["N"][0]) ** 0.5
        ax[1, 0].loglog(f["N"], ref, "k--", label="mean field $N^{1/2}$")
        ax[1, 0].set(
            xlabel="N", ylabel="$\\chi_{max}$", title="finite-size scaling of the first transition"
        )
        ax[1, 0].legend(fontsize=8)
    if "digits" in ds.dataset.values:
        n = int(ds.n_visible.sel(dataset="digits"))
        ax[1, 1].plot(
            t, ds.log_likelihood.sel(dataset="digits").mean("seed") / n, "k", label="digits"
        )
        imgs = ds.samples.sel(dataset="digits").values[:, :n]
        ax[1, 2].imshow(datasets.image_grid(imgs, (8, 8), n_cols=8), cmap="gray_r")
        ax[1, 2].set(title="digits: PCD chain samples", xticks=[], yticks=[])
    ax[1, 1].set(
        xscale="log",
        xlabel="PCD updates",
        ylabel="log-likelihood / N (exact)",
        title="exact train log-likelihood per visible unit",
    )
    ax[1, 1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _validate(cfg: dict) -> None:
    if not cfg["dims"] and not cfg["digits"]:
        raise ConfigError("nothing to train on: give dims (synthetic data) or digits=true.")


@experiment("rbm-cascade", runtime="about 4 min (244 CPU-s measured)", params=PARAMS, validate=_validate, summary=_summary, figure=_figure)
def rbm_cascade(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """RBM learning cascade: singular values of W along PCD training, N-scaling, digits."""
    sets = []
    key = ctx.key("data")
    centres_key, sample_key = jax.random.split(key)
    for N in cfg["dims"]:
        x, _, _ = datasets.clustered_binary(
            jax.random.fold_in(sample_key, N), cfg["n_samples"], N, n_clusters=2, m=cfg["m"]
        )
        sets.append((f"clusters N={N}", x, "clusters"))
    if cfg["digits"]:
        sets.append(("digits", datasets.load_digits(binarize=True), "digits"))
    ctx.set_total(len(sets) * (cfg["n_segments"] + 1))
    results = [
        (name, kind, x.shape[1], *_train_dataset(ctx, name, x, cfg)) for name, x, kind in sets
    ]
    times = results[0][3]
    n_max = max(r[2] for r in results)
    M = cfg["n_hidden"]
    ds = xr.Dataset(
        {
            "singular_values_all": (
                ("dataset", "seed", "time", "k"),
                np.stack([r[4]["s"] for r in results]),
            ),
            "log_likelihood": (
                ("dataset", "seed", "time"),
                np.stack([r[4]["ll"] for r in results]),
            ),
            "magnetisation": (
                ("dataset", "seed", "time"),
                np.stack([r[4]["mag"] for r in results]),
            ),
            "susceptibility": (
                ("dataset", "seed", "time"),
                np.stack([r[4]["chi"] for r in results]),
            ),
            "log_z_exact": (("dataset",), np.asarray([r[5]["exact"] for r in results])),
            "log_z_ais": (("dataset",), np.asarray([r[5]["ais"] for r in results])),
            "log_z_ais_err": (("dataset",), np.asarray([r[5]["err"] for r in results])),
            "log_z_ais_reverse": (("dataset",), np.asarray([r[5]["ais_rev"] for r in results])),
            "log_z_ais_reverse_err": (
                ("dataset",),
                np.asarray([r[5]["err_rev"] for r in results]),
            ),
            "samples": (
                ("dataset", "sample", "pixel"),
                np.stack([_pad(r[5]["samples"], n_max) for r in results]),
            ),
        },
        coords={
            "dataset": [r[0] for r in results],
            "kind": ("dataset", [r[1] for r in results]),
            "n_visible": ("dataset", np.asarray([r[2] for r in results])),
            "time": np.asarray(times),
            "k": np.arange(1, M + 1),
            "seed": np.arange(cfg["n_seeds"]),
        },
    )
    # the contract: `singular_values` with dims (time, k), for one headline run
    headline = "digits" if cfg["digits"] else ds.dataset.values[-1]
    ds["singular_values"] = ds.singular_values_all.sel(dataset=headline, seed=0, drop=True)
    ds["singular_values"].attrs["long_name"] = (
        f"singular values of W, descending: the headline run ({headline}, seed 0); every "
        "data set and seed is in singular_values_all"
    )
    ds.attrs["headline_run"] = f"{headline}, seed 0"
    annotate(
        ds,
        dataset=("training data set", "1"),
        kind=("kind of data set", "1"),
        n_visible=("number of visible units N", "1"),
        time=("PCD training step", "1"),
        k=("rank of the singular value", "1"),
        seed=("training seed", "1"),
        singular_values=(ds["singular_values"].attrs["long_name"], "1"),
        singular_values_all=("singular values of W, descending", "1"),
        log_likelihood=("exact log-likelihood per sample", "nat"),
        magnetisation=("<|p|>, p = u_1.(2v-1)/sqrt(N) over the persistent chains", "1"),
        susceptibility=("N (<p^2> - <|p|>^2), p = u_1.(2v-1)/sqrt(N)", "1"),
        log_z_exact=("exact log partition function of the trained RBM", "nat"),
        log_z_ais=("forward AIS estimate of log Z", "nat"),
        log_z_ais_reverse=("reverse AIS estimate of log Z", "nat"),
        samples=("samples of the trained RBM (zero-padded to the largest N)", "1"),
    )
    return ds
