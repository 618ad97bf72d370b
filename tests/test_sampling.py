"""Every sampler reproduces exact Boltzmann distributions (reference: brute-force enumeration,
`diffphys.exact`), tested statistically with a chi-square goodness-of-fit test on the final
states of many independent chains (p-value threshold 1e-3 with fixed seeds), and the chain
driver's recording/segmenting semantics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import chi2_pvalue, final_state_indices, state_index

from diffphys import exact, models, observables, sampling

P_MIN = 1e-3
N_CHAINS = 6000


def _spin_glass(key, lattice):
    kj, kh = jax.random.split(key)
    return models.Ising(
        lattice,
        J=models.random_bond_couplings(kj, lattice),
        h=0.3 * jax.random.normal(kh, lattice),
    )


@pytest.mark.parametrize(
    "name,alg",
    [
        ("metropolis-random", sampling.metropolis(order="random")),
        ("metropolis-sequential", sampling.metropolis(order="sequential")),
        ("heat-bath-random", sampling.heat_bath(order="random")),
        ("heat-bath-sequential", sampling.heat_bath(order="sequential")),
    ],
)
def test_single_site_ising_spin_glass_matches_enumeration(key, name, alg):
    """2x3 Edwards–Anderson glass with random fields (64 states) at beta = 0.7."""
    model = _spin_glass(jax.random.key(11), (2, 3))
    beta = 0.7
    idx = final_state_indices(key, alg, model, 40, beta, N_CHAINS)
    probs = np.asarray(exact.probabilities(model, beta), np.float64)
    counts = np.bincount(np.asarray(idx), minlength=probs.size)
    assert chi2_pvalue(counts, probs) > P_MIN


@pytest.mark.parametrize("rule", ["metropolis", "heat_bath"])
def test_checkerboard_matches_enumeration(key, rule):
    """2x4 torus spin glass (256 states, even sizes for the two colours) at beta = 0.6."""
    model = _spin_glass(jax.random.key(12), (2, 4))
    beta = 0.6
    idx = final_state_indices(key, sampling.checkerboard(rule=rule), model, 40, beta, N_CHAINS)
    probs = np.asarray(exact.probabilities(model, beta), np.float64)
    counts = np.bincount(np.asarray(idx), minlength=probs.size)
    assert chi2_pvalue(counts, probs) > P_MIN


@pytest.mark.parametrize(
    "alg", [sampling.metropolis(), sampling.heat_bath(), sampling.checkerboard(rule="heat_bath")]
)
def test_potts_samplers_match_enumeration(key, alg):
    """3-state Potts on a 2x2 torus with random bonds and fields (81 states) at beta = 0.9."""
    kj, kh = jax.random.split(jax.random.key(13))
    model = models.Potts(
        (2, 2), q=3, J=jax.random.normal(kj, (2, 2, 2)), h=jax.random.normal(kh, (2, 2, 3))
    )
    beta = 0.9
    idx = final_state_indices(key, alg, model, 40, beta, N_CHAINS)
    probs = np.asarray(exact.probabilities(model, beta), np.float64)
    counts = np.bincount(np.asarray(idx), minlength=probs.size)
    assert chi2_pvalue(counts, probs) > P_MIN


def test_parallel_tempering_matches_enumeration_at_every_temperature(key):
    """Replica exchange on a 2x3 spin glass: each rung's marginal is its Boltzmann law."""
    model = _spin_glass(jax.random.key(14), (2, 3))
    betas = jnp.asarray([0.3, 0.6, 1.0, 1.6])
    pt = sampling.parallel_tempering(sampling.metropolis(), betas)

    def chain(k):
        k0, k1 = jax.random.split(k)
        xs = jax.vmap(lambda kk: model.random_state(key=kk))(jax.random.split(k0, 4))
        s, tr = sampling.run(k1, pt, pt.init(xs, model), model, 30, every=30)
        return jax.vmap(lambda x: state_index(model, x))(s.states.x), tr["info"]

    idx, swaps = jax.jit(jax.vmap(chain))(jax.random.split(key, 3000))
    for r, beta in enumerate(np.asarray(betas)):
        probs = np.asarray(exact.probabilities(model, float(beta)), np.float64)
        counts = np.bincount(np.asarray(idx[:, r]), minlength=probs.size)
        assert chi2_pvalue(counts, probs) > P_MIN, f"rung {r}"
    rates = np.asarray(sampling.swap_rates(swaps))
    assert rates.shape == (3,) and np.all((rates > 0.05) & (rates <= 1.0))


