"""The Pallas kernel of `models.fused_checkerboard(..., backend="pallas")`, in Pallas
interpret mode on the CPU.

References: Random123's published known-answer vectors of Philox4x32-10 (Salmon et al.
2011); brute-force enumeration (`diffphys.exact.probabilities`) with the chi-square test of
`tests/test_ising_fused.py` (p > 1e-3, fixed seeds) on 6000 independent copies of a small
model; Onsager's (1944) exact energy and the pure-JAX reference kernel
`ising_checkerboard_metropolis` (energy and |m| within 5 combined standard errors).

Interpret mode runs every grid program in a sequential loop, so vmapping 6000 chains is slow
(~1 s per sweep here). The CI chi-square tests therefore run the 6000 copies inside ONE
lattice, decoupled by zero couplings along one axis: a 2D lattice (6000, 8) with J = 0 along
axis 0 is 6000 independent rings of 8 sites (exercising the column neighbours, wrap-around
and row parity), and a 3D lattice (2, 4, 6000) with J = 0 along the last axis is 6000
independent copies of the 2D (2, 4) glass of `test_ising_fused.py` (exercising the row
neighbours, with one program per row so the halo crosses programs). Every copy has its own
sites, hence its own random counters.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import chi2_pvalue, sampler_pvalue
from test_ising_fused import N_CHAINS, N_SIGMA, P_MIN, _chains, _glass, _mean_se

from diffphys import ConfigError, ShapeError, _native, exact, sampling, theory
from diffphys.models import Ising, fused_checkerboard, ising_checkerboard_metropolis
from diffphys.models._ising_pallas import philox4x32

native = pytest.mark.skipif(not _native.available(), reason=_native.reason())


@pytest.mark.parametrize(
    "ctr, key, out",
    [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_philox_known_answers(ctr, key, out):
    """The in-kernel generator (uint32 arithmetic only) reproduces Random123's kat_vectors
    for Philox4x32-10."""
    got = philox4x32(*(np.uint32(v) for v in ctr), *(np.uint32(v) for v in key))
    assert tuple(int(v) for v in got) == out


def _copies_pvalue(key, model, small, n_steps, beta, *, tile, axis, width=1):
    """Chi-square p-value of the final states of the independent copies of `small` laid
    along `axis` of `model`'s lattice (`width` consecutive sites of that axis per copy; with
    width 1 the other axes are `small`'s), against enumeration of `small`."""
    n = model.lattice[axis] // width

    def copies(x):  # (copies, sites of `small` in its row-major order)
        x = x.reshape(*x.shape[:axis], n, width, *x.shape[axis + 1 :])
        x = jnp.moveaxis(x, axis, 0)
        return x.reshape(n, -1)

    alg = fused_checkerboard(sweeps_per_step=5, backend="pallas", couplings="bonds", tile=tile)

    @jax.jit
    def run(k):
        k0, k1 = jax.random.split(k)
        s = alg.init(model.random_state(key=k0), model)
        s, _ = sampling.run(k1, alg, s, model, n_steps, beta=beta)
        x = copies(s.x)
        idx = small.value_index(x)
        return jnp.sum(idx * small.q ** jnp.arange(small.n_sites, dtype=jnp.int32), axis=1)

    idx = run(key)
    probs = np.asarray(exact.probabilities(small, beta), np.float64)
    return chi2_pvalue(np.bincount(np.asarray(idx), minlength=probs.size), probs)


def test_2d_copies_of_open_glass_match_enumeration(key):
    """2D kernel: 6000 copies of a (2, 4) glass in a field, open along axis 1 (its wrap bond
    is 0), side by side along axis 1 of a (2, 24000) lattice (zero bonds between copies),
    one program per row (the axis-0 halo crosses programs; n_0 = 2, so the +e_0 and -e_0
    bonds reach the same row), 100 sweeps at beta = 0.6: final states against enumeration of
    the small glass. Copies alternate in column parity, so both column offsets are used."""
    g = _glass(12, (2, 4))
    small = Ising((2, 4), J=g.J.at[1, :, 3].set(0.0), h=g.h)
    K = N_CHAINS
    model = Ising((2, 4 * K), J=jnp.tile(small.J, (1, 1, K)), h=jnp.tile(small.h, (1, K)))
    assert _copies_pvalue(key, model, small, 20, 0.6, tile=1, axis=1, width=4) > P_MIN


