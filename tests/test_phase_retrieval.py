"""Phase retrieval (models.PhaseRetrieval), Riemannian GD through `training.train`, and
`training.gradient_flow`."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg

from diffphys import ConfigError, curvature, ensemble, models, training


@pytest.fixture(scope="module")
def small():
    return models.PhaseRetrieval.sample(jax.random.key(3), n=12, alpha=3.0)


def test_sample_and_normalisation(small):
    """Reference: the definitions (M = round(alpha N), |x*|^2 = N, y = (a.x*)^2/N, L(x*) = 0)."""
    p = small
    assert p.a.shape == (36, 12) and p.alpha == 3.0
    np.testing.assert_allclose(float(p.x_star @ p.x_star), 12.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(p.y), np.asarray((p.a @ p.x_star) ** 2 / 12), rtol=1e-5)
    assert float(p.loss(p.x_star)) < 1e-10
    np.testing.assert_allclose(float(p.overlap(-p.x_star)), 1.0, rtol=1e-6)


def test_hessian_formula_matches_autodiff(small, key):
    """Reference: `jax.hessian` of the loss vs the closed form (1/M) sum w a a^T, and the
    Lanczos extreme pairs of the Riemannian Hessian vs dense eigh restricted to the tangent
    space."""
    p = small
    x = models.random_student(key, 12)
    H_ad = curvature.dense_hessian(p.loss, x)
    np.testing.assert_allclose(np.asarray(p.hessian(x)), np.asarray(H_ad), rtol=2e-4, atol=2e-4)
    R = np.asarray(p.riemannian_hessian(x), np.float64)
    lam = np.linalg.eigvalsh(R)
    assert np.min(np.abs(lam)) < 1e-4  # the radial direction
    res = curvature.lanczos(key, curvature.hvp(p.loss, x), x, n_iter=12)
    np.testing.assert_allclose(
        np.asarray(res.eigenvalues), np.linalg.eigvalsh(np.asarray(H_ad)), rtol=1e-3, atol=1e-3
    )


def test_gd_recovers_signal_at_large_alpha_not_at_small():
    """Reference: Sarao Mannelli et al. (arXiv 2006.06997): Riemannian GD from a random start
    recovers x* for alpha well above the algorithmic threshold (~ 13.8 as N -> infinity, lower
    at finite N, Bonnaire et al. 2403.02418), and cannot for alpha < 1 (fewer equations than
    unknowns: the global minima are not x*). N = 64, 16 seeds each; alpha = 20 must succeed in
    >= 15/16 runs (overlap > 0.95), alpha = 0.5 in none. One vmapped `ensemble.run` call."""
    n, steps = 64, 600

    def one(k, alpha_idx):
        kp, kx = jax.random.split(k)
        p20 = models.PhaseRetrieval.sample(kp, n=n, alpha=20.0)
        p05 = models.PhaseRetrieval.sample(kp, n=n, alpha=0.5)
        x0 = models.random_student(kx, n)
        out = []
        for p in (p20, p05):
            opt = optax.chain(optax.sgd(0.05), models.sphere_retraction())
            st, _ = training.train(k, x0, models.phase_retrieval_grad(p), opt, steps, every=steps)
            out.append(p.overlap(st.params))
        return jnp.stack(out)

    ov = np.asarray(ensemble.run(one, jax.random.split(jax.random.key(0), 16), jnp.arange(16)))
    assert np.sum(ov[:, 0] > 0.95) >= 15, ov[:, 0]
    assert np.all(ov[:, 1] < 0.95), ov[:, 1]


@pytest.mark.parametrize("spherical", [True, False])
def test_batched_descent_matches_optax_training(spherical):
    """Reference: an independent implementation of the same iteration, `training.train` with
    the autodiff gradient `phase_retrieval_grad` and `optax.sgd` (+ `sphere_retraction`), run
    start by start; `phase_retrieval_descent` (closed-form gradient, K starts by matmul) must
    give the same students after 120 steps (float32: |dx_i| < 1e-3), the same overlaps
    at the two checks, and no divergence."""
    n, steps, k = 20, 120, 3
    p = models.PhaseRetrieval.sample(jax.random.key(5), n=n, alpha=6.0)
    x0 = jax.vmap(lambda kk: models.random_student(kk, n))(jax.random.split(jax.random.key(6), k))
    out = models.phase_retrieval_descent(
        p, x0, lr=0.05, n_steps=steps, spherical=spherical, n_checks=2
    )
    opt = optax.chain(optax.sgd(0.05), models.sphere_retraction()) if spherical else optax.sgd(0.05)
    grad = models.phase_retrieval_grad(p, spherical=spherical)

    def ref(x):
        st, tr = training.train(
            jax.random.key(0), x, grad, opt, steps, record_at=[60, 120], record=lambda s: s.params
        )
        return st.params, jax.vmap(p.overlap)(tr["record"])

    x_ref, ov_ref = jax.jit(jax.vmap(ref))(x0)
    np.testing.assert_allclose(np.asarray(out["x"]), np.asarray(x_ref), atol=1e-3)
    np.testing.assert_allclose(np.asarray(out["overlap"]), np.asarray(ov_ref).T, atol=2e-5)
    assert not np.any(np.asarray(out["diverged"]))
    one = models.phase_retrieval_descent(p, x0[0], lr=0.05, n_steps=steps, spherical=spherical)
    np.testing.assert_allclose(np.asarray(one["x"]), np.asarray(out["x"][0]), atol=1e-5)


def test_bad_input_and_divergence_flag(small):
    with pytest.raises(ConfigError, match="n >= 2"):
        models.PhaseRetrieval.sample(jax.random.key(0), n=1, alpha=2.0)
    with pytest.raises(ConfigError, match="alpha"):
        models.PhaseRetrieval.sample(jax.random.key(0), n=10, alpha=0.0)
    with pytest.raises(ConfigError, match="alpha"):
        models.PhaseRetrieval.sample(jax.random.key(0), n=10, alpha=-1.0)
    # unconstrained GD with a learning rate far beyond 2/lambda_max blows up: flagged
    x0 = models.random_student(jax.random.key(1), 12)
    _, tr = training.train(
        jax.random.key(0),
        x0,
        models.phase_retrieval_grad(small, spherical=False),
        optax.sgd(50.0),
        40,
        every=1,
    )
    assert float(np.max(tr["metrics"]["diverged"])) == 1.0
    x2 = jnp.stack([x0, x0])
    out = models.phase_retrieval_descent(small, x2, lr=50.0, n_steps=40, spherical=False)
    assert np.all(np.asarray(out["diverged"]))
    with pytest.raises(ConfigError, match="divisible"):
        models.phase_retrieval_descent(small, x2, lr=0.1, n_steps=10, n_checks=3)
    with pytest.raises(ConfigError, match="shape"):
        models.phase_retrieval_descent(small, x2[:, :5], lr=0.1, n_steps=10)


def test_gradient_flow_quadratic_exact():
    """Reference: x(t) = expm(-H t) x0 for L = x^T H x / 2 (scipy.linalg.expm), at 4 times,
    relative error < 1e-4 (Tsit5, rtol 1e-6)."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    H = (A @ A.T / 6 + 0.1 * np.eye(6)).astype(np.float32)
    x0 = rng.normal(size=6).astype(np.float32)
    times = np.array([0.0, 0.5, 2.0, 5.0])
    Hj = jnp.asarray(H)
    out = training.gradient_flow(
        lambda x: 0.5 * x @ Hj @ x, jnp.asarray(x0), times, rtol=1e-6, atol=1e-8
    )
    assert not bool(out["diverged"])
    for i, t in enumerate(times):
        exact = scipy.linalg.expm(-H.astype(np.float64) * t) @ x0
        np.testing.assert_allclose(
            np.asarray(out["record"][i]), exact, rtol=1e-4, atol=1e-4 * np.linalg.norm(x0)
        )
    with pytest.raises(ConfigError, match="increasing"):
        training.gradient_flow(lambda x: x @ x, jnp.ones(2), [1.0, 0.5])


