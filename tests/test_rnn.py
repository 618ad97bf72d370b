"""Random recurrent networks: integrator, SCS DMFT, simulation vs theory, Lyapunov spectra."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from diffphys import ConfigError, ShapeError, ensemble, models, theory


def test_integrator_against_scipy(key):
    """Reference: scipy's `solve_ivp` (DOP853, rtol 1e-10) on the same small network; RK4 at
    dt = 0.05 in float64 agrees to 1e-5 after t = 10 (local error O(dt^5))."""
    with jax.enable_x64(True):
        m = models.RandomRNN.sample(key, n=20, g=2.0, dtype=jnp.float64)
        x0 = m.random_state(key=jax.random.fold_in(key, 1))
        out = models.simulate_rnn(
            key, m, x0, dt=0.05, t_burn=0.0, t_max=10.0, record_dt=5.0, method="rk4"
        )
        j, xs = np.asarray(m.couplings), np.asarray(x0)
    sol = integrate.solve_ivp(
        lambda t, x: -x + j @ np.tanh(x), (0, 10), xs, method="DOP853", rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(np.asarray(out["record"])[-1], sol.y[:, -1], atol=1e-5)
    assert not bool(out["diverged"])


def test_divergence_flagged(key):
    """A time step far beyond RK4's stability limit (dt (1 + g) ~ 2.8) is flagged, not silent."""
    m = models.RandomRNN.sample(key, n=50, g=3.0)
    out = models.simulate_rnn(
        key, m, m.random_state(key=key), dt=5.0, t_burn=0.0, t_max=500.0, record_dt=5.0
    )
    assert bool(out["diverged"])


def test_bad_input(key):
    """One clear ConfigError/ShapeError per mistake, before anything compiles."""
    with pytest.raises(ConfigError, match="g must be positive"):
        models.RandomRNN.sample(key, n=10, g=0.0)
    with pytest.raises(ConfigError, match="n >= 2"):
        models.RandomRNN.sample(key, n=1, g=1.0)
    with pytest.raises(ConfigError, match="dt must be positive"):
        models.rnn_integrator(dt=-0.1)
    with pytest.raises(ConfigError, match="sigma"):
        models.rnn_integrator(dt=0.1, sigma=-1.0)
    with pytest.raises(ConfigError, match="method"):
        models.rnn_integrator(dt=0.1, method="rk45")
    m = models.RandomRNN.sample(key, n=10, g=1.0)
    with pytest.raises(ShapeError):
        models.simulate_rnn(key, m, jnp.zeros(3), dt=0.1, t_burn=0.0, t_max=1.0, record_dt=0.1)
    with pytest.raises(ConfigError, match="k must be"):
        models.lyapunov_spectrum(m, jnp.zeros(10), k=11, dt=0.1, t_burn=0.0, t_max=1.0)
    with pytest.raises(ConfigError, match="g must be positive"):
        theory.rnn_dmft(-1.0)


def test_delta0_near_threshold():
    """Reference: the expansion derived in `diffphys.theory._rnn` from the SCS energy condition,
    Delta_0 = eps + 7/6 eps^2 + O(eps^3), eps = g - 1 (so Delta_0/(g-1) -> 1); Delta_0 = 0 for
    g <= 1. Tolerance: 5 eps^3 (the next order)."""
    for eps in (1e-3, 3e-3, 1e-2, 3e-2):
        d0 = theory.rnn_delta0(1.0 + eps)
        assert abs(d0 - theory.rnn_delta0_threshold(1.0 + eps)) < 5 * eps**3, (eps, d0)
    assert theory.rnn_delta0(0.8) == 0.0 and theory.rnn_delta0(1.0) == 0.0
    # Delta_0 grows monotonically and tends to 2 g^2 (1 - 2/pi) (Phi ~ |x|) at large g
    d = theory.rnn_delta0(np.array([1.5, 2.0, 3.0, 10.0, 30.0]))
    assert np.all(np.diff(d) > 0)
    assert abs(d[-1] / (2 * 30.0**2 * (1 - 2 / np.pi)) - 1) < 0.01


