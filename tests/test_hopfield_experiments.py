"""The associative-memory experiments keep their public contract (names, dims, summary keys)."""

import numpy as np
import pytest

from diffphys import theory
from diffphys.experiments import _core


def test_hopfield_capacity_contract():
    """Reference: the issue's contract: variable `overlap` with dims N, alpha; summary
    alpha_c_theory (AGS 0.138) and alpha_c_sim. At N = 100 a load of 0.02 is retrieved."""
    ds = _core.run("hopfield-capacity", N=[100], alpha=[0.02, 0.3], n_samples=2)
    assert {"N", "alpha"} <= set(ds["overlap"].dims)
    s = _core.get("hopfield-capacity").summary(ds)
    assert abs(s["alpha_c_theory"] - 0.138) < 1e-3 and "alpha_c_sim" in s
    assert np.all(ds["overlap"].sel(alpha=0.02).values > 0.95)


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_exponential_capacity_contract_and_rate():
    """Reference: the issue's contract (summary `alpha` of P_max = exp(alpha N), variable `P_max`
    with dims family, N) and the finite-N signal-to-noise capacity
    (theory.exponential_capacity_snr: Gaussian crosstalk, a fraction `recall` of the patterns
    stable) for the arXiv 2509.06905 model at lam = 0.25, N = 10..22. Measured with 24
    disorder samples x 8 patterns at recall 0.9: each P_max lies within a factor 2 of the
    prediction and the fitted rate within 0.05 of the prediction's slope over the same N
    (0.348; asymptotic alpha_c = 0.380). The tolerance covers the crossing-point noise of 192
    tested patterns per N and the non-Gaussian crosstalk at these small N (seed 1 gives
    P_max = 6.6, 18, 84, 393 against 6.6, 24, 100, 429, and alpha = 0.345)."""
    ds = _core.run(
        "exponential-capacity",
        N=[10, 14, 18, 22],
        family=["exponential_loss"],
        n_samples=24,
        recall=0.9,
        seed=1,
    )
    assert ds["P_max"].dims == ("family", "N")
    s = _core.get("exponential-capacity").summary(ds)
    n = ds["N"].values.astype(float)
    pm = ds["P_max"].sel(family="exponential_loss").values
    snr = theory.exponential_capacity_snr(n, 0.25, 0.9)
    assert np.all(np.abs(np.log(pm / snr)) < np.log(2))
    assert s["alpha_model"] == "exponential_loss"
    assert abs(s["alpha"] - s["alpha_snr_same_N"]) < 0.05


def test_basins_contract_and_theory_radius():
    """Reference: `basins` keeps `retrieval` with dims (family, P, corruption) and stores the
    signal-to-noise basin radius (theory.exponential_basin_radius) beside it; a stored pattern
    of the arXiv 2509.06905 model far below capacity (N = 60, P <= 20) is retrieved exactly
    from 10% corruption in every sample, well inside the predicted radius (0.34 to 0.38)."""
    ds = _core.run(
        "basins",
        family=["exponential_loss"],
        N=60,
        P=[5, 20],
        corruption=[0.0, 0.1],
        n_samples=4,
    )
    assert ds["retrieval"].dims == ("family", "P", "corruption")
    np.testing.assert_array_equal(ds["retrieval"].values, 1.0)
    th = ds["basin_radius_theory"].sel(family="exponential_loss").values
    np.testing.assert_allclose(th, theory.exponential_basin_radius(60, [5, 20], 0.25))
    assert np.all((th > 0.3) & (th < 0.4))
    s = _core.get("basins").summary(ds)
    assert set(s["basin_radius_theory_exponential_loss"]) == {5, 20}
