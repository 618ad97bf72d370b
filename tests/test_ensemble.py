"""ensemble.run: vmap, chunking and device sharding give the same numbers as a Python loop."""

import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffphys import ConfigError, ensemble, models, sampling


def _simulate(key, beta):
    model = models.Ising((8, 8))
    alg = sampling.checkerboard()
    s = alg.init(jnp.ones((8, 8), jnp.int8), model)
    s, tr = sampling.run(key, alg, s, model, 20, record=lambda s: s.energy, every=5, beta=beta)
    return {"energy": tr["record"], "m": jnp.mean(s.x.astype(jnp.float32))}


def test_vmap_and_chunks_equal_a_python_loop():
    keys = jax.random.split(jax.random.key(0), 7)
    betas = jnp.linspace(0.2, 0.6, 7)
    one = jax.jit(_simulate)
    loop = [one(k, b) for k, b in zip(keys, betas)]
    full = ensemble.run(_simulate, keys, betas, mesh=None)
    chunked = ensemble.run(_simulate, keys, betas, chunk_size=3, mesh=None)
    for i, ref in enumerate(loop):
        for name in ref:
            np.testing.assert_array_equal(np.asarray(full[name][i]), np.asarray(ref[name]))
            np.testing.assert_array_equal(np.asarray(chunked[name][i]), np.asarray(ref[name]))


def test_compilation_cache_frees_dropped_functions():
    """The compilation cache holds the user's function weakly: calls with the same closure
    reuse one entry, a bound method is cached on its object, and once the caller drops the
    closure, the array it captured is freed (a strong cache, the lru_cache of 128 entries it
    replaced, kept such closures and their arrays alive: a leak in a notebook loop)."""
    import gc
    import weakref

    captured = np.arange(4.0, dtype=np.float32)
    freed = weakref.ref(captured)

    def closure(a):
        return lambda x: x * a

    f = closure(captured)
    xs = jnp.ones((3, 4), jnp.float32)
    ref = np.asarray(xs) * captured
    np.testing.assert_array_equal(ensemble.run(f, xs, mesh=None), ref)
    np.testing.assert_array_equal(ensemble.run(f, xs, mesh=None), ref)
    assert len(ensemble._CACHE[f]) == 1
    np.testing.assert_array_equal(ensemble.run(f, xs, chunk_size=2, mesh=None), ref)
    assert len(ensemble._CACHE[f]) == 2

    class Scale:
        def __init__(self, a):
            self.a = a

        def apply(self, x):
            return x * self.a

    obj = Scale(captured)
    for _ in range(2):
        np.testing.assert_array_equal(ensemble.run(obj.apply, xs, mesh=None), ref)
    assert len(ensemble._CACHE[obj]) == 1

    class Mul(eqx.Module):  # unhashable (an array field): evaluated, not cached
        a: jax.Array

        def __call__(self, x):
            return x * self.a

    np.testing.assert_array_equal(ensemble.run(Mul(jnp.asarray(ref[0])), xs, mesh=None), ref)

    del f, obj, captured
    gc.collect()
    assert freed() is None


def test_bad_batches_are_rejected():
    with pytest.raises(ConfigError, match="leading axis"):
        ensemble.run(lambda a, b: a + b, jnp.ones(3), jnp.ones(4))
    with pytest.raises(ConfigError, match="chunk_size"):
        ensemble.run(lambda a: a, jnp.ones(3), chunk_size=0)


SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from diffphys import ensemble, models, sampling
    assert len(jax.devices()) == 4, jax.devices()

    def simulate(key, beta):
        model = models.Ising((8, 8))
        alg = sampling.checkerboard()
        s = alg.init(jnp.ones((8, 8), jnp.int8), model)
        s, tr = sampling.run(key, alg, s, model, 20, record=lambda s: s.energy, every=5, beta=beta)
        return tr["record"]

    keys = jax.random.split(jax.random.key(0), 10)   # 10 is not a multiple of 4: padding
    betas = jnp.linspace(0.2, 0.6, 10)
    sharded = ensemble.run(simulate, keys, betas)
    assert len(sharded.sharding.device_set) == 4 or sharded.shape[0] == 10
    single = ensemble.run(simulate, keys, betas, mesh=None)
    chunked = ensemble.run(simulate, keys, betas, chunk_size=2)
    np.save("OUT", np.stack([np.asarray(sharded), np.asarray(single), np.asarray(chunked)]))
    """
)


@pytest.mark.slow  # CI budget: runs nightly (.ci/slow)
def test_sharded_over_four_cpu_devices_equals_single_device(tmp_path):
    """XLA_FLAGS forces 4 host devices in a fresh process; results must be identical."""
    out = tmp_path / "out.npy"
    env = dict(
        os.environ,
        XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4",
        JAX_PLATFORMS="cpu",
    )
    subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("OUT", str(out))], env=env, check=True, timeout=300
    )
    sharded, single, chunked = np.load(out)
    np.testing.assert_array_equal(sharded, single)
    np.testing.assert_array_equal(chunked, single)
    ref = np.asarray(
        _simulate(jax.random.split(jax.random.key(0), 10)[3], jnp.linspace(0.2, 0.6, 10)[3])[
            "energy"
        ]
    )
    np.testing.assert_array_equal(single[3], ref)


MULTIHOST = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address="localhost:PORT", num_processes=2, process_id=int(sys.argv[1])
    )
    import jax.numpy as jnp, numpy as np
    from diffphys import ensemble, models, sampling
    assert len(jax.devices()) == 4 and len(jax.local_devices()) == 2, jax.devices()

    def simulate(key, beta):
        model = models.Ising((8, 8))
        alg = sampling.checkerboard()
        s = alg.init(jnp.ones((8, 8), jnp.int8), model)
        s, tr = sampling.run(key, alg, s, model, 20, record=lambda s: s.energy, every=5, beta=beta)
        return {"energy": tr["record"], "m": jnp.mean(s.x.astype(jnp.float32))}

    keys = jax.random.split(jax.random.key(0), 10)   # 10 is not a multiple of 4: padding
    out = ensemble.gather(ensemble.run(simulate, keys, jnp.linspace(0.2, 0.6, 10)))
    np.save(f"OUT{sys.argv[1]}.npy", np.concatenate([out["energy"], out["m"][:, None]], 1))
    """
)


def test_two_processes_equal_one(tmp_path):
    """Multi-host, tested on one machine: two processes joined by `jax.distributed.initialize`
    on localhost (gloo CPU collectives), two CPU devices each, shard one `ensemble.run` over the
    four devices; `ensemble.gather` gives both processes the whole result, which must equal the
    single-process, unsharded run with the same keys bit for bit."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    script = MULTIHOST.replace("PORT", str(port)).replace("OUT", str(tmp_path / "out"))
    env = dict(
        os.environ,
        XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(i)], env=env, stderr=subprocess.PIPE)
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    keys = jax.random.split(jax.random.key(0), 10)
    ref = ensemble.run(_simulate, keys, jnp.linspace(0.2, 0.6, 10), mesh=None)
    ref = np.concatenate([np.asarray(ref["energy"]), np.asarray(ref["m"])[:, None]], 1)
    for i in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"out{i}.npy"), ref)
