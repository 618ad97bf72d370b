r"""Spherical p-spin glasses (p = 2, 3) and quenches of their Langevin dynamics.

Convention (Crisanti & Sommers 1992, Cugliandolo & Kurchan 1993): continuous spins $s \in
\mathbb{R}^N$ on the sphere $\sum_i s_i^2 = N$ and

$$H(s) = -\sum_{i_1 < \dots < i_p} J_{i_1 \dots i_p}\, s_{i_1} \cdots s_{i_p},\qquad
\overline{J^2_{i_1\dots i_p}} = \frac{p!}{2 N^{p-1}},$$

so that $\overline{H(s) H(s')} = N f(q)$ with $f(q) = q^p/2$ and $q = s\cdot s'/N$. For p = 2
this is the spherical SK model with $J_{ij} \sim N(0, 1/N)$ (semicircle spectrum on [-2, 2],
$T_c = 1$); for p = 3 the dynamical transition is at $T_d = \sqrt{3/8}$.

The couplings are stored as the fully symmetric tensor $\tilde J$ with zeros wherever two
indices coincide, $H = -\frac{1}{p!}\sum_{i_1\dots i_p} \tilde J_{i_1\dots i_p} s_{i_1}\cdots
s_{i_p}$: an N x N matrix for p = 2, an N x N x N tensor for p = 3 (4 N^3 bytes in float32:
64 MiB at N = 256, 512 MiB at N = 512). Energy and gradient are contractions of that tensor
with s; nothing larger is ever built.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import ConfigError, ShapeError
from .._types import Array, Float, Key
from ..sampling import langevin, project_to_sphere, run
from ._base import AbstractModel


def _check_p(p: int) -> None:
    if p not in (2, 3):
        raise ConfigError(
            f"SphericalPSpin supports p = 2 (spherical SK) and p = 3, got p={p}. Higher p needs "
            "an N^p coupling tensor; use the DMFT integrator diffphys.theory.cugliandolo_kurchan "
            "for the thermodynamic limit instead."
        )


class SphericalPSpin(AbstractModel):
    r"""Spherical p-spin glass, p in {2, 3}, with Gaussian couplings.

    $H(s) = -\sum_{i_1<\dots<i_p} J_{i_1\dots i_p} s_{i_1}\cdots s_{i_p}$ on $|s|^2 = N$, with
    $\overline{J^2} = p!/(2N^{p-1})$ (Cugliandolo–Kurchan 1993). Draw the couplings with
    `SphericalPSpin.sample(key, n, p)`.

    **Fields:**

    - `couplings`: the symmetric coupling tensor, shape `(n,) * p`, zero on coinciding indices.
    - `p`: the interaction order (static).
    """

    couplings: Float[Array, "..."]
    p: int = eqx.field(static=True)

    def __check_init__(self):
        _check_p(self.p)
        shape = tuple(self.couplings.shape)
        if len(shape) != self.p or len(set(shape)) != 1:
            raise ShapeError(
                f"SphericalPSpin(p={self.p}) needs an (n,)*{self.p} coupling tensor, got shape "
                f"{shape}. Use SphericalPSpin.sample(key, n, p) to draw one."
            )

    @classmethod
    def sample(cls, key: Key, n: int, p: int = 2, *, dtype=jnp.float32) -> SphericalPSpin:
        r"""Draw Gaussian couplings of variance $p!/(2N^{p-1})$ (Cugliandolo–Kurchan 1993).

        **Arguments:**

        - `key`: PRNG key.
        - `n`: number of spins N.
        - `p`: 2 (spherical SK, $J_{ij}\sim N(0, 1/N)$) or 3.
        - `dtype`: float dtype of the couplings.

        **Returns:** a `SphericalPSpin`. For p = 3 sampling transiently holds a few N^3 arrays.
        """
        _check_p(p)
        if n < p:
            raise ConfigError(f"need n >= p spins, got n={n}, p={p}.")
        std = math.sqrt(math.factorial(p) / (2.0 * n ** (p - 1)))
        if p == 2:
            g = jax.random.normal(key, (n, n), dtype)
            upper = jnp.triu(g, k=1)
            j = (upper + upper.T) * jnp.asarray(std, dtype)
            return cls(j, 2)
        return cls(_symmetric_3tensor(key, n, jnp.dtype(dtype), std * math.sqrt(6.0)), 3)

    @property
    def n(self) -> int:
        return int(self.couplings.shape[0])

    def check_state(self, x) -> None:
        if not hasattr(x, "shape") or tuple(x.shape) != (self.n,):
            got = getattr(x, "shape", type(x).__name__)
            raise ShapeError(
                f"SphericalPSpin expects a vector of shape ({self.n},), got {got}. Batch over "
                f"configurations with jax.vmap."
            )

    def random_state(self, *, key: Key) -> Float[Array, " n"]:
        """A uniformly random point of the sphere |s|^2 = N (an infinite-temperature quench)."""
        return project_to_sphere(jax.random.normal(key, (self.n,), self.couplings.dtype))

    def local_field(self, x: Float[Array, " n"]) -> Float[Array, " n"]:
        r"""$h_i = -\partial H/\partial s_i = \frac{1}{(p-1)!}\sum \tilde J_{i\,i_2\dots i_p}
        s_{i_2}\cdots s_{i_p}$: one matrix-vector product (p = 2) or two (p = 3)."""
        x = x.astype(self.couplings.dtype)
        if self.p == 2:
            return self.couplings @ x
        return 0.5 * ((self.couplings @ x) @ x)

    def grad_energy(self, x: Float[Array, " n"]) -> Float[Array, " n"]:
        return -self.local_field(x)

    def energy(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        """Total energy H(s); H is homogeneous of degree p, so H = -s.h(s)/p."""
        return -jnp.dot(x.astype(self.couplings.dtype), self.local_field(x)) / self.p


_PERMS3 = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _symmetric_3tensor(key, n, dtype, scale):
    """scale * (mean of the 6 index permutations of an iid N(0,1) tensor), zero on coinciding
    indices; the permutation mean has variance 1/6."""
    g = jax.random.normal(key, (n, n, n), dtype)
    sym = sum(jnp.transpose(g, perm) for perm in _PERMS3) / jnp.asarray(6.0, dtype)
    i = jnp.arange(n)
    distinct = (
        (i[:, None, None] != i[None, :, None])
        & (i[:, None, None] != i[None, None, :])
        & (i[None, :, None] != i[None, None, :])
    )
    return jnp.where(distinct, sym * jnp.asarray(scale, dtype), jnp.zeros((), dtype))


def spherical_quench(key: Key, p: int, n: int, T: float, dt: float, record_at, n_samples: int):
    """Quenches from T = ∞ of `n_samples` independent disorder samples of the spherical p-spin
    model, each followed by spherical Langevin dynamics
    (`sampling.langevin(spherical=True)`) at temperature T.

    Sample k uses `jax.random.split(key, n_samples)[k]`, split in turn into (couplings, initial
    condition, dynamics) keys.

    **Arguments:**

    - `key`: PRNG key; `p`, `n`: the model (`SphericalPSpin.sample(k, n, p)`).
    - `T`, `dt`: temperature and Euler step of the Langevin dynamics.
    - `record_at`: increasing step counts at which the state is recorded.
    - `n_samples`: number of disorder samples.

    **Returns:** `(x, e)`: configurations `(n_samples, len(record_at), n)` and energies per spin
    `(n_samples, len(record_at))`. p = 2 is vmapped over samples; p = 3 uses `lax.map`, since a
    vmapped N^3 contraction is a slow batched matmul on a CPU.
    """
    record_at = [int(s) for s in record_at]

    def one(k):
        k_j, k_x, k_run = jax.random.split(k, 3)
        model = SphericalPSpin.sample(k_j, n, p)
        alg = langevin(beta=1.0 / T, dt=dt, spherical=True)
        state = alg.init(model.random_state(key=k_x), model)
        _, tr = run(
            k_run,
            alg,
            state,
            model,
            record_at[-1],
            record=lambda s: (s.x, model.energy(s.x) / n),
            record_at=record_at,
        )
        return tr["record"]

    keys = jax.random.split(key, n_samples)
    return jax.jit(jax.vmap(one) if p == 2 else (lambda ks: jax.lax.map(one, ks)))(keys)
