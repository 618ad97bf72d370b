"""Data sets: scikit-learn digits, IDX files written by the test itself, synthetic clusters.

References: the IDX format specification (LeCun, Cortes, Burges, MNIST page: magic 0x00000803
for uint8 images, big-endian int32 sizes), the self-consistency m = tanh(beta m) of the
Curie-Weiss magnetisation, and binomial statistics of the cluster magnetisations.
"""

import gzip
import struct

import jax
import numpy as np
import pytest

from diffphys import ConfigError, ShapeError
from diffphys.data import (
    clustered_binary,
    curie_weiss_magnetisation,
    image_grid,
    load_digits,
    load_mnist_idx,
    read_idx,
    write_idx,
)


def test_digits():
    x, y = load_digits(return_labels=True)
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.shape == (1797,)
    assert set(np.unique(x)) == {0.0, 1.0}
    grey = load_digits(binarize=False)
    assert grey.min() == 0.0 and grey.max() == 1.0
    assert set(np.unique(load_digits(spins=True))) == {-1.0, 1.0}
    with pytest.raises(ConfigError):
        load_digits(binarize=False, spins=True)


def _write_raw_mnist(path, images, gz=False):
    """Independent writer following the MNIST page byte by byte (magic 2051 = 0x00000803)."""
    header = struct.pack(">iiii", 2051, images.shape[0], images.shape[1], images.shape[2])
    raw = header + images.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_loader(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    ext = ".gz" if gz else ""
    _write_raw_mnist(tmp_path / f"train-images-idx3-ubyte{ext}", images, gz)
    raw = struct.pack(">ii", 2049, 7) + labels.tobytes()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(raw)
    x, y = load_mnist_idx(tmp_path, binarize=False, return_labels=True)
    np.testing.assert_allclose(x, images.reshape(7, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    xb = load_mnist_idx(tmp_path, n=3)
    np.testing.assert_array_equal(xb, (images[:3].reshape(3, -1) / 255.0 > 0.5).astype(np.float32))
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        load_mnist_idx(tmp_path, split="test")


def test_idx_round_trip_and_corruption(tmp_path):
    for arr in (np.arange(24, dtype=np.int32).reshape(2, 3, 4), np.linspace(0, 1, 5)):
        write_idx(tmp_path / "a.idx.gz", arr)
        np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), arr)
    write_idx(tmp_path / "b.idx", np.zeros((4, 4), np.uint8))
    data = (tmp_path / "b.idx").read_bytes()
    (tmp_path / "c.idx").write_bytes(data[:-3])
    with pytest.raises(ShapeError, match="truncated"):
        read_idx(tmp_path / "c.idx")
    (tmp_path / "d.idx").write_bytes(b"\x01\x02" + data[2:])
    with pytest.raises(ShapeError, match="magic"):
        read_idx(tmp_path / "d.idx")


def test_curie_weiss_magnetisation():
    """m* solves m = tanh(beta m); 0 in the paramagnetic phase beta <= 1."""
    assert curie_weiss_magnetisation(0.9) == 0.0
    for beta in (1.1, 1.5, 3.0):
        m = curie_weiss_magnetisation(beta)
        assert m > 0 and abs(m - np.tanh(beta * m)) < 1e-10


def test_clustered_binary_statistics(key):
    """Within a cluster, <s_i xi_i> = m: the mean over 20000 samples x 50 sites lies within
    5 binomial standard errors of m; K = 2 centres are a symmetric pair."""
    m = 0.4
    x, labels, centres = clustered_binary(key, 20000, 50, n_clusters=2, m=m, spins=True)
    np.testing.assert_array_equal(centres[0], -centres[1])
    overlap = np.mean(x * centres[labels])
    sem = np.sqrt((1 - m**2) / x.size)
    assert abs(overlap - m) < 5 * sem
    x01, _, _ = clustered_binary(jax.random.key(1), 10, 8, n_clusters=3)
    assert set(np.unique(x01)) <= {0.0, 1.0} and x01.shape == (10, 8)
    with pytest.raises(ConfigError):
        clustered_binary(key, 10, 8, m=1.5)


def test_image_grid():
    g = image_grid(np.ones((3, 4)), (2, 2), n_cols=2, pad=1)
    assert g.shape == (7, 7) and g.sum() == pytest.approx(12 + 0.5 * (49 - 12))
