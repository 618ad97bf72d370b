"""Inverse Ising and Potts estimators: data checks, exact gradients, planted recovery.

References: brute-force enumeration (`diffphys.exact`) for the likelihood and its gradient;
the 2D Ising transfer matrix (`diffphys.exact.ising_transfer_log_z`, itself checked against
enumeration in tests/test_transfer.py) for lattice fits; exactly sampled planted models for
recovery, whose coupling error of a consistent estimator falls like 1/sqrt(M).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffphys import ConfigError, ShapeError, exact, models, sampling, training

# -- data in ---------------------------------------------------------------------------------


def test_spin_data_kinds_and_moments():
    """±1 and 0/1 data give the same SpinData; moments are weighted sums, checked by hand."""
    x = np.array([[1, -1, 1], [1, 1, -1], [-1, -1, -1]])
    w = np.array([1.0, 2.0, 1.0])
    a = training.spin_data(x, weights=w)
    b = training.spin_data((x + 1) // 2, kind="01", weights=w)
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
    m, C = training.spin_moments(a)
    wn = w / w.sum()
    np.testing.assert_allclose(np.asarray(m), wn @ x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(C), (x.T * wn) @ x, rtol=0, atol=1e-6)
    p = training.spin_data(np.array([[0, 2], [1, 2]]), kind="potts", q=3)
    m, C = training.spin_moments(p)
    np.testing.assert_allclose(np.asarray(m), [[0.5, 0.5, 0], [0, 0, 1]], rtol=0, atol=1e-7)
    assert float(C[0, 1, 0, 2]) == pytest.approx(0.5)
    assert float(jnp.sum(C[0, 1])) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("samples", "kwargs", "error"),
    [
        (np.zeros((0, 3)), {}, ConfigError),  # empty
        (np.ones(4), {}, ShapeError),  # wrong ndim
        (np.ones((3, 4), complex), {}, ConfigError),  # complex dtype
        (np.array([["a", "b"]]), {}, ConfigError),  # strings
        (np.array([[1, 0], [1, -1]]), {}, ConfigError),  # 0 in ±1 data
        (np.array([[2, 0]]), {"kind": "01"}, ConfigError),
        (np.array([[0, 3]]), {"kind": "potts", "q": 3}, ConfigError),
        (np.array([[0.5, 1.0]]), {}, ConfigError),  # non-integer
        (np.ones((2, 3)), {"weights": [1.0, -1.0]}, ConfigError),  # negative weight
        (np.ones((2, 3)), {"weights": [1.0, 1.0, 1.0]}, ShapeError),  # mismatched weights
        (np.ones((2, 3)), {"kind": "ising"}, ConfigError),  # unknown kind
    ],
)
def test_spin_data_rejects_bad_input(samples, kwargs, error):
    with pytest.raises(error):
        training.spin_data(samples, **kwargs)


def test_unique_samples_changes_no_objective():
    """Merging repeated rows into weights leaves every objective unchanged (exact identity)."""
    rng = np.random.default_rng(0)
    x = np.where(rng.random((200, 4)) < 0.5, -1, 1)
    d = training.spin_data(x)
    u = training.unique_samples(d)
    assert u.n_samples <= 16
    model = models.SK.sample(jax.random.key(1), 4, h=0.1)
    for build in (training.pseudolikelihood, training.mpf, training.exact_likelihood):
        la = jax.jit(build(d))(None, model, None, 0)[2]["loss"]
        lb = jax.jit(build(u))(None, model, None, 0)[2]["loss"]
        assert float(la) == pytest.approx(float(lb), rel=1e-5)


# -- exact gradients -------------------------------------------------------------------------


def _exact_nll(model, data):
    """Minus the mean log-likelihood from diffphys.exact (energies and log Z by enumeration)."""
    e = jax.vmap(model.energy)(data.x.astype(jnp.int8))
    return data.weights @ e + exact.log_partition(model, 1.0)


def test_exact_gradient_is_moment_difference(key):
    """The estimator's gradient (data minus model moments) equals jax.grad of the exact
    log-likelihood (enumeration), for Ising and Potts, with weights and a mask."""
    k1, k2, k3 = jax.random.split(key, 3)
    sk = models.SK.sample(k1, 6, h=jax.random.normal(k2, (6,)) * 0.3)
    x = np.where(np.asarray(jax.random.uniform(k3, (50, 6))) < 0.6, 1, -1)
    w = np.arange(1, 51, dtype=float)
    data = training.spin_data(x, weights=w)
    g, _, _ = jax.jit(training.exact_likelihood(data))(None, sk, None, 0)
    ref = jax.jit(jax.grad(_exact_nll))(sk, data)
    np.testing.assert_allclose(np.asarray(g.h), np.asarray(ref.h), rtol=0, atol=2e-5)
    np.testing.assert_allclose(np.asarray(g.J), np.asarray(ref.J), rtol=0, atol=2e-5)
    m_d, C_d = training.spin_moments(data)
    (m_m, _), _ = jax.jit(training.model_moments)(sk, data)
    np.testing.assert_allclose(np.asarray(g.h), np.asarray(m_m - m_d), rtol=0, atol=2e-5)

    potts = models.PairwisePotts.sample(k1, 4, 3, scale_h=0.5, scale_J=0.5)
    xp = np.asarray(jax.random.randint(k3, (40, 4), 0, 3))
    dp = training.spin_data(xp, kind="potts", q=3)
    mask = np.ones((4, 4), bool)
    mask[0, 3] = mask[3, 0] = False
    g, _, _ = jax.jit(training.exact_likelihood(dp, mask=mask))(None, potts, None, 0)

    def nll_masked(p):
        keep = jnp.asarray(mask & ~np.eye(4, dtype=bool), jnp.float32)[:, :, None, None]
        p = models.PairwisePotts(p.h, 0.5 * (p.J + p.J.transpose(1, 0, 3, 2)) * keep)
        return _exact_nll(p, dp)

    ref = jax.jit(jax.grad(nll_masked))(potts)
    np.testing.assert_allclose(np.asarray(g.h), np.asarray(ref.h), rtol=0, atol=2e-5)
    np.testing.assert_allclose(np.asarray(g.J), np.asarray(ref.J), rtol=0, atol=2e-5)
    assert float(jnp.abs(g.J[0, 3]).max()) == 0.0


def test_transfer_matrix_fit_recovers_2d_ising():
    """Fit the uniform coupling K and field H of a 6 x 6 torus to its exact moments
    <sum s s>/bonds and <sum s>/sites from the transfer matrix: the gradient of the exact
    log-likelihood, ln Z(K, H) - K E* - H M*, is exact, so the fit recovers (K, H) to the
    optimiser's tolerance (asserted 1e-3; the moments are O(1) functions of K, H)."""
    L = 6
    true = jnp.asarray([0.35, 0.05])

    def log_z(p):
        return exact.ising_transfer_log_z(jnp.full((2, L, L), p[0]), p[1])

    target = jax.grad(log_z)(true)  # (<sum_bonds s s>, <sum_sites s>)

    def loss(p, batch, key):
        return (log_z(p) - p @ target) / (L * L)

    with jax.numpy_dtype_promotion("standard"):
        state, _ = training.train(
            jax.random.key(0), jnp.zeros(2), training.from_loss(loss), optax.adam(0.05), 600
        )
    np.testing.assert_allclose(np.asarray(state.params), np.asarray(true), rtol=0, atol=1e-3)


