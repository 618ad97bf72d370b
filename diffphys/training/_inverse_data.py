r"""Data in for inverse Ising and Potts problems: checked samples with weights, and their moments.

`spin_data` turns a (samples, N) array of ±1, {0, 1} or integer Potts states into a
`SpinData` pytree (Ising samples as ±1 floats, Potts samples as int32 states 0..q-1, weights
normalised to sum to one), checking it once, eagerly, with one clear error line. Being a
pytree, a `SpinData` can be stacked and `jax.vmap`-ped over data sets. `spin_moments` gives
the weighted sufficient statistics that every estimator matches: means and pair correlations.
`load_spin_data` reads such samples from a file (text/CSV, `.npy` or `.npz`).
"""

from __future__ import annotations

import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError
from .._types import Array, Float

_KINDS = ("pm1", "01", "potts")


class SpinData(eqx.Module):
    """Samples of N discrete variables with normalised weights (build it with `spin_data`).

    - `x`: shape (M, N): ±1 as floats for Ising data, int32 states 0..q-1 for Potts data.
    - `weights`: shape (M,), non-negative, summing to one.
    - `q`: number of states per variable (2 for Ising).
    - `potts`: whether the variables are Potts states (else Ising spins ±1).
    """

    x: Array
    weights: Float[Array, "*batch m"]
    q: int = eqx.field(static=True)
    potts: bool = eqx.field(static=True)

    @property
    def n(self) -> int:
        return self.x.shape[-1]

    @property
    def n_samples(self) -> int:
        return self.x.shape[-2]


def _check_states(samples, kind: str, q, ndim: int = 2):
    """Checked samples: `(states, q, potts)`, states the integers 0..q-1 (int8/int32)."""
    if kind not in _KINDS:
        raise ConfigError(f"kind must be one of {_KINDS}, got {kind!r}.")
    if isinstance(samples, jax.core.Tracer):
        raise ConfigError(
            "spin_data checks concrete arrays; call it outside jit/vmap and vmap over the "
            "resulting SpinData (stack several with jax.tree.map(jnp.stack, ...))."
        )
    a = np.asarray(samples)
    if a.dtype == object or a.dtype.kind in "USVcmM":
        raise ConfigError(
            f"samples must be a numeric array of spins or states, got dtype {a.dtype}; convert "
            f"it with np.asarray(samples, dtype=int)."
        )
    if a.ndim != ndim:
        want = "(n_samples, n_spins)" if ndim == 2 else "(n_sets, n_samples, n_spins)"
        raise ShapeError(f"samples must have shape {want}, got shape {a.shape}.")
    if a.size == 0:
        raise ConfigError(f"samples is empty (shape {a.shape}); need at least one sample.")
    if a.shape[-1] < 2:
        raise ShapeError(f"need at least 2 variables per sample, got shape {a.shape}.")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ConfigError(
                "samples hold non-integer or non-finite values; spins must be ±1, 0/1 or "
                "integer Potts states."
            )
    if a.dtype.kind == "b":
        a = a.astype(np.int8)
    if kind == "pm1":
        if not np.all(np.abs(a) == 1):
            ai = a.astype(np.int64)
            bad = np.unique(ai[np.abs(ai) != 1])[:5]
            hint = " (0/1 data: use kind='01')" if set(np.unique(ai)) <= {0, 1} else ""
            raise ConfigError(f"kind='pm1' needs spins ±1, found values {bad.tolist()}{hint}.")
        states, qq, potts = (a > 0).astype(np.int8), 2, False
    elif kind == "01":
        if not np.all((a == 0) | (a == 1)):
            ai = a.astype(np.int64)
            bad = np.unique(ai[(ai != 0) & (ai != 1)])[:5]
            raise ConfigError(f"kind='01' needs values 0/1, found values {bad.tolist()}.")
        states, qq, potts = a.astype(np.int8), 2, False
    else:
        lo, hi = int(a.min()), int(a.max())
        qq = max(hi + 1, 2) if q is None else q
        if int(qq) != qq or qq < 2:
            raise ConfigError(f"q must be an integer >= 2, got {q!r}.")
        qq = int(qq)
        if lo < 0 or hi >= qq:
            raise ConfigError(
                f"kind='potts' with q={qq} needs states 0..{qq - 1}, found values in "
                f"[{lo}, {hi}]."
            )
        states, potts = a.astype(np.int32), True
    if kind != "potts" and q not in (None, 2):
        raise ConfigError(f"q is for kind='potts' (Ising data has q = 2), got q={q!r}.")
    return states, qq, potts


