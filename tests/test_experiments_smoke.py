"""Small-size contract tests for the experiments no other test runs.

Each test runs one experiment through `_core.run` at a tiny size (fixed seed 0, the default),
checks the public contract of its issue (variable names, dims, `summary.json` keys), that the
values that must be finite are, that the summary is computed and the figure built, and, where
a cheap one exists, an exact or theoretical result with a tolerance wide enough for the tiny
size. Already covered elsewhere: spherical-bm-ensembles (test_spherical_bm.py),
exponential-capacity and basins (test_hopfield_experiments.py).
"""

import matplotlib

matplotlib.use("Agg")

import jax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diffphys.experiments import _core  # noqa: E402


def _summary_and_figure(name, ds):
    exp = _core.get(name)
    s = exp.summary(ds)
    assert isinstance(s, dict) and s
    fig = exp.figure(ds)
    assert fig is not None
    plt.close(fig)
    return s


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_sk_parallel_tempering_contract():
    """Reference: issue 3's contract (`energy_per_spin`, `binder_q`, `p_q` with dims N, T, q),
    and the exact paramagnetic SK energy -beta/2 for T > T_c = 1 (finite-N corrections are
    O(1/N): within 6 standard errors over disorder + 0.05 at N = 16); P(q) is a density; and
    the equilibrium identity [<E>]/N = -(beta/2)(1 - [<q^2>]) (Gaussian integration by parts,
    exact at every N) within 6 standard errors of the paired difference.
    One size only: every N is a separate compilation (~5 s each on this CPU)."""
    ds = _core.run(
        "sk-parallel-tempering",
        N=[16],
        T_min=0.5,
        T_max=2.0,
        n_T=4,
        n_disorder=4,
        n_equil=100,
        n_measure=200,
        measure_every=2,
        disorder_per_task=4,
        chunk_size=4,
        n_q_bins=9,
    )
    assert ds["energy_per_spin"].dims == ("N", "T")
    assert ds["binder_q"].dims == ("N", "T")
    assert ds["p_q"].dims == ("N", "T", "q")
    for v in ("energy_per_spin", "energy_per_spin_err", "binder_q", "p_q", "energy_rs"):
        assert np.all(np.isfinite(ds[v].values)), v
    dq = float(ds["q"][1] - ds["q"][0])
    np.testing.assert_allclose(ds["p_q"].sum("q").values * dq, 1.0, rtol=1e-5)
    hot = ds["T"].values > 1.2
    e = ds["energy_per_spin"].sel(N=16).values[hot]
    err = ds["energy_per_spin_err"].sel(N=16).values[hot]
    para = -0.5 / ds["T"].values[hot]
    assert np.all(np.abs(e - para) < 6 * err + 0.05), (e, para, err)
    z = np.abs(ds["energy_per_spin"] - ds["energy_from_q2"]) / ds["energy_from_q2_err"]
    assert float(z.max()) < 6, z.values
    s = _summary_and_figure("sk-parallel-tempering", ds)
    assert {"binder_crossing_T", "min_swap_rate", "energy_per_spin_at_T_min"} <= set(s)


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_sk_ground_state_contract():
    """Reference: issue 3's contract (`energy_per_spin` vs N, `summary.json` has `e_inf` and
    its error). At N = 8..16 PT finds the exact ground states; the e_N lie between the
    Parisi value -0.763 and the finite-N range above it (-0.55), and the fitted e_inf is
    finite (its value at these sizes is not a test of the Parisi energy)."""
    ds = _core.run(
        "sk-ground-state",
        N=[8, 16],
        n_disorder=[4, 4],
        n_sweeps=[30, 30],
        n_T=[4, 4],
        chunk_size=4,
        fit_N_max=16,
    )
    assert ds["energy_per_spin"].dims == ("N",)
    assert ds["energy_samples"].dims == ("N", "disorder")
    e = ds["energy_per_spin"].values
    assert np.all(np.isfinite(e))
    assert np.all((e > -1.0) & (e < -0.4)), e
    s = _summary_and_figure("sk-ground-state", ds)
    assert {"e_inf", "e_inf_err", "e_N", "found_twice"} <= set(s)
    assert np.isfinite(s["e_inf"]) and np.isfinite(s["e_inf_err"]) and s["e_inf_err"] > 0


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_nonreciprocal_spin_glass_contract():
    """Reference: issue 3's contract (C(t, t_w) in each phase from simulation and DMFT;
    `summary.json` has the measured and predicted transition). The predicted T_c of the
    kappa = 0 model is 1 for every alpha; C_aa(t_w, t_w) = 1 (spherical constraint); the DMFT
    matches the exact p = 2 eigenmode solution within 0.1 at dmft_dt = 0.25; and at N = 64 the
    simulated phase (sign of the discriminant) matches the exact one at alpha = 0.5 (static)
    and 2.0 (oscillating), far from the exceptional point."""
    ds = _core.run(
        "nonreciprocal-spin-glass",
        prl_T=[0.4, 1.6],
        prl_t_w=2.0,
        prl_t_max=4.0,
        prl_dt=0.05,
        prl_N=64,
        alpha=[0.5, 2.0],
        t_w=2.0,
        t_max=4.0,
        dt=0.05,
        N=64,
        n_samples=2,
        dmft_dt=0.25,
        theory_dt=0.1,
        n_lambda=50,
    )
    assert ds["correlation"].dims == ("alpha", "tau", "a", "b")
    assert ds["correlation_prl"].dims == ("T_prl", "tau_prl", "a", "b")
    for v in (
        "correlation",
        "correlation_theory",
        "correlation_dmft",
        "correlation_prl",
        "correlation_prl_dmft",
        "discriminant",
        "discriminant_theory",
    ):
        assert np.all(np.isfinite(ds[v].values)), v
    s = _summary_and_figure("nonreciprocal-spin-glass", ds)
    for k in (
        "T_c_predicted",
        "T_c_bracket_measured",
        "alpha_c_measured",
        "alpha_c_predicted",
        "alpha_c_dmft",
    ):
        assert k in s, k
    assert abs(s["T_c_predicted"] - 1.0) < 1e-6
    # the spherical constraint |s_a|^2 = N: C_aa(t_w, t_w) = 1 up to float32 rounding
    c0 = ds["correlation"].isel(tau=0)
    np.testing.assert_allclose(c0.sel(a=1, b=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(c0.sel(a=2, b=2), 1.0, atol=1e-4)
    # DMFT (dt = 0.25) against the exact p = 2 mode solution: O(dt) discretisation error
    assert s["max_abs_C_deviation_dmft_exact"] < 0.1, s
    # alpha = 0.5 and 2.0 lie far on either side of the predicted exceptional point (~0.94)
    assert s["phase_predicted"] == {0.5: "static", 2.0: "oscillating"}, s
    assert s["phase_measured"] == s["phase_predicted"], s


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_dense_capacity_contract():
    """Reference: issue 4's contract (`summary.json` has `exponent_p3`, `exponent_p4`), and the
    capacity of dense memories growing with N (Krotov–Hopfield: P_max ~ N^(p-1)): the fitted
    exponents are positive."""
    ds = _core.run(
        "dense-capacity",
        p=[3, 4],
        N_p3=[20, 40],
        N_p4=[16, 24],
        n_grid=6,
        n_samples=4,
        n_test=4,
    )
    assert ds["P_max"].dims == ("p", "N_index")
    assert ds["fraction"].dims == ("p", "N_index", "grid_index")
    s = _summary_and_figure("dense-capacity", ds)
    for p in (3, 4):
        assert np.isfinite(s[f"exponent_p{p}"]), s
        assert s[f"exponent_p{p}"] > 0, s


def test_diffusion_speciation_contract():
    """Reference: issue 6's contract (`phi` with dims d, t; `summary.json` has `t_S_measured`,
    `t_S_theory`); phi is a probability, 1 at t -> 0 and near chance (1/2) at large t, and
    follows the exact two-Gaussian clone probability of arXiv 2402.18491 within 0.15."""
    ds = _core.run(
        "diffusion-speciation",
        d=[8],
        t=[0.25, 1.0, 2.0, 4.0],
        n_samples=200,
        T=5.0,
        dt=0.05,
        digits=False,
    )
    assert ds["phi"].dims == ("d", "t")
    assert ds["phi_theory"].dims == ("d", "t")
    phi = ds["phi"].values
    assert np.all((phi >= 0) & (phi <= 1))
    assert phi[0, 0] > 0.8 and phi[0, -1] < 0.8, phi
    # 200 clone pairs: binomial standard error <= 0.035, plus the dt = 0.05 Euler bias
    assert np.max(np.abs(phi - ds["phi_theory"].values)) < 0.15
    s = _summary_and_figure("diffusion-speciation", ds)
    assert {"t_S_measured", "t_S_theory"} <= set(s)
    assert np.all(np.isfinite(s["t_S_theory"]))


def test_diffusion_collapse_contract():
    """Reference: issue 6's contract (excess entropy and collapsed fraction vs t, n and d;
    measured and predicted collapse time); all samples collapse at t -> 0 and none at large
    t, and the measured collapse time is within a factor 2 of the Gaussian-data prediction
    (n = 25 points in d = 8)."""
    ds = _core.run(
        "diffusion-collapse",
        alpha=[0.4],
        d=[8],
        t=[0.01, 0.1, 0.5, 3.0],
        n_samples=100,
    )
    for v in ("f_e", "collapsed", "f_theory"):
        assert ds[v].dims == ("alpha", "d", "t"), v
        assert np.all(np.isfinite(ds[v].values)), v
    assert ds["t_C_theory"].dims == ("alpha", "d")
    c = ds["collapsed"].values[0, 0]
    assert c[0] > 0.9 and c[-1] < 0.1, c
    # on this coarse t grid the interpolated crossing is only good to a factor ~2
    tc, tc_th = float(ds["t_C_measured"][0, 0]), float(ds["t_C_theory"][0, 0])
    assert 0.5 * tc_th < tc < 2 * tc_th, (tc, tc_th)
    s = _summary_and_figure("diffusion-collapse", ds)
    row = s["collapse"][0]
    assert {"t_C_theory", "t_C_measured", "n", "d", "alpha"} <= set(row)


def test_kde_regimes_contract():
    """Reference: issue 6's contract (KDE statistics vs bandwidth h with the regime boundaries
    of arXiv 2408.05807); the participation ratio is in (0, 1] and decreases with h, and above
    h_CLT the mean (1/d) log rho_h follows the paper's law of large numbers within 0.05."""
    ds = _core.run("kde-regimes", d=[6, 8], h=[0.2, 0.8, 2.0], n_query=50)
    for v in ("log_rho_mean", "participation_ratio", "max_weight", "log_ratio_std"):
        assert ds[v].dims == ("d", "h"), v
        assert np.all(np.isfinite(ds[v].values)), v
    y2 = ds["participation_ratio"].values
    assert np.all((y2 > 0) & (y2 <= 1 + 1e-6))
    assert np.all(np.diff(y2, axis=1) < 0), y2
    s = _summary_and_figure("kde-regimes", ds)
    assert {"h_G_theory", "h_CLT_theory"} <= set(s)
    assert s["h_G_theory"] < s["h_CLT_theory"]
    assert s["max_abs_log_rho_minus_theory_above_h_CLT"] < 0.05, s


def test_entropy_production_contract():
    """Reference: issue 6's contract (learned-score entropy production against the exact value
    for linear processes and an active-particle system). The exact-score estimate of the
    linear process agrees with its exact rate (a Monte Carlo average over 2000 stationary
    samples: within 25% + 0.05), the equilibrium process (omega = 0) has zero rate, and the
    path (stochastic-thermodynamics) estimate of the active particles at epsilon = 0 agrees
    with their exact linear rate within 5 standard errors + 0.1. Compilation dominates
    (~140 small compilations, ~9 s on this CPU whatever the size)."""
    # optax.adam's bias correction mixes a float with an int32 step count, which strict
    # promotion rejects (the same guard as test_diffusion.py / test_entropy_production.py)
    with jax.numpy_dtype_promotion("standard"):
        ds = _core.run(
            "entropy-production",
            omega=[0.0, 2.0],
            tau=[1.0],
            epsilon=[0.0],
            n_samples=2000,
            n_walkers=200,
            dt=1e-2,
            t_relax=0.5,
            t_measure=0.5,
            train_steps=50,
            batch_size=64,
            width=16,
        )
    assert ds["sigma_linear_learned"].dims == ("omega",)
    assert ds["sigma_active_learned"].dims == ("tau", "epsilon")
    for v in ("sigma_linear_learned", "sigma_linear_exact", "sigma_active_learned"):
        assert np.all(np.isfinite(ds[v].values)), v
    exact = ds["sigma_linear_exact"].values
    assert exact[0] == 0 and exact[1] > 0
    est = ds["sigma_linear_exact_score"].values
    assert abs(est[1] - exact[1]) < 0.25 * exact[1] + 0.05, (est, exact)
    path = float(ds["sigma_active_path"].values[0, 0])
    path_err = float(ds["sigma_active_path_err"].values[0, 0])
    active_exact = float(ds["sigma_active_exact"].values[0, 0])
    assert abs(path - active_exact) < 5 * path_err + 0.1, (path, path_err, active_exact)
    s = _summary_and_figure("entropy-production", ds)
    assert {"linear_max_rel_error", "active_learned", "active_exact"} <= set(s)