# -- Potts model -----------------------------------------------------------------------------


@pytest.mark.slow  # 17 s (sampler compile); Potts energies/gradients are checked in CI above
def test_pairwise_potts_contract(key):
    """PairwisePotts: site_energies are energy differences, the gauge changes no energy
    difference, q = 2 reproduces SK, and the heat-bath sampler matches enumeration."""
    k1, k2, k3 = jax.random.split(key, 3)
    m = models.PairwisePotts.sample(k1, 4, 3, scale_h=0.4, scale_J=0.6)
    x = jnp.asarray([0, 2, 1, 2], jnp.int8)
    e = m.site_energies(x, 1)
    alt = jnp.stack([m.energy(x.at[1].set(v)) for v in range(3)])
    np.testing.assert_allclose(np.asarray(e - e[0]), np.asarray(alt - alt[0]), atol=1e-5)
    J = m.J + 0.3 * jnp.ones((4, 4, 3, 1)) * (1 - jnp.eye(4))[:, :, None, None]
    J = J + J.transpose(1, 0, 3, 2) - m.J
    shifted = models.PairwisePotts(m.h, J)
    d1 = jax.vmap(m.energy)(exact.all_configurations(m))
    d2 = jax.vmap(shifted.zero_sum_gauge().energy)(exact.all_configurations(m))
    np.testing.assert_allclose(np.asarray(d1 - d1[0]), np.asarray(d2 - d2[0]), atol=1e-5)
    # q = 2 with J_ij(a, b) = J_ij s_a s_b, h_i(a) = h_i s_a is SK
    sk = models.SK.sample(k2, 4, h=0.2)
    s = jnp.asarray([-1.0, 1.0])
    p2 = models.PairwisePotts(sk.h[:, None] * s, sk.J[:, :, None, None] * s[:, None] * s)
    xs = jnp.asarray([1, 0, 0, 1], jnp.int8)
    assert float(p2.energy(xs)) == pytest.approx(float(sk.energy(2 * xs - 1)), abs=1e-5)
    # sampler vs enumeration (chi-square over all 81 states would need long chains; compare
    # one-site marginals with 4.5 sigma of the binomial error of 4000 x 10 sweeps)
    alg = sampling.heat_bath()
    states = jax.vmap(lambda k: alg.init(m.random_state(key=k), m))(jax.random.split(k3, 4000))
    run = jax.jit(jax.vmap(lambda k, s: sampling.run(k, alg, s, m, 10)[0]))
    final = run(jax.random.split(k3, 4000), states)
    freq = np.asarray(jax.nn.one_hot(final.x, 3).mean(0))
    p = np.asarray(exact.probabilities(m, 1.0))
    conf = np.asarray(exact.all_configurations(m))
    marg = np.stack([[p[conf[:, i] == a].sum() for a in range(3)] for i in range(4)])
    sigma = np.sqrt(marg * (1 - marg) / 4000)
    assert np.all(np.abs(freq - marg) < 4.5 * sigma + 1e-3)


