"""The `spherical-aging` experiment: public contract and simulation next to its DMFT."""

import numpy as np

from diffphys.experiments import _core


def test_spherical_aging_contract_and_theory():
    """Reference: the issue's contract (`correlation` with dims t_w, t beside
    `correlation_theory`), and the theory itself: exact p = 2 eigenmode dynamics and the
    Cugliandolo–Kurchan DMFT on the decimated grid for p = 3. At this small size (N = 400 /
    128, four samples, t <= 8) the mean simulated C(t, t_w) stays within 5 standard errors
    (over samples) + 0.03 of the theory everywhere, the allowance for O(1/N) and O(dt)
    biases, and the final energies within 5 sigma + 0.02."""
    ds = _core.run(
        "spherical-aging",
        N_p2=400,
        N_p3=128,
        n_samples_p2=4,
        n_samples_p3=4,
        t_max_p2=8.0,
        t_max_p3=8.0,
        t_w=[1.0, 4.0],
        n_times=12,
        dt=0.05,  # the CI size: the tolerance below allows for its O(dt) bias
    )
    assert ds["correlation"].dims == ("p", "t_w", "t")
    assert ds["correlation_theory"].dims == ("p", "t_w", "t")
    both = np.isfinite(ds["correlation"].values) & np.isfinite(ds["correlation_theory"].values)
    assert both.sum() > 20
    diff = np.abs(ds["correlation"].values - ds["correlation_theory"].values)[both]
    err = ds["correlation_error"].values[both]
    assert np.all(diff < 5 * err + 0.03), np.max(diff - 5 * err)
    s = _core.get("spherical-aging").summary(ds)
    for p in ("p2", "p3"):
        d = s[p]
        gap = abs(d["final_energy"] - d["final_energy_theory"])
        assert gap < 5 * d["final_energy_error"] + 0.02, (p, d)
    assert _core.get("spherical-aging").figure(ds) is not None
