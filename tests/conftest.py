"""Strict test settings: float32 by default, fixed seeds, warnings are errors (pyproject)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# `diffphys run` in a test must not turn on the persistent compilation cache for the worker
os.environ.setdefault("DIFFPHYS_CACHE_DIR", "")
# Most tests are dominated by XLA:CPU compilation of small programs: LLVM's -O0 backend
# compiles them faster (measured: test_sk + test_rnn 87 -> 71 s wall, test_hopfield +
# test_ising_fused 74 -> 63 s, same results; XLA does not enable fast-math on the CPU, so the
# floating-point semantics do not change). Notebook kernels and subprocesses inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

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


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop JAX's compiled programs after each test module: a pytest-xdist worker runs ~180
    tests, and without this its resident memory grows past 9 GB (a worker was lost on the
    2-core, 24 GB machine)."""
    yield
    jax.clear_caches()


def pytest_collection_modifyitems(config, items):
    """The notebooks (20-170 s each, the longest tests) first: with `-n 2` and the worksteal
    scheduler (pyproject addopts) both workers then end on short tests instead of one waiting
    for the other's last notebook."""
    items.sort(key=lambda item: item.get_closest_marker("notebook") is None)
