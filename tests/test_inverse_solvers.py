"""Newton solver of the inverse estimators, and the vectorised data stacking.

References: the estimators' own public gradients (`exact_likelihood`, `pseudolikelihood`,
`mpf`; the exact one checked against enumeration in tests/test_inverse.py): a convex objective
is at its minimum where that gradient vanishes, whatever the optimiser; the Adam path of the
same fits (an independent optimiser); `np.unique(..., axis=0)` for merging repeated samples.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import ConfigError, ShapeError, exact, models, training

BUILDERS = {
    training.fit_exact: training.exact_likelihood,
    training.fit_pseudolikelihood: lambda d, **kw: training.pseudolikelihood(
        d, symmetric=True, **kw
    ),
    training.fit_mpf: training.mpf,
}


def _samples(rng, model, m):
    """m exact samples by enumeration (eager: no compilation)."""
    conf = np.asarray(exact.all_configurations(model))
    e = np.asarray(jax.vmap(model.energy)(jnp.asarray(conf)), np.float64)
    p = np.exp(-(e - e.min()))
    return conf[rng.choice(len(conf), size=m, p=p / p.sum())]


@pytest.fixture(scope="module")
def problems():
    """An N = 5 Ising model on a ring (mask) and a q = 3, N = 3 Potts model, exact samples."""
    k = jax.random.key(7)
    rng = np.random.default_rng(7)
    sk = models.SK.sample(k, 5, h=0.2)
    x = _samples(rng, sk, 400)
    mask = np.zeros((5, 5), bool)
    for i in range(5):
        mask[i, (i + 1) % 5] = mask[(i + 1) % 5, i] = True
    potts = models.PairwisePotts.sample(jax.random.fold_in(k, 2), 3, 3, scale_h=0.5, scale_J=0.5)
    xp = _samples(rng, potts, 300)
    return (training.spin_data(x), mask), (training.spin_data(xp, kind="potts", q=3), None)


@pytest.mark.parametrize(
    "fit",
    [
        pytest.param(training.fit_exact, marks=pytest.mark.slow),  # ConIII test covers it
        # CI budget: Newton PL and MPF are checked in CI against ConIII (test_inverse_coniii)
        pytest.param(training.fit_pseudolikelihood, marks=pytest.mark.slow),
        pytest.param(training.fit_mpf, marks=pytest.mark.slow),
    ],
)
def test_newton_reaches_the_minimum(problems, fit):
    """Newton fits (default solver) with a mask and an L2 penalty, Ising and Potts: the public
    gradient at the returned model is zero to 2e-5 (the fit's tol is 1e-5), couplings off the
    graph are exactly zero, and Potts fits are in the zero-sum gauge."""
    for data, mask in problems:
        kw = {"mask": mask, "l2": 0.01}
        sym = {"symmetric": True} if fit is training.fit_pseudolikelihood else {}
        res = fit(data, tol=1e-5, **kw, **sym)
        assert bool(res.converged), float(res.grad_max)
        grads, _, _ = BUILDERS[fit](data, **kw)(None, res.model, None, 0)  # eager
        gmax = max(float(jnp.max(jnp.abs(g))) for g in (grads.h, grads.J))
        assert gmax < 2e-5, gmax
        if mask is not None:
            assert float(jnp.max(jnp.abs(res.model.J[~mask]))) == 0.0
        else:
            assert float(jnp.abs(res.model.J.sum(axis=3)).max()) < 1e-5


@pytest.mark.slow  # CI budget: an Adam compilation; the gradient test above is the reference
def test_newton_agrees_with_adam(problems):
    """The exact-likelihood optimum on the ring, by Newton and by 3000 Adam steps: the same
    couplings to 1e-4 (both stop at a largest gradient component below 1e-5; curvatures are
    of order one)."""
    data, mask = problems[0]
    newton = training.fit_exact(data, mask=mask, tol=1e-5)
    adam = training.fit_exact(data, mask=mask, tol=1e-5, solver="adam", n_steps=3000)
    assert bool(newton.converged) and bool(adam.converged)
    for a, b in ((newton.model.J, adam.model.J), (newton.model.h, adam.model.h)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-4)


def test_solver_rejects_bad_choices(problems):
    data, _ = problems[0]
    with pytest.raises(ConfigError):
        training.fit_mpf(data, solver="bfgs")
    with pytest.raises(ConfigError):
        training.fit_mpf(data, solver="newton", l1=0.01)
    with pytest.raises(ConfigError):
        training.fit_mpf(data, solver="newton", optimizer=object())
    with pytest.raises(ConfigError):
        training.fit_mpf(data, solver="sitewise")
    with pytest.raises(ConfigError):
        training.fit_pseudolikelihood(data, solver="sitewise", symmetric=True)


@pytest.mark.parametrize(
    ("kind", "q", "n"),
    [("pm1", None, 5), ("potts", 4, 3), ("pm1", None, 12), ("pm1", None, 70)],
)
def test_stacking_matches_np_unique(kind, q, n):
    """stack_spin_data of a (B, M, N) array equals stacking spin_data's, and every data set's
    rows and weights are np.unique's (count table for q^N <= 64, sorted int64 codes for N = 12,
    and N = 70 beyond int64 codes)."""
    rng = np.random.default_rng(n)
    x = rng.integers(0, q or 2, (6, 40, n))
    x[:, 20:] = x[:, :20]  # repeated rows
    if kind == "pm1":
        x = 2 * x - 1
    a = training.stack_spin_data(x, kind=kind, q=q)
    b = training.stack_spin_data([training.spin_data(s, kind=kind, q=q) for s in x])
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
    np.testing.assert_allclose(np.asarray(a.weights), np.asarray(b.weights), rtol=1e-6)
    for i in range(6):
        rows, counts = np.unique(x[i], axis=0, return_counts=True)
        k = len(rows)
        np.testing.assert_array_equal(np.asarray(a.x[i, :k]), rows)
        np.testing.assert_allclose(np.asarray(a.weights[i, :k]), counts / 40, rtol=1e-6)
        assert float(jnp.sum(a.weights[i, k:])) == 0.0
    with pytest.raises(ShapeError):
        training.stack_spin_data(x[0], kind=kind, q=q)
    with pytest.raises(ConfigError):
        training.stack_spin_data(x + 7, kind=kind, q=q)


def _site_problem(x, w, i, mask, l2):
    """Spin i's conditional loss and gradient in float64 (numpy): the logistic regression
    $\\sum_\\mu w_\\mu \\ln(1 + e^{-2 s_i f_i})$, $f_i = h_i + \\sum_{j \\in \\partial i}
    J_{ij} s_j$, + l2 sum_j J_ij^2; parameters (h_i, J_i,nbrs)."""
    nb = np.flatnonzero(mask[i])
    feats = np.concatenate([np.ones((len(x), 1)), x[:, nb]], axis=1)

    def fun(p):
        f = feats @ p
        z = -2.0 * x[:, i] * f
        loss = w @ np.logaddexp(0.0, z) + l2 * np.sum(p[1:] ** 2)
        r = w * (np.tanh(f) - x[:, i])
        grad = feats.T @ r + np.concatenate([[0.0], 2.0 * l2 * p[1:]])
        return loss, grad

    return nb, fun


@pytest.mark.parametrize(
    "joint",
    [False, pytest.param(True, marks=pytest.mark.slow)],  # CI budget: a joint-Newton compile
)
def test_sitewise_pseudolikelihood(problems, joint):
    """The per-site Newton solver of the asymmetric Ising pseudo-likelihood (the default) against
    two references on the same samples: (1) per spin, scipy's BFGS in float64 on that spin's
    logistic regression (ConIII's Pseudo algorithm, written independently here), symmetrised
    afterwards; (2) (slow) the joint damped Newton solver on all free parameters
    (solver='newton'). With a ring mask and an L2 penalty (all pairs, no penalty: the ConIII
    test of the usage guide's problem): every spin's float64 gradient at the per-site solution
    (before symmetrisation) is below 2e-5 (tol 1e-5: stationarity of each conditional),
    couplings off the graph are exactly zero, and the fits agree to 1e-4 (curvatures of order
    one)."""
    from scipy.optimize import minimize

    from diffphys.training import _inverse  # the unsymmetrised per-site solution

    data, mask = problems[0]
    l2 = 0.01
    x, w = np.asarray(data.x, np.float64), np.asarray(data.weights, np.float64)
    fast = training.fit_pseudolikelihood(data, mask=mask, l2=l2, tol=1e-5)
    fits = [fast]
    if joint:
        fits.append(training.fit_pseudolikelihood(data, mask=mask, l2=l2, tol=1e-5,
                                                  solver="newton"))
        np.testing.assert_allclose(float(fast.loss), float(fits[1].loss), rtol=1e-6)
    assert all(bool(r.converged) for r in fits)
    asym = _inverse._sitewise_solution(data, mask=mask, l2=l2, tol=1e-5)
    h_asym, J_asym = np.asarray(asym.h, np.float64), np.asarray(asym.J, np.float64)
    J_ref = np.zeros((5, 5))
    h_ref = np.zeros(5)
    for i in range(5):
        nb, fun = _site_problem(x, w, i, mask, l2)
        ours = np.concatenate([[h_asym[i]], J_asym[i, nb]])
        assert np.max(np.abs(fun(ours)[1])) < 2e-5, (i, fun(ours)[1])
        assert np.all(J_asym[i, ~mask[i]] == 0.0)
        sol = minimize(fun, np.zeros(len(nb) + 1), jac=True, method="BFGS",
                       options={"gtol": 1e-10})
        h_ref[i], J_ref[i, nb] = sol.x[0], sol.x[1:]
    J_ref = 0.5 * (J_ref + J_ref.T)
    for res in fits:
        np.testing.assert_allclose(np.asarray(res.model.h), h_ref, rtol=0, atol=1e-4)
        np.testing.assert_allclose(np.asarray(res.model.J), J_ref, rtol=0, atol=1e-4)


def test_sitewise_potts_stationary(problems):
    """Potts (q = 3): every spin's conditional is stationary at the per-site Newton solution
    before symmetrisation. Reference: the public pseudo-likelihood gradient (autodiff of the
    joint objective, `training.pseudolikelihood`, asymmetric), below 2e-5 (tol 1e-5)."""
    from diffphys.training import _inverse  # the unsymmetrised per-site solution

    data, _ = problems[1]
    asym = _inverse._sitewise_solution(data, l2=0.01, tol=1e-5)
    grad_fn = jax.jit(training.pseudolikelihood(data, l2=0.01))  # eager: 8x slower
    grads, _, _ = grad_fn(None, asym, None, 0)
    gmax = max(float(jnp.max(jnp.abs(g))) for g in (grads.h, grads.J))
    assert gmax < 2e-5, gmax


@pytest.mark.slow  # CI budget: a joint-Newton compilation; the stationarity test above suffices
def test_sitewise_potts_matches_joint(problems):
    """Potts fits by the per-site Newton solver (default) and the joint Newton solver
    (solver='newton'), same objective: the same symmetrised, gauged parameters to 1e-4."""
    data, _ = problems[1]
    fast = training.fit_pseudolikelihood(data, l2=0.01, tol=1e-5)
    joint = training.fit_pseudolikelihood(data, l2=0.01, tol=1e-5, solver="newton")
    assert bool(fast.converged) and bool(joint.converged)
    for a, b in ((fast.model.h, joint.model.h), (fast.model.J, joint.model.J)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-4)