# -- planted problems ------------------------------------------------------------------------


def _exact_samples(key, model, m):
    conf = exact.all_configurations(model)
    logp = jnp.log(exact.probabilities(model, 1.0))
    return np.asarray(conf[jax.random.categorical(key, logp, shape=(m,))])


@pytest.fixture(scope="module")
def planted_sk():
    """N = 8 SK model at beta = 0.5 (J ~ N(0, 0.25/N)), h ~ N(0, 0.1^2); exact samples."""
    k = jax.random.key(20260)
    sk = models.SK(
        0.5 * models.SK.sample(k, 8).J, 0.1 * jax.random.normal(jax.random.fold_in(k, 1), (8,))
    )
    return sk, _exact_samples(jax.random.fold_in(k, 2), sk, 16 * 4000)


@pytest.mark.parametrize(
    "fit",
    [
        training.fit_exact,
        pytest.param(training.fit_pseudolikelihood, marks=pytest.mark.slow),  # CI budget
        pytest.param(training.fit_mpf, marks=pytest.mark.slow),
    ],
)
def test_planted_sk_error_falls_like_inverse_sqrt_m(planted_sk, fit):
    """Coupling RMS error over 16 independent data sets of M = 250 and of M = 4000 samples
    (vmapped fits): for a consistent estimator the ratio is sqrt(16) = 4. Each RMS over 16
    sets of 28 couplings has ~5% relative error, so the measured ratio is asserted in
    [3.2, 5.0] (a biased estimator would saturate: ratio -> 1)."""
    sk, x = planted_sk
    iu = np.triu_indices(8, 1)
    rms = {}
    for m in (250, 4000):
        sets = [training.spin_data(x[i * 4000 : i * 4000 + m]) for i in range(16)]
        res = jax.vmap(lambda d: fit(d, tol=1e-4))(training.stack_spin_data(sets))
        assert bool(jnp.all(res.converged))
        err = np.asarray(res.model.J)[:, iu[0], iu[1]] - np.asarray(sk.J)[iu]
        rms[m] = np.sqrt(np.mean(err**2))
    ratio = rms[250] / rms[4000]
    assert 3.2 < ratio < 5.0, (rms, ratio)


