"""Non-reciprocally coupled spherical SK systems (Garcia Lorenzana et al., PRL 135, 187402)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import ShapeError, models, sampling, theory


def _simulate(keys, n, T, alpha, kappa, dt, n_steps, record_at):
    """Quenches from T = inf (vmapped over disorder): records the state and the Lagrange
    multipliers z_a = T + s^a . F^a / N of the continuous dynamics."""

    def one(key):
        k_j, k_x, k_run = jax.random.split(key, 3)
        model = models.NonreciprocalSK.sample(k_j, n, alpha, kappa)
        alg = models.nonreciprocal_langevin(beta=1.0 / T, dt=dt)
        state = alg.init(model.random_state(key=k_x), model)

        def record(s):
            z = T + jnp.sum(s.x * model.drift(s.x), axis=-1) / n
            return s.x, z

        _, tr = sampling.run(k_run, alg, state, model, n_steps, record=record, record_at=record_at)
        return tr["record"]

    return jax.jit(jax.vmap(one))(keys)


def test_model_basics(key):
    """Shared J of variance 1/N, K = [[0, kappa + alpha], [kappa - alpha, 0]], shape checks."""
    model = models.NonreciprocalSK.sample(key, 50, alpha=0.7, kappa=0.2)
    np.testing.assert_allclose(model.coupling_matrix(), [[0.0, 0.9], [-0.5, 0.0]], atol=1e-7)
    x = model.random_state(key=key)
    np.testing.assert_allclose(jnp.sum(x**2, axis=1), [50.0, 50.0], rtol=1e-5)
    np.testing.assert_allclose(
        model.energies(x), [-0.5 * x[a] @ model.couplings @ x[a] for a in range(2)], rtol=1e-5
    )
    with pytest.raises(ShapeError):
        model.check_state(jnp.ones((50,)))
    assert theory.exceptional_point(-0.3) == 0.3
    np.testing.assert_allclose(theory.oscillation_frequency([0.2, 0.5], 0.3), [0.0, 0.4])


def test_kappa0_is_a_rotation_of_spherical_sk():
    """For kappa = 0 the N -> inf dynamics is the spherical SK dynamics rotated at frequency
    alpha (z_1 = z_2 = z_SK, C_11 = C_SK cos(alpha dt), C_12 = C_SK sin(alpha dt)): the mode
    solution against the independent Volterra solution of spherical SK, within 2e-4. Below
    T_c this is the PRL's oscillating aging, Eq. (7)."""
    T, alpha = 0.5, 1.3
    sk = theory.spherical_sk_exact(T, 32.0, 0.01)
    d = theory.nonreciprocal_sk_dynamics(
        T, alpha, 0.0, t_max=30.0, t_w=[3.0, 10.0], dt=0.02, record_every=25, n_lambda=800
    )
    np.testing.assert_allclose(d.z[:, 0], d.z[:, 1], atol=1e-5)
    np.testing.assert_allclose(d.z[:, 0], np.interp(d.t, sk.t, sk.z), atol=2e-4)
    for w, tw in enumerate(d.t_w):
        later = d.t >= tw
        c_sk = sk.correlation(d.t[later], tw)
        np.testing.assert_allclose(
            d.C[w, later, 0, 0], c_sk * np.cos(alpha * (d.t[later] - tw)), atol=2e-4
        )
        np.testing.assert_allclose(
            d.C[w, later, 0, 1], c_sk * np.sin(alpha * (d.t[later] - tw)), atol=2e-4
        )


def test_simulation_matches_theory_kappa0(key):
    """Langevin at N = 800 (6 disorder samples) for the PRL model (kappa = 0, alpha = 1,
    T = 0.5) against the exact large-N dynamics: C_11(t, t_w = 2) for t <= 8 (one full
    oscillation) and z(t), within 5 standard errors plus 0.02. The projected Euler step has
    an O(dt) phase bias (measured C_11(10, 2) = 0.124, 0.053, 0.009 at dt = 0.04, 0.02, 0.01
    against the exact -0.052), hence dt = 0.01 here."""
    T, alpha, n, dt = 0.5, 1.0, 800, 0.01
    rec = np.arange(200, 801, 50)
    t = rec * dt
    x, z = _simulate(jax.random.split(key, 6), n, T, alpha, 0.0, dt, int(rec[-1]), rec)
    x = np.asarray(x)
    c11 = np.einsum("sn,stn->st", x[:, 0, 0], x[:, :, 0]) / n
    d = theory.nonreciprocal_sk_dynamics(
        T, alpha, 0.0, t_max=8.0, t_w=[2.0], dt=0.02, record_every=25, n_lambda=600
    )

    def check(samples, expected):
        mean = samples.mean(0)
        err = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
        assert np.all(np.abs(mean - expected) < 5 * err + 0.02), (mean, expected, err)

    check(c11, np.interp(t, d.t, d.C[0, :, 0, 0]))
    assert np.sum(np.diff(np.sign(c11.mean(0))) != 0) >= 2  # it oscillates
    check(np.asarray(z)[:, :, 0], np.interp(t, d.t, d.z[:, 0]))


@pytest.mark.parametrize("alpha, phase", [(1.0, "static"), (2.0, "oscillating")])
def test_phase_on_both_sides_of_exceptional_point(key, alpha, phase):
    """kappa = 0.5, T = 0.3: the exact large-N dynamics puts the self-consistent exceptional
    point (D = ((z_1 - z_2)/2)^2 + kappa^2 - alpha^2 = 0) at alpha_c ~ 1.43; at alpha = 1.0
    it predicts a static phase (D > 0, C_11(t_w + tau, t_w) never changes sign) and at
    alpha = 2.0 an oscillating one (D < 0). Simulation at N = 512 (2 samples) shows the same
    phase: the sign of D from the measured z_a averaged over t in [30, 40], and the presence
    or absence of sign changes of C_11 over tau in [0, 20] at t_w = 20."""
    T, kappa, n, dt = 0.3, 0.5, 512, 0.02
    d = theory.nonreciprocal_sk_dynamics(
        T, alpha, kappa, t_max=40.0, t_w=[20.0], dt=0.05, record_every=4, n_lambda=400
    )
    D_theory = theory.exceptional_discriminant(d.z[-1, 0], d.z[-1, 1], alpha, kappa)
    c_theory = d.C[0, d.t >= 20.0, 0, 0]
    changes_theory = np.sum(np.diff(np.sign(c_theory)) != 0)
    rec = np.arange(1000, 2001, 25)
    x, z = _simulate(jax.random.split(key, 2), n, T, alpha, kappa, dt, 2000, rec)
    x, z = np.asarray(x), np.asarray(z)
    late = rec * dt >= 30.0
    z_mean = z[:, late].mean(axis=(0, 1))
    D_sim = theory.exceptional_discriminant(z_mean[0], z_mean[1], alpha, kappa)
    c_sim = np.einsum("sn,stn->st", x[:, 0, 0], x[:, :, 0]).mean(0) / n
    changes_sim = np.sum(np.diff(np.sign(c_sim)) != 0)
    if phase == "static":
        assert D_theory > 0.1 and D_sim > 0.05
        assert changes_theory == 0 and changes_sim == 0
    else:
        assert D_theory < -0.3 and D_sim < -0.15
        assert changes_theory >= 4 and changes_sim >= 2
