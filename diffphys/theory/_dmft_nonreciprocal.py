r"""Large-N dynamics of the non-reciprocally coupled spherical SK systems, and its exceptional point.

Model (`diffphys.models.NonreciprocalSK`; Garcia Lorenzana, Altieri, Biroli, Fruchart &
Vitelli, PRL 135, 187402 (2025), arXiv 2408.17360): $\dot s^a = J s^a - z_a s^a +
\sum_b K_{ab}s^b + \xi^a$ with $K = [[0,\kappa+\alpha],[\kappa-\alpha,0]]$ ($\kappa = 0$ in
the PRL) and a shared J with semicircle spectrum on [-2, 2].

Because both systems see the same J, the dynamics decouples in the eigenbasis of J: the pair
$w_\lambda = (s^1_\lambda, s^2_\lambda)$ obeys $\dot w_\lambda = A_\lambda(t) w_\lambda +
\xi_\lambda$ with $A_\lambda = \lambda I - \mathrm{diag}(z_1, z_2) + K$. As $N\to\infty$ the
equal-time covariances $Q_\lambda = \langle w_\lambda w_\lambda^T\rangle$ obey
$\dot Q_\lambda = A_\lambda Q_\lambda + Q_\lambda A_\lambda^T + 2T I$, $Q_\lambda(0) = I$, and
the constraints $\int\rho(\lambda)(Q_\lambda)_{aa} = 1$ fix
$z_a = T + \int\rho\,[\lambda (Q_\lambda)_{aa} + \sum_b K_{ab}(Q_\lambda)_{ba}]$. Two-time
correlations are $C_{ab}(t,t_w) = \int\rho\,[\Phi_\lambda(t,t_w)Q_\lambda(t_w)]_{ab}$ with
$\dot\Phi = A\Phi$. This is the exact solution of the model's DMFT (for p = 2 the DMFT
closes on these one-mode equations); $\rho$ is integrated by Gauss quadrature with
Chebyshev-U nodes, which cluster at the spectral edge where the aging dynamics lives.

For $\kappa = 0$ the two systems rotate into each other rigidly:
$s^1 = \cos(\alpha t)u + \sin(\alpha t)v$, $s^2 = -\sin(\alpha t)u + \cos(\alpha t)v$ with u, v
two independent spherical SK trajectories, so $z_1 = z_2 = z_{SK}$ and
$C_{11}(t,t') = C_{SK}(t,t')\cos\alpha(t-t')$: the PRL's oscillating aging,
$C_d = q_{EA}\,[2\sqrt{tt'}/(t+t')]^{3/2}\cos\alpha(t-t')$ below $T_c = 1$.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, check_positive


def exceptional_point(kappa: float) -> float:
    r"""The antisymmetric coupling $\alpha_{EP} = |\kappa|$ at which $K = [[0,\kappa+\alpha],
    [\kappa-\alpha,0]]$ has a double eigenvalue 0 with a single eigenvector."""
    return abs(float(kappa))


def oscillation_frequency(alpha, kappa=0.0) -> np.ndarray:
    r"""Linear prediction of the rotation frequency of the slow modes, $\omega_0 =
    \sqrt{\alpha^2-\kappa^2}$ for $|\alpha| > |\kappa|$ (oscillating), 0 otherwise (static)."""
    a = np.asarray(alpha, dtype=np.float64)
    return np.sqrt(np.maximum(a**2 - float(kappa) ** 2, 0.0))


def exceptional_discriminant(z1, z2, alpha, kappa=0.0) -> np.ndarray:
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
    f64 = jax.config.jax_enable_x64
    dtype = jnp.float64 if f64 else jnp.float32
    lam = jnp.asarray(lam, dtype)
    wts = jnp.asarray(wts, dtype)
    K = jnp.asarray([[0.0, kappa + alpha], [kappa - alpha, 0.0]], dtype)
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

    @jax.jit
    def run():
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

    C, z, e, q12 = run()
    C = jnp.swapaxes(C, 0, 1)[: max(n_w, 0)]
    return C, z, e, q12


def sk_aging_correlation(t, t_w, T: float) -> np.ndarray:
    r"""Asymptotic aging form of the spherical SK correlation below $T_c = 1$
    (Cugliandolo & Dean 1995): $C(t,t_w) \simeq (1-T)\,[2\sqrt{t t_w}/(t+t_w)]^{3/2}$ for
    $t - t_w \gg 1$; times $\cos\alpha(t-t_w)$ it is the PRL's Eq. (7)."""
    t, t_w = np.asarray(t, float), np.asarray(t_w, float)
    return (1.0 - T) * (2.0 * np.sqrt(t * t_w) / (t + t_w)) ** 1.5