@pytest.fixture(scope="module")
def dmft2():
    return theory.rnn_dmft(2.0, tau_max=20.0, dtau=0.05)


def test_dmft_solves_equation_of_motion(dmft2):
    """Reference: SCS 1988, (1 - d^2/dtau^2) Delta = g^2 C_phi(Delta; Delta_0) with
    Delta'(0) = 0 and Delta -> 0. The quadrature solution satisfies it (second differences,
    O(dtau^2) error) and its tail decays at the derived rate 1/tau_c."""
    s = dmft2
    dd = (s.delta[2:] - 2 * s.delta[1:-1] + s.delta[:-2]) / (s.tau[1] - s.tau[0]) ** 2
    resid = dd - (s.delta[1:-1] - s.field[1:-1])
    assert np.max(np.abs(resid)) < 2e-3 * s.delta0, np.max(np.abs(resid))
    late = (s.tau > 12) & (s.tau < 18)
    rate = -np.polyfit(s.tau[late], np.log(s.delta[late]), 1)[0]
    assert abs(rate * s.decay_time - 1) < 0.02, rate * s.decay_time
    assert s.half_time < s.decay_time * 2
    assert theory.rnn_dmft(0.7).delta0 == 0.0


def test_autocorrelation_matches_direct_sum(key):
    """Reference: the lagged sum written out directly (numpy)."""
    x = jax.random.normal(key, (64, 5))
    c = np.asarray(models.autocorrelation(x, 10))
    xn = np.asarray(x, float)
    ref = [np.mean(np.sum(xn[: 64 - k] * xn[k:], axis=0) / (64 - k)) for k in range(11)]
    np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-5)


def _sim_autocorrelation(g, n, n_net, t_max, max_lag, key):
    def one(k):
        kj, kx, kr = jax.random.split(k, 3)
        m = models.RandomRNN.sample(kj, n=n, g=g)
        out = models.simulate_rnn(
            kr, m, m.random_state(key=kx), dt=0.1, t_burn=30.0, t_max=t_max, record_dt=0.5
        )
        return models.autocorrelation(out["record"], max_lag), out["diverged"]

    c, div = ensemble.run(one, jax.random.split(key, n_net))
    assert not np.any(np.asarray(div))
    c = np.asarray(c, float)
    return c.mean(0), c.std(0, ddof=1) / np.sqrt(n_net)


def test_simulation_matches_dmft(key):
    """Reference: the SCS DMFT Delta(tau) (`theory.rnn_dmft`). g = 3, N = 200, 8 networks,
    time window 200: Delta(tau) = <x_i(t) x_i(t+tau)> for tau <= 8 (> 2 decay times) agrees
    within 4 standard errors over networks (which include the finite-time error) plus a
    finite-N allowance of 3% of Delta_0 (at N = 300 the measured bias of Delta_0 was -3% +- 2%
    at g = 3, -0.5% +- 4% at g = 2; finite-N corrections are O(1/N)). Below g ~ 2 networks of a
    few hundred units often settle on fixed points or limit cycles, so the test uses g = 3."""
    m, e = _sim_autocorrelation(3.0, 200, 8, 200.0, 16, key)
    th = theory.rnn_dmft(3.0, tau_max=8.0, dtau=0.5)
    tol = 4 * e + 0.03 * th.delta0
    assert np.all(np.abs(m - th.delta) < tol), (m, th.delta, e)


def test_lyapunov_linear_regime_exact(key):
    """Reference: for g < 1 the attractor is x = 0 and the tangent map is the RK4 polynomial
    R(dt A) of A = -1 + J, so the Lyapunov exponents are log|R(dt mu_i)|/dt of the eigenvalues
    mu_i of A (numpy `eigvals`), sorted; the three largest within 0.01 after t = 300."""
    m = models.RandomRNN.sample(key, n=30, g=0.5)
    x0 = 1e-3 * m.random_state(key=jax.random.fold_in(key, 1))
    r = models.lyapunov_spectrum(m, x0, k=3, dt=0.1, t_burn=10.0, t_max=300.0)
    mu = 0.1 * (np.linalg.eigvals(np.asarray(m.couplings, float)) - 1.0)
    rk4 = 1 + mu + mu**2 / 2 + mu**3 / 6 + mu**4 / 24
    exact = np.sort(np.log(np.abs(rk4)) / 0.1)[::-1][:3]
    np.testing.assert_allclose(np.asarray(r.exponents), exact, atol=0.01)
    assert not bool(r.diverged)