def spin_data(samples, *, kind: str = "pm1", q: int | None = None, weights=None) -> SpinData:
    r"""Check samples of Ising spins or Potts states and wrap them with normalised weights.

    **Arguments:**

    - `samples`: array of shape (M, N), M >= 1 samples of N >= 2 variables; integer, boolean
      or real values equal to integers.
    - `kind`: `"pm1"` (Ising spins ±1), `"01"` (Ising spins written 0/1, mapped to
      $s = 2x - 1$) or `"potts"` (states 0..q-1).
    - `q`: number of Potts states (`kind="potts"` only; default: max state + 1, at least 2).
    - `weights`: optional non-negative sample weights, shape (M,), not all zero; normalised
      to sum to one (default uniform).

    **Returns:** a `SpinData`.

    Raises `ConfigError`/`ShapeError` (one line saying what is wrong) for an empty array, a
    wrong number of dimensions, a non-numeric or complex dtype, values outside the declared
    alphabet, and negative, non-finite or mismatched weights.
    """
    states, qq, potts = _check_states(samples, kind, q)
    x = jnp.asarray(states, jnp.int32) if potts else jnp.asarray(2 * states - 1, jnp.float32)
    m = states.shape[0]
    if weights is None:
        w = np.full(m, 1.0 / m)
    else:
        w = np.asarray(weights)
        if w.dtype == object or w.dtype.kind not in "biuf":
            raise ConfigError(f"weights must be real numbers, got dtype {w.dtype}.")
        if w.shape != (m,):
            raise ShapeError(f"weights must have shape ({m},) (one per sample), got {w.shape}.")
        w = w.astype(np.float64)
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ConfigError("weights must be finite, non-negative and not all zero.")
        w = w / w.sum()
    return SpinData(x, jnp.asarray(w, jnp.float32), qq, potts)


_TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t"}


