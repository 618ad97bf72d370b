"""The grokking student (arXiv 2310.06110): NTK, linearisation, kernel limit, lazy limit,
flax.nnx through `training.train`, and the `grokking` experiment's contract."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffphys import ConfigError, models, theory, training
from diffphys.experiments import _core


@pytest.fixture(scope="module")
def small():
    task = models.GrokkingTask.sample(jax.random.key(3), D=6, P=30, P_test=40)
    net = models.TwoLayer.sample(jax.random.key(4), N=12, D=6, alpha=2.0, eps=0.3)
    return task, net


def test_ntk_closed_form_matches_autodiff(small):
    """Reference: an independent implementation, the Gram matrix of per-example gradients
    from `jax.grad` (`ntk_gram`), against the closed form `TwoLayer.ntk`."""
    task, net = small
    K_ad = models.ntk_gram(net, task.x_train, task.x_test)
    K_cf = net.ntk(task.x_train, task.x_test)
    np.testing.assert_allclose(K_ad, K_cf, rtol=1e-4, atol=1e-6 * float(jnp.max(K_cf)))


def test_ntk_infinite_width(key):
    """Reference: the derived infinite-width kernel eta K = x.x' + eps^2 (x.x')^2
    (E[phi'(w.x) phi'(w.x')] = 1 + eps^2 x.x' for w ~ N(0, I)). At N = 4000 the empirical
    kernel is a mean of N i.i.d. terms: within 5 standard errors (measured per entry)."""
    D, N, eps = 5, 4000, 0.5
    k_x, k_w = jax.random.split(key)
    x = jax.random.normal(k_x, (8, D)) / jnp.sqrt(D)
    net = models.TwoLayer.sample(k_w, N=N, D=D, alpha=3.0, eps=eps)
    K = net.learning_rate * net.ntk(x)
    K_inf = theory.ntk_infinite_width(x, eps=eps)
    g = 1.0 + eps * (x @ net.w.T)  # (P, N): the N terms of the mean
    terms = g[:, None, :] * g[None, :, :] * (x @ x.T)[:, :, None]
    se = jnp.std(terms, axis=-1) / jnp.sqrt(N)
    assert float(jnp.max(jnp.abs(K - K_inf) / se)) < 5.0


def test_linearised_model_is_exact_gd_in_ntk_eigenbasis(small):
    """Reference: the exact solution of GD on a linear model, residual
    (I - 2 eta K / P)^t r_0 in the eigenbasis of K (`linearised_gd`), against the
    `Linearised` model (jax.jvp around init) trained by `training.train` with optax.sgd."""
    task, net = small
    lin = models.Linearised(net)
    f0, f0t = net.batch(task.x_train), net.batch(task.x_test)
    eta = net.learning_rate

    def loss(p, batch, key):
        return models.centred_loss(p, task.x_train, task.y_train, f0)

    def rec(s):
        return s.params.batch(task.x_train) - f0, s.params.batch(task.x_test) - f0t

    times = np.array([1, 10, 100, 400])
    _, tr = training.train(
        jax.random.key(0),
        lin,
        training.from_loss(loss),
        optax.sgd(eta),
        400,
        record_at=times,
        record=rec,
    )
    f_tr, f_te = theory.linearised_gd(
        net.ntk(task.x_train),
        task.y_train,
        learning_rate=eta,
        t=times,
        K_test_train=net.ntk(task.x_test, task.x_train),
    )
    scale = float(jnp.max(jnp.abs(task.y_test)))
    np.testing.assert_allclose(tr["record"][0], f_tr, atol=2e-4 * scale)
    np.testing.assert_allclose(tr["record"][1], f_te, atol=2e-4 * scale)


def test_kernel_regression_vs_float64_solve(small):
    """Reference: NumPy float64 pseudo-inverse of the same kernel (rank D + D(D+1)/2 = 27 <
    P = 30: the features are x and the quadratic forms x^T A x), and the infinite-time limit
    of `linearised_gd`, which must equal kernel regression."""
    task, net = small
    K = net.learning_rate * net.ntk(task.x_train)
    Kt = net.learning_rate * net.ntk(task.x_test, task.x_train)
    pred = theory.kernel_regression(K, task.y_train, Kt)
    K64 = np.asarray(K, np.float64)
    c = np.linalg.pinv(K64, rcond=1e-6, hermitian=True) @ np.asarray(task.y_train, np.float64)
    ref = np.asarray(Kt, np.float64) @ c
    np.testing.assert_allclose(pred, ref, rtol=2e-3, atol=2e-3 * np.abs(ref).max())
    lam = np.linalg.eigvalsh(K64)
    lam = lam[lam > 1e-6 * lam.max()]
    eta = 30 / (2 * lam.max())  # stable: the fastest mode decays in one step
    t_inf = float(np.round(60.0 * lam.max() / lam.min()))  # e^-60 of the slowest mode
    _, f_te = theory.linearised_gd(K, task.y_train, learning_rate=eta, t=t_inf, K_test_train=Kt)
    np.testing.assert_allclose(f_te, ref, rtol=2e-3, atol=2e-3 * np.abs(ref).max())


def test_ntk_alignment_exact_cases(key):
    """Reference: exact values: A(y y^T, y) = 1, A(I, y) = 1/sqrt(P), scale invariance."""
    y = jax.random.normal(key, (20,))
    assert float(models.ntk_alignment(jnp.outer(y, y), y)) == pytest.approx(1.0, rel=1e-5)
    assert float(models.ntk_alignment(jnp.eye(20), y)) == pytest.approx(20**-0.5, rel=1e-5)
    K = jnp.outer(y, y) + jnp.eye(20)
    a1, a2 = models.ntk_alignment(K, y), models.ntk_alignment(7.0 * K, y)
    assert float(a1) == pytest.approx(float(a2), rel=1e-5)


def test_lazy_limit_network_tracks_linearisation():
    """Reference: NTK theory (derived for this network): with eta = N/alpha^2 the weights move
    by O(1/alpha) and f - f_lin = (alpha eps / 2) mean_i (dw_i.x)^2 + ... = O(1/alpha). After
    the same 200 steps the gap between network and linearised predictions falls like 1/alpha:
    quadrupling alpha divides it by 4 within 20%."""
    task = models.GrokkingTask.sample(jax.random.key(5), D=6, P=30, P_test=10)

    def gap(alpha):
        net = models.TwoLayer.sample(jax.random.key(6), N=12, D=6, alpha=alpha, eps=0.3)
        f0 = net.batch(task.x_train)

        def loss(p, batch, key):
            return models.centred_loss(p["net"], task.x_train, task.y_train, f0) + (
                models.centred_loss(p["lin"], task.x_train, task.y_train, f0)
            )

        params = {"net": net, "lin": models.Linearised(net)}
        s, _ = training.train(
            jax.random.key(0), params, training.from_loss(loss), optax.sgd(net.learning_rate), 200
        )
        d = s.params["net"].batch(task.x_test) - s.params["lin"].batch(task.x_test)
        return float(jnp.max(jnp.abs(d)))

    g16, g64 = gap(16.0), gap(64.0)
    assert g16 / g64 == pytest.approx(4.0, rel=0.2), (g16, g64)


def test_flax_nnx_module_gives_the_equinox_trajectory(small):
    """Reference: the equinox `TwoLayer` trained by the same loop from the same weights: a
    flax.nnx module with the same function, split into a pytree (nnx.split) and merged in the
    loss (nnx.merge), follows the same GD trajectory (float32 round-off)."""
    nnx = pytest.importorskip("flax.nnx")
    task, net = small

    class NNXTwoLayer(nnx.Module):
        def __init__(self, w, alpha, eps):
            self.w = nnx.Param(w)
            self.alpha, self.eps = float(alpha), float(eps)

        def __call__(self, x):
            h = x @ self.w[...].T
            return self.alpha * jnp.mean(h + 0.5 * self.eps * h**2, axis=-1)

    graphdef, state = nnx.split(NNXTwoLayer(net.w, net.alpha, net.eps))
    f0 = net.batch(task.x_train)

    def loss_nnx(st, batch, key):
        m = nnx.merge(graphdef, st)
        return jnp.mean((m(task.x_train) - f0 - task.y_train) ** 2)

    def loss_eqx(p, batch, key):
        return models.centred_loss(p, task.x_train, task.y_train, f0)

    opt = optax.sgd(net.learning_rate)
    times = np.array([10, 50, 100])
    _, tr_nnx = training.train(
        jax.random.key(0),
        state,
        training.from_loss(loss_nnx),
        opt,
        100,
        record_at=times,
        record=lambda s: nnx.merge(graphdef, s.params)(task.x_test),
    )
    _, tr_eqx = training.train(
        jax.random.key(0),
        net,
        training.from_loss(loss_eqx),
        opt,
        100,
        record_at=times,
        record=lambda s: s.params.batch(task.x_test),
    )
    np.testing.assert_allclose(tr_nnx["record"], tr_eqx["record"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        tr_nnx["metrics"]["loss"], tr_eqx["metrics"]["loss"], rtol=1e-4, atol=1e-7
    )


def test_bad_input_is_a_config_error(key):
    """Bad sizes and alpha <= 0 are rejected before anything compiles."""
    with pytest.raises(ConfigError, match="alpha"):
        models.TwoLayer.sample(key, N=10, D=3, alpha=0.0)
    with pytest.raises(ConfigError, match="N"):
        models.TwoLayer.sample(key, N=1, D=3)
    with pytest.raises(ConfigError, match="D"):
        models.GrokkingTask.sample(key, D=0, P=3)
    with pytest.raises(ConfigError, match="P"):
        models.GrokkingTask.sample(key, D=3, P=0)
    for bad in ({"alpha": [1.0, -1.0]}, {"N": 1}, {"D": 0}, {"P": 0}):
        with pytest.raises(ConfigError):
            _core.run("grokking", **bad)


TINY = dict(
    D=8,
    N=16,
    P=40,
    P_test=50,
    alpha=[0.125, 0.5, 16.0],
    eps=[0.3],
    n_steps=300,
    n_records=10,
    n_segments=2,
)


def test_grokking_contract():
    """Reference: the issue's contract (losses vs alpha, eps, time; linearised model, kernel
    regression, alignment, delay, flags, CF attrs), the trained linearised model against its
    exact eigenbasis solution (1e-3 relative), and a learning rate 30x above the stability
    bound recorded as divergence with NaN losses, never silent."""
    ds = _core.run("grokking", **TINY)
    assert ds["train_loss"].dims == ("alpha", "eps", "time")
    for v in list(ds.data_vars) + list(ds.coords):
        assert {"long_name", "units"} <= set(ds[v].attrs), v
    assert not ds["diverged"].any()
    for v in ("train_loss", "test_loss", "ntk_alignment", "linearised_test_loss"):
        assert np.all(np.isfinite(ds[v].values)), v
    rel = np.abs(ds["linearised_test_loss"] / ds["linearised_test_loss_theory"] - 1)
    assert float(rel.max()) < 1e-3
    # rich (small alpha) generalises better than lazy (large alpha) after the same time
    final = ds["test_loss"].isel(time=-1, eps=0)
    assert float(final.sel(alpha=0.125)) < 0.5 * float(final.sel(alpha=16.0))
    s = _core.get("grokking").summary(ds)
    assert {"delay_exponent_alpha", "n_grokked", "n_diverged"} <= set(s)
    import matplotlib.pyplot as plt

    plt.close(_core.get("grokking").figure(ds))

    bad = _core.run("grokking", **{**TINY, "learning_rate_scale": 1000.0, "n_segments": 1})
    assert bad["diverged"].all() and bad["linearised_diverged"].all()
    assert np.all(np.isnan(bad["train_loss"].isel(time=-1).values))
    assert _core.get("grokking").summary(bad)["n_diverged"] == 3