def test_phase_retrieval_experiment_contract():
    """Reference: issue 10's contract (success vs N x alpha with binomial errors, alpha_half,
    the Hessian's lowest mode along trajectories, CF attrs on every variable and coordinate),
    and two exact facts at tiny size: alpha = 0.5 < 1 never recovers the signal; at alpha = 24
    on the sphere GD ends at x* (success probability >= 0.9 over 16 runs) where the Riemannian
    Hessian is positive semi-definite (lambda_min >= -1e-3 at the last time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffphys.experiments import _core

    ds = _core.run(
        "phase-retrieval",
        N=[16],
        alpha=[0.5, 24.0],
        n_runs=16,
        n_steps=250,
        hessian_N=16,
        hessian_alpha=[24.0],
        hessian_runs=2,
        n_records=5,
        n_lanczos=16,
        m_theory=[0.0, 0.5],
    )
    assert ds["success"].dims == ("N", "alpha")
    # theory beside the simulation: at alpha = 24, m = 0 the predicted outlier lies below the
    # predicted bulk edge (a downward informative direction); the predicted lambda_min at the
    # first record (m ~ 0) is negative, as is the measured one
    out0 = float(ds["lambda_outlier_theory"].sel(hessian_alpha=24.0, m_theory=0.0))
    assert out0 < float(ds["lambda_edge_theory"].sel(hessian_alpha=24.0, m_theory=0.0)) < 0
    assert ds["lambda_min_theory"].isel(time=0).values.max() < 0
    assert ds["lambda_min"].isel(time=0).values.mean() < 0
    assert ds.attrs["theory_applies"] == 1
    assert ds["lambda_min"].dims == ("hessian_alpha", "run", "time")
    assert ds["time"].values[0] == 0 and ds["lambda_min_median"].dims == ("hessian_alpha", "time")
    assert np.all(np.isfinite(ds["lambda_min_given_projections"].values))
    for name in list(ds.data_vars) + list(ds.coords):
        assert "long_name" in ds[name].attrs and "units" in ds[name].attrs, name
    assert np.all(ds["success"].sel(alpha=0.5).values == 0)
    # cluster error (2 instances x 8 starts) never below the binomial one; bookkeeping
    assert np.all(ds["success_err"].values >= ds["success_err_binomial"].values)
    assert int(ds["n_runs"].sel(N=16)) == 16 and ds.attrs["inits"] == 8
    assert list(ds["check"].values) == [125, 250]
    assert np.all(ds["success"].sel(alpha=24.0).values >= 0.9)
    assert np.all(ds["diverged_fraction"].values == 0)
    assert np.all(ds["lambda_min"].isel(time=-1).values >= -1e-3)
    exp = _core.get("phase-retrieval")
    s = exp.summary(ds)
    assert set(s) >= {
        "alpha_half",
        "fit_alpha_half_vs_logN",
        "t_flat",
        "diverged_fraction",
        "m_bbp",
        "t_bbp",
        "lambda_min_start_median",
        "lambda_min_start_theory",
        "lambda_min_gap_given_projections",
    }
    plt.close(exp.figure(ds))
    with pytest.raises(ConfigError, match="alpha"):
        _core.run("phase-retrieval", alpha=[0.0, 2.0])
    with pytest.raises(ConfigError, match="N must be >= 2"):
        _core.run("phase-retrieval", N=[1])


def test_phase_retrieval_experiment_unconstrained_student():
    """Reference: the unconstrained student (plain GD on R^N, `student="unconstrained"`) has
    the same global minima +-x* (L = 0): at alpha = 24 it recovers the signal (normalised
    overlap >= 0.9 in >= 7/8 runs); its Euclidean Hessian at the end is positive
    semi-definite (a minimum); the sphere-only theory is flagged as not applying."""
    from diffphys.experiments import _core

    ds = _core.run(
        "phase-retrieval",
        N=[16],
        alpha=[24.0],
        n_runs=8,
        n_steps=250,
        hessian_N=16,
        hessian_alpha=[24.0],
        hessian_runs=1,
        n_records=3,
        n_lanczos=16,
        student="unconstrained",
    )
    assert ds.attrs["student"] == "unconstrained" and ds.attrs["theory_applies"] == 0
    assert np.all(ds["success"].sel(alpha=24.0).values >= 7 / 8)
    assert np.all(ds["diverged_fraction"].values == 0)
    assert np.all(ds["lambda_min"].isel(time=-1).values >= -1e-3)
    with pytest.raises(ConfigError, match="student"):
        _core.run("phase-retrieval", student="free")


def test_threshold_fit_matches_numpy_weighted_polyfit():
    """Reference: `numpy.polyfit(log N, alpha_half, 1, w=1/err, cov="unscaled")` (an
    independent weighted least-squares solver) for the fit alpha_half = a + b log N and its
    parameter errors; an exact line is recovered with chi2 = 0; too few points give NaN."""
    from diffphys.experiments.phase_retrieval import _alpha_half, _fit_log

    ns = np.array([64, 128, 256, 512, 1024])
    rng = np.random.default_rng(0)
    err = np.array([0.05, 0.04, 0.06, 0.1, 0.2])
    y = 1.0 + 0.8 * np.log(ns) + err * rng.normal(size=5)
    a, b, ea, eb, chi2, dof = _fit_log(ns, y, err)
    coef, cov = np.polyfit(np.log(ns), y, 1, w=1 / err, cov="unscaled")
    scale = max(1.0, chi2 / dof)
    np.testing.assert_allclose([b, a], coef, rtol=1e-10)
    np.testing.assert_allclose([eb, ea], np.sqrt(np.diag(cov) * scale), rtol=1e-8)
    line = _fit_log(ns, 2.0 + 0.5 * np.log(ns), err)
    np.testing.assert_allclose(line[:2], [2.0, 0.5], rtol=1e-10)
    assert line[4] < 1e-20 and line[5] == 3
    assert np.isnan(_fit_log(ns[:1], y[:1], err[:1])[0])
    # the crossing skips grid points that were not run (NaN)
    assert _alpha_half([3.0, 4.0, 5.0, 6.0], np.array([np.nan, 0.2, 0.6, np.nan])) == 4.75
