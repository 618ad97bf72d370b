"""The CLI's persistent compilation cache: folder resolution and a second process hitting it.

Reference: JAX's own cache events (`/jax/compilation_cache/cache_hits` and `cache_misses`,
`jax.monitoring`) counted in two fresh processes that compile the same function.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffphys import cli

_CHILD = r"""
import json, sys
import jax, jax.numpy as jnp
from jax import monitoring
from diffphys import cli
counts = {"hits": 0, "misses": 0}
def _ev(event, **kw):
    if event == "/jax/compilation_cache/cache_hits":
        counts["hits"] += 1
    elif event == "/jax/compilation_cache/cache_misses":
        counts["misses"] += 1
monitoring.register_event_listener(_ev)
cli.enable_compilation_cache(cli.cache_dir(None))
f = jax.jit(lambda x: jnp.sin(x) * 3.0 + jnp.cumsum(x))
print(float(f(jnp.arange(17.0)).sum()))
print("COUNTS " + json.dumps(counts))
"""


def _run(env):
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    ).stdout
    lines = out.splitlines()
    return float(lines[0]), json.loads(lines[-1][len("COUNTS ") :])


@pytest.mark.slow  # two fresh interpreters importing jax: ~1 min of the CI budget
def test_second_process_hits_the_cache(tmp_path):
    """Two processes with DIFFPHYS_CACHE_DIR set: the first misses and writes cache files,
    the second hits and misses nothing; the results are identical."""
    env = {**os.environ, "DIFFPHYS_CACHE_DIR": str(tmp_path / "jax"), "JAX_PLATFORMS": "cpu"}
    v1, c1 = _run(env)
    files = [p for p in (tmp_path / "jax").rglob("*") if p.is_file()]
    assert c1["misses"] >= 1 and c1["hits"] == 0
    assert files
    v2, c2 = _run(env)
    assert c2["hits"] >= 1 and c2["misses"] == 0
    assert v1 == v2


def test_cache_folder_resolution(monkeypatch, tmp_path):
    """Flag > DIFFPHYS_CACHE_DIR > $XDG_CACHE_HOME/diffphys/jax > ~/.cache/diffphys/jax;
    an empty flag or variable disables the cache."""
    monkeypatch.delenv("DIFFPHYS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cli.cache_dir(None) == tmp_path / "diffphys" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cli.cache_dir(None) == Path.home() / ".cache" / "diffphys" / "jax"
    monkeypatch.setenv("DIFFPHYS_CACHE_DIR", str(tmp_path / "env"))
    assert cli.cache_dir(None) == tmp_path / "env"
    assert cli.cache_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert cli.cache_dir("") is None
    monkeypatch.setenv("DIFFPHYS_CACHE_DIR", "")
    assert cli.cache_dir(None) is None