def test_langevin_matches_discrete_time_ou_variance(key):
    """E = a x^2 / 2 per coordinate. Euler–Maruyama with step dt has the exact stationary
    variance 1 / (beta a (1 - a dt / 2)) (a discrete AR(1) process), checked to 4 sigma."""

    class Quadratic(models.AbstractModel):
        a: jax.Array

        def energy(self, x):
            return 0.5 * jnp.sum(self.a * x**2)

    a = jnp.asarray([0.5, 1.0, 2.0])
    beta, dt = 2.0, 0.1
    model = Quadratic(a)
    alg = sampling.langevin(beta=beta, dt=dt)
    s = alg.init(jnp.zeros(3), model)
    s, tr = sampling.run(key, alg, s, model, 200_000, record=lambda s: s.x, every=1)
    x = np.asarray(tr["record"][1000:])
    expected = 1.0 / (beta * np.asarray(a) * (1 - np.asarray(a) * dt / 2))
    var, err = observables.jackknife(lambda m2: m2, jnp.asarray(x**2), n_blocks=50)
    assert np.all(np.abs(np.asarray(var) - expected) < 4 * np.asarray(err) + 1e-3), (var, expected)


def test_spherical_langevin_stays_on_sphere_and_is_isotropic(key):
    """With E = 0 the spherical dynamics samples the uniform law on |x|^2 = N: <x_i^2> = 1."""

    class Flat(models.AbstractModel):
        def energy(self, x):
            return jnp.sum(0.0 * x)

    n = 8
    alg = sampling.langevin(beta=1.0, dt=0.05, spherical=True)
    model = Flat()
    s = alg.init(jnp.ones(n), model)
    s, tr = sampling.run(key, alg, s, model, 20_000, record=lambda s: s.x, every=10)
    x = np.asarray(tr["record"])
    np.testing.assert_allclose(np.sum(x**2, axis=1), n, rtol=1e-4)
    np.testing.assert_allclose(np.mean(x[200:] ** 2, axis=0), 1.0, atol=0.15)


def test_run_records_at_requested_times_and_segments_reproduce_a_single_run(key):
    """Splitting a chain with `start=` gives bit-identical results (keys fold in the step)."""
    model = models.Ising((8, 8))
    alg = sampling.checkerboard()
    s0 = alg.init(jnp.ones((8, 8), jnp.int8), model)
    s_full, tr = sampling.run(
        key, alg, s0, model, 50, record=lambda s: s.energy, every=10, beta=0.4
    )
    assert np.asarray(tr["time"]).tolist() == [10, 20, 30, 40, 50]
    s_half, _ = sampling.run(key, alg, s0, model, 20, beta=0.4)
    s_rest, tr2 = sampling.run(
        key, alg, s_half, model, 30, record=lambda s: s.energy, every=10, start=20, beta=0.4
    )
    np.testing.assert_array_equal(np.asarray(s_full.x), np.asarray(s_rest.x))
    np.testing.assert_array_equal(np.asarray(tr["record"][2:]), np.asarray(tr2["record"]))
    times = np.asarray([1, 3, 10, 50])
    _, tr3 = sampling.run(key, alg, s0, model, 50, record=lambda s: s.energy, record_at=times)
    assert tr3["record"].shape == (4,)


def test_annealing_schedule_changes_beta_per_step(key):
    """A schedule ending at a low temperature orders the ferromagnet (energy near -2 per spin)."""
    model = models.Ising((16, 16))
    alg = sampling.checkerboard()
    s = alg.init(model.random_state(key=key), model)
    betas = jnp.linspace(0.1, 1.5, 400)
    s, tr = sampling.run(
        key,
        alg,
        s,
        model,
        400,
        record=lambda s: s.energy,
        record_at=[1, 400],
        schedule={"beta": betas},
    )
    e = np.asarray(tr["record"]) / 256
    assert e[0] > -1.0 and e[-1] < -1.7
    with pytest.raises(ValueError, match="leading length"):
        sampling.run(key, alg, s, model, 10, schedule={"beta": betas})


def test_model_specific_fast_kernels_are_reachable_from_sampling():
    """`sampling.fused_checkerboard` and friends are the `models` kernels themselves."""
    names = ("fused_checkerboard", "ising_checkerboard_metropolis", "multispin_checkerboard")
    for name in (*names, "sk_metropolis", "swendsen_wang", "wolff"):
        assert getattr(sampling, name) is getattr(models, name)
        assert name in dir(sampling)
