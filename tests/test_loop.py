"""The scan driver behind `sampling.run` and `training.train` (`diffphys/_loop.py`): checkpoint
segments of different lengths reproduce an uninterrupted run bit for bit and reuse compilations.

Compilations are counted by a Python side effect in the step: it runs only while JAX traces
the step, never when a compiled loop is reused."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffphys import log_times, models, sampling, training

N_STEPS = 4000


def _bounds(n_segments=8):
    """Checkpoint bounds cutting [0, N_STEPS] into `n_segments` pieces of different lengths."""
    bounds = np.unique(np.round(np.geomspace(50, N_STEPS, n_segments)).astype(int))
    assert len(bounds) == n_segments and len(set(np.diff(bounds))) == n_segments - 1
    return np.concatenate([[0], bounds])


def _segments(times, bounds):
    """Each segment records at the `times` inside it, relative to its start."""
    return [
        (int(lo), int(hi), [int(t - lo) for t in times if lo < t <= hi])
        for lo, hi in zip(bounds[:-1], bounds[1:])
    ]


def _n_buckets(segments):
    """Distinct padded record counts: each segment pads its number of records to a power of
    two (every segment ends with a record here, so there is no unrecorded tail)."""
    return len({1 << max(len(r) - 1, 0).bit_length() for _, _, r in segments})


def test_run_segments_reproduce_one_run_and_compile_per_bucket_only(key):
    base = sampling.checkerboard()
    traces = []

    def step(k, s, model, **kw):
        traces.append(1)
        return base.step(k, s, model, **kw)

    alg = sampling.SamplingAlgorithm(base.init, step)
    model = models.Ising((8, 8))
    s0 = alg.init(jnp.ones((8, 8), jnp.int8), model)

    def record(s):
        return s.x

    bounds = _bounds()
    times = np.union1d(log_times(N_STEPS, 40), bounds[1:])  # log-spaced + checkpoints
    full, trace = sampling.run(
        key, alg, s0, model, N_STEPS, record=record, record_at=times, beta=0.4
    )

    segments = _segments(times, bounds)
    traces.clear()
    state, records, infos = s0, [], []
    for i, (lo, hi, rec) in enumerate(segments):
        state, tr = sampling.run(
            key, alg, state, model, hi - lo, record=record, record_at=rec, start=lo, beta=0.4
        )
        if i == 0:
            per_compile = len(traces)
        records.append(np.asarray(tr["record"]))
        infos.append(np.asarray(tr["info"].acceptance_rate))

    np.testing.assert_array_equal(np.asarray(state.x), np.asarray(full.x))
    np.testing.assert_array_equal(np.concatenate(records), np.asarray(trace["record"]))
    np.testing.assert_array_equal(np.concatenate(infos), np.asarray(trace["info"].acceptance_rate))
    n_compiles = len(traces) / per_compile
    assert n_compiles == _n_buckets(segments) < len(segments), (n_compiles, len(segments))

    traces.clear()  # two new segment lengths with 2 records each: one compilation between them
    sampling.run(key, alg, state, model, 10, record=record, record_at=[3, 10], start=9, beta=0.4)
    sampling.run(key, alg, state, model, 20, record=record, record_at=[4, 20], start=90, beta=0.4)
    assert len(traces) == per_compile


def test_train_segments_under_vmap_reproduce_one_run_and_compile_per_bucket_only(key):
    traces = []

    def loss(p, batch, k):
        traces.append(1)
        return jnp.sum((p - batch) ** 2) + 0.1 * jnp.sum(p * jax.random.normal(k, p.shape))

    grad_fn = training.from_loss(loss, jnp.arange(4.0))
    opt = optax.sgd(0.05)
    keys = jax.random.split(key, 3)
    p0 = jnp.zeros((3, 4))

    def record(s):
        return s.params

    bounds = _bounds()
    times = np.union1d(log_times(N_STEPS, 30), bounds[1:])
    full, trace = jax.vmap(
        lambda k, p: training.train(k, p, grad_fn, opt, N_STEPS, record_at=times, record=record)
    )(keys, p0)

    segments = _segments(times, bounds)
    states = jax.vmap(lambda p: training.TrainState(p, opt.init(p), None))(p0)
    traces.clear()
    for i, (lo, hi, rec) in enumerate(segments):
        states, _ = jax.vmap(  # eager vmap: no outer jit, which would recompile per segment
            lambda k, s, lo=lo, hi=hi, rec=rec: training.train(
                k, s.params, grad_fn, opt, hi - lo, state=s, start=lo, record_at=rec, record=record
            )
        )(keys, states)
        if i == 0:
            per_compile = len(traces)

    np.testing.assert_array_equal(np.asarray(states.params), np.asarray(full.params))
    n_compiles = len(traces) / per_compile
    assert n_compiles == _n_buckets(segments) < len(segments), (n_compiles, len(segments))


def test_run_continues_past_the_last_record_time(key):
    """`n_steps` steps are run even when the last record time is earlier."""
    alg = sampling.checkerboard()
    model = models.Ising((8, 8))
    s0 = alg.init(jnp.ones((8, 8), jnp.int8), model)
    plain, _ = sampling.run(key, alg, s0, model, 50, beta=0.4)
    early, trace = sampling.run(
        key, alg, s0, model, 50, record=lambda s: s.energy, record_at=[10, 20], beta=0.4
    )
    np.testing.assert_array_equal(np.asarray(early.x), np.asarray(plain.x))
    assert np.asarray(trace["time"]).tolist() == [10, 20]
    assert np.asarray(trace["record"]).shape == (2,)
