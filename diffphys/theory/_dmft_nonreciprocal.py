r"""Large-N dynamics of the non-reciprocally coupled spherical systems: DMFT and exact p = 2.

Model (`diffphys.models.NonreciprocalSK`; after Garcia Lorenzana, Altieri, Biroli, Fruchart &
Vitelli, PRL 135, 187402 (2025), arXiv 2408.17360; see the model's docstring for what was read
from the papers and what is our reading): $\dot s^a = J s^a - z_a s^a + \sum_b K_{ab}s^b +
\xi^a$ with $K = [[0,\kappa+\alpha],[\kappa-\alpha,0]]$ ($\kappa = 0$: the papers' antagonistic
coupling; $\kappa \ne 0$: our extension) and a shared J with semicircle spectrum on [-2, 2].

Two solutions of the N -> inf dynamics after a quench from T = inf live here:

- `nonreciprocal_dmft`: the two-time DMFT (2 x 2 correlation and response, one Lagrange
  multiplier per system) for a shared p-spin disorder, any p; our derivation, written in the
  diagonal/antisymmetric components the PRL uses with `rotation_components`.
- `nonreciprocal_sk_dynamics`: the exact p = 2 solution. Because both systems see the same J,
  the dynamics decouples in the eigenbasis of J: the pair $w_\lambda = (s^1_\lambda,
  s^2_\lambda)$ obeys $\dot w_\lambda = A_\lambda(t) w_\lambda + \xi_\lambda$ with $A_\lambda =
  \lambda I - \mathrm{diag}(z_1, z_2) + K$. The equal-time covariances $Q_\lambda = \langle
  w_\lambda w_\lambda^T\rangle$ obey $\dot Q_\lambda = A_\lambda Q_\lambda + Q_\lambda A_\lambda^T +
  2T I$, $Q_\lambda(0) = I$, and the constraints $\int\rho(\lambda)(Q_\lambda)_{aa} = 1$ fix
  $z_a = T + \int\rho\,[\lambda (Q_\lambda)_{aa} + \sum_b K_{ab}(Q_\lambda)_{ba}]$. Two-time
  correlations are $C_{ab}(t,t_w) = \int\rho\,[\Phi_\lambda(t,t_w)Q_\lambda(t_w)]_{ab}$ with
  $\dot\Phi = A\Phi$; $\rho$ is integrated by Gauss quadrature with Chebyshev-U nodes, which
  cluster at the spectral edge where the aging dynamics lives.

For $\kappa = 0$ (derived here): the two systems rotate into each other rigidly,
$s^1 = \cos(\alpha t)u + \sin(\alpha t)v$, $s^2 = -\sin(\alpha t)u + \cos(\alpha t)v$ with u, v
two independent spherical SK trajectories (their overlap $u\cdot v/N$ vanishes as N -> inf,
so the rotation respects both spherical constraints), hence $z_1 = z_2 = z_{SK}$,
$C_d = C_{SK}(t,t')\cos\alpha(t-t')$ and $C_a = C_{SK}(t,t')\sin\alpha(t-t')$. The transition is
therefore at the spherical SK temperature $T_c = 1$ for every $\alpha$ (`critical_temperature`):
above it C decays to zero (a static, time-translation-invariant paramagnet; the decay is
modulated at frequency $\alpha$), below it the aging part $q_{EA}[2\sqrt{tt'}/(t+t')]^{3/2}$
(Cugliandolo & Dean 1995) oscillates at frequency $\alpha$ without damping.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, check_positive
from ._dmft import _bilinear, _grid_points


def exceptional_point(kappa: float) -> float:
    r"""The antisymmetric coupling $\alpha_{EP} = |\kappa|$ at which $K = [[0,\kappa+\alpha],
    [\kappa-\alpha,0]]$ has a double eigenvalue 0 with a single eigenvector."""
    return abs(float(kappa))


def critical_temperature(alpha=0.0) -> np.ndarray | float:
    r"""Transition temperature of the antagonistically coupled systems ($\kappa = 0$), p = 2.

    $T_c(\alpha) = 1$ for every $\alpha$: the dynamics is the spherical SK dynamics rotated at
    frequency $\alpha$ (module docstring), so the static paramagnet (T > 1) gives way to the
    oscillating aging phase (T < 1, oscillation frequency $\alpha$) exactly where spherical SK
    condenses. Derived here for the model as implemented (the papers' own transition-line
    formula could not be read).
    """
    return np.ones_like(np.asarray(alpha, dtype=np.float64))


def oscillation_frequency(alpha, kappa=0.0) -> np.ndarray | float:
    r"""Linear prediction of the rotation frequency of the slow modes, $\omega_0 =
    \sqrt{\alpha^2-\kappa^2}$ for $|\alpha| > |\kappa|$ (oscillating), 0 otherwise (static)."""
    a = np.asarray(alpha, dtype=np.float64)
    return np.sqrt(np.maximum(a**2 - float(kappa) ** 2, 0.0))


def exceptional_discriminant(z1, z2, alpha, kappa=0.0) -> np.ndarray | float:
    r"""Discriminant of the self-consistent one-mode generator $-\mathrm{diag}(z_1, z_2) + K$.

    Its eigenvalues are $-(z_1+z_2)/2 \pm \sqrt{D}$ with $D = ((z_1-z_2)/2)^2 + \kappa^2 -
    \alpha^2$: real (static relaxation) for $D > 0$, a complex pair rotating at
    $\omega = \sqrt{-D}$ (oscillating) for $D < 0$, and an exceptional point at $D = 0$. The
    Lagrange multipliers are dynamical ($z_1 - z_2 \simeq 2\alpha\, s^1\cdot s^2/N$), so the
    transition sits at $D = 0$ of the *self-consistent* $z_a$, not at the bare $|\alpha| =
    |\kappa|$; for $\kappa = 0$, $z_1 = z_2$ and the dynamics oscillates at $\omega = \alpha$.
    """
    z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
    return ((z1 - z2) / 2) ** 2 + float(kappa) ** 2 - np.asarray(alpha, np.float64) ** 2


def semicircle_quadrature(n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes and weights of the n-point Gauss rule for $\rho(\lambda) = \sqrt{4-\lambda^2}/(2\pi)$:
    $\lambda_k = 2\cos(k\pi/(n+1))$, $w_k = \frac{2}{n+1}\sin^2(k\pi/(n+1))$ (exact for
    polynomials of degree < 2n)."""
    k = np.arange(1, n + 1)
    theta = k * np.pi / (n + 1)
    return 2.0 * np.cos(theta), 2.0 / (n + 1) * np.sin(theta) ** 2


