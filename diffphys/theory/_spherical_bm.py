r"""Large-N test log-likelihoods of spherical Boltzmann machines learned from K data points:
loss minimisation (MAP), one posterior sample, and the posterior-predictive ensemble.

Model, loss and tempered posterior as in `diffphys.models._spherical_bm` (the convention of
the public code of Tulinski, Cocco, Monasson & Fernandez-de-Cossio-Diaz, arXiv 2605.09031):
$p(x|W) \propto e^{\frac12 x^\top W x}$ on $|x|^2 = N$, loss
$-\sum_a\log p(x^a|W) + \frac{\gamma N}{4}\mathrm{tr}W^2$, posterior $\propto e^{-\eta\,\rm loss}$.
The limit is $N\to\infty$ at fixed K (the "undersampled" regime of that code); the data enter
through the K non-zero eigenvalues $c_k$ of $\frac1N\sum_a x^a x^{a\top}$ ($\sum_k c_k = K$).

**What is derived here (not read from the papers, whose text was not accessible).**

1. *Partition function of a finite-rank W.* For $W = \sum_k w_k e_k e_k^\top$ (rank K),
   $\frac1N\log Z(W) = \ell_0 + \psi(\max_k w_k)$ with $\ell_0 = \frac1N\log Z(0)$ and
   $\psi(w) = \frac12(w - 1 - \log w)$ for $w > 1$, 0 otherwise: the overlap
   $s = (e_1\cdot x)^2/N$ maximises $\frac12 w s + \frac12\log(1-s)$, so $x$ condenses on the
   top mode with $s = 1 - 1/w$ once $w > 1$.
2. *MAP.* At leading order the MAP couplings live on the data eigenvectors and maximise
   $\frac12\sum_k c_k w_k - \frac\gamma4\sum_k w_k^2 - K\psi(\max_k w_k)$ (strictly concave):
   $w_k = c_k/\gamma$ if $c_1 \le \gamma$, otherwise $w_k = \min(c_k/\gamma, \mu)$ with
   $\mu > 1$ the root of $\sum_{k:\,c_k>\gamma\mu}(c_k - \gamma\mu) = K(1 - 1/\mu)$ (for a
   single condensed mode, $\gamma\mu^2 - (c_1 - K)\mu - K = 0$).
3. *Test score.* For a test point with squared overlaps $t_k = (e_k\cdot x)^2/N$,
   $\frac1N\log p(x|W) = \frac12\sum_k w_k t_k - \psi(\max w) - \ell_0$.
4. *Posterior, paramagnetic phase.* The posterior is the GOE matrix
   $\frac{1}{\gamma}\sum_k c_k e_ke_k^\top + G$, $\overline{G_{ij}^2} = \sigma^2/N$,
   $\sigma^2 = 1/(\gamma\eta)$, reweighted by $Z(W)^{-\eta K}$. When $\sigma < 1$ and
   $c_1 < \gamma$ the spherical saddle point $z^* = 1 + \sigma^2$ lies above every outlier
   ($\theta + \sigma^2/\theta < 1 + \sigma^2 \iff \theta < 1$), so
   $\frac1N\log Z(W) = \ell_0 + \sigma^2/4$ for typical W (annealed = quenched, the
   spherical SK paramagnet) and the reweighting is O(1), not O(N). Then a single posterior
   sample scores $\frac12\sum_k \frac{c_k}{\gamma}t_k - \ell_0 - \frac{\sigma^2}{4}$, while the
   posterior-predictive average gains exactly $\log\overline{e^{\frac12 x^\top G x}}/N =
   \sigma^2/4$ back: **the ensemble equals MAP and beats a single sample by
   $1/(4\gamma\eta)$ per dimension** in this phase. Outside it (a condensed posterior) no
   prediction is made here: that is where the replica theory of 2604.17936 is needed.

**Teacher.** $W^* = \omega\, uu^\top$ with $\omega > 1$ (as in the authors' `teacher_student.jl`):
samples have $m^2 = (u\cdot x)^2/N \to 1 - 1/\omega$, the data Gram matrix has eigenvalues
$c_1 = 1 + (K-1)m^2$ and $c_{k\ge2} = 1 - m^2$ (for K = 2: $2 - 1/\omega$ and $1/\omega$, as in
that code), the top data eigenvector has $(u\cdot e_1)^2 = Km^2/c_1$, so a fresh sample has
$t_1 = Km^4/c_1$ and $t_{k\ge2} = 0$; the teacher's own score is
$\frac12\log\omega - \ell_0$ (its entropy, $-\frac12(1 - \log\omega) - \frac12\log 2\pi$).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError
from .._types import Array


def _log_z0_per_n(n) -> float:
    """(1/N) log of the delta(|x|^2 - N) measure of the sphere; 1/2 log(2 pi e) if n is None."""
    if n is None:
        return 0.5 * math.log(2 * math.pi * math.e)
    return ((n / 2 - 1) * math.log(n) + n / 2 * math.log(math.pi) - math.lgamma(n / 2)) / n


def condensation_free_energy(w):
    r"""$\psi(w) = \frac12(w - 1 - \log w)$ for $w > 1$, else 0: the large-N excess
    $\frac1N\log Z$ of a finite-rank W whose top eigenvalue is w (module docstring, item 1)."""
    w = jnp.asarray(w)
    safe = jnp.maximum(w, 1.0)
    return jnp.where(w > 1, 0.5 * (safe - 1.0 - jnp.log(safe)), 0.0)


def sbm_map_couplings(c, gamma: float, *, multiplicity=None, n_iter: int = 80):
    r"""Large-N MAP eigenvalues $w_k$ of the couplings learned from data with Gram eigenvalues
    `c` (module docstring, item 2).

    **Arguments:**

    - `c`: the non-zero eigenvalues of $\frac1N\sum_a x^ax^{a\top}$, shape `(R,)`.
    - `gamma`: L2 regularisation strength.
    - `multiplicity`: optional multiplicity of each entry of `c` (default all ones), so that
      K - 1 equal eigenvalues need one entry.

    **Returns:** `w`, shape `(R,)`, in the order of `c`.
    """
    if gamma <= 0:
        raise ConfigError(f"gamma must be > 0, got {gamma}.")
    c = jnp.asarray(c)
    mult = jnp.ones_like(c) if multiplicity is None else jnp.asarray(multiplicity, c.dtype)
    k = jnp.sum(mult * c)
    cmax = jnp.max(jnp.where(mult > 0, c, -jnp.inf))

    def f(mu):
        return 0.5 * jnp.sum(mult * jnp.maximum(c - gamma * mu, 0.0)) - 0.5 * k * (1.0 - 1.0 / mu)

    def body(_, b):
        lo, hi = b
        mid = 0.5 * (lo + hi)
        return jnp.where(f(mid) > 0, mid, lo), jnp.where(f(mid) > 0, hi, mid)

    hi0 = jnp.maximum(cmax / gamma, 1.0)
    lo, hi = jax.lax.fori_loop(0, n_iter, body, (jnp.ones_like(hi0), hi0))
    mu = 0.5 * (lo + hi)
    return jnp.where(cmax > gamma, jnp.minimum(c / gamma, mu), c / gamma)


class TeacherStudentScores(NamedTuple):
    """Large-N mean test log-likelihood per dimension (nan where no prediction is made)."""

    teacher: Array
    map: Array
    ensemble: Array
    single_sample: Array
    map_condensed: Array
    posterior_paramagnetic: Array


def _finite_n_scores(n: int, omega: float, k, w1, w_rest, t1, m2):
    """MAP and teacher scores with the leading-order couplings and overlaps but the exact
    finite-N partition functions, the 1/N noise overlaps of a test point with the K data
    directions, and the teacher's exact finite-N <m^2>."""
    from ..models import sbm_log_partition_from_eigenvalues

    ks = np.asarray(k).ravel()
    w1s, wrs, t1s = (np.asarray(a, np.float64).ravel() for a in (w1, w_rest, t1))
    out = []
    for kk, a1, ar, tt in zip(ks, w1s, wrs, t1s):
        kk = int(round(float(kk)))
        if not 1 <= kk < n:
            raise ConfigError(f"K must be an integer in [1, N) for the finite-N scores, got {kk}.")
        lam = np.zeros(n)
        lam[0], lam[1:kk] = a1, ar
        log_z = float(sbm_log_partition_from_eigenvalues(jnp.asarray(lam, jnp.float32)))
        noise = (1.0 - m2) / n  # each data direction catches (1 - m^2)/N of a test point
        energy = 0.5 * (a1 * (tt + noise) + ar * (kk - 1) * noise)
        out.append(energy - log_z / n)
    lam_t = np.zeros(n)
    lam_t[0] = omega
    log_zt = float(sbm_log_partition_from_eigenvalues(jnp.asarray(lam_t, jnp.float32)))
    # the teacher's own energy needs the exact finite-N <m^2> of its overlap density
    grid = np.linspace(0.0, 1.0, 200_001)[1:-1]
    log_w = 0.5 * n * omega * grid**2 + 0.5 * (n - 3) * np.log1p(-(grid**2))
    w = np.exp(log_w - log_w.max())
    teacher = 0.5 * omega * float(np.sum(w * grid**2) / np.sum(w)) - log_zt / n
    return (
        jnp.asarray(np.reshape(out, np.shape(k)), jnp.float32),
        jnp.full(np.shape(k), teacher, jnp.float32),
    )


