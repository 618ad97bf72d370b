"""Data sets for Boltzmann machines and generative models.

- `load_digits`: scikit-learn's 8x8 handwritten digits (1797 images, shipped with scikit-learn,
  no download), scaled to [0, 1] and optionally binarised.
- `load_mnist_idx` / `read_idx` / `write_idx`: the standard MNIST IDX files (LeCun et al.) read
  from disk (`train-images-idx3-ubyte[.gz]` ...). No PyPI package was found that ships an
  MNIST subset inside the wheel without downloading it, so MNIST is read from files the user
  provides.
- `clustered_binary`: synthetic clustered binary data, the analytic set-up of Bachtis, Biroli,
  Decelle, Seoane (arXiv 2405.14689): in the thermodynamic limit the Curie–Weiss / Mattis
  measure $P(s) \\propto \\exp(\\frac{\\beta}{2N}(\\xi\\cdot s)^2)$ at $\\beta > 1$ is an equal
  mixture of two product measures with magnetisation $\\pm m^*\\xi$, $m^* = \\tanh(\\beta m^*)$;
  with more centres it is a mixture of such "modes".
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ConfigError, ShapeError

_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {np.dtype(v).str.lstrip("<>|="): k for k, v in _IDX_DTYPES.items()}


def _binarize(x: np.ndarray, binarize) -> np.ndarray:
    if binarize is False or binarize is None:
        return x.astype(np.float32)
    threshold = 0.5 if binarize is True else float(binarize)
    return (x > threshold).astype(np.float32)


def load_digits(binarize=True, *, return_labels: bool = False, spins: bool = False):
    """scikit-learn's 8x8 digits (UCI optdigits test set, 1797 images), flattened to 64 pixels.

    **Arguments:**

    - `binarize`: `True` thresholds the [0, 1] intensities at 0.5, a float thresholds there,
      `False` keeps grey levels in [0, 1].
    - `return_labels`: also return the digit labels (int32).
    - `spins`: map binary pixels {0, 1} to {-1, +1} (only with `binarize`).

    **Returns:** `X` of shape `(1797, 64)` float32 (and `y` of shape `(1797,)`).
    """
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    x = _binarize(d.data / 16.0, binarize)
    if spins:
        if binarize is False or binarize is None:
            raise ConfigError("spins=True needs binarised data (binarize=True or a threshold).")
        x = 2.0 * x - 1.0
    x = x.astype(np.float32)
    return (x, d.target.astype(np.int32)) if return_labels else x


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed): magic `0x0000 TT DD`, D big-endian int32
    dimensions, then the data in big-endian type TT (the MNIST format)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ShapeError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}).")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ShapeError(f"{path}: unknown IDX data type code 0x{code:02x}.")
    dims = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = int(np.prod(dims)) if dims else 1
    offset = 4 + 4 * ndim
    if len(raw) - offset != count * dtype.itemsize:
        raise ShapeError(
            f"{path}: header says {dims} x {dtype.itemsize} bytes, file holds "
            f"{len(raw) - offset} data bytes (truncated or corrupt)."
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write `array` as an IDX file (gzip-compressed if `path` ends in .gz)."""
    array = np.asarray(array)
    key = array.dtype.str.lstrip("<>|=")
    if key not in _IDX_CODES:
        raise ConfigError(f"IDX cannot store dtype {array.dtype}; use uint8, int8/16/32, f4, f8.")
    code = _IDX_CODES[key]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    body = array.astype(np.dtype(_IDX_DTYPES[code])).tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + body)


def load_mnist_idx(
    directory,
    *,
    split: str = "train",
    binarize=True,
    n: int | None = None,
    return_labels: bool = False,
):
    """MNIST from the standard IDX files in `directory`.

    Looks for `{train,t10k}-images-idx3-ubyte` and `...-labels-idx1-ubyte` (also with `.gz`,
    or with the dot spelling `-images.idx3-ubyte`).

    **Arguments:**

    - `directory`: folder holding the files.
    - `split`: `"train"` or `"test"`.
    - `binarize`: as in `load_digits` (intensities are scaled to [0, 1] first).
    - `n`: keep the first n images.
    - `return_labels`: also return the labels.

    **Returns:** `X` of shape `(n, 784)` float32 (and `y` int32).
    """
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}.")

    def find(kind, nd):
        for sep in ("-", "."):
            for ext in ("", ".gz"):
                p = Path(directory) / f"{prefix}-{kind}{sep}idx{nd}-ubyte{ext}"
                if p.exists():
                    return p
        raise FileNotFoundError(
            f"no {prefix}-{kind}-idx{nd}-ubyte[.gz] in {os.fspath(directory)}; download MNIST's "
            f"four IDX files there."
        )

    images = read_idx(find("images", 3))
    if images.ndim != 3:
        raise ShapeError(f"MNIST images must be a 3D IDX array, got shape {images.shape}.")
    x = images.reshape(images.shape[0], -1)[slice(None, n)] / 255.0
    x = _binarize(x, binarize)
    if not return_labels:
        return x
    y = read_idx(find("labels", 1))[slice(None, n)].astype(np.int32)
    if y.shape[0] != x.shape[0]:
        raise ShapeError(f"{x.shape[0]} images but {y.shape[0]} labels.")
    return x, y


