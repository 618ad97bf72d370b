r"""Long-time DMFT of the spherical p-spin model on a decimated (grid-halving) two-time grid.

The Cugliandolo–Kurchan equations (see `diffphys.theory.cugliandolo_kurchan` for the model,
the normalisation $f(q) = q^p/2$ and the uniform-grid solver) are integrated here in terms of
the correlation $C(t,t')$ and the *integrated* response $\chi(t,t') = \int_{t'}^t R(t,s)\,ds$,

$$\partial_t C(t,t') = -z(t) C(t,t') + \int_0^t\! ds\,\Sigma(t,s) C(s,t')
    + \int_0^{t'}\! ds\, f'(C(t,s)) R(t',s),$$
$$\partial_t \chi(t,t') = 1 - z(t)\chi(t,t') + \int_{t'}^t\! ds\,\Sigma(t,s)\chi(s,t'),$$
$$z(t) = T + \int_0^t\! ds\, g'(C(t,s)) R(t,s),\qquad e(t) = -\int_0^t\! ds\, f'(C(t,s))R(t,s),$$

with $\Sigma(t,s) = f''(C(t,s))R(t,s)$ and $g(C) = C f'(C)$ (for a pure p-spin $g' = p f'$,
so $e = (T - z)/p$). The $\chi$ equation follows from the R equation by integrating over
$t'$ (Itô: $R(t^+, t) = 1$).

**Algorithm** (Kim & Latz, Europhys. Lett. 53, 660 (2001), the two-time extension of the
grid-halving scheme of Fuchs, Götze, Hofacker & Latz, J. Phys. Condens. Matter 3, 5047 (1991);
used for aging in the spherical p-spin by e.g. Berthier et al., J. Chem. Phys. 126, 184504
(2007), App. C). A window of $2n+1$ times $t_k = k h$, $k = 0..2n$, is stored.

1. *Rows.* Row $i$ ($C(t_i, t_j)$, $\chi(t_i, t_j)$, $j < i$) is computed from rows $i-1$,
   $i-2$ by BDF2, $(\tfrac32 u_i - 2u_{i-1} + \tfrac12 u_{i-2})/h = F_i$ (BDF1 on the first
   solved sub-diagonal, whose history would otherwise include the diagonal), with the local terms $-z C$, $\Sigma$ on the last
   interval and $f'(C(t_i,t_j))$ on the last interval of the D-term treated implicitly
   (Newton-linearised); the whole row, $z(t_i)$ and the memory kernels are iterated to a
   fixed point (Jacobi sweeps with Anderson mixing, until the change is below `tol`).
2. *Memory integrals* are sums over the intervals $I_l = (t_{l-1}, t_l]$ of (integral of the
   fast factor over $I_l$) x (average of the slow factor over $I_l$). The response enters only
   through $\int_{I_l} R(t_i,s)ds = \chi(t_i,t_{l-1}) - \chi(t_i,t_l)$, weighted by the secant
   slope $[f'(C_{l-1}) - f'(C_l)]/(C_{l-1} - C_l)$ (exact whenever $\chi$ is affine in $C$ on the
   interval, as under the FDT), so a response that decays within one interval is still
   integrated exactly. The interval averages of the slow factors are the trapezoid values,
   except on the intervals next to the diagonal, where $C(s, t_j)$ and $\chi(s, t_j)$ change
   fast; those averages are stored separately (`a`, `b`, `bx` below) and renormalised at each
   decimation.
3. *Decimation.* When the window is full ($i = 2n$) the grid is halved: $C_{IJ} \leftarrow
   C_{2I,2J}$, $\chi_{IJ} \leftarrow \chi_{2I,2J}$ ($I, J \le n$), the near-diagonal interval
   averages are replaced by the mean over the two merged intervals, and $h \leftarrow 2h$;
   rows $n+1..2n$ are then computed on the coarser grid.
4. *Near-diagonal band.* After the first decimation $h$ exceeds the fast (FDT) time scale and
   the entry next to the diagonal, $C(t_i, t_{i-1})$ (and $\chi$), whose interval holds the
   fast parts of both factors of the memory integrals, is copied from the previous row
   (time-translation invariance over the band, Kim & Latz); it was computed on a finer grid
   before the decimation. The first window ($h = $ `dt`) solves every entry.

Memory is $O(n^2)$ whatever `t_max`; each decade of time costs $\log_2 10 \approx 3.3$
windows of $n$ rows, $O(n^2)$ each, i.e. $O(n^3)$ per decade versus $O((t/dt)^3)$ for the
uniform grid. The price is resolution: two-time functions at $t_w \lesssim$ a few $h(t)$ are
coarse-grained, and functions of $t - t_w$ below $h(t)$ (the stationary FDT part) are frozen at
the values they had when $h$ was smaller; two-time errors are $O(1/n)$ (about $0.7/n$ on
$C(t, t/2)$ at t = 100 for p = 3, T = 0.5; up to $2/n$ on $C(4t_w, t_w)$ for p = 2;
`benchmarks/results/dmft_grid.md`).

**Limits.** The band copy ignores the aging of $C(t, t-\tau)$ at fixed lag $\tau = h$.
While $h$ is below the $\beta$-relaxation time this is harmless; once $h$ is well beyond it
(h ~ 40 for p = 3 at T = 0.5, for any n) the frozen band and the solved entries next to it
disagree and the solution departs from the CK equations. Every window is checked (finite
values, converged rows, a non-increasing energy and $C(t, t_w)$ non-increasing in t at fixed
$t_w \ge t/2$); the integration stops at the first failing window and reports it in
`t_breakdown`. In practice, for p = 3 at T = 0.5: t ~ 1e4 with n = 128 (10 s here), ~2e4
with n = 256.
Longer times need the interpolating renormalised grid of Lang, Sachdev & Diehl, PRL 135,
247101 (2025). Above $T_d$ (finite relaxation time) the grid should not be coarsened far
beyond the relaxation time: use the uniform-grid solver or a larger `n`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, check_positive

_BAND = 1  # sub-diagonals copied by time-translation invariance after the first decimation
_ANDERSON = 5  # depth of the Anderson mixing of the row iteration


class DecimatedDMFTSolution(NamedTuple):
    """Solution of `cugliandolo_kurchan_decimated` on its decimated (log-ish) time grid.

    Row k was computed at time `t[k]` on a window of spacing `h[k]`; its two-time entries
    are at the waiting times `j * h[k]`, j = 0..`C.shape[1]`-1 (only j*h[k] <= t[k] is filled,
    NaN beyond). Consecutive rows are `h` apart; `h` doubles at each decimation.

    - `t`: times of the computed rows, shape (K,) (n per octave after the first window).
    - `h`: grid spacing of the window each row belongs to, shape (K,).
    - `z`: Lagrange multiplier z(t), shape (K,).
    - `energy`: energy per spin e(t), shape (K,).
    - `C`: C(t_k, j h_k), shape (K, 2n+1).
    - `chi`: integrated response chi(t_k, j h_k) = int_{j h_k}^{t_k} R(t_k, s) ds, (K, 2n+1).
    - `iterations`: fixed-point sweeps used for each row, shape (K,).
    - `t_breakdown`: `inf`, or the time at which the integration was stopped because a row
      violated a property every solution has (see `cugliandolo_kurchan_decimated`); the rows
      returned end at the window before it.
    - `T`, `p`: the model.
    """

    t: np.ndarray
    h: np.ndarray
    z: np.ndarray
    energy: np.ndarray
    C: np.ndarray
    chi: np.ndarray
    iterations: np.ndarray
    t_breakdown: float
    T: float
    p: int

    def _row_values(self, values, t, t_w):
        t, t_w = np.broadcast_arrays(np.asarray(t, float), np.asarray(t_w, float))
        if np.any(t_w < 0) or np.any(t < t_w - 1e-9) or np.any(t > self.t[-1] * (1 + 1e-12)):
            raise ConfigError(
                f"need 0 <= t_w <= t <= t_max={self.t[-1]:g}; got t_w in "
                f"[{t_w.min():g}, {t_w.max():g}], t in [{t.min():g}, {t.max():g}]."
            )
        # rows bracketing t (times are increasing); linear in t, linear in t_w within a row
        hi = np.clip(np.searchsorted(self.t, t), 1, len(self.t) - 1)
        lo = hi - 1
        w = np.clip((t - self.t[lo]) / (self.t[hi] - self.t[lo]), 0.0, 1.0)

        def in_row(k):
            x = t_w / self.h[k]
            j0 = np.clip(np.floor(x).astype(int), 0, values.shape[1] - 2)
            f = x - j0
            v0, v1 = values[k, j0], values[k, j0 + 1]
            v1 = np.where(np.isnan(v1), v0, v1)  # t_w at the diagonal of row k
            return v0 * (1 - f) + v1 * f

        return in_row(lo) * (1 - w) + in_row(hi) * w

    def correlation(self, t, t_w) -> np.ndarray | float:
        """C(t, t_w) for t >= t_w (broadcasting), interpolated linearly on the stored rows."""
        return self._row_values(np.where(np.isnan(self.C), 1.0, self.C), t, t_w)

    def integrated_response(self, t, t_w) -> np.ndarray | float:
        """chi(t, t_w) = int_{t_w}^t R(t, s) ds for t >= t_w (interpolated as `correlation`)."""
        return self._row_values(np.where(np.isnan(self.chi), 0.0, self.chi), t, t_w)

    def response(self, t, t_w) -> np.ndarray | float:
        """R(t, t_w) = -d chi(t, t_w)/d t_w by a central difference of width 2h(t).

        Resolved only for t - t_w >> h(t): the fast (FDT) part of R, on scales below the grid
        spacing, is carried by chi, not by pointwise values."""
        t, t_w = np.broadcast_arrays(np.asarray(t, float), np.asarray(t_w, float))
        k = np.clip(np.searchsorted(self.t, t), 0, len(self.t) - 1)
        d = self.h[k]
        up = np.minimum(t_w + d, t)
        down = np.maximum(t_w - d, 0.0)
        return (self.integrated_response(t, down) - self.integrated_response(t, up)) / np.maximum(
            up - down, 1e-300
        )


def _divided_power(a, b, k):
    """(a^k - b^k)/(a - b) = sum_m a^m b^(k-1-m), without the cancellation of the quotient."""
    out = jnp.zeros_like(a)
    for m in range(k):
        out = out + a**m * b ** (k - 1 - m)
    return out


def _kernels(p):
    """f', f'' and the secant slopes of f', g = C f' and f used for the Stieltjes sums.

    With f = C^p/2: [f'(a) - f'(b)]/(a - b) = (p/2) D_{p-1}, [g(a) - g(b)]/(a - b) = (p/2) D_p
    and [f(a) - f(b)]/(a - b) = D_p/2, D_k = (a^k - b^k)/(a - b) (exact also at a = b)."""

    def fp(c):
        return 0.5 * p * c ** (p - 1)

    def fpp(c):
        return 0.5 * p * (p - 1) * c ** (p - 2)

    return (
        fp,
        fpp,
        lambda a, b: 0.5 * p * _divided_power(a, b, p - 1),
        lambda a, b: 0.5 * p * _divided_power(a, b, p),
        lambda a, b: 0.5 * _divided_power(a, b, p),
    )


def _row_sums(p, T, u, x, i):
    """Interval integrals along row i: S_l = int_{I_l} Sigma(t_i, s) ds, z(t_i), e(t_i)."""
    m = u.shape[0]
    k = jnp.arange(m)
    _, _, sec_fp, sec_g, sec_f = _kernels(p)
    u_prev = jnp.roll(u, 1)
    dchi = jnp.roll(x, 1) - x  # int_{I_l} R(t_i, s) ds
    inside = (k >= 1) & (k <= i)
    zero = jnp.zeros((), u.dtype)
    s = jnp.where(inside, sec_fp(u_prev, u) * dchi, zero)
    z = T + jnp.sum(jnp.where(inside, sec_g(u_prev, u) * dchi, zero))
    e = -jnp.sum(jnp.where(inside, sec_f(u_prev, u) * dchi, zero))
    return s, z, e


def _step(p, band, maxiter, T, h, tol, i, carry):
    """Compute row i of C and chi (see the module docstring); band = sub-diagonals copied."""
    C, X, a, b, bx, zs, es, iters = carry
    m = C.shape[0]
    dtype = C.dtype
    k = jnp.arange(m)
    l_idx, j_idx = k[:, None], k[None, :]
    zero = jnp.zeros((), dtype)
    one = jnp.ones((), dtype)
    fp, fpp, _, _, _ = _kernels(p)

    # averages over I_l of the slow factors C(s, t_j), chi(s, t_j), s in I_l (rows < i only)
    bc = 0.5 * (jnp.roll(C, 1, axis=0) + C)
    bc = jnp.where(l_idx == j_idx, a[None, :], bc)
    bc = jnp.where(l_idx == j_idx + 1, b[None, :], bc)
    bxm = 0.5 * (jnp.roll(X, 1, axis=0) + X)
    bxm = jnp.where(l_idx == j_idx + 1, bx[None, :], bxm)
    bxm = jnp.where(l_idx > j_idx, bxm, zero)
    # D-term: dxm[j, l] = int_{I_l} R(t_j, s) ds for 1 <= l <= j - 1; the l = j interval
    # (where R(t_j, .) is fast) is handled with f'(C(t_i, t_j)) implicitly.
    dx_full = jnp.roll(X, 1, axis=1) - X
    dxm = jnp.where((j_idx >= 1) & (j_idx <= l_idx - 1), dx_full, zero)
    dxd = jnp.where(k >= 1, jnp.diagonal(dx_full), zero)

    c1, c2 = C[i - 1], C[i - 2]
    x1, x2 = X[i - 1], X[i - 2]
    # BDF2 only from history off the diagonal: C(t, t_j) drops fast just after t = t_j, which
    # a coarse grid cannot resolve, so the first solved sub-diagonal takes a BDF1 step from
    # the (copied) entry next to the diagonal
    bdf2 = k <= i - 2 - (1 if band else 0)
    c0 = jnp.where(bdf2, jnp.asarray(1.5, dtype), one)
    hist_c = jnp.where(bdf2, 2.0 * c1 - 0.5 * c2, c1)
    hist_x = jnp.where(bdf2, 2.0 * x1 - 0.5 * x2, x1)
    solved = k <= i - 1 - band
    # band entries: time-translation invariance, C(t_i, t_{i-d}) = C(t_{i-1}, t_{i-1-d})
    shift_c = jnp.roll(c1, 1)
    shift_x = jnp.roll(x1, 1)
    in_band = (k >= i - band) & (k <= i - 1)
    diag = k == i
    # predictor: linear extrapolation in t
    u0 = jnp.where(solved, 2.0 * c1 - c2, zero)
    x0 = jnp.where(solved, 2.0 * x1 - x2, zero)
    u0 = jnp.where(in_band, shift_c, jnp.where(diag, one, u0))
    x0 = jnp.where(in_band, shift_x, x0)
    hh = jnp.asarray(h, dtype)

    def sweep(u, x):
        s, z, e = _row_sums(p, T, u, x, i)
        s_in = jnp.where(k <= i - 1, s, zero)
        s_i = s[i]
        ic = s_in @ bc
        ix = s_in @ bxm
        dtrap = jnp.where(k >= 1, 0.5 * (fp(jnp.roll(u, 1)) + fp(u)), zero)
        idt = dxm @ dtrap
        f1, f2 = fp(u), fpp(u)
        num_c = hist_c + hh * (ic + idt + (f1 - f2 * u) * dxd)
        den_c = c0 + hh * (z - s_i - f2 * dxd)
        num_x = hist_x + hh * (1.0 + ix)
        den_x = c0 + hh * (z - s_i)
        u_new = jnp.where(solved, num_c / den_c, u)
        x_new = jnp.where(solved, num_x / den_x, x)
        return u_new, x_new, z, e

    # Anderson acceleration (type II, depth _ANDERSON) of the sweep v -> g(v): plain sweeps
    # converge ever more slowly as h grows (the aging equations become nearly marginal once
    # the BDF term 1.5/h is small), Anderson mixing keeps the count of sweeps ~ flat.
    depth = _ANDERSON
    eye = jnp.eye(depth, dtype=dtype)
    slot = jnp.arange(depth)

    def cond(state):
        it, err = state[-2], state[-1]
        return (it < maxiter) & (err > tol)

    def body(state):
        v, g_old, f_old, dg, df, _, _, it, _ = state
        g_u, g_x, z, e = sweep(v[:m], v[m:])
        g = jnp.concatenate([g_u, g_x])
        f = g - v
        pos = it % depth
        have_prev = it >= 1
        dg = jnp.where(have_prev & (slot[:, None] == pos), (g - g_old)[None, :], dg)
        df = jnp.where(have_prev & (slot[:, None] == pos), (f - f_old)[None, :], df)
        valid = slot < jnp.minimum(it, depth)
        dfm = jnp.where(valid[:, None], df, zero)
        gram = dfm @ dfm.T
        scale = jnp.maximum(jnp.max(jnp.diagonal(gram)), jnp.finfo(dtype).tiny)
        reg = jnp.finfo(dtype).eps * 1e2 * scale + 1e-30  # > 0 also when f stalls exactly
        gram = (
            jnp.where(valid[:, None] & valid[None, :], gram, zero)
            + jnp.where(valid, reg, one) * eye
        )
        gamma = jnp.linalg.solve(gram, dfm @ f)
        gamma = jnp.where(valid & jnp.all(jnp.isfinite(gamma)), gamma, zero)
        v_new = g - gamma @ jnp.where(valid[:, None], dg, zero)
        err = jnp.max(jnp.abs(f))
        return v_new, g, f, dg, df, z, e, it + 1, err

    v0 = jnp.concatenate([u0, x0])
    hist = jnp.zeros((depth, 2 * m), dtype)
    init = (
        v0,
        v0,
        jnp.zeros_like(v0),
        hist,
        hist,
        zero,
        zero,
        jnp.zeros((), jnp.int32),
        jnp.asarray(jnp.inf, dtype),
    )
    state = jax.lax.while_loop(cond, body, init)
    v, it = state[0], state[-2]
    u, x = v[:m], v[m:]
    _, z, e = _row_sums(p, T, u, x, i)
    below = k <= i
    u = jnp.where(below, u, zero)
    x = jnp.where(below, x, zero)
    C = jax.lax.dynamic_update_slice(C, u[None, :], (i, 0))
    C = jax.lax.dynamic_update_slice(C, u[:, None], (0, i))
    X = jax.lax.dynamic_update_slice(X, x[None, :], (i, 0))
    # near-diagonal interval averages: trapezoid in the first window, copied in the band
    a_new = jnp.where(band == 0, 0.5 * (1.0 + u[i - 1]), a[i - 1])
    b_new = jnp.where(band == 0, 0.5 * (1.0 + u[i - 1]), b[i - 2])
    bx_new = jnp.where(band == 0, 0.5 * x[i - 1], bx[i - 2])
    a = a.at[i].set(a_new)
    b = b.at[i - 1].set(b_new)
    bx = bx.at[i - 1].set(bx_new)
    zs = zs.at[i].set(z)
    es = es.at[i].set(e)
    iters = iters.at[i].set(it)
    return C, X, a, b, bx, zs, es, iters


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _window(p, band, maxiter, i_start, T, h, tol, C, X, a, b, bx):
    """Rows i_start .. 2n of one window in a `lax.fori_loop` (compiled once per shape)."""
    m = C.shape[0]
    dtype = C.dtype
    zs = jnp.zeros((m,), dtype)
    es = jnp.zeros((m,), dtype)
    iters = jnp.zeros((m,), jnp.int32)
    step = functools.partial(_step, p, band, maxiter, T, h, tol)
    carry = jax.lax.fori_loop(i_start, m, step, (C, X, a, b, bx, zs, es, iters))
    return carry


@jax.jit
def _decimate(C, X, a, b, bx):
    """Keep every other time: C_IJ <- C_2I,2J; merge the two near-diagonal interval averages."""
    m = C.shape[0]
    n = (m - 1) // 2
    dtype = C.dtype
    zero = jnp.zeros((), dtype)
    k = jnp.arange(n + 1)
    keep = jnp.arange(m) <= n
    C_new = jnp.zeros_like(C).at[: n + 1, : n + 1].set(C[::2, ::2])
    X_new = jnp.zeros_like(X).at[: n + 1, : n + 1].set(X[::2, ::2])
    two_k = 2 * k
    # a_I: average of C(t_2I, s) over (t_2I-2, t_2I)
    a_half = 0.5 * (C[two_k, jnp.maximum(two_k - 1, 0)] + C[two_k, jnp.maximum(two_k - 2, 0)])
    a_new = jnp.where(k >= 1, 0.5 * (a[two_k] + a_half), zero)
    # b_J, bx_J: averages of C(s, t_2J), chi(s, t_2J) over (t_2J, t_2J+2)
    up1 = jnp.minimum(two_k + 1, m - 1)
    up2 = jnp.minimum(two_k + 2, m - 1)
    b_half = 0.5 * (C[up1, two_k] + C[up2, two_k])
    bx_half = 0.5 * (X[up1, two_k] + X[up2, two_k])
    valid = k <= n - 1
    b_new = jnp.where(valid, 0.5 * (b[two_k] + b_half), zero)
    bx_new = jnp.where(valid, 0.5 * (bx[two_k] + bx_half), zero)
    pad = jnp.zeros((m - n - 1,), dtype)
    a_new = jnp.where(keep, jnp.concatenate([a_new, pad]), zero)
    b_new = jnp.concatenate([b_new, pad])
    bx_new = jnp.concatenate([bx_new, pad])
    return C_new, X_new, a_new, b_new, bx_new


def cugliandolo_kurchan_decimated(
    p: int,
    T: float,
    t_max: float,
    dt: float = 0.02,
    *,
    n: int = 128,
    tol: float | None = None,
    maxiter: int = 100,
    band: int = _BAND,
    dtype=None,
) -> DecimatedDMFTSolution:
    r"""Integrate the Cugliandolo–Kurchan equations to long times on a decimated grid.

    The Kim–Latz grid-halving scheme described in the module docstring: a window of $2n+1$
    times of spacing h (initially `dt`); when it is full, every other time is dropped and h
    doubles. The same equations and initial condition (a quench from $T = \infty$, $C(0,0) = 1$)
    as `cugliandolo_kurchan`, to which it reduces (up to BDF2 vs Heun, both $O(dt^2)$) while
    $t \le 2n\,$`dt`.

    **Arguments:**

    - `p`: interaction order (p >= 2; p = 2 is the spherical SK model).
    - `T`: temperature.
    - `t_max`: final time; the run stops at the first window end $2n\,dt\,2^k \ge$ `t_max`.
    - `dt`: initial step (the first window, t <= 2n dt, is solved on this uniform grid).
    - `n`: half the window; memory is $2(2n+1)^2$ floats, the cost per octave of time is n
      rows of $O(n^2)$. The relative resolution of the two-time plane is ~1/n.
    - `tol`, `maxiter`: the fixed-point iteration of each row stops when the largest change of
      C and chi is below `tol` (default 1e-10 in float64, 1e-5 in float32) or after `maxiter`
      sweeps (a row that needs `maxiter` stops the run, see `t_breakdown`).
    - `band`: sub-diagonals copied by time-translation invariance after the first decimation
      (Kim & Latz); 1, the least, is the most accurate and reaches farthest.
    - `dtype`: float64 when `jax_enable_x64` is on, float32 otherwise (default). The kernels'
      secant slopes are evaluated without cancellation, so float32 runs as far as float64 (to
      t = 1e4 at n = 128 for p = 3, T = 0.5, C(100, 50) equal to 1e-6).

    **Returns:** a `DecimatedDMFTSolution` (NumPy arrays) with `.correlation(t, t_w)`,
    `.integrated_response(t, t_w)` and `.response(t, t_w)`; its `t_breakdown` is `inf`
    unless the run was stopped early (the rows then end before `t_max`).

    References: Kim & Latz, Europhys. Lett. 53, 660 (2001); Cugliandolo & Kurchan, PRL 71,
    173 (1993). For times beyond ~1e6 see the renormalised grid of Lang, Sachdev & Diehl,
    PRL 135, 247101 (2025) (the DMFE / DYNAMITE code).
    """
    if int(p) != p or p < 2:
        raise ConfigError(f"p must be an integer >= 2, got {p}.")
    check_positive("T", T)
    check_positive("t_max", t_max)
    check_positive("dt", dt)
    if int(band) != band or not 1 <= band <= 4:
        raise ConfigError(f"band must be an integer in 1..4 (Kim-Latz use 1-2), got {band}.")
    if int(n) != n or n < 4:
        raise ConfigError(f"n (half the window) must be an integer >= 4, got {n}; use 64-512.")
    if int(maxiter) != maxiter or maxiter < 1:
        raise ConfigError(f"maxiter must be a positive integer, got {maxiter}.")
    if dtype is None:
        dtype = jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
    dtype = jnp.dtype(dtype)
    if tol is None:
        tol = 1e-10 if dtype == jnp.dtype(jnp.float64) else 1e-5
    check_positive("tol", tol)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ConfigError(f"dtype must be float32 or float64, got {dtype}.")
    if dtype == jnp.dtype(jnp.float64) and not jax.config.read("jax_enable_x64"):
        raise ConfigError("dtype=float64 needs jax.config.update('jax_enable_x64', True).")
    p, n, maxiter, band = int(p), int(n), int(maxiter), int(band)
    m = 2 * n + 1
    h = float(dt)
    n_windows = 1 + max(0, math.ceil(math.log2(t_max / (2 * n * h)) - 1e-12))

    C = jnp.zeros((m, m), dtype).at[0, 0].set(1.0)
    X = jnp.zeros((m, m), dtype)
    a = jnp.zeros((m,), dtype)
    b = jnp.zeros((m,), dtype)
    bx = jnp.zeros((m,), dtype)
    # row 1 by BDF1 inside the loop; rows i >= 2 by BDF2
    T_, tol_ = jnp.asarray(T, dtype), jnp.asarray(tol, dtype)
    t_breakdown = math.inf
    ts, hs, zs_all, es_all, c_rows, x_rows, it_all = [], [], [], [], [], [], []
    for w in range(n_windows):
        first = w == 0
        i_start = 1 if first else n + 1
        C, X, a, b, bx, zs, es, its = _window(
            p,
            0 if first else band,
            maxiter,
            i_start,
            T_,
            jnp.asarray(h, dtype),
            tol_,
            C,
            X,
            a,
            b,
            bx,
        )
        rows = np.arange(0 if first else n + 1, m)
        Cn, Xn = np.asarray(C), np.asarray(X)
        zn, en = np.array(zs), np.array(es)
        if first:
            zn[0], en[0] = T, 0.0
        cr = np.tril(Cn)[rows].astype(np.float64)
        xr = np.tril(Xn)[rows].astype(np.float64)
        upper = np.arange(m)[None, :] > rows[:, None]
        cr[upper] = np.nan
        xr[upper] = np.nan
        ts.append(rows * h)
        hs.append(np.full(rows.shape, h))
        zs_all.append(zn[rows].astype(np.float64))
        es_all.append(en[rows].astype(np.float64))
        it_all.append(np.asarray(its)[rows])
        c_rows.append(cr)
        x_rows.append(xr)
        bad = _breakdown(cr, es_all[-1], it_all[-1], maxiter, band if w else 0)
        if bad is not None:
            # drop the window: its rows are not a solution of the CK equations
            for lst in (ts, hs, zs_all, es_all, it_all, c_rows, x_rows):
                lst.pop()
            t_breakdown = float(rows[bad] * h)
            break
        if w < n_windows - 1:
            C, X, a, b, bx = _decimate(C, X, a, b, bx)
            h *= 2.0
    return DecimatedDMFTSolution(
        np.concatenate(ts),
        np.concatenate(hs),
        np.concatenate(zs_all),
        np.concatenate(es_all),
        np.concatenate(c_rows),
        np.concatenate(x_rows),
        np.concatenate(it_all),
        t_breakdown,
        float(T),
        p,
    )


def _breakdown(c_rows, energy, iterations, maxiter, band):
    """Index of the first row of a window that is not a relaxational solution, else None.

    Checks what every quench of these gradient dynamics obeys: finite values, a converged row
    iteration, an energy that does not increase and correlations C(t, t_w), t_w >= t/2, that do
    not increase with t at fixed t_w (by more than 1e-4 and 1e-3)."""
    finite = np.isfinite(energy) & np.all(np.isfinite(np.nan_to_num(c_rows, nan=0.0)), axis=1)
    ok = finite & (iterations < maxiter)
    ok[1:] &= np.diff(energy) <= 1e-4
    # C(t_i, t_j) <= C(t_{i-1}, t_j) for the solved entries of consecutive rows
    prev, cur = c_rows[:-1], c_rows[1:]
    m = c_rows.shape[1]
    i = np.sum(~np.isnan(cur), axis=1) - 1
    j = np.arange(m)[None, :]
    # near the diagonal, where a failing band shows first; the oldest columns are coarse-grained
    solved = (j <= (i - 1 - max(band, 1))[:, None]) & (2 * j >= i[:, None])
    rise = np.where(solved, np.nan_to_num(cur - prev, nan=0.0), 0.0)
    ok[1:] &= np.max(rise, axis=1) <= 1e-3
    return None if ok.all() else int(np.argmin(ok))


def threshold_energy(p: int, T: float = 0.0) -> float:
    r"""Asymptotic energy per spin of the aging dynamics of the pure spherical p-spin model.

    Cugliandolo & Kurchan, PRL 71, 173 (1993), in the normalisation $f(q) = q^p/2$: below
    $T_d$ the plateau $q$ is the largest root of the marginality condition
    $f''(q)(1-q)^2 = T^2$, the fluctuation–dissipation ratio is $x = (p-2)(1-q)/q$, and

    $$e_\infty(T) = -\frac{1}{2T}\left[1 - (1-x)q^p\right],\qquad
    e_\infty(0) = -\sqrt{2(p-1)/p}$$

    (the threshold energy; $-2/\sqrt3$ for p = 3). At $T_d$ it meets the paramagnetic
    $-1/(2T_d)$; above $T_d$ the dynamics equilibrates and $-1/(2T)$ is returned.

    **Arguments:**

    - `p`: interaction order, p >= 3.
    - `T`: temperature, T >= 0.

    **Returns:** a float.
    """
    if int(p) != p or p < 3:
        raise ConfigError(f"threshold_energy needs an integer p >= 3, got {p}.")
    if not np.isfinite(T) or T < 0:
        raise ConfigError(f"T must be >= 0 and finite, got {T}.")
    p = int(p)
    if T == 0:
        return -math.sqrt(2.0 * (p - 1) / p)
    t_d = math.sqrt(p * (p - 2) ** (p - 2) / (2.0 * (p - 1) ** (p - 1)))
    if T >= t_d:
        return -0.5 / T
    # f''(q)(1-q)^2 = p(p-1)/2 q^{p-2}(1-q)^2 is decreasing on [q_d, 1], q_d = (p-2)/(p-1)
    lo, hi = (p - 2) / (p - 1), 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * p * (p - 1) * mid ** (p - 2) * (1 - mid) ** 2 > T * T:
            lo = mid
        else:
            hi = mid
    q = 0.5 * (lo + hi)
    x = (p - 2) * (1 - q) / q
    return -(1.0 - (1.0 - x) * q**p) / (2.0 * T)
