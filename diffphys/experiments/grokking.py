r"""`grokking`: grokking as the transition from lazy to rich training (Kumar, Bordelon,
Gershman & Pehlevan, ICLR 2024, arXiv 2310.06110).

A two-layer network $f = \frac{\alpha}{N}\sum_i\phi(w_i\cdot x)$, $\phi(z) = z + \varepsilon
z^2/2$, learns the quadratic teacher $y = (\beta\cdot x)^2/2$ by full-batch GD on the centred
loss with $\eta = N/\alpha^2$. The whole $(\alpha, \varepsilon)$ grid is one vmapped
`training.train` call; next to it, the linearised (NTK) model trained by the same loop, its
exact solution in the eigenbasis of the initial NTK (`theory.linearised_gd`), and ridgeless
kernel regression with the initial NTK (its infinite-time limit).

The grokking delay is $t_{\rm test} - t_{\rm train}$, where $t_{\rm set}$ is the first time
(log-interpolated between records) at which that set's loss falls below `threshold` times its
value at $t = 0$; the fitted exponent $k$ of delay $\propto \alpha^k$ uses the grokked points
with $\alpha \ge$ `fit_alpha_min`. Default sizes are the paper's ratios $N = 5D$,
$P = 5.5D$ at $D = 30$ (the paper: $D = 100$) so that the run takes a few minutes on a
2-core CPU; feature learning is slower by about $D$ at fixed $\alpha\varepsilon$.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import models, theory, training
from .._errors import ConfigError
from .._loop import log_times
from ._core import Param, RunContext, experiment

PARAMS = {
    "D": Param(30, "input dimension", ge=1),
    "N": Param(150, "hidden width", ge=2),
    "P": Param(165, "training samples", ge=1),
    "P_test": Param(500, "test samples", ge=1),
    "alpha": Param(
        [2.0**k for k in range(-5, 6)], "output scales alpha (lazy at large alpha)", gt=0
    ),
    "eps": Param([0.1, 0.2, 0.4], "quadratic part eps of phi(z) = z + (eps/2) z^2", ge=0),
    "n_steps": Param(10000, "full-batch GD steps", ge=1),
    "n_records": Param(40, "log-spaced recording times", ge=2),
    "n_segments": Param(3, "checkpointed training pieces", ge=1),
    "threshold": Param(
        0.1, "relative loss level that defines learning (train) and grokking (test)", gt=0
    ),
    "learning_rate_scale": Param(1.0, "learning rate in units of N / alpha^2", gt=0),
    "fit_alpha_min": Param(0.0, "smallest alpha in the delay-vs-alpha fit", ge=0),
    "linearised_alpha": Param(1.0, "alpha of the linearised (NTK) model trained beside", gt=0),
}

_DIVERGED = 1e6  # a loss above this multiple of its initial value counts as divergence


def _check(cfg: dict) -> None:
    for name, least in (("D", 1), ("N", 2), ("P", 1), ("P_test", 2), ("n_steps", 1)):
        if int(cfg[name]) < least:
            raise ConfigError(f"{name} must be >= {least}, got {cfg[name]}.")
    if not cfg["alpha"] or any(not np.isfinite(a) or a <= 0 for a in cfg["alpha"]):
        raise ConfigError(f"every alpha must be positive and finite, got {cfg['alpha']}.")
    if not cfg["eps"] or any(not np.isfinite(e) or e < 0 for e in cfg["eps"]):
        raise ConfigError(f"every eps must be >= 0 and finite, got {cfg['eps']}.")
    if not 0 < cfg["threshold"] < 1:
        raise ConfigError(f"threshold must be in (0, 1), got {cfg['threshold']}.")
    if not cfg["learning_rate_scale"] > 0:
        raise ConfigError(f"learning_rate_scale must be > 0, got {cfg['learning_rate_scale']}.")
    if cfg["linearised_alpha"] <= 0:
        raise ConfigError(f"linearised_alpha must be > 0, got {cfg['linearised_alpha']}.")
    if not 1 <= cfg["n_segments"] <= cfg["n_steps"]:
        raise ConfigError(f"n_segments must be in [1, n_steps], got {cfg['n_segments']}.")


def _segment_bounds(n_steps: int, n_segments: int) -> np.ndarray:
    """Checkpoint boundaries: equal numbers of steps (equal wall time per segment)."""
    return np.linspace(0, n_steps, n_segments + 1).astype(np.int64)


def _train_segments(ctx, name, params, grad_fn, lr, record, times, bounds, key):
    """Train a vmapped ensemble segment by segment, one checkpointed task each."""

    state = jax.vmap(lambda p, eta: training.TrainState(p, optax.sgd(eta).init(p), None))(
        params, lr
    )
    records = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        at = times[(times > lo) & (times <= hi)] - lo
        if at.size == 0 or at[-1] != hi - lo:
            at = np.append(at, hi - lo)  # the segment's end is always recorded (then dropped)
        keep = np.isin(at + lo, times)

        def work(state=state, lo=int(lo), hi=int(hi), at=at):
            def one(p, s, eta):
                return training.train(
                    key,
                    p,
                    grad_fn(p),
                    optax.sgd(eta),
                    hi - lo,
                    state=s,
                    start=lo,
                    record_at=at,
                    record=record(p),
                )

            final, trace = jax.jit(jax.vmap(one))(params, state, lr)
            return {"state": final, "record": trace["record"]}

        like = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(work))
        out = ctx.task(f"{name}/segment={i}", work, like=like)
        state = jax.tree.map(jnp.asarray, out["state"])
        records.append(jax.tree.map(lambda a, keep=keep: np.asarray(a)[:, keep], out["record"]))
    return jax.tree.map(lambda *a: np.concatenate(a, axis=1), *records)


def _crossing(times: np.ndarray, ratio: np.ndarray, threshold: float) -> np.ndarray:
    """First time (log-log interpolated) where `ratio` (..., time) falls below threshold;
    NaN where it never does."""
    out = np.full(ratio.shape[:-1], np.nan)
    lt, lthr = np.log(times.astype(np.float64)), np.log(threshold)
    for idx in np.ndindex(ratio.shape[:-1]):
        r = ratio[idx]
        below = np.nonzero(np.isfinite(r) & (r < threshold))[0]
        if below.size == 0:
            continue
        j = below[0]
        if j == 0:
            out[idx] = times[0]
            continue
        a, b = np.log(max(r[j - 1], 1e-30)), np.log(max(r[j], 1e-30))
        w = (a - lthr) / (a - b) if a != b else 1.0
        out[idx] = np.exp(lt[j - 1] + w * (lt[j] - lt[j - 1]))
    return out


def fit_power_law(x, y):
    """Least-squares slope and intercept of log y against log x over finite positive y,
    with the slope's standard error (NaN with fewer than 3 points)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(y) & (y > 0) & (x > 0)
    if ok.sum() < 3:
        return np.nan, np.nan, np.nan
    lx, ly = np.log(x[ok]), np.log(y[ok])
    A = np.stack([lx, np.ones_like(lx)], axis=1)
    coef, res, *_ = np.linalg.lstsq(A, ly, rcond=None)
    n = ok.sum()
    s2 = float(np.sum((ly - A @ coef) ** 2)) / (n - 2)
    err = np.sqrt(s2 / np.sum((lx - lx.mean()) ** 2))
    return float(coef[0]), float(coef[1]), float(err)


