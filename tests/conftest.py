"""Strict test settings: float32 by default, fixed seeds, warnings are errors (pyproject)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# `diffphys run` in a test must not turn on the persistent compilation cache for the worker
os.environ.setdefault("DIFFPHYS_CACHE_DIR", "")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def key(request):
    """A fixed PRNG key per test, derived from the test name and printed for reproduction."""
    import zlib

    seed = zlib.crc32(request.node.name.encode()) & 0x7FFFFFFF
    print(f"seed = {seed}")
    return jax.random.key(seed)
