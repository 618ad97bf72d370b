"""`diffphys bench --all` (diffphys/_bench.py): the one-command kernel benchmark suite.

Reference: the suite's contract (issue 12): one row per kernel and size with flips/ns (wall
and per CPU second), compile time and load average; machine, date and load in the header;
without a GPU the Pallas rows say so and the GPU target is reported open. Timings are not
asserted (no timed assertions in tests); the numbers must be finite and positive.
"""

import math
import re

import jax

from diffphys import _bench, _native
from diffphys.cli import main


def test_bench_all_quick_writes_the_table(tmp_path):
    out = tmp_path / "bench.md"
    assert main(["bench", "--all", "--quick", "--repeats", "1", "--out", str(out)]) == 0
    text = out.read_text()
    for field in ("- date:", "- machine:", "- load average at start:", "- GPU:"):
        assert field in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    rows = {(r[0].strip(), r[1].strip()): [c.strip() for c in r[2:]] for r in rows[1:]}
    gpu = jax.default_backend() == "gpu"
    expected = {
        ("fused-native", "16x16"),
        ("bitpacked-jax", "16x16"),
        ("fused-pallas", "64x64"),
    }
    assert set(rows) == expected
    measured = {("bitpacked-jax", "16x16")}
    if _native.available():
        measured.add(("fused-native", "16x16"))
    if gpu:
        measured.add(("fused-pallas", "64x64"))
    for key, cells in rows.items():
        if key in measured:
            wall, cpu, compile_s, load = (float(c) for c in cells[:4])
            assert all(math.isfinite(v) and v > 0 for v in (wall, cpu, compile_s)), key
        else:
            assert cells[0] == "-" and cells[-1], key  # skipped, with the reason
    if not gpu:
        assert re.search(r"GPU: none available; the GPU targets stay open", text)
        assert "no GPU available" in rows[("fused-pallas", "64x64")][-1]
    assert _bench.GPU_TARGET in text
