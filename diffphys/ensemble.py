"""Run a function over a batch of keys and parameters: vmap, chunking, device sharding.

```python
keys = jax.random.split(jax.random.key(0), 1024)
out = ensemble.run(simulate, keys, temperatures)      # simulate(key, T) -> pytree
```

On several devices (GPUs, or CPU devices forced with
`XLA_FLAGS=--xla_force_host_platform_device_count=4`) the batch axis is sharded over a 1D
`Mesh` of all visible devices with `NamedSharding`. On several hosts, call
`jax.distributed.initialize()` first on every host: `jax.devices()` then spans all hosts and
the same call shards the batch over all of them (each host must run the same program, with
the same keys and parameters), and `ensemble.gather(out)` returns the whole result on every
host. `tests/test_ensemble.py::test_two_processes_equal_one` runs two local processes this way.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._errors import ConfigError

AXIS = "batch"


def device_mesh(devices=None) -> Mesh:
    """A 1D mesh named `"batch"` over `devices` (default: all visible devices)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (AXIS,))


def default_chunk_size(n: int | None = None, *, cpu: int | None = 1) -> int | None:
    """A chunk size (for `run`) or `lax.map` batch size chosen by the default backend.

    On the CPU a vmapped batch of long simulations (sequential loops, data-dependent
    `while_loop`s, large per-element work) runs no faster than one element at a time and
    multiplies the memory, so experiments evaluate their ensembles in small chunks there. On a
    GPU or TPU the same chunking would serialise the work; there the whole batch is vectorised.

    **Arguments:**

    - `n`: the batch size, if known (`None`: unknown).
    - `cpu`: the chunk size to use on the CPU backend (`None`: `lax.map`'s sequential loop, or
      `run`'s single vmap).

    **Returns:** on the CPU backend `cpu`; elsewhere `n`, the whole batch
    (`None` when `n` is `None`, which `run` reads as one vmap over the batch).
    """
    if jax.default_backend() == "cpu":
        return cpu
    return n


def _batch_size(args) -> int:
    sizes = {jnp.shape(leaf)[0] for leaf in jax.tree.leaves(args) if jnp.ndim(leaf) > 0}
    if len(sizes) != 1:
        raise ConfigError(
            "ensemble.run needs every batched argument to share one leading axis, got leading "
            f"sizes {sorted(sizes)}. Broadcast fixed arguments with functools.partial instead."
        )
    return sizes.pop()


def _pad(args, n_pad: int):
    if n_pad == 0:
        return args
    return jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], n_pad, axis=0)]), args)


def _shard(args, sharding: NamedSharding):
    """Place the batch on the mesh. On one process `device_put` does it; on several (after
    `jax.distributed.initialize`) the mesh has devices this process cannot address, so every
    process builds the global array from its own copy of the (identical) full batch, each
    contributing the shards of its local devices."""
    if sharding.is_fully_addressable:
        return jax.device_put(args, sharding)

    def put(a):
        if jax.dtypes.issubdtype(jnp.asarray(a).dtype, jax.dtypes.prng_key):
            data = put(jax.random.key_data(a))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, args)


def gather(out):
    """The full result of `run` as NumPy arrays on this process.

    On one process this is `jax.device_get`; after `jax.distributed.initialize` a sharded
    result spans devices of other processes, and every process must call `gather` (it is a
    collective) to receive all of it.
    """
    leaves = jax.tree.leaves(out)
    if all(getattr(a, "is_fully_addressable", True) for a in leaves):
        return jax.device_get(out)
    from jax.experimental import multihost_utils

    return jax.tree.map(lambda a: np.asarray(multihost_utils.process_allgather(a, tiled=True)), out)


