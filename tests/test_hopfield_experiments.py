"""The associative-memory experiments keep their public contract (names, dims, summary keys)."""

import numpy as np

from diffphys.experiments import _core


def test_hopfield_capacity_contract():
    """Reference: the issue's contract: variable `overlap` with dims N, alpha; summary
    alpha_c_theory (AGS 0.138) and alpha_c_sim. At N = 100 a load of 0.02 is retrieved."""
    ds = _core.run("hopfield-capacity", N=[100], alpha=[0.02, 0.3], n_samples=2)
    assert {"N", "alpha"} <= set(ds["overlap"].dims)
    s = _core.get("hopfield-capacity").summary(ds)
    assert abs(s["alpha_c_theory"] - 0.138) < 1e-3 and "alpha_c_sim" in s
    assert np.all(ds["overlap"].sel(alpha=0.02).values > 0.95)


def test_exponential_capacity_contract():
    """Reference: summary `alpha` of P_max = exp(alpha N); log P_max grows with N."""
    ds = _core.run("exponential-capacity", N=[8, 12], n_samples=4, family=["exponential_loss"])
    s = _core.get("exponential-capacity").summary(ds)
    assert np.isfinite(s["alpha"]) and s["alpha"] > 0
