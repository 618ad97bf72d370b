r"""Pairwise q-state Potts model on any graph: the model of inverse Potts problems (DCA).

$$E(s) = -\sum_i h_i(s_i) - \sum_{i<j} J_{ij}(s_i, s_j),\qquad s_i \in \{0, \dots, q-1\},$$

with fields `h` of shape (N, q) and couplings `J` of shape (N, N, q, q) stored for both
orders of a pair, $J_{ij}(a, b) = J_{ji}(b, a)$, zero diagonal blocks $J_{ii} = 0$, and an
optional boolean `mask` (N, N) that zeroes the blocks of absent edges. q = 2 with
$h_i(1) - h_i(0) = 2 h^{\rm Ising}_i$ and $J_{ij}(a,b) = J^{\rm Ising}_{ij} \sigma_a \sigma_b$,
$\sigma = (-1, +1)$, is the Ising model `SK(J, h)`.

**Gauge.** The distribution is unchanged by $J_{ij}(a,b) \to J_{ij}(a,b) + u_{ij}(b)$,
$h_i(a) \to h_i(a) - \sum_j u_{ji}(a)$ (and constant shifts of $h_i$), so the parameters are
defined up to a gauge. The model accepts any gauge; `zero_sum_gauge()` returns the
equivalent model in the zero-sum (Ising) gauge $\sum_a J_{ij}(a,b) = \sum_b J_{ij}(a,b) = 0$,
$\sum_a h_i(a) = 0$ (Weigt et al., PNAS 106, 67 (2009); the gauge of smallest Frobenius
norm), which is the gauge in which diffphys reports fitted Potts models.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError, check_mask
from .._types import Array, Float, IntScalar, Key, Spins
from ._base import AbstractDiscreteModel


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


class PairwisePotts(AbstractDiscreteModel):
    r"""Pairwise q-state Potts model with site- and state-dependent fields and couplings.

    $$E(s) = -\sum_i h_i(s_i) - \tfrac12 \sum_{i \ne j} J_{ij}(s_i, s_j),\qquad
    J_{ij}(a, b) = J_{ji}(b, a),\ J_{ii} = 0.$$

    The state is an integer array of shape (N,) with values 0..q-1. `site_energies` costs
    O(N q), so the library's single-site samplers (`sampling.metropolis`, `heat_bath`) and
    `diffphys.exact` enumeration run on it.

    **Arguments:**

    - `h`: fields, shape (N, q).
    - `J`: couplings, shape (N, N, q, q); checked for $J_{ij}(a,b) = J_{ji}(b,a)$ on concrete
      input, diagonal blocks set to zero.
    - `mask`: optional boolean (N, N) graph; couplings of absent edges are set to zero.
    """

    h: Float[Array, "n q"]
    J: Float[Array, "n n q q"]
    n: int = eqx.field(static=True)
    n_states: int = eqx.field(static=True)

    def __init__(self, h, J, *, mask=None, dtype=None):
        h = jnp.asarray(h) if dtype is None else jnp.asarray(h, dtype=dtype)
        if not jnp.issubdtype(h.dtype, jnp.floating):
            h = h.astype(jnp.float32)
        J = jnp.asarray(J, dtype=h.dtype)
        if h.ndim != 2 or h.shape[0] < 2 or h.shape[1] < 2:
            raise ShapeError(f"h must have shape (N, q) with N >= 2 and q >= 2, got {h.shape}.")
        n, q = h.shape
        if J.shape != (n, n, q, q):
            raise ShapeError(f"J must have shape (N, N, q, q) = {(n, n, q, q)}, got {J.shape}.")
        if _is_concrete(J):
            Jn = np.asarray(J)
            scale = max(1.0, float(np.abs(Jn).max()))
            if not np.allclose(Jn, Jn.transpose(1, 0, 3, 2), rtol=0, atol=1e-6 * scale):
                raise ConfigError(
                    "Potts couplings must satisfy J[i, j, a, b] == J[j, i, b, a]; use "
                    "(J + J.transpose(1, 0, 3, 2)) / 2."
                )
        keep = jnp.asarray(check_mask(mask, n), dtype=h.dtype)
        self.n = int(n)
        self.n_states = int(q)
        self.h = h
        self.J = J * keep[:, :, None, None]

    @classmethod
    def sample(
        cls, key: Key, n: int, q: int, *, scale_h=0.1, scale_J=0.1, mask=None, dtype=jnp.float32
    ) -> PairwisePotts:
        r"""Random model: $h_i(a) \sim \mathcal N(0, \sigma_h^2)$, $J_{ij}(a,b) \sim
        \mathcal N(0, \sigma_J^2)$ i.i.d. for i < j (mirrored to j > i), on `mask`'s edges.

        **Arguments:**

        - `key`: PRNG key.
        - `n`, `q`: number of sites and of states.
        - `scale_h`, `scale_J`: standard deviations of fields and couplings.
        - `mask`: optional boolean (N, N) graph.

        **Returns:** a `PairwisePotts` in the zero-sum gauge.
        """
        if int(n) != n or n < 2 or int(q) != q or q < 2:
            raise ConfigError(f"need integers n >= 2 and q >= 2, got n={n!r}, q={q!r}.")
        n, q = int(n), int(q)
        kh, kj = jax.random.split(key)
        h = scale_h * jax.random.normal(kh, (n, q), dtype)
        z = scale_J * jax.random.normal(kj, (n, n, q, q), dtype)
        upper = jnp.triu(jnp.ones((n, n), dtype), 1)[:, :, None, None]
        J = z * upper
        J = J + J.transpose(1, 0, 3, 2)
        return cls(h, J, mask=mask).zero_sum_gauge()

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n,)

    @property
    def spin_values(self) -> tuple[int, ...]:
        return tuple(range(self.n_states))

    def value_index(self, x: Spins) -> Array:
        return x.astype(jnp.int32)

    def index_value(self, idx: Array) -> Spins:
        return idx.astype(self.dtype)

    def energy(self, x: Spins) -> Float[Array, ""]:
        s = x.astype(jnp.int32)
        sites = jnp.arange(self.n)
        field = jnp.sum(self.h[sites, s])
        pair = jnp.sum(self.J[sites[:, None], sites[None, :], s[:, None], s[None, :]])
        return -field - 0.5 * pair

    def site_energies(self, x: Spins, i: IntScalar) -> Float[Array, " q"]:
        r"""$e_i(a) = -h_i(a) - \sum_j J_{ij}(a, s_j)$: energies with $s_i = a$, up to a constant."""
        s = x.astype(jnp.int32)
        sites = jnp.arange(self.n)
        rows = self.J[i][sites, :, s]  # (N, q): J_ij(., s_j)
        return -self.h[i] - jnp.sum(rows, axis=0)

    def zero_sum_gauge(self) -> PairwisePotts:
        r"""The same distribution in the zero-sum gauge.

        $J'_{ij}(a,b) = J_{ij}(a,b) - J_{ij}(\cdot,b) - J_{ij}(a,\cdot) + J_{ij}(\cdot,\cdot)$
        and $h'_i(a) = h_i(a) - h_i(\cdot) + \sum_{j} [J_{ij}(a,\cdot) - J_{ij}(\cdot,\cdot)]$,
        where a dot is a mean over that state.
        """
        J = self.J
        row = jnp.mean(J, axis=3, keepdims=True)  # J_ij(a, .)
        col = jnp.mean(J, axis=2, keepdims=True)  # J_ij(., b)
        both = jnp.mean(J, axis=(2, 3), keepdims=True)
        Jz = J - row - col + both
        h = self.h + jnp.sum(row[..., 0] - both[..., 0], axis=1)
        h = h - jnp.mean(h, axis=1, keepdims=True)
        return eqx.tree_at(lambda m: (m.h, m.J), self, (h, Jz))


__all__ = ["PairwisePotts"]
