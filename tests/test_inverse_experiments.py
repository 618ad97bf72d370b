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
