r"""Two spherical SK systems with shared couplings, coupled non-reciprocally.

The model of Garcia Lorenzana, Altieri, Biroli, Fruchart & Vitelli, "Nonreciprocal
spin-glass transition and aging", PRL 135, 187402 (2025), arXiv 2408.17360, and of its
companion PRE "Nonreciprocally coupled spin glasses: exceptional-point-mediated phase
transitions and aging".

What was read (the papers' full text could not be retrieved here; only the abstracts, the
figure captions and an APS talk abstract): "a bipartite spherical Sherrington-Kirkpatrick
model that describes the antagonistic coupling between two identical complex agents modeled as
macroscopic spin glasses" (abstract); "two (N-dimensional) spherical spin systems,
corresponding degrees of freedom are coupled non-reciprocally ... the identical random
potential in both systems" (Fig. 1 caption); the DMFT is presented through "the diagonal and
antisymmetric components of the response and correlation functions" (Fig. 2 caption); "a
finite temperature transition from a static disordered phase to a non-time-translationally-
invariant regime ... macroscopic oscillations superimposed on aging" (APS March Meeting 2026
abstract). The equations below are our reading of that description, in our notation (the
papers' symbols could not be read):

$$\dot s^1_i = \sum_j J_{ij} s^1_j - z_1(t) s^1_i + K_{12}\, s^2_i + \xi^1_i,\qquad
  \dot s^2_i = \sum_j J_{ij} s^2_j - z_2(t) s^2_i + K_{21}\, s^1_i + \xi^2_i,$$

two spheres $|s^a|^2 = N$ with the *same* symmetric $J_{ij}\sim N(0, 1/N)$,
$\langle \xi^a_i(t)\xi^b_j(t')\rangle = 2T\delta_{ab}\delta_{ij}\delta(t-t')$ and one Lagrange
multiplier $z_a$ per sphere. Antagonistic coupling: $K_{12} = +\alpha$, $K_{21} = -\alpha$
(system 1 follows system 2, system 2 flees system 1). This (`kappa = 0`) is the default.

Extension (ours, not from the papers): a reciprocal part $\kappa$, $K_{12} = \kappa + \alpha$,
$K_{21} = \kappa - \alpha$. The bare K then has eigenvalues $\pm\sqrt{\kappa^2-\alpha^2}$ and an
exceptional point at $|\alpha| = |\kappa|$ (the mechanism of Fruchart, Hanai, Littlewood &
Vitelli, Nature 592, 363 (2021)); the experiment `nonreciprocal-spin-glass` uses it to cross
an exceptional point by varying $\alpha$ at fixed T.

Exact consequence for $\kappa = 0$ (derived here, `diffphys.theory` module docs): the two
systems rotate rigidly into each other at frequency $\alpha$ around two independent spherical SK
trajectories, so $T_c = 1$ for every $\alpha$: a static, time-translation-invariant paramagnet
above, an aging phase with undamped oscillations $C_{11}(t, t') = C_{SK}(t, t')\cos\alpha(t-t')$
below. The DMFT of this model (any p) is `diffphys.theory.nonreciprocal_dmft`; for p = 2 its
exact eigenmode solution is `diffphys.theory.nonreciprocal_sk_dynamics`.
"""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import ShapeError, check_positive
from .._types import Array, Float, Key, RealScalar
from ..sampling import SamplingAlgorithm, project_to_sphere
from ._spherical import SphericalPSpin


