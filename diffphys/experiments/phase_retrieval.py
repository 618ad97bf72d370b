"""`phase-retrieval`: recovery probability of Riemannian GD against alpha for several N, the
finite-N recovery threshold against log N, and the Hessian's lowest mode along trajectories.

Setting and normalisation: `diffphys.models.PhaseRetrieval` (Sarao Mannelli et al. arXiv
2006.06997; Bonnaire, Biroli, Cammarota arXiv 2403.02418). Success = final overlap
|x.x*|/N >= `threshold` after `n_steps` of GD with learning rate `lr` on the sphere from a
uniform random start. Each point (N, alpha) makes `n_runs` runs (one value, or one per N):
n_runs / `inits` instances (sensing matrix and signal), each descended from `inits`
independent random starts at once (`models.phase_retrieval_descent`: the K students share the
matrix, so a step is two matrix-matrix products, compute bound, instead of 2K memory-bound
matrix-vector products; measured on the 2-core CPU at N = 1024, alpha = 8: 7.9 s of CPU per
run alone, 4.2 / 2.9 / 2.1 s per run with K = 8 / 16 / 32). The success probability is the
mean over instances x starts (the same estimator as one start per instance: every run is a
uniform start on an independent-of-it instance); its error `success_err` is computed over
instances (the per-instance success fractions are the independent units), never below the
binomial error, whose ratio is recorded as `design_effect` (variance inflation from sharing
the matrix; 1 when the starts are as good as independent runs; measured 1.9-3.7 at K = 16
near the threshold for N = 64..512, which roughly cancels the speed-up there: the gain is real
only far from the threshold and on accelerators). `alpha_min` / `alpha_max`
(per N) restrict each N to a window of the alpha grid around its threshold (NaN outside).
The threshold alpha_half(N) (success probability 1/2, linear interpolation in alpha) gets a
cluster-bootstrap error (instances resampled at every point, `n_boot` times), and is fitted
as alpha_half = a + b log N by weighted least squares (errors scaled by sqrt(chi2/dof) when
that exceeds 1), the form of the "strong logarithmic corrections" of the algorithmic
threshold reported by Bonnaire et al. (abstract; their numbers were not reachable here).
`success_at_check` records success after n_steps / `n_checks`, 2 n_steps / n_checks, ...
steps: whether `n_steps` suffices (no early stopping: every run makes all n_steps).
Instance i of a point has key fold_in(key("final", N, alpha), i) and `task_runs` runs form one
checkpointed task, so per-N invocations reproduce a combined one run for run
(`benchmarks/phase_retrieval_threshold.py` combines them; the study at N = 64..2048 is in
`benchmarks/results/phase_retrieval.md`).
Along trajectories at N = `hessian_N`, the Riemannian Hessian's lowest eigenpair (Lanczos,
`diffphys.curvature`) gives lambda_min(t) and the overlap of its eigenvector with x*; `t_flat`
is the first recorded time at which lambda_min >= -`flat_tol`: the informative downward
direction has disappeared (the BBP-type transition of the outlier into the bulk edge).

Theory beside it (`diffphys.theory.phase_retrieval_hessian_*`, derived there): on a grid of
overlaps `m_theory`, the Riemannian Hessian's informative outlier (eigenvalue and overlap of
its eigenvector with x*) and the median lowest bulk eigenvalue at size `hessian_N`;
interpolated at the measured mean |m(t)| they give the predicted lambda_min(t) = min(outlier,
edge) along the trajectory (the "annealed" approximation: x treated as independent of the
sensing vectors, exact at t = 0), and m_bbp(alpha, N), the overlap at which the outlier
meets the bulk edge, with t_bbp the first time the mean |m(t)| reaches it. lambda_min is
heavy-tailed at finite N (its lowest values are single-sample spikes), so the runs are
summarised by their median and quartiles, the statistic the theory's median edge predicts;
step 0 (the start) is recorded. Measured (dense eigh, N = 128, alpha = 4, 64 samples;
`tests/test_phase_retrieval_theory.py`): at the start the median lambda_min is -3.93 against the
predicted min(outlier, edge) = min(-3.98, -3.57); after GD time lr x steps = 0.05 (one step at
lr = 0.05, or four at 0.0125: the same, a continuous-time effect) it has risen to -3.45 while
m has not moved. The annealed theory misses this: GD correlates x with every sensing vector
at once (the self term of a_mu . grad L is (N/M) l'(a_mu . x), of order one) and shrinks the
largest residuals first, which are the single-sample spikes that set the finite-N edge. So
beside it the experiment evaluates the same random-matrix equations on each recorded state's
own projections (a_mu . x, a_mu . x*) (`theory.phase_retrieval_hessian_given_projections`,
`lambda_min_given_projections`): this follows the measured median along the whole trajectory
(within ~0.1-0.2 up to t = 0.8 at N = 128, alpha = 4; the test file above). Predicting the
projections' law itself needs the DMFT of Sarao Mannelli et al., which is not built here.

`student = "unconstrained"` runs plain GD on R^N (no projection, no retraction) from the same
random start on the sphere; the overlap is then normalised, |x.x*|/(|x||x*|), and the Hessian
along trajectories is the Euclidean one (the theory, derived for the sphere, is left out:
its variables are NaN, flagged by the dataset attribute `theory_applies = 0`).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import curvature, ensemble, log_times, models, theory, training
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

# eigenvalue given to the radial direction (not a tangent direction): far above the spectrum
RADIAL = 1e3

PARAMS = {
    "N": Param([32, 64, 128], "signal dimensions", ge=2),
    "alpha": Param([2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0], "sample ratios alpha = M / N", gt=0),
    "n_runs": Param([96], "runs (instances x inits) per point: one value, or one per N", ge=2),
    "inits": Param(8, "random starts per instance, sharing its sensing matrix", ge=1),
    "alpha_min": Param([0.0], "per N (or one value): grid alphas below are not run", ge=0),
    "alpha_max": Param([1e3], "per N (or one value): grid alphas above are not run", gt=0),
    "task_runs": Param(1024, "at most this many runs per checkpointed task", ge=1),
    "n_checks": Param(2, "equally spaced times at which success is also recorded", ge=1),
    "n_boot": Param(400, "cluster-bootstrap resamples for the error of alpha_half", ge=10),
    "lr": Param(0.05, "GD learning rate", gt=0),
    "n_steps": Param(1500, "GD steps", ge=1),
    "threshold": Param(0.9, "final overlap above which a run counts as a success", gt=0, le=1),
    "hessian_N": Param(128, "dimension of the Hessian-along-trajectory runs", ge=2),
    "hessian_alpha": Param([4.0, 10.0], "sample ratios of the Hessian runs", gt=0),
    "hessian_runs": Param(6, "trajectories per Hessian sample ratio", ge=1),
    "n_records": Param(24, "log-spaced times at which the Hessian is analysed", ge=2),
    "n_lanczos": Param(24, "Lanczos iterations per Hessian", ge=2),
    "flat_tol": Param(0.01, "lambda_min above -flat_tol counts as no downward direction", gt=0),
    "student": Param(
        "spherical",
        "spherical (Riemannian GD on |x|^2 = N) or unconstrained (plain GD on R^N)",
        choices=("spherical", "unconstrained"),
    ),
    "m_theory": Param(
        [0.0, 0.2, 0.4, 0.6, 0.8], "overlaps at which the Hessian theory is solved", ge=0, le=0.99
    ),
}


def _per_n(cfg, key):
    """cfg[key] as one value per N (a single value is broadcast)."""
    v = list(cfg[key])
    return v * len(cfg["N"]) if len(v) == 1 else v


def _check(cfg):
    if any(int(n) < 2 for n in cfg["N"]) or int(cfg["hessian_N"]) < 2:
        raise ConfigError("phase-retrieval needs every N >= 2 (e.g. --set N=[64,128]).")
    if any(a <= 0 for a in cfg["alpha"]) or any(a <= 0 for a in cfg["hessian_alpha"]):
        raise ConfigError("phase-retrieval needs alpha > 0 (alpha = M/N, e.g. 2..14).")
    if cfg["lr"] <= 0 or cfg["n_steps"] < 1:
        raise ConfigError("phase-retrieval needs lr > 0 and n_steps >= 1.")
    for k in ("n_runs", "alpha_min", "alpha_max"):
        if len(cfg[k]) not in (1, len(cfg["N"])):
            raise ConfigError(
                f"phase-retrieval: {k} needs one value or one per N ({len(cfg['N'])}), "
                f"got {len(cfg[k])}."
            )
    if any(int(r) % int(cfg["inits"]) for r in cfg["n_runs"]):
        raise ConfigError(
            f"phase-retrieval: every n_runs must be a multiple of inits = {cfg['inits']} "
            f"(runs = instances x inits), got n_runs = {cfg['n_runs']}."
        )
    if cfg["n_steps"] % cfg["n_checks"]:
        raise ConfigError("phase-retrieval needs n_steps divisible by n_checks (e.g. 1500 and 2).")
    if not 0 < cfg["threshold"] < 1:
        raise ConfigError("phase-retrieval threshold must lie in (0, 1), e.g. 0.9.")
    if cfg["n_lanczos"] > cfg["hessian_N"] or cfg["n_lanczos"] < 2:
        raise ConfigError("phase-retrieval needs 2 <= n_lanczos <= hessian_N.")


def _optimizer(lr, student="spherical"):
    if student == "unconstrained":
        return optax.sgd(lr)
    return optax.chain(optax.sgd(lr), models.sphere_retraction())


def _final(ctx: RunContext, n: int, alpha: float, n_runs: int, cfg: dict):
    """Overlaps at the checks (n_checks, instances, inits) and divergence flags (instances,
    inits) of n_runs runs: n_runs / inits instances, each with `inits` random starts sharing
    its sensing matrix (`models.phase_retrieval_descent`). Instance i's key is
    fold_in(key(final, n, alpha), i), so a run does not depend on how instances are grouped
    into checkpointed tasks."""
    k_init = int(cfg["inits"])
    n_inst = n_runs // k_init
    sph = cfg["student"] == "spherical"

    def one(k):
        kp, kx = jax.random.split(k)
        p = models.PhaseRetrieval.sample(kp, n=n, alpha=alpha)
        x0 = jax.vmap(lambda kk: models.random_student(kk, n))(jax.random.split(kx, k_init))
        out = models.phase_retrieval_descent(
            p, x0, lr=cfg["lr"], n_steps=cfg["n_steps"], spherical=sph, n_checks=cfg["n_checks"]
        )
        bad = out["diverged"]
        return {"overlap": jnp.where(bad[None], 0.0, out["overlap"]), "diverged": bad}

    base = ctx.key("final", n, alpha)
    per_task = max(1, int(cfg["task_runs"]) // k_init)
    tag = "" if sph else "_free"
    # on the CPU one instance at a time (its matmuls use the cores); elsewhere a whole task
    chunk = ensemble.default_chunk_size(per_task, cpu=1)
    parts = []
    for b, start in enumerate(range(0, n_inst, per_task)):
        idx = jnp.arange(start, min(start + per_task, n_inst))
        keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(idx)
        parts.append(
            ctx.task(
                f"final{tag}_N{n}_a{alpha:g}_b{b}",
                lambda keys=keys: ensemble.run(one, keys, chunk_size=chunk),
            )
        )
    return {
        "overlap": np.concatenate([np.asarray(q["overlap"]) for q in parts]).transpose(1, 0, 2),
        "diverged": np.concatenate([np.asarray(q["diverged"]) for q in parts]),
    }


def _trajectory(ctx: RunContext, alpha: float, cfg: dict):
    """lambda_min(t), overlap of its eigenvector with x*, and m(t) along hessian_runs runs."""
    n = int(cfg["hessian_N"])
    steps = cfg["n_steps"]
    times = log_times(steps, cfg["n_records"], first=1)
    k_l = int(cfg["n_lanczos"])
    sph = cfg["student"] == "spherical"

    def one(k):
        kp, kx, kt, kl = jax.random.split(k, 4)
        p = models.PhaseRetrieval.sample(kp, n=n, alpha=alpha)
        x0 = models.random_student(kx, n)
        _, tr = training.train(
            kt,
            x0,
            models.phase_retrieval_grad(p, spherical=sph),
            _optimizer(cfg["lr"], cfg["student"]),
            steps,
            record_at=times,
            record=lambda s: s.params,
        )
        # the start too (step 0): the one time at which the annealed theory is exact
        xs = jnp.concatenate([x0[None], tr["record"]])

        def hess_mode(x):
            g = jax.grad(p.loss)(x)
            lam_r = (x @ g) / (x @ x)
            hv = curvature.hvp(p.loss, x)
            if not sph:  # Euclidean Hessian of the unconstrained student
                res = curvature.lanczos(kl, hv, x, n_iter=k_l)
                v0 = res.eigenvectors[0]
                return res.eigenvalues[0], jnp.abs(v0 @ p.x_star) / jnp.sqrt(jnp.float32(n))

            def riem(v):  # P (H - lam_r) P v on the tangent space, + RADIAL on the normal
                c = (v @ x) / (x @ x)
                v = v - c * x
                w = hv(v) - lam_r * v
                return w - (w @ x) / (x @ x) * x + RADIAL * c * x

            res = curvature.lanczos(kl, riem, x, n_iter=k_l)
            v0 = res.eigenvectors[0]
            return res.eigenvalues[0], jnp.abs(v0 @ p.x_star) / jnp.sqrt(jnp.float32(n))

        # one Lanczos run after the other on CPU, all at once on an accelerator
        chunk = ensemble.default_chunk_size(xs.shape[0], cpu=None)
        lam, ov_vec = jax.lax.map(hess_mode, xs, batch_size=chunk)
        m = jax.vmap(p.overlap)(xs)
        # the projections of every recorded state, for the theory given the projections
        z_star = jnp.broadcast_to(p.a @ p.x_star, (xs.shape[0], p.a.shape[0]))
        proj = jnp.stack([xs @ p.a.T, z_star])
        signed_m = xs @ p.x_star / n
        return {
            "lambda_min": lam,
            "eigvec_overlap": ov_vec,
            "m": m,
            "proj": proj / jnp.sqrt(jnp.float32(n)),
            "signed_m": signed_m,
        }

    keys = jax.random.split(ctx.key("trajectory", alpha), cfg["hessian_runs"])
    tag = "" if sph else "_free"
    out = ctx.task(f"trajectory{tag}_a{alpha:g}", lambda: ensemble.run(one, keys))
    return np.concatenate([[0], np.asarray(times)]), out


def _theory(ctx: RunContext, alpha: float, cfg: dict):
    """Outlier eigenvalue and overlap, and the median lowest bulk eigenvalue at hessian_N, of
    the Riemannian Hessian on the grid m_theory (`theory.phase_retrieval_hessian_*`)."""
    n = int(cfg["hessian_N"])

    def solve():
        out = {"outlier": [], "outlier_overlap": [], "edge": []}
        for m in cfg["m_theory"]:
            o = theory.phase_retrieval_hessian_outlier(alpha=alpha, m=float(m))
            lo, _ = theory.phase_retrieval_hessian_edges(alpha=alpha, m=float(m), n=n)
            out["outlier"].append(o.eigenvalue if o.exists else np.inf)
            out["outlier_overlap"].append(o.overlap if o.exists else 0.0)
            out["edge"].append(lo)
        return {k: np.asarray(v, float) for k, v in out.items()}

    return ctx.task(f"theory_a{alpha:g}_N{n}", solve)


def _crossing(ms, gap):
    """First m at which gap(m) = outlier - edge becomes >= 0 (linear interpolation)."""
    gap = np.where(np.isfinite(gap), gap, 1e3)
    if gap[0] >= 0:
        return float(ms[0])
    for i in range(len(gap) - 1):
        if gap[i] < 0 <= gap[i + 1]:
            return float(ms[i] + (ms[i + 1] - ms[i]) * (-gap[i]) / (gap[i + 1] - gap[i]))
    return np.nan


def _alpha_half(alphas, p):
    """alpha where the success probability first crosses 1/2 (linear interpolation between
    the grid points that were run; NaN entries are skipped)."""
    ok = np.isfinite(p)
    alphas, p = np.asarray(alphas, float)[ok], np.asarray(p, float)[ok]
    for i in range(len(alphas) - 1):
        if p[i] < 0.5 <= p[i + 1]:
            return alphas[i] + (0.5 - p[i]) * (alphas[i + 1] - alphas[i]) / (p[i + 1] - p[i])
    return np.nan


def _fit_log(ns, a_half, err):
    """Weighted least squares alpha_half = a + b log N: (a, b, err_a, err_b, chi2, dof). The
    parameter errors are the covariance (X^T W X)^-1 from the bootstrap errors, scaled by
    chi2/dof when that exceeds 1 (the model does not describe the points within errors)."""
    ok = np.isfinite(a_half) & np.isfinite(err) & (err > 0)
    nan6 = (np.nan,) * 4 + (np.nan, 0)
    if ok.sum() < 2:
        return nan6
    X = np.stack([np.ones(ok.sum()), np.log(np.asarray(ns, float)[ok])], axis=1)
    w = 1.0 / err[ok] ** 2
    cov = np.linalg.inv(X.T @ (X * w[:, None]))
    coef = cov @ (X.T @ (w * a_half[ok]))
    dof = int(ok.sum()) - 2
    chi2 = float(np.sum(w * (a_half[ok] - X @ coef) ** 2))
    if dof > 0 and chi2 / dof > 1:
        cov = cov * chi2 / dof
    return float(coef[0]), float(coef[1]), *np.sqrt(np.diag(cov)), chi2, dof


def _nanmax_abs(x) -> float:
    x = np.abs(np.asarray(x, float))
    return float(np.max(x[np.isfinite(x)])) if np.isfinite(x).any() else float("nan")


def _summary(ds):
    a_half = ds["alpha_half"].values
    out = {
        "alpha_half": {int(n): float(a) for n, a in zip(ds["N"].values, a_half)},
        "alpha_half_err": {
            int(n): float(a) for n, a in zip(ds["N"].values, ds["alpha_half_err"].values)
        },
        "fit_alpha_half_vs_logN": {
            "intercept": float(ds.attrs["fit_intercept"]),
            "intercept_err": float(ds.attrs["fit_intercept_err"]),
            "slope": float(ds.attrs["fit_slope"]),
            "slope_err": float(ds.attrs["fit_slope_err"]),
            "chi2": float(ds.attrs["fit_chi2"]),
            "dof": int(ds.attrs["fit_dof"]),
        },
        "n_runs": {int(n): int(r) for n, r in zip(ds["N"].values, ds["n_runs"].values)},
        "design_effect_max": float(np.nanmax(ds["design_effect"].values)),
        "success_change_last_check": float(
            np.nanmax(np.abs(ds["success_at_check"].isel(check=-1) - ds["success_at_check"]))
        ),
        "diverged_fraction": float(ds["diverged_fraction"].mean()),
        "t_flat": {
            float(a): float(t) for a, t in zip(ds["hessian_alpha"].values, ds["t_flat"].values)
        },
        "m_bbp": {
            float(a): float(t) for a, t in zip(ds["hessian_alpha"].values, ds["m_bbp"].values)
        },
        "t_bbp": {
            float(a): float(t) for a, t in zip(ds["hessian_alpha"].values, ds["t_bbp"].values)
        },
        "lambda_min_gap_given_projections": {
            float(a): _nanmax_abs(
                ds["lambda_min_median"].sel(hessian_alpha=a)
                - ds["lambda_min_given_projections_median"].sel(hessian_alpha=a)
            )
            for a in ds["hessian_alpha"].values
        },
        "lambda_min_start_median": {
            float(a): float(ds["lambda_min_median"].sel(hessian_alpha=a, time=0))
            for a in ds["hessian_alpha"].values
        },
        "lambda_min_start_theory": {
            float(a): float(ds["lambda_min_theory"].sel(hessian_alpha=a, time=0))
            for a in ds["hessian_alpha"].values
        },
        "student": ds.attrs.get("student", "spherical"),
    }
    return out


def _threshold_panel(ax, ds):
    """alpha_half(N) with its bootstrap error and the fit a + b log N."""
    ns = ds["N"].values.astype(float)
    ax.errorbar(ns, ds["alpha_half"], ds["alpha_half_err"], marker="o", ls="", label="alpha_1/2")
    a, b = ds.attrs["fit_intercept"], ds.attrs["fit_slope"]
    if np.isfinite(a) and np.isfinite(b):
        grid = np.geomspace(ns.min(), ns.max(), 50)
        ax.plot(
            grid,
            a + b * np.log(grid),
            "--",
            label=f"{a:.2f}({ds.attrs['fit_intercept_err']:.2f}) + "
            f"{b:.2f}({ds.attrs['fit_slope_err']:.2f}) log N",
        )
    ax.set_xscale("log")
    ax.set(xlabel="N", ylabel="alpha at P(success) = 1/2", title="finite-N threshold")
    ax.legend(fontsize=7)


def _figure(ds):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 4, figsize=(18, 4))
    for n in ds["N"].values:
        s = ds["success"].sel(N=n)
        ok = np.isfinite(s.values)
        ax[0].errorbar(
            ds["alpha"].values[ok],
            s.values[ok],
            ds["success_err"].sel(N=n).values[ok],
            marker="o",
            label=f"N={n} ({int(ds['n_runs'].sel(N=n))} runs)",
        )
    ax[0].axhline(0.5, color="k", lw=0.5)
    ax[0].set(xlabel="alpha = M/N", ylabel="P(success)", title="recovery by GD")
    ax[0].legend(fontsize=7)
    _threshold_panel(ax[3], ds)
    t = ds["time"].values
    for a in ds["hessian_alpha"].values:
        (line,) = ax[1].plot(
            t, ds["lambda_min_median"].sel(hessian_alpha=a), label=f"alpha={a:g}: median lambda_min"
        )
        q = ds["lambda_min_quartiles"].sel(hessian_alpha=a)
        ax[1].fill_between(t, q[0], q[1], color=line.get_color(), alpha=0.2, lw=0)
        ax[1].plot(
            t,
            ds["lambda_min_theory"].sel(hessian_alpha=a),
            ":",
            color=line.get_color(),
            label=f"alpha={a:g}: annealed theory at m(t)",
        )
        if "lambda_min_given_projections_median" in ds:
            ax[1].plot(
                t,
                ds["lambda_min_given_projections_median"].sel(hessian_alpha=a),
                "--",
                color=line.get_color(),
                label=f"alpha={a:g}: theory given the projections",
            )
        if np.isfinite(ds["t_bbp"].sel(hessian_alpha=a)):
            ax[1].axvline(float(ds["t_bbp"].sel(hessian_alpha=a)), color=line.get_color(), lw=0.5)
        ax[2].plot(
            t,
            ds["eigvec_overlap"].sel(hessian_alpha=a).median("run"),
            label=f"alpha={a:g}: |v_min.x*| (median)",
        )
        ax[2].plot(t, ds["m_traj"].sel(hessian_alpha=a).mean("run"), "--", label=f"alpha={a:g}: m")
        ax[2].plot(
            t,
            ds["eigvec_overlap_theory"].sel(hessian_alpha=a),
            ":",
            label=f"alpha={a:g}: annealed theory |v.x*|",
        )
        if "eigvec_overlap_given_projections" in ds:
            ax[2].plot(
                t,
                ds["eigvec_overlap_given_projections"].sel(hessian_alpha=a).median("run"),
                "-.",
                label=f"alpha={a:g}: |v.x*| given the projections",
            )
    for a in (ax[1], ax[2]):
        a.set_xscale("symlog", linthresh=1)  # step 0 (the start) is recorded
        a.set_xlabel("GD step")
        a.legend(fontsize=7)
    ax[1].axhline(0, color="k", lw=0.5)
    ax[1].set(ylabel="lowest Riemannian Hessian eigenvalue")
    ax[2].set(ylabel="overlap")
    fig.tight_layout()
    return fig


@experiment("phase-retrieval", runtime="about 2.5 min (158 CPU-s measured)", params=PARAMS, summary=_summary, figure=_figure)
def phase_retrieval(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """Real phase retrieval: GD success probability vs alpha and N, finite-N threshold vs log N,
    lowest Hessian mode along trajectories."""
    _check(cfg)
    Ns = [int(n) for n in cfg["N"]]
    alphas = [float(a) for a in cfg["alpha"]]
    runs, lo, hi = _per_n(cfg, "n_runs"), _per_n(cfg, "alpha_min"), _per_n(cfg, "alpha_max")
    n_chk = int(cfg["n_checks"])
    shape = (len(Ns), len(alphas))
    succ, err, err_bin, ov_mean, div = (np.full(shape, np.nan) for _ in range(5))
    succ_chk = np.full(shape + (n_chk,), np.nan)
    per_inst = {}  # (i, j) -> per-instance success fractions (for the cluster bootstrap)
    for i, n in enumerate(Ns):
        for j, a in enumerate(alphas):
            if not lo[i] <= a <= hi[i]:
                continue
            r = _final(ctx, n, a, int(runs[i]), cfg)
            ov = np.asarray(r["overlap"])  # (checks, instances, inits)
            hit = ov >= cfg["threshold"]
            s_i = hit[-1].mean(axis=1)
            per_inst[i, j] = s_i
            n_i, n_r = s_i.size, hit[-1].size
            succ[i, j] = s_i.mean()
            succ_chk[i, j] = hit.mean(axis=(1, 2))
            ov_mean[i, j] = ov[-1].mean()
            div[i, j] = np.mean(np.asarray(r["diverged"]))
            p = succ[i, j]
            var_bin = p * (1 - p) / n_r
            var_cl = np.var(s_i, ddof=1) / n_i if n_i > 1 else var_bin * int(cfg["inits"])
            # cluster (per-instance) error, never below the binomial one; floor 1/n at p = 0, 1
            err[i, j] = np.sqrt(max(var_cl, var_bin, 1.0 / n_r**2))
            err_bin[i, j] = np.sqrt(max(var_bin, 1.0 / n_r**2))
    a_half = np.array([_alpha_half(alphas, succ[i]) for i in range(len(Ns))])
    # cluster bootstrap: resample instances (with replacement) at every point independently
    rng = np.random.default_rng([int(ctx.seed), 10])
    boot = np.full((int(cfg["n_boot"]), len(Ns)), np.nan)
    for b in range(boot.shape[0]):
        sb = np.full(shape, np.nan)
        for (i, j), s_i in per_inst.items():
            sb[i, j] = s_i[rng.integers(0, s_i.size, s_i.size)].mean()
        boot[b] = [_alpha_half(alphas, sb[i]) for i in range(len(Ns))]
    a_half_err = np.full(len(Ns), np.nan)
    for i in range(len(Ns)):
        col = boot[:, i][np.isfinite(boot[:, i])]
        # one instance at a point (no spread to resample), or a bootstrap that often loses
        # the crossing (the window misses it): no error bar, and the fit leaves the N out
        single = any(s_i.size < 2 for (ii, _), s_i in per_inst.items() if ii == i)
        if col.size >= 0.9 * boot.shape[0] and col.size > 1 and not single:
            a_half_err[i] = np.std(col, ddof=1)
    intercept, slope, intercept_err, slope_err, chi2, dof = _fit_log(Ns, a_half, a_half_err)

    traj = [_trajectory(ctx, float(a), cfg) for a in cfg["hessian_alpha"]]
    times = traj[0][0]
    lam = np.stack([np.asarray(o["lambda_min"]) for _, o in traj])
    vec = np.stack([np.asarray(o["eigvec_overlap"]) for _, o in traj])
    mt = np.stack([np.asarray(o["m"]) for _, o in traj])
    lam_mean = lam.mean(axis=1)
    # theory given each state's projections (spherical student only)
    lam_cond = np.full(lam.shape, np.nan)
    ov_cond = np.full(lam.shape, np.nan)
    if cfg["student"] == "spherical":
        for i, (_, o) in enumerate(traj):
            proj, sm = np.asarray(o["proj"], float), np.asarray(o["signed_m"], float)
            for r in range(proj.shape[0]):
                for j in range(proj.shape[2]):
                    # at |m| -> 1 the signal direction e_perp is undefined (0/0 in float32):
                    # there only the bulk is predicted (the edge does not depend on m)
                    near = abs(sm[r, j]) >= 0.99
                    c = theory.phase_retrieval_hessian_given_projections(
                        proj[r, 0, j], proj[r, 1, j], m=0.0 if near else float(sm[r, j]),
                        n=int(cfg["hessian_N"]),
                    )
                    lam_cond[i, r, j] = c.edge if near else c.lambda_min
                    ov_cond[i, r, j] = 0.0 if near else c.outlier_overlap
    # lambda_min is heavy-tailed at finite N (its lowest values are single-sample spikes,
    # `theory.phase_retrieval_hessian_edges`): the median is what the theory predicts
    lam_med = np.median(lam, axis=1)
    lam_q = np.percentile(lam, [25, 75], axis=1)
    t_flat = []
    for row in lam_mean:
        idx = np.nonzero(row >= -cfg["flat_tol"])[0]
        t_flat.append(float(times[idx[0]]) if idx.size else np.nan)

    sph = cfg["student"] == "spherical"
    ms = np.asarray(cfg["m_theory"], float)
    h_al = [float(a) for a in cfg["hessian_alpha"]]
    nan_grid = np.full((len(h_al), len(ms)), np.nan)
    th_out, th_ov, th_edge = nan_grid.copy(), nan_grid.copy(), nan_grid.copy()
    m_bbp = np.full(len(h_al), np.nan)
    t_bbp = np.full(len(h_al), np.nan)
    lam_pred = np.full((len(h_al), len(times)), np.nan)
    ov_pred = np.full((len(h_al), len(times)), np.nan)
    if sph:
        m_mean = np.abs(mt).mean(axis=1)
        for i, a in enumerate(h_al):
            th = _theory(ctx, a, cfg)
            th_out[i], th_ov[i], th_edge[i] = th["outlier"], th["outlier_overlap"], th["edge"]
            m_bbp[i] = _crossing(ms, th["outlier"] - th["edge"])
            # beyond the last grid point with an outlier, the lowest mode is the bulk's
            # the theory is even in m and analytic in m^2 near 0: interpolate in m^2
            m2, g2 = m_mean[i] ** 2, ms**2
            fin = np.isfinite(th_out[i])
            out_i = np.full(m2.shape, np.inf)
            ov_i = np.zeros(m2.shape)
            if fin.any():
                ok = m2 <= g2[fin].max()
                out_i[ok] = np.interp(m2[ok], g2[fin], th_out[i][fin])
                ov_i[ok] = np.interp(m2[ok], g2[fin], th_ov[i][fin])
            edge_i = np.interp(m2, g2, th_edge[i])
            lam_pred[i] = np.minimum(out_i, edge_i)
            ov_pred[i] = np.where(out_i < edge_i, ov_i, 0.0)
            hit = np.nonzero(m_mean[i] >= m_bbp[i])[0] if np.isfinite(m_bbp[i]) else []
            t_bbp[i] = float(times[hit[0]]) if len(hit) else np.nan

    one = {"units": "1"}
    ds = xr.Dataset(
        {
            "success": (
                ("N", "alpha"),
                succ,
                {"long_name": "probability final overlap >= threshold", **one},
            ),
            "success_err": (
                ("N", "alpha"),
                err,
                {"long_name": "standard error of success over instances (cluster)", **one},
            ),
            "success_err_binomial": (
                ("N", "alpha"),
                err_bin,
                {"long_name": "binomial standard error of success (runs independent)", **one},
            ),
            "design_effect": (
                ("N", "alpha"),
                (err / err_bin) ** 2,
                {"long_name": "variance inflation from inits sharing an instance", **one},
            ),
            "success_at_check": (
                ("N", "alpha", "check"),
                succ_chk,
                {"long_name": "probability overlap >= threshold at the check step", **one},
            ),
            "n_runs": (
                ("N",),
                np.asarray(runs, int),
                {"long_name": "runs per point (instances x inits)", **one},
            ),
            "alpha_half_err": (
                ("N",),
                a_half_err,
                {"long_name": "cluster-bootstrap standard error of alpha_half", **one},
            ),
            "overlap_mean": (
                ("N", "alpha"),
                ov_mean,
                {"long_name": "mean final overlap |x.x*|/N", **one},
            ),
            "diverged_fraction": (
                ("N", "alpha"),
                div,
                {"long_name": "fraction of runs that diverged", **one},
            ),
            "alpha_half": (
                ("N",),
                a_half,
                {"long_name": "alpha at success probability 1/2", **one},
            ),
            "lambda_min": (
                ("hessian_alpha", "run", "time"),
                lam,
                {"long_name": "lowest Riemannian Hessian eigenvalue", **one},
            ),
            "lambda_min_median": (
                ("hessian_alpha", "time"),
                lam_med,
                {"long_name": "median over runs of the lowest Riemannian Hessian eigenvalue", **one},
            ),
            "lambda_min_quartiles": (
                ("quartile", "hessian_alpha", "time"),
                lam_q,
                {"long_name": "lower and upper quartiles over runs of lambda_min", **one},
            ),
            "lambda_min_given_projections": (
                ("hessian_alpha", "run", "time"),
                lam_cond,
                {
                    "long_name": "lambda_min predicted from the state's projections "
                    "(theory.phase_retrieval_hessian_given_projections)",
                    **one,
                },
            ),
            "lambda_min_given_projections_median": (
                ("hessian_alpha", "time"),
                np.median(lam_cond, axis=1),
                {"long_name": "median over runs of lambda_min_given_projections", **one},
            ),
            "eigvec_overlap_given_projections": (
                ("hessian_alpha", "run", "time"),
                ov_cond,
                {"long_name": "predicted outlier |v.x*| from the state's projections", **one},
            ),
            "eigvec_overlap": (
                ("hessian_alpha", "run", "time"),
                vec,
                {"long_name": "overlap of lowest Hessian eigenvector with x*", **one},
            ),
            "m_traj": (
                ("hessian_alpha", "run", "time"),
                mt,
                {"long_name": "overlap |x.x*|/N along the trajectory", **one},
            ),
            "lambda_outlier_theory": (
                ("hessian_alpha", "m_theory"),
                np.where(np.isfinite(th_out), th_out, np.nan),
                {"long_name": "predicted Riemannian Hessian outlier (nan: none)", **one},
            ),
            "outlier_overlap_theory": (
                ("hessian_alpha", "m_theory"),
                th_ov,
                {"long_name": "predicted |v_out.x*|/|x*| of the outlier eigenvector", **one},
            ),
            "lambda_edge_theory": (
                ("hessian_alpha", "m_theory"),
                th_edge,
                {"long_name": "predicted median lowest bulk eigenvalue at hessian_N", **one},
            ),
            "lambda_min_theory": (
                ("hessian_alpha", "time"),
                lam_pred,
                {"long_name": "predicted lambda_min at the measured mean overlap", **one},
            ),
            "eigvec_overlap_theory": (
                ("hessian_alpha", "time"),
                ov_pred,
                {"long_name": "predicted overlap of the lowest eigenvector with x*", **one},
            ),
            "m_bbp": (
                ("hessian_alpha",),
                m_bbp,
                {"long_name": "overlap at which the outlier meets the bulk edge", **one},
            ),
            "t_bbp": (
                ("hessian_alpha",),
                t_bbp,
                {"long_name": "first step with mean overlap >= m_bbp", "units": "GD steps"},
            ),
            "t_flat": (
                ("hessian_alpha",),
                np.asarray(t_flat),
                {"long_name": "first step with mean lambda_min >= -flat_tol", "units": "GD steps"},
            ),
        },
        coords={
            "N": ("N", np.asarray(Ns), {"long_name": "dimension", **one}),
            "alpha": ("alpha", np.asarray(alphas), {"long_name": "sample ratio M/N", **one}),
            "hessian_alpha": (
                "hessian_alpha",
                np.asarray(cfg["hessian_alpha"], float),
                {"long_name": "sample ratio of the trajectories", **one},
            ),
            "run": ("run", np.arange(cfg["hessian_runs"]), {"long_name": "run index", **one}),
            "quartile": ("quartile", np.array([0.25, 0.75]), {"long_name": "quantile", **one}),
            "check": (
                "check",
                (np.arange(n_chk) + 1) * (int(cfg["n_steps"]) // n_chk),
                {"long_name": "GD step of the check", "units": "GD steps"},
            ),
            "time": ("time", times, {"long_name": "GD step", "units": "GD steps"}),
            "m_theory": ("m_theory", ms, {"long_name": "overlap of the theory grid", **one}),
        },
        attrs={
            "fit_slope": float(slope),
            "fit_intercept": float(intercept),
            "fit_slope_err": float(slope_err),
            "fit_intercept_err": float(intercept_err),
            "fit_chi2": float(chi2),
            "fit_dof": int(dof),
            "inits": int(cfg["inits"]),
            "threshold": cfg["threshold"],
            "student": cfg["student"],
            "theory_applies": int(sph),
            "lr": cfg["lr"],
        },
    )
    return ds