def curie_weiss_magnetisation(beta: float, *, tol: float = 1e-12) -> float:
    """The positive solution m* of m = tanh(beta m) (0 for beta <= 1)."""
    if beta <= 1:
        return 0.0
    m = 1.0
    for _ in range(10_000):
        new = float(np.tanh(beta * m))
        if abs(new - m) < tol:
            break
        m = new
    return m


def clustered_binary(
    key,
    n_samples: int,
    n_dims: int,
    *,
    n_clusters: int = 2,
    beta: float = 1.5,
    m: float | None = None,
    spins: bool = False,
    centres=None,
):
    r"""Synthetic clustered binary data (the mean-field set-up of arXiv 2405.14689).

    Draw K random ±1 centres $\xi^c$ (for K = 2 the symmetric pair $\pm\xi$: the two states
    of the Curie–Weiss/Mattis model); each sample picks a centre uniformly and sets
    $s_i = \xi^c_i$ with probability $(1 + m)/2$, else $-\xi^c_i$, independently, so
    $\langle s\rangle_c = m\,\xi^c$. By default $m = m^*(\beta)$, the Curie–Weiss
    magnetisation, which makes the K = 2 set the $N\to\infty$ Curie–Weiss measure at $\beta$.

    **Arguments:**

    - `key`: PRNG key; `n_samples`, `n_dims`: data size and dimension.
    - `n_clusters`: K.
    - `beta` / `m`: the Curie–Weiss inverse temperature, or the magnetisation directly.
    - `spins`: return ±1 (else {0, 1}).
    - `centres`: given centres `(K, n_dims)` of ±1 (e.g. to grow N at fixed structure).

    **Returns:** `(X, labels, centres)` with `X` float32 `(n_samples, n_dims)`.
    """
    if n_samples < 1 or n_dims < 1 or n_clusters < 1:
        raise ConfigError("n_samples, n_dims and n_clusters must be >= 1.")
    m = curie_weiss_magnetisation(beta) if m is None else float(m)
    if not 0 <= m <= 1:
        raise ConfigError(f"the magnetisation m must lie in [0, 1], got {m}.")
    kc, kl, ks = jax.random.split(key, 3)
    if centres is None:
        if n_clusters == 2:
            xi = jax.random.rademacher(kc, (n_dims,), jnp.float32)
            centres = jnp.stack([xi, -xi])
        else:
            centres = jax.random.rademacher(kc, (n_clusters, n_dims), jnp.float32)
    centres = jnp.asarray(centres, jnp.float32)
    if centres.shape != (n_clusters, n_dims):
        raise ShapeError(f"centres must have shape {(n_clusters, n_dims)}, got {centres.shape}.")
    labels = jax.random.randint(kl, (n_samples,), 0, n_clusters)
    agree = jax.random.uniform(ks, (n_samples, n_dims)) < (1.0 + m) / 2.0
    x = jnp.where(agree, centres[labels], -centres[labels])
    if not spins:
        x = (x + 1.0) / 2.0
    return np.asarray(x, np.float32), np.asarray(labels, np.int32), np.asarray(centres)


def image_grid(images, shape: tuple[int, int], n_cols: int = 10, pad: int = 1) -> np.ndarray:
    """Tile flattened images `(n, H*W)` into one 2D array for `imshow` (padding value 0.5)."""
    images = np.asarray(images, np.float32).reshape(-1, *shape)
    n = images.shape[0]
    rows = -(-n // n_cols)
    h, w = shape
    grid = np.full((rows * (h + pad) + pad, n_cols * (w + pad) + pad), 0.5, np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, n_cols)
        grid[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + c * (w + pad) : pad + c * (w + pad) + w,
        ] = img
    return grid


__all__ = [
    "clustered_binary",
    "curie_weiss_magnetisation",
    "image_grid",
    "load_digits",
    "load_mnist_idx",
    "read_idx",
    "write_idx",
]
