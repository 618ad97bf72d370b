"""Fisher geometry of exponential families and the `fisher-curvature` experiment.

References: closed-form curvatures (univariate Gaussian R = -1; categorical on k outcomes,
a piece of the sphere of radius 2, R = (k-1)(k-2)/4; one-parameter and product families
R = 0); an independent Levi-Civita computation from the metric alone (Christoffel symbols and
their derivatives by autodiff, so the fourth cumulants enter and must cancel), itself checked
on the round sphere (R = 2) and the Poincare half-plane (R = -2); and the exact |R(K_c)| of
the L = 3, 4 Ising tori published with arXiv:2603.07651 (replication package
Vibecodium/fisher-curvature-replication: 105.64 and 265.31).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffphys
from diffphys import ShapeError
from diffphys.exact import ising_critical_coupling, ising_transfer_log_z
from diffphys.theory import (
    curvature_invariants,
    fisher_geometry,
    fisher_metric,
    ising_torus_fisher_geometry,
    scalar_curvature,
    scalar_curvature_from_cumulants,
    third_cumulants,
)


@functools.partial(jax.jit, static_argnums=0)
def _levi_civita_scalar_curvature(metric_fn, x):
    """R = g^{sn} R_{sn} from a metric field g(x), with the textbook formulas
    Gamma^k_ij = g^{kl}(d_i g_lj + d_j g_li - d_l g_ij)/2 and
    R_sn = d_r Gamma^r_ns - d_n Gamma^r_rs + Gamma^r_rl Gamma^l_ns - Gamma^r_nl Gamma^l_rs."""

    def christoffel(y):
        g_inv = jnp.linalg.inv(metric_fn(y))
        dg = jax.jacfwd(metric_fn)(y)  # dg[a, b, c] = d_c g_ab
        lowered = dg.transpose(0, 2, 1) + dg - dg.transpose(2, 0, 1)  # [l, i, j]
        return 0.5 * jnp.einsum("kl,lij->kij", g_inv, lowered)

    gam = christoffel(x)
    dgam = jax.jacfwd(christoffel)(x)  # [k, i, j, mu]
    ricci = (
        jnp.einsum("rnsr->sn", dgam)
        - jnp.einsum("rrsn->sn", dgam)
        + jnp.einsum("rrl,lns->sn", gam, gam)
        - jnp.einsum("rnl,lrs->sn", gam, gam)
    )
    return jnp.einsum("sn,sn->", jnp.linalg.inv(metric_fn(x)), ricci)


def _gaussian_log_partition(theta):
    """N(mu, sigma^2) with natural parameters (mu/sigma^2, -1/(2 sigma^2)), statistics (x, x^2)."""
    return -(theta[0] ** 2) / (4 * theta[1]) - 0.5 * jnp.log(-2 * theta[1])


def _categorical_log_partition(theta):
    return jnp.log1p(jnp.sum(jnp.exp(theta)))


def test_reference_curvature_on_known_metrics():
    """The independent Levi-Civita routine gives R = 2 on the unit sphere (d theta^2 +
    sin^2 theta d phi^2) and R = -2 on the Poincare half-plane ((dx^2 + dy^2)/y^2)."""
    with jax.enable_x64(True):

        def sphere(y):
            return jnp.diag(jnp.stack([jnp.ones_like(y[0]), jnp.sin(y[0]) ** 2]))

        def half_plane(y):
            return jnp.eye(2, dtype=y.dtype) / y[1] ** 2

        np.testing.assert_allclose(
            _levi_civita_scalar_curvature(sphere, jnp.array([0.7, 0.2])), 2.0, rtol=1e-12
        )
        np.testing.assert_allclose(
            _levi_civita_scalar_curvature(half_plane, jnp.array([0.3, 1.7])), -2.0, rtol=1e-12
        )


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.3, 0.4), (-2.0, 3.0)])
def test_gaussian_family_has_curvature_minus_one(mu, sigma):
    """Sign convention: the univariate Gaussian family (Fisher metric (dmu^2 + 2 dsigma^2)/
    sigma^2, Gaussian curvature -1/2) has R = -1 at every point (1e-12)."""
    with jax.enable_x64(True):
        theta = jnp.array([mu / sigma**2, -1.0 / (2 * sigma**2)])
        np.testing.assert_allclose(
            scalar_curvature(_gaussian_log_partition, theta), -1.0, rtol=1e-12
        )
        g = fisher_metric(_gaussian_log_partition, theta)
        # the metric is the covariance of (x, x^2)
        var_x2 = 4 * mu**2 * sigma**2 + 2 * sigma**4
        cov = jnp.array([[sigma**2, 2 * mu * sigma**2], [2 * mu * sigma**2, var_x2]])
        np.testing.assert_allclose(g, cov, rtol=1e-12)


@pytest.mark.parametrize("k", [3, 4, 5])
def test_categorical_family_is_a_sphere(key, k):
    """A categorical distribution on k outcomes maps to the positive orthant of the sphere of
    radius 2 (p -> 2 sqrt p), sectional curvature 1/4: R = (k-1)(k-2)/4 at a random point."""
    with jax.enable_x64(True):
        theta = jax.random.normal(key, (k - 1,), jnp.float64)
        R = scalar_curvature(_categorical_log_partition, theta)
        np.testing.assert_allclose(R, (k - 1) * (k - 2) / 4, rtol=1e-10)


def test_flat_families():
    """One-parameter families (Bernoulli) and products of them (Bernoulli x Poisson x
    Gaussian-with-known-variance) are flat: R = 0 (1e-12 absolute)."""
    with jax.enable_x64(True):
        bern = scalar_curvature(lambda t: jnp.log1p(jnp.exp(t[0])), jnp.array([0.4]))
        np.testing.assert_allclose(bern, 0.0, atol=1e-12)

        def product(t):
            return jnp.log1p(jnp.exp(t[0])) + jnp.exp(t[1]) + 0.5 * t[2] ** 2

        np.testing.assert_allclose(
            scalar_curvature(product, jnp.array([0.4, -0.3, 1.1])), 0.0, atol=1e-12
        )


def test_cumulant_formula_equals_levi_civita(key):
    """R = (T_ijk T^ijk - T_i T^i)/4 equals the curvature computed from the metric field
    alone (Christoffel derivatives, fourth cumulants included) for a random 4-parameter
    family on 12 outcomes and for the Gaussian family (1e-9 relative)."""
    with jax.enable_x64(True):
        k_phi, k_theta = jax.random.split(key)
        phi = jax.random.normal(k_phi, (12, 4), jnp.float64)

        def psi(t):
            return jax.nn.logsumexp(phi @ t)

        theta = 0.5 * jax.random.normal(k_theta, (4,), jnp.float64)
        geo = fisher_geometry(psi, theta)
        reference = _levi_civita_scalar_curvature(jax.hessian(psi), theta)
        np.testing.assert_allclose(geo.scalar_curvature, reference, rtol=1e-9)
        # the cumulants are those of the statistics phi under p = softmax(phi theta)
        p = jax.nn.softmax(phi @ theta)
        d = phi - p @ phi
        np.testing.assert_allclose(geo.metric, (d * p[:, None]).T @ d, atol=1e-12)
        kappa3 = jnp.einsum("s,si,sj,sk->ijk", p, d, d, d)
        np.testing.assert_allclose(third_cumulants(psi, theta), kappa3, atol=1e-12)

        th = jnp.array([0.5, -0.8])
        np.testing.assert_allclose(
            _levi_civita_scalar_curvature(jax.hessian(_gaussian_log_partition), th),
            -1.0,
            rtol=1e-9,
        )


def test_pytree_parameters_and_bad_shapes():
    """Coordinates may be a pytree (flattened in ravel_pytree order); mismatched tensors are
    rejected with a ShapeError."""
    with jax.enable_x64(True):
        theta = {"a": jnp.array(0.3), "b": jnp.array([-0.2, 0.1])}

        def psi(t):
            return _categorical_log_partition(jnp.concatenate([t["a"][None], t["b"]]))

        np.testing.assert_allclose(scalar_curvature(psi, theta), (4 - 1) * (4 - 2) / 4, rtol=1e-10)
    with pytest.raises(ShapeError):
        scalar_curvature_from_cumulants(jnp.eye(2), jnp.zeros((3, 3, 3)))


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_torus_geometry_equals_generic_and_published_values():
    """The translation-symmetric torus computation equals the generic autodiff
    (`fisher_geometry` of the transfer-matrix ln Z in all 18 couplings) at L = 3, entry by
    entry at K_c; and |R(K_c)| reproduces the values published with
    arXiv:2603.07651 (105.64 at L = 3, 265.31 at L = 4; to their last digit), with R < 0
    (hyperbolic) as the paper reports. The metric's bond mean is the enumerated energy per
    bond (checked through ln Z's gradient in test_transfer)."""
    with jax.enable_x64(True):
        L = 3
        torus = ising_torus_fisher_geometry(L)
        J_c = jnp.full((2, L, L), ising_critical_coupling())
        generic = fisher_geometry(ising_transfer_log_z, J_c)
        np.testing.assert_allclose(torus.metric, generic.metric, atol=1e-12)
        np.testing.assert_allclose(torus.cumulants3, generic.cumulants3, atol=1e-11)
        np.testing.assert_allclose(torus.scalar_curvature, generic.scalar_curvature, rtol=1e-10)
        r3 = float(torus.scalar_curvature)
        r4 = float(ising_torus_fisher_geometry(4).scalar_curvature)
        assert r3 < 0 and r4 < 0
        assert abs(-r3 - 105.64) < 0.006 and abs(-r4 - 265.31) < 0.006, (r3, r4)
        t_sq, t_tr = curvature_invariants(torus.metric, torus.cumulants3)
        np.testing.assert_allclose((t_sq - t_tr) / 4, torus.scalar_curvature, rtol=1e-12)


def test_fisher_curvature_experiment_small(tmp_path):
    """`fisher-curvature` at L = [3, 4]: the public variables and dims, |R| matching the
    published values, d_R in summary.json equal to the two-point log-log slope."""
    import json

    ds = diffphys.experiments.run("fisher-curvature", out=tmp_path, L=[3, 4], fit_sizes=2)
    assert ds["scalar_curvature"].dims == ("L",)
    assert list(ds["L"].values) == [3, 4]
    assert list(ds["n_params"].values) == [18, 32]
    np.testing.assert_allclose(-ds["scalar_curvature"].values, [105.64, 265.31], atol=0.006)
    summary = json.loads((tmp_path / "summary.json").read_text())
    expected = np.log(265.31 / 105.64) / np.log(16 / 9)
    assert abs(summary["d_R"] - expected) < 1e-3
    assert summary["d_R_fit_L"] == [3, 4]
    assert (tmp_path / "figure.png").exists() and (tmp_path / "results.nc").exists()
    with pytest.raises(diffphys.ConfigError, match="fit_sizes"):
        diffphys.experiments.run("fisher-curvature", L=[3, 4], fit_sizes=1)