@pytest.mark.slow  # CI budget: the 2D copies test above covers the shared code
def test_3d_copies_of_2d_glass_match_enumeration(key):
    """3D kernel: 6000 copies of the (2, 4) glass in a field of `test_ising_fused.py` along
    the last axis of a (2, 4, 6000) lattice (J = 0 along it), one program per row of axis 0,
    100 sweeps at beta = 0.6, final states against enumeration of the (2, 4) glass."""
    small = _glass(12, (2, 4))
    K = N_CHAINS
    J = jnp.concatenate(
        [jnp.broadcast_to(small.J[..., None], (2, 2, 4, K)), jnp.zeros((1, 2, 4, K))]
    )
    model = Ising((2, 4, K), J=J, h=jnp.broadcast_to(small.h[..., None], (2, 4, K)))
    assert _copies_pvalue(key, model, small, 20, 0.6, tile=1, axis=2) > P_MIN


@pytest.mark.slow
def test_2d_ring_copies_match_enumeration(key):
    """2D kernel: 6000 rings of 8 sites (Gaussian bonds, random fields; J = 0 between rows)
    after 100 sweeps, final states against the enumerated ring (`Ising((8,))`)."""
    kj, kh = jax.random.split(jax.random.key(21))
    Jr, hr = jax.random.normal(kj, (8,)), 0.3 * jax.random.normal(kh, (8,))
    ring = Ising((8,), J=Jr[None], h=hr)
    L0 = N_CHAINS
    J = jnp.stack([jnp.zeros((L0, 8)), jnp.broadcast_to(Jr, (L0, 8))])
    model = Ising((L0, 8), J=J, h=jnp.broadcast_to(hr, (L0, 8)))
    assert _copies_pvalue(key, model, ring, 20, 0.6, tile=L0 // 4, axis=0) > P_MIN


@pytest.mark.slow
@pytest.mark.parametrize("case", ["2d-uniform", "3d-afm-field"])
def test_vmapped_chains_match_enumeration(key, case):
    """The genuine small models (n_0 = 2: the +e_0 and -e_0 bonds reach the same row),
    6000 vmapped chains (a batch grid axis in interpret mode: slow), 100 sweeps."""
    model, beta = {
        "2d-uniform": (Ising((2, 4), J=0.8, h=0.35), 0.45),
        "3d-afm-field": (Ising((2, 2, 2), J=-0.6, h=0.4), 0.8),
    }[case]
    alg = fused_checkerboard(sweeps_per_step=5, backend="pallas", tile=1)
    assert sampler_pvalue(key, alg, model, 20, beta, N_CHAINS) > P_MIN


@pytest.mark.parametrize("lattice", [(6, 16), pytest.param((4, 6, 8), marks=pytest.mark.slow)])
def test_resume_tiles_and_couplings_bit_identical(key, lattice):
    """3 + 3 sweeps with uniform couplings and one row per program == 6 sweeps with per-bond
    couplings and the whole axis in one program, bit for bit: the stream is keyed by the
    absolute sweep index (resumable), the tile size does not change the chain (the halo is
    read right), and the two coupling paths agree; the energy equals the model's energy
    recomputed from the spins."""
    model = Ising(lattice, J=-0.7 if len(lattice) == 3 else 1.1, h=0.2)
    x = model.random_state(key=key)
    a3 = fused_checkerboard(0.45, sweeps_per_step=3, backend="pallas", tile=1)
    ab = fused_checkerboard(0.45, sweeps_per_step=6, backend="pallas", couplings="bonds")
    k = jax.random.key(3)
    step3 = jax.jit(lambda s: a3.step(k, s, model))
    s3, _ = step3(step3(a3.init(x, model))[0])
    sb, info = jax.jit(lambda s: ab.step(k, s, model))(ab.init(x, model))
    assert int(s3.sweep) == 6 and s3.uniform and not sb.uniform
    assert not np.array_equal(sb.x, x)
    np.testing.assert_array_equal(s3.spins, sb.spins)
    np.testing.assert_allclose(sb.energy, model.energy(sb.x), rtol=1e-5, atol=1e-4)
    assert 0.0 < float(info.acceptance_rate) < 1.0


@pytest.mark.slow
def test_vmap_equals_single_chains(key):
    """A vmapped pair of chains (a batch grid axis) equals the chains run one by one."""
    model = Ising((6, 16), J=1.1, h=0.2)
    alg = fused_checkerboard(0.45, sweeps_per_step=3, backend="pallas", tile=2)
    step = jax.jit(lambda kk, s: alg.step(kk, s, model)[0])
    xs = jax.vmap(lambda kk: model.random_state(key=kk))(jax.random.split(key, 2))
    keys = jax.random.split(jax.random.key(4), 2)
    st = jax.vmap(lambda xx: alg.init(xx, model))(xs)
    batched = jax.jit(jax.vmap(step))(keys, st)
    for i in range(2):
        single = step(keys[i], jax.tree.map(lambda v, i=i: v[i], st))
        np.testing.assert_array_equal(single.spins, batched.spins[i])


@pytest.mark.slow
@pytest.mark.parametrize("beta", [0.3, 0.6])
def test_onsager_energy_and_reference_kernel_L32(key, beta):
    """L = 32 at beta = 0.3 and 0.6 (away from beta_c, exponentially small finite-size
    corrections): the energy per spin equals Onsager's within 5 sigma (16 chains of 300
    sweeps), and energy and |m| agree with the pure-JAX reference kernel
    `ising_checkerboard_metropolis` within 5 combined sigma."""
    model = Ising((32, 32))
    k1, k2 = jax.random.split(key)
    args = (model, beta, 16, 75, 25)
    alg = fused_checkerboard(sweeps_per_step=4, backend="pallas")
    fast = _chains(k1, alg, *args, ordered=True)
    ref = _chains(k2, ising_checkerboard_metropolis(), model, beta, 16, 300, 100, ordered=True)
    e, se = _mean_se(fast[0])
    onsager = float(theory.onsager_energy(1.0 / beta))
    assert abs(e - onsager) < N_SIGMA * se, (e, se, onsager)
    for a, b in zip(fast, ref):
        (ma, sa), (mb, sb) = _mean_se(a), _mean_se(b)
        assert abs(ma - mb) < N_SIGMA * np.hypot(sa, sb), (ma, sa, mb, sb)


@native
@pytest.mark.slow
def test_agrees_with_native_on_3d_glass(key):
    """A 3D glass (8^3, Gaussian bonds, random fields) at beta = 0.5: energy and |m| of the
    Pallas and native kernels agree within 5 combined sigma over 8 chains each."""
    model = _glass(5, (8, 8, 8))
    k1, k2 = jax.random.split(key)
    args = (model, 0.5, 8, 60, 20)
    p = _chains(k1, fused_checkerboard(sweeps_per_step=4, backend="pallas"), *args, ordered=False)
    n = _chains(k2, fused_checkerboard(sweeps_per_step=4, backend="native"), *args, ordered=False)
    for a, b in zip(p, n):
        (ma, sa), (mb, sb) = _mean_se(a), _mean_se(b)
        assert abs(ma - mb) < N_SIGMA * np.hypot(sa, sb), (ma, sa, mb, sb)


def test_errors():
    """Bad tiles are one-line errors before anything compiles."""
    with pytest.raises(ConfigError, match="tile"):
        fused_checkerboard(backend="pallas", tile=0)
    with pytest.raises(ShapeError, match="divisor"):
        fused_checkerboard(backend="pallas", tile=3).init(jnp.ones((4, 4), jnp.int8), Ising((4, 4)))
    with pytest.raises(ShapeError, match="power-of-two"):
        fused_checkerboard(backend="pallas", interpret=False).init(
            jnp.ones((6, 12), jnp.int8), Ising((6, 12))
        )
    if jax.default_backend() != "gpu":
        alg, model = fused_checkerboard(backend="pallas", interpret=False), Ising((4, 4))
        with pytest.raises(ConfigError, match="needs a GPU"):
            alg.step(jax.random.key(0), alg.init(jnp.ones((4, 4), jnp.int8), model), model)