def test_lyapunov_against_dense_jacobian(key):
    """Reference: an independent Benettin computation in numpy with the dense Jacobian of the
    step map (`jax.jacfwd`), QR after every step, on the same chaotic trajectory (g = 2,
    N = 16); the jvp-based spectrum agrees to 1e-3 (float32 round-off over 400 steps)."""
    m = models.RandomRNN.sample(key, n=16, g=2.0)
    x0 = m.random_state(key=jax.random.fold_in(key, 1))
    q0_key = jax.random.fold_in(key, 2)
    r = models.lyapunov_spectrum(
        m, x0, k=4, dt=0.1, t_burn=0.0, t_max=40.0, t_ortho=0.1, key=q0_key
    )
    rk4 = models.rnn_integrator(0.1)
    step = jax.jit(lambda x: rk4.step(key, models.RNNState(x), m)[0].x)
    jac = jax.jit(jax.jacfwd(step))
    q = np.linalg.qr(np.asarray(jax.random.normal(q0_key, (16, 4)), float))[0]
    x, logs = x0, np.zeros(4)
    for _ in range(400):
        q, rr = np.linalg.qr(np.asarray(jac(x), float) @ q)
        logs += np.log(np.abs(np.diag(rr)))
        x = step(x)
    np.testing.assert_allclose(np.asarray(r.exponents), logs / 40.0, atol=1e-3)
    assert float(r.exponents[0]) > 0  # chaos at g = 2