# Compiled batched functions, keyed WEAKLY on the user's function (for a bound method, on the
# object it is bound to): the entry, its compilations and the arrays the function captures
# are freed as soon as the caller drops the function. A strong cache (the lru_cache this
# replaces) kept up to 128 closures and their captured arrays alive, which leaks memory in a
# notebook that builds a fresh closure in a loop.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _build(ref: Callable[[], Callable], chunk_size: int | None, mesh: Mesh | None, jit: bool):
    """The vmapped (or chunked), optionally jitted and sharded version of the function that
    `ref()` returns; it holds the function only through `ref` (a weak reference)."""

    def fn(*a):
        return ref()(*a)

    if chunk_size is None:

        def vfn(*a):
            return jax.vmap(fn)(*a)
    else:

        def vfn(*a):
            return jax.lax.map(lambda xs: fn(*xs), a, batch_size=chunk_size)

    if not jit:
        return vfn
    if mesh is None:
        return jax.jit(vfn)
    return jax.jit(vfn, out_shardings=NamedSharding(mesh, PartitionSpec(AXIS)))


def _batched(fn: Callable, chunk_size: int | None, mesh: Mesh | None, jit: bool) -> Callable:
    """`_build` for `fn`, cached per `(fn, chunk_size, mesh, jit)` while `fn` is alive, so that
    repeated calls with the same `fn` reuse one compilation. Functions that cannot be weakly
    referenced or hashed (e.g. an equinox module holding arrays) are not cached."""
    if isinstance(fn, types.MethodType):
        owner, sub, ref = fn.__self__, (fn.__func__,), weakref.WeakMethod(fn)
    else:
        owner, sub = fn, ()
        try:
            ref = weakref.ref(fn)
        except TypeError:
            return _build(lambda: fn, chunk_size, mesh, jit)
    key = (*sub, chunk_size, mesh, jit)
    try:
        entries = _CACHE.setdefault(owner, {})
    except TypeError:  # unhashable or not weakly referenceable
        return _build(lambda: fn, chunk_size, mesh, jit)
    if key not in entries:
        entries[key] = _build(ref, chunk_size, mesh, jit)
    return entries[key]


def run(
    fn: Callable,
    *args,
    chunk_size: int | None = None,
    mesh: Mesh | str | None = "auto",
    jit: bool = True,
):
    """Evaluate `fn` on every element of a batch: `out[i] = fn(*[a[i] for a in args])`.

    **Arguments:**

    - `fn`: a pure function of one batch element of each argument (keys, parameters, models).
    - `*args`: pytrees whose leaves all share a leading batch axis (typed PRNG keys included).
    - `chunk_size`: evaluate at most this many elements at once per device (`lax.map` over
      chunks of a `vmap`) to bound memory; `None` vectorises the whole batch.
    - `mesh`: `"auto"` shards over all visible devices when there are several, `None` never
      shards, or a `jax.sharding.Mesh` with a `"batch"` axis.
    - `jit`: compile the whole evaluation.

    Compilations are cached per `(fn, chunk_size, mesh)` for as long as `fn` is alive (the
    cache holds `fn` weakly, so dropping it frees its compilations and captured arrays): pass
    the same function object (not a fresh lambda) to reuse one compilation across calls.

    **Returns:** the stacked outputs, leading axis = batch size, identical (up to float
    reassociation, which XLA does not do across the batch) whatever the chunking or sharding.
    """
    if not args:
        raise ConfigError("ensemble.run needs at least one batched argument.")
    n = _batch_size(args)
    if chunk_size is not None and chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer or None, got {chunk_size}.")
    if mesh == "auto":
        mesh = device_mesh() if len(jax.devices()) > 1 else None
    elif isinstance(mesh, str):
        raise ConfigError(f"mesh must be 'auto', None or a jax.sharding.Mesh, got {mesh!r}.")
    n_dev = 1 if mesh is None else mesh.devices.size
    per_dev = -(-n // n_dev)
    if chunk_size is not None:
        per_dev = -(-per_dev // chunk_size) * chunk_size
    n_pad = per_dev * n_dev - n
    args = _pad(args, n_pad)

    if mesh is not None:
        args = _shard(args, NamedSharding(mesh, PartitionSpec(AXIS)))
    call = _batched(fn, chunk_size, mesh, jit)
    out = call(*args)
    if n_pad:
        out = jax.tree.map(lambda a: a[:n], out)
    return out