@pytest.mark.slow  # 26 s on the shared 2-core CPU; the Potts gradients are checked in CI above
def test_planted_potts_recovery(key):
    """A planted 5-site q = 3 Potts model (zero-sum gauge) is recovered from 20000 exact
    samples by all three estimators: couplings within 0.05 RMS (statistical error ~0.02,
    couplings ~0.4), and exact ML and PL agree with each other closer than with the truth."""
    true = models.PairwisePotts.sample(key, 5, 3, scale_h=0.3, scale_J=0.4)
    x = _exact_samples(jax.random.fold_in(key, 1), true, 20000)
    data = training.spin_data(x, kind="potts", q=3)
    fits = {
        f.__name__: f(data, tol=1e-4)
        for f in (training.fit_exact, training.fit_pseudolikelihood, training.fit_mpf)
    }
    for name, r in fits.items():
        assert bool(r.converged), name
        rmse = float(jnp.sqrt(jnp.mean((r.model.J - true.J) ** 2)))
        assert rmse < 0.05, (name, rmse)
        assert float(jnp.abs(r.model.J.sum(axis=3)).max()) < 1e-5  # zero-sum gauge


# -- loading files ---------------------------------------------------------------------------


def test_load_spin_data_formats(tmp_path):
    """Reference: `spin_data` on the same array. CSV (0/1, header), whitespace text (±1,
    comments), .npy (Potts) and .npz (samples + weights) give identical SpinData."""
    rng = np.random.default_rng(0)
    x = np.where(rng.random((30, 4)) < 0.5, -1, 1)
    pot = rng.integers(0, 3, (20, 5))
    w = rng.random(30)
    (tmp_path / "a.csv").write_text(
        "s0,s1,s2,s3\n" + "\n".join(",".join(str((v + 1) // 2) for v in r) for r in x) + "\n"
    )
    np.savetxt(tmp_path / "b.txt", x, fmt="%d", header="spins, one sample a line")
    np.save(tmp_path / "c.npy", pot)
    np.savez(tmp_path / "d.npz", samples=x, weights=w)
    cases = [
        (training.load_spin_data(tmp_path / "a.csv", kind="01", skiprows=1), training.spin_data(x)),
        (training.load_spin_data(tmp_path / "b.txt"), training.spin_data(x)),
        (training.load_spin_data(str(tmp_path / "c.npy"), kind="potts", q=3),
         training.spin_data(pot, kind="potts", q=3)),
        (training.load_spin_data(tmp_path / "d.npz"), training.spin_data(x, weights=w)),
    ]  # fmt: skip
    for got, want in cases:
        assert (got.q, got.potts) == (want.q, want.potts)
        np.testing.assert_array_equal(np.asarray(got.x), np.asarray(want.x))
        np.testing.assert_allclose(np.asarray(got.weights), np.asarray(want.weights), rtol=1e-6)


def test_load_spin_data_rejects_bad_files(tmp_path):
    """Reference: the error contract (one-line ConfigError) for files."""
    with pytest.raises(ConfigError, match="no data file"):
        training.load_spin_data(tmp_path / "missing.csv")
    (tmp_path / "ragged.txt").write_text("1 -1 1\n1 -1\n")
    with pytest.raises(ConfigError, match="could not read"):
        training.load_spin_data(tmp_path / "ragged.txt")
    (tmp_path / "head.csv").write_text("a,b\n1,-1\n")
    with pytest.raises(ConfigError, match="skiprows"):
        training.load_spin_data(tmp_path / "head.csv")
    np.savez(tmp_path / "two.npz", x=np.ones((2, 2)), y=np.ones((2, 2)))
    with pytest.raises(ConfigError, match="'samples'"):
        training.load_spin_data(tmp_path / "two.npz")
    (tmp_path / "zeros.txt").write_text("0 1\n1 0\n")
    with pytest.raises(ConfigError, match="kind='01'"):
        training.load_spin_data(tmp_path / "zeros.txt")