class AbstractNonreciprocal(eqx.Module):
    r"""Two spherical systems with the same random energy H, coupled site by site by
    $K = [[0, \kappa+\alpha], [\kappa-\alpha, 0]]$:
    $\dot s^a = -\nabla H(s^a) - z_a s^a + \sum_b K_{ab}s^b + \xi^a$.

    The state is an array of shape (2, N): row a is system a. Subclasses provide the couplings,
    `p` and `local_fields`. There is no energy whose gradient gives the dynamics when
    $\alpha \ne 0$; `energies(x)` returns the two internal energies $H(s^a)$ and `energy(x)`
    their sum.
    """

    couplings: eqx.AbstractVar[Float[Array, "..."]]
    alpha: eqx.AbstractVar[Float[Array, ""]]
    kappa: eqx.AbstractVar[Float[Array, ""]]
    order: eqx.AbstractClassVar[int]

    @classmethod
    def sample(cls, key: Key, n: int, alpha: float, kappa: float = 0.0, *, dtype=jnp.float32):
        """Draw the shared couplings as `SphericalPSpin.sample(key, n, p)` (variance p!/(2N^{p-1});
        J_ij ~ N(0, 1/N) for p = 2)."""
        return cls(SphericalPSpin.sample(key, n, cls.order, dtype=dtype).couplings, alpha, kappa)

    @property
    def p(self) -> int:
        return int(self.couplings.ndim)

    @property
    def n(self) -> int:
        return int(self.couplings.shape[0])

    @abc.abstractmethod
    def local_fields(self, x: Float[Array, "2 n"]) -> Float[Array, "2 n"]:
        """$-\nabla H(s^a)$ for both systems."""

    def coupling_matrix(self) -> Float[Array, "2 2"]:
        """K = [[0, kappa + alpha], [kappa - alpha, 0]]."""
        zero = jnp.zeros((), self.couplings.dtype)
        return jnp.stack(
            [
                jnp.stack([zero, self.kappa + self.alpha]),
                jnp.stack([self.kappa - self.alpha, zero]),
            ]
        )

    def coupling_flow(self, t, z=None) -> Float[Array, "2 2"]:
        r"""$e^{t(K - \mathrm{diag}(z))}$, the flow of the system-index part of the dynamics
        over a time t at fixed Lagrange multipliers z (default z = 0: $e^{tK}$, a rotation by
        $\alpha t$ for $\kappa = 0$). Closed form for a 2 x 2 matrix $M = m\mathbb{1} + N$,
        N traceless with $N^2 = \delta\mathbb{1}$: $e^{tM} = e^{mt}[\cosh(\sqrt\delta t)\mathbb{1}
        + \frac{\sinh(\sqrt\delta t)}{\sqrt\delta}N]$ (cos/sin for $\delta < 0$)."""
        M = self.coupling_matrix()
        if z is not None:
            M = M - jnp.diag(jnp.asarray(z, M.dtype))
        return _expm2(M, jnp.asarray(t, M.dtype))

    def check_state(self, x) -> None:
        if not hasattr(x, "shape") or tuple(x.shape) != (2, self.n):
            got = getattr(x, "shape", type(x).__name__)
            raise ShapeError(
                f"{type(self).__name__} expects a state of shape (2, {self.n}) (one row per "
                f"system), got {got}."
            )

    def random_state(self, *, key: Key) -> Float[Array, "2 n"]:
        """Two independent uniform points of the sphere (a quench from T = inf)."""
        x = jax.random.normal(key, (2, self.n), self.couplings.dtype)
        return jax.vmap(project_to_sphere)(x)

    def drift(self, x: Float[Array, "2 n"]) -> Float[Array, "2 n"]:
        r"""Deterministic force without the Lagrange term: $-\nabla H(s^a) + \sum_b K_{ab} s^b$."""
        return self.local_fields(x) + self.coupling_matrix() @ x

    def lagrange_multipliers(self, x: Float[Array, "2 n"], beta) -> Float[Array, " 2"]:
        r"""$z_a = T + s^a\cdot(-\nabla H(s^a) + \sum_b K_{ab}s^b)/N$: the Lagrange multipliers
        that keep $|s^a|^2 = N$ under the continuous-time dynamics (Itô) at inverse temperature
        `beta`."""
        temp = 1.0 / jnp.asarray(beta, x.dtype)
        return temp + jnp.sum(x * self.drift(x), axis=-1) / jnp.asarray(self.n, x.dtype)

    def energies(self, x: Float[Array, "2 n"]) -> Float[Array, " 2"]:
        r"""$H(s^a) = -s^a\cdot h^a/p$ (H is homogeneous of degree p)."""
        return -jnp.sum(x * self.local_fields(x), axis=-1) / self.p

    def energy(self, x: Float[Array, "2 n"]) -> Float[Array, ""]:
        return jnp.sum(self.energies(x))