def sbm_teacher_student(omega: float, k, gamma: float, eta: float, *, n=None):
    r"""Test log-likelihood per dimension of SBMs learned from K samples of the rank-one
    teacher $W^* = \omega uu^\top$ (module docstring), at large N.

    **Arguments:**

    - `omega`: teacher strength, > 1 (condensed teacher).
    - `k`: number of training samples K (array-like; any shape).
    - `gamma`, `eta`: regularisation and inverse posterior temperature.
    - `n`: if given, the finite-N refinement used to compare with simulations at this N: the
      leading-order MAP couplings and overlaps are scored with the exact finite-N partition
      functions (`sbm_log_partition_from_eigenvalues`), a test point's 1/N noise overlap with
      each data direction, and the teacher's exact finite-N $\langle m^2\rangle$; K must then
      be integers. Default: the $N\to\infty$ limit with $\ell_0 = \frac12\log 2\pi e$.

    **Returns:** `TeacherStudentScores(teacher, map, ensemble, single_sample, map_condensed,
    posterior_paramagnetic)`; `ensemble` and `single_sample` are nan where the posterior is
    not paramagnetic ($\gamma\eta \le 1$ or $c_1 \ge \gamma$).
    """
    if omega <= 1:
        raise ConfigError(f"omega must be > 1 (a condensed teacher), got {omega}.")
    if gamma <= 0 or eta <= 0:
        raise ConfigError(f"gamma and eta must be > 0, got gamma={gamma}, eta={eta}.")
    k = jnp.asarray(k, jnp.float32)
    m2 = 1.0 - 1.0 / omega
    c1 = 1.0 + (k - 1.0) * m2
    c_rest = 1.0 - m2
    t1 = k * m2**2 / c1
    l0 = _log_z0_per_n(n)

    def one(kk, c1_):
        w = sbm_map_couplings(
            jnp.stack([c1_, jnp.asarray(c_rest, c1_.dtype)]),
            gamma,
            multiplicity=jnp.stack([jnp.ones_like(kk), kk - 1.0]),
        )
        cond = jnp.maximum(c1_, jnp.where(kk > 1, c_rest, 0.0)) > gamma
        return w[0], jnp.where(kk > 1, jnp.max(w), w[0]), cond

    w1, wmax, cond = jax.vmap(one)(k.ravel(), c1.ravel())
    w1, wmax, cond = (a.reshape(k.shape) for a in (w1, wmax, cond))
    w_rest = jnp.minimum(c_rest / gamma, wmax)
    if n is None:
        ll_map = 0.5 * w1 * t1 - condensation_free_energy(wmax) - l0
        teacher = jnp.broadcast_to(0.5 * math.log(omega) - l0, k.shape)
    else:
        ll_map, teacher = _finite_n_scores(n, omega, k, w1, w_rest, t1, m2)
    para = (gamma * eta > 1.0) & ~cond
    ll_ens = jnp.where(para, ll_map, jnp.nan)
    ll_single = jnp.where(para, ll_map - 0.25 / (gamma * eta), jnp.nan)
    return TeacherStudentScores(teacher, ll_map, ll_ens, ll_single, cond, para)


__all__ = [
    "TeacherStudentScores",
    "condensation_free_energy",
    "sbm_map_couplings",
    "sbm_teacher_student",
]