def test_random_rnn_contract():
    """Reference: issue 10's contract for `random-rnn` (Delta(tau) simulation next to DMFT,
    Delta_0 and decay time vs g, Lyapunov exponents vs g, CF attrs on every variable and
    coordinate; the noisy autocorrelation next to the noisy DMFT; covariance spectra next to
    the linear theory) at a tiny size; below the transition (g = 0.5) the largest exponent is within
    0.15 of g - 1 at N = 40 (finite-N fluctuation of the circular-law edge)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffphys.experiments import _core

    ds = _core.run(
        "random-rnn",
        g=[3.0],
        N=60,
        n_networks=2,
        t_burn=10.0,
        t_max=40.0,
        max_lag=4.0,
        g_theory=[1.1, 2.0],
        g_lyapunov=[0.5, 3.0],
        N_lyapunov=40,
        k_lyapunov=2,
        t_lyapunov=40.0,
        g_noisy=[0.8],
        g_cov=[0.8],
        sigma_cov=[1.0],
        N_cov=20,
        t_cov=300.0,
        t_bin=5.0,
    )
    for name in list(ds.data_vars) + list(ds.coords):
        assert "long_name" in ds[name].attrs and "units" in ds[name].attrs, name
    assert ds["autocorrelation"].dims == ("g", "tau")
    assert np.all(np.isfinite(ds["autocorrelation"].values))
    exp = _core.get("random-rnn")
    s = exp.summary(ds)
    for k in ("max_abs_z_autocorrelation", "lyapunov_max", "lyapunov_zero_crossing_g"):
        assert k in s
    assert not s["any_diverged"]
    assert ds["cov_eigenvalue"].dims == ("cov_case", "rank")
    assert np.all(np.isfinite(ds["autocorrelation_noisy"].values))
    assert np.isfinite(s["ks_linear_exact"]) and len(s["covariance"]) == 1
    assert abs(s["lyapunov_max"][0.5] + 0.5) < 0.15, s
    assert np.isfinite(s["lyapunov_max"][3.0]), s
    plt.close(exp.figure(ds))


# --- white noise: the integrator's splitting and the noisy DMFT -----------------------------


def test_noise_splitting_ou_variance(key):
    """Reference: the stationary variance of the scheme on the Ornstein-Uhlenbeck process
    (J = 0), derived in `rnn_integrator`'s docstring: v = (sigma^2 dt / 2)(1 + r^2)/(1 - r^2),
    r = R(-dt) the RK4 polynomial; at dt = 0.5 it is 0.5413 (Euler-Maruyama after the step
    would give 0.79). 64 units x 2000 records 2 apart (correlation e^-2): standard error
    ~ 0.0025; tolerance 0.015."""
    m = models.RandomRNN(jnp.zeros((64, 64)))
    dt = 0.5
    out = models.simulate_rnn(
        key, m, jnp.zeros(64), dt=dt, t_burn=10.0, t_max=4000.0, record_dt=2.0, sigma=1.0
    )
    r = 1 - dt + dt**2 / 2 - dt**3 / 6 + dt**4 / 24
    exact = dt / 2 * (1 + r * r) / (1 - r * r)
    assert abs(float(jnp.mean(out["record"] ** 2)) - exact) < 0.015, exact


def test_noisy_dmft_limits_and_kink():
    """References: (i) g -> 0 is the Ornstein-Uhlenbeck process, Delta(tau) = sigma^2/2 e^-tau
    exactly; (ii) Schuecker, Goedeke & Helias (PRX 2018): (1 - d^2/dtau^2) Delta = g^2 C_phi
    + sigma^2 delta(tau), i.e. the equation of motion for tau > 0 (second differences,
    O(dtau^2)) and the kink Delta'(0+) = -sigma^2/2 (one-sided second-order difference);
    (iii) sigma -> 0 recovers the noiseless SCS Delta_0 (continuity, to 1e-3 at sigma = 0.05)."""
    s = theory.rnn_dmft(1e-3, sigma=1.0, tau_max=5.0, dtau=0.5, n_grid=201)
    np.testing.assert_allclose(s.delta, 0.5 * np.exp(-s.tau), rtol=2e-4, atol=1e-6)
    s = theory.rnn_dmft(1.5, sigma=0.8, tau_max=12.0, dtau=0.05, n_grid=401)
    dd = (s.delta[2:] - 2 * s.delta[1:-1] + s.delta[:-2]) / 0.05**2
    resid = dd - (s.delta[1:-1] - s.field[1:-1])
    assert np.max(np.abs(resid)) < 2e-3 * s.delta0, np.max(np.abs(resid))
    slope = (-3 * s.delta[0] + 4 * s.delta[1] - s.delta[2]) / (2 * 0.05)
    assert abs(slope + 0.8**2 / 2) < 2e-3, slope
    assert s.decay_time < theory.rnn_decay_time(1.5)  # noise shortens the correlation time
    assert abs(theory.rnn_delta0(2.0, sigma=0.05) - theory.rnn_delta0(2.0)) < 1e-3
    assert theory.rnn_delta0(0.5, sigma=0.0) == 0.0 and theory.rnn_delta0(0.5, sigma=0.5) > 0


def test_noisy_simulation_matches_dmft(key):
    """Reference: the noisy DMFT (`theory.rnn_dmft(g, sigma=...)`, Schuecker-Goedeke-Helias
    2018) at g = 0.8, sigma = 1, where the tanh nonlinearity matters (Delta_0 = 0.604; the
    linear network would give 0.833). N = 100, 6 networks, time window 120: Delta(tau) within
    4 standard errors over networks plus 2% of Delta_0 (finite N, O(1/N); the integrator's
    splitting error is O(dt^2) = 1%/3 at dt = 0.1). Measured at N = 200, 8 networks: all lags
    within 1.5 standard errors."""

    def one(k):
        kj, kx, kr = jax.random.split(k, 3)
        m = models.RandomRNN.sample(kj, n=100, g=0.8)
        out = models.simulate_rnn(
            kr,
            m,
            m.random_state(key=kx),
            dt=0.1,
            t_burn=20.0,
            t_max=120.0,
            record_dt=0.5,
            sigma=1.0,
        )
        return models.autocorrelation(out["record"], 8), out["diverged"]

    c, div = ensemble.run(one, jax.random.split(key, 6))
    assert not np.any(np.asarray(div))
    c = np.asarray(c, float)
    m, e = c.mean(0), c.std(0, ddof=1) / np.sqrt(len(c))
    th = theory.rnn_dmft(0.8, sigma=1.0, tau_max=4.0, dtau=0.5, n_grid=201)
    assert abs(th.delta0 - 0.604) < 0.002 and abs(th.delta0 - 0.5 / np.sqrt(1 - 0.64)) > 0.2
    assert np.all(np.abs(m - th.delta) < 4 * e + 0.02 * th.delta0), (m, th.delta, e)


# --- fixed connectivity: covariance spectra ---------------------------------------------------


def _ks(ev, spec):
    x = np.sort(np.asarray(ev, float))
    n = len(x)
    cdf = np.interp(x, spec.x, spec.cdf / spec.cdf[-1])
    return np.max(np.maximum(np.arange(1, n + 1) / n - cdf, cdf - np.arange(n) / n))


@pytest.mark.parametrize("g", [0.5, 0.9])
def test_covariance_spectrum_against_exact(key, g):
    """Reference: the exact eigenvalues (numpy `eigvalsh`) of (1 - J)^-1 (1 - J)^-T, the
    long-window covariance of the linear network (the integral over lags of the solution of its
    Lyapunov equation), for one sampled J at N = 400, against the Hu-Sompolinsky density
    (`theory.rnn_covariance_spectrum`). Eigenvalues of one matrix are rigid (CDF fluctuations
    ~ log N / N, measured KS = 0.0025-0.003 at N = 1000 for g = 0.3, 0.8, 0.95), so the
    tolerance is KS < 0.015; a density at g +- 0.02 fails it. Also: the mean eigenvalue is
    1/(1 - g^2) and m2/m1^2 = (1 - g^2)^-2 on the density (1e-4), the exact eigenvalues lie
    inside the support up to a 5% finite-N edge allowance (below g = 1)."""
    n = 400
    j = np.asarray(models.RandomRNN.sample(key, n=n, g=g).couplings, float)
    a_inv = np.linalg.inv(np.eye(n) - j)
    ev = np.linalg.eigvalsh(a_inv @ a_inv.T)
    spec = theory.rnn_covariance_spectrum(g)
    assert _ks(ev, spec) < 0.015, _ks(ev, spec)
    assert _ks(ev, theory.rnn_covariance_spectrum(g - 0.02)) > 0.015
    assert abs(spec.mean * (1 - g * g) - 1) < 1e-4
    assert abs(spec.second_moment / spec.mean**2 * (1 - g * g) ** 2 - 1) < 1e-4
    lo, hi = theory.rnn_covariance_edges(g)
    assert (lo, hi) == spec.edges
    assert ev.min() > 0.95 * lo
    if g < 0.8:  # near g = 1 the top eigenvalues of one N = 400 matrix are far below x_+
        assert ev.max() < 1.05 * hi
    # sigma scales the spectrum
    np.testing.assert_allclose(theory.rnn_covariance_edges(g, sigma=2.0), (4 * lo, 4 * hi))


def test_covariance_spectrum_sampled_against_wishart(key):
    """Reference: Monte Carlo: the sample covariance of M = N / alpha Gaussian vectors with
    the exact population covariance (1 - J)^-1 (1 - J)^-T (N = 300, alpha = 0.25, g = 0.6),
    against Silverstein's equation solved on the Hu-Sompolinsky density
    (`theory.rnn_covariance_spectrum_sampled`): KS < 0.03 (measured 0.0097 at N = 400,
    alpha = 0.2; the population density alone is off by 0.13). The fitted gain from the
    participation ratio with the alpha correction is within 0.03 of g (0.6)."""
    n, alpha, g = 300, 0.25, 0.6
    kj, kz = jax.random.split(key)
    j = np.asarray(models.RandomRNN.sample(kj, n=n, g=g).couplings, float)
    a_inv = np.linalg.inv(np.eye(n) - j)
    z = np.asarray(jax.random.normal(kz, (n, int(n / alpha))), float)
    x = a_inv @ z
    ev = np.linalg.eigvalsh(x @ x.T / x.shape[1])
    pop = theory.rnn_covariance_spectrum(g)
    spec = theory.rnn_covariance_spectrum_sampled(pop, alpha)
    assert _ks(ev, spec) < 0.03, _ks(ev, spec)
    assert _ks(ev, pop) > 0.08
    assert abs(theory.rnn_fit_effective_gain(ev, alpha=alpha) - g) < 0.03
    exact = np.linalg.eigvalsh(a_inv @ a_inv.T)
    assert abs(theory.rnn_fit_effective_gain(exact) - g) < 0.03


def test_effective_gain_matches_decay_time():
    """Reference: the derived identity g_eff^2 = 1 - tau_c^-2 of the noiseless chaotic state
    (both from the SCS potential's curvature at Delta = 0); g_eff = g below the transition;
    g_eff < 1 always."""
    for g in (1.5, 3.0):
        ge = theory.rnn_effective_gain(g)
        assert abs(ge**2 - (1 - theory.rnn_decay_time(g) ** -2)) < 1e-10
        assert 0.9 < ge < 1
    assert theory.rnn_effective_gain(0.5) == 0.5
    assert theory.rnn_effective_gain(0.5, sigma=1.0) < 0.5


def test_covariance_bad_input(key):
    with pytest.raises(ConfigError, match="g < 1"):
        theory.rnn_covariance_spectrum(1.0)
    with pytest.raises(ConfigError, match="alpha"):
        theory.rnn_covariance_spectrum_sampled(theory.rnn_covariance_spectrum(0.5), 1.5)
    with pytest.raises(ConfigError, match="sigma"):
        theory.rnn_dmft(2.0, sigma=-1.0)
    with pytest.raises(ConfigError, match="eigenvalues"):
        theory.rnn_fit_effective_gain(np.ones(1))


@pytest.mark.slow
def test_nonlinear_covariance_spectrum_matches_linear_theory(key):
    """Reference: the Shen-Hu conjecture (arXiv 2508.05288; proved by Wakhloo et al., arXiv
    2604.24141): the long-window covariance spectrum of the rates tanh(x) of one network with
    g = 0.8, sigma = 1 (N = 200, T = 10^4, bins of 10) is the linear theory's at an effective
    gain, with finite sampling alpha = N / bins. Measured (seed 1): KS 0.011 at the gain fitted to
    the participation ratio (0.52), 0.032 at the DMFT g <phi'> = 0.556. Tolerances 0.04 and
    0.08. (In the chaotic regime, g = 2 without noise at N = 200, the agreement fails: KS
    ~ 0.4, a few slow modes carry most of the variance; see the experiment.)"""
    kj, kx, kr = jax.random.split(key, 3)
    n, g, sig, tb = 200, 0.8, 1.0, 10.0
    m = models.RandomRNN.sample(kj, n=n, g=g)
    out = models.simulate_rnn(
        kr,
        m,
        m.random_state(key=kx),
        dt=0.1,
        t_burn=50.0,
        t_max=10000.0,
        record_dt=0.5,
        sigma=sig,
        record=jnp.tanh,
    )
    r = np.asarray(out["record"], float)
    nb = int(tb / 0.5)
    rb = r[: (len(r) // nb) * nb].reshape(-1, nb, n).mean(1)
    ev = np.linalg.eigvalsh(np.cov(rb.T) * tb)
    alpha = n / len(rb)
    g_fit = theory.rnn_fit_effective_gain(ev, alpha=alpha)
    g_dm = theory.rnn_effective_gain(g, sigma=sig)
    for ge, tol in ((g_fit, 0.04), (g_dm, 0.08)):
        spec = theory.rnn_covariance_spectrum_sampled(theory.rnn_covariance_spectrum(ge), alpha)
        assert _ks(ev / ev.mean() * spec.mean, spec) < tol, (
            ge,
            _ks(ev / ev.mean() * spec.mean, spec),
        )