def _fields(cls, couplings, alpha, kappa):
    """Checked `(couplings, alpha, kappa)` for a subclass of order `cls.order`."""
    couplings = jnp.asarray(couplings)
    p, name = cls.order, cls.__name__
    if couplings.ndim != p or len(set(couplings.shape)) != 1:
        raise ShapeError(
            f"{name} needs an (n,)*{p} coupling array, got shape {couplings.shape}. "
            f"Use {name}.sample(key, n, alpha)."
        )
    dtype = couplings.dtype
    return couplings, jnp.asarray(alpha, dtype), jnp.asarray(kappa, dtype)


class NonreciprocalSK(AbstractNonreciprocal):
    r"""Two spherical SK systems sharing J, coupled site by site by $K = [[0, \kappa+\alpha],
    [\kappa-\alpha, 0]]$ (Garcia Lorenzana et al. 2025; the default $\kappa = 0$ is their
    antagonistic coupling, $\kappa \ne 0$ our extension; see the module docstring).

    $H(s) = -\sum_{i<j}J_{ij}s_i s_j$, the same for both systems. State: shape (2, N).

    **Fields:**

    - `couplings`: the shared symmetric N x N matrix J (variance 1/N, zero diagonal).
    - `alpha`: antisymmetric (antagonistic, non-reciprocal) coupling.
    - `kappa`: reciprocal inter-system coupling; 0 (the default) is the papers' model, any other
      value is our extension.
    """

    couplings: Float[Array, "n n"]
    alpha: Float[Array, ""]
    kappa: Float[Array, ""]

    order: ClassVar[int] = 2

    def __init__(self, couplings, alpha, kappa=0.0):
        self.couplings, self.alpha, self.kappa = _fields(type(self), couplings, alpha, kappa)

    def local_fields(self, x: Float[Array, "2 n"]) -> Float[Array, "2 n"]:
        """$J s^a$ for both systems (J symmetric)."""
        return x @ self.couplings


class NonreciprocalPSpin(AbstractNonreciprocal):
    r"""Two spherical 3-spin systems sharing their couplings, coupled site by site by K.

    The p = 3 analogue of `NonreciprocalSK`: both systems have the same
    $H(s) = -\sum_{i<j<k}J_{ijk}s_i s_j s_k$, $\overline{J^2} = 3/N^2$ (the convention of
    `SphericalPSpin`), coupled by $K = [[0, \kappa+\alpha], [\kappa-\alpha, 0]]$. The APS
    abstract of Garcia Lorenzana et al. says their results extend to the p-spin model with "a
    richer phase diagram, with both a chaotic and a nonreciprocal aging regime"; that work could
    not be read, so this model is our construction, used to check the p = 3 DMFT
    (`diffphys.theory.nonreciprocal_dmft`) against simulation. It stores an N^3 tensor
    (`SphericalPSpin` sizes apply).

    **Fields:**

    - `couplings`: the shared symmetric (n, n, n) tensor, zero on coinciding indices.
    - `alpha`, `kappa`: the antisymmetric and reciprocal inter-system couplings.
    """

    couplings: Float[Array, "n n n"]
    alpha: Float[Array, ""]
    kappa: Float[Array, ""]

    order: ClassVar[int] = 3

    def __init__(self, couplings, alpha, kappa=0.0):
        self.couplings, self.alpha, self.kappa = _fields(type(self), couplings, alpha, kappa)

    def local_fields(self, x: Float[Array, "2 n"]) -> Float[Array, "2 n"]:
        r"""$h_i = \frac12\sum_{jk}\tilde J_{ijk}s_j s_k$ for both systems (one tensor
        contraction per system)."""
        return 0.5 * jnp.einsum("ijk,aj,ak->ai", self.couplings, x, x)


