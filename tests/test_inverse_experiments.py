"""Contract test of the `inverse-ising` experiment at a tiny size."""

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from diffphys.experiments import _core  # noqa: E402


def test_inverse_ising_contract():
    """Reference: issue 11's contract (`coupling_error` with dims beta, M, method, theory beside
    it, CF attrs, slopes in the summary), and two exact facts about the planted model
    (enumerated): every consistent estimator (ML, PL, MPF) fitted to the exact moments recovers
    the couplings (M -> infinity error < 1e-3, i.e. < 2% of the planted coupling scale
    beta/sqrt(N)), while naive mean field keeps a bias at beta = 1.2; and exact ML's error
    falls with M: from M = 200 to 3200 (16x), the Cramér–Rao law predicts a ratio of 4, and
    with 2 data sets of 10 pairs the ratio is asserted > 2 (saturation would give ~1)."""
    ds = _core.run(
        "inverse-ising", N=5, beta=[1.2], M=[200, 3200], n_datasets=2, n_steps=400,
        learning_rate=0.1, instances=["sk"],
    )
    assert ds["coupling_error"].dims == ("beta", "M", "method")
    assert set(ds["method"].values) == {
        "exact", "pseudolikelihood", "mpf", "nmf", "tap", "sessak_monasson"
    }
    for name in ds.variables:
        assert {"long_name", "units"} <= set(ds[name].attrs), name
    for name in ds.data_vars:
        assert np.all(np.isfinite(ds[name].values)), name
    # the NaN flags beside the errors (all finite at this size)
    assert float(ds["finite_fraction"].min()) == 1.0
    assert float(ds["converged_infinite_M"].min()) == 1.0
    err = ds["coupling_error"].sel(beta=1.2)
    ml = err.sel({"method": "exact"}).values
    assert ml[0] / ml[1] > 2.0, ml
    lim = ds["coupling_error_infinite_M"].sel(beta=1.2)
    for m in ("exact", "pseudolikelihood", "mpf"):
        assert float(lim.sel({"method": m})) < 1e-3, m
    assert float(lim.sel({"method": "nmf"})) > 1e-2
    exp = _core.get("inverse-ising")
    s = exp.summary(ds)
    assert set(s["slopes"]["beta=1.2"]) == set(ds["method"].values)
    plt.close(exp.figure(ds))


def _t_matching_energy_l8(u_target):
    """Temperature at which the exact energy per site of the periodic 8 x 8 lattice (transfer
    matrix, `ising_transfer_log_partition`) equals `u_target` (bisection; u rises with T)."""
    import jax
    import jax.numpy as jnp

    from diffphys import exact, models

    m = models.Ising((8, 8))
    energy = jax.jit(jax.grad(lambda b: -exact.ising_transfer_log_partition(m, b) / 64))
    lo, hi = 2.5, 3.5
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if float(energy(jnp.float32(1.0 / mid))) < u_target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@pytest.mark.slow  # CI budget: ~25 s under load
def test_fit_to_observables_contract():
    """Reference: the exact energy of the periodic 8 x 8 lattice (transfer matrix). The target
    is Onsager's infinite-lattice energy at T* = 3; the L = 8 lattice has that energy at
    T_8 ~ 3.05 (a finite-size shift), which is what the fit must find: within 5 standard errors
    (over 4 seeds) + 0.01 of T_8. A sign error in the fluctuation gradient would run away;
    no gradient would stay at T_init = 2.4; fitting the infinite lattice would give 3.0.
    The 3D half at a small size: the planted coupling beta J* = 0.18 is recovered from chi."""
    from diffphys import theory

    ds = _core.run(
        "fit-to-observables", L=8, T_target=[3.0], n_chains=16, n_sweeps=2, n_iter=200,
        learning_rate=0.005, n_seeds=6, L3=4, K_target=[0.18], n_target_sweeps=200,
    )
    assert ds["T_trajectory"].dims == ("T_target", "step")
    for name in ds.variables:
        assert {"long_name", "units"} <= set(ds[name].attrs), name
    for name in ds.data_vars:
        assert np.all(np.isfinite(ds[name].values)), name
    t8 = _t_matching_energy_l8(float(theory.onsager_energy(np.asarray(3.0))))
    assert 3.02 < t8 < 3.08, t8
    t, e = float(ds["T_fit"][0]), float(ds["T_fit_err"][0])
    assert abs(t - t8) < 5 * e + 0.01, (t, e, t8)
    # 3D half: the planted beta J* = 0.18 (4^3 lattice) within 4 standard errors over seeds
    k, ke = float(ds["K_fit"][0]), float(ds["K_fit_err"][0])
    assert ke < 0.004 and abs(k - 0.18) < 4 * ke, (k, ke)
    exp = _core.get("fit-to-observables")
    s = exp.summary(ds)
    assert set(s) >= {"T_fit", "T_fit_err", "z", "K_fit", "K_fit_err", "K_z"}
    plt.close(exp.figure(ds))
