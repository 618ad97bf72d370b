"""Associative memories: energies vs brute force, samplers vs enumeration, dynamics, AGS theory."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffphys
from diffphys import exact, models, sampling, theory


def _small(key, n_patterns=3, n=9, kind="dense", **kw):
    xi = models.random_patterns(key, n_patterns, n)
    if kind == "hopfield":
        return models.Hopfield(xi, **kw)
    if kind == "dense":
        return models.DenseAssociativeMemory(xi, **kw)
    if kind == "exp":
        return models.ExponentialMemory(xi, **kw)
    return models.ExponentialLossMemory(xi, **kw)


def _brute_tensor_energy(xi, s, p):
    """-1/(p N^(p-1)) sum_mu sum_{i1..ip} xi_i1..xi_ip s_i1..s_ip, the explicit p-body sum."""
    n = xi.shape[1]
    e = 0.0
    for mu in range(xi.shape[0]):
        for idx in itertools.product(range(n), repeat=p):
            e += np.prod(xi[mu, list(idx)]) * np.prod(s[list(idx)])
    return -e / (p * n ** (p - 1))


@pytest.mark.parametrize("p", [2, 3, 4])
def test_dense_energy_equals_explicit_p_body_sum(key, p):
    """Reference: the explicit sum over all index p-tuples (Krotov–Hopfield F(x) = x^p / (p N^(p-1)))."""
    n = 6
    model = _small(key, 2, n, "dense", p=p)
    xi = np.asarray(model.patterns, np.float64)
    s = np.asarray(model.random_state(key=jax.random.fold_in(key, 1)), np.float64)
    got = float(model.energy(jnp.asarray(s, jnp.int8)))
    assert got == pytest.approx(_brute_tensor_energy(xi, s, p), rel=1e-5, abs=1e-5)


def test_hopfield_energy_equals_coupling_form(key):
    """Reference: E = -1/2 sum_{i != j} J_ij s_i s_j with J = xi^T xi / N, zero diagonal (AGS)."""
    model = _small(key, 4, 12, "hopfield")
    xi = np.asarray(model.patterns, np.float64)
    J = xi.T @ xi / 12
    np.fill_diagonal(J, 0)
    for t in range(5):
        s = np.asarray(model.random_state(key=jax.random.fold_in(key, t)), np.float64)
        assert float(model.energy(jnp.asarray(s, jnp.int8))) == pytest.approx(
            -0.5 * s @ J @ s, abs=1e-4
        )
        h = np.asarray(model.local_field(jnp.asarray(s, jnp.int8)))
        np.testing.assert_allclose(h, J @ s, atol=1e-5)


def test_exponential_energies_equal_brute_force(key):
    """Reference: E = -sum_mu w_mu exp(lam xi.s) (Demircigil et al. 2017) and
    E = -sum_mu w_mu exp(-lam |s - xi|^2 / 2) (the exponential-of-quadratic-loss cost of arXiv
    2509.06905, as read from its abstract), summed directly in float64 over all 2^8 states of
    a tiny network, with unequal weights; per-pattern losses |s - xi|^2 / 2 likewise."""
    n, lam = 8, 0.7
    xi = models.random_patterns(key, 5, n)
    w = jnp.asarray([1.0, 0.5, 2.0, 0.0, 1.5], jnp.float32)
    xs, ws = np.asarray(xi, np.float64), np.asarray(w, np.float64)
    states = np.asarray(list(itertools.product([-1, 1], repeat=n)), np.float64)
    loss = 0.5 * np.sum((states[:, None, :] - xs[None]) ** 2, axis=-1)  # (2^n, P)
    ref_loss = -(np.exp(-lam * loss) @ ws)
    ref_exp = -(np.exp(lam * states @ xs.T) @ ws)
    s8 = jnp.asarray(states, jnp.int8)
    m_loss = models.ExponentialLossMemory(xi, lam=lam, weights=w)
    m_exp = models.ExponentialMemory(xi, lam=lam, weights=w)
    np.testing.assert_allclose(jax.vmap(m_loss.energy)(s8), ref_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(m_exp.energy)(s8), ref_exp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(m_loss.losses)(s8), loss, atol=1e-5)


def test_exponential_loss_log_energy_at_large_n(key):
    """Reference: log(-E) = logsumexp_mu(-lam |s - xi^mu|^2 / 2) evaluated in float64 at N = 2000,
    where E itself underflows float32 (e^(-lam N (1 - m)) < 1e-38): `log_minus_energy` must stay
    finite and exact, and the zero-temperature dynamics must still retrieve a stored pattern."""
    n, lam = 2000, 0.5
    xi = models.random_patterns(key, 30, n)
    model = models.ExponentialLossMemory(xi, lam=lam)
    s = models.corrupt(jax.random.fold_in(key, 1), xi[7].astype(jnp.int8), 0.3)
    d2 = np.sum((np.asarray(s, np.float64) - np.asarray(xi, np.float64)) ** 2, axis=1)
    a = -0.5 * lam * d2
    ref = a.max() + np.log(np.sum(np.exp(a - a.max())))
    got = float(model.log_minus_energy(model.overlaps(s)))
    assert got == pytest.approx(ref, rel=1e-5)
    assert float(model.energy(s)) == 0.0  # underflow of E itself, as documented
    _, m, _ = models.retrieve(model, s, key=key, mode="sync")
    assert float(m[7]) == 1.0


def test_exponential_loss_dynamics_equal_exponential_memory(key):
    """Reference: E_loss = e^(-lam N) E_exp exactly (|s - xi|^2 = 2N(1 - m) for ±1 vectors), so every
    single-flip energy change has the same sign and the asynchronous zero-temperature
    trajectories from the same state and key coincide; the energy differences scale by
    e^(-lam N)."""
    n, lam = 40, 0.4
    xi = models.random_patterns(key, 200, n)
    loss, expo = models.ExponentialLossMemory(xi, lam=lam), models.ExponentialMemory(xi, lam=lam)
    x0 = models.corrupt(jax.random.fold_in(key, 1), xi[0].astype(jnp.int8), 0.35)
    m0 = loss.overlaps(x0)
    s0 = x0.astype(m0.dtype)
    d_loss = jax.vmap(lambda c, si: loss.flip_delta(m0, c, si))(xi.T, s0)
    d_exp = jax.vmap(lambda c, si: expo.flip_delta(m0, c, si))(xi.T, s0)
    np.testing.assert_allclose(d_loss, d_exp * np.exp(-lam * n), rtol=2e-4, atol=0)
    xa, _, ta = models.retrieve(loss, x0, key=key)
    xb, _, tb = models.retrieve(expo, x0, key=key)
    np.testing.assert_array_equal(np.asarray(xa), np.asarray(xb))
    assert int(ta) == int(tb)


def test_exponential_loss_patterns_stable_and_attractive_at_small_load(key):
    """Reference: the signal-to-noise capacity (diffphys.theory.exponential_capacity_rate): at
    N = 100, lam = 0.5 the rate is alpha_c = 1 - ln cosh 1 = 0.566, and P = 1000 is a load
    ln P / N = 0.069, far below it: every stored pattern is a fixed point. The predicted basin
    radius at this load, 0.316 (exponential_basin_radius), equals the binary-entropy bound
    h(rho) = ln 2 - ln P / N computed independently with scipy; from 20% corruption (well
    inside it) every one of 16 probes is retrieved exactly."""
    n, P, lam = 100, 1000, 0.5
    xi = models.random_patterns(key, P, n)
    model = models.ExponentialLossMemory(xi, lam=lam)
    assert bool(jnp.all(jax.vmap(model.is_fixed_point)(xi[:64].astype(jnp.int8))))
    # independent reference: on this branch 1 - 2 rho_c solves I(q) = ln P / N, and
    # I(q) = ln 2 - h((1 - q) / 2) with h the binary entropy, so h(rho_c) = ln 2 - ln P / N
    from scipy import optimize, stats

    rho_ref = optimize.brentq(
        lambda r: stats.entropy([r, 1 - r]) - (math.log(2) - math.log(P) / n), 1e-9, 0.5
    )
    assert theory.exponential_basin_radius(n, P, lam) == pytest.approx(rho_ref, abs=1e-9)
    keys = jax.random.split(jax.random.fold_in(key, 3), 16)

    def probe(k, mu):
        x0 = models.corrupt(k, xi[mu].astype(jnp.int8), 0.2)
        _, m, _ = models.retrieve(model, x0, key=k, mode="async")
        return m[mu]

    m = jax.lax.map(lambda a: probe(*a), (keys, jnp.arange(16)))
    np.testing.assert_array_equal(np.asarray(m), 1.0)


def test_exponential_capacity_rate_formula():
    """Reference: the closed forms of exponential_capacity_rate: alpha_c(lam, 0) = 2 lam - ln cosh 2lam
    -> ln 2 (lam -> inf); the Gaussian branch 2 lam (1 - 2 rho) - ln cosh 2 lam and the
    condensed branch I(1 - 2 rho) meet continuously at 1 - 2 rho = tanh 2 lam; alpha_c
    decreases with the basin radius and stays positive below rho = 1/2;
    exponential_basin_radius inverts it, and exponential_capacity_snr inverts
    exponential_stable_fraction."""
    for lam in (0.1, 0.25, 1.0):
        assert theory.exponential_capacity_rate(lam) == pytest.approx(
            2 * lam - math.log(math.cosh(2 * lam)), rel=1e-12
        )
        rho_k = 0.5 * (1 - math.tanh(2 * lam))
        lo = theory.exponential_capacity_rate(lam, rho_k - 1e-9)
        hi = theory.exponential_capacity_rate(lam, rho_k + 1e-9)
        assert lo == pytest.approx(hi, abs=1e-7)
        rates = [theory.exponential_capacity_rate(lam, r) for r in np.linspace(0, 0.49, 50)]
        assert np.all(np.diff(rates) < 0) and rates[-1] > 0
        for rho in (0.05, 0.2, 0.4):
            a = theory.exponential_capacity_rate(lam, rho)
            n = 300.0
            assert theory.exponential_basin_radius(n, math.exp(a * n), lam) == pytest.approx(
                rho, abs=1e-6
            )
    n = np.asarray([10.0, 20.0, 40.0])
    p_snr = theory.exponential_capacity_snr(n, 0.3, recall=0.9)
    np.testing.assert_allclose(theory.exponential_stable_fraction(n, p_snr, 0.3), 0.9, rtol=1e-9)
    assert theory.exponential_capacity_rate(40.0) == pytest.approx(math.log(2), rel=1e-9)
    assert float(theory.overlap_rate(1.0)) == pytest.approx(math.log(2))
    assert theory.exponential_basin_radius(20, 1e9, 0.25) == 0.0  # above capacity
    with pytest.raises(diffphys.ConfigError):
        theory.exponential_capacity_rate(0.25, rho=0.5)


@pytest.mark.parametrize("kind", ["hopfield", "dense", "exp", "loss"])
def test_flip_deltas_match_energy_differences(key, kind):
    """Reference: E(s with s_i flipped) - E(s) evaluated directly, for every site.

    Checks the O(P) single-flip kernel, the all-sites kernel (binomial / cosh-sinh identities)
    and `site_energies`."""
    kw = {"p": 4} if kind == "dense" else ({"lam": 0.5} if kind in ("exp", "loss") else {})
    model = _small(key, 4, 10, kind, **kw)
    s = model.patterns[0].astype(jnp.int8).at[:3].multiply(-1)
    m = model.overlaps(s)
    e0 = model.energy(s)
    direct = jnp.stack([model.energy(s.at[i].multiply(-1)) - e0 for i in range(10)])
    per_site = jnp.stack(
        [model.flip_delta(m, model.patterns[:, i], s[i].astype(m.dtype)) for i in range(10)]
    )
    np.testing.assert_allclose(per_site, direct, rtol=1e-4, atol=1e-4)
    scaled = model.scaled_flip_deltas(s, m)
    np.testing.assert_array_equal(
        np.sign(scaled), np.sign(np.where(np.abs(direct) < 1e-6, 0, direct))
    )
    se = jnp.stack([model.site_energies(s, i) for i in range(10)])
    sign = np.asarray(s) > 0
    np.testing.assert_allclose(
        np.where(sign, se[:, 0] - se[:, 1], se[:, 1] - se[:, 0]), direct, rtol=1e-4, atol=1e-4
    )


def test_exponential_memory_does_not_overflow(key):
    """At N = 400 the energy e^(N m) overflows float32; the T = 0 dynamics must still retrieve.
    Reference: a stored pattern is a fixed point far below capacity (Demircigil et al. 2017)."""
    xi = models.random_patterns(key, 50, 400)
    model = models.ExponentialMemory(xi, lam=1.0)
    x0 = models.corrupt(jax.random.fold_in(key, 1), xi[3].astype(jnp.int8), 0.2)
    x, m, _ = models.retrieve(model, x0, key=key, mode="sync")
    assert float(m[3]) == 1.0
    assert bool(jnp.all(jnp.isfinite(model.scaled_flip_deltas(x, m))))


@pytest.mark.parametrize("kind", ["hopfield", "dense", "exp", "loss"])
def test_async_zero_temperature_never_increases_energy(key, kind):
    """Reference: asynchronous sgn dynamics is a descent on E (Hopfield 1982), checked flip by flip
    through the recorded energy after every sweep."""
    kw = {"p": 3} if kind == "dense" else ({"lam": 0.3} if kind in ("exp", "loss") else {})
    model = _small(key, 12, 40, kind, **kw)
    alg = models.zero_temperature(mode="async")
    x0 = model.random_state(key=jax.random.fold_in(key, 7))
    state = alg.init(x0, model)
    _, trace = sampling.run(key, alg, state, model, 8, record=lambda s: s.energy, every=1)
    e = np.concatenate([[float(state.energy)], np.asarray(trace["record"])])
    assert np.all(np.diff(e) <= 1e-4 * np.abs(e[:-1]) + 1e-5)
    # a sweep without flips must have reached a fixed point of the all-sites kernel
    if np.asarray(trace["info"].flip_rate)[-1] == 0:
        assert bool(model.is_fixed_point(_[0]))


def test_overlap_metropolis_matches_enumeration(key):
    """Reference: exact Boltzmann averages by enumeration of 2^12 states (diffphys.exact).
    Tolerance: 5 blocking standard errors."""
    model = _small(key, 3, 12, "dense", p=3)
    beta = 0.7
    ref = exact.enumerate_averages(model, beta, {"m0sq": lambda x: model.overlaps(x)[0] ** 2})
    alg = models.overlap_metropolis(beta)
    keys = jax.random.split(key, 16)

    def chain(k):
        st = alg.init(model.random_state(key=k), model)
        st, _ = sampling.run(k, alg, st, model, 200)
        _, tr = sampling.run(
            jax.random.fold_in(k, 1),
            alg,
            st,
            model,
            2000,
            record=lambda s: (s.energy, s.m[0] ** 2),
            every=2,
        )
        return tr["record"]

    e, m2 = jax.vmap(chain)(keys)
    e, m2 = e.T.reshape(-1), m2.T.reshape(-1)  # time-major
    for est, exact_val in [(e, ref.energy), (m2, ref.averages["m0sq"])]:
        mean, err = diffphys.observables.mean_error(est.reshape(1000, 16).mean(1), n_blocks=20)
        assert abs(float(mean) - float(exact_val)) < 5 * float(err) + 1e-4, (mean, err, exact_val)


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_generic_metropolis_on_exponential_loss_model_matches_enumeration(key):
    """Reference: exact enumeration (2^10 states) for the arXiv 2509.06905 model through the generic
    `sampling.heat_bath` kernel and `site_energies`. Tolerance: 5 blocking standard errors."""
    model = _small(key, 4, 10, "loss", lam=0.3)
    beta = 3.0
    ref = exact.enumerate_averages(model, beta)
    alg = sampling.heat_bath(beta)
    keys = jax.random.split(key, 16)

    def chain(k):
        st = alg.init(model.random_state(key=k), model)
        _, tr = sampling.run(k, alg, st, model, 1500, record=lambda s: s.energy, every=1)
        return tr["record"][500:]

    e = jax.vmap(chain)(keys).T
    mean, err = diffphys.observables.mean_error(e.mean(1), n_blocks=20)
    assert abs(float(mean) - float(ref.energy)) < 5 * float(err) + 1e-5


def test_ags_alpha_c():
    """Reference: alpha_c = 0.138 (Amit, Gutfreund, Sompolinsky, PRL 55, 1530 (1985))."""
    assert theory.ags_alpha_c() == pytest.approx(0.1379, abs=5e-4)
    assert theory.ags_solve(0.14).m < 1e-3
    assert theory.ags_solve(0.10).m == pytest.approx(0.998, abs=1e-3)


def test_ags_finite_temperature_small_load():
    """Reference: at alpha -> 0 the RS equations reduce to Curie–Weiss m = tanh(m / T)."""
    sol = theory.ags_solve(1e-6, 0.5)
    assert sol.m == pytest.approx(theory.ags_curie_weiss(0.5), abs=1e-3)


@pytest.fixture(scope="module")
def hopfield_runs():
    """Final overlaps of T = 0 asynchronous dynamics started at a stored pattern, N = 1000."""
    n = 1000
    out = {}
    for alpha in (0.1, 0.12, 0.2):
        p = int(alpha * n)

        def one(k, p=p):
            xi = models.random_patterns(k, p, n)
            model = models.Hopfield(xi, binary=True)
            _, m, _ = models.retrieve(model, xi[0].astype(jnp.int8), key=k, max_sweeps=50)
            return m[0]

        keys = jax.random.split(jax.random.key(1234), 32)
        out[alpha] = np.asarray(diffphys.ensemble.run(one, keys, chunk_size=1))
    return out


def test_hopfield_retrieval_overlap_matches_ags(hopfield_runs):
    """Reference: the AGS T = 0 replica-symmetric retrieval overlap, m = 0.9980 at alpha = 0.1
    and 0.9932 at alpha = 0.12 (Amit, Gutfreund, Sompolinsky 1987). Simulations at N = 1000
    (32 disorder samples) agree within 4 standard errors + 1e-3 (the size of the RSB and
    finite-N corrections to m at these loads); the tolerance excludes perfect retrieval
    (m = 1) at alpha = 0.12."""
    for alpha in (0.1, 0.12):
        m = hopfield_runs[alpha]
        m_theory = theory.ags_solve(alpha).m
        err = np.std(m, ddof=1) / np.sqrt(m.size)
        assert abs(np.mean(m) - m_theory) < 4 * err + 1e-3, (alpha, np.mean(m), err, m_theory)


def test_hopfield_retrieval_fails_above_alpha_c(hopfield_runs):
    """Reference: no retrieval state above alpha_c = 0.138 (AGS); at alpha = 0.2 the final overlap
    falls far below the retrieval value (mean < 0.7 over 32 samples at N = 1000)."""
    assert np.mean(hopfield_runs[0.2]) < 0.7


def test_dense_p3_recall_below_capacity(key):
    """Reference: Krotov–Hopfield capacity N^2 / (2 * 3 * ln N) = 1448 at N = 200 for p = 3; at
    P = 300 every tested corrupted pattern (10% flipped bits) is retrieved exactly."""
    n, p = 200, 300
    xi = models.random_patterns(key, p, n)
    model = models.DenseAssociativeMemory(xi, p=3)
    assert theory.dense_capacity(n, 3) > 4 * p

    def one(k, mu):
        x0 = models.corrupt(k, xi[mu].astype(jnp.int8), 0.1)
        _, m, _ = models.retrieve(model, x0, key=k, mode="async")
        return m[mu]

    mus = jnp.arange(20)
    m = jax.vmap(one)(jax.random.split(key, 20), mus)
    np.testing.assert_array_equal(np.asarray(m), 1.0)


def test_sync_and_async_agree_on_fixed_points(key):
    """Reference: a stored pattern below capacity is a fixed point of both dynamics (no flips)."""
    xi = models.random_patterns(key, 20, 300)
    model = models.DenseAssociativeMemory(xi, p=2)
    for mode in ("sync", "async"):
        x, m, t = models.retrieve(model, xi[2].astype(jnp.int8), key=key, mode=mode)
        assert int(t) == 1 and float(m[2]) == 1.0


def test_modern_hopfield_one_step_retrieval(key):
    """Reference: Ramsauer et al. (ICLR 2021), Theorem 4: a well-separated pattern is retrieved in
    one update with an error exponentially small in beta times its separation. At beta = 50 with
    200 random patterns in d = 64, one step from a 20%-corrupted query lands within 1e-4 of the
    pattern, and the energy does not increase (the update is a CCCP step)."""
    d, p = 64, 200
    xi = jax.random.rademacher(key, (p, d), jnp.float32) / math.sqrt(d)
    model = models.ModernHopfield(xi, beta=50.0)
    q = models.corrupt(jax.random.fold_in(key, 1), xi[5], 0.2)
    new = model.update(q)
    assert float(jnp.max(jnp.abs(new - xi[5]))) < 1e-4
    assert float(model.energy(new)) <= float(model.energy(q))
    np.testing.assert_allclose(model.retrieve(q, 3), xi[5], atol=1e-4)


def test_masked_patterns_do_not_contribute(key):
    """Reference: weight 0 removes a pattern exactly (the model with the pattern deleted)."""
    xi = models.random_patterns(key, 6, 20)
    w = jnp.asarray([1, 1, 1, 0, 0, 0], jnp.float32)
    s = jax.random.rademacher(jax.random.fold_in(key, 2), (20,), jnp.float32).astype(jnp.int8)
    for cls, kw in [
        (models.DenseAssociativeMemory, {"p": 3}),
        (models.ExponentialMemory, {}),
        (models.Hopfield, {}),
    ]:
        full = cls(xi, weights=w, **kw)
        cut = cls(xi[:3], **kw)
        assert float(full.energy(s)) == pytest.approx(float(cut.energy(s)), rel=1e-5)
        np.testing.assert_allclose(
            full.scaled_flip_deltas(s, full.overlaps(s)),
            cut.scaled_flip_deltas(s, cut.overlaps(s)),
            rtol=1e-4,
            atol=1e-5,
        )


def test_diluted_hopfield_full_connectivity_is_hopfield(key):
    """Reference: c = 1 gives the fully connected Hebbian couplings of `Hopfield`."""
    xi = models.random_patterns(key, 3, 15)
    dil = models.DilutedHopfield.sample(key, xi, 1.0)
    np.testing.assert_allclose(dil.couplings, models.Hopfield(xi).couplings(), atol=1e-6)
    # a given mask: the bond density sets c, absent bonds have zero coupling
    half = models.DilutedHopfield.sample(key, xi, 0.5)
    mask = np.asarray(half.couplings) != 0
    rebuilt = models.DilutedHopfield(xi, mask)
    c = mask.sum() / (15 * 14)
    np.testing.assert_allclose(
        rebuilt.couplings, mask * np.asarray(models.Hopfield(xi).couplings()) / c, atol=1e-5
    )
    s = jax.random.rademacher(key, (15,), jnp.float32).astype(jnp.int8)
    assert float(dil.energy(s)) == pytest.approx(float(models.Hopfield(xi).energy(s)), abs=1e-4)


def test_errors():
    """Eager configuration and shape errors say what to do."""
    with pytest.raises(diffphys.ConfigError):
        models.DenseAssociativeMemory(jnp.ones((2, 3)), p=1)
    with pytest.raises(diffphys.ShapeError):
        models.Hopfield(jnp.ones((3,)))
    with pytest.raises(diffphys.ConfigError):
        models.ExponentialMemory(jnp.full((2, 3), 0.5))
    with pytest.raises(diffphys.ConfigError):
        models.zero_temperature(mode="parallel")
    with pytest.raises(diffphys.ShapeError):
        models.overlap_metropolis(1.0).init(
            jnp.ones((4,), jnp.int8), models.Hopfield(jnp.ones((2, 3)))
        )


def test_finite_temperature_overlap_matches_ags():
    """Reference: AGS RS retrieval overlap at T = 0.3, alpha = 0.05: m = 0.9912 (ags_solve). Heat-bath
    chains with incremental overlaps (N = 1000, 6 disorder samples, 200 sweeps after 100 of
    equilibration) measure 0.992; tolerance 0.005 covers the finite-N shift (O(1/N)) and
    4 standard errors (about 6e-4 each)."""
    n, alpha, T = 1000, 0.05, 0.3
    alg = models.overlap_heat_bath(1 / T)

    def one(k):
        xi = models.random_patterns(k, int(alpha * n), n)
        model = models.Hopfield(xi, binary=True)
        st = alg.init(xi[0].astype(jnp.int8), model)
        _, tr = sampling.run(k, alg, st, model, 300, record=lambda s: s.m[0], every=1)
        return tr["record"][100:].mean()

    keys = jax.random.split(jax.random.key(0), 6)
    m = np.asarray(diffphys.ensemble.run(one, keys, chunk_size=1))
    assert abs(m.mean() - theory.ags_solve(alpha, T).m) < 0.005