class NonreciprocalDynamics(NamedTuple):
    """Output of `nonreciprocal_sk_dynamics`.

    - `t`: record times, shape (n_t,).
    - `t_w`: waiting times, shape (n_w,).
    - `C`: $C_{ab}(t, t_w)$, shape (n_w, n_t, 2, 2); NaN where t < t_w.
    - `z`: Lagrange multipliers $z_a(t)$, shape (n_t, 2).
    - `energy`: internal energy per spin of each system, shape (n_t, 2).
    - `q12`: equal-time overlap $s^1\\cdot s^2/N$, shape (n_t,).
    """

    t: np.ndarray
    t_w: np.ndarray
    C: np.ndarray
    z: np.ndarray
    energy: np.ndarray
    q12: np.ndarray


def nonreciprocal_sk_dynamics(
    T: float,
    alpha: float,
    kappa: float = 0.0,
    *,
    t_max: float,
    t_w=(),
    dt: float = 0.02,
    record_every: int = 10,
    n_lambda: int = 2000,
) -> NonreciprocalDynamics:
    r"""Exact N -> inf dynamics of `NonreciprocalSK` after a quench from T = inf.

    Integrates the mode covariances $Q_\lambda(t)$ and, from each waiting time, the two-time
    functions $\Phi_\lambda(t,t_w)Q_\lambda(t_w)$ by fourth-order Runge–Kutta on `n_lambda`
    quadrature nodes of the semicircle (see the module docstring). Cost O(n_lambda (1 + n_w)
    t_max/dt). With alpha = kappa = 0 this is the exact spherical SK dynamics.

    **Arguments:**

    - `T`: temperature; `alpha`, `kappa`: antisymmetric and reciprocal couplings.
    - `t_max`, `dt`: final time and RK4 step (dt <= 0.05 is converged to ~1e-4).
    - `t_w`: waiting times (multiples of dt).
    - `record_every`: record every this many steps.
    - `n_lambda`: quadrature nodes; ~ 20 sqrt(t_max) resolve the edge at time t_max.

    **Returns:** a `NonreciprocalDynamics`.
    """
    check_positive("T", T)
    check_positive("dt", dt)
    check_positive("t_max", t_max)
    n_steps = int(round(t_max / dt))
    if n_steps % record_every:
        n_steps += record_every - n_steps % record_every
    t_w = np.atleast_1d(np.asarray(t_w, dtype=np.float64))
    kw = np.round(t_w / dt).astype(np.int64)
    if np.any(kw < 0) or np.any(kw > n_steps):
        raise ConfigError(f"waiting times must lie in [0, t_max={t_max}], got {t_w}.")
    lam, wts = semicircle_quadrature(n_lambda)
    C, z, energy, q12 = _solve(
        float(T),
        float(alpha),
        float(kappa),
        float(dt),
        n_steps,
        record_every,
        tuple(int(k) for k in kw),
        lam,
        wts,
    )
    t = np.arange(1, n_steps // record_every + 1) * record_every * dt
    C = np.asarray(C, dtype=np.float64)
    C = np.where((t[None, :] < t_w[:, None] - 1e-9)[..., None, None], np.nan, C)
    return NonreciprocalDynamics(t, t_w, C, np.asarray(z), np.asarray(energy), np.asarray(q12))


def _solve(T, alpha, kappa, dt, n_steps, record_every, kw, lam, wts):
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    # K is built from Python floats here (as a constant would be) so that the compiled
    # program, shared by every T, alpha and kappa, gives bit-identical results.
    K = jnp.asarray([[0.0, kappa + alpha], [kappa - alpha, 0.0]], dtype)
    C, z, e, q12 = _solve_jit(
        jnp.asarray(T, dtype),
        K,
        jnp.asarray(lam, dtype),
        jnp.asarray(wts, dtype),
        dt=dt,
        n_steps=n_steps,
        record_every=record_every,
        kw=kw,
    )
    C = jnp.swapaxes(C, 0, 1)[: max(len(kw), 0)]
    return C, z, e, q12


@functools.partial(jax.jit, static_argnames=("dt", "n_steps", "record_every", "kw"))
def _solve_jit(T, K, lam, wts, *, dt, n_steps, record_every, kw):
    """The RK4 integration, compiled once per (dt, n_steps, record_every, kw, n_lambda, dtype):
    T and the couplings K are traced. dt stays static (`dt / 6` folded in Python float64 as
    before, so results are bit-identical to a per-call compilation)."""
    dtype = lam.dtype
    eye = jnp.eye(2, dtype=dtype)
    n_w = len(kw)
    kw_arr = jnp.asarray(kw if n_w else [0], jnp.int32)

    def lagrange(Q):
        # z_a = T + int rho [lambda Q_aa + sum_b K_ab Q_ba]
        lq = jnp.einsum("l,l,laa->a", wts, lam, Q)
        kq = jnp.einsum("l,ab,lba->a", wts, K, Q)
        return T + lq + kq

    def generator(z):
        return lam[:, None, None] * eye - jnp.diag(z)[None] + K[None]

    def rhs(Q, Y):
        A = generator(lagrange(Q))
        dQ = A @ Q + Q @ jnp.swapaxes(A, -1, -2) + 2.0 * T * eye
        dY = jnp.einsum("lab,wlbc->wlac", A, Y)
        return dQ, dY

    def rk4(Q, Y):
        k1 = rhs(Q, Y)
        k2 = rhs(Q + 0.5 * dt * k1[0], Y + 0.5 * dt * k1[1])
        k3 = rhs(Q + 0.5 * dt * k2[0], Y + 0.5 * dt * k2[1])
        k4 = rhs(Q + dt * k3[0], Y + dt * k3[1])
        Q = Q + dt / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        Y = Y + dt / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        return Q, Y

    def start_waits(step, Q, Y):
        starts = (kw_arr == step)[:, None, None, None]
        return jnp.where(starts, Q[None], Y)

    def observe(Q, Y):
        C = jnp.einsum("l,wlab->wab", wts, Y)
        z = lagrange(Q)
        e = -0.5 * jnp.einsum("l,l,laa->a", wts, lam, Q)
        q12 = jnp.sum(wts * Q[:, 0, 1])
        return C, z, e, q12

    Q0 = jnp.broadcast_to(eye, (lam.shape[0], 2, 2))
    Y0 = jnp.zeros((kw_arr.shape[0], lam.shape[0], 2, 2), dtype)
    Y0 = start_waits(0, Q0, Y0)

    def inner(carry, step):
        Q, Y = carry
        Q, Y = rk4(Q, Y)
        Y = start_waits(step + 1, Q, Y)
        return (Q, Y), None

    def outer(carry, block):
        steps = block * record_every + jnp.arange(record_every)
        carry, _ = jax.lax.scan(inner, carry, steps)
        return carry, observe(*carry)

    _, out = jax.lax.scan(outer, (Q0, Y0), jnp.arange(n_steps // record_every))
    return out


def sk_aging_correlation(t, t_w, T: float) -> np.ndarray | float:
    r"""Asymptotic aging form of the spherical SK correlation below $T_c = 1$
    (Cugliandolo & Dean 1995): $C(t,t_w) \simeq (1-T)\,[2\sqrt{t t_w}/(t+t_w)]^{3/2}$ for
    $t - t_w \gg 1$; times $\cos\alpha(t-t_w)$ it is the aging of the antagonistically coupled
    systems ($\kappa = 0$, see the module docstring)."""
    t, t_w = np.asarray(t, float), np.asarray(t_w, float)
    return (1.0 - T) * (2.0 * np.sqrt(t * t_w) / (t + t_w)) ** 1.5


# -- two-time DMFT of the coupled systems (any p) ------------------------------------------


class NonreciprocalDMFTSolution(NamedTuple):
    """Two-time DMFT solution of the coupled systems on a uniform grid `t[i] = i * dt`.

    - `t`: times, shape (n,).
    - `C`: $C_{ab}(t_i, t_j) = \\langle s^a(t_i)\\cdot s^b(t_j)\\rangle/N$, shape (n, n, 2, 2), for all
      i, j (it obeys $C_{ab}(t, t') = C_{ba}(t', t)$).
    - `R`: $R_{ab}(t_i, t_j) = \\delta\\langle s^a_k(t_i)\\rangle/\\delta h^b_k(t_j)$ for j <= i (zero
      above the diagonal, $R_{ab}(t^+, t) = \\delta_{ab}$), shape (n, n, 2, 2).
    - `z`: Lagrange multipliers $z_a(t_i)$, shape (n, 2).
    - `energy`: $H(s^a)/N$ of each system, shape (n, 2).
    - `q12`: equal-time overlap $C_{12}(t_i, t_i)$, shape (n,).
    """

    t: np.ndarray
    C: np.ndarray
    R: np.ndarray
    z: np.ndarray
    energy: np.ndarray
    q12: np.ndarray

    def correlation(self, t, t_w) -> np.ndarray | float:
        """$C_{ab}(t, t_w)$ at arbitrary times (bilinear interpolation), shape (..., 2, 2)."""
        return self._interp(self.C, t, t_w)

    def response(self, t, t_w) -> np.ndarray | float:
        """$R_{ab}(t, t_w)$ for t >= t_w (bilinear interpolation), shape (..., 2, 2)."""
        t, t_w = np.broadcast_arrays(np.asarray(t, float), np.asarray(t_w, float))
        if np.any(t < t_w - 1e-9):
            raise ConfigError("response(t, t_w) needs t >= t_w.")
        return self._interp(self.R, t, t_w)

    def _interp(self, X, t, t_w):
        t, t_w = np.broadcast_arrays(np.asarray(t, float), np.asarray(t_w, float))
        if np.max(t, initial=0.0) > self.t[-1] + 1e-9 or np.min(t_w, initial=0.0) < 0:
            raise ConfigError(f"times must lie in [0, {self.t[-1]}].")
        dt = self.t[1] - self.t[0]
        out = np.empty(t.shape + (2, 2))
        for a in range(2):
            for b in range(2):
                out[..., a, b] = _bilinear(X[..., a, b], t / dt, t_w / dt)
        return out


def rotation_components(X) -> tuple[np.ndarray, np.ndarray]:
    r"""Diagonal and antisymmetric parts of a 2 x 2 two-time function (last two axes).

    $X = X_d\,\mathbb{1} + X_a\,\epsilon + (\text{rest})$ with $\epsilon = [[0, 1], [-1, 0]]$:
    $X_d = (X_{11} + X_{22})/2$, $X_a = (X_{12} - X_{21})/2$. These are the "diagonal and
    antisymmetric components" of the correlation and response in which Garcia Lorenzana et al.
    (PRL 135, 187402, Fig. 2 caption) present their DMFT solution; for the purely antagonistic
    coupling ($\kappa = 0$) the rest vanishes, because the two systems rotate into each other.
    """
    X = np.asarray(X)
    return 0.5 * (X[..., 0, 0] + X[..., 1, 1]), 0.5 * (X[..., 0, 1] - X[..., 1, 0])


def nonreciprocal_dmft(
    p: int,
    T: float,
    alpha: float,
    kappa: float = 0.0,
    *,
    t_max: float,
    dt: float = 0.05,
    dtype=jnp.float32,
) -> NonreciprocalDMFTSolution:
    r"""Integrate the DMFT equations of two spherical p-spin systems with shared couplings,
    coupled site by site by $K = [[0, \kappa+\alpha], [\kappa-\alpha, 0]]$.

    Model: $\dot s^a_i = -\partial_i H(s^a) - z_a(t) s^a_i + \sum_b K_{ab} s^b_i + \xi^a_i$,
    $\langle\xi^a_i(t)\xi^b_j(t')\rangle = 2T\delta_{ab}\delta_{ij}\delta(t-t')$, $|s^a|^2 = N$,
    both systems seeing the *same* Gaussian H with $\overline{H(s)H(s')} = N f(s\cdot s'/N)$,
    $f(q) = q^p/2$ (p = 2: `diffphys.models.NonreciprocalSK`, p = 3:
    `diffphys.models.NonreciprocalPSpin`), quenched from T = inf (two
    independent random points of the spheres). Because the disorder is shared, averaging over
    it couples the two systems: the effective single-site process has the noise
    $\langle\eta^a(t)\eta^b(s)\rangle = f'(C_{ab}(t,s))$ and the memory kernel
    $M_{ab}(t,s) = f''(C_{ab}(t,s))R_{ab}(t,s)$, so that for $t > t'$

    $$\partial_t C_{ab}(t,t') = -z_a C_{ab} + \sum_c K_{ac}C_{cb}
        + \sum_c\int_0^t\! ds\, M_{ac}(t,s)C_{cb}(s,t')
        + \sum_c\int_0^{t'}\! ds\, f'(C_{ac}(t,s))R_{bc}(t',s),$$
    $$\partial_t R_{ab}(t,t') = -z_a R_{ab} + \sum_c K_{ac}R_{cb}
        + \sum_c\int_{t'}^t\! ds\, M_{ac}(t,s)R_{cb}(s,t'),$$
    $$z_a(t) = T + \sum_c K_{ac}C_{ac}(t,t) - p\,e_a(t),\qquad
      e_a(t) = -\sum_c\int_0^t\! ds\, f'(C_{ac}(t,s))R_{ac}(t,s),$$

    with $C_{aa}(t,t) = 1$, $R_{ab}(t^+,t) = \delta_{ab}$ and the equal-time overlap evolving as
    $\frac{d}{dt}C_{12}(t,t) = \partial_t C_{12}(t,t^-) + \partial_t C_{21}(t,t^-)$. For a single
    system (K = 0) these are the Cugliandolo–Kurchan equations of `cugliandolo_kurchan`.

    Provenance: this is our derivation (MSR average over the shared Gaussian disorder) for the
    model as `NonreciprocalSK` implements it. The PRL (Garcia Lorenzana, Altieri, Biroli,
    Fruchart & Vitelli, PRL 135, 187402 (2025)) and its companion PRE solve the DMFT of their
    model in terms of the diagonal and antisymmetric components of C and R (see
    `rotation_components`); their equations could not be read here, so the notation is ours.
    For p = 2 the solution agrees with the exact eigenmode solution `nonreciprocal_sk_dynamics`
    to O(dt^2); for p = 3 with Langevin simulation of `NonreciprocalPSpin`; without coupling it
    reduces to `cugliandolo_kurchan` (all in `tests/test_nonreciprocal.py`).

    Algorithm: as `cugliandolo_kurchan`: a uniform two-time grid, rows $C(t_{i+1}, t_j)$,
    $R(t_{i+1}, t_j)$, $j \le i$, and the equal-time overlap advanced by Heun's
    predictor–corrector with trapezoidal memory integrals (global error O(dt^2)), inside one
    `lax.fori_loop`. C and R are stored as (2n) x (2n) block matrices, so every memory integral
    is a (2 x 2n) @ (2n x 2n) product: memory $8 n^2$ floats, work $O(n^3)$.

    **Arguments:**

    - `p`: interaction order of the shared disorder (p >= 2; p = 2 is the spherical SK model).
    - `T`: temperature.
    - `alpha`: antagonistic (antisymmetric) coupling, $K_{12} = -K_{21} = \alpha$ (the PRL's
      non-reciprocal coupling).
    - `kappa`: reciprocal inter-system coupling (our extension; 0 is the PRL model).
    - `t_max`, `dt`: final time and step; n = round(t_max/dt) + 1 grid points.
    - `dtype`: float32 (default) or float64 (needs `jax_enable_x64`).

    **Returns:** a `NonreciprocalDMFTSolution` (NumPy arrays).
    """
    n = _grid_points(p, T, t_max, dt)
    K = np.array([[0.0, kappa + alpha], [kappa - alpha, 0.0]])
    C, R, z, e = _nr_solve(int(p), float(T), K, float(dt), n, jnp.dtype(dtype))
    C = np.asarray(C, dtype=np.float64).transpose(0, 2, 1, 3)  # (i, a, j, b) -> (i, j, a, b)
    R = np.asarray(R, dtype=np.float64).transpose(0, 2, 1, 3)
    t = np.arange(n) * dt
    return NonreciprocalDMFTSolution(
        t,
        C,
        R,
        np.asarray(z, np.float64),
        np.asarray(e, np.float64),
        C[np.arange(n), np.arange(n), 0, 1],
    )


def _nr_row_derivatives(Cb, Rb, i, h, T, K, p):
    """d/dt of block row i of C and R (entries j <= i), and z_a(t_i), e_a(t_i).

    Cb, Rb: (n, 2, n, 2) with X[s, c, j, b] = X_cb(t_s, t_j)."""
    n = Cb.shape[0]
    dtype = Cb.dtype
    zero = jnp.zeros((), dtype)
    k = jnp.arange(n)
    c_row = Cb[i]  # (a, s, c) = C_ac(t_i, t_s)
    r_row = Rb[i]
    below = (k <= i)[None, :, None]
    fp = jnp.where(below, 0.5 * p * c_row ** (p - 1), zero)  # f'(C)
    fpp = 0.5 * p * (p - 1) * c_row ** (p - 2)  # f''(C)
    m = jnp.where(below, fpp * r_row, zero)  # memory kernel M_ac(t_i, s)
    half = 0.5 * h
    w = jnp.where(k <= i, h, zero)
    w = w.at[0].add(-half).at[i].add(-half)  # trapezoid on [0, t_i] (all zero when i = 0)
    w3 = w[None, :, None]
    flat = (2, 2 * n)
    e = -jnp.sum(w3 * fp * r_row, axis=(1, 2))
    q_row = c_row[:, i, :]  # C_ac(t_i, t_i)
    z = T + jnp.sum(K * q_row, axis=1) - p * e
    full = (Cb.reshape(2 * n, 2 * n), Rb.reshape(2 * n, 2 * n))
    # int_0^{t_i} M(t_i, s) C(s, t_j) ds
    i1 = ((w3 * m).reshape(flat) @ full[0]).reshape(2, n, 2)
    # int_0^{t_j} f'(C(t_i, s)) R(t_j, s)^T ds, trapezoid on [0, t_j] (R(t_j, t_j) = 1)
    i2 = jax.lax.dot_general((h * fp).reshape(flat), full[1], (((1,), (1,)), ((), ())))
    i2 = i2.reshape(2, n, 2)
    i2 = i2 - half * jnp.einsum("ac,jbc->ajb", fp[:, 0, :], Rb[:, :, 0, :]) - half * fp
    # int_{t_j}^{t_i} M(t_i, s) R(s, t_j) ds, trapezoid on [t_j, t_i]
    i3 = (h * m).reshape(flat) @ full[1]
    i3 = i3.reshape(2, n, 2) - half * m - half * jnp.einsum("ac,cjb->ajb", m[:, i, :], r_row)
    dc = -z[:, None, None] * c_row + jnp.einsum("ac,cjb->ajb", K, c_row) + i1 + i2
    dr = -z[:, None, None] * r_row + jnp.einsum("ac,cjb->ajb", K, r_row) + i3
    return jnp.where(below, dc, zero), jnp.where(below, dr, zero), z, e


def _nr_set_row(Cb, Rb, i, c_row, r_row):
    Cb = jax.lax.dynamic_update_slice(Cb, c_row[None], (i, 0, 0, 0))
    col = jnp.transpose(c_row, (1, 2, 0))[:, :, None, :]  # C_ba(t_j, t_i) = C_ab(t_i, t_j)
    Cb = jax.lax.dynamic_update_slice(Cb, col, (0, 0, i, 0))
    Rb = jax.lax.dynamic_update_slice(Rb, r_row[None], (i, 0, 0, 0))
    return Cb, Rb


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def _nr_solve(p, T, K, h, n, dtype):
    """Compiled once per (p, n, dtype); T, K and dt are traced."""
    T = jnp.asarray(T, dtype)
    K = jnp.asarray(K, dtype)
    h = jnp.asarray(h, dtype)
    eye = jnp.eye(2, dtype=dtype)
    Cb = jnp.zeros((n, 2, n, 2), dtype).at[0, :, 0, :].set(eye)
    Rb = jnp.zeros((n, 2, n, 2), dtype).at[0, :, 0, :].set(eye)
    z = jnp.zeros((n, 2), dtype)
    e = jnp.zeros((n, 2), dtype)
    k = jnp.arange(n)
    zero = jnp.zeros((), dtype)

    def equal_time_rate(dc, i):
        g = dc[:, i, :]  # d/dt C_ab(t, t') at t' = t^-
        return g + g.T + 2.0 * T * eye

    def body(i, carry):
        Cb, Rb, z, e = carry
        dc0, dr0, zi, ei = _nr_row_derivatives(Cb, Rb, i, h, T, K, p)
        z = z.at[i].set(zi)
        e = e.at[i].set(ei)
        c_old, r_old = Cb[i], Rb[i]
        q_old = c_old[:, i, :]
        s0 = equal_time_rate(dc0, i)
        below = (k <= i)[None, :, None]
        diag = (k == i + 1)[None, :, None]

        def assemble(c_lower, r_lower, q):
            q = q.at[0, 1].set(0.5 * (q[0, 1] + q[1, 0]))
            q = q.at[1, 0].set(q[0, 1]).at[0, 0].set(1.0).at[1, 1].set(1.0)
            c = jnp.where(below, c_lower, zero)
            c = jnp.where(diag, q[:, None, :], c)
            r = jnp.where(below, r_lower, zero)
            r = jnp.where(diag, eye[:, None, :], r)
            return c, r

        c_pred, r_pred = assemble(c_old + h * dc0, r_old + h * dr0, q_old + h * s0)
        # The corrector overwrites exactly the slices the predictor writes, so both go into the
        # same buffers (no copy of the (2n)^2 arrays per step).
        Cb, Rb = _nr_set_row(Cb, Rb, i + 1, c_pred, r_pred)
        dc1, dr1, _, _ = _nr_row_derivatives(Cb, Rb, i + 1, h, T, K, p)
        s1 = equal_time_rate(dc1, i + 1)
        c_new, r_new = assemble(
            c_old + 0.5 * h * (dc0 + dc1),
            r_old + 0.5 * h * (dr0 + dr1),
            q_old + 0.5 * h * (s0 + s1),
        )
        Cb, Rb = _nr_set_row(Cb, Rb, i + 1, c_new, r_new)
        return Cb, Rb, z, e

    Cb, Rb, z, e = jax.lax.fori_loop(0, n - 1, body, (Cb, Rb, z, e))
    _, _, z_last, e_last = _nr_row_derivatives(Cb, Rb, n - 1, h, T, K, p)
    return Cb, Rb, z.at[n - 1].set(z_last), e.at[n - 1].set(e_last)