def load_spin_data(
    path: str | os.PathLike,
    *,
    kind: str = "pm1",
    q: int | None = None,
    weights=None,
    delimiter: str | None = None,
    skiprows: int = 0,
) -> SpinData:
    r"""Read samples of N discrete variables from a file into a checked `SpinData`.

    The file holds one sample per row and one variable per column:

    - `.npy`: a 2D array (`np.save`); read without pickles.
    - `.npz`: the array named `samples` (or the file's only array) and, if present and
      `weights` is not given, sample weights named `weights`.
    - anything else is text read by `np.loadtxt`: comma-separated for `.csv`, tab-separated for
      `.tsv`, whitespace-separated otherwise (or `delimiter`); lines starting with `#` are
      comments, `skiprows` header lines are skipped.

    **Arguments:**

    - `path`: the file.
    - `kind`, `q`, `weights`: as `spin_data` (±1, 0/1 or Potts states 0..q-1).
    - `delimiter`: column separator of a text file (default from the suffix, see above).
    - `skiprows`: header lines to skip in a text file.

    **Returns:** `spin_data(samples, kind=kind, q=q, weights=weights)`.

    Raises `ConfigError` (one line) for a missing file, an unreadable or ragged text file, an
    `.npz` without a `samples` array, and everything `spin_data` rejects.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no data file at {str(p)!r}; give the path of a .csv/.txt/.npy/.npz.")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            samples = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise ConfigError(f"{p.name} is not a plain numeric .npy array ({e}).") from None
    elif suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            names = list(z.keys())
            if "samples" in names:
                samples = z["samples"]
            elif len(names) == 1:
                samples = z[names[0]]
            else:
                raise ConfigError(
                    f"{p.name} holds arrays {names}; name the samples array 'samples' "
                    "(np.savez(path, samples=x, weights=w))."
                )
            if weights is None and "weights" in names:
                weights = z["weights"]
    else:
        sep = _TEXT_DELIMITERS.get(suffix) if delimiter is None else delimiter
        try:
            samples = np.loadtxt(p, delimiter=sep, comments="#", skiprows=skiprows, ndmin=2)
        except ValueError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(
                f"could not read {p.name} as a table of numbers ({first}); check the delimiter "
                "and skip header lines with skiprows=."
            ) from None
    return spin_data(samples, kind=kind, q=q, weights=weights)


def _is_concrete(data: SpinData) -> bool:
    return not any(isinstance(a, jax.core.Tracer) for a in (data.x, data.weights))


def _dedupe(idx: np.ndarray, w: np.ndarray, q: int, pad_to: int | None):
    """Distinct rows of each data set and their summed weights, vectorised over data sets.

    `idx`: (B, M, N) states 0..q-1; `w`: (B, M). Returns `(rows, weights)` of shapes (B, K, N)
    and (B, K): rows in lexicographic order (as `np.unique(..., axis=0)`), padded to K (the
    largest count, or `pad_to`) with zero-weight copies of each set's first row.
    """
    B, M, N = idx.shape
    if N * np.log2(q) > 62:  # rows do not fit an int64 code: one np.unique per data set
        out = [np.unique(a, axis=0, return_inverse=True) for a in idx]
        counts = [len(r) for r, _ in out]
        K = max(counts) if pad_to is None else pad_to
        if K < max(counts):
            raise ConfigError(f"pad_to={pad_to} is less than the {max(counts)} distinct samples.")
        rows = np.stack([np.concatenate([r, np.repeat(r[:1], K - len(r), 0)]) for r, _ in out])
        W = np.zeros((B, K))
        for b, (_, inv) in enumerate(out):
            np.add.at(W[b], inv.reshape(-1), w[b])
        return rows, W
    place = np.int64(q) ** np.arange(N - 1, -1, -1, dtype=np.int64)
    codes = np.zeros((B, M), np.int64)  # row codes in lexicographic order of the rows
    for i in range(N):
        codes = codes * q + idx[..., i]
    n_codes = int(q) ** N
    if n_codes <= max(M, 64):  # few possible rows: count them in a table, no sort
        flat = (np.arange(B)[:, None] * n_codes + codes).ravel()
        present = np.bincount(flat, minlength=B * n_codes).reshape(B, n_codes) > 0
        W = np.bincount(flat, weights=w.ravel(), minlength=B * n_codes).reshape(B, n_codes)
        count = present.sum(1)
        K = int(count.max()) if pad_to is None else pad_to
        if K < count.max():
            raise ConfigError(f"pad_to={pad_to} is less than the {count.max()} distinct samples.")
        order = np.argsort(~present, axis=1, kind="stable")  # present codes first, ascending
        if K > n_codes:
            order = np.concatenate([order, np.repeat(order[:, :1], K - n_codes, 1)], 1)
        order = order[:, :K]
        pad = np.arange(K)[None, :] >= count[:, None]
        U = np.where(pad, order[:, :1], order)
        W = np.where(pad, 0.0, np.take_along_axis(W, order, 1))
        return (U[..., None] // place) % q, W
    order = np.argsort(codes, axis=1, kind="stable")
    cs = np.take_along_axis(codes, order, 1)
    ws = np.take_along_axis(w, order, 1)
    new = np.ones((B, M), bool)
    new[:, 1:] = cs[:, 1:] != cs[:, :-1]
    gid = np.cumsum(new, axis=1) - 1
    most = int(gid[:, -1].max()) + 1
    K = most if pad_to is None else pad_to
    if K < most:
        raise ConfigError(f"pad_to={pad_to} is less than the {most} distinct samples.")
    b = np.arange(B)[:, None]
    W = np.bincount((b * K + gid).ravel(), weights=ws.ravel(), minlength=B * K).reshape(B, K)
    U = np.repeat(cs[:, :1], K, axis=1)
    U[b, gid] = cs
    return (U[..., None] // place) % q, W


def _states(x: np.ndarray, potts: bool) -> np.ndarray:
    return x.astype(np.int32) if potts else (x > 0).astype(np.int8)


def _from_states(rows: np.ndarray, potts: bool, dtype):
    return jnp.asarray(rows if potts else 2 * rows - 1, dtype)


def unique_samples(data: SpinData, *, pad_to: int | None = None) -> SpinData:
    """Merge repeated samples into one row each, adding their weights (concrete data only).

    Every estimator's objective is a weighted sum over samples, so this changes no result and
    divides the work by the repetition factor (1000 samples of N = 5 spins hold at most 32
    distinct rows). `pad_to` appends zero-weight copies of the first row up to that many rows,
    so data sets with different numbers of distinct rows can be stacked for `jax.vmap`.
    Tracers (data inside `jit`/`vmap`) are returned unchanged.
    """
    if not _is_concrete(data):
        return data
    x = np.asarray(data.x)
    w = np.asarray(data.weights, np.float64)
    rows, W = _dedupe(_states(x, data.potts)[None], w[None], data.q, pad_to)
    return SpinData(
        _from_states(rows[0], data.potts, x.dtype), jnp.asarray(W[0], jnp.float32), data.q,
        data.potts,
    )  # fmt: skip


def stack_spin_data(datasets, *, unique: bool = True, kind: str = "pm1",
                    q: int | None = None) -> SpinData:
    """Stack `SpinData`s of one kind and size into one batched `SpinData` for `jax.vmap`.

    With `unique` (default) each data set's repeated samples are merged first
    (`unique_samples`, vectorised over the data sets) and all are padded with zero-weight rows
    to a common length.

    **Arguments:**

    - `datasets`: an iterable of `SpinData`, or one array of shape (B, M, N) holding B data
      sets of M samples each, checked and read as `spin_data` does (`kind`, `q`; uniform
      weights): the fast way in for thousands of data sets.
    - `unique`: merge repeated samples (default True).
    - `kind`, `q`: as `spin_data`, for array input only.

    **Returns:** a `SpinData` whose arrays have a leading data-set axis.
    """
    if isinstance(datasets, (np.ndarray, jax.Array)):
        states, qq, potts = _check_states(datasets, kind, q, ndim=3)
        w = np.full(states.shape[:2], 1.0 / states.shape[1])
    else:
        datasets = list(datasets)
        if not datasets:
            raise ConfigError("stack_spin_data needs at least one SpinData.")
        kinds = {(d.q, d.potts, d.n) for d in datasets}
        if len(kinds) != 1:
            raise ConfigError(
                f"data sets differ in (q, potts, N): {sorted(kinds)}; stack like ones."
            )
        if not unique:
            if len({d.n_samples for d in datasets}) != 1:
                raise ConfigError(
                    "data sets have different numbers of samples; use unique=True to pad."
                )
            return jax.tree.map(lambda *a: jnp.stack(a), *datasets)
        qq, potts, _ = kinds.pop()
        M = max(d.n_samples for d in datasets)
        xs, ws = [], []
        for d in datasets:  # pad to a common length with zero-weight copies of the first row
            xd, wd = np.asarray(d.x), np.asarray(d.weights, np.float64)
            extra = M - len(xd)
            xs.append(np.concatenate([xd, np.repeat(xd[:1], extra, 0)]) if extra else xd)
            ws.append(np.concatenate([wd, np.zeros(extra)]) if extra else wd)
        states, w = _states(np.stack(xs), potts), np.stack(ws)
    dtype = jnp.int32 if potts else jnp.float32
    if unique:
        states, w = _dedupe(states, w, qq, None)
    return SpinData(_from_states(states, potts, dtype), jnp.asarray(w, jnp.float32), qq, potts)


def one_hot(data: SpinData) -> Float[Array, "m n q"]:
    """Potts states as one-hot vectors, shape (M, N, q), float32."""
    return jax.nn.one_hot(data.x, data.q, dtype=jnp.float32)


def spin_moments(data: SpinData):
    r"""Weighted first and second moments of the data: what maximum likelihood matches.

    Ising: $m_i = \sum_\mu w_\mu s_i^\mu$ and $C_{ij} = \sum_\mu w_\mu s_i^\mu s_j^\mu$
    (not connected; $C_{ii} = 1$). Potts: the one-site and two-site frequencies
    $m_i(a) = \sum_\mu w_\mu \delta(s_i^\mu, a)$, shape (N, q), and
    $C_{ij}(a, b) = \sum_\mu w_\mu \delta(s_i^\mu, a)\delta(s_j^\mu, b)$, shape (N, N, q, q).

    **Arguments:**

    - `data`: a `SpinData` (vmap over stacked data sets).

    **Returns:** `(m, C)`.
    """
    w = data.weights
    if data.potts:
        o = one_hot(data)
        m = jnp.einsum("u,uia->ia", w, o)
        C = jnp.einsum("u,uia,ujb->ijab", w, o, o)
        return m, C
    x = data.x
    return w @ x, jnp.einsum("u,ui,uj->ij", w, x, x)


__all__ = [
    "SpinData",
    "load_spin_data",
    "one_hot",
    "spin_data",
    "spin_moments",
    "stack_spin_data",
    "unique_samples",
]
