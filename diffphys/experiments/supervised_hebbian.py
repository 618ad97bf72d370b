"""`supervised-hebbian`: dense Hebbian networks learning archetypes from noisy examples."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import ensemble, io, models, theory
from ._core import Param, RunContext, experiment

PARAMS = {
    "N": Param(400, "neurons", ge=2),
    "K": Param(5, "archetypes (classes)", ge=1),
    "p": Param(3, "interaction order of the dense Hebbian network", ge=2),
    "quality": Param(
        [0.1, 0.2, 0.3, 0.5], "example qualities r (overlap with the archetype)", gt=0, le=1
    ),
    "M": Param([1, 3, 5, 9, 15, 25, 41, 71, 121, 201], "examples per archetype", ge=1),
    "n_samples": Param(8, "independent data sets per point", ge=1),
    "digits_p": Param([2, 3, 4], "interaction orders for the digits classifier", ge=2),
    "digits_M": Param([1, 2, 5, 10, 20, 40, 80], "training digits per class", ge=1),
    "digits_splits": Param(4, "random train/test splits of the digits", ge=1),
    "digits_test_fraction": Param(0.4, "fraction of the digits held out", gt=0, le=0.9),
    "max_sweeps": Param(50, "maximum zero-temperature asynchronous sweeps", ge=1),
}


def _synthetic(ctx: RunContext, M: int, cfg: dict):
    """Overlaps (quality, sample) of the fixed point reached from an archetype, M examples."""
    n, K, p = int(cfg["N"]), int(cfg["K"]), int(cfg["p"])
    rs = np.asarray(cfg["quality"], np.float32)
    S = cfg["n_samples"]

    def one(key, r):
        k_a, k_e, k_d = jax.random.split(key, 3)
        arch = models.random_patterns(k_a, K, n)
        ex = models.noisy_examples(k_e, arch, M, r)
        model = models.dense_hebbian(ex, p, supervised=True, quality=r)
        x, _, _ = models.retrieve(
            model, arch[0].astype(jnp.int8), key=k_d, max_sweeps=cfg["max_sweeps"]
        )
        return jnp.mean(x.astype(jnp.float32) * arch[0])

    def work():
        keys = jax.random.split(ctx.key("M", M), len(rs) * S)
        r = jnp.repeat(jnp.asarray(rs), S)
        return {
            "overlap": ensemble.run(one, keys, r, chunk_size=ensemble.default_chunk_size()).reshape(
                len(rs), S
            )
        }

    return ctx.task(f"synthetic/M={M}", work)["overlap"]


def _digits(ctx: RunContext, cfg: dict):
    """Test accuracy of supervised dense Hebbian classifiers on binarised sklearn digits.

    The network stores the centred class means of M training images per class; a test image
    is classified by the pattern with the largest overlap after T = 0 asynchronous dynamics
    started at the image. Baseline: the nearest centred class mean without dynamics.
    """
    x, y = models.load_digits_binary()
    n_classes = 10
    ps = [int(p) for p in cfg["digits_p"]]
    Ms = [int(m) for m in cfg["digits_M"]]

    def make_classifier(p):
        def classify(key, x0, means):
            model = models.DenseAssociativeMemory(means, p=p, binary=False)
            _, m, _ = models.retrieve(model, x0, key=key, max_sweeps=cfg["max_sweeps"])
            return jnp.argmax(m)

        # compiled once per p: the class means are an argument, not a closure
        return jax.jit(
            lambda keys, xs, means: ensemble.run(
                lambda k, x0: classify(k, x0, means),
                keys,
                xs,
                chunk_size=ensemble.default_chunk_size(),
                jit=False,
            )
        )

    classifiers = {p: make_classifier(p) for p in ps}

    def work():
        acc = np.zeros((len(ps), len(Ms), cfg["digits_splits"]))
        acc0 = np.zeros((len(Ms), cfg["digits_splits"]))
        for s in range(cfg["digits_splits"]):
            seed = int(np.asarray(jax.random.key_data(ctx.key("split", s)))[-1])
            rng = np.random.default_rng(seed)
            perm = rng.permutation(len(y))
            n_test = int(cfg["digits_test_fraction"] * len(y))
            test, train = perm[:n_test], perm[n_test:]
            xt, yt = jnp.asarray(x[test]), np.asarray(y[test])
            for j, M in enumerate(Ms):
                idx = np.stack([train[y[train] == c][:M] for c in range(n_classes)])
                ex = jnp.asarray(x[idx], jnp.float32)  # (10, M, 64)
                # remove the common mode (the shared background pixels): uncentred class means
                # are so correlated that every digit flows to the same mixture state
                ex = ex - ex.reshape(-1, ex.shape[-1]).mean(0)
                means = ex.mean(1)
                scores = np.asarray(xt.astype(jnp.float32) @ means.T)
                acc0[j, s] = np.mean(np.argmax(scores, 1) == yt)
                for a, p in enumerate(ps):
                    keys = jax.random.split(ctx.key("digits", s, M, p), len(yt))
                    pred = np.asarray(classifiers[p](keys, xt, means))
                    acc[a, j, s] = np.mean(pred == yt)
        return {"accuracy": acc, "accuracy_nearest_mean": acc0}

    return ctx.task("digits", work)


def _summary(ds) -> dict:
    out = {}
    for r in ds["quality"].values:
        o = ds["overlap"].sel(quality=r).mean("sample").values
        out[f"overlap_at_M_max_r{r:g}"] = float(o[-1])
        out[f"max_abs_dev_from_low_load_theory_r{r:g}"] = float(
            np.max(np.abs(o - ds["overlap_theory"].sel(quality=r).values))
        )
    for p in ds["digits_p"].values:
        a = ds["accuracy"].sel(digits_p=p).mean("split").values
        out[f"digits_accuracy_p{p}"] = {int(M): float(v) for M, v in zip(ds["digits_M"].values, a)}
    out["digits_accuracy_nearest_mean"] = {
        int(M): float(v)
        for M, v in zip(ds["digits_M"].values, ds["accuracy_nearest_mean"].mean("split").values)
    }
    return out


def _figure(ds):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for k, r in enumerate(ds["quality"].values):
        o = ds["overlap"].sel(quality=r)
        err = o.std("sample") / np.sqrt(o.sizes["sample"])
        ax.errorbar(ds["M"], o.mean("sample"), err, fmt="o", ms=4, color=f"C{k}", label=f"r={r:g}")
        ax.plot(ds["M"], ds["overlap_theory"].sel(quality=r), "-", color=f"C{k}", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("examples per archetype M")
    ax.set_ylabel("overlap of the T=0 fixed point with the archetype")
    ax.set_title(
        f"synthetic, N={ds.attrs['N']}, K={ds.attrs['K']}, p={ds.attrs['p']}; "
        "lines: low-load majority vote",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    ax = axes[1]
    for p in ds["digits_p"].values:
        acc = ds["accuracy"].sel(digits_p=p)
        ax.errorbar(
            ds["digits_M"],
            acc.mean("split"),
            acc.std("split"),
            marker="o",
            ms=4,
            label=f"dense Hebbian p={p} + T=0 dynamics",
        )
    acc0 = ds["accuracy_nearest_mean"]
    ax.errorbar(
        ds["digits_M"], acc0.mean("split"), acc0.std("split"), fmt="k--", label="nearest class mean"
    )
    ax.set_xscale("log")
    ax.set_xlabel("training examples per class M")
    ax.set_ylabel("test accuracy")
    ax.set_title("scikit-learn digits (8x8, binarised), supervised", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@experiment("supervised-hebbian", runtime="about 1.5 min (102 CPU-s measured)", params=PARAMS, summary=_summary, figure=_figure)
def supervised_hebbian(ctx: RunContext, cfg: dict):
    """Supervised dense Hebbian learning: archetype retrieval and digit classification vs M, r."""
    rs = [float(r) for r in cfg["quality"]]
    Ms = [int(m) for m in cfg["M"]]
    ctx.set_total(len(Ms) + 1)
    ov = np.stack([np.asarray(_synthetic(ctx, M, cfg)) for M in Ms], axis=1)  # (r, M, sample)
    overlap_th = np.stack([theory.supervised_overlap_low_load(cfg["M"], r) for r in rs])
    dig = _digits(ctx, cfg)
    ds = xr.Dataset(
        {
            "overlap": (("quality", "M", "sample"), ov),
            "overlap_theory": (("quality", "M"), overlap_th),
            "accuracy": (("digits_p", "digits_M", "split"), np.asarray(dig["accuracy"])),
            "accuracy_nearest_mean": (
                ("digits_M", "split"),
                np.asarray(dig["accuracy_nearest_mean"]),
            ),
        },
        coords={
            "quality": rs,
            "M": np.asarray(cfg["M"]),
            "sample": np.arange(cfg["n_samples"]),
            "digits_p": np.asarray(cfg["digits_p"]),
            "digits_M": np.asarray(cfg["digits_M"]),
            "split": np.arange(cfg["digits_splits"]),
        },
    )
    io.annotate(
        ds,
        quality=("example quality r", "1"),
        M=("examples per archetype", "1"),
        sample=("data-set index", "1"),
        digits_p=("interaction order of the digits classifier", "1"),
        digits_M=("training digits per class", "1"),
        split=("train/test split index", "1"),
        overlap=("overlap of the final state with the archetype", "1"),
        overlap_theory=("sign(class mean) vs archetype, exact majority vote", "1"),
        accuracy=("test accuracy of the dense Hebbian classifier", "1"),
        accuracy_nearest_mean=("test accuracy of the nearest-class-mean classifier", "1"),
    )
    ds.attrs.update(N=int(cfg["N"]), K=int(cfg["K"]), p=int(cfg["p"]))
    return ds