@experiment(
    "grokking", runtime="about 1 min (73 CPU-s measured)",
    params=PARAMS,
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def grokking(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """Grokking delay of a two-layer network vs output scale alpha and activation eps."""
    _check(cfg)
    D, N, P, Pt = (int(cfg[k]) for k in ("D", "N", "P", "P_test"))
    alphas = np.asarray(cfg["alpha"], np.float64)
    epss = np.asarray(cfg["eps"], np.float64)
    n_steps = int(cfg["n_steps"])
    times = log_times(n_steps, int(cfg["n_records"]))
    bounds = _segment_bounds(n_steps, int(cfg["n_segments"]))
    ctx.set_total(2 * int(cfg["n_segments"]) + 1)

    task = models.GrokkingTask.sample(ctx.key("task"), D=D, P=P, P_test=Pt)
    w0 = models.TwoLayer.sample(ctx.key("init"), N=N, D=D).w  # one initial W for all
    A, E = np.meshgrid(alphas, epss, indexing="ij")
    a_flat = jnp.asarray(A.ravel(), jnp.float32)
    e_flat = jnp.asarray(E.ravel(), jnp.float32)
    nets = jax.vmap(lambda a, e: models.TwoLayer(w0, a, e))(a_flat, e_flat)
    lr_scale = float(cfg["learning_rate_scale"])
    lr = jax.vmap(lambda n: n.learning_rate)(nets) * lr_scale

    def grad_fn(model0):
        f0 = model0.batch(task.x_train)

        def loss(p, batch, key):
            return models.centred_loss(p, task.x_train, task.y_train, f0)

        return training.from_loss(loss)

    def record_net(model0):
        f0, f0t = model0.batch(task.x_train), model0.batch(task.x_test)

        def rec(s):
            K = s.params.ntk(task.x_test)
            return {
                "train": models.centred_loss(s.params, task.x_train, task.y_train, f0),
                "test": models.centred_loss(s.params, task.x_test, task.y_test, f0t),
                "align": models.ntk_alignment(K, task.y_test),
            }

        return rec

    key = ctx.key("train")
    rec_net = _train_segments(ctx, "network", nets, grad_fn, lr, record_net, times, bounds, key)

    # The linearised model: in the units eta = N / alpha^2 its function-space dynamics do not
    # depend on alpha, so one per eps (at `linearised_alpha`) stands for the whole column.
    a_lin = float(cfg["linearised_alpha"])
    lins = jax.vmap(lambda e: models.Linearised(models.TwoLayer(w0, jnp.float32(a_lin), e)))(
        jnp.asarray(epss, jnp.float32)
    )
    lr_lin = jnp.full(len(epss), N / a_lin**2 * lr_scale, jnp.float32)

    def grad_lin(lin0):
        return grad_fn(lin0.model)

    def record_lin(lin0):
        f0, f0t = lin0.model.batch(task.x_train), lin0.model.batch(task.x_test)

        def rec(s):
            return {
                "train": models.centred_loss(s.params, task.x_train, task.y_train, f0),
                "test": models.centred_loss(s.params, task.x_test, task.y_test, f0t),
            }

        return rec

    rec_lin = _train_segments(
        ctx, "linearised", lins, grad_lin, lr_lin, record_lin, times, bounds, key
    )

    def kernel_theory():
        def one(e):
            net = models.TwoLayer(w0, jnp.float32(a_lin), e)
            K = net.ntk(task.x_train)
            Kt = net.ntk(task.x_test, task.x_train)
            f_kr = theory.kernel_regression(K, task.y_train, Kt)
            f_tr, f_te = theory.linearised_gd(
                K, task.y_train, learning_rate=N / a_lin**2 * lr_scale, t=times, K_test_train=Kt
            )
            return {
                "kr_test": jnp.mean((f_kr - task.y_test) ** 2),
                "lin_train": jnp.mean((f_tr - task.y_train) ** 2, axis=-1),
                "lin_test": jnp.mean((f_te - task.y_test) ** 2, axis=-1),
                "align0_test": models.ntk_alignment(net.ntk(task.x_test), task.y_test),
                "align_inf_test": models.ntk_alignment(
                    theory.ntk_infinite_width(task.x_test, eps=e), task.y_test
                ),
            }

        return jax.jit(jax.vmap(one))(jnp.asarray(epss, jnp.float32))

    th = ctx.task("kernel", kernel_theory)

    shape = (len(alphas), len(epss), len(times))
    train = np.asarray(rec_net["train"], np.float64).reshape(shape)
    test = np.asarray(rec_net["test"], np.float64).reshape(shape)
    align = np.asarray(rec_net["align"], np.float64).reshape(shape)
    L0_train = float(np.mean(np.asarray(task.y_train, np.float64) ** 2))
    L0_test = float(np.mean(np.asarray(task.y_test, np.float64) ** 2))
    bad = ~np.isfinite(train) | ~np.isfinite(test) | (train > _DIVERGED * L0_train)
    bad = np.logical_or.accumulate(bad, axis=-1)  # everything after a divergence is NaN
    diverged = bad.any(axis=-1)
    train = np.where(bad, np.nan, train)
    test = np.where(bad, np.nan, test)
    align = np.where(bad, np.nan, align)
    lin_train = np.asarray(rec_lin["train"], np.float64)
    lin_test = np.asarray(rec_lin["test"], np.float64)
    bad_lin = ~np.isfinite(lin_train) | (lin_train > _DIVERGED * L0_train)
    bad_lin = np.logical_or.accumulate(bad_lin, axis=-1)
    lin_diverged = bad_lin.any(axis=-1)
    lin_train = np.where(bad_lin, np.nan, lin_train)
    lin_test = np.where(bad_lin, np.nan, lin_test)

    thr = float(cfg["threshold"])
    t_train = _crossing(times, train / L0_train, thr)
    t_test = _crossing(times, test / L0_test, thr)
    grokked = np.isfinite(t_train) & np.isfinite(t_test)
    delay = np.where(grokked, t_test - t_train, np.nan)

    fit_k = np.full(len(epss), np.nan)
    fit_k_err = np.full(len(epss), np.nan)
    sel = alphas >= float(cfg["fit_alpha_min"])
    for j in range(len(epss)):
        fit_k[j], _, fit_k_err[j] = fit_power_law(alphas[sel], delay[sel, j])
    fit_m = np.full(len(alphas), np.nan)
    fit_m_err = np.full(len(alphas), np.nan)
    for i in range(len(alphas)):
        fit_m[i], _, fit_m_err[i] = fit_power_law(epss, delay[i])

    ae = ("alpha", "eps")
    ds = xr.Dataset(
        {
            "train_loss": (ae + ("time",), train),
            "test_loss": (ae + ("time",), test),
            "ntk_alignment": (ae + ("time",), align),
            "linearised_train_loss": (("eps", "time"), lin_train),
            "linearised_test_loss": (("eps", "time"), lin_test),
            "linearised_train_loss_theory": (("eps", "time"), np.asarray(th["lin_train"])),
            "linearised_test_loss_theory": (("eps", "time"), np.asarray(th["lin_test"])),
            "kernel_regression_test_loss": (("eps",), np.asarray(th["kr_test"], np.float64)),
            "ntk_alignment_init": (("eps",), np.asarray(th["align0_test"], np.float64)),
            "ntk_alignment_infinite_width": (
                ("eps",),
                np.asarray(th["align_inf_test"], np.float64),
            ),
            "t_train": (ae, t_train),
            "t_test": (ae, t_test),
            "grokking_delay": (ae, delay),
            "grokked": (ae, grokked),
            "diverged": (ae, diverged),
            "linearised_diverged": (("eps",), lin_diverged),
            "learning_rate": (ae, np.asarray(lr, np.float64).reshape(A.shape)),
            "delay_exponent_alpha": (("eps",), fit_k),
            "delay_exponent_alpha_err": (("eps",), fit_k_err),
            "delay_exponent_eps": (("alpha",), fit_m),
            "delay_exponent_eps_err": (("alpha",), fit_m_err),
        },
        coords={"alpha": alphas, "eps": epss, "time": times.astype(np.int64)},
    )
    attrs = {
        "alpha": ("output scale alpha", "1"),
        "eps": ("quadratic coefficient eps of phi(z) = z + eps z^2 / 2", "1"),
        "time": ("gradient-descent step", "steps"),
        "train_loss": ("centred train loss (1/P) sum (f - f0 - y)^2", "1"),
        "test_loss": ("centred test loss", "1"),
        "ntk_alignment": ("test-set NTK alignment y^T K y / (|K|_F |y|^2)", "1"),
        "linearised_train_loss": ("train loss of the linearised model (trained)", "1"),
        "linearised_test_loss": ("test loss of the linearised model (trained)", "1"),
        "linearised_train_loss_theory": (
            "train loss of linearised GD, exact in the NTK eigenbasis",
            "1",
        ),
        "linearised_test_loss_theory": (
            "test loss of linearised GD, exact in the NTK eigenbasis",
            "1",
        ),
        "kernel_regression_test_loss": ("test loss of ridgeless regression with K_0", "1"),
        "ntk_alignment_init": ("test-set alignment of the initial empirical NTK", "1"),
        "ntk_alignment_infinite_width": ("test-set alignment of x.x' + eps^2 (x.x')^2", "1"),
        "t_train": ("first time train loss < threshold x initial", "steps"),
        "t_test": ("first time test loss < threshold x initial", "steps"),
        "grokking_delay": ("grokking delay t_test - t_train (NaN: not grokked)", "steps"),
        "grokked": ("both losses fell below the threshold within the run", "1"),
        "diverged": ("gradient descent diverged (losses set to NaN)", "1"),
        "linearised_diverged": ("linearised model diverged (losses set to NaN)", "1"),
        "learning_rate": ("learning rate eta = scale x N / alpha^2", "1"),
        "delay_exponent_alpha": ("k in delay ~ alpha^k (alpha >= fit_alpha_min)", "1"),
        "delay_exponent_alpha_err": ("standard error of k", "1"),
        "delay_exponent_eps": ("m in delay ~ eps^m", "1"),
        "delay_exponent_eps_err": ("standard error of m", "1"),
    }
    for name, (long_name, units) in attrs.items():
        ds[name].attrs.update(long_name=long_name, units=units)
    ds.attrs.update(
        D=D,
        N=N,
        P=P,
        P_test=Pt,
        threshold=thr,
        initial_train_loss=L0_train,
        initial_test_loss=L0_test,
        linearised_alpha=a_lin,
        paper="Kumar, Bordelon, Gershman, Pehlevan, ICLR 2024, arXiv 2310.06110",
    )
    return ds


def _summary(ds: xr.Dataset) -> dict:
    def lst(v):
        return [None if not np.isfinite(x) else float(x) for x in np.ravel(v)]

    return {
        "eps": lst(ds["eps"].values),
        "alpha": lst(ds["alpha"].values),
        "delay_exponent_alpha": lst(ds["delay_exponent_alpha"].values),
        "delay_exponent_alpha_err": lst(ds["delay_exponent_alpha_err"].values),
        "delay_exponent_eps": lst(ds["delay_exponent_eps"].values),
        "delay_exponent_eps_err": lst(ds["delay_exponent_eps_err"].values),
        "n_grokked": int(ds["grokked"].sum()),
        "n_diverged": int(ds["diverged"].sum()),
        "kernel_regression_test_loss_over_initial": lst(
            ds["kernel_regression_test_loss"].values / ds.attrs["initial_test_loss"]
        ),
        "final_test_loss_over_initial_at_smallest_and_largest_alpha": lst(
            ds["test_loss"].isel(time=-1, alpha=[0, -1]).values / ds.attrs["initial_test_loss"]
        ),
        "max_rel_diff_linearised_trained_vs_exact": float(
            np.nanmax(
                np.abs(ds["linearised_test_loss"] - ds["linearised_test_loss_theory"])
                / ds["linearised_test_loss_theory"]
            )
        ),
    }


def _figure(ds: xr.Dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    eps_mid = ds["eps"].values[len(ds["eps"]) // 2]
    d = ds.sel(eps=eps_mid)
    t = ds["time"].values
    cmap = plt.get_cmap("viridis")
    na = len(ds["alpha"])
    L0 = ds.attrs["initial_test_loss"]
    for i, a in enumerate(ds["alpha"].values):
        c = cmap(i / max(na - 1, 1))
        axes[0].loglog(t, d["test_loss"].sel(alpha=a) / L0, color=c, label=f"α = {a:g}")
        axes[0].loglog(t, d["train_loss"].sel(alpha=a) / L0, color=c, ls="--", lw=0.8)
        axes[1].semilogx(t, d["ntk_alignment"].sel(alpha=a), color=c)
    axes[0].loglog(t, d["linearised_test_loss"] / L0, "k-", lw=2, label="linearised (trained)")
    axes[0].loglog(t, d["linearised_test_loss_theory"] / L0, "w:", lw=1.5)
    axes[0].loglog(t, d["linearised_train_loss"] / L0, "k--", lw=2)
    axes[0].axhline(d["kernel_regression_test_loss"] / L0, color="r", label="K₀ regression")
    axes[0].set(xlabel="step", ylabel="loss / initial test loss", title=f"ε = {eps_mid:g}")
    axes[0].legend(fontsize=6, ncol=2)
    axes[1].set(xlabel="step", ylabel="test NTK alignment", title="alignment (dark: small α)")
    for e in ds["eps"].values:
        de = ds["grokking_delay"].sel(eps=e)
        k = float(ds["delay_exponent_alpha"].sel(eps=e))
        axes[2].loglog(ds["alpha"], de, "o-", label=f"ε = {e:g}, k = {k:.2f}")
    axes[2].set(xlabel="α", ylabel="delay t_test - t_train (steps)", title="delay vs α")
    axes[2].legend(fontsize=7)
    delay = np.log10(np.where(ds["grokked"], ds["grokking_delay"].clip(min=1), np.nan))
    im = axes[3].pcolormesh(
        np.arange(len(ds["eps"])), np.arange(na), delay, shading="nearest", cmap="magma"
    )
    axes[3].set_xticks(np.arange(len(ds["eps"])), [f"{e:g}" for e in ds["eps"].values])
    axes[3].set_yticks(np.arange(na), [f"{a:g}" for a in ds["alpha"].values])
    axes[3].set(xlabel="ε", ylabel="α", title="log10 delay (blank: not grokked)")
    fig.colorbar(im, ax=axes[3])
    fig.suptitle("Grokking as lazy-to-rich training (Kumar et al. 2024): dashed train, solid test")
    fig.tight_layout()
    return fig