def _expm2(M, t):
    """exp(t M) of a 2 x 2 matrix in closed form (see `NonreciprocalSK.coupling_flow`)."""
    m = 0.5 * (M[0, 0] + M[1, 1])
    eye = jnp.eye(2, dtype=M.dtype)
    N = M - m * eye
    w2 = (N[0, 0] * N[0, 0] + N[0, 1] * N[1, 0]) * t * t
    wp = jnp.sqrt(jnp.maximum(w2, 0.0))
    wn = jnp.sqrt(jnp.maximum(-w2, 0.0))
    small = wp < 1e-3
    shc = jnp.where(small, 1.0 + wp * wp / 6.0, jnp.sinh(wp) / jnp.where(small, 1.0, wp))
    c = jnp.where(w2 >= 0, jnp.cosh(wp), jnp.cos(wn))
    s = t * jnp.where(w2 >= 0, shc, jnp.sinc(wn / jnp.pi))
    return jnp.exp(m * t) * (c * eye + s * N)


class NonreciprocalState(NamedTuple):
    """The two spherical configurations, shape (2, n), each with |x_a|^2 = n."""

    x: Float[Array, "2 n"]


class NonreciprocalInfo(NamedTuple):
    """Diagnostics of one step: the energy of each of the two coupled systems."""

    energies: Float[Array, " 2"]


def nonreciprocal_langevin(beta: RealScalar = 1.0, dt: float = 0.02) -> SamplingAlgorithm:
    r"""One step of the coupled dynamics: Euler for the random force, the exact flow of
    $K - Z$, projection.

    $s \leftarrow P\big[e^{dt(K - Z)}(s + dt\, h(s)) + \sqrt{2T dt}\,\xi\big]$ with s the (2, N)
    state, $h = -\nabla H$ the random force of each system ($Js$ for `NonreciprocalSK`, the
    3-spin field for `NonreciprocalPSpin`), $Z = \mathrm{diag}(z_1, z_2)$ the Lagrange
    multipliers of the continuous dynamics at the start of the step ($z_a = T + s^a\cdot(h^a +
    \sum_b K_{ab}s^b)/N$), $e^{dt(K-Z)}$ the 2 x 2 matrix exponential acting on the system index,
    and $P$ projecting each system back onto its sphere (fixing the norm to O(dt)). For p = 2,
    J acts on the site index and $K - Z$ on the system index, so the two linear flows commute
    and only the Euler step of J is approximate. A plain
    Euler step $s + dt(Js + Ks)$ instead (i) turns each eigenmode $\lambda$ of J by
    $\arctan(\alpha dt/(1+\lambda dt))$ per step, so the slow modes ($\lambda \simeq 2$) rotate at
    $\alpha(1 - 2dt)$ (0.4 rad of phase lag after 20 time units at dt = 0.01), and (ii) for
    $\kappa \ne 0$, where $z_1 \ne z_2$, splits the non-commuting K and Z: at T = 0.3,
    $\alpha = 2$, $\kappa = 0.5$ ($z_1 \simeq 3.8$, $z_2 \simeq 0.24$) it gave $q_{12}(0.5) = 0.374$,
    0.388, 0.398 at dt = 0.02, 0.01, 0.005 against the exact 0.409. `info.energies` are the two
    internal energies before the step.

    **Arguments:**

    - `beta`: inverse temperature (overridable per step); `dt`: time step.
    """
    check_positive("beta", beta)
    check_positive("dt", dt)

    def init(x, model) -> NonreciprocalState:
        model.check_state(x)
        return NonreciprocalState(
            jax.vmap(project_to_sphere)(jnp.asarray(x, model.couplings.dtype))
        )

    def step(key, state: NonreciprocalState, model, beta=beta, dt=dt):
        x = state.x
        h = model.local_fields(x)
        energies = -jnp.sum(x * h, axis=-1) / model.p
        dtype = x.dtype
        dt = jnp.asarray(dt, dtype)
        temp = 1.0 / jnp.asarray(beta, dtype)
        z = temp + jnp.sum(x * (h + model.coupling_matrix() @ x), axis=-1) / x.shape[-1]
        flow = model.coupling_flow(dt, z)
        noise = jax.random.normal(key, x.shape, dtype)
        x_new = flow @ (x + dt * h) + jnp.sqrt(2.0 * dt * temp) * noise
        return NonreciprocalState(jax.vmap(project_to_sphere)(x_new)), NonreciprocalInfo(energies)

    return SamplingAlgorithm(init, step)
