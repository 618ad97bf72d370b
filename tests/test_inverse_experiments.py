"""Contract test of the `inverse-ising` experiment at a tiny size."""

import matplotlib

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
        learning_rate=0.1,
    )
    assert ds["coupling_error"].dims == ("beta", "M", "method")
    assert set(ds["method"].values) == {
        "exact", "pseudolikelihood", "mpf", "nmf", "tap", "sessak_monasson"
    }
    for name in ds.variables:
        assert {"long_name", "units"} <= set(ds[name].attrs), name
    for name in ds.data_vars:
        assert np.all(np.isfinite(ds[name].values)), name
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


def test_fit_to_observables_contract():
    """Reference: Onsager's exact energy per site (infinite lattice; at T = 3, xi ~ 1, the L = 8
    correction is far below the error bar). The temperature fitted to the energy of T* = 3,
    from T_init = 2.4, is within 5 standard errors (over 3 seeds) + 0.01 of T* (a sign error
    in the fluctuation gradient would run away from T*; no gradient would stay at 2.4)."""
    ds = _core.run(
        "fit-to-observables", L=8, T_target=[3.0], n_chains=16, n_sweeps=2, n_iter=200,
        learning_rate=0.02, n_seeds=3,
    )
    assert ds["T_trajectory"].dims == ("T_target", "step")
    for name in ds.variables:
        assert {"long_name", "units"} <= set(ds[name].attrs), name
    for name in ds.data_vars:
        assert np.all(np.isfinite(ds[name].values)), name
    t, e = float(ds["T_fit"][0]), float(ds["T_fit_err"][0])
    assert abs(t - 3.0) < 5 * e + 0.01, (t, e)
    exp = _core.get("fit-to-observables")
    s = exp.summary(ds)
    assert set(s) >= {"T_fit", "T_fit_err", "z"}
    plt.close(exp.figure(ds))
